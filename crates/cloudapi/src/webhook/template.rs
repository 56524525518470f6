//! Template events: the result of Meta's review, quality changes, and category changes.

use serde::{Deserialize, Serialize};

use crate::shared::{Extra, NumberOrString};

/// The value of a `message_template_status_update` change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    /// `APPROVED`, `REJECTED`, `PENDING`, `PAUSED`, `DISABLED`, ...
    pub event: String,
    /// Sent as a number; templates lists give the same id as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_id: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    /// `NONE` when approved; a code such as `INVALID_FORMAT` when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_category: Option<String>,
    /// Meta's explanation of a rejection, for the person who wrote the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_info: Option<RejectionInfo>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `rejection_info`: why a template was rejected and what to change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectionInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The value of a `message_template_quality_update` change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateQualityUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_quality_score: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_quality_score: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_id: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The value of a `template_category_update` change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateCategoryUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_id: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_category: Option<String>,
    /// Sent ahead of a change Meta has decided on but not yet made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correct_category: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
