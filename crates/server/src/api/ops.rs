//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the database answers) and
//! `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

/// A plain page for whoever opens the server in a browser, until the dashboard takes this place.
async fn home() -> axum::response::Html<&'static str> {
    axum::response::Html(HOME_PAGE)
}

const HOME_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wagate</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #1f2328; }
code { background: #f3f4f6; padding: 0 .25rem; border-radius: 4px; }
h1 { font-size: 1.5rem; }
</style>
</head>
<body>
<h1>wagate is running</h1>
<p>WhatsApp Cloud API conversations for your business, through a REST API and live events.</p>
<ul>
<li>REST API: <code>/api/v1</code>, with <code>Authorization: Bearer &lt;api key&gt;</code>
(for example <code>GET /api/v1/conversations</code>).</li>
<li>Live events: <code>/api/v1/events</code> (WebSocket).</li>
<li>Health: <a href="/healthz"><code>/healthz</code></a>, readiness: <a href="/readyz"><code>/readyz</code></a>.</li>
</ul>
<p>The inbox dashboard will appear on this page in a coming release.</p>
</body>
</html>
"#;

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "not ready: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "the database does not answer" })),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    if let Ok(pending) = state.store.inbox_pending_count().await {
        metrics::gauge!("wagate_inbox_pending").set(pending as f64);
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
