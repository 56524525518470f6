//! What passes between business numbers and customers besides webhook bodies: when each customer
//! last wrote (the 24-hour service window), which wamids a number received or sent, and the logs of
//! messages sent and read receipts that tests inspect.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::InputError;
use crate::records::{BoundedIndex, BoundedLog, unix_millis};

/// Meta's customer service window: free-form messages may be sent this long after the customer last wrote.
pub const SERVICE_WINDOW_SECONDS: i64 = 24 * 60 * 60;

/// A message the business sent through `POST /{version}/{phone_number_id}/messages`, as accepted.
///
/// The emulator keeps the newest [`crate::RECORDS_KEPT`] of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub phone_number_id: String,
    /// The wamid the send was answered with.
    pub wamid: String,
    /// `to` exactly as the request gave it, e.g. `+16505551234`.
    pub to: String,
    /// The recipient's wa_id: `to` without its `+`.
    pub wa_id: String,
    /// The request's `type`: `text`, `template`, `interactive`...
    #[serde(rename = "type")]
    pub message_type: String,
    /// The whole request body, as received.
    pub request: Value,
    /// For a template send, the id of the stored template it was sent from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(rename = "received_at_ms", serialize_with = "unix_millis")]
    pub received_at: SystemTime,
}

/// A mark-as-read call the emulator accepted.
///
/// The emulator keeps the newest [`crate::RECORDS_KEPT`] of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadReceipt {
    pub phone_number_id: String,
    /// The inbound message marked read.
    pub wamid: String,
    /// Whether the call also asked for a typing indicator.
    pub typing_indicator: bool,
    #[serde(rename = "received_at_ms", serialize_with = "unix_millis")]
    pub received_at: SystemTime,
}

/// The `status` of a status webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
    /// A voice message was played.
    Played,
    /// The message could not be delivered; the webhook carries `errors`.
    Failed,
}

impl MessageStatus {
    /// Reads a status named in `field`.
    pub(crate) fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        match value {
            "sent" => Ok(Self::Sent),
            "delivered" => Ok(Self::Delivered),
            "read" => Ok(Self::Read),
            "played" => Ok(Self::Played),
            "failed" => Ok(Self::Failed),
            _ => Err(InputError::new(
                field,
                "must be one of sent, delivered, read, played, failed",
            )),
        }
    }

    /// Reads a status the emulator may send by itself after a send: sent, delivered, read or
    /// played (which only audio messages get).
    pub(crate) fn parse_automatic(field: &str, value: &str) -> Result<Self, InputError> {
        match Self::parse(field, value)? {
            status @ (Self::Sent | Self::Delivered | Self::Read | Self::Played) => Ok(status),
            Self::Failed => Err(InputError::new(
                field,
                "may only hold sent, delivered, read and played; send failed through POST /admin/statuses",
            )),
        }
    }

    /// The word webhooks carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pricing category of a sent message, as status webhooks carry it in `pricing.category`.
///
/// Templates are billable (`"type":"regular"`) in their template's category; free-form messages,
/// which may only go inside the customer service window, are `service` and free
/// (`"type":"free_customer_service"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PricingCategory {
    Marketing,
    Utility,
    Authentication,
    Service,
}

impl PricingCategory {
    /// Reads a template category named in `field`, in any case (`UTILITY` as the template API
    /// writes it, `utility` as pricing does).
    pub(crate) fn parse_template(field: &str, value: &str) -> Result<Self, InputError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "marketing" => Ok(Self::Marketing),
            "utility" => Ok(Self::Utility),
            "authentication" => Ok(Self::Authentication),
            _ => Err(InputError::new(
                field,
                "must be a template category: marketing, utility or authentication",
            )),
        }
    }

    /// The word webhooks carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
            Self::Service => "service",
        }
    }

    /// Whether Meta charges for it: everything but service messages.
    pub fn billable(self) -> bool {
        self != Self::Service
    }
}

