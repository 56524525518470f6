//! Contacts and conversations: one conversation per connection and customer, with its unread
//! count, last message, and the 24-hour service window that the customer's last message opened.

use sqlx::any::AnyRow;

use super::{Conn, Durability, Store, StoreError, WriteQuery, col};
use crate::clock::SERVICE_WINDOW_MS;

#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub contact_id: String,
    pub contact_wa_id: String,
    pub contact_name: Option<String>,
    pub unread_count: i64,
    pub last_message_at: Option<i64>,
    pub last_message_preview: Option<String>,
    pub last_inbound_at: Option<i64>,
    pub last_inbound_wamid: Option<String>,
    pub window_expires_at: Option<i64>,
    /// Until when the assistant leaves this conversation to people, and why.
    pub assistant_paused_until: Option<i64>,
    pub assistant_paused_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str =
    "SELECT v.id, v.tenant_id, v.connection_id, v.contact_id, c.wa_id AS contact_wa_id,
        c.name AS contact_name, v.unread_count, v.last_message_at, v.last_message_preview,
        v.last_inbound_at, v.last_inbound_wamid, v.window_expires_at, v.assistant_paused_until,
        v.assistant_paused_reason, v.created_at, v.updated_at
     FROM conversations v JOIN contacts c ON c.id = v.contact_id";

