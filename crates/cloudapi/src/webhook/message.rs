//! An inbound message (or an echo of one the business sent from the app), and its typed content.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::error::ErrorObject;
use crate::shared::{ContactCard, Extra, Location, NumberOrString, Reaction};

/// One element of `messages[]` (or `message_echoes[]`).
///
/// Only the parts every message has are checked when the webhook is read; the object under the
/// key named by `type` is typed on demand by [`Message::content`], so a message whose content does
/// not fit still gives its id, sender and raw content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The wamid: unique per message, the key against redelivery.
    pub id: String,
    /// The customer's phone number (for echoes: the business's). Meta may omit it for customers
    /// who use a username, leaving only `from_user_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The sender's business-scoped user id (BSUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<String>,
    /// Only on echoes: the customer the business wrote to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Unix seconds as a string of digits, as Meta sends it.
    pub timestamp: String,
    /// The `type`, known to this crate or not; the content sits under the key of the same name.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// Set when the customer came from a click-to-WhatsApp ad or post.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
    /// Set on `unsupported` messages (code 131051).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorObject>>,
    /// The content object under the `type` key, and every other key Meta sent.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// The `type` string, including types this crate does not know.
    pub fn message_type(&self) -> &str {
        &self.kind
    }

    /// The object under the key named by `type`, exactly as Meta sent it.
    pub fn type_object(&self) -> Option<&Value> {
        self.extra.get(&self.kind)
    }

    /// The content, typed when the type is known to this crate.
    pub fn content(&self) -> Result<MessageContent, ContentError> {
        MessageContent::from_parts(&self.kind, self.type_object())
    }

    /// The timestamp as Unix seconds, if it is a number.
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.timestamp.trim().parse().ok()
    }

    pub fn errors(&self) -> &[ErrorObject] {
        self.errors.as_deref().unwrap_or_default()
    }

    /// Whether the customer forwarded this message (once or many times).
    pub fn is_forwarded(&self) -> bool {
        self.context.as_ref().is_some_and(|context| {
            context.forwarded == Some(true) || context.frequently_forwarded == Some(true)
        })
    }

    /// The whole message as JSON, equal to what Meta sent.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `context`: what a message replies to, or that it was forwarded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Who sent the message replied to (the business number for replies to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The wamid of the message replied to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<bool>,
    /// Forwarded more than five times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequently_forwarded: Option<bool>,
    /// Set when the customer asked about a product from a catalog message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referred_product: Option<ReferredProduct>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `context.referred_product`: the catalog product a customer asked about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferredProduct {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_retailer_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `referral`: the ad or post a customer clicked to start the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// `ad` or `post`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// The click id advertisers report conversions with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a message's content could not be typed. The message itself, and its raw content, are fine.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A known `type` without the object of that name.
    #[error("the message has type `{kind}` but no `{kind}` object")]
    Missing { kind: String },
    /// A known `type` whose object does not fit.
    #[error("the `{kind}` object does not fit its type: {source}")]
    Invalid {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The content of a message, by `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageContent {
    Text(Text),
    Image(InboundMedia),
    Video(InboundMedia),
    Document(InboundMedia),
    /// `voice` tells a voice note from an audio file.
    Audio(InboundMedia),
    /// `animated` tells an animated sticker.
    Sticker(InboundMedia),
    Location(Location),
    Contacts(Vec<ContactCard>),
    /// A reply to an interactive message: a button, a list row, or a completed Flow.
    Interactive(Interactive),
    /// A tap on a template's quick-reply button.
    Button(QuickReply),
    Reaction(Reaction),
    Order(Order),
    /// A notice from WhatsApp: the customer changed number, or their identity changed.
    System(SystemNotice),
    /// A message type WhatsApp does not pass to the Cloud API (see the message's `errors`).
    Unsupported(Unsupported),
    /// The customer edited an earlier message.
    Edit(Edit),
    /// The customer deleted an earlier message.
    Revoke(Revoke),
    /// A `type` this crate does not know, with its object if there was one.
    Unknown {
        kind: String,
        value: Option<Value>,
    },
}

impl MessageContent {
    /// Types the object found under the key `kind`.
    pub fn from_parts(kind: &str, object: Option<&Value>) -> Result<Self, ContentError> {
        fn typed<T: DeserializeOwned>(
            kind: &str,
            object: Option<&Value>,
        ) -> Result<T, ContentError> {
            let object = object.ok_or_else(|| ContentError::Missing {
                kind: kind.to_owned(),
            })?;
            T::deserialize(object).map_err(|source| ContentError::Invalid {
                kind: kind.to_owned(),
                source,
            })
        }
        Ok(match kind {
            "text" => Self::Text(typed(kind, object)?),
            "image" => Self::Image(typed(kind, object)?),
            "video" => Self::Video(typed(kind, object)?),
            "document" => Self::Document(typed(kind, object)?),
            "audio" => Self::Audio(typed(kind, object)?),
            "sticker" => Self::Sticker(typed(kind, object)?),
            "location" => Self::Location(typed(kind, object)?),
            "contacts" => Self::Contacts(typed(kind, object)?),
            "interactive" => Self::Interactive(typed(kind, object)?),
            "button" => Self::Button(typed(kind, object)?),
            "reaction" => Self::Reaction(typed(kind, object)?),
            "order" => Self::Order(typed(kind, object)?),
            "system" => Self::System(typed(kind, object)?),
            "unsupported" => Self::Unsupported(typed(kind, object)?),
            "edit" => Self::Edit(typed(kind, object)?),
            "revoke" => Self::Revoke(typed(kind, object)?),
            _ => Self::Unknown {
                kind: kind.to_owned(),
                value: object.cloned(),
            },
        })
    }

    /// The `type` string this content goes with.
    pub fn kind(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Document(_) => "document",
            Self::Audio(_) => "audio",
            Self::Sticker(_) => "sticker",
            Self::Location(_) => "location",
            Self::Contacts(_) => "contacts",
            Self::Interactive(_) => "interactive",
            Self::Button(_) => "button",
            Self::Reaction(_) => "reaction",
            Self::Order(_) => "order",
            Self::System(_) => "system",
            Self::Unsupported(_) => "unsupported",
            Self::Edit(_) => "edit",
            Self::Revoke(_) => "revoke",
            Self::Unknown { kind, .. } => kind,
        }
    }

    /// The media id to fetch, for image, video, document, audio and sticker messages.
    pub fn media(&self) -> Option<&InboundMedia> {
        match self {
            Self::Image(media)
            | Self::Video(media)
            | Self::Document(media)
            | Self::Audio(media)
            | Self::Sticker(media) => Some(media),
            _ => None,
        }
    }
}

/// Serializes as the content object alone (what sits under the `type` key).
impl Serialize for MessageContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => text.serialize(serializer),
            Self::Image(media)
            | Self::Video(media)
            | Self::Document(media)
            | Self::Audio(media)
            | Self::Sticker(media) => media.serialize(serializer),
            Self::Location(location) => location.serialize(serializer),
            Self::Contacts(cards) => cards.serialize(serializer),
            Self::Interactive(interactive) => interactive.serialize(serializer),
            Self::Button(button) => button.serialize(serializer),
            Self::Reaction(reaction) => reaction.serialize(serializer),
            Self::Order(order) => order.serialize(serializer),
            Self::System(system) => system.serialize(serializer),
            Self::Unsupported(unsupported) => unsupported.serialize(serializer),
            Self::Edit(edit) => edit.serialize(serializer),
            Self::Revoke(revoke) => revoke.serialize(serializer),
            Self::Unknown { value, .. } => value.serialize(serializer),
        }
    }
}

/// `text`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub body: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `image`, `video`, `document`, `audio` or `sticker` as received: fetch it with `id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMedia {
    /// The media id for `GET /{media-id}`.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The file's SHA-256 (base64 in the examples), to check the download against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Newer webhooks carry the download URL directly; it still needs the bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Documents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio only: a voice note rather than an audio file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// Stickers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive`: the customer's answer to an interactive message. `kind` says which field is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interactive {
    /// `button_reply`, `list_reply`, `nfm_reply`, or a kind this crate does not know.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button_reply: Option<ButtonReply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_reply: Option<ListReply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfm_reply: Option<NfmReply>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive.button_reply`: the reply button tapped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ButtonReply {
    /// The id the business gave the button.
    pub id: String,
    pub title: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive.list_reply`: the list row chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListReply {
    /// The id the business gave the row.
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive.nfm_reply`: a completed WhatsApp Flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NfmReply {
    /// The Flow's answers, as a JSON document inside a string.
    pub response_json: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl NfmReply {
    /// The Flow's answers, decoded from `response_json`.
    pub fn response(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.response_json)
    }
}

/// `button`: a tap on a template's quick-reply button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    /// The payload the business set on the button when sending the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The button's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `order`: a cart sent from a catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_items: Option<Vec<ProductItem>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_retailer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<NumberOrString>,
    /// Kept as sent: an integer stays an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_price: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `system`: a notice from WhatsApp about the customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemNotice {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `user_changed_number`, `customer_identity_changed`, ...
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For `user_changed_number`: the customer's new `wa_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `unsupported`: what kind of message it was, when Meta says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unsupported {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `edit`: the new version of an earlier message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// The wamid of the message edited.
    pub original_message_id: String,
    pub message: EditedMessage,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `edit.message`: the content after the edit, shaped like a message without id or sender.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EditedMessage {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl EditedMessage {
    /// The object under the key named by `type`, exactly as Meta sent it.
    pub fn type_object(&self) -> Option<&Value> {
        self.extra.get(&self.kind)
    }

    /// The new content, typed when the type is known to this crate.
    pub fn content(&self) -> Result<MessageContent, ContentError> {
        MessageContent::from_parts(&self.kind, self.type_object())
    }
}

/// `revoke`: the customer deleted an earlier message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revoke {
    /// The wamid of the message deleted.
    pub original_message_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}
