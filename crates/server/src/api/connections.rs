//! `/api/v1/connections`: connect, list, rotate credentials, re-check and disconnect numbers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiJson;
use super::schema::{Connection, ConnectionList, ErrorBody};
use crate::app::state::AppState;
use crate::connections::{ConnectionView, Connections, CreateConnection, UpdateConnection};
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, disconnect))
        .routes(routes!(test))
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

/// Connects a number. The credentials are checked with Meta first; nothing is stored unless Meta
/// accepts them. The answer shows the webhook URL and verify token to give Meta.
#[utoipa::path(
    post,
    path = "/connections",
    tag = "connections",
    request_body = CreateConnectionDoc,
    responses(
        (status = 201, description = "Connected", body = Connection),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "Only owners and admins can connect numbers", body = ErrorBody),
        (status = 409, description = "The phone number is already connected", body = ErrorBody),
        (status = 422, description = "A field is wrong, or Meta rejected the credentials", body = ErrorBody),
        (status = 502, description = "Meta could not be reached to check the credentials", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(input): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_manager("connect numbers")?;
    let view = service(&state).create(&auth.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(render(&state, &view))))
}

/// The tenant's connections.
#[utoipa::path(
    get,
    path = "/connections",
    tag = "connections",
    responses(
        (status = 200, description = "Every connection of the tenant", body = ConnectionList),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
    )
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    let views = service(&state).list(&auth.tenant_id).await?;
    let data: Vec<Value> = views.iter().map(|v| render(&state, v)).collect();
    Ok(Json(json!({ "data": data })))
}

/// One connection.
#[utoipa::path(
    get,
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The connection", body = Connection),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such connection for this tenant", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = service(&state).get(&auth.tenant_id, &id).await?;
    Ok(Json(render(&state, &view)))
}

/// Changes a connection: only the fields given change. A new access token is checked with Meta
/// before it is stored.
#[utoipa::path(
    patch,
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = UpdateConnectionDoc,
    responses(
        (status = 200, description = "The changed connection", body = Connection),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "Only owners and admins can change connections", body = ErrorBody),
        (status = 404, description = "No such connection, or it is disconnected", body = ErrorBody),
        (status = 422, description = "A field is wrong, or Meta rejected the new token", body = ErrorBody),
        (status = 502, description = "Meta could not be reached to check the new token", body = ErrorBody),
    )
)]
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

/// Re-checks the stored access token with Meta. A token Meta refuses marks the connection
/// `needs_reauth`; one it accepts again lifts that. Either way the answer is 200 with `ok`.
#[utoipa::path(
    post,
    path = "/connections/{id}/test",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The outcome of the check, and the connection as it now is", body = ConnectionTestDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "Only owners and admins can test connections", body = ErrorBody),
        (status = 404, description = "No such connection for this tenant", body = ErrorBody),
    )
)]
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

/// Disconnects a number: its credentials are wiped and its webhooks are no longer taken. The
/// connection stays listed with status `disconnected`.
#[utoipa::path(
    delete,
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The disconnected connection", body = Connection),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "Only owners and admins can disconnect numbers", body = ErrorBody),
        (status = 404, description = "No such connection for this tenant", body = ErrorBody),
    )
)]
async fn disconnect(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("disconnect numbers")?;
    let view = service(&state).disconnect(&auth.tenant_id, &id).await?;
    Ok(Json(render(&state, &view)))
}

/// `POST /api/v1/connections`: the number's credentials from Meta's app dashboard.
#[derive(ToSchema)]
#[schema(as = CreateConnection)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct CreateConnectionDoc {
    /// A (system user) access token that can manage the number.
    access_token: String,
    /// Meta's id of the phone number (not the number itself).
    phone_number_id: String,
    /// The Meta app's secret, which signs its webhooks.
    app_secret: String,
    /// The WhatsApp Business Account the number belongs to (templates live there).
    waba_id: Option<String>,
    /// The verify token to give Meta; a random one is made when left out.
    verify_token: Option<String>,
    /// Whether the assistant answers on this number (default false).
    auto_reply: Option<bool>,
}

/// `PATCH /api/v1/connections/{id}`: give at least one field; only what is given changes.
#[derive(ToSchema)]
#[schema(as = UpdateConnection)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct UpdateConnectionDoc {
    /// A new access token; checked with Meta before it is stored.
    access_token: Option<String>,
    app_secret: Option<String>,
    verify_token: Option<String>,
    auto_reply: Option<bool>,
    /// Messages per second this number may send, 1 to 1000 (Meta's default is 80).
    throughput_per_second: Option<i64>,
    /// The WhatsApp Business Account, for a connection made without it.
    waba_id: Option<String>,
}

/// The answer of `POST /api/v1/connections/{id}/test`.
#[derive(ToSchema)]
#[schema(as = ConnectionTest)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ConnectionTestDoc {
    /// Whether Meta accepted the stored token.
    ok: bool,
    connection: Connection,
    /// Why the check failed; only present when `ok` is false.
    error: Option<ConnectionTestErrorDoc>,
}

#[derive(ToSchema)]
#[schema(as = ConnectionTestError)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ConnectionTestErrorDoc {
    /// What went wrong, in a sentence.
    message: String,
    /// Meta's own error, when Meta answered with one.
    #[schema(value_type = Option<Object>)]
    meta: Option<Value>,
}
