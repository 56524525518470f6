//! A connection's assistant settings: read from the API (every problem reported at once), kept as
//! a row, and shown back without the model's key.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::assistant::AssistantSettingsRow;
use crate::validation::FieldErrors;

use super::hours::OpeningHours;

pub const DEFAULT_HISTORY: i64 = 12;
pub const MAX_HISTORY: i64 = 50;
pub const DEFAULT_PAUSE_MINUTES: i64 = 12 * 60;
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 20;
const MAX_PROMPT: usize = 8_000;
const MAX_FACTS: usize = 16_000;
const MAX_FAQS: usize = 200;
const MAX_FAQ_TEXT: usize = 2_000;
const MAX_PHRASES: usize = 30;

/// Hand-off phrases when none are configured.
pub const DEFAULT_HANDOFF: &[&str] = &[
    "agent",
    "human",
    "person",
    "representative",
    "agente",
    "humano",
    "atendente",
    "persona",
    "conseiller",
    "mitarbeiter",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faq {
    pub question: String,
    pub answer: String,
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// Where the model is and which one to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub base_url: String,
    pub model: String,
}

/// The settings the assistant runs with.
#[derive(Debug, Clone)]
pub struct AssistantSettings {
    pub system_prompt: String,
    pub business_facts: String,
    pub faqs: Vec<Faq>,
    /// `None`: answer in the customer's language.
    pub reply_language: Option<String>,
    pub provider: Option<Provider>,
    /// The sealed key, opened only for the call.
    pub sealed_api_key: Option<Vec<u8>>,
    pub history_length: i64,
    pub hours: Option<OpeningHours>,
    pub handoff_phrases: Vec<String>,
    pub pause_minutes: i64,
    pub model_timeout_ms: i64,
}

impl Default for AssistantSettings {
    fn default() -> Self {
        Self {
            system_prompt: String::new(),
            business_facts: String::new(),
            faqs: Vec::new(),
            reply_language: None,
            provider: None,
            sealed_api_key: None,
            history_length: DEFAULT_HISTORY,
            hours: None,
            handoff_phrases: DEFAULT_HANDOFF.iter().map(|p| (*p).to_owned()).collect(),
            pause_minutes: DEFAULT_PAUSE_MINUTES,
            model_timeout_ms: DEFAULT_TIMEOUT_SECONDS * 1000,
        }
    }
}

impl AssistantSettings {
    /// The stored row; a part that no longer reads (it was written by this code, so only a
    /// damaged row) falls back to its default rather than silencing the assistant.
    pub fn from_row(row: &AssistantSettingsRow) -> Self {
        let defaults = Self::default();
        let provider = match (&row.provider_base_url, &row.provider_model) {
            (Some(base_url), Some(model)) => Some(Provider {
                base_url: base_url.clone(),
                model: model.clone(),
            }),
            _ => None,
        };
        Self {
            system_prompt: row.system_prompt.clone(),
            business_facts: row.business_facts.clone(),
            faqs: serde_json::from_str(&row.faqs).unwrap_or_default(),
            reply_language: row.reply_language.clone(),
            provider,
            sealed_api_key: row.provider_api_key.clone(),
            history_length: row.history_length.clamp(0, MAX_HISTORY),
            hours: row
                .hours
                .as_deref()
                .and_then(|h| serde_json::from_str(h).ok()),
            handoff_phrases: serde_json::from_str(&row.handoff_phrases)
                .unwrap_or(defaults.handoff_phrases),
            pause_minutes: row.pause_minutes.max(1),
            model_timeout_ms: row.model_timeout_ms.max(1000),
        }
    }

    /// The settings as the API shows them: the key only as whether one is stored.
    pub fn to_json(&self, connection_id: &str, auto_reply: bool) -> Value {
        json!({
            "connection_id": connection_id,
            "auto_reply": auto_reply,
            "system_prompt": self.system_prompt,
            "business_facts": self.business_facts,
            "faqs": self.faqs,
            "reply_language": self.reply_language,
            "provider": self.provider.as_ref().map(|p| json!({
                "base_url": p.base_url,
                "model": p.model,
                "has_api_key": self.sealed_api_key.is_some(),
            })),
            "history_length": self.history_length,
            "hours": self.hours,
            "handoff_phrases": self.handoff_phrases,
            "pause_minutes": self.pause_minutes,
            "model_timeout_seconds": self.model_timeout_ms / 1000,
        })
    }
}

/// `provider.api_key` in a PUT: left out keeps the stored key, `null` removes it (a provider
/// that needs none), a string replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyInput {
    Keep,
    Clear,
    Set(String),
}

