//! `/api/v1/conversations` and `/api/v1/unread-count`: the inbox list, one conversation, and
//! marking it read (which also sends Meta a read receipt for the customer's last message).

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
use super::schema::{Conversation, ConversationPage, ErrorBody};
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::jobs::read_receipt;
use crate::realtime::{Event, kind};
use crate::store::conversations::ConversationQuery;
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(mark_all_read))
        .routes(routes!(mark_read))
        .routes(routes!(typing))
        .routes(routes!(unread_count))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only conversations with unread messages (default false).
    #[serde(default)]
    unread_only: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// A conversation id: list those with older activity (the previous page's `next_before`).
    before: Option<String>,
    /// Part of the contact's name or number.
    #[serde(default)]
    q: Option<String>,
}

/// Conversations, most recent activity first, a page at a time.
#[utoipa::path(
    get,
    path = "/conversations",
    tag = "conversations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of conversations", body = ConversationPage),
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
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        Some(id) => {
            let anchor = state
                .store
                .conversation(&auth.tenant_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::validation(
                        "before",
                        "must be the id of a conversation (the next_before of a previous page)",
                    )
                })?;
            Some((
                anchor.last_message_at.unwrap_or(anchor.created_at),
                anchor.id,
            ))
        }
        None => None,
    };
    let rows = state
        .store
        .conversations(
            &auth.tenant_id,
            &ConversationQuery {
                unread_only: query.unread_only.unwrap_or(false),
                search: query.q.filter(|q| !q.trim().is_empty()),
                before,
                limit,
            },
        )
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let data: Vec<Value> = rows.iter().map(views::conversation).collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}

/// One conversation.
#[utoipa::path(
    get,
    path = "/conversations/{id}",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation", body = Conversation),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such conversation for this tenant", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .conversation(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    Ok(Json(views::conversation(&row)))
}

/// Marks a conversation read: its unread count goes to 0 and Meta gets a read receipt for the
/// customer's last message.
#[utoipa::path(
    post,
    path = "/conversations/{id}/read",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation, now read", body = Conversation),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such conversation for this tenant", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
async fn mark_read(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let data = read_one(&state, &auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    publish_unread(&state, &auth.tenant_id).await?;
    Ok(Json(data))
}

/// Pages of unread conversations one "mark all as read" goes through at most.
const MARK_ALL_MAX_PAGES: usize = 1_000;

/// Marks every conversation of the tenant read (each customer's last message gets Meta's read
/// receipt, as one at a time would).
#[utoipa::path(
    post,
    path = "/conversations/read-all",
    tag = "conversations",
    responses(
        (status = 200, description = "How many were marked, and the unread count left", body = MarkedAllReadDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
    )
)]
async fn mark_all_read(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Value>, ApiError> {
    let mut marked = 0;
    // Bounded: customers who keep writing meanwhile cannot keep this request going for ever.
    for _ in 0..MARK_ALL_MAX_PAGES {
        let unread = state
            .store
            .conversations(
                &auth.tenant_id,
                &ConversationQuery {
                    unread_only: true,
                    limit: crate::api::MAX_PAGE,
                    ..ConversationQuery::default()
                },
            )
            .await?;
        if unread.is_empty() {
            break;
        }
        for row in &unread {
            if read_one(&state, &auth.tenant_id, &row.id).await?.is_some() {
                marked += 1;
            }
        }
    }
    let unread = publish_unread(&state, &auth.tenant_id).await?;
    Ok(Json(json!({ "marked": marked, "unread": unread })))
}

/// Zeroes one conversation's unread count, queues Meta's read receipt and tells live clients.
async fn read_one(state: &AppState, tenant_id: &str, id: &str) -> Result<Option<Value>, ApiError> {
    let Some(row) = state
        .store
        .mark_conversation_read(tenant_id, id, now_ms())
        .await?
    else {
        return Ok(None);
    };
    if let Some(wamid) = &row.last_inbound_wamid {
        read_receipt::enqueue(state, &row.tenant_id, &row.connection_id, wamid, false).await?;
    }
    let data = views::conversation(&row);
    state.events.publish(Event {
        tenant_id: tenant_id.to_owned(),
        kind: kind::CONVERSATION_UPDATED,
        data: data.clone(),
    });
    Ok(Some(data))
}

async fn publish_unread(state: &AppState, tenant_id: &str) -> Result<i64, ApiError> {
    let unread = state.store.unread_total(tenant_id).await?;
    state.events.publish(Event {
        tenant_id: tenant_id.to_owned(),
        kind: kind::UNREAD_CHANGED,
        data: json!({ "unread": unread }),
    });
    Ok(unread)
}

/// Shows the customer that an answer is being typed (Meta shows it for up to 25 s, or until the
/// answer arrives); it also marks their last message read, as Meta requires.
#[utoipa::path(
    post,
    path = "/conversations/{id}/typing",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The typing indicator is queued", body = TypingDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such conversation for this tenant", body = ErrorBody),
        (status = 422, description = "The customer has not written yet", body = ErrorBody),
    )
)]
async fn typing(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .conversation(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let Some(wamid) = &row.last_inbound_wamid else {
        return Err(ApiError::Validation {
            code: "validation_failed",
            message:
                "the customer has not written yet: Meta shows typing only in reply to a message"
                    .into(),
            details: json!({}),
        });
    };
    read_receipt::enqueue(&state, &row.tenant_id, &row.connection_id, wamid, true).await?;
    Ok(Json(json!({ "typing": true, "conversation_id": row.id })))
}

/// The tenant's unread messages, over all conversations.
#[utoipa::path(
    get,
    path = "/unread-count",
    tag = "conversations",
    responses(
        (status = 200, description = "The unread count", body = UnreadCountDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
    )
)]
async fn unread_count(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Value>, ApiError> {
    let unread = state.store.unread_total(&auth.tenant_id).await?;
    Ok(Json(json!({ "unread": unread })))
}

/// The answer of `POST /api/v1/conversations/read-all`.
#[derive(ToSchema)]
#[schema(as = MarkedAllRead)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct MarkedAllReadDoc {
    /// Conversations marked read.
    marked: i64,
    /// Unread messages left (customers may have written meanwhile).
    unread: i64,
}

/// The answer of `POST /api/v1/conversations/{id}/typing`.
#[derive(ToSchema)]
#[schema(as = Typing)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct TypingDoc {
    /// Always true.
    typing: bool,
    conversation_id: String,
}

/// The answer of `GET /api/v1/unread-count`.
#[derive(ToSchema)]
#[schema(as = UnreadCount)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct UnreadCountDoc {
    /// Unread messages over all the tenant's conversations.
    unread: i64,
}
