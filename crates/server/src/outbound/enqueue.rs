//! `enqueue`: the one way a message is sent. It checks the request, the connection, the reply
//! target and the 24-hour service window, then writes the message (`queued`) and its send job in
//! one transaction, so a message is never accepted without the job that will send it.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::validate::{ValidatedMessage, validate};
use crate::clock::{now_ms, rfc3339};
use crate::limits::RateLimiter;
use crate::phone::PhoneNumber;
use crate::realtime::{Event, EventBus, kind};
use crate::store::connections::{ConnectionRow, STATUS_CONNECTED, STATUS_NEEDS_REAUTH};
use crate::store::conversations::{ContactUpsert, ConversationTouch, ConversationUpsert};
use crate::store::jobs::NewJob;
use crate::store::media::MediaRow;
use crate::store::messages::{DIRECTION_OUTBOUND, MessageMedia, MessageRow, NewMessage, rank};
use crate::store::{Store, StoreError};
use crate::validation::FieldErrors;
use crate::views;

/// The job kind that sends a message.
pub const SEND_JOB: &str = "send_message";

/// Keys of a send request besides the type object.
const REQUEST_KEYS: [&str; 9] = [
    "connection_id",
    "send_at",
    "to",
    "type",
    "context",
    "idempotency_key",
    "messaging_product",
    "recipient_type",
    "recipient_identity_key_hash",
];

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// How far ahead a send may be scheduled: Meta changes templates, and a business its plans,
/// long before a year is out; a broadcast for a season is set up closer to it.
pub const MAX_SCHEDULE_AHEAD_MS: i64 = 90 * 24 * crate::clock::HOUR_MS;
/// A `send_at` this little in the past is a clock a moment behind ours: the message leaves now.
const SEND_AT_PAST_TOLERANCE_MS: i64 = 60_000;

/// A send request, parsed: who from, who to, and the message checked against Meta's rules.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub connection_id: Option<String>,
    pub to: PhoneNumber,
    pub message: ValidatedMessage,
    /// What the message replies to: our message id, or a wamid.
    pub reply_to: Option<String>,
    pub idempotency_key: Option<String>,
    /// Meta's check that the customer's identity has not changed since the business last saw it.
    pub recipient_identity_key_hash: Option<String>,
    /// Who is sending: a person's answer also pauses the assistant on the conversation.
    pub sent_by: SentBy,
    /// When a scheduled send is to leave (Unix ms); `None` to send at once.
    pub send_at: Option<i64>,
}

/// Who queued a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentBy {
    /// Someone at the business, from the dashboard or the API.
    Person,
    Assistant,
    Automation,
}

impl SentBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Assistant => "assistant",
            Self::Automation => "automation",
        }
    }
}

