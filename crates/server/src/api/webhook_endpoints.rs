//! `/api/v1/webhook-endpoints`: the tenant's own URLs that wagate POSTs its events to, their
//! secrets (shown on creation and rotation only), delivery logs and re-sends.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use crate::app::state::AppState;
use crate::clock::rfc3339;
use crate::hooks::EVENT_TYPES;
use crate::hooks::endpoints::{
    CreateEndpoint, DeliveryLog, EndpointError, Endpoints, UpdateEndpoint,
};
use crate::store::webhook_endpoints::{DeliveryRow, EndpointRow, STATE_PENDING};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhook-endpoints", post(create).get(list))
        .route(
            "/webhook-endpoints/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/webhook-endpoints/{id}/rotate-secret", post(rotate_secret))
        .route("/webhook-endpoints/{id}/deliveries", get(deliveries))
        .route(
            "/webhook-endpoints/{id}/deliveries/{delivery_id}/resend",
            post(resend),
        )
}

fn service(state: &AppState) -> Endpoints<'_> {
    Endpoints {
        store: &state.store,
        vault: &state.vault,
        hooks: &state.hooks,
        allow_private_urls: state.settings.hooks.allow_private_urls,
    }
}

/// The endpoint object; the secret is never part of it.
fn render(row: &EndpointRow) -> Value {
    json!({
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "events": row.events,
        "status": if row.enabled { "enabled" } else { "disabled" },
        "disabled_reason": row.disabled_reason,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

/// The endpoint object with its secret, for the two answers that show it.
fn render_with_secret(row: &EndpointRow, secret: &SecretString) -> Value {
    let mut body = render(row);
    body["secret"] = json!(secret.expose_secret());
    body
}

fn render_delivery(
    row: &DeliveryRow,
    attempts: &[crate::store::webhook_endpoints::AttemptRow],
) -> Value {
    json!({
        "id": row.id,
        "endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "status": row.state,
        "attempt_count": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "next_attempt_at": (row.state == STATE_PENDING).then(|| rfc3339(row.next_attempt_at)),
        "delivered_at": row.delivered_at.map(rfc3339),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        "attempts": attempts.iter().map(|a| json!({
            "attempt": a.attempt,
            "status_code": a.status_code,
            "error": a.error,
            "duration_ms": a.duration_ms,
            "at": rfc3339(a.created_at),
        })).collect::<Vec<_>>(),
        "event": serde_json::from_str::<Value>(&row.body).unwrap_or(Value::Null),
    })
}

impl From<EndpointError> for ApiError {
    fn from(error: EndpointError) -> Self {
        match error {
            EndpointError::Invalid(fields) => {
                let mut details = fields.to_details();
                if fields.has("events") {
                    details["valid_events"] = json!(EVENT_TYPES);
                }
                Self::Validation {
                    code: "validation_failed",
                    message: fields.summary(),
                    details,
                }
            }
            EndpointError::TooMany => Self::Validation {
                code: "too_many_endpoints",
                message: error.to_string(),
                details: json!({ "limit": crate::hooks::endpoints::MAX_ENDPOINTS_PER_TENANT }),
            },
            EndpointError::NotFound => Self::NotFound("webhook endpoint"),
            EndpointError::DeliveryNotFound => Self::NotFound("delivery"),
            EndpointError::DeliveryInFlight => Self::Conflict {
                code: "delivery_in_progress",
                message: error.to_string(),
            },
            EndpointError::Store(store) => store.into(),
        }
    }
}

const MANAGE: &str = "manage webhook endpoints";

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(input): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_manager(MANAGE)?;
    let (row, secret) = service(&state).create(&auth.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(render_with_secret(&row, &secret))))
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let rows = service(&state).list(&auth.tenant_id).await?;
    let data: Vec<Value> = rows.iter().map(render).collect();
    Ok(Json(json!({ "data": data })))
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let row = service(&state).get(&auth.tenant_id, &id).await?;
    Ok(Json(render(&row)))
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateEndpoint>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let row = service(&state).update(&auth.tenant_id, &id, input).await?;
    Ok(Json(render(&row)))
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn remove(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_manager(MANAGE)?;
    service(&state).delete(&auth.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn rotate_secret(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let (row, secret) = service(&state).rotate_secret(&auth.tenant_id, &id).await?;
    Ok(Json(render_with_secret(&row, &secret)))
}

#[derive(Debug, Deserialize)]
struct DeliveriesQuery {
    limit: Option<i64>,
    /// `next_before` of the previous page.
    before: Option<String>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn deliveries(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let limit = super::page_limit(query.limit)?;
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::validation("before", "must be the next_before of a previous page")
        })?),
    };
    let logs = service(&state)
        .deliveries(&auth.tenant_id, &id, limit, before)
        .await?;
    let next_before = (logs.len() as i64 == limit)
        .then(|| logs.last().map(|l| l.delivery.seq.to_string()))
        .flatten();
    let data: Vec<Value> = logs
        .iter()
        .map(|DeliveryLog { delivery, attempts }| render_delivery(delivery, attempts))
        .collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}

#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn resend(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_manager(MANAGE)?;
    let row = service(&state)
        .resend(&auth.tenant_id, &id, &delivery_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(render_delivery(&row, &[]))))
}
