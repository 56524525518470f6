//! Message templates of WhatsApp Business Accounts: what a template is, how the emulator keeps
//! each account's templates in creation order, and how each account's submissions are reviewed.
//!
//! [`definition`] parses what callers submit (Graph's create call and the admin API's seeding);
//! [`fit`] checks a send against a stored template as Meta does at send time.

pub(crate) mod definition;
pub(crate) mod fit;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::InputError;
use crate::messaging::PricingCategory;

/// The longest a review may wait before it takes effect.
pub(crate) const MAX_REVIEW_DELAY_MS: u64 = 10 * 60 * 1000;

/// The rejection reason when a rejection names none.
pub(crate) const DEFAULT_REJECTION_REASON: &str = "INVALID_FORMAT";

/// Reads an upper-case word Meta uses (`APPROVED`, `UTILITY`...) in any case.
macro_rules! meta_words {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The word Graph answers with.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            /// Reads the word in any case, naming `field` when it is none of them.
            pub(crate) fn parse(field: &str, value: &str) -> Result<Self, InputError> {
                match value.trim().to_ascii_uppercase().as_str() {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(InputError::new(field, Self::expected())),
                }
            }

            fn expected() -> String {
                format!(concat!("must be ", $what, ": one of {}"), [$($word),+].join(", "))
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse("", &value).map_err(|_| Self::expected())
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> Self {
                value.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

meta_words!(
    /// Where a template stands with Meta; only `APPROVED` templates can be sent.
    TemplateStatus, "a template status" {
        Approved => "APPROVED",
        /// Submitted and waiting for review.
        Pending => "PENDING",
        Rejected => "REJECTED",
        /// Paused for low quality: sends get 132015.
        Paused => "PAUSED",
        /// Paused too often and disabled for good: sends get 132016.
        Disabled => "DISABLED",
        InAppeal => "IN_APPEAL",
        PendingDeletion => "PENDING_DELETION",
        LimitExceeded => "LIMIT_EXCEEDED",
        Archived => "ARCHIVED",
    }
);

meta_words!(
    /// A template's category, which is also what Meta prices its sends as.
    TemplateCategory, "a template category" {
        Marketing => "MARKETING",
        Utility => "UTILITY",
        Authentication => "AUTHENTICATION",
    }
);

meta_words!(
    /// How a template's variables are written: `{{1}}` (positional) or `{{first_name}}` (named).
    ParameterFormat, "a parameter format" {
        Named => "NAMED",
        Positional => "POSITIONAL",
    }
);

meta_words!(
    /// Meta's rating of how customers receive a template.
    QualityScore, "a quality score" {
        Green => "GREEN",
        Yellow => "YELLOW",
        Red => "RED",
        Unknown => "UNKNOWN",
    }
);

impl TemplateCategory {
    /// The category statuses of its sends carry in `pricing.category`.
    pub fn pricing(self) -> PricingCategory {
        match self {
            Self::Marketing => PricingCategory::Marketing,
            Self::Utility => PricingCategory::Utility,
            Self::Authentication => PricingCategory::Authentication,
        }
    }
}

/// `quality_score` as Graph lists it: the score and when it was last set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateQuality {
    pub score: QualityScore,
    /// Unix seconds.
    pub date: i64,
}

/// A template as the admin API and [`crate::RunningEmulator`] show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateView {
    /// Graph id of the template, digits, unique in the emulator.
    pub id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    pub status: TemplateStatus,
    pub parameter_format: ParameterFormat,
    /// Meta's list form: upper-case `type` and `format`, buttons with upper-case `type`.
    pub components: Vec<Value>,
    pub quality_score: TemplateQuality,
    /// `NONE` unless the template was rejected; then the reason, e.g. `INVALID_FORMAT`.
    pub rejected_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_category: Option<String>,
}

/// A template to create directly, as `POST /admin/templates` and [`crate::RunningEmulator::add_template`]
/// take it: no review and no webhook, as if Meta had approved it long ago.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSeed {
    /// The WhatsApp Business Account that owns it (digits).
    pub waba_id: String,
    /// Lower-case letters, digits and underscores, at most 512.
    pub name: String,
    /// `en_US`, `he`, ...
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`, any case.
    pub category: String,
    /// Any template status, any case; `APPROVED` when left out.
    #[serde(default = "approved")]
    pub status: String,
    /// `NAMED` or `POSITIONAL`, any case; `POSITIONAL` when left out.
    #[serde(default)]
    pub parameter_format: Option<String>,
    /// Header, body, footer and buttons in Meta's form (either case); a `BODY` is required.
    pub components: Vec<Value>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`; `UNKNOWN` when left out.
    #[serde(default)]
    pub quality_score: Option<String>,
    #[serde(default)]
    pub sub_category: Option<String>,
    /// Why a seeded `REJECTED` template was rejected; `INVALID_FORMAT` when left out.
    #[serde(default)]
    pub rejected_reason: Option<String>,
}