impl SendRequest {
    /// Reads `POST /api/v1/messages`: `{"connection_id"?, "to", "type", <type object>, "context"?,
    /// "idempotency_key"?}`, in Cloud API's own shape. Every problem is reported at once.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(body) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(errors);
        };
        let text = |key: &str| body.get(key).and_then(Value::as_str);
        let connection_id = match body.get("connection_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_owned()),
            Some(_) => {
                errors.add("connection_id", "must be a connection id (a string)");
                None
            }
        };
        let to = match text("to") {
            Some(to) => PhoneNumber::parse(to)
                .map_err(|e| errors.add("to", e.to_string()))
                .ok(),
            None => {
                errors.add(
                    "to",
                    "is required: the customer's phone number, in any common format",
                );
                None
            }
        };
        if let Some(product) = body.get("messaging_product")
            && product != "whatsapp"
        {
            errors.add("messaging_product", "must be \"whatsapp\" when given");
        }
        if let Some(kind) = body.get("recipient_type")
            && kind != "individual"
        {
            errors.add("recipient_type", "must be \"individual\" when given");
        }
        let message_type = match text("type") {
            Some(kind) => Some(kind.to_owned()),
            None => {
                errors.add(
                    "type",
                    "is required: text, image, video, audio, document, sticker, location, contacts, interactive, template or reaction",
                );
                None
            }
        };
        let message = message_type.as_deref().and_then(|kind| {
            validate(kind, body.get(kind))
                .map_err(|found| merge(&mut errors, found))
                .ok()
        });
        for key in body.keys() {
            if !REQUEST_KEYS.contains(&key.as_str())
                && Some(key.as_str()) != message_type.as_deref()
            {
                errors.add(
                    key.clone(),
                    "is not a field of a send request (the type object goes under the key named by `type`)",
                );
            }
        }
        let reply_to = match body.get("context") {
            None | Some(Value::Null) => None,
            Some(context) => match context.get("message_id").and_then(Value::as_str) {
                Some(id) if !id.trim().is_empty() => Some(id.trim().to_owned()),
                _ => {
                    errors.add(
                        "context.message_id",
                        "is required in context: the id or wamid of the message to reply to",
                    );
                    None
                }
            },
        };
        let idempotency_key = match body.get("idempotency_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(key))
                if !key.is_empty() && key.chars().count() <= MAX_IDEMPOTENCY_KEY =>
            {
                Some(key.clone())
            }
            Some(_) => {
                errors.add_limit(
                    "idempotency_key",
                    format!("must be a string of 1 to {MAX_IDEMPOTENCY_KEY} characters"),
                    MAX_IDEMPOTENCY_KEY as u64,
                );
                None
            }
        };
        let recipient_identity_key_hash = match body.get("recipient_identity_key_hash") {
            None | Some(Value::Null) => None,
            Some(Value::String(hash)) if !hash.is_empty() => Some(hash.clone()),
            Some(_) => {
                errors.add(
                    "recipient_identity_key_hash",
                    "must be the hash string from the customer's identity webhook",
                );
                None
            }
        };
        let send_at = parse_send_at(body.get("send_at"), now_ms(), &mut errors);
        errors.finish()?;
        match (to, message) {
            (Some(to), Some(message)) => Ok(Self {
                connection_id,
                to,
                message,
                reply_to,
                idempotency_key,
                recipient_identity_key_hash,
                sent_by: SentBy::Person,
                send_at,
            }),
            // Both are only missing when an error was recorded above.
            _ => {
                let mut errors = FieldErrors::new();
                errors.add("body", "is not a valid send request");
                Err(errors)
            }
        }
    }
}

/// `send_at`: an RFC 3339 time with its offset, at most [`MAX_SCHEDULE_AHEAD_MS`] ahead. A time
/// that has just passed sends at once (`None`).
fn parse_send_at(value: Option<&Value>, now: i64, errors: &mut FieldErrors) -> Option<i64> {
    let text = match value {
        None | Some(Value::Null) => return None,
        Some(Value::String(text)) => text,
        Some(_) => {
            errors.add(
                "send_at",
                "must be a time as an RFC 3339 string with its offset, like \"2026-12-05T09:00:00+01:00\"",
            );
            return None;
        }
    };
    let Some(at) = crate::clock::parse_rfc3339(text) else {
        errors.add(
            "send_at",
            "must be a time with its offset, like \"2026-12-05T09:00:00+01:00\" or \"2026-12-05T08:00:00Z\"",
        );
        return None;
    };
    if at < now - SEND_AT_PAST_TOLERANCE_MS {
        errors.add(
            "send_at",
            format!("is in the past ({}); leave it out to send now", rfc3339(at)),
        );
        return None;
    }
    if at > now + MAX_SCHEDULE_AHEAD_MS {
        errors.add(
            "send_at",
            format!(
                "may be at most {} days ahead (until {})",
                MAX_SCHEDULE_AHEAD_MS / (24 * crate::clock::HOUR_MS),
                rfc3339(now + MAX_SCHEDULE_AHEAD_MS)
            ),
        );
        return None;
    }
    (at > now).then_some(at)
}

