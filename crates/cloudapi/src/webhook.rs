//! The webhook Meta POSTs: the envelope, its entries and changes, and every inbound message, status
//! and template event, parsed tolerantly so that one odd item never costs the rest of the batch.
//!
//! A body is an envelope error only when it is not a JSON object or has no `entry` array. Below
//! that, each entry, change, message, status, contact and error is read on its own: one that does
//! not fit its type becomes an [`Item::Malformed`] holding its raw JSON, and its neighbours parse as
//! usual. Unknown keys, message types, status values and change fields are kept, so serializing a
//! parsed notification gives back the JSON Meta sent. The one exception: `"key": null` on a known
//! optional field reads as absent, and is left out when serialized again.

mod message;
mod status;
mod template;
#[cfg(test)]
mod tests;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use crate::error::{ErrorData, ErrorObject};
pub use crate::shared::{ContactCard, Extra, Location, NumberOrString, Reaction};
pub use message::{
    ButtonReply, ContentError, Context, Edit, EditedMessage, InboundMedia, Interactive, ListReply,
    Message, MessageContent, NfmReply, Order, ProductItem, QuickReply, Referral, ReferredProduct,
    Revoke, SystemNotice, Text, Unsupported,
};
pub use status::{Conversation, ConversationOrigin, Pricing, Status, StatusKind};
pub use template::{
    RejectionInfo, TemplateCategoryUpdate, TemplateQualityUpdate, TemplateStatusUpdate,
};

/// The change `field` of inbound messages, statuses and value-level errors.
pub const FIELD_MESSAGES: &str = "messages";
/// The change `field` of messages the business sent from the WhatsApp Business app (coexistence).
pub const FIELD_SMB_MESSAGE_ECHOES: &str = "smb_message_echoes";
/// The change `field` of template review results.
pub const FIELD_TEMPLATE_STATUS: &str = "message_template_status_update";
/// The change `field` of template quality changes.
pub const FIELD_TEMPLATE_QUALITY: &str = "message_template_quality_update";
/// The change `field` of template category changes.
pub const FIELD_TEMPLATE_CATEGORY: &str = "template_category_update";

/// Why a webhook body could not be read at all. Anything less serious is an [`Item::Malformed`].
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The body is not JSON.
    #[error("the webhook body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("the webhook body is not a JSON object")]
    NotAnObject,
    /// The object has no `entry` array.
    #[error("the webhook body has no `entry` array")]
    NoEntryArray,
}

/// A part of the webhook that did not fit its type, kept as Meta sent it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct Malformed {
    /// The JSON as it arrived.
    pub raw: Value,
    /// Why it did not parse.
    pub error: String,
}

/// One element of a webhook array, read on its own so that it cannot spoil its neighbours.
#[derive(Clone, Debug, PartialEq)]
pub enum Item<T> {
    Parsed(T),
    Malformed(Malformed),
}

impl<T> Item<T> {
    /// The typed value, or what went wrong with it.
    pub fn as_result(&self) -> Result<&T, &Malformed> {
        match self {
            Self::Parsed(value) => Ok(value),
            Self::Malformed(bad) => Err(bad),
        }
    }

    /// The typed value, if it parsed.
    pub fn parsed(&self) -> Option<&T> {
        self.as_result().ok()
    }

    /// The raw JSON and the error, if it did not parse.
    pub fn malformed(&self) -> Option<&Malformed> {
        self.as_result().err()
    }
}

impl<T: DeserializeOwned> Item<T> {
    /// Reads one element; never fails, since a misfit is kept as [`Item::Malformed`].
    pub fn from_value(raw: Value) -> Self {
        match T::deserialize(&raw) {
            Ok(value) => Self::Parsed(value),
            Err(error) => Self::Malformed(Malformed {
                raw,
                error: error.to_string(),
            }),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_value)
    }
}

impl<T: Serialize> Serialize for Item<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Parsed(value) => value.serialize(serializer),
            Self::Malformed(bad) => bad.raw.serialize(serializer),
        }
    }
}