fn approved() -> String {
    TemplateStatus::Approved.as_str().to_owned()
}

impl Default for TemplateSeed {
    fn default() -> Self {
        Self {
            waba_id: String::new(),
            name: String::new(),
            language: String::new(),
            category: String::new(),
            status: approved(),
            parameter_format: None,
            components: Vec::new(),
            quality_score: None,
            sub_category: None,
            rejected_reason: None,
        }
    }
}

/// A review outcome to apply to a template, as `POST /admin/templates/{id}/review` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateReview {
    /// The template's new status; a `message_template_status_update` webhook announces it.
    pub status: TemplateStatus,
    /// The rejection reason (`INVALID_FORMAT`, `ABUSIVE_CONTENT`, ...); only for `REJECTED`, where
    /// it is `INVALID_FORMAT` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wait this long before the change takes effect and its webhook goes out; at most 10 minutes.
    #[serde(default)]
    pub delay_ms: u64,
}

impl TemplateReview {
    /// The template gets `status` at once.
    pub fn new(status: TemplateStatus) -> Self {
        Self {
            status,
            reason: None,
            delay_ms: 0,
        }
    }

    /// Approved at once.
    pub fn approve() -> Self {
        Self::new(TemplateStatus::Approved)
    }

    /// Rejected at once, for `reason` (e.g. `INVALID_FORMAT`).
    pub fn reject(reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::new(TemplateStatus::Rejected)
        }
    }

    /// The rejection reason to record: the one given for a rejection, `NONE` otherwise.
    pub(crate) fn rejected_reason(&self) -> String {
        match self.status {
            TemplateStatus::Rejected => self
                .reason
                .clone()
                .unwrap_or_else(|| DEFAULT_REJECTION_REASON.to_owned()),
            _ => "NONE".to_owned(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), InputError> {
        check_delay(self.delay_ms)?;
        if let Some(reason) = &self.reason {
            if self.status != TemplateStatus::Rejected {
                return Err(InputError::new(
                    "reason",
                    "only goes with status REJECTED: it says why the template was rejected",
                ));
            }
            check_reason(reason)?;
        }
        Ok(())
    }
}

/// What happens to templates an account submits through Graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// They stay `PENDING` until reviewed through the admin API (the default).
    #[default]
    Manual,
    /// Approved after the policy's delay.
    Approve,
    /// Rejected after the policy's delay, for the policy's reason.
    Reject,
}

/// How an account's submitted templates are reviewed, as `PUT /admin/wabas/{waba_id}/template-review`
/// takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewPolicy {
    #[serde(default)]
    pub decision: ReviewDecision,
    /// How long after the submission the decision takes effect; at most 10 minutes.
    #[serde(default)]
    pub delay_ms: u64,
    /// Why templates are rejected under `reject`; `INVALID_FORMAT` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReviewPolicy {
    /// The review a new submission gets, if the policy decides one.
    pub(crate) fn review(&self) -> Option<TemplateReview> {
        let status = match self.decision {
            ReviewDecision::Manual => return None,
            ReviewDecision::Approve => TemplateStatus::Approved,
            ReviewDecision::Reject => TemplateStatus::Rejected,
        };
        Some(TemplateReview {
            status,
            reason: (status == TemplateStatus::Rejected)
                .then(|| self.reason.clone())
                .flatten(),
            delay_ms: self.delay_ms,
        })
    }

    pub(crate) fn check(&self) -> Result<(), InputError> {
        check_delay(self.delay_ms)?;
        if let Some(reason) = &self.reason {
            if self.decision != ReviewDecision::Reject {
                return Err(InputError::new(
                    "reason",
                    "only goes with decision \"reject\": it says why templates are rejected",
                ));
            }
            check_reason(reason)?;
        }
        Ok(())
    }
}

fn check_delay(delay_ms: u64) -> Result<(), InputError> {
    if delay_ms > MAX_REVIEW_DELAY_MS {
        return Err(InputError::new(
            "delay_ms",
            format!("must be at most {MAX_REVIEW_DELAY_MS} (10 minutes)"),
        ));
    }
    Ok(())
}

/// Meta's rejection reasons are upper-case words such as `INVALID_FORMAT`.
pub(crate) fn check_reason(reason: &str) -> Result<(), InputError> {
    let word = !reason.is_empty()
        && reason.len() <= 64
        && reason
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !word {
        return Err(InputError::new(
            "reason",
            "must be one of Meta's rejection reasons in upper case, e.g. INVALID_FORMAT, ABUSIVE_CONTENT, INCORRECT_CATEGORY",
        ));
    }
    Ok(())
}

