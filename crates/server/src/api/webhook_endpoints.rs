//! `/api/v1/webhook-endpoints`: the tenant's own URLs that wagate POSTs its events to, their
//! secrets (shown on creation and rotation only), delivery logs and re-sends.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::schema::ErrorBody;
use crate::app::state::AppState;
use crate::clock::rfc3339;
use crate::hooks::EVENT_TYPES;
use crate::hooks::endpoints::{
    CreateEndpoint, DeliveryLog, EndpointError, Endpoints, UpdateEndpoint,
};
use crate::store::webhook_endpoints::{DeliveryRow, EndpointRow, STATE_PENDING};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(resend))
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

/// Adds an endpoint that wagate POSTs the chosen events to.
///
/// The answer shows its signing secret, the only time besides a rotation that it is shown.
#[utoipa::path(
    post,
    path = "/webhook-endpoints",
    tag = "webhook-endpoints",
    request_body = NewWebhookEndpoint,
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookEndpointWithSecret),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 422, description = "A field is wrong (`details.valid_events` lists the event types when `events` is), or the tenant has as many endpoints as allowed (`too_many_endpoints`)", body = ErrorBody),
    )
)]
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

/// The tenant's webhook endpoints.
#[utoipa::path(
    get,
    path = "/webhook-endpoints",
    tag = "webhook-endpoints",
    responses(
        (status = 200, description = "The endpoints", body = WebhookEndpointList),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let rows = service(&state).list(&auth.tenant_id).await?;
    let data: Vec<Value> = rows.iter().map(render).collect();
    Ok(Json(json!({ "data": data })))
}

/// One webhook endpoint (never its secret).
#[utoipa::path(
    get,
    path = "/webhook-endpoints/{id}",
    tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The webhook endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 404, description = "No such webhook endpoint for this tenant", body = ErrorBody),
    )
)]
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

/// Changes the fields given; `enabled: true` turns a disabled endpoint back on.
#[utoipa::path(
    patch,
    path = "/webhook-endpoints/{id}",
    tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The webhook endpoint's id")),
    request_body = WebhookEndpointChanges,
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpoint),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 404, description = "No such webhook endpoint for this tenant", body = ErrorBody),
        (status = 422, description = "A field is wrong (`details.valid_events` lists the event types when `events` is)", body = ErrorBody),
    )
)]
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

/// Deletes a webhook endpoint.
#[utoipa::path(
    delete,
    path = "/webhook-endpoints/{id}",
    tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The webhook endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 404, description = "No such webhook endpoint for this tenant", body = ErrorBody),
    )
)]
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

/// Replaces the signing secret at once; the answer is the only place the new one is shown.
#[utoipa::path(
    post,
    path = "/webhook-endpoints/{id}/rotate-secret",
    tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The webhook endpoint's id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookEndpointWithSecret),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 404, description = "No such webhook endpoint for this tenant", body = ErrorBody),
    )
)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_before` of the previous page.
    before: Option<String>,
}

/// The endpoint's deliveries, newest first, each with its attempts.
#[utoipa::path(
    get,
    path = "/webhook-endpoints/{id}/deliveries",
    tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The webhook endpoint's id"), DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = WebhookDeliveryPage),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 404, description = "No such webhook endpoint for this tenant", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
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

/// Queues a delivery to be sent again; 202 with the delivery (its `attempts` left empty).
#[utoipa::path(
    post,
    path = "/webhook-endpoints/{id}/deliveries/{delivery_id}/resend",
    tag = "webhook-endpoints",
    params(("id" = String, Path, description = "The webhook endpoint's id"), ("delivery_id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Queued again", body = WebhookDelivery),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage webhook endpoints", body = ErrorBody),
        (status = 404, description = "No such webhook endpoint, or no such delivery of it", body = ErrorBody),
        (status = 409, description = "An attempt of this delivery is in flight (`delivery_in_progress`)", body = ErrorBody),
    )
)]
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

// Doc-only shapes of this module's answers and bodies, read by the OpenAPI derive.

/// One of the tenant's URLs that wagate POSTs events to. Never shows the secret.
#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookEndpoint {
    id: String,
    url: String,
    description: Option<String>,
    /// The event types sent to it: `message.created`, `message.status`, `conversation.updated`,
    /// `template.updated`, `connection.updated`.
    events: Vec<String>,
    /// `enabled` or `disabled`.
    status: String,
    /// Why it is disabled, when it is.
    disabled_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

/// The endpoint with its signing secret: the answers of creation and rotation only.
#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookEndpointWithSecret {
    id: String,
    url: String,
    description: Option<String>,
    /// The event types sent to it.
    events: Vec<String>,
    /// `enabled` or `disabled`.
    status: String,
    disabled_reason: Option<String>,
    created_at: String,
    updated_at: String,
    /// Signs each delivery; keep it, it is not shown again.
    secret: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookEndpointList {
    data: Vec<WebhookEndpoint>,
}

/// `POST /api/v1/webhook-endpoints`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct NewWebhookEndpoint {
    /// An http:// or https:// URL with a host, no credentials and no fragment; at most 2048
    /// characters.
    #[schema(example = "https://example.com/wagate")]
    url: String,
    /// At least one of `message.created`, `message.status`, `conversation.updated`,
    /// `template.updated`, `connection.updated`.
    events: Vec<String>,
    /// At most 500 characters.
    description: Option<String>,
}

/// `PATCH /api/v1/webhook-endpoints/{id}`: the fields given change.
#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookEndpointChanges {
    url: Option<String>,
    events: Option<Vec<String>>,
    /// `null` clears it.
    description: Option<String>,
    /// `false` stops deliveries (they are held), `true` lets them go again.
    enabled: Option<bool>,
}

/// One event sent (or to be sent) to an endpoint.
#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookDelivery {
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    /// `pending`, `delivering`, `delivered` or `failed`.
    status: String,
    attempt_count: i64,
    /// The HTTP status of the last attempt, when it got one.
    last_status_code: Option<i64>,
    last_error: Option<String>,
    /// When the next attempt is due; only while `pending`.
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
    updated_at: String,
    attempts: Vec<WebhookDeliveryAttempt>,
    /// The event as sent: the body each attempt POSTs.
    event: Value,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookDeliveryAttempt {
    /// 1 for the first.
    attempt: i64,
    /// The endpoint's HTTP status, when it answered.
    status_code: Option<i64>,
    /// Why the attempt failed, when it did.
    error: Option<String>,
    duration_ms: i64,
    at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct WebhookDeliveryPage {
    data: Vec<WebhookDelivery>,
    /// Pass as `before` for the next, older page; `null` on the last one.
    next_before: Option<String>,
}
