//! Request rate limits in front of the API and the public webhooks: every `/api/v1` request
//! counts against its caller's budget, every webhook POST against its connection's.
//!
//! - API: per API key (its id), per signed-in user for the dashboard's cookie calls, and per
//!   client address for requests without valid credentials (`WAGATE_API_RATE_LIMIT`).
//! - `POST /webhooks/whatsapp/{key}`: per connection key (`WAGATE_WEBHOOK_RATE_LIMIT`). Meta
//!   sends from many addresses, so only the key tells one connection's traffic from another's.
//! - `POST /webhooks/whatsapp` (the platform app's one URL): per client address, with the same
//!   limit. One shared key would let anyone who floods that public, well-known URL with junk
//!   hold back every tenant's genuine webhooks; per address, a flood only spends its own budget,
//!   and Meta's traffic spreads over its many senders.
//!
//! Budgets live in the shared [`crate::limits::RateLimiter`], so with `WAGATE_REDIS_URL` every
//! process draws on the same ones. Each limited response carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset`; a 429 also `Retry-After` and the contract's
//! error `rate_limited`. The client address is the TCP peer's: behind a proxy, every request
//! counts as the proxy's address.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::state::AppState;
use crate::limits::{Allowance, Exhausted, PerMinute};

pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RESET_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// What a limited response says about its caller's budget.
///
/// `X-RateLimit-Reset` is in delta seconds, as the IETF RateLimit header draft has it (not the
/// epoch seconds GitHub sends): how many seconds, rounded up, until the whole budget is back.
/// `Retry-After` (on a 429 only) is how many seconds, rounded up and at least 1, until the next
/// request will be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitHeaders {
    /// Requests a minute.
    pub limit: u32,
    pub remaining: u32,
    pub reset: Duration,
    /// Only when refused.
    pub retry_after: Option<Duration>,
}

impl LimitHeaders {
    pub fn allowed(limit: PerMinute, allowance: Allowance) -> Self {
        Self {
            limit: limit.get(),
            remaining: allowance.remaining,
            reset: allowance.full_in,
            retry_after: None,
        }
    }

    pub fn refused(limit: PerMinute, exhausted: Exhausted) -> Self {
        Self {
            limit: limit.get(),
            remaining: 0,
            reset: exhausted.full_in,
            retry_after: Some(exhausted.retry_after),
        }
    }

    /// The tighter of two budgets a request counted against (sign-in: account and address).
    pub fn tightest(self, other: Self) -> Self {
        Self {
            limit: self.limit.min(other.limit),
            remaining: self.remaining.min(other.remaining),
            reset: self.reset.max(other.reset),
            retry_after: self.retry_after.max(other.retry_after),
        }
    }

    /// Whole seconds to wait before retrying; only a refusal has one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|wait| whole_seconds(wait).max(1))
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT_HEADER, HeaderValue::from(self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
        headers.insert(RESET_HEADER, HeaderValue::from(whole_seconds(self.reset)));
        if let Some(seconds) = self.retry_after_secs() {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

/// Seconds rounded up, so a client that waits that long is never early.
fn whole_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

/// The client's address as the listener saw it.
pub fn client_address(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |peer| peer.0.ip().to_string())
}

/// Which limit a request falls under, if any.
enum Scope {
    Api,
    ConnectionWebhook,
    PlatformWebhook,
}

fn scope(method: &Method, path: &str) -> Option<Scope> {
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        return Some(Scope::Api);
    }
    if *method != Method::POST {
        return None;
    }
    match path.strip_prefix("/webhooks/whatsapp") {
        Some("" | "/") => Some(Scope::PlatformWebhook),
        Some(rest) if rest.starts_with('/') => Some(Scope::ConnectionWebhook),
        _ => None,
    }
}

/// The middleware: counts the request against its budget, answers 429 when it is spent, and
/// puts the budget's headers on whatever the handler answers.
pub async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.settings.rate_limits;
    let (limit, key, request) = match scope(request.method(), request.uri().path()) {
        Some(Scope::Api) => {
            let Some(limit) = limits.api else {
                return next.run(request).await;
            };
            let (mut parts, body) = request.into_parts();
            let caller = match Caller::identify(&parts, &state).await {
                Ok(caller) => caller,
                Err(error) => return error.into_response(),
            };
            let key = match &caller {
                Caller::ApiKey { api_key_id, .. } => format!("api:key:{api_key_id}"),
                Caller::User { user_id, .. } => format!("api:user:{user_id}"),
                Caller::Anonymous => format!("api:address:{}", client_address(&parts.extensions)),
            };
            parts.extensions.insert(caller);
            (limit, key, Request::from_parts(parts, body))
        }
        Some(Scope::ConnectionWebhook) => {
            let Some(limit) = limits.webhook else {
                return next.run(request).await;
            };
            let connection_key = request
                .uri()
                .path()
                .trim_start_matches("/webhooks/whatsapp/");
            (limit, webhook_key(connection_key), request)
        }
        Some(Scope::PlatformWebhook) => {
            let Some(limit) = limits.webhook else {
                return next.run(request).await;
            };
            let key = format!("webhook:address:{}", client_address(request.extensions()));
            (limit, key, request)
        }
        None => return next.run(request).await,
    };
    match state.limiter.try_acquire_metered(&key, limit.quota()).await {
        Ok(allowance) => {
            let mut response = next.run(request).await;
            LimitHeaders::allowed(limit, allowance).apply(response.headers_mut());
            response
        }
        Err(exhausted) => {
            let scope = if key.starts_with("api:") {
                "api"
            } else {
                "webhook"
            };
            metrics::counter!("wagate_requests_rate_limited_total", "scope" => scope).increment(1);
            too_many_requests(LimitHeaders::refused(limit, exhausted))
        }
    }
}

