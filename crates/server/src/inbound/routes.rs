//! The public webhook endpoints Meta calls: verification (GET) and events (POST), per connection
//! and for a platform-owned app.
//!
//! A POST is checked in this order, and nothing is stored unless every check passes: body size
//! (413), connection key (404), signature over the raw bytes (401). The 200 goes out only after the
//! body is durably in the inbox; if it cannot be stored the answer is 503 so that Meta retries.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body_util::{BodyExt, Limited};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::schema::ErrorBody;
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::store::inbox::InboxAppend;
use crate::vault::SecretSlot;

/// Meta batches at most 1000 updates per POST; 3 MiB holds that with room to spare.
pub const MAX_WEBHOOK_BODY: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read and thrown away so the sender gets its 413 instead of a
/// broken connection; anything larger is cut off.
const DISCARD_LIMIT: usize = 16 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_platform, receive_platform))
        .routes(routes!(verify_connection, receive_connection))
        // The limit is enforced below with a 413 of our own, before any byte is kept.
        .layer(DefaultBodyLimit::disable())
}

/// Why a webhook was refused; each maps to the status Meta sees.
#[derive(Debug)]
enum Refusal {
    TooLarge,
    UnknownKey,
    BadSignature(cloudapi::signature::SignatureError),
    Unavailable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, message, outcome) = match self {
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("webhook bodies are limited to {MAX_WEBHOOK_BODY} bytes"),
                "too_large",
            ),
            Self::UnknownKey => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no connection has this webhook URL".to_owned(),
                "unknown_key",
            ),
            Self::BadSignature(reason) => (
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                reason.to_string(),
                "bad_signature",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the webhook could not be stored; retry later".to_owned(),
                "unavailable",
            ),
        };
        metrics::counter!("wagate_webhooks_refused_total", "reason" => outcome).increment(1);
        metrics::counter!("wagate_webhooks_total", "outcome" => outcome).increment(1);
        let body = serde_json::json!({"error": {"code": code, "message": message, "details": {}}});
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

/// Meta delivers a connection's events. Checked in this order, nothing stored unless all pass:
/// body size (413), connection key (404), signature (401); the 200 goes out once the body is
/// durably stored, a 503 asks Meta to retry.
#[utoipa::path(
    post,
    path = "/webhooks/whatsapp/{connection_key}",
    tag = "webhooks",
    security(()),
    params(
        ("connection_key" = String, Path, description = "The connection's key, from its `webhook_url`"),
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex>`: HMAC-SHA256 of the raw body with the connection's app secret"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "Meta's webhook body, `{\"object\": \"whatsapp_business_account\", \"entry\": [...]}`, at most 3 MiB"),
    responses(
        (status = 200, description = "Stored; it will be processed"),
        (status = 401, description = "The signature is missing or does not match", body = ErrorBody),
        (status = 404, description = "No connection has this webhook URL", body = ErrorBody),
        (status = 413, description = "The body is larger than 3 MiB", body = ErrorBody),
        (status = 503, description = "The body could not be stored; retry later", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait before retrying"))),
    )
)]
#[tracing::instrument(skip_all, fields(connection_key = %short(&connection_key)))]
async fn receive_connection(
    State(state): State<AppState>,
    Path(connection_key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Refusal> {
    if declared_too_large(&headers) {
        return Err(discard(body).await);
    }
    if !plausible_key(&connection_key) {
        return Err(Refusal::UnknownKey);
    }
    let connection = match state
        .webhook_keys
        .resolve(&state.store, &state.vault, &connection_key)
        .await
    {
        Ok(Some(connection)) => connection,
        Ok(None) => return Err(Refusal::UnknownKey),
        Err(error) => {
            tracing::warn!(error = %error, "connection lookup failed; answering 503");
            return Err(Refusal::Unavailable);
        }
    };
    let body = read_limited(body).await?;
    check_signature(&connection.app_secret, &body, &headers)?;
    store(&state, Some(connection.connection_id), body).await
}

/// Meta delivers the events of the platform-owned app, signed with its app secret. Checked and
/// stored as per connection; 404 when this deployment has no platform app.
#[utoipa::path(
    post,
    path = "/webhooks/whatsapp",
    tag = "webhooks",
    security(()),
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex>`: HMAC-SHA256 of the raw body with the platform app's secret"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "Meta's webhook body, `{\"object\": \"whatsapp_business_account\", \"entry\": [...]}`, at most 3 MiB"),
    responses(
        (status = 200, description = "Stored; it will be processed"),
        (status = 401, description = "The signature is missing or does not match", body = ErrorBody),
        (status = 404, description = "No platform app is configured", body = ErrorBody),
        (status = 413, description = "The body is larger than 3 MiB", body = ErrorBody),
        (status = 503, description = "The body could not be stored; retry later", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait before retrying"))),
    )
)]
#[tracing::instrument(skip_all)]
async fn receive_platform(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Refusal> {
    if declared_too_large(&headers) {
        return Err(discard(body).await);
    }
    let Some(secret) = state.settings.meta_app_secret.clone() else {
        return Err(Refusal::UnknownKey);
    };
    let body = read_limited(body).await?;
    check_signature(&secret, &body, &headers)?;
    store(&state, None, body).await
}

async fn store(
    state: &AppState,
    connection_id: Option<String>,
    body: Bytes,
) -> Result<StatusCode, Refusal> {
    let item = InboxAppend {
        connection_id,
        body,
        received_at: now_ms(),
    };
    let started = std::time::Instant::now();
    let stored = state.ingest.append(item).await;
    // Until the body is durable and Meta may have its 200 (the commit it shares with others).
    metrics::histogram!("wagate_webhook_ingest_seconds").record(started.elapsed().as_secs_f64());
    match stored {
        Ok(()) => {
            metrics::counter!("wagate_webhooks_accepted_total").increment(1);
            metrics::counter!("wagate_webhooks_total", "outcome" => "accepted").increment(1);
            Ok(StatusCode::OK)
        }
        Err(error) => {
            tracing::warn!(error = %error, "webhook not stored; answering 503");
            Err(Refusal::Unavailable)
        }
    }
}

fn declared_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > MAX_WEBHOOK_BODY as u64)
}

