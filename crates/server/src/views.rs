//! The JSON objects of the contract (message, conversation, connection), built in one place so the
//! REST API and live events always show the same shape.

use serde_json::{Map, Value, json};

use crate::clock::{now_ms, rfc3339};
use crate::store::connections::ConnectionRow;
use crate::store::conversations::ConversationRow;
use crate::store::media::{MediaRow, STATUS_STORED};
use crate::store::messages::{MessageMedia, MessageRow};
use crate::store::templates::TemplateRow;

/// The message object: the type object exactly as Cloud API has it, under the key named by `type`.
pub fn message(row: &MessageRow) -> Value {
    let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("id".into(), json!(row.id));
    out.insert("connection_id".into(), json!(row.connection_id));
    out.insert("conversation_id".into(), json!(row.conversation_id));
    out.insert(
        "contact".into(),
        json!({ "wa_id": row.contact_wa_id, "name": row.contact_name }),
    );
    out.insert("direction".into(), json!(row.direction));
    out.insert("wamid".into(), json!(row.wamid));
    out.insert("type".into(), json!(row.message_type));
    if let Some(object) = payload.get(&row.message_type) {
        out.insert(row.message_type.clone(), object.clone());
    }
    for key in ["context", "referral", "errors"] {
        if let Some(value) = payload.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    out.insert("status".into(), json!(row.status));
    if let Some(sent_by) = &row.sent_by {
        out.insert("sent_by".into(), json!(sent_by));
    }
    if let Some(send_at) = row.send_at {
        out.insert("send_at".into(), json!(rfc3339(send_at)));
    }
    if let Some(category) = &row.template_category {
        out.insert("template_category".into(), json!(category));
    }
    if let Some(media) = &row.media {
        out.insert("media".into(), message_media(media));
    }
    if row.error_code.is_some() || row.error_title.is_some() || row.error_message.is_some() {
        out.insert(
            "error".into(),
            json!({
                "code": row.error_code,
                "title": row.error_title,
                "message": row.error_message,
            }),
        );
    }
    out.insert("timestamp".into(), json!(rfc3339(row.message_at)));
    out.insert("created_at".into(), json!(rfc3339(row.created_at)));
    Value::Object(out)
}

/// A message's file as the message shows it: whether it is stored, and where to download it.
fn message_media(media: &MessageMedia) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(media.id));
    out.insert("status".into(), json!(media.status));
    if let Some(reason) = &media.failure_reason {
        out.insert("reason".into(), json!(reason));
    }
    out.insert("mime_type".into(), json!(media.mime_type));
    out.insert("file_size".into(), json!(media.file_size));
    if let Some(filename) = &media.filename {
        out.insert("filename".into(), json!(filename));
    }
    if media.status == STATUS_STORED {
        out.insert("url".into(), json!(media_url(&media.id)));
    }
    Value::Object(out)
}

/// Where the tenant downloads a stored file.
pub fn media_url(id: &str) -> String {
    format!("/api/v1/media/{id}")
}

/// The media object of `/api/v1/media`.
pub fn media(row: &MediaRow) -> Value {
    json!({
        "id": row.id,
        "connection_id": row.connection_id,
        "direction": row.direction,
        "kind": row.kind,
        "meta_media_id": row.meta_media_id,
        "mime_type": row.mime_type,
        "file_size": row.file_size,
        "sha256": row.sha256,
        "filename": row.filename,
        "status": row.status,
        "reason": row.failure_reason,
        "url": (row.status == STATUS_STORED).then(|| media_url(&row.id)),
        "created_at": rfc3339(row.created_at),
    })
}

pub fn conversation(row: &ConversationRow) -> Value {
    let window_open = row.window_expires_at.is_some_and(|at| at > now_ms());
    json!({
        "id": row.id,
        "connection_id": row.connection_id,
        "contact": { "wa_id": row.contact_wa_id, "name": row.contact_name },
        "unread_count": row.unread_count,
        "last_message_at": row.last_message_at.map(rfc3339),
        "last_message_preview": row.last_message_preview,
        "window_expires_at": row.window_expires_at.map(rfc3339),
        "window_open": window_open,
        "assistant": assistant_state(row),
        "created_at": rfc3339(row.created_at),
    })
}

