//! The inbox's template picker: the approved templates of the conversation's number, a form with
//! the inputs the chosen one takes, and a live preview of what the customer will see. Sending
//! goes through the REST API like every other send, so the same checks apply.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::response::Html;
use serde::Deserialize;

use super::error::PageError;
use super::session::Signed;
use crate::app::state::AppState;
use crate::store::templates::{TemplateFilter, TemplateRow};
use crate::templates::render::{RenderedHeader, components_from_inputs, render};
use crate::templates::{InputKind, TemplateSpec};

#[derive(Deserialize)]
pub struct ListQuery {
    connection: String,
}

pub struct TemplateChoice {
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "template_list.html")]
struct TemplateList {
    connection_id: String,
    choices: Vec<TemplateChoice>,
    /// Templates of the number that cannot be sent (pending, rejected, paused), to say why.
    unavailable: usize,
    manages: bool,
}

/// The approved templates of a connection, to choose from.
pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let tenant_id = &signed.user.tenant_id;
    if state
        .store
        .connection(tenant_id, &query.connection)
        .await?
        .is_none()
    {
        return Err(PageError::NotFound);
    }
    let rows = state
        .store
        .templates(
            tenant_id,
            &TemplateFilter {
                connection_id: Some(&query.connection),
                ..TemplateFilter::default()
            },
        )
        .await?;
    let (approved, other): (Vec<TemplateRow>, Vec<TemplateRow>) = rows
        .into_iter()
        .partition(|t| t.status.eq_ignore_ascii_case("APPROVED"));
    let choices = approved
        .into_iter()
        .map(|row| {
            let summary = spec_of(&row)
                .map(|spec| render(&spec, None).body)
                .unwrap_or_default();
            TemplateChoice {
                id: row.id,
                name: row.name,
                language: row.language,
                category: row.category.unwrap_or_default().to_lowercase(),
                summary: shorten(&summary, 110),
            }
        })
        .collect();
    Ok(Html(
        TemplateList {
            connection_id: query.connection,
            choices,
            unavailable: other.len(),
            manages: signed.manages(),
        }
        .render()?,
    ))
}

#[derive(Deserialize)]
pub struct FormQuery {
    id: String,
}

pub struct FormInput {
    pub key: String,
    pub label: String,
    pub example: String,
    /// The input's HTML type: `text` or `url`.
    pub input_type: &'static str,
    pub hint: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "template_form.html")]
struct TemplateForm {
    id: String,
    connection_id: String,
    name: String,
    language: String,
    inputs: Vec<FormInput>,
    preview_html: String,
}

/// The form of one template: its inputs and the preview, as the customer will see it.
pub async fn form(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<FormQuery>,
) -> Result<Html<String>, PageError> {
    let row = template_of(&state, &signed, &query.id).await?;
    let spec = spec_of(&row)?;
    let inputs = spec
        .inputs()
        .into_iter()
        .map(|input| {
            let (input_type, hint) = match input.kind {
                InputKind::MediaLink(_) => ("url", Some("A public https link to the file")),
                InputKind::UrlSuffix => ("text", Some("Added to the end of the button's link")),
                InputKind::CouponCode => ("text", Some("The code the customer can copy")),
                InputKind::Location => (
                    "text",
                    Some("latitude, longitude, and optionally the place's name and address"),
                ),
                _ => ("text", None),
            };
            FormInput {
                key: input.key,
                label: input.label,
                example: input.example.unwrap_or_default(),
                input_type,
                hint,
            }
        })
        .collect();
    let preview_html = preview_of(&spec, &BTreeMap::new()).render()?;
    Ok(Html(
        TemplateForm {
            id: row.id,
            connection_id: row.connection_id,
            name: row.name,
            language: row.language,
            inputs,
            preview_html,
        }
        .render()?,
    ))
}

/// The preview bubble for the inputs typed so far (the form's live update).
pub async fn preview(
    State(state): State<AppState>,
    signed: Signed,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, PageError> {
    let mut inputs = BTreeMap::new();
    let mut id = String::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        // Not `id`: a form control of that name would shadow the form's own `id` in scripts.
        if key == "template" {
            id = value.into_owned();
        } else {
            inputs.insert(key.into_owned(), value.into_owned());
        }
    }
    let row = template_of(&state, &signed, &id).await?;
    let spec = spec_of(&row)?;
    Ok(Html(preview_of(&spec, &inputs).render()?))
}

/// What the customer will see, ready to show.
#[derive(Template)]
#[template(path = "template_preview.html")]
pub struct PreviewBubble {
    pub header_text: Option<String>,
    /// `Image`, `Video`, `Document` or `Location` for a header that is not text.
    pub header_media: Option<String>,
    pub header_link: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<String>,
    pub missing: usize,
}

fn preview_of(spec: &TemplateSpec, inputs: &BTreeMap<String, String>) -> PreviewBubble {
    let components = components_from_inputs(spec, inputs);
    let rendered = render(spec, Some(&components));
    let (header_text, header_media, header_link) = match &rendered.header {
        Some(RenderedHeader::Text(text)) => (Some(text.clone()), None, None),
        Some(RenderedHeader::Media { format, link, .. }) => {
            (None, Some(capitalized(format)), link.clone())
        }
        Some(RenderedHeader::Location { name, .. }) => (
            None,
            Some(
                name.clone()
                    .map(|n| format!("Location: {n}"))
                    .unwrap_or_else(|| "Location".to_owned()),
            ),
            None,
        ),
        None => (None, None, None),
    };
    PreviewBubble {
        header_text,
        header_media,
        header_link,
        body: rendered.body.clone(),
        footer: rendered.footer.clone(),
        buttons: rendered.buttons.iter().map(|b| b.text.clone()).collect(),
        missing: rendered.missing.len(),
    }
}

async fn template_of(
    state: &AppState,
    signed: &Signed,
    id: &str,
) -> Result<TemplateRow, PageError> {
    if !crate::ids::looks_like_id(id) {
        return Err(PageError::NotFound);
    }
    state
        .store
        .template(&signed.user.tenant_id, id)
        .await?
        .ok_or(PageError::NotFound)
}

fn spec_of(row: &TemplateRow) -> Result<TemplateSpec, PageError> {
    TemplateSpec::from_stored(
        &row.name,
        &row.language,
        &row.status,
        row.category.as_deref(),
        row.parameter_format.as_deref(),
        &row.components,
    )
    .map_err(|e| PageError::Internal(e.into()))
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.map(|c| c.to_ascii_lowercase()))
            .collect(),
        None => String::new(),
    }
}

fn shorten(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}
