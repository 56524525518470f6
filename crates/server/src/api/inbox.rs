//! `/api/v1/inbox`: the tenant's stored webhook bodies by processing state, so a parked row (one
//! that kept failing) is visible with its error and can be put back in line.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::page_limit;
use crate::app::state::AppState;
use crate::clock::{now_ms, rfc3339};
use crate::store::inbox::{InboxEntry, STATE_DONE, STATE_PARKED, STATE_PENDING};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(list))
        .route("/inbox/{id}/retry", post(retry))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
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
