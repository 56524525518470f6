//! The contract's JSON objects as OpenAPI schemas. The handlers build their answers in `views`;
//! these types only describe them for `/openapi.json`, and the API tests check real answers
//! against the published schemas, so the two cannot drift apart unnoticed.

#![allow(dead_code)] // Read by the OpenAPI derive, never constructed.

use serde_json::Value;
use utoipa::ToSchema;

/// Every error: `{"error": {"code", "message", "details"}}`.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(ToSchema)]
pub struct ErrorObject {
    /// What went wrong, in snake_case: `validation_failed`, `not_found`, `outside_service_window`, ...
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence that says what to fix.
    pub message: String,
    /// The field and reason for validation errors, Meta's own error for Meta's refusals.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// The customer at the other end of a conversation.
#[derive(ToSchema)]
pub struct Contact {
    /// The customer's WhatsApp id: their number, digits only.
    #[schema(example = "16505551234")]
    pub wa_id: String,
    /// The profile name the customer set, when Meta told us.
    pub name: Option<String>,
}

/// Meta's reason a message failed.
#[derive(ToSchema)]
pub struct MessageError {
    /// Meta's error code (131047 outside the 24-hour window, 130429 throughput, ...).
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
}

/// A message's file, as the message shows it.
#[derive(ToSchema)]
pub struct MessageMedia {
    pub id: String,
    /// `pending`, `stored` or `failed`.
    pub status: String,
    /// Why fetching failed, when it did.
    pub reason: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<i64>,
    pub filename: Option<String>,
    /// Where to download it, once stored.
    pub url: Option<String>,
}

/// A message in or out. The type's own object is under the key named by `type` (`text`, `image`,
/// `interactive`, ...), exactly as Cloud API has it.
#[derive(ToSchema)]
pub struct Message {
    pub id: String,
    pub connection_id: String,
    pub conversation_id: String,
    pub contact: Contact,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Meta's message id, once Meta has it.
    pub wamid: Option<String>,
    #[schema(rename = "type", example = "text")]
    pub message_type: String,
    /// Outbound: `queued`, `sending`, `sent`, `delivered`, `read` or `failed`; inbound: `received`.
    pub status: String,
    /// Who sent an outbound message: `person`, `assistant` or `automation`.
    pub sent_by: Option<String>,
    /// A scheduled send: when it is to leave (RFC 3339). It stays `queued` until then.
    pub send_at: Option<String>,
    /// A template's category (`MARKETING`, `UTILITY`, `AUTHENTICATION`) when it was queued.
    pub template_category: Option<String>,
    pub media: Option<MessageMedia>,
    pub error: Option<MessageError>,
    /// When it was sent or received (RFC 3339).
    pub timestamp: String,
    pub created_at: String,
}

#[derive(ToSchema)]
pub struct MessagePage {
    pub data: Vec<Message>,
    /// Pass as `before` for the next, older page; `null` on the last one.
    pub next_before: Option<String>,
}

/// `POST /api/v1/messages`: the type's object goes under the key named by `type`, as in Cloud
/// API (`"text": {"body": "..."}`, `"image": {"id" | "link", "caption"}`, `"template": {...}`).
#[derive(ToSchema)]
pub struct SendMessage {
    /// Which number sends; may be left out when the tenant has only one.
    pub connection_id: Option<String>,
    /// The customer's number in any common format (`+1 650-555-1234`, `0044 20 ...`).
    #[schema(example = "+16505551234")]
    pub to: String,
    /// `text`, `image`, `video`, `audio`, `document`, `sticker`, `location`, `contacts`,
    /// `interactive`, `template` or `reaction`.
    #[schema(rename = "type", example = "text")]
    pub message_type: String,
    /// A reply to an earlier message: `{"message_id": "<wamid or our id>"}`.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// A repeated key answers with the first message instead of sending again.
    pub idempotency_key: Option<String>,
    /// Send later: an RFC 3339 time with its offset (`2026-12-05T09:00:00+01:00`), up to 90 days
    /// ahead. The 24-hour window (and a marketing template's opt-out) is checked again then; a
    /// closed window fails the message with `outside_service_window`.
    #[schema(example = "2026-12-05T09:00:00+01:00")]
    pub send_at: Option<String>,
}

/// Whether the assistant has the conversation, or a person paused it.
#[derive(ToSchema)]
pub struct AssistantState {
    pub paused_until: Option<String>,
    pub paused_reason: Option<String>,
}

#[derive(ToSchema)]
pub struct Conversation {
    pub id: String,
    pub connection_id: String,
    pub contact: Contact,
    pub unread_count: i64,
    pub last_message_at: Option<String>,
    pub last_message_preview: Option<String>,
    /// When the 24-hour customer service window closes.
    pub window_expires_at: Option<String>,
    pub window_open: bool,
    pub assistant: AssistantState,
    pub created_at: String,
}

#[derive(ToSchema)]
pub struct ConversationPage {
    pub data: Vec<Conversation>,
    pub next_before: Option<String>,
}

/// A tenant's WhatsApp Business number. Never shows the access token or the app secret.
#[derive(ToSchema)]
pub struct Connection {
    pub id: String,
    pub phone_number_id: String,
    pub waba_id: Option<String>,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    /// Give this URL to Meta as the app's callback URL.
    pub webhook_url: String,
    /// Give this to Meta as the verify token.
    pub verify_token: Option<String>,
    /// `connected`, `token_invalid` or `disconnected`.
    pub status: String,
    pub status_reason: Option<String>,
    pub auto_reply: bool,
    pub throughput_per_second: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(ToSchema)]
pub struct ConnectionList {
    pub data: Vec<Connection>,
}

/// A message template, as Meta last told us.
#[derive(ToSchema)]
pub struct Template {
    pub id: String,
    pub connection_id: String,
    pub meta_template_id: Option<String>,
    pub name: String,
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    pub status: String,
    pub quality_score: Option<String>,
    pub rejected_reason: Option<String>,
    /// `POSITIONAL` or `NAMED`.
    pub parameter_format: String,
    pub sub_category: Option<String>,
    /// Meta's components (header, body, footer, buttons) as Meta has them.
    #[schema(value_type = Vec<Object>)]
    pub components: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// A file uploaded to send, or fetched from an inbound message.
#[derive(ToSchema)]
pub struct Media {
    pub id: String,
    pub connection_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `image`, `video`, `audio`, `document` or `sticker`.
    pub kind: Option<String>,
    pub meta_media_id: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<i64>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub url: Option<String>,
    pub created_at: String,
}
