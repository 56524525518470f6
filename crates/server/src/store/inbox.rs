//! The inbox: raw webhook bodies exactly as Meta sent them, with their processing state.
//!
//! A body is appended before Meta gets its 200, and is never deleted by processing: a row is
//! `pending` until applied, then `done`; one that keeps failing is `parked` with its error.
//!
//! On SQLite the inbox is a database file of its own, so a row is marked done in a second
//! transaction after the main one committed; if the process dies in between, the row is applied
//! again, which changes nothing (messages are unique per wamid, statuses only move forward).
//! On PostgreSQL the row is claimed and marked done inside the transaction that applies it.

use sqlx::any::AnyRow;

use super::{Backend, Conn, Store, StoreError, Tx, col};

pub const STATE_PENDING: &str = "pending";
pub const STATE_DONE: &str = "done";
pub const STATE_PARKED: &str = "parked";

/// A body to append. `connection_id` is `None` for the platform app's shared URL.
#[derive(Debug, Clone)]
pub struct InboxAppend {
    pub connection_id: Option<String>,
    pub body: bytes::Bytes,
    pub received_at: i64,
}

/// A row claimed for processing.
#[derive(Debug, Clone)]
pub struct InboxRow {
    pub id: i64,
    pub connection_id: Option<String>,
    pub body: Vec<u8>,
    pub attempts: i64,
    pub received_at: i64,
}

/// A row as the API shows it (without the body, which may be large).
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub id: i64,
    pub connection_id: Option<String>,
    pub received_at: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub processed_at: Option<i64>,
    pub body_bytes: i64,
}

/// The first key of the inbox's advisory locks (the second is the connection's hash), so they
/// never meet another use of PostgreSQL's advisory locks.
const INBOX_LOCK_CLASS: i32 = 0x5741_0001;

/// Rows per statement: well under both databases' limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 200;

const ENTRY_COLUMNS: &str = "id, connection_id, received_at, state, attempts, next_attempt_at, \
     last_error, processed_at, LENGTH(body) AS body_bytes";

impl Store {
    /// Starts a transaction on the inbox. `durable`: the commit is on disk before it returns.
    async fn begin_inbox(&self, durable: bool) -> Result<Tx, StoreError> {
        let tx = match (self.backend, durable) {
            (Backend::Sqlite, true) => {
                self.inbox
                    .write
                    .begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
                    .await?
            }
            (Backend::Sqlite, false) => {
                self.inbox
                    .write
                    .begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
                    .await?
            }
            (Backend::Postgres, _) => self.inbox.write.begin().await?,
        };
        Ok(tx)
    }