/// Whether a person has the conversation (the assistant paused until a time) or not.
fn assistant_state(row: &ConversationRow) -> Value {
    match row.assistant_paused_until.filter(|until| *until > now_ms()) {
        Some(until) => json!({
            "paused_until": rfc3339(until),
            "paused_reason": row.assistant_paused_reason,
        }),
        None => json!({"paused_until": null, "paused_reason": null}),
    }
}

/// The connection object. Takes the verify token already opened; never the access token or app secret.
pub fn connection(row: &ConnectionRow, webhook_url: &str, verify_token: Option<&str>) -> Value {
    json!({
        "id": row.id,
        "phone_number_id": row.phone_number_id,
        "waba_id": row.waba_id,
        "display_phone_number": row.display_phone_number,
        "verified_name": row.verified_name,
        "quality_rating": row.quality_rating,
        "webhook_url": webhook_url,
        "verify_token": verify_token,
        "status": row.status,
        "status_reason": row.status_reason,
        "auto_reply": row.auto_reply,
        "throughput_per_second": row.throughput_per_second,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

pub fn template(row: &TemplateRow) -> Value {
    json!({
        "id": row.id,
        "connection_id": row.connection_id,
        "meta_template_id": row.meta_template_id,
        "name": row.name,
        "language": row.language,
        "category": row.category,
        "status": row.status,
        "quality_score": row.quality_score,
        "rejected_reason": row.rejected_reason,
        "parameter_format": row.parameter_format.as_deref().unwrap_or("POSITIONAL"),
        "sub_category": row.sub_category,
        "components": serde_json::from_str::<Value>(&row.components).unwrap_or(Value::Array(vec![])),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

const PREVIEW_CHARS: usize = 120;

/// A one-line summary of a message for conversation lists.
pub fn preview(message_type: &str, object: Option<&Value>) -> String {
    let field = |name: &str| {
        object
            .and_then(|o| o.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let labelled = |label: &str, detail: Option<&str>| match detail {
        Some(detail) => format!("[{label}] {detail}"),
        None => format!("[{label}]"),
    };
    let text = match message_type {
        "text" => field("body").unwrap_or_default().to_owned(),
        "image" => labelled("Image", field("caption")),
        "video" => labelled("Video", field("caption")),
        "document" => labelled("Document", field("caption").or_else(|| field("filename"))),
        "audio" => {
            let voice = object.and_then(|o| o.get("voice")).and_then(Value::as_bool) == Some(true);
            labelled(if voice { "Voice message" } else { "Audio" }, None)
        }
        "sticker" => labelled("Sticker", None),
        "location" => labelled("Location", field("name").or_else(|| field("address"))),
        "contacts" => labelled("Contact", None),
        "reaction" => match field("emoji") {
            Some(emoji) => format!("Reacted {emoji}"),
            None => "Removed a reaction".to_owned(),
        },
        "interactive" => {
            let reply = object.and_then(|o| {
                ["button_reply", "list_reply"]
                    .iter()
                    .find_map(|k| o.get(*k))
                    .and_then(|r| r.get("title"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            labelled("Reply", reply.as_deref())
        }
        "button" => field("text").unwrap_or("[Button]").to_owned(),
        "template" => {
            let name = object.and_then(|o| o.get("name")).and_then(Value::as_str);
            labelled("Template", name)
        }
        "order" => labelled("Order", None),
        "system" => field("body").unwrap_or("[System message]").to_owned(),
        "edit" => "[Edited a message]".to_owned(),
        "revoke" => "[Deleted a message]".to_owned(),
        "unsupported" => "[Unsupported message]".to_owned(),
        other => format!("[{other}]"),
    };
    truncate_chars(&text, PREVIEW_CHARS)
}

fn truncate_chars(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_say_what_a_message_is() {
        assert_eq!(preview("text", Some(&json!({"body": "hi"}))), "hi");
        assert_eq!(
            preview("image", Some(&json!({"caption": "shoes"}))),
            "[Image] shoes"
        );
        assert_eq!(preview("image", Some(&json!({}))), "[Image]");
        assert_eq!(
            preview("audio", Some(&json!({"voice": true}))),
            "[Voice message]"
        );
        assert_eq!(
            preview("reaction", Some(&json!({"message_id": "x"}))),
            "Removed a reaction"
        );
        assert_eq!(preview("hologram", None), "[hologram]");
        let long = "x".repeat(500);
        assert_eq!(
            preview("text", Some(&json!({"body": long})))
                .chars()
                .count(),
            121
        );
    }
}
