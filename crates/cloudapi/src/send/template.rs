//! Template messages to send: which template, in which language, with which parameters.

use serde::{Deserialize, Serialize};

use super::Media;
use crate::shared::{Extra, NumberOrString};

/// `template` of a send request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: Language,
    /// Parameters for the header, body and buttons; absent for templates without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<TemplateComponent>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `language`: the template translation to use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Language {
    /// `en_US`, `he`, ...
    pub code: String,
    /// `deterministic`, the only policy left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The parameters of one part of the template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateComponent {
    /// `header`, `body` or `button`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Buttons: `quick_reply`, `url`, `copy_code`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// Buttons: which one, from 0. Meta's examples send it as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<Parameter>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One parameter. Positional templates give them in order; named ones set `parameter_name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// `text`, `currency`, `date_time`, `image`, `video`, `document`, `payload`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Named templates: the `{{name}}` this value fills.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Quick-reply buttons: comes back as `button.payload` when tapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Media>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<Media>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Media>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<DateTime>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Parameter {
    /// A text parameter; `name` for named templates, `None` for positional ones.
    pub fn text(name: Option<&str>, text: impl Into<String>) -> Self {
        Self {
            kind: "text".to_owned(),
            parameter_name: name.map(str::to_owned),
            text: Some(text.into()),
            payload: None,
            image: None,
            video: None,
            document: None,
            currency: None,
            date_time: None,
            extra: Extra::new(),
        }
    }
}

/// A `currency` parameter: the amount times 1000, and the text to show where it cannot be localised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Currency {
    pub fallback_value: String,
    /// ISO 4217.
    pub code: String,
    pub amount_1000: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `date_time` parameter. Meta shows `fallback_value`; the other fields are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DateTime {
    pub fallback_value: String,
    #[serde(flatten)]
    pub extra: Extra,
}
