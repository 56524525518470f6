//! The REST API under `/api/v1`: thin handlers that parse, call the modules that hold the rules,
//! and render the contract's JSON.

pub mod assistant;
pub mod auth;
pub mod connections;
pub mod contacts;
pub mod conversations;
pub mod error;
pub mod extract;
pub mod inbox;
pub mod media;
pub mod messages;
pub mod openapi;
pub mod ops;
pub mod profile;
pub mod rate_limit;
pub mod schema;
pub mod sequences;
pub mod settings;
pub mod templates;
pub mod usage;
pub mod webhook_endpoints;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;

/// Largest JSON body the API takes (media uploads have their own route and limit).
pub const MAX_API_BODY: usize = 1024 * 1024;

/// Default and largest page sizes of list endpoints.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;

/// Every documented route: `/api/v1/...` and the operations endpoints. `openapi::document`
/// describes exactly these (and uploads and webhooks), from the same `routes!` calls.
fn documented() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(connections::router())
        .merge(profile::router())
        .merge(contacts::router())
        .merge(assistant::router())
        .merge(messages::router())
        .merge(conversations::router())
        .merge(inbox::router())
        .merge(templates::router())
        .merge(media::router())
        .merge(usage::router())
        .merge(sequences::router())
        .merge(settings::router())
        .merge(webhook_endpoints::router())
        .routes(routes!(crate::realtime::socket::upgrade))
        .fallback(|| async { error::ApiError::NotFound("endpoint") })
        .layer(DefaultBodyLimit::max(MAX_API_BODY));
    OpenApiRouter::new()
        .nest("/api/v1", v1)
        .merge(ops::router())
}

pub fn router() -> Router<AppState> {
    let (routes, described) = documented().split_for_parts();
    routes.merge(openapi::router(described))
}

/// Routes that read large bodies (media uploads), kept apart so they get a longer request
/// timeout than the rest of the API.
pub fn upload_router() -> Router<AppState> {
    media::upload_router()
        .merge(contacts::upload_router())
        .split_for_parts()
        .0
}

/// A page size from the query: default when absent, 422 when out of range.
pub fn page_limit(limit: Option<i64>) -> Result<i64, error::ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(error::ApiError::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}
