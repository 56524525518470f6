//! Messages, in and out. A wamid is stored once per connection, so a redelivered webhook changes
//! nothing; an outbound message's status only moves forward.

use sqlx::any::AnyRow;

use super::{Conn, Durability, Store, StoreError, WriteQuery, col};

pub const DIRECTION_INBOUND: &str = "inbound";
pub const DIRECTION_OUTBOUND: &str = "outbound";

/// The order statuses move in. `failed` is above everything: once failed, nothing moves it,
/// except a failure we only presumed: a send whose outcome never became known fails at the
/// `queued` rank, so Meta's own word about it (a late `sent`, `delivered` or `read`) still wins.
pub mod rank {
    pub const RECEIVED: i64 = 0;
    pub const QUEUED: i64 = 0;
    pub const FAILED_UNCONFIRMED: i64 = 0;
    pub const SENT: i64 = 1;
    pub const DELIVERED: i64 = 2;
    pub const READ: i64 = 3;
    pub const FAILED: i64 = 9;
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub conversation_id: String,
    pub contact_id: String,
    pub contact_wa_id: String,
    pub contact_name: Option<String>,
    pub direction: String,
    pub wamid: Option<String>,
    pub message_type: String,
    /// The message object as JSON text: Meta's own for inbound, the request's for outbound.
    pub payload: String,
    pub status: String,
    pub status_rank: i64,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub error_message: Option<String>,
    pub message_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Outbound: a Graph call is (or may have been) under way; see the migration's notes.
    pub send_started_at: Option<i64>,
    /// Outbound: Meta answered the send with a wamid.
    pub accepted_at: Option<i64>,
    /// The file the message carries, when it is one wagate fetched or stored.
    pub media: Option<MessageMedia>,
    /// Outbound: who queued it ("person", "assistant", "automation"); `None` for echoes and
    /// messages from before this was kept.
    pub sent_by: Option<String>,
    /// Outbound: when a scheduled send is to leave (Unix ms).
    pub send_at: Option<i64>,
    /// Outbound templates: the template's category when the send was queued.
    pub template_category: Option<String>,
}

/// What a message shows of its file: whether it is here yet, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMedia {
    pub id: String,
    /// `pending`, `stored` or `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<i64>,
    pub filename: Option<String>,
}

const SELECT: &str = "SELECT m.id, m.tenant_id, m.connection_id, m.conversation_id, m.contact_id,
        c.wa_id AS contact_wa_id, c.name AS contact_name, m.direction, m.wamid, m.type, m.payload,
        m.status, m.status_rank, m.error_code, m.error_title, m.error_message, m.message_at,
        m.created_at, m.updated_at, m.send_started_at, m.accepted_at, m.media_id, m.sent_by,
        m.send_at, m.template_category,
        md.status AS media_status, md.failure_reason AS media_failure_reason,
        md.mime_type AS media_mime_type, md.file_size AS media_file_size,
        md.filename AS media_filename
     FROM messages m JOIN contacts c ON c.id = m.contact_id
     LEFT JOIN media md ON md.id = m.media_id";

fn from_row(row: &AnyRow) -> Result<MessageRow, StoreError> {
    Ok(MessageRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        connection_id: col(row, "connection_id")?,
        conversation_id: col(row, "conversation_id")?,
        contact_id: col(row, "contact_id")?,
        contact_wa_id: col(row, "contact_wa_id")?,
        contact_name: col(row, "contact_name")?,
        direction: col(row, "direction")?,
        wamid: col(row, "wamid")?,
        message_type: col(row, "type")?,
        payload: col(row, "payload")?,
        status: col(row, "status")?,
        status_rank: col(row, "status_rank")?,
        error_code: col(row, "error_code")?,
        error_title: col(row, "error_title")?,
        error_message: col(row, "error_message")?,
        message_at: col(row, "message_at")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        send_started_at: col(row, "send_started_at")?,
        accepted_at: col(row, "accepted_at")?,
        media: match col::<Option<String>>(row, "media_id")? {
            Some(id) => Some(MessageMedia {
                id,
                status: col::<Option<String>>(row, "media_status")?
                    .unwrap_or_else(|| "pending".to_owned()),
                failure_reason: col(row, "media_failure_reason")?,
                mime_type: col(row, "media_mime_type")?,
                file_size: col(row, "media_file_size")?,
                filename: col(row, "media_filename")?,
            }),
            None => None,
        },
        sent_by: col(row, "sent_by")?,
        send_at: col(row, "send_at")?,
        template_category: col(row, "template_category")?,
    })
}

