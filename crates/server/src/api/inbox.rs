//! `/api/v1/inbox`: the tenant's stored webhook bodies by processing state, so a parked row (one
//! that kept failing) is visible with its error and can be put back in line.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::page_limit;
use super::schema::ErrorBody;
use crate::app::state::AppState;
use crate::clock::{now_ms, rfc3339};
use crate::store::inbox::{InboxEntry, STATE_DONE, STATE_PARKED, STATE_PENDING};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retry))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `pending`, `done` or `parked` (default `parked`).
    state: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// An entry id: list the entries older than it (the previous page's `next_before`).
    before: Option<i64>,
}

fn render(entry: &InboxEntry) -> Value {
    json!({
        "id": entry.id,
        "connection_id": entry.connection_id,
        "state": entry.state,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "received_at": rfc3339(entry.received_at),
        "next_attempt_at": (entry.state == STATE_PENDING).then(|| rfc3339(entry.next_attempt_at)),
        "processed_at": entry.processed_at.map(rfc3339),
        "body_bytes": entry.body_bytes,
    })
}

/// Stored webhook bodies in one processing state, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/inbox",
    tag = "inbox",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of inbox entries", body = InboxPageDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let wanted = query.state.as_deref().unwrap_or(STATE_PARKED);
    if ![STATE_PENDING, STATE_DONE, STATE_PARKED].contains(&wanted) {
        return Err(ApiError::validation(
            "state",
            "must be pending, done or parked",
        ));
    }
    let limit = page_limit(query.limit)?;
    let rows = state
        .store
        .inbox_entries(&auth.tenant_id, wanted, query.before, limit)
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let data: Vec<Value> = rows.iter().map(render).collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}

/// Puts a parked entry back in line to be processed again now.
#[utoipa::path(
    post,
    path = "/inbox/{id}/retry",
    tag = "inbox",
    params(("id" = i64, Path, description = "The inbox entry's id")),
    responses(
        (status = 200, description = "The entry, pending again", body = InboxEntryDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "Only owners and admins can put webhooks back in line", body = ErrorBody),
        (status = 404, description = "No such parked entry for this tenant", body = ErrorBody),
    )
)]
async fn retry(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("put webhooks back in line")?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("inbox entry"))?;
    let entry = state
        .store
        .retry_inbox_entry(&auth.tenant_id, id, now_ms())
        .await?
        .ok_or(ApiError::NotFound("parked inbox entry"))?;
    state.inbox_wakeup.notify_one();
    Ok(Json(render(&entry)))
}

/// A stored webhook body and how its processing went (the body itself is not shown).
#[derive(ToSchema)]
#[schema(as = InboxEntry)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct InboxEntryDoc {
    id: i64,
    /// `null` for webhooks of the platform-owned app.
    connection_id: Option<String>,
    /// `pending`, `done` or `parked`.
    state: String,
    attempts: i64,
    /// Why the last attempt failed.
    last_error: Option<String>,
    received_at: String,
    /// When it is tried next; only for `pending` entries.
    next_attempt_at: Option<String>,
    processed_at: Option<String>,
    body_bytes: i64,
}

#[derive(ToSchema)]
#[schema(as = InboxPage)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct InboxPageDoc {
    data: Vec<InboxEntryDoc>,
    /// Pass as `before` for the next, older page; `null` on the last one.
    next_before: Option<i64>,
}
