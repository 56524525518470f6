//! `/api/v1/messages`: reading messages, newest first, with `before` paging.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::page_limit;
use crate::app::state::AppState;
use crate::outbound::enqueue::Outbox;
use crate::outbound::{SendError, SendRequest, enqueue};
use crate::phone::PhoneNumber;
use crate::store::messages::MessageQuery;
use crate::views;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/messages", get(list).post(send))
        .route("/messages/{id}", get(show))
}

/// `POST /api/v1/messages`: 202 with the queued message (or, for a repeated idempotency key, the
/// first one, marked by `Idempotent-Replayed: true`).
async fn send(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request = SendRequest::parse(&body).map_err(SendError::Invalid)?;
    let outbox = Outbox::from_state(&state);
    let enqueued = enqueue(&outbox, &auth.tenant_id, request).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        Json(views::message(&enqueued.message)),
    )
        .into_response();
    if enqueued.replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[derive(Deserialize)]
struct ListQuery {
    conversation_id: Option<String>,
    /// The customer's number in any common format.
    contact: Option<String>,
    limit: Option<i64>,
    /// A message id: list the messages older than it (the previous page's `next_before`).
    before: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(query.limit)?;
    let contact_wa_id = match query.contact.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(contact) => Some(
            PhoneNumber::parse(contact)
                .map_err(|e| ApiError::validation("contact", e.to_string()))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        Some(id) => {
            let anchor = state
                .store
                .message(&auth.tenant_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::validation(
                        "before",
                        "must be the id of a message (the next_before of a previous page)",
                    )
                })?;
            Some((anchor.message_at, anchor.id))
        }
        None => None,
    };
    let rows = state
        .store
        .messages(
            &auth.tenant_id,
            &MessageQuery {
                conversation_id: query.conversation_id.filter(|c| !c.is_empty()),
                contact_wa_id,
                before,
                limit,
            },
        )
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let data: Vec<Value> = rows.iter().map(views::message).collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}

async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .message(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    Ok(Json(views::message(&row)))
}
