//! `GET /api/v1/usage?from=&to=&connection_id=`: messages Meta priced, per connection, UTC day,
//! category and whether they are billable, from the `pricing` of status webhooks.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::schema::ErrorBody;
use crate::app::state::AppState;
use crate::clock::{now_ms, utc_day};
use crate::validation::FieldErrors;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// First UTC day, `YYYY-MM-DD`; default 30 days ago.
    from: Option<String>,
    /// Last UTC day, inclusive; default today.
    to: Option<String>,
    /// Only this connection's messages.
    connection_id: Option<String>,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Messages Meta priced, per connection, UTC day, category and whether they are billable.
#[utoipa::path(
    get,
    path = "/usage",
    tag = "usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "The priced messages of the period", body = UsageDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "The connection does not exist", body = ErrorBody),
        (status = 422, description = "A date is wrong, or `from` is after `to`", body = ErrorBody),
    )
)]
async fn usage(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let from = query.from.unwrap_or_else(|| utc_day(now - 30 * DAY_MS));
    let to = query.to.unwrap_or_else(|| utc_day(now));
    let mut errors = FieldErrors::new();
    for (field, value) in [("from", &from), ("to", &to)] {
        if !is_day(value) {
            errors.add(field, "must be a date like 2026-11-21 (UTC)");
        }
    }
    if errors.is_empty() && from > to {
        errors.add("from", "must not be after `to`");
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation {
            code: "validation_failed",
            message: errors.summary(),
            details: errors.to_details(),
        });
    }
    let connection_id = query.connection_id.filter(|c| !c.is_empty());
    if let Some(id) = &connection_id
        && state.store.connection(&auth.tenant_id, id).await?.is_none()
    {
        return Err(ApiError::NotFound("connection"));
    }
    let rows = state
        .store
        .usage(&auth.tenant_id, &from, &to, connection_id.as_deref())
        .await?;
    let total_billable: i64 = rows.iter().filter(|r| r.billable).map(|r| r.messages).sum();
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "date": r.day,
                "connection_id": r.connection_id,
                "category": r.category,
                "billable": r.billable,
                "pricing_model": r.pricing_model,
                "messages": r.messages,
            })
        })
        .collect();
    Ok(Json(json!({
        "from": from,
        "to": to,
        "data": data,
        "billable_messages": total_billable,
    })))
}

fn is_day(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
}

/// The answer of `GET /api/v1/usage`.
#[derive(ToSchema)]
#[schema(as = Usage)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct UsageDoc {
    /// First UTC day of the period, `YYYY-MM-DD`.
    #[schema(example = "2026-11-01")]
    from: String,
    /// Last UTC day of the period, inclusive.
    #[schema(example = "2026-11-30")]
    to: String,
    data: Vec<UsageRowDoc>,
    /// Billable messages over the whole period.
    billable_messages: i64,
}

/// Messages of one connection, day, category and billability.
#[derive(ToSchema)]
#[schema(as = UsageRow)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct UsageRowDoc {
    /// The UTC day, `YYYY-MM-DD`.
    date: String,
    connection_id: String,
    /// Meta's pricing category (`marketing`, `utility`, `authentication`, `service`, ...), as
    /// Meta names it; `unknown` when Meta gave none.
    category: String,
    billable: bool,
    /// Meta's pricing model, such as `PMP`; `unknown` when Meta gave none.
    pricing_model: String,
    messages: i64,
}
