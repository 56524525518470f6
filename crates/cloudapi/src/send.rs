//! What goes to `POST /{version}/{phone-number-id}/messages` and what comes back: send requests for
//! every outbound type, the mark-as-read request, and the answers.

mod interactive;
mod template;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use crate::shared::{
    ContactAddress, ContactCard, ContactEmail, ContactName, ContactOrg, ContactPhone, ContactUrl,
    Extra, Location, NumberOrString, Reaction,
};
pub use interactive::{
    Action, ActionParameters, Header, Interactive, InteractiveKind, ReplyButton, ReplyButtonTitle,
    Row, Section, TextObject,
};
pub use template::{Currency, DateTime, Language, Parameter, Template, TemplateComponent};

/// `messaging_product` of every request: the Graph API serves other products too.
pub const MESSAGING_PRODUCT: &str = "whatsapp";

/// A message to send: `{"messaging_product": "whatsapp", "to", "type", <type>: {...}, ...}`.
#[derive(Clone, Debug, PartialEq)]
pub struct SendMessageRequest {
    pub messaging_product: String,
    /// `individual`; Meta's contacts example leaves it out.
    pub recipient_type: Option<String>,
    /// The customer's phone number (any common format) or `wa_id`.
    pub to: String,
    /// Set to make the message a reply.
    pub context: Option<ReplyContext>,
    /// Handed back unchanged in this message's status webhooks.
    pub biz_opaque_callback_data: Option<String>,
    /// The `type` and the object under that key.
    pub content: OutboundContent,
    pub extra: Extra,
}

impl SendMessageRequest {
    /// A message to one customer, with no reply context.
    pub fn new(to: impl Into<String>, content: OutboundContent) -> Self {
        Self {
            messaging_product: MESSAGING_PRODUCT.to_owned(),
            recipient_type: Some("individual".to_owned()),
            to: to.into(),
            context: None,
            biz_opaque_callback_data: None,
            content,
            extra: Extra::new(),
        }
    }

    /// A plain text message.
    pub fn text(to: impl Into<String>, body: impl Into<String>) -> Self {
        Self::new(to, OutboundContent::Text(Text::new(body)))
    }

    /// Makes this message a reply to the message with this wamid.
    pub fn reply_to(mut self, wamid: impl Into<String>) -> Self {
        self.context = Some(ReplyContext {
            message_id: wamid.into(),
            extra: Extra::new(),
        });
        self
    }

    /// The `type` string.
    pub fn kind(&self) -> &str {
        self.content.kind()
    }
}

#[derive(Deserialize)]
struct RequestWire {
    messaging_product: String,
    recipient_type: Option<String>,
    to: String,
    #[serde(rename = "type")]
    kind: String,
    context: Option<ReplyContext>,
    biz_opaque_callback_data: Option<String>,
    #[serde(flatten)]
    rest: Extra,
}

#[derive(Serialize)]
struct RequestWireRef<'a> {
    messaging_product: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_type: Option<&'a str>,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a ReplyContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<&'a str>,
    #[serde(flatten)]
    rest: Extra,
}

impl<'de> Deserialize<'de> for SendMessageRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut wire = RequestWire::deserialize(deserializer)?;
        let object = wire.rest.remove(&wire.kind);
        let content =
            OutboundContent::from_parts(wire.kind, object).map_err(serde::de::Error::custom)?;
        Ok(Self {
            messaging_product: wire.messaging_product,
            recipient_type: wire.recipient_type,
            to: wire.to,
            context: wire.context,
            biz_opaque_callback_data: wire.biz_opaque_callback_data,
            content,
            extra: wire.rest,
        })
    }
}

impl Serialize for SendMessageRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut rest = self.extra.clone();
        let object = serde_json::to_value(&self.content).map_err(serde::ser::Error::custom)?;
        rest.insert(self.content.kind().to_owned(), object);
        RequestWireRef {
            messaging_product: &self.messaging_product,
            recipient_type: self.recipient_type.as_deref(),
            to: &self.to,
            kind: self.content.kind(),
            context: self.context.as_ref(),
            biz_opaque_callback_data: self.biz_opaque_callback_data.as_deref(),
            rest,
        }
        .serialize(serializer)
    }
}

