//! The inbox: raw webhook bodies exactly as Meta sent them, with their processing state.
//!
//! A body is appended before Meta gets its 200, and is never deleted by processing: a row is
//! `pending` until applied, then `done`; one that keeps failing is `parked` with its error.

use sqlx::any::AnyRow;

use super::{Backend, Conn, Store, StoreError, col};

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

/// Rows per INSERT statement: well under both databases' limits on bound parameters.
const ROWS_PER_INSERT: usize = 200;

impl Store {
    /// Appends bodies in one transaction; returns after the commit is durable.
    pub async fn append_to_inbox(&self, items: &[InboxAppend]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for chunk in items.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO inbox (connection_id, received_at, body, state, attempts, next_attempt_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = i * 3;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, 'pending', 0, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 2
                ));
            }
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

    /// Claims up to `limit` due pending rows, oldest first, inside the caller's transaction. On
    /// PostgreSQL rows another process holds are skipped, so processes never apply a row twice.
    pub async fn claim_inbox_rows(
        &self,
        conn: &mut Conn,
        limit: i64,
        now: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT id, connection_id, body, attempts, received_at FROM inbox
                 WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
            }
            Backend::Postgres => {
                "SELECT id, connection_id, body, attempts, received_at FROM inbox
                 WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2
                 FOR UPDATE SKIP LOCKED"
            }
        };
        sqlx::query(sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
            .iter()
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

    /// Marks rows applied, inside the transaction that applied them.
    pub async fn mark_inbox_done(
        &self,
        conn: &mut Conn,
        ids: &[i64],
        now: i64,
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE inbox SET state = 'done', processed_at = $1, last_error = NULL WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&mut *conn).await?;
        }
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// How many rows wait to be applied (due now or later).
    pub async fn inbox_pending_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM inbox WHERE state = 'pending'")
            .fetch_one(self.reader())
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
        sqlx::query(
            "SELECT i.id, i.connection_id, i.received_at, i.state, i.attempts, i.next_attempt_at,
                    i.last_error, i.processed_at, LENGTH(i.body) AS body_bytes
             FROM inbox i JOIN connections c ON c.id = i.connection_id
             WHERE c.tenant_id = $1 AND i.state = $2 AND i.id < $3
             ORDER BY i.id DESC LIMIT $4",
        )
        .bind(tenant_id)
        .bind(state)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
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
        let result = sqlx::query(
            "UPDATE inbox SET state = 'pending', attempts = 0, next_attempt_at = $3
             WHERE id = $2 AND state = 'parked'
               AND connection_id IN (SELECT id FROM connections WHERE tenant_id = $1)",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, connection_id, received_at, state, attempts, next_attempt_at, last_error,
                    processed_at, LENGTH(body) AS body_bytes
             FROM inbox WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(entry_from_row).transpose()
    }
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
