//! Auto-replies: per-connection settings, an OpenAI-compatible model client, FAQ answers, a polite
//! fallback in the customer's language, and hand-off to people.
//!
//! The inbound processor queues a reply job for each customer message of a connection with
//! `auto_reply` on ([`reply::enqueue_reply`]); the job decides whether and how to answer and sends
//! through `outbound::enqueue` like everyone else. A person's answer (dashboard or API) pauses the
//! assistant on that conversation in the same transaction that queues it.

pub mod client;
pub mod faq;
pub mod hours;
pub mod language;
pub mod phrases;
pub mod reply;
pub mod settings;

use crate::clock::now_ms;
use crate::store::assistant::{AssistantSettingsRow, KeyChange};
use crate::store::{Store, StoreError};
use crate::vault::{SecretSlot, Vault};

use settings::{ApiKeyInput, AssistantSettings, SettingsInput};

/// Saves `input` for the connection (sealing a new model key) and answers what is stored now.
pub async fn save_settings(
    store: &Store,
    vault: &Vault,
    tenant_id: &str,
    connection_id: &str,
    input: &SettingsInput,
) -> Result<AssistantSettings, StoreError> {
    let s = &input.settings;
    let key = match (&s.provider, &input.api_key) {
        (None, _) | (Some(_), ApiKeyInput::Clear) => KeyChange::Clear,
        (Some(_), ApiKeyInput::Set(key)) => KeyChange::Set(vault.seal(
            SecretSlot::new("assistant_settings", "provider_api_key", connection_id),
            key,
        )),
        (Some(_), ApiKeyInput::Keep) => KeyChange::Keep,
    };
    let now = now_ms();
    let row = AssistantSettingsRow {
        connection_id: connection_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        system_prompt: s.system_prompt.clone(),
        business_facts: s.business_facts.clone(),
        faqs: serde_json::to_string(&s.faqs).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        reply_language: s.reply_language.clone(),
        provider_base_url: s.provider.as_ref().map(|p| p.base_url.clone()),
        provider_model: s.provider.as_ref().map(|p| p.model.clone()),
        provider_api_key: None,
        history_length: s.history_length,
        hours: s
            .hours
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        handoff_phrases: serde_json::to_string(&s.handoff_phrases)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        pause_minutes: s.pause_minutes,
        model_timeout_ms: s.model_timeout_ms,
        created_at: now,
        updated_at: now,
    };
    let stored = store.put_assistant_settings(&row, &key).await?;
    Ok(AssistantSettings::from_row(&stored))
}
