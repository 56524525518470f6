//! Simulated customers: the messages they write to a business number, checked before they become
//! webhooks, and the files they attach, which become media objects of the number.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::delivery::DeliveryId;
use crate::error::InputError;

/// Message types whose object may carry the file itself, base64 in `data`.
const MEDIA_TYPES: [&str; 5] = ["image", "audio", "video", "document", "sticker"];

/// A message a customer writes to a business number; it reaches the webhook as Meta would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMessage {
    /// The business number written to.
    pub phone_number_id: String,
    /// Customer's wa_id: the phone number in digits, country code first, no `+`.
    pub from: String,
    /// Profile name; when left out the webhook shows the number, as WhatsApp does for unnamed profiles.
    pub name: Option<String>,
    /// Meta's message `type`: `text`, `image`, `interactive`, `button`, `reaction`...
    pub message_type: String,
    /// The object under the key named by `type`, e.g. `{"body":"hi"}` for text.
    pub content: Value,
    /// `context` of a reply (`{from, id}`) or a forward.
    pub context: Option<Value>,
    /// `referral` of a click-to-WhatsApp ad.
    pub referral: Option<Value>,
    /// Unix seconds; now when left out.
    pub timestamp: Option<i64>,
}

/// What a customer's message became: its wamid, the delivery carrying it to the webhook, and the
/// media object made of its attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundReceipt {
    pub wamid: String,
    pub delivery_id: DeliveryId,
    /// The media id of the attached file (the webhook carries it), when the message brought bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
}

/// The file a customer's message brought, taken out of its object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attachment {
    pub bytes: Bytes,
    pub mime_type: String,
    pub filename: Option<String>,
}

/// Keys of the admin JSON besides the type object itself.
const KNOWN_KEYS: [&str; 8] = [
    "phone_number_id",
    "from",
    "name",
    "type",
    "context",
    "referral",
    "timestamp",
    "messaging_product",
];