/// The 429: the contract's error JSON, with every rate-limit header.
pub fn too_many_requests(headers: LimitHeaders) -> Response {
    let mut response = ApiError::RateLimited {
        retry_after_secs: headers.retry_after_secs().unwrap_or(1),
        limit: headers.limit,
    }
    .into_response();
    headers.apply(response.headers_mut());
    response
}

/// A connection's budget key. The connection key is hashed: it is what makes the webhook URL
/// hard to guess, and has no business being readable in Redis.
fn webhook_key(connection_key: &str) -> String {
    let digest = Sha256::digest(connection_key.as_bytes());
    format!("webhook:connection:{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_and_webhook_posts_are_limited() {
        let get = Method::GET;
        let post = Method::POST;
        assert!(matches!(scope(&get, "/api/v1/messages"), Some(Scope::Api)));
        assert!(matches!(scope(&post, "/api/v1/media"), Some(Scope::Api)));
        assert!(matches!(scope(&get, "/api/v1"), Some(Scope::Api)));
        assert!(scope(&get, "/api/v10").is_none());
        assert!(matches!(
            scope(&post, "/webhooks/whatsapp/abc"),
            Some(Scope::ConnectionWebhook)
        ));
        assert!(matches!(
            scope(&post, "/webhooks/whatsapp"),
            Some(Scope::PlatformWebhook)
        ));
        assert!(
            scope(&get, "/webhooks/whatsapp/abc").is_none(),
            "verification is not limited"
        );
        assert!(scope(&post, "/webhooks/whatsappx").is_none());
        for path in ["/healthz", "/readyz", "/metrics", "/login", "/app"] {
            assert!(scope(&get, path).is_none(), "{path}");
        }
    }

    #[test]
    fn seconds_are_rounded_up_and_a_retry_is_at_least_one_second_away() {
        assert_eq!(whole_seconds(Duration::from_millis(600)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
        assert_eq!(whole_seconds(Duration::from_micros(59_000_001)), 60);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        let refused = LimitHeaders::refused(
            PerMinute::new(100),
            Exhausted {
                retry_after: Duration::ZERO,
                full_in: Duration::from_secs(60),
            },
        );
        assert_eq!(refused.retry_after_secs(), Some(1));
        let mut headers = HeaderMap::new();
        refused.apply(&mut headers);
        assert_eq!(headers[LIMIT_HEADER], "100");
        assert_eq!(headers[REMAINING_HEADER], "0");
        assert_eq!(headers[RESET_HEADER], "60");
        assert_eq!(headers[RETRY_AFTER], "1");
    }

    #[test]
    fn an_allowed_request_has_no_retry_after() {
        let allowed = LimitHeaders::allowed(
            PerMinute::new(10),
            Allowance {
                remaining: 9,
                full_in: Duration::from_secs(6),
            },
        );
        let mut headers = HeaderMap::new();
        allowed.apply(&mut headers);
        assert_eq!(headers[REMAINING_HEADER], "9");
        assert_eq!(headers[RESET_HEADER], "6");
        assert!(!headers.contains_key(RETRY_AFTER));
    }

    #[test]
    fn the_tightest_of_two_budgets_is_reported() {
        let minute = PerMinute::new(10);
        let account = LimitHeaders::allowed(
            minute,
            Allowance {
                remaining: 3,
                full_in: Duration::from_secs(42),
            },
        );
        let address = LimitHeaders::allowed(
            minute,
            Allowance {
                remaining: 8,
                full_in: Duration::from_secs(12),
            },
        );
        let both = account.tightest(address);
        assert_eq!((both.remaining, both.reset), (3, Duration::from_secs(42)));
    }

    #[test]
    fn webhook_keys_do_not_repeat_the_connection_key() {
        let key = webhook_key("s3cr3t-connection-key-abcdefghij");
        assert!(key.starts_with("webhook:connection:"));
        assert!(!key.contains("s3cr3t"));
        assert_eq!(key, webhook_key("s3cr3t-connection-key-abcdefghij"));
        assert_ne!(key, webhook_key("another-connection-key-abcdefghij"));
    }
}
