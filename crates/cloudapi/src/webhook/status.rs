//! The status of a message the business sent: sent, delivered, read, played or failed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorObject;
use crate::shared::Extra;

open_string_enum! {
    /// Where a sent message has got to. Statuses can arrive out of order, and a read can come
    /// without a delivered.
    pub enum StatusKind {
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        /// A voice message was played.
        Played = "played",
        Failed = "failed",
    }
}

/// One element of `statuses[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The wamid of the message this status is about.
    pub id: String,
    pub status: StatusKind,
    /// Unix seconds as a string of digits, as Meta sends it.
    pub timestamp: String,
    /// The customer's phone number; Meta may omit it for customers who use a username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The customer's business-scoped user id (BSUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_user_id: Option<String>,
    /// Gone from v24.0 on; older versions send it with sent and delivered statuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Set when `status` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorObject>>,
    /// Whatever the business attached to the send request, handed back unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Status {
    /// The timestamp as Unix seconds, if it is a number.
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.timestamp.trim().parse().ok()
    }

    pub fn errors(&self) -> &[ErrorObject] {
        self.errors.as_deref().unwrap_or_default()
    }

    /// The whole status as JSON, equal to what Meta sent.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `statuses[].conversation`: the conversation the message was billed in (before v24.0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unix seconds as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<ConversationOrigin>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conversation.origin`: what opened the conversation (`service`, `marketing`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationOrigin {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `statuses[].pricing`: whether and how the message is charged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    /// `CBP` (per conversation, before July 2025) or `PMP` (per message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// PMP only: `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