impl fmt::Display for PricingCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What status webhooks about a sent message need to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub phone_number_id: String,
    pub wa_id: String,
    pub biz_opaque_callback_data: Option<String>,
    /// The pricing category its statuses carry: the template's category for templates, `service`
    /// otherwise.
    pub category: PricingCategory,
    /// One conversation id for all of the message's statuses.
    pub conversation_id: String,
}

/// Windows, wamid indexes and the logs of sends and read receipts, for every number.
#[derive(Default)]
pub(crate) struct Messaging {
    /// Per phone number id, per customer wa_id: Unix seconds of the customer's latest message.
    /// Not bounded: it holds one entry per customer, and forgetting one would close a window.
    last_inbound: HashMap<String, HashMap<String, i64>>,
    /// Inbound wamid to the phone number id it was delivered to: what may be marked read.
    inbound: BoundedIndex<String>,
    /// Outbound wamid to what its status webhooks need.
    outbound: BoundedIndex<Outbound>,
    sent: BoundedLog<SentMessage>,
    read_receipts: BoundedLog<ReadReceipt>,
}

impl Messaging {
    /// A customer's message reached a number: it may be marked read, and it opens (or extends) the window.
    pub fn customer_wrote(&mut self, phone_number_id: &str, from: &str, wamid: &str, at: i64) {
        self.inbound
            .insert(wamid.to_owned(), phone_number_id.to_owned());
        let latest = self
            .last_inbound
            .entry(phone_number_id.to_owned())
            .or_default()
            .entry(from.to_owned())
            .or_insert(at);
        *latest = (*latest).max(at);
    }

    /// Whether the customer wrote to this number less than 24 hours before `now` (Unix seconds).
    pub fn window_open(&self, phone_number_id: &str, wa_id: &str, now: i64) -> bool {
        self.last_inbound
            .get(phone_number_id)
            .and_then(|customers| customers.get(wa_id))
            .is_some_and(|&last| now - last < SERVICE_WINDOW_SECONDS)
    }

    /// Whether this number received a message with this wamid.
    pub fn received(&self, phone_number_id: &str, wamid: &str) -> bool {
        self.inbound
            .get(wamid)
            .is_some_and(|number| number == phone_number_id)
    }

    pub fn record_sent(&mut self, message: SentMessage, outbound: Outbound) {
        self.outbound.insert(message.wamid.clone(), outbound);
        self.sent.push(message);
    }

    /// A message this number sent, by wamid.
    pub fn outbound(&self, phone_number_id: &str, wamid: &str) -> Option<&Outbound> {
        self.outbound
            .get(wamid)
            .filter(|o| o.phone_number_id == phone_number_id)
    }

    pub fn record_read_receipt(&mut self, receipt: ReadReceipt) {
        self.read_receipts.push(receipt);
    }

    pub fn sent(&self, phone_number_id: Option<&str>) -> Vec<SentMessage> {
        self.sent
            .iter()
            .filter(|m| phone_number_id.is_none_or(|id| id == m.phone_number_id))
            .cloned()
            .collect()
    }

    pub fn read_receipts(&self, phone_number_id: Option<&str>) -> Vec<ReadReceipt> {
        self.read_receipts
            .iter()
            .filter(|r| phone_number_id.is_none_or(|id| id == r.phone_number_id))
            .cloned()
            .collect()
    }
}

/// One customer message found in a webhook body: its wamid, sender and Unix seconds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FoundMessage {
    pub wamid: String,
    pub from: String,
    pub timestamp: i64,
}

