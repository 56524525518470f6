//! The auto-reply job: one per customer message the assistant may answer, queued by the inbound
//! processor in the transaction that stored the message.
//!
//! It reads everything from the database (settings, the conversation, its history), so any
//! process may run it and a restart loses nothing. The answer is queued through the one outbound
//! path with the idempotency key `assistant:<message id>`: however often the job runs, one
//! message gets at most one answer.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::{ChatMessage, ModelError};
use super::settings::AssistantSettings;
use super::{faq, language, phrases};
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::jobs::JobFailure;
use crate::outbound::enqueue::{Outbox, SendError, SendRequest, SentBy, enqueue};
use crate::phone::PhoneNumber;
use crate::realtime::{Event, EventBus, kind};
use crate::store::connections::{ConnectionRow, STATUS_DISCONNECTED};
use crate::store::jobs::{Job, NewJob};
use crate::store::messages::{DIRECTION_INBOUND, MessageQuery, MessageRow};
use crate::store::{Conn, Store, StoreError};
use crate::vault::SecretSlot;

pub const REPLY_JOB: &str = "assistant_reply";
/// Why a conversation is left to people when the customer asks for one.
pub const PAUSED_BY_CUSTOMER: &str = "the customer asked for a person";

#[derive(Debug, Serialize, Deserialize)]
struct ReplyPayload {
    message_id: String,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    Model,
    Faq,
    Fallback,
    HandOff,
}

impl AnswerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Faq => "faq",
            Self::Fallback => "fallback",
            Self::HandOff => "handoff",
        }
    }
}

/// Whether the assistant looks at a message of this type: what a customer writes or taps.
pub fn answers_type(message_type: &str) -> bool {
    matches!(message_type, "text" | "interactive" | "button")
}