/// What `PUT /api/v1/connections/{id}/assistant` asked for.
#[derive(Debug, Clone)]
pub struct SettingsInput {
    pub settings: AssistantSettings,
    /// What happens to the stored model key (with no provider, it is removed regardless).
    pub api_key: ApiKeyInput,
    /// `auto_reply` when the body gives it.
    pub auto_reply: Option<bool>,
}

const KEYS: &[&str] = &[
    "auto_reply",
    "system_prompt",
    "business_facts",
    "faqs",
    "reply_language",
    "provider",
    "history_length",
    "hours",
    "handoff_phrases",
    "pause_minutes",
    "model_timeout_seconds",
];

impl SettingsInput {
    /// Reads the whole settings document; fields left out take their defaults.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(body) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(errors);
        };
        for key in body.keys() {
            if !KEYS.contains(&key.as_str()) {
                errors.add(
                    key.clone(),
                    format!(
                        "is not an assistant setting (they are: {})",
                        KEYS.join(", ")
                    ),
                );
            }
        }
        let mut settings = AssistantSettings::default();
        let present = |key: &str| body.get(key).filter(|v| !v.is_null());

        let auto_reply = match present("auto_reply") {
            None => None,
            Some(Value::Bool(on)) => Some(*on),
            Some(_) => {
                errors.add("auto_reply", "must be true or false");
                None
            }
        };
        if let Some(text) = text_field(&mut errors, body, "system_prompt", MAX_PROMPT) {
            settings.system_prompt = text;
        }
        if let Some(text) = text_field(&mut errors, body, "business_facts", MAX_FACTS) {
            settings.business_facts = text;
        }
        if let Some(faqs) = present("faqs") {
            settings.faqs = parse_faqs(&mut errors, faqs);
        }
        if let Some(language) = present("reply_language") {
            match language.as_str().map(str::trim) {
                Some(code) if is_language_code(code) => {
                    settings.reply_language = Some(code.to_ascii_lowercase());
                }
                _ => errors.add(
                    "reply_language",
                    "must be a language code such as \"en\", \"es\" or \"pt-BR\", or null to answer in the customer's language",
                ),
            }
        }
        let mut api_key = ApiKeyInput::Keep;
        if let Some(provider) = present("provider")
            && let Some((p, key)) = parse_provider(&mut errors, provider)
        {
            settings.provider = Some(p);
            api_key = key;
        }
        if let Some(n) = int_field(&mut errors, body, "history_length", 0, MAX_HISTORY) {
            settings.history_length = n;
        }
        if let Some(hours) = present("hours") {
            match OpeningHours::parse(hours) {
                Ok(hours) => settings.hours = Some(hours),
                Err(reason) => errors.add("hours", reason),
            }
        }
        if let Some(phrases) = present("handoff_phrases") {
            settings.handoff_phrases = parse_phrases(&mut errors, phrases);
        }
        if let Some(n) = int_field(&mut errors, body, "pause_minutes", 1, 30 * 24 * 60) {
            settings.pause_minutes = n;
        }
        if let Some(n) = int_field(&mut errors, body, "model_timeout_seconds", 1, 120) {
            settings.model_timeout_ms = n * 1000;
        }
        if errors.is_empty() {
            Ok(Self {
                settings,
                api_key,
                auto_reply,
            })
        } else {
            Err(errors)
        }
    }
}

