//! The assistant's settings page: for each of the tenant's numbers, what the assistant knows, which
//! model it asks and when it steps back for a person. The form is filled from the stored settings;
//! the page's script saves it with `PUT /api/v1/connections/{id}/assistant`, so the rules and their
//! messages live in the API. The model's key is never shown, only whether one is stored.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::error::PageError;
use super::session::{Layout, Signed};
use crate::app::state::AppState;
use crate::assistant::settings::AssistantSettings;
use crate::store::connections::{ConnectionRow, STATUS_DISCONNECTED};

/// The reply languages the page offers (the fallback answers exist in these).
const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("es", "Spanish"),
    ("pt", "Portuguese"),
    ("fr", "French"),
    ("de", "German"),
    ("ar", "Arabic"),
    ("hi", "Hindi"),
    ("id", "Indonesian"),
];

/// The opening-hours days, as the API names them and as the page shows them.
const DAYS: &[(&str, &str)] = &[
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
];

/// A number in the page's list.
pub struct NumberChoice {
    pub id: String,
    pub number: String,
    pub chosen: bool,
    /// "On", "Off" or "Disconnected".
    pub state_label: &'static str,
    pub state: &'static str,
}

pub struct LanguageChoice {
    pub code: String,
    pub name: String,
    pub chosen: bool,
}

pub struct FaqRow {
    pub question: String,
    pub answer: String,
    /// Comma separated, as the field shows them.
    pub keywords: String,
}

pub struct DayHours {
    pub key: &'static str,
    pub name: &'static str,
    /// `09:00-13:00, 14:00-18:00`; empty when closed.
    pub ranges: String,
}

/// The chosen number's settings as the form shows them.
pub struct SettingsForm {
    pub connection_id: String,
    pub number: String,
    pub verified_name: String,
    /// Owners and admins, on a number that is still connected.
    pub editable: bool,
    pub disconnected: bool,
    pub auto_reply: bool,
    pub system_prompt: String,
    pub business_facts: String,
    pub faqs: Vec<FaqRow>,
    pub languages: Vec<LanguageChoice>,
    /// No fixed language: the customer's own is used.
    pub follows_customer: bool,
    pub base_url: String,
    pub model: String,
    /// Whether a key is stored; the key itself never leaves the vault for this page.
    pub has_api_key: bool,
    pub model_timeout_seconds: i64,
    pub history_length: i64,
    pub handoff_phrases: String,
    pub pause_minutes: i64,
    pub hours_limited: bool,
    pub utc_offset: String,
    pub days: Vec<DayHours>,
}

#[derive(Template)]
#[template(path = "assistant.html")]
struct AssistantPage {
    page: Layout,
    numbers: Vec<NumberChoice>,
    form: Option<SettingsForm>,
}

#[derive(Deserialize, Default)]
pub struct AssistantQuery {
    #[serde(default)]
    connection: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<AssistantQuery>,
) -> Result<Html<String>, PageError> {
    let tenant_id = signed.user.tenant_id.clone();
    let connections = state.store.connections(&tenant_id).await?;
    // Without a choice, the first number that can still answer (or the first of all).
    let chosen = match query.connection.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => Some(
            connections
                .iter()
                .find(|c| c.id == id)
                .ok_or(PageError::NotFound)?,
        ),
        None => connections
            .iter()
            .find(|c| c.status != STATUS_DISCONNECTED)
            .or(connections.first()),
    };
    let form = match chosen {
        Some(connection) => {
            let settings = state
                .store
                .assistant_settings(&tenant_id, &connection.id)
                .await?
                .map(|row| AssistantSettings::from_row(&row))
                .unwrap_or_default();
            Some(settings_form(connection, &settings, signed.manages()))
        }
        None => None,
    };
    let numbers = connections
        .iter()
        .map(|c| {
            let (state, state_label) = if c.status == STATUS_DISCONNECTED {
                ("disconnected", "Disconnected")
            } else if c.auto_reply {
                ("on", "On")
            } else {
                ("off", "Off")
            };
            NumberChoice {
                chosen: chosen.is_some_and(|chosen| chosen.id == c.id),
                id: c.id.clone(),
                number: c.display_phone_number.clone(),
                state,
                state_label,
            }
        })
        .collect();
    let page = Layout::of(&state, &signed, "assistant").await?;
    Ok(Html(
        AssistantPage {
            page,
            numbers,
            form,
        }
        .render()?,
    ))
}

fn settings_form(
    connection: &ConnectionRow,
    settings: &AssistantSettings,
    manages: bool,
) -> SettingsForm {
    let disconnected = connection.status == STATUS_DISCONNECTED;
    let chosen_language = settings.reply_language.as_deref();
    let mut languages: Vec<LanguageChoice> = LANGUAGES
        .iter()
        .map(|(code, name)| LanguageChoice {
            code: (*code).to_owned(),
            name: (*name).to_owned(),
            chosen: chosen_language == Some(*code),
        })
        .collect();
    // A language set through the API that the list lacks ("pt-br") stays chosen, not lost.
    if let Some(code) = chosen_language
        && !LANGUAGES.iter().any(|(known, _)| *known == code)
    {
        languages.push(LanguageChoice {
            code: code.to_owned(),
            name: code.to_owned(),
            chosen: true,
        });
    }
    let (base_url, model) = settings
        .provider
        .as_ref()
        .map(|p| (p.base_url.clone(), p.model.clone()))
        .unwrap_or_default();
    let days = DAYS
        .iter()
        .map(|&(key, name)| DayHours {
            key,
            name,
            ranges: settings
                .hours
                .as_ref()
                .and_then(|h| h.days.get(key))
                .map(|ranges| {
                    ranges
                        .iter()
                        .map(|[from, to]| format!("{from}-{to}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        })
        .collect();
    SettingsForm {
        connection_id: connection.id.clone(),
        number: connection.display_phone_number.clone(),
        verified_name: connection.verified_name.clone(),
        editable: manages && !disconnected,
        disconnected,
        auto_reply: connection.auto_reply,
        system_prompt: settings.system_prompt.clone(),
        business_facts: settings.business_facts.clone(),
        faqs: settings
            .faqs
            .iter()
            .map(|faq| FaqRow {
                question: faq.question.clone(),
                answer: faq.answer.clone(),
                keywords: faq.keywords.join(", "),
            })
            .collect(),
        follows_customer: chosen_language.is_none(),
        languages,
        base_url,
        model,
        has_api_key: settings.provider.is_some() && settings.sealed_api_key.is_some(),
        model_timeout_seconds: settings.model_timeout_ms / 1000,
        history_length: settings.history_length,
        handoff_phrases: settings.handoff_phrases.join(", "),
        pause_minutes: settings.pause_minutes,
        hours_limited: settings.hours.is_some(),
        utc_offset: settings
            .hours
            .as_ref()
            .map_or_else(|| "+00:00".to_owned(), |h| h.utc_offset.clone()),
        days,
    }
}