#[derive(Debug)]
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub conversation_id: &'a str,
    pub contact_id: &'a str,
    pub direction: &'a str,
    pub wamid: Option<&'a str>,
    pub message_type: &'a str,
    pub payload: &'a str,
    pub status: &'a str,
    pub status_rank: i64,
    pub message_at: i64,
    pub now: i64,
    /// The caller's key against sending twice (outbound from the API only).
    pub idempotency_key: Option<&'a str>,
    /// The file this message carries, when wagate keeps it.
    pub media_id: Option<&'a str>,
    /// Outbound: who queued it.
    pub sent_by: Option<&'a str>,
    /// Outbound: when a scheduled send is to leave.
    pub send_at: Option<i64>,
    /// Outbound templates: the template's category.
    pub template_category: Option<&'a str>,
}

/// Meta's error on a failed message, as shown to the user.
#[derive(Debug, Clone, Default)]
pub struct MessageError {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
}

/// A status change that took effect on a stored message.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub message_id: String,
    pub tenant_id: String,
    pub conversation_id: String,
    pub status: String,
}

/// Which messages to list; newest first.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub conversation_id: Option<String>,
    pub contact_wa_id: Option<String>,
    /// Continue after this position: `(message_at, id)` of the previous page's last message.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

impl Store {
    /// Moves an outbound message to `status` if that is forward of where it is; returns what changed.
    #[allow(clippy::too_many_arguments)]
    pub async fn advance_message_status(
        &self,
        conn: &mut Conn,
        connection_id: &str,
        wamid: &str,
        status: &str,
        status_rank: i64,
        error: Option<&MessageError>,
        now: i64,
    ) -> Result<Option<StatusChange>, StoreError> {
        let error = error.cloned().unwrap_or_default();
        let row = sqlx::query(
            "UPDATE messages SET status = $3, status_rank = $4,
                 error_code = CASE WHEN $5 IS NULL AND status = 'failed' THEN NULL
                     ELSE COALESCE($5, error_code) END,
                 error_title = CASE WHEN $6 IS NULL AND status = 'failed' THEN NULL
                     ELSE COALESCE($6, error_title) END,
                 error_message = CASE WHEN $7 IS NULL AND status = 'failed' THEN NULL
                     ELSE COALESCE($7, error_message) END,
                 updated_at = $8
             WHERE connection_id = $1 AND wamid = $2 AND direction = 'outbound' AND status_rank < $4
             RETURNING id, tenant_id, conversation_id",
        )
        .bind(connection_id)
        .bind(wamid)
        .bind(status)
        .bind(status_rank)
        .bind(error.code)
        .bind(error.title)
        .bind(error.message)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| {
            Ok(StatusChange {
                message_id: col(&r, "id")?,
                tenant_id: col(&r, "tenant_id")?,
                conversation_id: col(&r, "conversation_id")?,
                status: status.to_owned(),
            })
        })
        .transpose()
    }

    pub async fn message(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("{SELECT} WHERE m.tenant_id = $1 AND m.id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub async fn messages(
        &self,
        tenant_id: &str,
        query: &MessageQuery,
    ) -> Result<Vec<MessageRow>, StoreError> {
        // Filters are added only when asked for, so each shape of query keeps a usable index.
        let mut sql = format!("{SELECT} WHERE m.tenant_id = $1");
        if query.conversation_id.is_some() {
            sql.push_str(" AND m.conversation_id = $2");
        }
        if query.contact_wa_id.is_some() {
            sql.push_str(" AND c.wa_id = $3");
        }
        sql.push_str(
            " AND (m.message_at < $4 OR (m.message_at = $4 AND m.id < $5))
              ORDER BY m.message_at DESC, m.id DESC LIMIT $6",
        );
        let (before_at, before_id) = query.before.clone().unwrap_or((i64::MAX, String::new()));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(query.conversation_id.as_deref().unwrap_or(""))
            .bind(query.contact_wa_id.as_deref().unwrap_or(""))
            .bind(before_at)
            .bind(before_id)
            .bind(query.limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }
}

/// Parameters of one row of the multi-row insert.
const MESSAGE_PARAMETERS: usize = 18;
/// Rows per multi-row insert.
const MESSAGES_PER_STATEMENT: usize = 64;

impl Store {
    /// Inserts many messages, skipping wamids the connection already has; returns the ids of
    /// the rows actually inserted.
    pub async fn insert_messages(
        &self,
        conn: &mut Conn,
        messages: &[NewMessage<'_>],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut inserted = std::collections::HashSet::with_capacity(messages.len());
        for chunk in messages.chunks(MESSAGES_PER_STATEMENT) {
            let values = super::conversations::placeholders(chunk.len(), MESSAGE_PARAMETERS, |p| {
                let list: Vec<String> = (p..p + MESSAGE_PARAMETERS)
                    .map(|n| format!("${n}"))
                    .collect();
                format!("({}, ${})", list.join(", "), p + 12)
            });
            let sql = format!(
                "INSERT INTO messages (id, tenant_id, connection_id, conversation_id, contact_id,
                     direction, wamid, type, payload, status, status_rank, message_at, created_at,
                     idempotency_key, media_id, sent_by, send_at, template_category, updated_at)
                 VALUES {values}
                 ON CONFLICT (connection_id, wamid) DO NOTHING
                 RETURNING id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                query = query
                    .bind(m.id)
                    .bind(m.tenant_id)
                    .bind(m.connection_id)
                    .bind(m.conversation_id)
                    .bind(m.contact_id)
                    .bind(m.direction)
                    .bind(m.wamid)
                    .bind(m.message_type)
                    .bind(m.payload)
                    .bind(m.status)
                    .bind(m.status_rank)
                    .bind(m.message_at)
                    .bind(m.now)
                    .bind(m.idempotency_key)
                    .bind(m.media_id)
                    .bind(m.sent_by)
                    .bind(m.send_at)
                    .bind(m.template_category);
            }
            for row in query.fetch_all(&mut *conn).await? {
                inserted.insert(col(&row, "id")?);
            }
        }
        Ok(inserted)
    }
}

impl Store {
    /// The tenant's message sent earlier with this idempotency key.
    pub async fn message_by_idempotency_key(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        key: &str,
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("{SELECT} WHERE m.tenant_id = $1 AND m.idempotency_key = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Any tenant's message by id, for background work that already holds a trusted id.
    pub async fn message_by_id(&self, id: &str) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("{SELECT} WHERE m.id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// A message by id inside the caller's transaction.
    pub async fn message_by_id_in(
        &self,
        conn: &mut Conn,
        id: &str,
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("{SELECT} WHERE m.id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Notes that a Graph call for a queued message is about to go out; `false` when one already
    /// may have (so the outcome of that one is unknown) or the message is no longer queued.
    pub async fn mark_send_started(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE messages SET send_started_at = $2, updated_at = $2
             WHERE id = $1 AND status = 'queued' AND send_started_at IS NULL AND wamid IS NULL
               AND EXISTS (SELECT 1 FROM connections c
                           WHERE c.id = messages.connection_id AND c.status = 'connected')",
        )
        .bind(id)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Meta certainly did not take the message (it answered with an error): it may be sent again.
    pub async fn clear_send_started(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET send_started_at = NULL, updated_at = $2
             WHERE id = $1 AND wamid IS NULL",
        )
        .bind(id)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// Records the wamid Meta gave an outbound message (from its answer, or from a status webhook
    /// that carried our callback data); `false` when the message already had one.
    pub async fn adopt_wamid(
        &self,
        conn: &mut Conn,
        connection_id: &str,
        message_id: &str,
        wamid: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE messages SET wamid = $3, accepted_at = COALESCE(accepted_at, $4), updated_at = $4
             WHERE id = $1 AND connection_id = $2 AND direction = 'outbound' AND wamid IS NULL",
        )
        .bind(message_id)
        .bind(connection_id)
        .bind(wamid)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Fails an outbound message that has not failed yet, with the reason shown to the user.
    pub async fn fail_message(
        &self,
        id: &str,
        error: &MessageError,
        now: i64,
    ) -> Result<Option<StatusChange>, StoreError> {
        self.fail_at_rank(id, error, rank::FAILED, now).await
    }

    /// Fails a send still queued whose outcome Meta never confirmed: a status webhook about it
    /// that comes later still moves it on (see [`rank`]).
    pub async fn fail_unconfirmed_send(
        &self,
        id: &str,
        error: &MessageError,
        now: i64,
    ) -> Result<Option<StatusChange>, StoreError> {
        self.fail_at_rank(id, error, rank::FAILED_UNCONFIRMED, now)
            .await
    }

    async fn fail_at_rank(
        &self,
        id: &str,
        error: &MessageError,
        status_rank: i64,
        now: i64,
    ) -> Result<Option<StatusChange>, StoreError> {
        let row = sqlx::query(
            "UPDATE messages SET status = 'failed', status_rank = $2, error_code = $3,
                 error_title = $4, error_message = $5, updated_at = $6
             WHERE id = $1 AND status <> 'failed' AND status_rank <= $2
               AND (status_rank < $2 OR status = 'queued')
             RETURNING id, tenant_id, conversation_id",
        )
        .bind(id)
        .bind(status_rank)
        .bind(error.code)
        .bind(error.title.as_deref())
        .bind(error.message.as_deref())
        .bind(now)
        .fetch_optional_on(self, Durability::Full)
        .await?;
        row.map(|r| status_change(&r, "failed")).transpose()
    }

    /// Cancels one of the tenant's outbound messages that has not left yet (scheduled, or still
    /// waiting for its budget): it fails with the reason, and its job finds nothing to send.
    /// `None` when the message is not the tenant's or has already left.
    pub async fn cancel_queued_message(
        &self,
        tenant_id: &str,
        id: &str,
        error: &MessageError,
        now: i64,
    ) -> Result<Option<StatusChange>, StoreError> {
        let row = sqlx::query(
            "UPDATE messages SET status = 'failed', status_rank = $3, error_code = $4,
                 error_title = $5, error_message = $6, updated_at = $7
             WHERE tenant_id = $1 AND id = $2 AND direction = 'outbound' AND status = 'queued'
               AND wamid IS NULL AND send_started_at IS NULL
             RETURNING id, tenant_id, conversation_id",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(rank::FAILED)
        .bind(error.code)
        .bind(error.title.as_deref())
        .bind(error.message.as_deref())
        .bind(now)
        .fetch_optional_on(self, Durability::Full)
        .await?;
        row.map(|r| status_change(&r, "failed")).transpose()
    }

    /// Fails every queued send of a connection that has not gone out (its credentials were
    /// refused); returns what changed.
    pub async fn fail_queued_sends(
        &self,
        connection_id: &str,
        error: &MessageError,
        now: i64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        sqlx::query(
            "UPDATE messages SET status = 'failed', status_rank = $2, error_code = $3,
                 error_title = $4, error_message = $5, updated_at = $6
             WHERE connection_id = $1 AND status = 'queued' AND direction = 'outbound'
               AND wamid IS NULL AND send_started_at IS NULL
             RETURNING id, tenant_id, conversation_id",
        )
        .bind(connection_id)
        .bind(rank::FAILED)
        .bind(error.code)
        .bind(error.title.as_deref())
        .bind(error.message.as_deref())
        .bind(now)
        .fetch_all_on(self, Durability::Full)
        .await?
        .iter()
        .map(|r| status_change(r, "failed"))
        .collect()
    }
}

fn status_change(row: &AnyRow, status: &str) -> Result<StatusChange, StoreError> {
    Ok(StatusChange {
        message_id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        conversation_id: col(row, "conversation_id")?,
        status: status.to_owned(),
    })
}