fn text_field(
    errors: &mut FieldErrors,
    body: &serde_json::Map<String, Value>,
    key: &str,
    max: usize,
) -> Option<String> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= max => Some(text.trim().to_owned()),
        Some(Value::String(_)) => {
            errors.add_limit(key, format!("must be at most {max} characters"), max as u64);
            None
        }
        Some(_) => {
            errors.add(key, "must be a string");
            None
        }
    }
}

fn int_field(
    errors: &mut FieldErrors,
    body: &serde_json::Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
) -> Option<i64> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                errors.add(key, format!("must be a whole number from {min} to {max}"));
                None
            }
        },
    }
}

fn parse_faqs(errors: &mut FieldErrors, value: &Value) -> Vec<Faq> {
    let Some(items) = value.as_array() else {
        errors.add(
            "faqs",
            "must be a list of {\"question\", \"answer\", \"keywords\"}",
        );
        return Vec::new();
    };
    if items.len() > MAX_FAQS {
        errors.add_limit(
            "faqs",
            format!("may hold at most {MAX_FAQS} entries"),
            MAX_FAQS as u64,
        );
        return Vec::new();
    }
    let mut faqs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("faqs[{i}].{name}");
        let text = |name: &str| {
            item.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let question = text("question");
        let answer = text("answer");
        if question.is_none() {
            errors.add(field("question"), "is required (a non-empty string)");
        }
        if answer.is_none() {
            errors.add(field("answer"), "is required (a non-empty string)");
        }
        for (name, t) in [("question", question), ("answer", answer)] {
            if t.is_some_and(|t| t.chars().count() > MAX_FAQ_TEXT) {
                errors.add_limit(
                    field(name),
                    format!("must be at most {MAX_FAQ_TEXT} characters"),
                    MAX_FAQ_TEXT as u64,
                );
            }
        }
        let keywords = match item.get("keywords") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(words)) => {
                let kept: Vec<String> = words
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|w| w.trim().to_lowercase())
                    .filter(|w| !w.is_empty())
                    .collect();
                if kept.len() != words.len() {
                    errors.add(field("keywords"), "must be a list of non-empty strings");
                }
                kept
            }
            Some(_) => {
                errors.add(field("keywords"), "must be a list of strings");
                Vec::new()
            }
        };
        if let (Some(question), Some(answer)) = (question, answer) {
            faqs.push(Faq {
                question: question.to_owned(),
                answer: answer.to_owned(),
                keywords,
            });
        }
    }
    faqs
}

fn parse_provider(errors: &mut FieldErrors, value: &Value) -> Option<(Provider, ApiKeyInput)> {
    let Some(object) = value.as_object() else {
        errors.add(
            "provider",
            "must be {\"base_url\", \"model\", \"api_key\"?} or null for no model",
        );
        return None;
    };
    for key in object.keys() {
        if !["base_url", "model", "api_key"].contains(&key.as_str()) {
            errors.add(
                format!("provider.{key}"),
                "is not a provider setting (base_url, model, api_key)",
            );
        }
    }
    let base_url = object
        .get("base_url")
        .and_then(Value::as_str)
        .map(str::trim);
    let base_url = match base_url.map(url::Url::parse) {
        Some(Ok(url))
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Some(url.as_str().trim_end_matches('/').to_owned())
        }
        _ => {
            errors.add(
                "provider.base_url",
                "must be the http(s) URL of an OpenAI-compatible API, such as https://api.openai.com/v1 (no credentials in it)",
            );
            None
        }
    };
    let model = match object.get("model").and_then(Value::as_str).map(str::trim) {
        Some(model) if !model.is_empty() && model.len() <= 200 => Some(model.to_owned()),
        _ => {
            errors.add(
                "provider.model",
                "is required: the model's name at the provider",
            );
            None
        }
    };
    let api_key = match object.get("api_key") {
        None => ApiKeyInput::Keep,
        Some(Value::Null) => ApiKeyInput::Clear,
        Some(Value::String(key)) if !key.trim().is_empty() && key.len() <= 1000 => {
            ApiKeyInput::Set(key.trim().to_owned())
        }
        Some(_) => {
            errors.add(
                "provider.api_key",
                "must be the provider's API key (a string), null to remove the stored one, or left out to keep it",
            );
            ApiKeyInput::Keep
        }
    };
    Some((
        Provider {
            base_url: base_url?,
            model: model?,
        },
        api_key,
    ))
}