/// A whole webhook POST: `{"object": "whatsapp_business_account", "entry": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    /// `whatsapp_business_account`; absent or not a string, it stays in `extra`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub entry: Vec<Item<Entry>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Notification {
    /// Reads a webhook body. Fails only when the body is not a JSON object with an `entry` array.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(body).map_err(EnvelopeError::NotJson)?;
        Self::from_value(value)
    }

    /// Reads an already decoded webhook body; see [`Notification::parse`].
    pub fn from_value(value: Value) -> Result<Self, EnvelopeError> {
        let Value::Object(mut extra) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        let Some(Value::Array(entries)) = extra.remove("entry") else {
            return Err(EnvelopeError::NoEntryArray);
        };
        let object = match extra.remove("object") {
            Some(Value::String(object)) => Some(object),
            Some(other) => {
                extra.insert("object".to_owned(), other);
                None
            }
            None => None,
        };
        Ok(Self {
            object,
            entry: entries.into_iter().map(Item::from_value).collect(),
            extra,
        })
    }

    /// Every change of every entry that parsed, in the order Meta sent them, with its entry.
    /// Parts that did not parse are listed by [`Notification::malformed`] instead.
    pub fn changes(&self) -> impl Iterator<Item = (&Entry, &Change)> {
        self.entry
            .iter()
            .filter_map(Item::parsed)
            .flat_map(|entry| {
                entry
                    .changes
                    .iter()
                    .filter_map(Item::parsed)
                    .map(move |change| (entry, change))
            })
    }

    /// Every part of the webhook that did not parse, with where it sits
    /// (`entry[0].changes[1].value.messages[2]`), for logging and parking.
    pub fn malformed(&self) -> Vec<MalformedPart<'_>> {
        let mut found = Vec::new();
        for (e, entry) in self.entry.iter().enumerate() {
            let entry = match entry {
                Item::Parsed(entry) => entry,
                Item::Malformed(bad) => {
                    found.push(MalformedPart::new(format!("entry[{e}]"), bad));
                    continue;
                }
            };
            for (c, change) in entry.changes.iter().enumerate() {
                let at = format!("entry[{e}].changes[{c}]");
                match change {
                    Item::Malformed(bad) => found.push(MalformedPart::new(at, bad)),
                    Item::Parsed(change) => change
                        .value
                        .collect_malformed(&format!("{at}.value"), &mut found),
                }
            }
        }
        found
    }
}

impl<'de> Deserialize<'de> for Notification {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

/// A part of a webhook that did not parse, and where it sits.
#[derive(Clone, Debug, PartialEq)]
pub struct MalformedPart<'a> {
    /// A path such as `entry[0].changes[1].value.messages[2]`.
    pub location: String,
    pub raw: &'a Value,
    pub error: &'a str,
}

impl<'a> MalformedPart<'a> {
    fn new(location: String, bad: &'a Malformed) -> Self {
        Self {
            location,
            raw: &bad.raw,
            error: &bad.error,
        }
    }
}

fn collect_items<'a, T>(
    items: &'a [Item<T>],
    at: &str,
    name: &str,
    found: &mut Vec<MalformedPart<'a>>,
) {
    for (i, item) in items.iter().enumerate() {
        if let Item::Malformed(bad) = item {
            found.push(MalformedPart::new(format!("{at}.{name}[{i}]"), bad));
        }
    }
}

/// One entry: the changes of one WhatsApp Business Account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The WhatsApp Business Account id: how template events, which have no phone number, are routed.
    pub id: String,
    /// Unix seconds; sent with template events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    pub changes: Vec<Item<Change>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One change: `{"field": ..., "value": ...}`, with the value typed by its field.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub value: ChangeValue,
    pub extra: Extra,
}

impl Change {
    /// The `field` this change was sent under, known or not.
    pub fn field(&self) -> &str {
        self.value.field()
    }
}

#[derive(Deserialize)]
struct ChangeWire {
    field: String,
    value: Value,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Serialize)]
struct ChangeWireRef<'a> {
    field: &'a str,
    value: &'a ChangeValue,
    #[serde(flatten)]
    extra: &'a Extra,
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ChangeWire::deserialize(deserializer)?;
        Ok(Self {
            value: ChangeValue::from_field(wire.field, wire.value),
            extra: wire.extra,
        })
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChangeWireRef {
            field: self.field(),
            value: &self.value,
            extra: &self.extra,
        }
        .serialize(serializer)
    }
}

/// The `value` of a change, typed by the change's `field`.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeValue {
    /// `messages`: inbound messages, statuses of sent ones, or value-level errors.
    Messages(MessagesValue),
    /// `smb_message_echoes`: messages the business sent from the WhatsApp Business app.
    MessageEchoes(MessageEchoesValue),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// `message_template_quality_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// `template_category_update`.
    TemplateCategory(TemplateCategoryUpdate),
    /// A field this crate does not model, kept as sent.
    Other { field: String, value: Value },
    /// A known field whose value did not fit its type, kept as sent.
    Malformed {
        field: String,
        value: Value,
        error: String,
    },
}