/// What Meta tells the author of a template rejected for `reason`: `(reason, recommendation)`.
pub(crate) fn rejection_info(reason: &str) -> (&'static str, &'static str) {
    match reason {
        "INVALID_FORMAT" => (
            "Your template has parameters placed next to each other (like {{1}}{{2}}) without text or punctuation between them.",
            "Separate parameters with descriptive text and ensure each parameter is clearly contextualized.",
        ),
        "ABUSIVE_CONTENT" => (
            "Your template contains content that violates WhatsApp's Commerce Policy or Business Policy.",
            "Review the WhatsApp policies and remove content that does not comply with them.",
        ),
        "INCORRECT_CATEGORY" => (
            "The category you selected does not match the content of your template.",
            "Choose the category that matches what the template is for, or allow category changes.",
        ),
        "TAG_CONTENT_MISMATCH" => (
            "The content of your template does not match the language or category you selected.",
            "Make sure the text is written in the selected language and fits the selected category.",
        ),
        "SCAM" => (
            "Your template was found to be misleading or deceptive.",
            "Remove misleading claims and describe clearly what the message is about.",
        ),
        _ => (
            "Your template does not meet WhatsApp's requirements for message templates.",
            "Review the template guidelines, edit the template and submit it again.",
        ),
    }
}

/// A stored template, every field known to be well formed.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    pub status: TemplateStatus,
    pub parameter_format: ParameterFormat,
    /// Normalised to Meta's list form.
    pub components: Vec<Value>,
    pub quality: TemplateQuality,
    pub rejected_reason: String,
    pub sub_category: Option<String>,
}

impl Template {
    pub fn view(&self) -> TemplateView {
        TemplateView {
            id: self.id.clone(),
            waba_id: self.waba_id.clone(),
            name: self.name.clone(),
            language: self.language.clone(),
            category: self.category,
            status: self.status,
            parameter_format: self.parameter_format,
            components: self.components.clone(),
            quality_score: self.quality,
            rejected_reason: self.rejected_reason.clone(),
            sub_category: self.sub_category.clone(),
        }
    }

    /// One field as Graph's templates list shows it; `None` for fields the emulator does not model.
    pub fn graph_field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => self.id.clone().into(),
            "name" => self.name.clone().into(),
            "language" => self.language.clone().into(),
            "status" => self.status.as_str().into(),
            "category" => self.category.as_str().into(),
            "sub_category" => self.sub_category.clone()?.into(),
            "parameter_format" => self.parameter_format.as_str().into(),
            "components" => Value::Array(self.components.clone()),
            "quality_score" => {
                json!({ "score": self.quality.score.as_str(), "date": self.quality.date })
            }
            "rejected_reason" => self.rejected_reason.clone().into(),
            _ => return None,
        })
    }

    /// The component of this `type` (upper case), if the template has one.
    pub fn component(&self, kind: &str) -> Option<&Value> {
        self.components
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    }
}

/// Fields Graph lists when the request names none, in the order of Meta's example (`id` comes last).
pub(crate) const DEFAULT_GRAPH_FIELDS: [&str; 9] = [
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "sub_category",
    "quality_score",
    "rejected_reason",
];

/// A template is already stored under this name and language in its account.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DuplicateTemplate;

/// Every account's templates and review policies.
#[derive(Default)]
pub(crate) struct Templates {
    by_id: HashMap<String, Template>,
    /// Per WABA, creation sequence number to template id: lists come in creation order, and a
    /// paging cursor (a sequence number) stays valid while templates come and go.
    by_waba: HashMap<String, BTreeMap<u64, String>>,
    /// Sequence number of each template, for removing it from `by_waba`.
    sequence_of: HashMap<String, u64>,
    next_sequence: u64,
    policies: HashMap<String, ReviewPolicy>,
    /// Accounts that got Meta's sample template already, so a deleted sample does not come back.
    sampled: HashSet<String>,
}