fn merge(into: &mut FieldErrors, from: FieldErrors) {
    into.absorb(from);
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error(
        "the last message from {to} was more than 24 hours ago (or they never wrote): outside the customer service window only a template can be sent"
    )]
    OutsideServiceWindow {
        to: String,
        window_expired_at: Option<i64>,
    },
    #[error("connection_id is required: this tenant has {0} connected numbers")]
    ConnectionAmbiguous(usize),
    #[error("this tenant has no connected number to send from; connect one first")]
    NoConnection,
    #[error("connection not found")]
    ConnectionNotFound,
    #[error(
        "this number's WhatsApp Business Account has no template {name} in language {language}{}",
        if .languages.is_empty() { String::new() } else { format!(" (it has {} in {})", .name, .languages.join(", ")) }
    )]
    TemplateNotFound {
        name: String,
        language: String,
        languages: Vec<String>,
    },
    #[error(
        "the template {name} ({language}) is {status}; only APPROVED templates can be sent{}",
        .reason.as_deref().map(|r| format!(" (Meta: {r})")).unwrap_or_default()
    )]
    TemplateNotApproved {
        name: String,
        language: String,
        status: String,
        reason: Option<String>,
    },
    #[error("{}", .0.summary())]
    TemplateMismatch(FieldErrors),
    #[error("the template could not be checked: {0}")]
    TemplatesUnavailable(String),
    #[error(
        "{field} names no media of this tenant: upload the file with POST /api/v1/media and send the id it answers"
    )]
    MediaNotFound { field: String },
    #[error("{field}: {reason}")]
    MediaUnusable { field: String, reason: String },
    #[error(
        "the connection needs new credentials (Meta refused its access token); update access_token first"
    )]
    ConnectionNeedsReauth,
    #[error(
        "context.message_id names no message of this tenant that Meta knows (an id of ours, or a wamid)"
    )]
    ReplyTargetNotFound,
    #[error(
        "{to} opted out of marketing ({reason}): marketing templates and broadcasts are not sent to them; utility and authentication templates and replies in the service window still are"
    )]
    ContactOptedOut { to: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The message `enqueue` wrote, or the one an earlier request with the same idempotency key wrote.
pub struct Enqueued {
    pub message: MessageRow,
    /// `true` when the idempotency key matched an earlier send and nothing new was queued.
    pub replayed: bool,
}

/// What `enqueue` needs.
pub struct Outbox<'a> {
    pub store: &'a Store,
    /// For templates: a send that names one not seen yet pulls the account's list first.
    pub templates: crate::templates::sync::TemplateSync<'a>,
    /// Budgets are reserved as a send is queued, so its job runs when it may leave.
    pub limiter: &'a RateLimiter,
    pub events: &'a EventBus,
    pub jobs_wakeup: &'a Arc<Notify>,
    /// Send attempts before a retryable failure becomes final.
    pub max_attempts: i64,
}

impl<'a> Outbox<'a> {
    pub fn from_state(state: &'a crate::app::state::AppState) -> Self {
        Self {
            store: &state.store,
            templates: crate::templates::sync::TemplateSync::from_state(state),
            limiter: &state.limiter,
            events: &state.events,
            jobs_wakeup: &state.jobs_wakeup,
            max_attempts: state.settings.send_max_attempts,
        }
    }
}

/// The template category an opted-out contact is never sent.
pub const MARKETING: &str = "MARKETING";