/// The customer messages in a webhook body the caller wrote by hand, so raw webhooks open windows
/// and can be marked read like the ones the emulator builds. A body of another shape gives none.
pub(crate) fn messages_in_webhook(body: &[u8]) -> Vec<FoundMessage> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        entry: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        changes: Vec<Change>,
    }
    #[derive(Deserialize)]
    struct Change {
        #[serde(default)]
        value: Option<ChangeValue>,
    }
    #[derive(Deserialize)]
    struct ChangeValue {
        #[serde(default)]
        messages: Vec<Message>,
    }
    #[derive(Deserialize)]
    struct Message {
        id: Option<String>,
        from: Option<String>,
        timestamp: Option<Value>,
    }

    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return Vec::new();
    };
    envelope
        .entry
        .into_iter()
        .flat_map(|entry| entry.changes)
        .filter_map(|change| change.value)
        .flat_map(|value| value.messages)
        .filter_map(|message| {
            let timestamp = match message.timestamp? {
                Value::String(text) => text.parse().ok()?,
                Value::Number(number) => number.as_i64()?,
                _ => return None,
            };
            Some(FoundMessage {
                wamid: message.id?,
                from: message.from?,
                timestamp,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_open_for_24_hours_after_the_latest_message() {
        let mut messaging = Messaging::default();
        let now = 1_750_000_000;
        assert!(!messaging.window_open("1", "16505551234", now));
        messaging.customer_wrote("1", "16505551234", "wamid.a", now - SERVICE_WINDOW_SECONDS);
        assert!(!messaging.window_open("1", "16505551234", now));
        messaging.customer_wrote("1", "16505551234", "wamid.b", now - 60);
        assert!(messaging.window_open("1", "16505551234", now));
        // An older message arriving late does not move the window back.
        messaging.customer_wrote("1", "16505551234", "wamid.c", now - 90_000);
        assert!(messaging.window_open("1", "16505551234", now));
        assert!(!messaging.window_open("2", "16505551234", now));
    }

    #[test]
    fn a_wamid_counts_as_received_only_by_its_own_number() {
        let mut messaging = Messaging::default();
        messaging.customer_wrote("1", "16505551234", "wamid.a", 1);
        assert!(messaging.received("1", "wamid.a"));
        assert!(!messaging.received("2", "wamid.a"));
        assert!(!messaging.received("1", "wamid.b"));
    }

    #[test]
    fn messages_are_found_in_a_batch_and_junk_is_skipped() {
        let body = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": [
                    {"field": "messages", "value": {"messages": [
                        {"from": "111", "id": "wamid.1", "timestamp": "1700000000", "type": "text"},
                        {"from": "222", "id": "wamid.2", "timestamp": 1700000001},
                        {"id": "wamid.no-sender", "timestamp": "1"}
                    ]}},
                    {"field": "messages", "value": {"statuses": []}}
                ]},
                {"id": "2"}
            ]
        });
        let found = messages_in_webhook(body.to_string().as_bytes());
        assert_eq!(
            found,
            [
                FoundMessage {
                    wamid: "wamid.1".into(),
                    from: "111".into(),
                    timestamp: 1_700_000_000
                },
                FoundMessage {
                    wamid: "wamid.2".into(),
                    from: "222".into(),
                    timestamp: 1_700_000_001
                },
            ]
        );
        assert!(messages_in_webhook(b"not json").is_empty());
        assert!(messages_in_webhook(b"[1, 2]").is_empty());
    }

    #[test]
    fn automatic_statuses_are_sent_delivered_read_and_played_only() {
        assert_eq!(
            MessageStatus::parse_automatic("auto_statuses", "read"),
            Ok(MessageStatus::Read)
        );
        assert_eq!(
            MessageStatus::parse_automatic("auto_statuses", "played"),
            Ok(MessageStatus::Played)
        );
        for other in ["failed", "seen"] {
            assert!(MessageStatus::parse_automatic("auto_statuses", other).is_err());
        }
    }

    #[test]
    fn template_categories_are_read_in_any_case() {
        assert_eq!(
            PricingCategory::parse_template("x", "UTILITY"),
            Ok(PricingCategory::Utility)
        );
        assert!(PricingCategory::parse_template("x", "service").is_err());
        assert!(!PricingCategory::Service.billable());
        assert!(PricingCategory::Authentication.billable());
    }
}
