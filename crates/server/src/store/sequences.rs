//! Sequences (timed follow-ups), the contacts enrolled in them, and each enrollment's history.
//!
//! An enrollment moves forward only through [`Store::advance_enrollment`], which changes it only
//! when it is still at the step the caller ran: two runs of one step (a lease that lapsed, a
//! redelivered job) cannot both move it, so no step is counted or sent twice.

use std::collections::HashSet;

use sqlx::any::AnyRow;

use super::{Conn, Durability, Store, StoreError, WriteQuery, col};

/// Waiting for its next step's time.
pub const STATE_ACTIVE: &str = "active";
/// The next step is free text and the customer's window is closed; the customer writing resumes it.
pub const STATE_WAITING: &str = "waiting";
pub const STATE_COMPLETED: &str = "completed";
pub const STATE_STOPPED: &str = "stopped";

/// Why an enrollment stopped.
pub mod stop_reason {
    pub const REPLIED: &str = "replied";
    pub const OPTED_OUT: &str = "opted_out";
    pub const BY_HAND: &str = "by_hand";
    pub const SEQUENCE_DELETED: &str = "sequence_deleted";
    pub const SEND_FAILED: &str = "send_failed";
}

/// What an enrollment's history records.
pub mod event {
    pub const ENROLLED: &str = "enrolled";
    pub const SENT: &str = "sent";
    pub const WAITING: &str = "waiting_for_window";
    pub const RESUMED: &str = "resumed";
    pub const SKIPPED: &str = "skipped";
    pub const FAILED: &str = "failed";
    pub const STOPPED: &str = "stopped";
    pub const COMPLETED: &str = "completed";
}