impl Templates {
    pub fn get(&self, id: &str) -> Option<&Template> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Template> {
        self.by_id.get_mut(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Stores a template unless its account has one with the same name and language.
    pub fn insert(&mut self, template: Template) -> Result<(), DuplicateTemplate> {
        if self
            .find(&template.waba_id, &template.name, &template.language)
            .is_some()
        {
            return Err(DuplicateTemplate);
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.by_waba
            .entry(template.waba_id.clone())
            .or_default()
            .insert(sequence, template.id.clone());
        self.sequence_of.insert(template.id.clone(), sequence);
        self.by_id.insert(template.id.clone(), template);
        Ok(())
    }

    pub fn remove(&mut self, id: &str) -> Option<Template> {
        let template = self.by_id.remove(id)?;
        if let Some(sequence) = self.sequence_of.remove(id)
            && let Some(list) = self.by_waba.get_mut(&template.waba_id)
        {
            list.remove(&sequence);
        }
        Some(template)
    }

    /// The account's templates in creation order, each with its sequence number.
    pub fn of_waba<'t>(&'t self, waba_id: &str) -> impl Iterator<Item = (u64, &'t Template)> + 't {
        self.by_waba
            .get(waba_id)
            .into_iter()
            .flat_map(|list| list.iter())
            .filter_map(|(sequence, id)| Some((*sequence, self.by_id.get(id)?)))
    }

    /// Every template, account by account in creation order.
    pub fn all(&self) -> Vec<&Template> {
        let mut all: Vec<(u64, &Template)> = self
            .by_id
            .values()
            .filter_map(|t| Some((*self.sequence_of.get(&t.id)?, t)))
            .collect();
        all.sort_by_key(|(sequence, _)| *sequence);
        all.into_iter().map(|(_, t)| t).collect()
    }

    pub fn find(&self, waba_id: &str, name: &str, language: &str) -> Option<&Template> {
        self.of_waba(waba_id)
            .map(|(_, t)| t)
            .find(|t| t.name == name && t.language == language)
    }

    pub fn policy(&self, waba_id: &str) -> ReviewPolicy {
        self.policies.get(waba_id).cloned().unwrap_or_default()
    }

    pub fn set_policy(&mut self, waba_id: &str, policy: ReviewPolicy) {
        self.policies.insert(waba_id.to_owned(), policy);
    }

    /// Marks the account as given Meta's sample template; `true` the first time, when the caller
    /// is to add it.
    pub fn first_sample(&mut self, waba_id: &str) -> bool {
        self.sampled.insert(waba_id.to_owned())
    }
}

/// Meta's sample template, which every new account has: `hello_world` in `en_US`, approved.
pub(crate) fn sample_components() -> Vec<Value> {
    vec![
        json!({"type": "HEADER", "format": "TEXT", "text": "Hello World"}),
        json!({
            "type": "BODY",
            "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us.",
        }),
        json!({"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_words_are_read_in_any_case_and_written_in_upper_case() {
        assert_eq!(
            TemplateStatus::parse("status", "paused"),
            Ok(TemplateStatus::Paused)
        );
        assert_eq!(
            TemplateStatus::parse("status", " In_Appeal "),
            Ok(TemplateStatus::InAppeal)
        );
        let error = TemplateCategory::parse("category", "service").err();
        assert_eq!(error.as_ref().map(|e| e.field.as_str()), Some("category"));
        assert!(
            error.is_some_and(|e| e.problem.contains("MARKETING, UTILITY, AUTHENTICATION")),
            "the error lists the categories"
        );
        let json = serde_json::to_string(&ParameterFormat::Named).unwrap_or_default();
        assert_eq!(json, "\"NAMED\"");
        let read: Result<QualityScore, _> = serde_json::from_str("\"yellow\"");
        assert_eq!(read.ok(), Some(QualityScore::Yellow));
        assert!(serde_json::from_str::<QualityScore>("\"BLUE\"").is_err());
    }

    #[test]
    fn a_policy_reviews_only_when_it_decides() {
        assert_eq!(ReviewPolicy::default().review(), None);
        let reject = ReviewPolicy {
            decision: ReviewDecision::Reject,
            delay_ms: 5,
            reason: Some("SCAM".into()),
        };
        assert_eq!(
            reject.review(),
            Some(TemplateReview {
                status: TemplateStatus::Rejected,
                reason: Some("SCAM".into()),
                delay_ms: 5,
            })
        );
        assert!(reject.check().is_ok());
        let odd = ReviewPolicy {
            decision: ReviewDecision::Approve,
            reason: Some("SCAM".into()),
            ..ReviewPolicy::default()
        };
        assert_eq!(odd.check().err().map(|e| e.field), Some("reason".into()));
        let slow = ReviewPolicy {
            delay_ms: MAX_REVIEW_DELAY_MS + 1,
            ..ReviewPolicy::default()
        };
        assert_eq!(slow.check().err().map(|e| e.field), Some("delay_ms".into()));
    }

    #[test]
    fn a_rejection_without_a_reason_is_invalid_format_and_others_have_none() {
        assert_eq!(
            TemplateReview::new(TemplateStatus::Rejected).rejected_reason(),
            "INVALID_FORMAT"
        );
        assert_eq!(TemplateReview::reject("SCAM").rejected_reason(), "SCAM");
        assert_eq!(TemplateReview::approve().rejected_reason(), "NONE");
        assert!(TemplateReview::reject("not a word").check().is_err());
        let paused_with_reason = TemplateReview {
            reason: Some("SCAM".into()),
            ..TemplateReview::new(TemplateStatus::Paused)
        };
        assert!(paused_with_reason.check().is_err());
    }
}