impl CustomerMessage {
    /// A plain text message, the most common case in tests.
    pub fn text(
        phone_number_id: impl Into<String>,
        from: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            phone_number_id: phone_number_id.into(),
            from: from.into(),
            name: None,
            message_type: "text".into(),
            content: serde_json::json!({ "body": body.into() }),
            context: None,
            referral: None,
            timestamp: None,
        }
    }

    /// A customer sends a file: `kind` is `image`, `audio`, `video`, `document` or `sticker`. The
    /// emulator stores the bytes as a media object of the number and the webhook carries its `id`,
    /// `mime_type` and `sha256`, as Meta's do.
    ///
    /// The bytes travel base64-encoded in the object's `data`, exactly as the admin API takes them.
    pub fn media(
        phone_number_id: impl Into<String>,
        from: impl Into<String>,
        kind: impl Into<String>,
        bytes: impl Into<Bytes>,
        mime_type: impl Into<String>,
    ) -> Self {
        let bytes: Bytes = bytes.into();
        Self {
            message_type: kind.into(),
            content: serde_json::json!({
                "mime_type": mime_type.into(),
                "data": STANDARD.encode(&bytes),
            }),
            ..Self::text(phone_number_id, from, "")
        }
    }

    /// Sets the caption of an image, video or document.
    pub fn with_caption(self, caption: impl Into<String>) -> Self {
        self.with_content_field("caption", caption.into().into())
    }

    /// Sets the file name of a document.
    pub fn with_filename(self, filename: impl Into<String>) -> Self {
        self.with_content_field("filename", filename.into().into())
    }

    /// Marks audio as a voice note (or not).
    pub fn with_voice(self, voice: bool) -> Self {
        self.with_content_field("voice", voice.into())
    }

    /// Marks a sticker as animated (or not).
    pub fn with_animated(self, animated: bool) -> Self {
        self.with_content_field("animated", animated.into())
    }

    fn with_content_field(mut self, key: &str, value: Value) -> Self {
        if let Value::Object(content) = &mut self.content {
            content.insert(key.to_owned(), value);
        }
        self
    }

    /// Takes the attached file out of the content (`data`, base64), leaving what the webhook shows;
    /// `None` when the message brings no bytes.
    pub(crate) fn take_attachment(&mut self) -> Result<Option<Attachment>, InputError> {
        let kind = self.message_type.clone();
        let Value::Object(content) = &mut self.content else {
            return Ok(None);
        };
        let Some(data) = content.remove("data") else {
            return Ok(None);
        };
        if !MEDIA_TYPES.contains(&kind.as_str()) {
            return Err(InputError::new(
                format!("{kind}.data"),
                format!("only {} messages carry bytes", MEDIA_TYPES.join(", ")),
            ));
        }
        if content.contains_key("id") {
            return Err(InputError::new(
                format!("{kind}.id"),
                "goes without data: give either the bytes (data) or the id of existing media",
            ));
        }
        let Value::String(data) = data else {
            return Err(InputError::new(
                format!("{kind}.data"),
                "must be the file's bytes in standard base64",
            ));
        };
        let bytes = STANDARD.decode(data.as_bytes()).map_err(|e| {
            InputError::new(
                format!("{kind}.data"),
                format!("must be the file's bytes in standard base64: {e}"),
            )
        })?;
        let mime_type = match content.get("mime_type") {
            Some(Value::String(mime)) if !mime.trim().is_empty() => mime.trim().to_owned(),
            _ => {
                return Err(InputError::new(
                    format!("{kind}.mime_type"),
                    "is required with data, e.g. \"image/jpeg\"",
                ));
            }
        };
        let filename = match content.get("filename") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(_) => {
                return Err(InputError::new(
                    format!("{kind}.filename"),
                    "must be a string",
                ));
            }
        };
        Ok(Some(Attachment {
            bytes: Bytes::from(bytes),
            mime_type,
            filename,
        }))
    }

    /// Puts the stored media into the content in Meta's order: caption and filename, then
    /// `mime_type`, `sha256` and `id`, then the rest (`voice`, `animated`).
    pub(crate) fn show_media(&mut self, media_id: &str, sha256_base64: &str) {
        let Value::Object(content) = &mut self.content else {
            return;
        };
        let mut shown = Map::new();
        for key in ["caption", "filename", "mime_type"] {
            if let Some(value) = content.remove(key) {
                shown.insert(key.to_owned(), value);
            }
        }
        shown.insert("sha256".into(), sha256_base64.into());
        shown.insert("id".into(), media_id.into());
        shown.append(content);
        *content = shown;
    }

    /// Reads the admin API's Meta-like shape: `{"phone_number_id","from","name","type":"text","text":{..}}`.
    pub fn from_admin_json(value: Value) -> Result<Self, InputError> {
        let Value::Object(mut fields) = value else {
            return Err(InputError::new("(body)", "must be a JSON object"));
        };
        let message_type = take_string(&mut fields, "type")?;
        if KNOWN_KEYS.contains(&message_type.as_str()) {
            return Err(InputError::new(
                "type",
                "cannot be the name of another message field",
            ));
        }
        let content = fields.remove(&message_type).ok_or_else(|| {
            InputError::new(
                message_type.as_str(),
                format!(
                    "is missing: a `{message_type}` message carries its content under the key `{message_type}`, \
                     e.g. {{\"type\":\"text\",\"text\":{{\"body\":\"hi\"}}}}"
                ),
            )
        })?;
        let message = Self {
            phone_number_id: take_string(&mut fields, "phone_number_id")?,
            from: take_string(&mut fields, "from")?,
            name: take_optional_string(&mut fields, "name")?,
            content,
            context: take_optional(&mut fields, "context"),
            referral: take_optional(&mut fields, "referral"),
            timestamp: take_timestamp(&mut fields)?,
            message_type,
        };
        // Meta's own send bodies carry messaging_product; tolerate it rather than make callers strip it.
        fields.remove("messaging_product");
        if let Some(unknown) = fields.keys().next() {
            return Err(InputError::new(
                unknown.as_str(),
                format!(
                    "is not a known field; expected {} and the object named by `type`",
                    KNOWN_KEYS[..7].join(", ")
                ),
            ));
        }
        Ok(message)
    }

    /// Checks the parts the webhook is built from, so every webhook the emulator sends is well formed.
    pub(crate) fn check(&self) -> Result<(), InputError> {
        let from = self.from.as_str();
        if !(7..=15).contains(&from.len()) || !from.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InputError::new(
                "from",
                "must be the customer's wa_id: 7 to 15 digits, country code first, no +, e.g. \"16505551234\"",
            ));
        }
        let kind = self.message_type.as_str();
        if kind.is_empty()
            || kind.len() > 32
            || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err(InputError::new(
                "type",
                "must be a Meta message type in lowercase, e.g. \"text\", \"image\", \"interactive\"",
            ));
        }
        if KNOWN_KEYS.contains(&kind) || kind == "id" {
            return Err(InputError::new(
                "type",
                "cannot be the name of another message field",
            ));
        }
        if !self.content.is_object() {
            return Err(InputError::new(
                kind,
                "must be a JSON object, e.g. {\"body\":\"hi\"} for text",
            ));
        }
        if kind == "text" && !self.content.get("body").is_some_and(Value::is_string) {
            return Err(InputError::new("text.body", "must be a string"));
        }
        for (field, value) in [("context", &self.context), ("referral", &self.referral)] {
            if value.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(InputError::new(field, "must be a JSON object when given"));
            }
        }
        if self.timestamp.is_some_and(|t| t <= 0) {
            return Err(InputError::new(
                "timestamp",
                "must be positive Unix seconds",
            ));
        }
        Ok(())
    }
}

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Result<String, InputError> {
    match fields.remove(key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(InputError::new(key, "must be a string")),
        None => Err(InputError::new(key, "is required")),
    }
}