    /// Appends bodies in one transaction; returns after the commit is durable.
    pub async fn append_to_inbox(&self, items: &[InboxAppend]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_inbox(true).await?;
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let values = super::conversations::placeholders(chunk.len(), 3, |p| {
                format!("(${}, ${}, ${}, 'pending', 0, ${})", p, p + 1, p + 2, p + 1)
            });
            let sql = format!(
                "INSERT INTO inbox (connection_id, received_at, body, state, attempts, next_attempt_at) VALUES {values}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for item in chunk {
                query = query
                    .bind(item.connection_id.as_deref())
                    .bind(item.received_at)
                    .bind(item.body.as_ref());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due pending rows, oldest first. On SQLite (one processing process)
    /// they are read from the inbox file and `conn` is not used.
    ///
    /// On PostgreSQL several processes claim at once, and each connection's rows must still be
    /// applied in the order they arrived (a message before its status, an earlier message before
    /// a later one). So a claim first takes a transaction-scoped advisory lock per connection
    /// among the oldest due rows, skipping connections another process holds, and then locks the
    /// oldest due rows of the connections it got (bodies from the platform app's shared URL count
    /// as one source). While the transaction lasts no other process
    /// applies rows of those connections; other connections go on in parallel elsewhere.
    pub async fn claim_inbox_rows(
        &self,
        conn: &mut Conn,
        limit: i64,
        now: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let select = "SELECT id, connection_id, body, attempts, received_at FROM inbox
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2";
        let rows = if self.inbox.separate {
            sqlx::query(select)
                .bind(now)
                .bind(limit)
                .fetch_all(&self.inbox.read)
                .await?
        } else {
            // The CTE that takes the locks calls a volatile function, so PostgreSQL evaluates it
            // once per candidate connection and never inlines it into the outer query.
            let sql = format!(
                "WITH candidates AS (
                     SELECT DISTINCT source FROM (
                         SELECT COALESCE(connection_id, '') AS source FROM inbox
                         WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2
                     ) oldest
                 ), held AS (
                     SELECT source FROM candidates
                     WHERE pg_try_advisory_xact_lock({INBOX_LOCK_CLASS}, hashtext(source))
                 )
                 SELECT id, connection_id, body, attempts, received_at FROM inbox
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND COALESCE(connection_id, '') IN (SELECT source FROM held)
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        };
        rows.iter()
            .map(|r| {
                Ok(InboxRow {
                    id: col(r, "id")?,
                    connection_id: col(r, "connection_id")?,
                    body: col(r, "body")?,
                    attempts: col(r, "attempts")?,
                    received_at: col(r, "received_at")?,
                })
            })
            .collect()
    }

    /// Claims one row again in a fresh transaction, after its batch was rolled back (which let
    /// go of its locks): false when another process has it or its connection now, or it is no
    /// longer pending. Then it is not this process's to apply. On SQLite always true.
    pub async fn reclaim_inbox_row(&self, conn: &mut Conn, id: i64) -> Result<bool, StoreError> {
        if self.inbox.separate {
            return Ok(true);
        }
        let sql = format!(
            "SELECT id FROM inbox WHERE id = $1 AND state = 'pending'
               AND pg_try_advisory_xact_lock({INBOX_LOCK_CLASS}, hashtext(COALESCE(connection_id, '')))
             FOR UPDATE SKIP LOCKED"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some())
    }

    /// Marks applied rows done inside the transaction that applied them, where the inbox shares
    /// it (PostgreSQL). Call [`Store::confirm_inbox_done`] after the commit as well.
    pub async fn mark_inbox_done(
        &self,
        conn: &mut Conn,
        ids: &[i64],
        now: i64,
    ) -> Result<(), StoreError> {
        if self.inbox.separate {
            return Ok(());
        }
        mark_done(conn, ids, now).await
    }

    /// Marks applied rows done after the applying transaction committed, where the inbox is a
    /// database of its own (SQLite). Losing this write only means applying the rows again.
    pub async fn confirm_inbox_done(&self, ids: &[i64], now: i64) -> Result<(), StoreError> {
        if !self.inbox.separate || ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_inbox(false).await?;
        mark_done(&mut tx, ids, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt: the row waits until `next_attempt_at`, or is parked for good.
    pub async fn record_inbox_failure(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        park: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_inbox(true).await?;
        sqlx::query(
            "UPDATE inbox SET attempts = $2, next_attempt_at = $3, last_error = $4,
                 state = CASE WHEN $5 = 1 THEN 'parked' ELSE state END
             WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(i64::from(park))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many rows wait to be applied (due now or later).
    pub async fn inbox_pending_count(&self) -> Result<i64, StoreError> {
        // The state is written out, not bound, so PostgreSQL's generic plan can still use the
        // partial index on pending rows.
        let row = sqlx::query("SELECT COUNT(*) AS n FROM inbox WHERE state = 'pending'")
            .fetch_one(&self.inbox.read)
            .await?;
        col(&row, "n")
    }

    /// How many rows, of every connection, are in one state.
    pub async fn inbox_count_in_state(&self, state: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM inbox WHERE state = $1")
            .bind(state)
            .fetch_one(&self.inbox.read)
            .await?;
        col(&row, "n")
    }

    /// How many bodies the inbox holds in any state.
    pub async fn inbox_row_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM inbox")
            .fetch_one(&self.inbox.read)
            .await?;
        col(&row, "n")
    }

    /// The tenant's inbox rows in one state, newest first. Platform-app rows belong to no tenant
    /// and are not listed here.
    pub async fn inbox_entries(
        &self,
        tenant_id: &str,
        state: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let connection_ids = self.connection_ids(tenant_id).await?;
        if connection_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list =
            super::conversations::placeholders(connection_ids.len(), 1, |p| format!("${}", p + 3));
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM inbox
             WHERE state = $1 AND id < $2 AND connection_id IN ({list})
             ORDER BY id DESC LIMIT $3"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit);
        for id in &connection_ids {
            query = query.bind(id.as_str());
        }
        query
            .fetch_all(&self.inbox.read)
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// Puts a parked row of the tenant back in line; `None` when it is not theirs or not parked.
    pub async fn retry_inbox_entry(
        &self,
        tenant_id: &str,
        id: i64,
        now: i64,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let owner =
            sqlx::query("SELECT connection_id FROM inbox WHERE id = $1 AND state = 'parked'")
                .bind(id)
                .fetch_optional(&self.inbox.read)
                .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let Some(connection_id) = col::<Option<String>>(&owner, "connection_id")? else {
            return Ok(None);
        };
        if self.connection(tenant_id, &connection_id).await?.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin_inbox(true).await?;
        let result = sqlx::query(
            "UPDATE inbox SET state = 'pending', attempts = 0, next_attempt_at = $2
             WHERE id = $1 AND state = 'parked'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM inbox WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.inbox.read)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }
}

async fn mark_done(conn: &mut Conn, ids: &[i64], now: i64) -> Result<(), StoreError> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let list = super::conversations::placeholders(chunk.len(), 1, |p| format!("${}", p + 1));
        let sql = format!(
            "UPDATE inbox SET state = 'done', processed_at = $1, last_error = NULL WHERE id IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn entry_from_row(r: &AnyRow) -> Result<InboxEntry, StoreError> {
    Ok(InboxEntry {
        id: col(r, "id")?,
        connection_id: col(r, "connection_id")?,
        received_at: col(r, "received_at")?,
        state: col(r, "state")?,
        attempts: col(r, "attempts")?,
        next_attempt_at: col(r, "next_attempt_at")?,
        last_error: col(r, "last_error")?,
        processed_at: col(r, "processed_at")?,
        body_bytes: col(r, "body_bytes")?,
    })
}
