//! The assistant over the API: a connection's settings, and pausing or resuming it on one
//! conversation (a person takes over, or hands back).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::app::state::AppState;
use crate::assistant::reply::publish_handler_change;
use crate::assistant::settings::{AssistantSettings, SettingsInput};
use crate::clock::now_ms;
use crate::connections::UpdateConnection;
use crate::store::connections::STATUS_DISCONNECTED;

/// Why a conversation is paused when a person pauses it by hand.
const PAUSED_BY_HAND: &str = "paused by a person";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections/{id}/assistant", get(show).put(replace))
        .route("/conversations/{id}/assistant/pause", post(pause))
        .route("/conversations/{id}/assistant/resume", post(resume))
}

async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let connection = state
        .store
        .connection(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    let settings = state
        .store
        .assistant_settings(&auth.tenant_id, &id)
        .await?
        .map(|row| AssistantSettings::from_row(&row))
        .unwrap_or_default();
    Ok(Json(settings.to_json(&id, connection.auto_reply)))
}

async fn replace(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("change the assistant")?;
    let connection = state
        .store
        .connection(&auth.tenant_id, &id)
        .await?
        .filter(|c| c.status != STATUS_DISCONNECTED)
        .ok_or(ApiError::NotFound("connection"))?;
    let input = SettingsInput::parse(&body).map_err(|fields| ApiError::Validation {
        code: "validation_failed",
        message: fields.summary(),
        details: fields.to_details(),
    })?;
    let settings =
        crate::assistant::save_settings(&state.store, &state.vault, &auth.tenant_id, &id, &input)
            .await?;
    let mut auto_reply = connection.auto_reply;
    if let Some(on) = input.auto_reply
        && on != connection.auto_reply
    {
        let view = super::connections::service(&state)
            .update(
                &auth.tenant_id,
                &id,
                UpdateConnection {
                    auto_reply: Some(on),
                    ..Default::default()
                },
            )
            .await?;
        auto_reply = view.row.auto_reply;
    }
    Ok(Json(settings.to_json(&id, auto_reply)))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PauseInput {
    /// How long; the connection's `pause_minutes` when left out.
    minutes: Option<i64>,
}

async fn pause(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: an empty one pauses for the connection's usual time.
    let input: PauseInput = if body.iter().all(u8::is_ascii_whitespace) {
        PauseInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::validation(
                "minutes",
                format!("the body must be {{\"minutes\": N}} or empty: {e}"),
            )
        })?
    };
    let conversation = state
        .store
        .conversation(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let minutes = match input.minutes {
        Some(m) if (1..=30 * 24 * 60).contains(&m) => m,
        Some(_) => {
            return Err(ApiError::validation(
                "minutes",
                "must be a whole number of minutes from 1 to 43200 (30 days)",
            ));
        }
        None => state
            .store
            .assistant_settings(&auth.tenant_id, &conversation.connection_id)
            .await?
            .map(|row| AssistantSettings::from_row(&row).pause_minutes)
            .unwrap_or(crate::assistant::settings::DEFAULT_PAUSE_MINUTES),
    };
    let now = now_ms();
    let until = now + minutes * 60_000;
    state
        .store
        .set_assistant_pause(&auth.tenant_id, &id, Some((until, PAUSED_BY_HAND)), now)
        .await?;
    publish_handler_change(
        &state.events,
        &id,
        &auth.tenant_id,
        Some(until),
        PAUSED_BY_HAND,
    );
    Ok(Json(json!({
        "conversation_id": id,
        "assistant": {"paused_until": crate::clock::rfc3339(until), "paused_reason": PAUSED_BY_HAND},
    })))
}

async fn resume(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state
        .store
        .set_assistant_pause(&auth.tenant_id, &id, None, now_ms())
        .await?
    {
        return Err(ApiError::NotFound("conversation"));
    }
    publish_handler_change(&state.events, &id, &auth.tenant_id, None, "");
    Ok(Json(json!({
        "conversation_id": id,
        "assistant": {"paused_until": null, "paused_reason": null},
    })))
}
