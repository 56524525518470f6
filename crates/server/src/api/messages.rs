//! `/api/v1/messages`: reading messages, newest first, with `before` paging.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::page_limit;
use super::schema::{ErrorBody, Message, MessagePage, SendMessage};
use crate::app::state::AppState;
use crate::outbound::enqueue::Outbox;
use crate::outbound::{SendError, SendRequest, enqueue};
use crate::phone::PhoneNumber;
use crate::store::messages::MessageQuery;
use crate::views;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, send))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

/// Queues a message; 202 with the queued message. A repeated `idempotency_key` answers with the
/// first message, marked by `Idempotent-Replayed: true`. Outside the customer's 24-hour window
/// only templates may be sent (422 `outside_service_window`).
#[utoipa::path(
    post,
    path = "/messages",
    tag = "messages",
    request_body = SendMessage,
    responses(
        (status = 202, description = "Queued", body = Message,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers a repeated idempotency key"))),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "The connection does not exist", body = ErrorBody),
        (status = 422, description = "A field is wrong, or the window is closed", body = ErrorBody),
    )
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this conversation's messages.
    conversation_id: Option<String>,
    /// The customer's number in any common format.
    contact: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// A message id: list the messages older than it (the previous page's `next_before`).
    before: Option<String>,
}

/// Messages, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/messages",
    tag = "messages",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
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

/// One message.
#[utoipa::path(
    get,
    path = "/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = Message),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such message for this tenant", body = ErrorBody),
    )
)]
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

/// Cancels a message that has not left yet (scheduled with `send_at`, or still waiting for the
/// number's budget): it becomes `failed` with error title `cancelled`. 409 `message_already_sent`
/// once it has left for Meta.
#[utoipa::path(
    post,
    path = "/messages/{id}/cancel",
    tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The cancelled message", body = Message),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such message for this tenant", body = ErrorBody),
        (status = 409, description = "It has already left, or the customer sent it", body = ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = crate::outbound::cancel::cancel(&state, &auth.tenant_id, &id).await?;
    Ok(Json(views::message(&row)))
}
