//! `/api/v1/connections`: connect, list, rotate credentials, re-check and disconnect numbers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::app::state::AppState;
use crate::connections::{ConnectionView, Connections, CreateConnection, UpdateConnection};
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections", post(create).get(list))
        .route(
            "/connections/{id}",
            get(show).patch(update).delete(disconnect),
        )
        .route("/connections/{id}/test", post(test))
}

pub(super) fn service(state: &AppState) -> Connections<'_> {
    Connections {
        store: &state.store,
        vault: &state.vault,
        graph: &state.graph,
        webhook_keys: &state.webhook_keys,
    }
}

fn render(state: &AppState, view: &ConnectionView) -> Value {
    views::connection(
        &view.row,
        &state.webhook_url(&view.row.connection_key),
        view.verify_token.as_deref(),
    )
}

async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(input): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_manager("connect numbers")?;
    let view = service(&state).create(&auth.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(render(&state, &view))))
}

async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    let views = service(&state).list(&auth.tenant_id).await?;
    let data: Vec<Value> = views.iter().map(|v| render(&state, v)).collect();
    Ok(Json(json!({ "data": data })))
}

async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = service(&state).get(&auth.tenant_id, &id).await?;
    Ok(Json(render(&state, &view)))
}

async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateConnection>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("change connections")?;
    let view = service(&state).update(&auth.tenant_id, &id, input).await?;
    Ok(Json(render(&state, &view)))
}

async fn test(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("test connections")?;
    let outcome = service(&state).test(&auth.tenant_id, &id).await?;
    let mut body = json!({
        "ok": outcome.ok,
        "connection": render(&state, &outcome.view),
    });
    if !outcome.ok {
        body["error"] = json!({
            "message": outcome.message,
            "meta": outcome.meta,
        });
    }
    Ok(Json(body))
}

async fn disconnect(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("disconnect numbers")?;
    let view = service(&state).disconnect(&auth.tenant_id, &id).await?;
    Ok(Json(render(&state, &view)))
}