#[derive(Debug, Clone)]
pub struct SequenceRow {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub name: String,
    /// JSON array of steps, as checked by `automation::steps`.
    pub steps: String,
    pub enroll_on_first_message: bool,
    pub stop_on_reply: bool,
    /// JSON array of words.
    pub opt_out_words: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SEQUENCE_COLUMNS: &str = "id, tenant_id, connection_id, name, steps, \
     enroll_on_first_message, stop_on_reply, opt_out_words, created_at, updated_at";

fn sequence_from_row(row: &AnyRow) -> Result<SequenceRow, StoreError> {
    Ok(SequenceRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        connection_id: col(row, "connection_id")?,
        name: col(row, "name")?,
        steps: col(row, "steps")?,
        enroll_on_first_message: col::<i64>(row, "enroll_on_first_message")? != 0,
        stop_on_reply: col::<i64>(row, "stop_on_reply")? != 0,
        opt_out_words: col(row, "opt_out_words")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct EnrollmentRow {
    pub id: String,
    pub tenant_id: String,
    pub sequence_id: String,
    pub connection_id: String,
    pub contact_id: String,
    pub contact_wa_id: String,
    pub state: String,
    /// Index of the next step to run.
    pub step: i64,
    pub next_run_at: Option<i64>,
    pub stopped_reason: Option<String>,
    pub enrolled_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EnrollmentRow {
    /// Still running: its steps will be sent, or it waits for the customer's window.
    pub fn is_live(&self) -> bool {
        self.state == STATE_ACTIVE || self.state == STATE_WAITING
    }
}

const ENROLLMENT_COLUMNS: &str = "id, tenant_id, sequence_id, connection_id, contact_id, \
     contact_wa_id, state, step, next_run_at, stopped_reason, enrolled_by, created_at, updated_at";

fn enrollment_from_row(row: &AnyRow) -> Result<EnrollmentRow, StoreError> {
    Ok(EnrollmentRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        sequence_id: col(row, "sequence_id")?,
        connection_id: col(row, "connection_id")?,
        contact_id: col(row, "contact_id")?,
        contact_wa_id: col(row, "contact_wa_id")?,
        state: col(row, "state")?,
        step: col(row, "step")?,
        next_run_at: col(row, "next_run_at")?,
        stopped_reason: col(row, "stopped_reason")?,
        enrolled_by: col(row, "enrolled_by")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct SequenceEventRow {
    pub step: Option<i64>,
    pub event: String,
    pub message_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: i64,
}

/// A history entry to record.
#[derive(Debug, Clone, Copy)]
pub struct NewSequenceEvent<'a> {
    pub enrollment_id: &'a str,
    pub step: Option<i64>,
    pub event: &'a str,
    pub message_id: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub now: i64,
}

/// Where an enrollment goes from the step it is at.
#[derive(Debug, Clone, Copy)]
pub struct Advance<'a> {
    pub from: i64,
    pub to: i64,
    pub state: &'a str,
    /// When the step `to` is due; `None` while waiting or once ended.
    pub next_run_at: Option<i64>,
}

/// How many enrollments of a sequence are in each state.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnrollmentCounts {
    pub active: i64,
    pub waiting: i64,
    pub completed: i64,
    pub stopped: i64,
}

impl Store {
    pub async fn insert_sequence(&self, row: &SequenceRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sequences (id, tenant_id, connection_id, name, steps,
                 enroll_on_first_message, stop_on_reply, opt_out_words, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.connection_id)
        .bind(&row.name)
        .bind(&row.steps)
        .bind(i64::from(row.enroll_on_first_message))
        .bind(i64::from(row.stop_on_reply))
        .bind(&row.opt_out_words)
        .bind(row.created_at)
        .bind(row.updated_at)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// Writes every field of a sequence but its id, tenant and creation time.
    pub async fn update_sequence(&self, row: &SequenceRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sequences SET connection_id = $3, name = $4, steps = $5,
                 enroll_on_first_message = $6, stop_on_reply = $7, opt_out_words = $8,
                 updated_at = $9
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.connection_id)
        .bind(&row.name)
        .bind(&row.steps)
        .bind(i64::from(row.enroll_on_first_message))
        .bind(i64::from(row.stop_on_reply))
        .bind(&row.opt_out_words)
        .bind(row.updated_at)
        .run_on(self, Durability::Full)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A sequence of the tenant that was not deleted.
    pub async fn sequence(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<SequenceRow>, StoreError> {
        let sql = format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(sequence_from_row)
            .transpose()
    }

    /// The tenant's sequences, oldest first.
    pub async fn sequences(&self, tenant_id: &str) -> Result<Vec<SequenceRow>, StoreError> {
        let sql = format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences
             WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(sequence_from_row)
            .collect()
    }

    /// The live sequences of a connection.
    pub async fn sequences_of_connection(
        &self,
        connection_id: &str,
    ) -> Result<Vec<SequenceRow>, StoreError> {
        let sql = format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences
             WHERE connection_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(connection_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(sequence_from_row)
            .collect()
    }

    /// Which of the connections have any live sequence or enrollment, so the inbound path queues
    /// sequence work only for connections that use them.
    pub async fn connections_using_sequences(
        &self,
        connection_ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let mut used = HashSet::new();
        for chunk in connection_ids.chunks(super::conversations::ROWS_PER_STATEMENT) {
            let list = super::conversations::placeholders(chunk.len(), 1, |p| format!("${p}"));
            let sql = format!(
                "SELECT connection_id FROM sequences
                 WHERE connection_id IN ({list}) AND deleted_at IS NULL
                 UNION
                 SELECT connection_id FROM sequence_enrollments
                 WHERE connection_id IN ({list}) AND state IN ('active', 'waiting')"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.reader()).await? {
                used.insert(col::<String>(&row, "connection_id")?);
            }
        }
        Ok(used)
    }

    /// Marks a sequence deleted and stops its live enrollments, in the caller's transaction.
    /// Returns the enrollments it stopped.
    pub async fn delete_sequence(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let done = sqlx::query(
            "UPDATE sequences SET deleted_at = $3, updated_at = $3
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let stopped: Vec<String> = sqlx::query(
            "UPDATE sequence_enrollments SET state = 'stopped', stopped_reason = $2,
                 next_run_at = NULL, updated_at = $3
             WHERE sequence_id = $1 AND state IN ('active', 'waiting')
             RETURNING id",
        )
        .bind(id)
        .bind(stop_reason::SEQUENCE_DELETED)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| col(r, "id"))
        .collect::<Result<_, _>>()?;
        Ok(Some(stopped))
    }

    /// Adds an enrollment in the caller's transaction; a unique violation means the contact is
    /// already in the sequence.
    pub async fn insert_enrollment(
        &self,
        conn: &mut Conn,
        row: &EnrollmentRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sequence_enrollments (id, tenant_id, sequence_id, connection_id, contact_id,
                 contact_wa_id, state, step, next_run_at, stopped_reason, enrolled_by, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.sequence_id)
        .bind(&row.connection_id)
        .bind(&row.contact_id)
        .bind(&row.contact_wa_id)
        .bind(&row.state)
        .bind(row.step)
        .bind(row.next_run_at)
        .bind(&row.stopped_reason)
        .bind(&row.enrolled_by)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn enrollment(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<EnrollmentRow>, StoreError> {
        let sql = format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments WHERE id = $1 AND tenant_id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(enrollment_from_row)
            .transpose()
    }

    /// A sequence's enrollments, newest first, optionally in one state; `before` is the
    /// `(created_at, id)` of the last one of the previous page.
    pub async fn enrollments(
        &self,
        sequence_id: &str,
        state: Option<&str>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<EnrollmentRow>, StoreError> {
        let (before_at, before_id) = before.unwrap_or((i64::MAX, String::new()));
        // Optional filters are spelled out rather than `$n IS NULL OR ...`, which PostgreSQL
        // cannot type.
        let state_filter = if state.is_some() {
            "AND state = $5"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments
             WHERE sequence_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3))
             {state_filter}
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let before_id = if before_id.is_empty() {
            "~".to_owned()
        } else {
            before_id
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sequence_id)
            .bind(before_at)
            .bind(before_id)
            .bind(limit);
        if let Some(state) = state {
            query = query.bind(state.to_owned());
        }
        query
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(enrollment_from_row)
            .collect()
    }

    /// A contact's enrollments through one connection (all states), newest first.
    pub async fn enrollments_of_contact(
        &self,
        connection_id: &str,
        contact_id: &str,
    ) -> Result<Vec<EnrollmentRow>, StoreError> {
        let sql = format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments
             WHERE connection_id = $1 AND contact_id = $2 ORDER BY created_at DESC, id DESC"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(connection_id)
            .bind(contact_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(enrollment_from_row)
            .collect()
    }

    /// Whether the contact once opted out of a sequence of this tenant.
    pub async fn contact_opted_out_of_sequences(
        &self,
        tenant_id: &str,
        contact_id: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM sequence_enrollments
             WHERE tenant_id = $1 AND contact_id = $2 AND stopped_reason = $3",
        )
        .bind(tenant_id)
        .bind(contact_id)
        .bind(stop_reason::OPTED_OUT)
        .fetch_one(self.reader())
        .await?;
        Ok(col::<i64>(&row, "n")? > 0)
    }

    pub async fn enrollment_counts(
        &self,
        sequence_id: &str,
    ) -> Result<EnrollmentCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM sequence_enrollments
             WHERE sequence_id = $1 GROUP BY state",
        )
        .bind(sequence_id)
        .fetch_all(self.reader())
        .await?;
        let mut counts = EnrollmentCounts::default();
        for row in &rows {
            let n: i64 = col(row, "n")?;
            match col::<String>(row, "state")?.as_str() {
                STATE_ACTIVE => counts.active = n,
                STATE_WAITING => counts.waiting = n,
                STATE_COMPLETED => counts.completed = n,
                STATE_STOPPED => counts.stopped = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// Moves a live enrollment that is still at step `move_.from` on. `false` when it moved on
    /// or stopped meanwhile.
    pub async fn advance_enrollment(
        &self,
        conn: &mut Conn,
        id: &str,
        move_: &Advance<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sequence_enrollments SET step = $3, state = $4, next_run_at = $5, updated_at = $6
             WHERE id = $1 AND step = $2 AND state IN ('active', 'waiting')",
        )
        .bind(id)
        .bind(move_.from)
        .bind(move_.to)
        .bind(move_.state)
        .bind(move_.next_run_at)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stops a live enrollment; `false` when it had already ended.
    pub async fn stop_enrollment(
        &self,
        conn: &mut Conn,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sequence_enrollments SET state = 'stopped', stopped_reason = $2,
                 next_run_at = NULL, updated_at = $3
             WHERE id = $1 AND state IN ('active', 'waiting')",
        )
        .bind(id)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_sequence_event(
        &self,
        conn: &mut Conn,
        event: &NewSequenceEvent<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sequence_events (id, enrollment_id, step, event, message_id, detail,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crate::ids::new_id())
        .bind(event.enrollment_id)
        .bind(event.step)
        .bind(event.event)
        .bind(event.message_id)
        .bind(event.detail)
        .bind(event.now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// An enrollment's history, oldest first.
    pub async fn sequence_events(
        &self,
        enrollment_id: &str,
    ) -> Result<Vec<SequenceEventRow>, StoreError> {
        sqlx::query(
            "SELECT step, event, message_id, detail, created_at FROM sequence_events
             WHERE enrollment_id = $1 ORDER BY created_at, id",
        )
        .bind(enrollment_id)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(SequenceEventRow {
                step: col(r, "step")?,
                event: col(r, "event")?,
                message_id: col(r, "message_id")?,
                detail: col(r, "detail")?,
                created_at: col(r, "created_at")?,
            })
        })
        .collect()
    }
}

impl Store {
    /// Whether a customer message came before `message` in its conversation (as wagate stored
    /// them): a contact's first message is the one with none before it.
    pub async fn earlier_inbound_exists(
        &self,
        conversation_id: &str,
        created_at: i64,
        id: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM messages
             WHERE conversation_id = $1 AND direction = 'inbound'
               AND (created_at < $2 OR (created_at = $2 AND id < $3))
             LIMIT 1",
        )
        .bind(conversation_id)
        .bind(created_at)
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    /// A live enrollment by id alone, for the scheduler (its job names the tenant).
    pub async fn enrollment_by_id(&self, id: &str) -> Result<Option<EnrollmentRow>, StoreError> {
        let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(enrollment_from_row)
            .transpose()
    }
}

impl Store {
    /// A contact's enrollments through any of the tenant's numbers, newest first.
    pub async fn contact_enrollments(
        &self,
        tenant_id: &str,
        contact_id: &str,
        limit: i64,
    ) -> Result<Vec<EnrollmentRow>, StoreError> {
        let sql = format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments
             WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(contact_id)
            .bind(limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(enrollment_from_row)
            .collect()
    }

    /// A sequence of the tenant by id, deleted or not, for showing old enrollments.
    pub async fn sequence_including_deleted(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<SequenceRow>, StoreError> {
        let sql =
            format!("SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE id = $1 AND tenant_id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(sequence_from_row)
            .transpose()
    }
}
