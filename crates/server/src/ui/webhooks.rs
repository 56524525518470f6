//! The webhook log, for owners and admins: the stored webhook bodies of the tenant's numbers by
//! processing state, with the error of any that was parked and a way to put it back in line.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::error::PageError;
use super::session::{Layout, Signed};
use crate::app::state::AppState;
use crate::clock::rfc3339;
use crate::store::inbox::{STATE_DONE, STATE_PARKED, STATE_PENDING};

/// Rows shown per state.
const ROWS_SHOWN: i64 = 100;

pub struct LogRow {
    pub id: i64,
    pub received_at: String,
    pub number: String,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub size: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    page: Layout,
    state: &'static str,
    rows: Vec<LogRow>,
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    state: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<LogQuery>,
) -> Result<Html<String>, PageError> {
    if !signed.manages() {
        return Err(PageError::NotAllowed);
    }
    let tenant_id = signed.user.tenant_id.clone();
    let wanted = match query.state.as_deref() {
        Some(STATE_PENDING) => STATE_PENDING,
        Some(STATE_PARKED) => STATE_PARKED,
        _ => STATE_DONE,
    };
    let numbers: std::collections::HashMap<String, String> = state
        .store
        .connections(&tenant_id)
        .await?
        .into_iter()
        .map(|c| (c.id, c.display_phone_number))
        .collect();
    let rows = state
        .store
        .inbox_entries(&tenant_id, wanted, None, ROWS_SHOWN)
        .await?
        .into_iter()
        .map(|entry| LogRow {
            number: entry
                .connection_id
                .as_ref()
                .and_then(|id| numbers.get(id).cloned())
                .unwrap_or_default(),
            received_at: rfc3339(entry.received_at),
            state: entry.state,
            attempts: entry.attempts,
            error: entry.last_error,
            size: format_size(entry.body_bytes),
            id: entry.id,
        })
        .collect();
    let page = Layout::of(&state, &signed, "webhooks").await?;
    Ok(Html(
        WebhooksPage {
            page,
            state: wanted,
            rows,
        }
        .render()?,
    ))
}

fn format_size(bytes: i64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}
