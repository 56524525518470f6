//! Template management on a WhatsApp Business Account: the templates list with its cursor paging,
//! the template object, and creating a template.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shared::Extra;
pub use crate::shared::{Cursors, Page, Paging};

/// One page of `GET /{waba-id}/message_templates`.
pub type TemplatePage = Page<MessageTemplate>;

/// A message template as the Graph API lists it. Which fields are present depends on `fields=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageTemplate {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_category: Option<String>,
    /// `NAMED` or `POSITIONAL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<TemplateDefinitionComponent>>,
    /// `{"score": "GREEN", "date": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_score: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_category: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A part of a template's definition: header, body, footer or buttons.
///
/// The list answers with upper-case `type` and `format`; creation accepts either case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateDefinitionComponent {
    #[serde(rename = "type")]
    pub kind: String,
    /// Headers: `TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT`, `LOCATION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// With `{{1}}` or `{{name}}` placeholders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Sample values: `header_text`, `body_text`, `body_text_named_params`, `header_handle`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<TemplateButton>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A button of a template's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateButton {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, `COPY_CODE`, `FLOW`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /{waba-id}/message_templates`: a template to submit for review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateCreateRequest {
    /// Lower case, digits and underscores.
    pub name: String,
    pub language: String,
    pub category: String,
    /// `named` or `positional` (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<String>,
    pub components: Vec<TemplateDefinitionComponent>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /{template-id}`: a change to an existing template, its category or its components.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateEditRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<TemplateDefinitionComponent>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The answer to a template creation: its id and where the review stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateCreateResponse {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