fn take_optional_string(
    fields: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<String>, InputError> {
    match fields.remove(key) {
        Some(Value::String(text)) => Ok(Some(text)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(InputError::new(key, "must be a string")),
    }
}

fn take_optional(fields: &mut Map<String, Value>, key: &str) -> Option<Value> {
    fields.remove(key).filter(|v| !v.is_null())
}

/// Unix seconds as a number, or as a string of digits the way Meta writes them.
fn take_timestamp(fields: &mut Map<String, Value>) -> Result<Option<i64>, InputError> {
    let problem = "must be Unix seconds, as a number or a string of digits";
    match fields.remove("timestamp") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| InputError::new("timestamp", problem)),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| InputError::new("timestamp", problem)),
        Some(_) => Err(InputError::new("timestamp", problem)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Makes one part of a valid value invalid.
    type Spoil<T> = fn(&mut T);

    #[test]
    fn the_admin_shape_is_read() {
        let message = CustomerMessage::from_admin_json(json!({
            "phone_number_id": "1", "from": "16505551234", "name": "Sheena",
            "type": "text", "text": {"body": "hi"}, "timestamp": "1749416383",
        }));
        let Ok(message) = message else {
            panic!("should parse: {message:?}");
        };
        assert_eq!(message.message_type, "text");
        assert_eq!(message.content, json!({"body": "hi"}));
        assert_eq!(message.timestamp, Some(1_749_416_383));
        assert_eq!(message.check(), Ok(()));
    }

    #[test]
    fn a_missing_type_object_is_explained() {
        let error = CustomerMessage::from_admin_json(json!({
            "phone_number_id": "1", "from": "16505551234", "type": "image", "text": {"body": "hi"},
        }))
        .err();
        assert_eq!(error.map(|e| e.field), Some("image".to_owned()));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let error = CustomerMessage::from_admin_json(json!({
            "phone_number_id": "1", "from": "16505551234", "type": "text", "text": {"body": "hi"}, "frm": "x",
        }))
        .err();
        assert_eq!(error.map(|e| e.field), Some("frm".to_owned()));
    }

    #[test]
    fn an_attachment_is_taken_out_and_the_media_shown_in_metas_order() {
        let mut message = CustomerMessage::media(
            "1",
            "16505551234",
            "document",
            b"%PDF".to_vec(),
            "application/pdf",
        )
        .with_caption("my receipt")
        .with_filename("receipt.pdf");
        assert_eq!(message.check(), Ok(()));
        let attachment = message.take_attachment();
        assert_eq!(
            attachment,
            Ok(Some(Attachment {
                bytes: Bytes::from_static(b"%PDF"),
                mime_type: "application/pdf".into(),
                filename: Some("receipt.pdf".into()),
            }))
        );
        message.show_media("622684793477189", "V5OP=");
        assert_eq!(
            message.content.to_string(),
            r#"{"caption":"my receipt","filename":"receipt.pdf","mime_type":"application/pdf","sha256":"V5OP=","id":"622684793477189"}"#
        );
        let mut passed_through = CustomerMessage {
            message_type: "image".into(),
            content: json!({"id": "1", "mime_type": "image/jpeg"}),
            ..CustomerMessage::text("1", "16505551234", "")
        };
        assert_eq!(passed_through.take_attachment(), Ok(None));
    }

    #[test]
    fn a_bad_attachment_names_its_field() {
        let cases = [
            (
                "image",
                json!({"data": "not base64!", "mime_type": "image/png"}),
                "image.data",
            ),
            ("image", json!({"data": "AAAA"}), "image.mime_type"),
            (
                "image",
                json!({"data": "AAAA", "mime_type": "image/png", "id": "1"}),
                "image.id",
            ),
            ("location", json!({"data": "AAAA"}), "location.data"),
        ];
        for (kind, content, field) in cases {
            let mut message = CustomerMessage {
                message_type: kind.into(),
                content: content.clone(),
                ..CustomerMessage::text("1", "16505551234", "")
            };
            let error = message.take_attachment().err();
            assert_eq!(error.map(|e| e.field), Some(field.to_owned()), "{content}");
        }
    }

    #[test]
    fn bad_parts_are_refused() {
        let good = CustomerMessage::text("1", "16505551234", "hi");
        let cases: [(&str, Spoil<CustomerMessage>); 5] = [
            ("from", |m| m.from = "+16505551234".into()),
            ("type", |m| m.message_type = "Text".into()),
            ("text", |m| m.content = json!("hi")),
            ("text.body", |m| m.content = json!({"text": "hi"})),
            ("context", |m| m.context = Some(json!("wamid.x"))),
        ];
        for (field, spoil) in cases {
            let mut bad = good.clone();
            spoil(&mut bad);
            assert_eq!(bad.check().err().map(|e| e.field), Some(field.to_owned()));
        }
    }
}
