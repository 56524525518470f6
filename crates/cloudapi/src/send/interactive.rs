//! Interactive messages to send: reply buttons, lists, a call-to-action URL button, and Flows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Media;
use crate::shared::Extra;

open_string_enum! {
    /// `interactive.type`.
    pub enum InteractiveKind {
        /// Up to 3 reply buttons.
        Button = "button",
        /// A menu of up to 10 sections of rows.
        List = "list",
        /// One button opening a URL.
        CtaUrl = "cta_url",
        /// A WhatsApp Flow.
        Flow = "flow",
    }
}

/// `interactive` of a send request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: InteractiveKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<TextObject>,
    /// At most 60 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<TextObject>,
    pub action: Action,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `header`: text (at most 60 characters) or a medium, by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `text`, `image`, `video` or `document`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Media>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<Media>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Media>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `{"text": ...}`: the body and footer of an interactive message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextObject {
    pub text: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl TextObject {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            extra: Extra::new(),
        }
    }
}

/// `action`: which fields apply depends on the interactive kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Lists: the label of the button that opens the menu.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    /// Reply buttons: at most 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<ReplyButton>>,
    /// Lists: at most 10 sections, 10 rows in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<Section>>,
    /// `cta_url` and `flow`: the action's name, equal to the interactive kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `cta_url` and `flow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ActionParameters>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One reply button: `{"type": "reply", "reply": {"id", "title"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyButton {
    #[serde(rename = "type")]
    pub kind: String,
    pub reply: ReplyButtonTitle,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ReplyButton {
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            kind: "reply".to_owned(),
            reply: ReplyButtonTitle {
                id: id.into(),
                title: title.into(),
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }
    }
}

/// `reply`: the button's id (at most 256 characters, comes back in the webhook) and label (at most 20).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyButtonTitle {
    pub id: String,
    pub title: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A section of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Required when there is more than one section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<Row>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A row of a list: id at most 200 characters, title 24, description 72.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `action.parameters` of `cta_url` (`display_text`, `url`) and `flow` (the `flow_*` fields) messages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_message_version: Option<String>,
    /// Either the Flow's name or its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
    /// The label of the button that opens the Flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_cta: Option<String>,
    /// Comes back in the Flow's answers, to tie them to this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_token: Option<String>,
    /// `navigate` or `data_exchange`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_action: Option<String>,
    /// `{"screen", "data"}` for `navigate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_action_payload: Option<Value>,
    /// `draft` or `published`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
