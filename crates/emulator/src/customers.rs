//! Simulated customers: the messages they write to a business number, checked before they become webhooks.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::delivery::DeliveryId;
use crate::error::InputError;

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

/// What a customer's message became: its wamid and the delivery carrying it to the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundReceipt {
    pub wamid: String,
    pub delivery_id: DeliveryId,
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
