//! The signed-in pages: integrations and settings. Actions on them call the REST API from the
//! page's script (with the session cookie and its CSRF token), so each rule lives in one place.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;

use super::error::PageError;
use super::session::{CsrfForm, Layout, Signed};
use crate::app::state::AppState;
use crate::auth::api_key;
use crate::clock::now_ms;
use crate::connections::Connections;
use crate::ids::new_id;

pub async fn home() -> Redirect {
    Redirect::to("/app/inbox")
}

/// A connection as its card shows it.
pub struct ConnectionCard {
    pub id: String,
    pub display_phone_number: String,
    pub verified_name: String,
    pub phone_number_id: String,
    pub status: String,
    pub status_label: &'static str,
    pub status_reason: Option<String>,
    pub webhook_url: String,
    pub verify_token: Option<String>,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    page: Layout,
    connections: Vec<ConnectionCard>,
}

pub async fn integrations(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Html<String>, PageError> {
    let service = Connections {
        store: &state.store,
        vault: &state.vault,
        graph: &state.graph,
        webhook_keys: &state.webhook_keys,
    };
    let connections = service
        .list(&signed.user.tenant_id)
        .await
        .map_err(|e| PageError::Internal(e.into()))?
        .into_iter()
        .map(|view| ConnectionCard {
            webhook_url: state.webhook_url(&view.row.connection_key),
            status_label: status_label(&view.row.status),
            id: view.row.id,
            display_phone_number: view.row.display_phone_number,
            verified_name: view.row.verified_name,
            phone_number_id: view.row.phone_number_id,
            status: view.row.status,
            status_reason: view.row.status_reason,
            verify_token: view.verify_token,
        })
        .collect();
    let page = Layout::of(&state, &signed, "integrations").await?;
    Ok(Html(IntegrationsPage { page, connections }.render()?))
}

fn status_label(status: &str) -> &'static str {
    match status {
        crate::store::connections::STATUS_CONNECTED => "Connected",
        crate::store::connections::STATUS_NEEDS_REAUTH => "Needs new credentials",
        _ => "Disconnected",
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    page: Layout,
    key_prefixes: Vec<String>,
    new_key: Option<String>,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn settings(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Html<String>, PageError> {
    settings_with(&state, signed, None, None, None).await
}

pub(super) async fn settings_with(
    state: &AppState,
    signed: Signed,
    new_key: Option<String>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Html<String>, PageError> {
    let key_prefixes = state
        .store
        .api_key_prefixes(&signed.user.tenant_id)
        .await?
        .into_iter()
        .map(|prefix| format!("{prefix}…"))
        .collect();
    let page = Layout::of(state, &signed, "settings").await?;
    Ok(Html(
        SettingsPage {
            page,
            key_prefixes,
            new_key,
            error,
            notice,
        }
        .render()?,
    ))
}

/// Makes a new API key, revoking the old, and shows it once.
pub async fn regenerate_api_key(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_manager_form(&form.csrf_token)?;
    let key = api_key::mint();
    state
        .store
        .replace_api_key(
            &signed.user.tenant_id,
            &new_id(),
            &key.hash,
            &key.display_prefix,
            now_ms(),
        )
        .await?;
    tracing::info!(tenant_id = %signed.user.tenant_id, user_id = %signed.user.user_id, "API key replaced");
    let page = settings_with(
        &state,
        signed,
        Some(key.secret.expose_secret().to_owned()),
        None,
        None,
    )
    .await?;
    // The key is in this answer only: no cache may keep it.
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], page).into_response())
}