/// Why the assistant is quiet on a conversation a person answered.
pub const PAUSED_BY_PERSON: &str = "a person answered";

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn enqueue(
    outbox: &Outbox<'_>,
    tenant_id: &str,
    request: SendRequest,
) -> Result<Enqueued, SendError> {
    let store = outbox.store;
    if let Some(key) = &request.idempotency_key {
        let mut conn = store.reader().acquire().await.map_err(StoreError::from)?;
        if let Some(message) = store
            .message_by_idempotency_key(&mut conn, tenant_id, key)
            .await?
        {
            return Ok(Enqueued {
                message,
                replayed: true,
            });
        }
    }
    let connection = resolve_connection(store, tenant_id, request.connection_id.as_deref()).await?;
    let category = if request.message.is_template() {
        check_template(outbox, &connection, &request.message.type_object).await?
    } else {
        None
    };
    let reply_wamid = match &request.reply_to {
        Some(target) => Some(resolve_reply(store, tenant_id, &connection, target).await?),
        None => None,
    };
    let mut type_object = request.message.type_object.clone();
    let media_id = resolve_media(
        store,
        tenant_id,
        &connection,
        &request.message.message_type,
        &mut type_object,
    )
    .await?;
    let now = now_ms();
    let wa_id = request.to.as_str();
    let kind = request.message.message_type.clone();
    let mut payload = Map::new();
    payload.insert("messaging_product".into(), json!("whatsapp"));
    payload.insert("recipient_type".into(), json!("individual"));
    payload.insert("to".into(), json!(wa_id));
    payload.insert("type".into(), json!(kind));
    payload.insert(kind.clone(), type_object.clone());
    if let Some(wamid) = &reply_wamid {
        payload.insert("context".into(), json!({ "message_id": wamid }));
    }
    if let Some(hash) = &request.recipient_identity_key_hash {
        payload.insert("recipient_identity_key_hash".into(), json!(hash));
    }
    let payload = Value::Object(payload).to_string();

    let mut tx = store.begin().await?;
    let contact_id = store
        .upsert_contacts(
            &mut tx,
            &[ContactUpsert {
                tenant_id,
                wa_id,
                name: None,
                source: crate::contacts::source::OUTBOUND,
            }],
            now,
        )
        .await?
        .pop()
        .map(|(_, id)| id)
        .ok_or_else(|| StoreError::Corrupt("a contact upsert returned no row".into()))?;
    if category
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case(MARKETING))
        && let Some(reason) = store.contact_opted_out(&mut tx, &contact_id).await?
    {
        tx.rollback().await.map_err(StoreError::from)?;
        return Err(SendError::ContactOptedOut {
            to: wa_id.to_owned(),
            reason,
        });
    }
    let conversation_id = store
        .upsert_conversations(
            &mut tx,
            &[ConversationUpsert {
                tenant_id,
                connection_id: &connection.id,
                contact_id: &contact_id,
                message_at: now,
            }],
            now,
        )
        .await?
        .pop()
        .map(|(_, id)| id)
        .ok_or_else(|| StoreError::Corrupt("a conversation upsert returned no row".into()))?;
    if !request.message.is_template() {
        let window = store.conversation_window(&mut tx, &conversation_id).await?;
        if window.is_none_or(|closes| closes <= now) {
            tx.rollback().await.map_err(StoreError::from)?;
            return Err(SendError::OutsideServiceWindow {
                to: wa_id.to_owned(),
                window_expired_at: window,
            });
        }
    }
    let id = crate::ids::new_id();
    let inserted = store
        .insert_messages(
            &mut tx,
            &[NewMessage {
                id: &id,
                tenant_id,
                connection_id: &connection.id,
                conversation_id: &conversation_id,
                contact_id: &contact_id,
                direction: DIRECTION_OUTBOUND,
                wamid: None,
                message_type: &kind,
                payload: &payload,
                status: "queued",
                status_rank: rank::QUEUED,
                message_at: now,
                now,
                idempotency_key: request.idempotency_key.as_deref(),
                media_id: media_id.as_ref().map(|m| m.id.as_str()),
                sent_by: Some(request.sent_by.as_str()),
                send_at: request.send_at,
                template_category: category.as_deref(),
            }],
        )
        .await;
    match inserted {
        Ok(_) => {}
        // Two requests with one idempotency key at once: the other one won; answer with its message.
        Err(e) if e.is_unique_violation() && request.idempotency_key.is_some() => {
            drop(tx);
            let key = request.idempotency_key.as_deref().unwrap_or_default();
            let mut conn = store.reader().acquire().await.map_err(StoreError::from)?;
            let message = store
                .message_by_idempotency_key(&mut conn, tenant_id, key)
                .await?
                .ok_or(e)?;
            return Ok(Enqueued {
                message,
                replayed: true,
            });
        }
        Err(e) => return Err(e.into()),
    }
    // A scheduled send reserves its budgets when it is due, not now: slots reserved hours ahead
    // would hold back every send queued meanwhile.
    let (run_at, planned) = match request.send_at {
        Some(send_at) => (send_at, super::sender::SendPayload::new(&id)),
        None => {
            super::sender::schedule(
                outbox.limiter,
                &connection,
                wa_id,
                super::sender::SendPayload::new(&id),
            )
            .await
        }
    };
    let job_payload =
        serde_json::to_string(&planned).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let unique_key = format!("{SEND_JOB}:{id}");
    store
        .enqueue_job(
            &mut tx,
            &NewJob {
                kind: SEND_JOB,
                payload: &job_payload,
                tenant_id: Some(tenant_id),
                unique_key: Some(&unique_key),
                run_at: run_at.max(now),
                max_attempts: outbox.max_attempts,
                now,
            },
        )
        .await?;
    // A person answering takes the conversation over: the assistant stays quiet on it for the
    // connection's pause, committed with the message so no bot answer slips in between. A send
    // scheduled for later is not an answer now.
    let paused_until = if request.sent_by == SentBy::Person
        && connection.auto_reply
        && request.send_at.is_none()
    {
        let minutes = store
            .assistant_settings(tenant_id, &connection.id)
            .await?
            .map(|row| crate::assistant::settings::AssistantSettings::from_row(&row).pause_minutes)
            .unwrap_or(crate::assistant::settings::DEFAULT_PAUSE_MINUTES);
        let until = now + minutes * 60_000;
        store
            .pause_assistant_in(&mut tx, &conversation_id, until, PAUSED_BY_PERSON, now)
            .await?;
        Some(until)
    } else {
        None
    };
    let preview = views::preview(&kind, Some(&type_object));
    store
        .touch_conversations(
            &mut tx,
            &[ConversationTouch {
                conversation_id: &conversation_id,
                message_at: now,
                preview: &preview,
                unread_added: 0,
                inbound: None,
                now,
            }],
        )
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    outbox.jobs_wakeup.notify_one();
    metrics::counter!("wagate_messages_queued_total").increment(1);
    if let Some(until) = paused_until {
        crate::assistant::reply::publish_handler_change(
            outbox.events,
            &conversation_id,
            tenant_id,
            Some(until),
            PAUSED_BY_PERSON,
        );
    }

    let message = MessageRow {
        id,
        tenant_id: tenant_id.to_owned(),
        connection_id: connection.id.clone(),
        conversation_id: conversation_id.clone(),
        contact_id,
        contact_wa_id: wa_id.to_owned(),
        contact_name: None,
        direction: DIRECTION_OUTBOUND.to_owned(),
        wamid: None,
        message_type: kind,
        payload,
        status: "queued".to_owned(),
        status_rank: rank::QUEUED,
        error_code: None,
        error_title: None,
        error_message: None,
        message_at: now,
        created_at: now,
        updated_at: now,
        send_started_at: None,
        accepted_at: None,
        media: media_id.map(|m| MessageMedia {
            id: m.id,
            status: m.status,
            failure_reason: None,
            mime_type: m.mime_type,
            file_size: m.file_size,
            filename: m.filename,
        }),
        sent_by: Some(request.sent_by.as_str().to_owned()),
        send_at: request.send_at,
        template_category: category,
    };
    outbox.events.publish(Event {
        tenant_id: tenant_id.to_owned(),
        kind: kind::MESSAGE_CREATED,
        data: views::message(&message),
    });
    if let Ok(Some(conversation)) = store.conversation(tenant_id, &conversation_id).await {
        outbox.events.publish(Event {
            tenant_id: tenant_id.to_owned(),
            kind: kind::CONVERSATION_UPDATED,
            data: views::conversation(&conversation),
        });
    }
    Ok(Enqueued {
        message,
        replayed: false,
    })
}

