//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the database answers, and
//! whether Redis does) and `/metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;

/// How long `/readyz` waits for Redis.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

/// Whether the process is up (it checks nothing else).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The process is up", body = HealthDoc),
    )
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Whether the process can serve: the database answers, and whether Redis does.
///
/// 503 only when the database does not answer: nothing can be stored then, and a balancer should
/// send traffic elsewhere. Redis away is reported but still ready: rate budgets fall back to this
/// process's own and live events stay local, so the process still serves correctly.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready (`ready`), or ready without Redis (`degraded`)", body = ReadyDoc),
        (status = 503, description = "The database does not answer", body = NotReadyDoc),
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store.ping().await;
    let redis = match state.settings.redis_url.as_deref() {
        Some(url) => Some(ping_redis(url).await),
        None => None,
    };
    let redis_check = match &redis {
        None => "not_configured",
        Some(Ok(())) => "ok",
        Some(Err(_)) => "unavailable",
    };
    if let Some(Err(error)) = &redis {
        tracing::warn!(error = %error, "Redis does not answer; running on local rate budgets");
    }
    match database {
        Ok(()) => {
            let status = if redis_check == "unavailable" {
                "degraded"
            } else {
                "ready"
            };
            Json(json!({ "status": status, "checks": {"database": "ok", "redis": redis_check} }))
                .into_response()
        }
        Err(error) => {
            tracing::warn!(error = %error, "not ready: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "reason": "the database does not answer",
                    "checks": {"database": "unavailable", "redis": redis_check},
                })),
            )
                .into_response()
        }
    }
}

async fn ping_redis(url: &str) -> Result<(), redis::RedisError> {
    let timeout = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let client = redis::Client::open(url)?;
    let mut connection =
        tokio::time::timeout(READY_TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| timeout())??;
    tokio::time::timeout(
        READY_TIMEOUT,
        redis::cmd("PING").query_async::<()>(&mut connection),
    )
    .await
    .map_err(|_| timeout())?
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The metrics (`text/plain; version=0.0.4`)", body = String, content_type = "text/plain"),
        (status = 404, description = "Metrics are not enabled in this process", body = String, content_type = "text/plain"),
    )
)]
async fn metrics_text(State(state): State<AppState>) -> Response {
    if let Ok(pending) = state.store.inbox_pending_count().await {
        metrics::gauge!("wagate_inbox_pending").set(pending as f64);
    }
    if let Ok(due) = state.store.due_job_counts(crate::clock::now_ms()).await {
        // A kind whose queue emptied must read 0, not the last depth it had.
        static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
            std::sync::Mutex::new(std::collections::BTreeSet::new());
        let mut seen = SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for kind in seen.iter() {
            if !due.iter().any(|(k, _)| k == kind) {
                metrics::gauge!("wagate_jobs_due", "kind" => kind.clone()).set(0.0);
            }
        }
        for (kind, count) in due {
            metrics::gauge!("wagate_jobs_due", "kind" => kind.clone()).set(count as f64);
            seen.insert(kind);
        }
    }
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
            .into_response(),
    }
}

/// The answer of `/healthz`.
#[derive(ToSchema)]
#[schema(as = Health)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct HealthDoc {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: String,
}

/// The answer of `/readyz` when ready.
#[derive(ToSchema)]
#[schema(as = Ready)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ReadyDoc {
    /// `ready`, or `degraded` when Redis is configured but does not answer.
    #[schema(example = "ready")]
    status: String,
    checks: ReadinessChecksDoc,
}

/// The answer of `/readyz` when not ready.
#[derive(ToSchema)]
#[schema(as = NotReady)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct NotReadyDoc {
    /// Always `unavailable`.
    #[schema(example = "unavailable")]
    status: String,
    /// Why, in a sentence.
    reason: String,
    checks: ReadinessChecksDoc,
}

#[derive(ToSchema)]
#[schema(as = ReadinessChecks)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ReadinessChecksDoc {
    /// `ok` or `unavailable`.
    database: String,
    /// `ok`, `unavailable` or `not_configured`.
    redis: String,
}
