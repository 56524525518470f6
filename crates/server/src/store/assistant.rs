//! The assistant's settings per connection, and who handles each conversation (the assistant, or
//! a person for a while).

use sqlx::any::AnyRow;

use super::{Conn, Durability, Store, StoreError, WriteQuery, col};

/// A connection's assistant settings as stored; the model's API key is still sealed.
#[derive(Clone)]
pub struct AssistantSettingsRow {
    pub connection_id: String,
    pub tenant_id: String,
    pub system_prompt: String,
    pub business_facts: String,
    /// JSON array of FAQ entries.
    pub faqs: String,
    pub reply_language: Option<String>,
    pub provider_base_url: Option<String>,
    pub provider_model: Option<String>,
    pub provider_api_key: Option<Vec<u8>>,
    pub history_length: i64,
    /// JSON opening hours, or `None` for always.
    pub hours: Option<String>,
    /// JSON array of phrases.
    pub handoff_phrases: String,
    pub pause_minutes: i64,
    pub model_timeout_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

// The sealed key is bytes, but a Debug of the row still leaves it out.
impl std::fmt::Debug for AssistantSettingsRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssistantSettingsRow")
            .field("connection_id", &self.connection_id)
            .field("provider_base_url", &self.provider_base_url)
            .field("provider_model", &self.provider_model)
            .finish_non_exhaustive()
    }
}

/// What happens to the stored model key when settings are saved.
#[derive(Debug, Clone)]
pub enum KeyChange {
    Keep,
    Set(Vec<u8>),
    Clear,
}

const COLUMNS: &str = "connection_id, tenant_id, system_prompt, business_facts, faqs, \
     reply_language, provider_base_url, provider_model, provider_api_key, history_length, hours, \
     handoff_phrases, pause_minutes, model_timeout_ms, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<AssistantSettingsRow, StoreError> {
    Ok(AssistantSettingsRow {
        connection_id: col(row, "connection_id")?,
        tenant_id: col(row, "tenant_id")?,
        system_prompt: col(row, "system_prompt")?,
        business_facts: col(row, "business_facts")?,
        faqs: col(row, "faqs")?,
        reply_language: col(row, "reply_language")?,
        provider_base_url: col(row, "provider_base_url")?,
        provider_model: col(row, "provider_model")?,
        provider_api_key: col(row, "provider_api_key")?,
        history_length: col(row, "history_length")?,
        hours: col(row, "hours")?,
        handoff_phrases: col(row, "handoff_phrases")?,
        pause_minutes: col(row, "pause_minutes")?,
        model_timeout_ms: col(row, "model_timeout_ms")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

impl Store {
    /// The connection's assistant settings; `None` when they were never saved (defaults apply).
    pub async fn assistant_settings(
        &self,
        tenant_id: &str,
        connection_id: &str,
    ) -> Result<Option<AssistantSettingsRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM assistant_settings WHERE tenant_id = $1 AND connection_id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(connection_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Saves the settings whole (the model key as `key` says) and answers what is stored now.
    pub async fn put_assistant_settings(
        &self,
        row: &AssistantSettingsRow,
        key: &KeyChange,
    ) -> Result<AssistantSettingsRow, StoreError> {
        let (key_bytes, clear) = match key {
            KeyChange::Keep => (None, 0i64),
            KeyChange::Set(bytes) => (Some(bytes.clone()), 0),
            KeyChange::Clear => (None, 1),
        };
        let sql = format!(
            "INSERT INTO assistant_settings ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
             ON CONFLICT (connection_id) DO UPDATE SET
                 system_prompt = excluded.system_prompt,
                 business_facts = excluded.business_facts,
                 faqs = excluded.faqs,
                 reply_language = excluded.reply_language,
                 provider_base_url = excluded.provider_base_url,
                 provider_model = excluded.provider_model,
                 provider_api_key = CASE WHEN $16 = 1 THEN NULL
                     ELSE COALESCE(excluded.provider_api_key, assistant_settings.provider_api_key) END,
                 history_length = excluded.history_length,
                 hours = excluded.hours,
                 handoff_phrases = excluded.handoff_phrases,
                 pause_minutes = excluded.pause_minutes,
                 model_timeout_ms = excluded.model_timeout_ms,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        let stored = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&row.connection_id)
            .bind(&row.tenant_id)
            .bind(&row.system_prompt)
            .bind(&row.business_facts)
            .bind(&row.faqs)
            .bind(&row.reply_language)
            .bind(&row.provider_base_url)
            .bind(&row.provider_model)
            .bind(key_bytes)
            .bind(row.history_length)
            .bind(&row.hours)
            .bind(&row.handoff_phrases)
            .bind(row.pause_minutes)
            .bind(row.model_timeout_ms)
            .bind(row.updated_at)
            .bind(clear)
            .fetch_optional_on(self, Durability::Full)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt("saving assistant settings returned nothing".into())
            })?;
        from_row(&stored)
    }

    /// Leaves the conversation to people until `until` (inside the caller's transaction), so a
    /// person's answer and the pause commit together.
    pub async fn pause_assistant_in(
        &self,
        conn: &mut Conn,
        conversation_id: &str,
        until: i64,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE conversations SET assistant_paused_until = $2, assistant_paused_reason = $3,
                 updated_at = $4
             WHERE id = $1",
        )
        .bind(conversation_id)
        .bind(until)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Pauses (`Some(until)`) or resumes (`None`) the assistant on the tenant's conversation;
    /// `false` when there is no such conversation.
    pub async fn set_assistant_pause(
        &self,
        tenant_id: &str,
        conversation_id: &str,
        pause: Option<(i64, &str)>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE conversations SET assistant_paused_until = $3, assistant_paused_reason = $4,
                 updated_at = $5
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(pause.map(|(until, _)| until))
        .bind(pause.map(|(_, reason)| reason.to_owned()))
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Whether the customer wrote again after the message at `(message_at, id)`: the assistant
    /// then answers the newer message (with this one in its history) instead of both.
    pub async fn newer_inbound_exists(
        &self,
        conversation_id: &str,
        message_at: i64,
        id: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM messages
             WHERE conversation_id = $1 AND direction = 'inbound'
               AND (message_at > $2 OR (message_at = $2 AND id > $3))
             LIMIT 1",
        )
        .bind(conversation_id)
        .bind(message_at)
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }
}