/// Reads an oversized body to its end (up to [`DISCARD_LIMIT`]) without keeping it.
async fn discard(body: Body) -> Refusal {
    let _ = Limited::new(body, DISCARD_LIMIT).collect().await;
    Refusal::TooLarge
}

async fn read_limited(body: Body) -> Result<Bytes, Refusal> {
    let mut stream = body.into_data_stream();
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        // The client went away mid-body; nothing was stored and Meta will retry.
        let chunk = chunk.map_err(|_| Refusal::Unavailable)?;
        seen += chunk.len();
        if seen > DISCARD_LIMIT {
            return Err(Refusal::TooLarge);
        }
        if seen <= MAX_WEBHOOK_BODY {
            collected.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_WEBHOOK_BODY {
        return Err(Refusal::TooLarge);
    }
    Ok(collected.freeze())
}

fn check_signature(secret: &SecretString, body: &[u8], headers: &HeaderMap) -> Result<(), Refusal> {
    let header = headers
        .get(cloudapi::signature::SIGNATURE_HEADER)
        .map(|v| v.as_bytes());
    cloudapi::signature::verify(secret.expose_secret().as_bytes(), body, header)
        .map_err(Refusal::BadSignature)
}

/// Keys are 43 base64url characters; anything else cannot be one and costs no lookup.
fn plausible_key(key: &str) -> bool {
    (20..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Enough of a key to tell requests apart in logs without writing the URL down.
fn short(key: &str) -> &str {
    key.get(..6).unwrap_or("")
}

/// Meta's verification of a connection's callback URL: answers `hub.challenge` when
/// `hub.mode` is `subscribe` and `hub.verify_token` is the connection's verify token.
#[utoipa::path(
    get,
    path = "/webhooks/whatsapp/{connection_key}",
    tag = "webhooks",
    security(()),
    params(
        ("connection_key" = String, Path, description = "The connection's key, from its `webhook_url`"),
        ("hub.mode" = String, Query, description = "Must be `subscribe`"),
        ("hub.verify_token" = String, Query, description = "The connection's verify token"),
        ("hub.challenge" = String, Query, description = "Sent back as the body when verification succeeds"),
    ),
    responses(
        (status = 200, description = "Verified: the body is `hub.challenge`", body = String, content_type = "text/plain"),
        (status = 403, description = "Verification failed (or no connection has this URL)", body = String, content_type = "text/plain"),
        (status = 503, description = "The connection could not be looked up; retry later"),
    )
)]
async fn verify_connection(
    State(state): State<AppState>,
    Path(connection_key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !plausible_key(&connection_key) {
        return forbidden();
    }
    let connection = match state.store.connection_by_key(&connection_key).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return forbidden(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let expected = connection.verify_token.as_deref().and_then(|sealed| {
        state
            .vault
            .open(
                SecretSlot::new("connections", "verify_token", &connection.id),
                sealed,
            )
            .ok()
    });
    answer_challenge(expected.as_ref(), &query)
}

/// Meta's verification of the platform-owned app's callback URL: answers `hub.challenge` when
/// `hub.mode` is `subscribe` and `hub.verify_token` is the platform's verify token.
#[utoipa::path(
    get,
    path = "/webhooks/whatsapp",
    tag = "webhooks",
    security(()),
    params(
        ("hub.mode" = String, Query, description = "Must be `subscribe`"),
        ("hub.verify_token" = String, Query, description = "The platform app's verify token"),
        ("hub.challenge" = String, Query, description = "Sent back as the body when verification succeeds"),
    ),
    responses(
        (status = 200, description = "Verified: the body is `hub.challenge`", body = String, content_type = "text/plain"),
        (status = 403, description = "Verification failed (or no platform app is configured)", body = String, content_type = "text/plain"),
    )
)]
async fn verify_platform(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    answer_challenge(state.settings.meta_verify_token.as_ref(), &query)
}

fn answer_challenge(expected: Option<&SecretString>, query: &HashMap<String, String>) -> Response {
    let (Some(expected), Some(mode), Some(token), Some(challenge)) = (
        expected,
        query.get("hub.mode"),
        query.get("hub.verify_token"),
        query.get("hub.challenge"),
    ) else {
        return forbidden();
    };
    let matches: bool = expected
        .expose_secret()
        .as_bytes()
        .ct_eq(token.as_bytes())
        .into();
    if mode != "subscribe" || !matches {
        return forbidden();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        challenge.clone(),
    )
        .into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "verification failed: hub.mode must be subscribe and hub.verify_token must match",
    )
        .into_response()
}