/// Queues the answer to `message_id` inside the caller's transaction (once per message).
pub async fn enqueue_reply(
    store: &Store,
    conn: &mut Conn,
    tenant_id: &str,
    message_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&ReplyPayload {
        message_id: message_id.to_owned(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let unique_key = format!("{REPLY_JOB}:{message_id}");
    store
        .enqueue_job(
            conn,
            &NewJob {
                kind: REPLY_JOB,
                payload: &payload,
                tenant_id: Some(tenant_id),
                unique_key: Some(&unique_key),
                run_at: now,
                max_attempts: 5,
                now,
            },
        )
        .await
}

fn retry(error: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(error.to_string())
}

pub async fn run_reply(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: ReplyPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    let tenant_id = job
        .tenant_id
        .as_deref()
        .ok_or_else(|| JobFailure::Permanent("the job names no tenant".into()))?;
    let store = &state.store;
    let Some(message) = store
        .message_by_id(&payload.message_id)
        .await
        .map_err(retry)?
        .filter(|m| m.tenant_id == tenant_id && m.direction == DIRECTION_INBOUND)
    else {
        return Ok(());
    };
    let Some(connection) = store
        .connection(tenant_id, &message.connection_id)
        .await
        .map_err(retry)?
    else {
        return Ok(());
    };
    if !connection.auto_reply || connection.status == STATUS_DISCONNECTED {
        return skipped("auto_reply_off");
    }
    let Some(conversation) = store
        .conversation(tenant_id, &message.conversation_id)
        .await
        .map_err(retry)?
    else {
        return Ok(());
    };
    let now = now_ms();
    if conversation
        .assistant_paused_until
        .is_some_and(|until| until > now)
    {
        return skipped("person_handling");
    }
    let settings = store
        .assistant_settings(tenant_id, &connection.id)
        .await
        .map_err(retry)?
        .map(|row| AssistantSettings::from_row(&row))
        .unwrap_or_default();
    if settings.hours.as_ref().is_some_and(|h| !h.is_open(now)) {
        return skipped("outside_hours");
    }
    // The customer wrote again: the newer message is answered, with this one in its history.
    if store
        .newer_inbound_exists(&conversation.id, message.message_at, &message.id)
        .await
        .map_err(retry)?
    {
        return skipped("superseded");
    }
    let Some(said) = customer_text(&message) else {
        return skipped("nothing_to_answer");
    };
    let history = history(store, &message, settings.history_length).await?;
    let language = settings
        .reply_language
        .clone()
        .or_else(|| language::detect(&said).map(str::to_owned))
        .or_else(|| {
            history
                .iter()
                .rev()
                .filter(|m| m.role == "user")
                .find_map(|m| language::detect(&m.content))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "en".to_owned());

    if asks_for_person(&settings.handoff_phrases, &said) {
        let until = now + settings.pause_minutes * 60_000;
        store
            .set_assistant_pause(
                tenant_id,
                &conversation.id,
                Some((until, PAUSED_BY_CUSTOMER)),
                now,
            )
            .await
            .map_err(retry)?;
        publish_handler_change(
            &state.events,
            &conversation.id,
            tenant_id,
            Some(until),
            PAUSED_BY_CUSTOMER,
        );
        let text = phrases::handing_off(&language).to_owned();
        return send_answer(state, &connection, &message, text, AnswerSource::HandOff).await;
    }

    // Shows the customer an answer is coming while the model thinks; a lost indicator is harmless.
    if let Some(wamid) = &message.wamid
        && let Err(error) =
            crate::jobs::read_receipt::enqueue(state, tenant_id, &connection.id, wamid, true).await
    {
        tracing::debug!(error = %error, "could not queue the typing indicator");
    }

    let (text, source) = match ask_model(state, &connection, &settings, &language, &history).await {
        Some(Ok(text)) => (text, AnswerSource::Model),
        outcome => {
            if let Some(Err(error)) = outcome {
                metrics::counter!("wagate_assistant_model_failures_total").increment(1);
                tracing::warn!(connection_id = %connection.id, error = %error, "the model gave no answer; answering from the FAQ or the fallback");
            }
            match faq::best_match(&settings.faqs, &said) {
                Some(entry) => (entry.answer.clone(), AnswerSource::Faq),
                None => (
                    phrases::fallback(&language).to_owned(),
                    AnswerSource::Fallback,
                ),
            }
        }
    };
    send_answer(state, &connection, &message, text, source).await
}

fn skipped(reason: &'static str) -> Result<(), JobFailure> {
    metrics::counter!("wagate_assistant_skipped_total", "reason" => reason).increment(1);
    Ok(())
}

/// What the customer wrote or tapped, as text.
pub fn customer_text(message: &MessageRow) -> Option<String> {
    let payload: Value = serde_json::from_str(&message.payload).ok()?;
    let text = match message.message_type.as_str() {
        "text" => payload.pointer("/text/body").and_then(Value::as_str),
        "button" => payload.pointer("/button/text").and_then(Value::as_str),
        "interactive" => payload
            .pointer("/interactive/button_reply/title")
            .or_else(|| payload.pointer("/interactive/list_reply/title"))
            .and_then(Value::as_str),
        _ => None,
    }?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// What an outbound message said, for the model's history.
fn business_text(message: &MessageRow) -> Option<String> {
    let payload: Value = serde_json::from_str(&message.payload).ok()?;
    let object = payload.get(&message.message_type);
    let text = match message.message_type.as_str() {
        "text" => object
            .and_then(|o| o.get("body"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        "template" => Some(format!(
            "[template {}]",
            object
                .and_then(|o| o.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("?")
        )),
        other => Some(crate::views::preview(other, object)),
    }?;
    (!text.trim().is_empty()).then_some(text)
}

/// The conversation up to and including `message`, oldest first, as chat turns.
async fn history(
    store: &Store,
    message: &MessageRow,
    length: i64,
) -> Result<Vec<ChatMessage>, JobFailure> {
    let rows = store
        .messages(
            &message.tenant_id,
            &MessageQuery {
                conversation_id: Some(message.conversation_id.clone()),
                contact_wa_id: None,
                // Everything stored by the time the message being answered was. Meta's
                // timestamps have whole seconds and ours milliseconds, so an answer sent within
                // the customer's second would fall out of a cut at the message's own timestamp.
                before: Some((message.created_at.max(message.message_at), "~".to_owned())),
                limit: length.max(1),
            },
        )
        .await
        .map_err(retry)?;
    // In the order wagate saw them: Meta's whole-second timestamps would put an answer sent in
    // the same second as the customer's next message after it.
    let mut seen: Vec<&MessageRow> = rows.iter().collect();
    seen.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut turns: Vec<ChatMessage> = seen
        .into_iter()
        .filter(|m| m.status != "failed")
        .filter_map(|m| {
            if m.direction == DIRECTION_INBOUND {
                let text = customer_text(m).unwrap_or_else(|| {
                    let payload: Option<Value> = serde_json::from_str(&m.payload).ok();
                    crate::views::preview(
                        &m.message_type,
                        payload.as_ref().and_then(|p| p.get(&m.message_type)),
                    )
                });
                Some(ChatMessage {
                    role: "user",
                    content: text,
                })
            } else {
                business_text(m).map(|text| ChatMessage {
                    role: "assistant",
                    content: text,
                })
            }
        })
        .collect();
    if !rows.iter().any(|m| m.id == message.id) {
        // The page boundary missed it (it cannot, but the answer must be to this message).
        if let Some(text) = customer_text(message) {
            turns.push(ChatMessage {
                role: "user",
                content: text,
            });
        }
    }
    Ok(turns)
}

/// `None` when no model is configured; otherwise its answer or why there is none.
async fn ask_model(
    state: &AppState,
    connection: &ConnectionRow,
    settings: &AssistantSettings,
    language: &str,
    history: &[ChatMessage],
) -> Option<Result<String, ModelError>> {
    let provider = settings.provider.as_ref()?;
    let key: Option<SecretString> = match &settings.sealed_api_key {
        Some(sealed) => match state.vault.open(
            SecretSlot::new("assistant_settings", "provider_api_key", &connection.id),
            sealed,
        ) {
            Ok(key) => Some(key),
            Err(error) => {
                return Some(Err(ModelError::Unreachable(format!(
                    "the stored API key cannot be opened: {error}"
                ))));
            }
        },
        None => None,
    };
    let mut messages = vec![ChatMessage {
        role: "system",
        content: system_prompt(connection, settings, language),
    }];
    messages.extend(history.iter().cloned());
    let timeout = Duration::from_millis(settings.model_timeout_ms.max(1000) as u64);
    Some(
        state
            .model_client
            .complete(
                &provider.base_url,
                &provider.model,
                key.as_ref(),
                &messages,
                timeout,
            )
            .await,
    )
}

/// The model's instructions: the tenant's prompt, its facts and FAQ, and how to answer.
pub fn system_prompt(
    connection: &ConnectionRow,
    settings: &AssistantSettings,
    language: &str,
) -> String {
    let mut prompt = String::new();
    if settings.system_prompt.is_empty() {
        prompt.push_str(&format!(
            "You answer customers of {} on WhatsApp, briefly and politely.",
            connection.verified_name
        ));
    } else {
        prompt.push_str(&settings.system_prompt);
    }
    if !settings.business_facts.is_empty() {
        prompt.push_str("\n\nFacts about the business:\n");
        prompt.push_str(&settings.business_facts);
    }
    if !settings.faqs.is_empty() {
        prompt.push_str("\n\nFrequently asked questions:");
        for entry in &settings.faqs {
            prompt.push_str(&format!("\nQ: {}\nA: {}", entry.question, entry.answer));
        }
    }
    prompt.push_str(&format!(
        "\n\nReply in {}. Keep it short enough for a chat message. If you do not know, say a person will follow up; never invent prices, dates or policies.",
        language::name(language)
    ));
    prompt
}

/// Whether the customer asked for a person in so many words.
pub fn asks_for_person(phrases: &[String], said: &str) -> bool {
    let words = faq::words(said);
    phrases
        .iter()
        .any(|phrase| faq::contains_phrase(&words, phrase))
}

async fn send_answer(
    state: &AppState,
    connection: &ConnectionRow,
    message: &MessageRow,
    text: String,
    source: AnswerSource,
) -> Result<(), JobFailure> {
    let to = PhoneNumber::parse(&message.contact_wa_id)
        .map_err(|e| JobFailure::Permanent(format!("the customer's number does not read: {e}")))?;
    let validated = crate::outbound::validate::validate("text", Some(&json!({"body": text})))
        .map_err(|e| JobFailure::Permanent(e.summary()))?;
    let request = SendRequest {
        connection_id: Some(connection.id.clone()),
        to,
        message: validated,
        reply_to: None,
        idempotency_key: Some(format!("assistant:{}", message.id)),
        recipient_identity_key_hash: None,
        sent_by: SentBy::Assistant,
        send_at: None,
    };
    match enqueue(&Outbox::from_state(state), &message.tenant_id, request).await {
        Ok(enqueued) => {
            if !enqueued.replayed {
                metrics::counter!("wagate_assistant_answers_total", "source" => source.as_str())
                    .increment(1);
            }
            Ok(())
        }
        // A job that ran a day late: the window closed, and only people may follow up now.
        Err(SendError::OutsideServiceWindow { .. }) => skipped("window_closed"),
        Err(SendError::Store(error)) => Err(retry(error)),
        Err(other) => Err(JobFailure::Permanent(other.to_string())),
    }
}

/// Tells the tenant's screens who handles the conversation now.
pub fn publish_handler_change(
    events: &EventBus,
    conversation_id: &str,
    tenant_id: &str,
    paused_until: Option<i64>,
    reason: &str,
) {
    events.publish(Event {
        tenant_id: tenant_id.to_owned(),
        kind: kind::CONVERSATION_UPDATED,
        data: json!({
            "id": conversation_id,
            "assistant": {
                "paused_until": paused_until.map(crate::clock::rfc3339),
                "paused_reason": paused_until.map(|_| reason),
            },
        }),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_phrases_hand_off() {
        let phrases = vec!["agent".to_owned(), "real person".to_owned()];
        assert!(asks_for_person(&phrases, "Can I talk to an AGENT please?"));
        assert!(asks_for_person(&phrases, "I want a real person!"));
        assert!(!asks_for_person(&phrases, "my travel agency booked it"));
        assert!(!asks_for_person(&phrases, "a person"));
    }
}