/// The connection to send from: the one named, or the tenant's only live one.
pub async fn resolve_connection(
    store: &Store,
    tenant_id: &str,
    connection_id: Option<&str>,
) -> Result<ConnectionRow, SendError> {
    let connection = match connection_id {
        Some(id) => store
            .connection(tenant_id, id)
            .await?
            .ok_or(SendError::ConnectionNotFound)?,
        None => {
            let mut live: Vec<ConnectionRow> = store
                .connections(tenant_id)
                .await?
                .into_iter()
                .filter(|c| c.status != crate::store::connections::STATUS_DISCONNECTED)
                .collect();
            match live.len() {
                0 => return Err(SendError::NoConnection),
                1 => live.remove(0),
                n => return Err(SendError::ConnectionAmbiguous(n)),
            }
        }
    };
    match connection.status.as_str() {
        STATUS_CONNECTED => Ok(connection),
        STATUS_NEEDS_REAUTH => Err(SendError::ConnectionNeedsReauth),
        _ => Err(SendError::ConnectionNotFound),
    }
}

/// A template not found pulls the account's list again, unless it was pulled this recently.
const ON_DEMAND_SYNC_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Checks a template send against the stored copy of the template: it must exist in that
/// language, be APPROVED, and get the parameters its components take, so a mismatch is told now
/// instead of coming back as Meta's 132000/132012. A template not seen yet (made in WhatsApp
/// Manager since the last sync) pulls the account's list once first. A connection whose account
/// is not known cannot be checked; Meta decides. Answers the template's category.
async fn check_template(
    outbox: &Outbox<'_>,
    connection: &ConnectionRow,
    object: &Value,
) -> Result<Option<String>, SendError> {
    if connection.waba_id.is_none() {
        return Ok(None);
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let language = object
        .get("language")
        .and_then(|l| l.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let store = outbox.store;
    let mut rows = store.templates_named(&connection.id, name).await?;
    if !rows.iter().any(|r| r.language == language) {
        // Concurrent sends of the same unknown template wait for one sync, then look again.
        match outbox
            .templates
            .sync_unless_fresh(connection, ON_DEMAND_SYNC_AFTER)
            .await
        {
            Ok(_) => rows = store.templates_named(&connection.id, name).await?,
            Err(crate::templates::sync::SyncError::Store(error)) => return Err(error.into()),
            Err(error) if connection.templates_synced_at.is_none() => {
                return Err(SendError::TemplatesUnavailable(error.to_string()));
            }
            Err(error) => {
                tracing::warn!(error = %error, "on-demand template sync failed; using the stored list");
            }
        }
    }
    let Some(row) = rows.iter().find(|r| r.language == language) else {
        return Err(SendError::TemplateNotFound {
            name: name.to_owned(),
            language: language.to_owned(),
            languages: rows.iter().map(|r| r.language.clone()).collect(),
        });
    };
    let spec = crate::templates::TemplateSpec::from_stored(
        &row.name,
        &row.language,
        &row.status,
        row.category.as_deref(),
        row.parameter_format.as_deref(),
        &row.components,
    )
    .map_err(|e| StoreError::Corrupt(format!("stored template components: {e}")))?;
    match crate::templates::fit::check_send(&spec, object) {
        Ok(()) => Ok(row.category.clone()),
        Err(crate::templates::fit::FitError::NotApproved { status }) => {
            Err(SendError::TemplateNotApproved {
                name: row.name.clone(),
                language: row.language.clone(),
                status,
                reason: row.rejected_reason.clone(),
            })
        }
        Err(crate::templates::fit::FitError::Parameters(fields)) => {
            Err(SendError::TemplateMismatch(fields))
        }
    }
}

/// A media message sent by the id of a file uploaded here (`POST /api/v1/media`): the id becomes
/// Meta's own for that number, and the message keeps the file so the dashboard can show it. Meta's
/// ids (digits) pass as they are.
async fn resolve_media(
    store: &Store,
    tenant_id: &str,
    connection: &ConnectionRow,
    message_type: &str,
    type_object: &mut Value,
) -> Result<Option<MediaRow>, SendError> {
    if !crate::media::is_media_type(message_type) {
        return Ok(None);
    }
    let Some(id) = type_object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let field = format!("{message_type}.id");
    if !crate::ids::looks_like_id(&id) {
        return Ok(None);
    }
    let media = store
        .media(tenant_id, &id)
        .await?
        .ok_or_else(|| SendError::MediaNotFound {
            field: field.clone(),
        })?;
    let unusable = |reason: String| SendError::MediaUnusable {
        field: field.clone(),
        reason,
    };
    if media.direction != crate::store::media::DIRECTION_OUTBOUND {
        return Err(unusable(
            "is a file a customer sent; to send it on, upload it with POST /api/v1/media".into(),
        ));
    }
    if media.kind != message_type {
        return Err(unusable(format!(
            "is a {} file ({}); send it as type \"{}\"",
            media.kind,
            media.mime_type.as_deref().unwrap_or("unknown type"),
            media.kind
        )));
    }
    if media.connection_id != connection.id {
        return Err(unusable(
            "was uploaded for another connection; upload it again for the connection that sends it"
                .into(),
        ));
    }
    let meta_id = media
        .meta_media_id
        .clone()
        .ok_or_else(|| unusable("has not reached Meta yet; upload it again".into()))?;
    type_object["id"] = Value::String(meta_id);
    Ok(Some(media))
}

/// The wamid a reply quotes: a wamid as given, or the wamid of one of the tenant's messages.
async fn resolve_reply(
    store: &Store,
    tenant_id: &str,
    connection: &ConnectionRow,
    target: &str,
) -> Result<String, SendError> {
    if target.starts_with("wamid.") {
        return Ok(target.to_owned());
    }
    let message = store
        .message(tenant_id, target)
        .await?
        .filter(|m| m.connection_id == connection.id)
        .ok_or(SendError::ReplyTargetNotFound)?;
    message.wamid.ok_or(SendError::ReplyTargetNotFound)
}

/// The 422 details of a closed window: when it closed, if it was ever open.
pub fn window_details(window_expired_at: Option<i64>) -> Value {
    json!({
        "window_expired_at": window_expired_at.map(rfc3339),
        "hint": "send an approved template (type \"template\"); the window reopens when the customer writes",
    })
}