fn from_row(row: &AnyRow) -> Result<ConversationRow, StoreError> {
    Ok(ConversationRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        connection_id: col(row, "connection_id")?,
        contact_id: col(row, "contact_id")?,
        contact_wa_id: col(row, "contact_wa_id")?,
        contact_name: col(row, "contact_name")?,
        unread_count: col(row, "unread_count")?,
        last_message_at: col(row, "last_message_at")?,
        last_message_preview: col(row, "last_message_preview")?,
        last_inbound_at: col(row, "last_inbound_at")?,
        last_inbound_wamid: col(row, "last_inbound_wamid")?,
        window_expires_at: col(row, "window_expires_at")?,
        assistant_paused_until: col(row, "assistant_paused_until")?,
        assistant_paused_reason: col(row, "assistant_paused_reason")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// What a new message changes on its conversation.
#[derive(Debug)]
pub struct ConversationTouch<'a> {
    pub conversation_id: &'a str,
    /// The message's own time (Meta's timestamp), not when it reached us.
    pub message_at: i64,
    pub preview: &'a str,
    /// Added to the unread count.
    pub unread_added: i64,
    /// The newest customer message that opens or extends the service window: its time and wamid.
    pub inbound: Option<(i64, &'a str)>,
    pub now: i64,
}

/// A page of conversations, newest activity first.
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub unread_only: bool,
    /// Part of the contact's name (any case) or number.
    pub search: Option<String>,
    /// Continue after this conversation (its id from the previous page's `next_before`).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

impl Store {
    /// When a conversation's service window closes, read inside the caller's transaction.
    pub async fn conversation_window(
        &self,
        conn: &mut Conn,
        conversation_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT window_expires_at FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(row) => col(&row, "window_expires_at")?,
            None => None,
        })
    }

    pub async fn conversation(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ConversationRow>, StoreError> {
        let sql = format!("{SELECT} WHERE v.tenant_id = $1 AND v.id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub async fn conversations(
        &self,
        tenant_id: &str,
        query: &ConversationQuery,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let mut sql = format!("{SELECT} WHERE v.tenant_id = $1");
        if query.unread_only {
            sql.push_str(" AND v.unread_count > 0");
        }
        sql.push_str(" AND (v.last_message_at < $2 OR (v.last_message_at = $2 AND v.id < $3))");
        let pattern = query.search.as_deref().map(like_pattern);
        if pattern.is_some() {
            sql.push_str(
                " AND (LOWER(COALESCE(c.name, '')) LIKE $5 ESCAPE '\\' OR c.wa_id LIKE $5 ESCAPE '\\')",
            );
        }
        sql.push_str(" ORDER BY v.last_message_at DESC, v.id DESC LIMIT $4");
        let (before_at, before_id) = query.before.clone().unwrap_or((i64::MAX, String::new()));
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(before_at)
            .bind(before_id)
            .bind(query.limit);
        if let Some(pattern) = pattern {
            statement = statement.bind(pattern);
        }
        statement
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Zeroes the unread count; returns the conversation after it (with the last inbound wamid,
    /// which is what Meta's read receipt names).
    pub async fn mark_conversation_read(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<ConversationRow>, StoreError> {
        let result = sqlx::query(
            "UPDATE conversations SET unread_count = 0, updated_at = $3
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        self.conversation(tenant_id, id).await
    }

    /// Unread messages across all the tenant's conversations.
    pub async fn unread_total(&self, tenant_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(unread_count), 0) AS BIGINT) AS n FROM conversations WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_one(self.reader())
        .await?;
        col(&row, "n")
    }
}

/// `%text%` for LIKE, lower-cased, with LIKE's own characters taken literally. A search for a
/// number written with spaces or a `+` matches the digits.
pub(super) fn like_pattern(search: &str) -> String {
    let trimmed = search.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let looks_like_number = !digits.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let text = if looks_like_number {
        digits
    } else {
        trimmed.to_lowercase()
    };
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Rows per multi-row statement: well under both databases' limits on bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 100;

/// A contact to create or refresh in bulk.
#[derive(Debug, Clone)]
pub struct ContactUpsert<'a> {
    pub tenant_id: &'a str,
    pub wa_id: &'a str,
    /// WhatsApp's profile name; it never replaces a name a person gave the contact.
    pub name: Option<&'a str>,
    /// Where a contact made here came from (`crate::contacts::source`); an existing one keeps its own.
    pub source: &'a str,
}

/// A conversation to find or create in bulk.
#[derive(Debug, Clone)]
pub struct ConversationUpsert<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub contact_id: &'a str,
    pub message_at: i64,
}

impl Store {
    /// Creates or refreshes many contacts in few statements; returns `((tenant_id, wa_id), id)`.
    /// Each `(tenant_id, wa_id)` must appear once.
    pub async fn upsert_contacts(
        &self,
        conn: &mut Conn,
        contacts: &[ContactUpsert<'_>],
        now: i64,
    ) -> Result<Vec<((String, String), String)>, StoreError> {
        let mut out = Vec::with_capacity(contacts.len());
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            let values = placeholders(chunk.len(), 6, |p| {
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 5
                )
            });
            let sql = format!(
                "INSERT INTO contacts (id, tenant_id, wa_id, name, source, created_at, updated_at) VALUES {values}
                 ON CONFLICT (tenant_id, wa_id) DO UPDATE
                     SET name = CASE WHEN contacts.name_set = 1 THEN contacts.name
                                     ELSE COALESCE(excluded.name, contacts.name) END,
                         updated_at = excluded.updated_at
                 RETURNING id, tenant_id, wa_id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                query = query
                    .bind(crate::ids::new_id())
                    .bind(c.tenant_id)
                    .bind(c.wa_id)
                    .bind(c.name)
                    .bind(c.source)
                    .bind(now);
            }
            for row in query.fetch_all(&mut *conn).await? {
                out.push((
                    (col(&row, "tenant_id")?, col(&row, "wa_id")?),
                    col(&row, "id")?,
                ));
            }
        }
        Ok(out)
    }

    /// Finds or creates many conversations in few statements; returns
    /// `((connection_id, contact_id), id)`. Each pair must appear once.
    pub async fn upsert_conversations(
        &self,
        conn: &mut Conn,
        conversations: &[ConversationUpsert<'_>],
        now: i64,
    ) -> Result<Vec<((String, String), String)>, StoreError> {
        let mut out = Vec::with_capacity(conversations.len());
        for chunk in conversations.chunks(ROWS_PER_STATEMENT) {
            let values = placeholders(chunk.len(), 6, |p| {
                format!(
                    "(${}, ${}, ${}, ${}, 0, ${}, ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 5
                )
            });
            let sql = format!(
                "INSERT INTO conversations (id, tenant_id, connection_id, contact_id, unread_count,
                     last_message_at, created_at, updated_at) VALUES {values}
                 ON CONFLICT (connection_id, contact_id) DO UPDATE SET updated_at = excluded.updated_at
                 RETURNING id, connection_id, contact_id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                query = query
                    .bind(crate::ids::new_id())
                    .bind(c.tenant_id)
                    .bind(c.connection_id)
                    .bind(c.contact_id)
                    .bind(c.message_at)
                    .bind(now);
            }
            for row in query.fetch_all(&mut *conn).await? {
                out.push((
                    (col(&row, "connection_id")?, col(&row, "contact_id")?),
                    col(&row, "id")?,
                ));
            }
        }
        Ok(out)
    }

    /// Folds new messages into their conversations, one row per conversation. Times only move
    /// forward, so messages applied out of order leave the newest one as the preview and the
    /// window at its latest. Each conversation must appear once.
    pub async fn touch_conversations(
        &self,
        conn: &mut Conn,
        touches: &[ConversationTouch<'_>],
    ) -> Result<(), StoreError> {
        for chunk in touches.chunks(ROWS_PER_STATEMENT) {
            let values = placeholders(chunk.len(), 7, |p| {
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6
                )
            });
            let window = SERVICE_WINDOW_MS;
            let sql = format!(
                "WITH t (id, unread, at, preview, inbound_at, inbound_wamid, now) AS (VALUES {values})
                 UPDATE conversations SET
                     unread_count = conversations.unread_count + t.unread,
                     last_message_preview = CASE WHEN COALESCE(conversations.last_message_at, 0) <= t.at
                         THEN t.preview ELSE conversations.last_message_preview END,
                     last_message_at = CASE WHEN COALESCE(conversations.last_message_at, 0) <= t.at
                         THEN t.at ELSE conversations.last_message_at END,
                     last_inbound_wamid = CASE WHEN t.inbound_at >= 0
                             AND COALESCE(conversations.last_inbound_at, 0) <= t.inbound_at
                         THEN t.inbound_wamid ELSE conversations.last_inbound_wamid END,
                     window_expires_at = CASE WHEN t.inbound_at >= 0
                             AND COALESCE(conversations.last_inbound_at, 0) <= t.inbound_at
                         THEN t.inbound_at + {window} ELSE conversations.window_expires_at END,
                     last_inbound_at = CASE WHEN t.inbound_at >= 0
                             AND COALESCE(conversations.last_inbound_at, 0) <= t.inbound_at
                         THEN t.inbound_at ELSE conversations.last_inbound_at END,
                     updated_at = t.now
                 FROM t WHERE conversations.id = t.id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for touch in chunk {
                let (inbound_at, inbound_wamid) = match touch.inbound {
                    Some((at, wamid)) => (at, Some(wamid)),
                    None => (-1, None),
                };
                query = query
                    .bind(touch.conversation_id)
                    .bind(touch.unread_added)
                    .bind(touch.message_at)
                    .bind(touch.preview)
                    .bind(inbound_at)
                    .bind(inbound_wamid)
                    .bind(touch.now);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// `rows` groups of placeholders, `per_row` parameters each, numbered from `$1`.
pub(crate) fn placeholders(rows: usize, per_row: usize, group: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|i| group(i * per_row + 1))
        .collect::<Vec<_>>()
        .join(", ")
}