impl ChangeValue {
    /// Types `value` by `field`; never fails, since misfits become [`ChangeValue::Malformed`].
    pub fn from_field(field: String, value: Value) -> Self {
        fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
            T::deserialize(value)
        }
        let parsed = match field.as_str() {
            FIELD_MESSAGES => typed(&value).map(Self::Messages),
            FIELD_SMB_MESSAGE_ECHOES => typed(&value).map(Self::MessageEchoes),
            FIELD_TEMPLATE_STATUS => typed(&value).map(Self::TemplateStatus),
            FIELD_TEMPLATE_QUALITY => typed(&value).map(Self::TemplateQuality),
            FIELD_TEMPLATE_CATEGORY => typed(&value).map(Self::TemplateCategory),
            _ => return Self::Other { field, value },
        };
        parsed.unwrap_or_else(|error| Self::Malformed {
            field,
            value,
            error: error.to_string(),
        })
    }

    /// The change `field` this value belongs to.
    pub fn field(&self) -> &str {
        match self {
            Self::Messages(_) => FIELD_MESSAGES,
            Self::MessageEchoes(_) => FIELD_SMB_MESSAGE_ECHOES,
            Self::TemplateStatus(_) => FIELD_TEMPLATE_STATUS,
            Self::TemplateQuality(_) => FIELD_TEMPLATE_QUALITY,
            Self::TemplateCategory(_) => FIELD_TEMPLATE_CATEGORY,
            Self::Other { field, .. } | Self::Malformed { field, .. } => field,
        }
    }

    /// The business phone number the change is about, for routing; template events have none.
    pub fn phone_number_id(&self) -> Option<&str> {
        match self {
            Self::Messages(value) => Some(&value.metadata.phone_number_id),
            Self::MessageEchoes(value) => Some(&value.metadata.phone_number_id),
            _ => None,
        }
    }

    fn collect_malformed<'a>(&'a self, at: &str, found: &mut Vec<MalformedPart<'a>>) {
        match self {
            Self::Messages(value) => {
                collect_items(value.contacts(), at, "contacts", found);
                collect_items(value.messages(), at, "messages", found);
                collect_items(value.statuses(), at, "statuses", found);
                collect_items(value.errors(), at, "errors", found);
            }
            Self::MessageEchoes(value) => {
                collect_items(value.contacts(), at, "contacts", found);
                collect_items(value.message_echoes(), at, "message_echoes", found);
            }
            Self::Malformed { value, error, .. } => found.push(MalformedPart {
                location: at.to_owned(),
                raw: value,
                error,
            }),
            Self::TemplateStatus(_)
            | Self::TemplateQuality(_)
            | Self::TemplateCategory(_)
            | Self::Other { .. } => {}
        }
    }
}

impl Serialize for ChangeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Messages(value) => value.serialize(serializer),
            Self::MessageEchoes(value) => value.serialize(serializer),
            Self::TemplateStatus(value) => value.serialize(serializer),
            Self::TemplateQuality(value) => value.serialize(serializer),
            Self::TemplateCategory(value) => value.serialize(serializer),
            Self::Other { value, .. } | Self::Malformed { value, .. } => {
                value.serialize(serializer)
            }
        }
    }
}

/// `metadata`: which business phone number the change is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub display_phone_number: String,
    /// The id wagate routes on: one per connected business number.
    pub phone_number_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A customer named in `contacts[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The customer's phone number; Meta may omit it once usernames exist, leaving only `user_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `contacts[].profile`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The value of a `messages` change. It holds messages, or statuses, or value-level errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Item<Contact>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Item<Message>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<Item<Status>>>,
    /// Errors not tied to one message, such as a throughput limit or an unreadable payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Item<ErrorObject>>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MessagesValue {
    pub fn contacts(&self) -> &[Item<Contact>] {
        self.contacts.as_deref().unwrap_or_default()
    }

    pub fn messages(&self) -> &[Item<Message>] {
        self.messages.as_deref().unwrap_or_default()
    }

    pub fn statuses(&self) -> &[Item<Status>] {
        self.statuses.as_deref().unwrap_or_default()
    }

    pub fn errors(&self) -> &[Item<ErrorObject>] {
        self.errors.as_deref().unwrap_or_default()
    }

    /// The profile name Meta gave for a customer's `wa_id`.
    pub fn contact_name(&self, wa_id: &str) -> Option<&str> {
        contact_name(self.contacts(), wa_id)
    }
}

/// The value of an `smb_message_echoes` change: messages the business sent from the WhatsApp
/// Business app on a number shared with the Cloud API. `from` is the business, `to` the customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageEchoesValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Item<Contact>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_echoes: Option<Vec<Item<Message>>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MessageEchoesValue {
    pub fn contacts(&self) -> &[Item<Contact>] {
        self.contacts.as_deref().unwrap_or_default()
    }

    pub fn message_echoes(&self) -> &[Item<Message>] {
        self.message_echoes.as_deref().unwrap_or_default()
    }

    /// The profile name Meta gave for a customer's `wa_id`.
    pub fn contact_name(&self, wa_id: &str) -> Option<&str> {
        contact_name(self.contacts(), wa_id)
    }
}

fn contact_name<'a>(contacts: &'a [Item<Contact>], wa_id: &str) -> Option<&'a str> {
    contacts
        .iter()
        .filter_map(Item::parsed)
        .find(|contact| contact.wa_id.as_deref() == Some(wa_id))
        .and_then(|contact| contact.profile.as_ref()?.name.as_deref())
}