fn parse_phrases(errors: &mut FieldErrors, value: &Value) -> Vec<String> {
    let phrases: Option<Vec<String>> = value.as_array().map(|items| {
        items
            .iter()
            .filter_map(Value::as_str)
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty() && p.chars().count() <= 100)
            .collect()
    });
    match phrases {
        Some(phrases)
            if phrases.len() <= MAX_PHRASES
                && value.as_array().is_some_and(|a| a.len() == phrases.len()) =>
        {
            phrases
        }
        _ => {
            errors.add_limit(
                "handoff_phrases",
                format!(
                    "must be a list of at most {MAX_PHRASES} phrases of 1 to 100 characters each"
                ),
                MAX_PHRASES as u64,
            );
            Vec::new()
        }
    }
}

/// `en`, `pt-BR`, `zh-Hant`: two or three letters, optionally a region or script.
fn is_language_code(code: &str) -> bool {
    let mut parts = code.split(['-', '_']);
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=4).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_document_reads_and_every_problem_is_named() {
        let input = SettingsInput::parse(&json!({
            "auto_reply": true,
            "system_prompt": "You answer for Acme Bikes.",
            "faqs": [{"question": "When are you open?", "answer": "9 to 6.", "keywords": ["Open", "hours"]}],
            "reply_language": "pt-BR",
            "provider": {"base_url": "https://api.example.com/v1/", "model": "m", "api_key": "sk-1"},
            "history_length": 8,
            "handoff_phrases": ["Agent"]
        }))
        .expect("valid");
        assert_eq!(input.auto_reply, Some(true));
        assert_eq!(input.settings.faqs[0].keywords, vec!["open", "hours"]);
        assert_eq!(input.settings.reply_language.as_deref(), Some("pt-br"));
        assert_eq!(
            input
                .settings
                .provider
                .as_ref()
                .map(|p| p.base_url.as_str()),
            Some("https://api.example.com/v1")
        );
        assert_eq!(input.api_key, ApiKeyInput::Set("sk-1".to_owned()));
        let cleared = SettingsInput::parse(&json!({
            "provider": {"base_url": "http://127.0.0.1:11434/v1", "model": "local", "api_key": null}
        }))
        .unwrap();
        assert_eq!(cleared.api_key, ApiKeyInput::Clear);
        assert_eq!(input.settings.handoff_phrases, vec!["agent"]);

        let errors = SettingsInput::parse(&json!({
            "faqs": [{"question": "", "answer": "x"}],
            "provider": {"base_url": "ftp://x", "model": ""},
            "history_length": 500,
            "colour": "blue"
        }))
        .expect_err("invalid");
        let text = format!("{errors:?}");
        for field in [
            "faqs[0].question",
            "provider.base_url",
            "provider.model",
            "history_length",
            "colour",
        ] {
            assert!(text.contains(field), "{field} not reported in {text}");
        }
    }

    #[test]
    fn the_shown_settings_never_hold_the_key() {
        let mut settings = AssistantSettings {
            provider: Some(Provider {
                base_url: "https://api.example.com/v1".into(),
                model: "m".into(),
            }),
            ..Default::default()
        };
        settings.sealed_api_key = Some(b"sealed-bytes".to_vec());
        let shown = settings.to_json("c1", true).to_string();
        assert!(shown.contains("\"has_api_key\":true"));
        assert!(!shown.contains("sealed"));
    }
}