/// `context` of a send request: the wamid of the message replied to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyContext {
    pub message_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The content of a send request, by `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum OutboundContent {
    Text(Text),
    Image(Media),
    Video(Media),
    Audio(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    Contacts(Vec<ContactCard>),
    /// Boxed: an interactive message is several times larger than any other content.
    Interactive(Box<Interactive>),
    Template(Template),
    Reaction(Reaction),
    /// A `type` this crate does not model, with its object as given.
    Other {
        kind: String,
        value: Value,
    },
}

impl OutboundContent {
    /// Types `object` by `kind`. A known kind needs its object; an unknown kind keeps whatever is there.
    pub fn from_parts(kind: String, object: Option<Value>) -> Result<Self, serde_json::Error> {
        fn typed<T: serde::de::DeserializeOwned>(
            kind: &str,
            object: Option<Value>,
        ) -> Result<T, serde_json::Error> {
            let object = object
                .ok_or_else(|| serde::de::Error::custom(format_args!("missing `{kind}` object")))?;
            serde_json::from_value(object)
        }
        Ok(match kind.as_str() {
            "text" => Self::Text(typed(&kind, object)?),
            "image" => Self::Image(typed(&kind, object)?),
            "video" => Self::Video(typed(&kind, object)?),
            "audio" => Self::Audio(typed(&kind, object)?),
            "document" => Self::Document(typed(&kind, object)?),
            "sticker" => Self::Sticker(typed(&kind, object)?),
            "location" => Self::Location(typed(&kind, object)?),
            "contacts" => Self::Contacts(typed(&kind, object)?),
            "interactive" => Self::Interactive(typed(&kind, object)?),
            "template" => Self::Template(typed(&kind, object)?),
            "reaction" => Self::Reaction(typed(&kind, object)?),
            _ => Self::Other {
                value: object.unwrap_or(Value::Null),
                kind,
            },
        })
    }

    /// The `type` string.
    pub fn kind(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::Document(_) => "document",
            Self::Sticker(_) => "sticker",
            Self::Location(_) => "location",
            Self::Contacts(_) => "contacts",
            Self::Interactive(_) => "interactive",
            Self::Template(_) => "template",
            Self::Reaction(_) => "reaction",
            Self::Other { kind, .. } => kind,
        }
    }
}

/// Serializes as the content object alone (what goes under the `type` key).
impl Serialize for OutboundContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => text.serialize(serializer),
            Self::Image(media)
            | Self::Video(media)
            | Self::Audio(media)
            | Self::Document(media)
            | Self::Sticker(media) => media.serialize(serializer),
            Self::Location(location) => location.serialize(serializer),
            Self::Contacts(cards) => cards.serialize(serializer),
            Self::Interactive(interactive) => interactive.serialize(serializer),
            Self::Template(template) => template.serialize(serializer),
            Self::Reaction(reaction) => reaction.serialize(serializer),
            Self::Other { value, .. } => value.serialize(serializer),
        }
    }
}

/// `text` of a send request. The body is at most 4096 characters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub body: String,
    /// Render a preview of the first URL in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Text {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            preview_url: None,
            extra: Extra::new(),
        }
    }
}

/// Media to send, by uploaded `id` or public `link` (exactly one of them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Media {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Image, video and document only; at most 1024 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Document only: the name the customer sees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio only: send as a voice note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Media {
    /// Media uploaded to Meta beforehand.
    pub fn by_id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// Media Meta fetches from a public URL.
    pub fn by_link(link: impl Into<String>) -> Self {
        Self {
            link: Some(link.into()),
            ..Self::default()
        }
    }
}

/// Marks an inbound message as read (blue ticks), optionally showing a typing indicator for up to 25 s.
/// Sent to the same `/messages` endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkReadRequest {
    pub messaging_product: String,
    /// Always `read`.
    pub status: String,
    /// The wamid of the inbound message.
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typing_indicator: Option<TypingIndicator>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MarkReadRequest {
    pub fn new(wamid: impl Into<String>, typing_indicator: bool) -> Self {
        Self {
            messaging_product: MESSAGING_PRODUCT.to_owned(),
            status: "read".to_owned(),
            message_id: wamid.into(),
            typing_indicator: typing_indicator.then(|| TypingIndicator {
                kind: "text".to_owned(),
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        }
    }
}

/// `typing_indicator`: `{"type": "text"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypingIndicator {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Meta's answer to a send: the wamid of the new message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendMessageResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<SentContact>>,
    pub messages: Vec<SentMessage>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl SendMessageResponse {
    /// The wamid of the message sent.
    pub fn wamid(&self) -> Option<&str> {
        self.messages.first().map(|message| message.id.as_str())
    }
}

/// `contacts[]` of a send answer: the number as given and the `wa_id` Meta resolved it to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentContact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `messages[]` of a send answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The wamid.
    pub id: String,
    /// For templates: `accepted`, `held_for_quality_assessment` or `paused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `{"success": true}`: the answer to mark-as-read and other updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuccessResponse {
    pub success: bool,
    #[serde(flatten)]
    pub extra: Extra,
}
