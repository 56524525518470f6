//! The delivery worker: claims due deliveries (leased, so several processes can share the
//! table), POSTs each signed to its endpoint, logs the attempt and schedules the retry.
//!
//! 2xx delivers. Network errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff
//! and jitter (429 waits for its `Retry-After` when it gives one); any other answer, redirects
//! included (they are not followed), fails the delivery at once. A failed delivery no longer
//! holds back its conversation's later events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Hooks;
use super::sign::signature;
use crate::clock::now_ms;
use crate::config::HookSettings;
use crate::store::Store;
use crate::store::webhook_endpoints::{AttemptOutcome, ClaimedDelivery, NextStep, Recorded};
use crate::vault::{SecretSlot, Vault};

pub const SIGNATURE_HEADER: &str = "x-wagate-signature";
pub const EVENT_ID_HEADER: &str = "x-wagate-event";
pub const EVENT_TYPE_HEADER: &str = "x-wagate-event-type";
pub const DELIVERY_HEADER: &str = "x-wagate-delivery";
pub const TIMESTAMP_HEADER: &str = "x-wagate-timestamp";

/// Deliveries in flight at once in this process.
const CONCURRENCY: usize = 32;
/// How long a claim lasts: well past the request timeout, so only a dead worker loses one.
const LEASE: Duration = Duration::from_secs(120);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What one attempt came to, before it is turned into the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Delivered(u16),
    Retry {
        status: Option<u16>,
        error: String,
        /// What the receiver asked for (429 `Retry-After`).
        after: Option<Duration>,
    },
    Final {
        status: Option<u16>,
        error: String,
    },
}

struct Worker {
    store: Store,
    vault: Arc<Vault>,
    hooks: Hooks,
    settings: HookSettings,
    client: reqwest::Client,
    name: String,
}

pub fn client(settings: &HookSettings) -> Result<reqwest::Client, DeliverError> {
    let mut builder = reqwest::Client::builder();
    if let Some(resolver) = super::address::resolver(settings.allow_private_urls) {
        builder = builder.dns_resolver(resolver);
    }
    Ok(builder
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        // Tenants' endpoints are called directly, never through a proxy from the environment.
        .no_proxy()
        .user_agent(concat!("wagate-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

pub async fn run(
    store: Store,
    vault: Arc<Vault>,
    hooks: Hooks,
    settings: HookSettings,
    shutdown: CancellationToken,
) {
    let client = match client(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "webhook deliveries cannot start");
            return;
        }
    };
    let worker = Arc::new(Worker {
        store,
        vault,
        hooks,
        settings,
        client,
        name: format!("hooks-{}", crate::ids::random_token(6)),
    });
    // Retries are due after a backoff, not announced: poll about as often as the shortest one.
    let idle_poll = settings
        .first_backoff
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let free = slots.available_permits() as i64;
        let claimed = if free == 0 {
            Ok(Vec::new())
        } else {
            worker
                .store
                .claim_webhook_deliveries(&worker.name, free, LEASE.as_millis() as i64, now_ms())
                .await
        };
        match claimed {
            Ok(deliveries) if !deliveries.is_empty() => {
                for delivery in deliveries {
                    let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                        return;
                    };
                    let worker = Arc::clone(&worker);
                    tokio::spawn(async move {
                        worker.attempt(delivery).await;
                        drop(permit);
                    });
                }
            }
            Ok(_) => {
                tokio::select! {
                    () = worker.hooks.worker_woken() => {}
                    () = tokio::time::sleep(idle_poll) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "claiming webhook deliveries failed; pausing");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    // Let attempts in flight finish (they are bounded by the request timeout).
    let _ = tokio::time::timeout(
        worker.settings.timeout + Duration::from_secs(1),
        slots.acquire_many(CONCURRENCY as u32),
    )
    .await;
}

impl Worker {
    #[tracing::instrument(skip_all, fields(
        delivery_id = %delivery.id,
        endpoint_id = %delivery.endpoint_id,
        tenant_id = %delivery.tenant_id,
        event_type = %delivery.event_type,
        attempt = delivery.attempts,
    ))]
    async fn attempt(&self, delivery: ClaimedDelivery) {
        let started = Instant::now();
        let answer = self.post(&delivery).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let (status, error, next) = match &answer {
            Answer::Delivered(status) => (Some(*status), None, NextStep::Delivered),
            Answer::Retry {
                status,
                error,
                after,
            } if delivery.round_attempts < self.settings.max_attempts => {
                let wait = after.unwrap_or_else(|| {
                    backoff_with_jitter(delivery.round_attempts, &self.settings)
                });
                let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
                (
                    *status,
                    Some(error.as_str()),
                    NextStep::RetryAt(now + wait_ms),
                )
            }
            Answer::Retry { status, error, .. } | Answer::Final { status, error } => {
                (*status, Some(error.as_str()), NextStep::Failed)
            }
        };
        let outcome_label = match next {
            NextStep::Delivered => "delivered",
            NextStep::RetryAt(_) => "retry",
            NextStep::Failed => "failed",
        };
        metrics::counter!("wagate_hooks_attempts_total", "outcome" => outcome_label).increment(1);
        match next {
            NextStep::Delivered => tracing::debug!(duration_ms, "webhook delivered"),
            NextStep::RetryAt(at) => {
                tracing::info!(status = ?status, error = ?error, retry_in_ms = at - now, "webhook attempt failed; will retry")
            }
            NextStep::Failed => {
                tracing::warn!(status = ?status, error = ?error, "webhook delivery failed for good")
            }
        }
        let disable_reason = format!(
            "every delivery attempt failed for {} seconds or more",
            self.settings.disable_after.as_secs()
        );
        let recorded = self
            .store
            .record_webhook_attempt(
                &delivery,
                &self.name,
                &AttemptOutcome {
                    status_code: status.map(i64::from),
                    error,
                    duration_ms,
                    next,
                },
                i64::try_from(self.settings.disable_after.as_millis()).unwrap_or(i64::MAX / 4),
                &disable_reason,
                now,
            )
            .await;
        match recorded {
            Ok(Recorded::Done) => {}
            Ok(Recorded::EndpointDisabled) => {
                metrics::counter!("wagate_hooks_endpoints_disabled_total").increment(1);
                tracing::warn!(reason = %disable_reason, "webhook endpoint disabled");
                self.hooks.endpoints_changed(&delivery.tenant_id);
            }
            Ok(Recorded::LeaseLost) => {
                tracing::warn!(
                    "the delivery's lease ran out during the attempt; another worker has it"
                )
            }
            // The lease lapses and the delivery is attempted again: at least once, never lost.
            Err(error) => tracing::warn!(error = %error, "could not record the webhook attempt"),
        }
        if next == NextStep::Delivered || next == NextStep::Failed {
            // The conversation's next event may go now.
            self.hooks.wake_worker();
        }
    }

    async fn post(&self, delivery: &ClaimedDelivery) -> Answer {
        let endpoint = match self
            .store
            .webhook_endpoint_by_id(&delivery.endpoint_id)
            .await
        {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => {
                return Answer::Final {
                    status: None,
                    error: "the endpoint was deleted".into(),
                };
            }
            Err(error) => {
                return Answer::Retry {
                    status: None,
                    error: format!("the endpoint could not be read: {error}"),
                    after: None,
                };
            }
        };
        let secret = match self.vault.open(
            SecretSlot::new("webhook_endpoints", "secret", &endpoint.id),
            &endpoint.secret,
        ) {
            Ok(secret) => secret,
            Err(error) => {
                tracing::error!(error = %error, "the endpoint's secret does not open");
                return Answer::Retry {
                    status: None,
                    error: "the signing secret could not be opened".into(),
                    after: None,
                };
            }
        };
        // Registered when private addresses were allowed, or spelled as an address the resolver
        // never sees: checked again at every attempt.
        if !self.settings.allow_private_urls
            && let Some(reason) = url::Url::parse(&endpoint.url)
                .ok()
                .as_ref()
                .and_then(url::Url::host)
                .and_then(|host| super::address::refuse_host(&host))
        {
            return Answer::Final {
                status: None,
                error: format!("the endpoint URL {reason}"),
            };
        }
        let body = delivery.body.as_bytes();
        let request = self
            .client
            .post(&endpoint.url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(secret.expose_secret().as_bytes(), body),
            )
            .header(EVENT_ID_HEADER, &delivery.event_id)
            .header(EVENT_TYPE_HEADER, &delivery.event_type)
            .header(DELIVERY_HEADER, &delivery.id)
            .header(TIMESTAMP_HEADER, (now_ms() / 1000).to_string())
            .body(delivery.body.clone());
        match request.send().await {
            Ok(response) => classify(response.status(), response.headers()),
            Err(error) => Answer::Retry {
                status: None,
                error: describe(&error),
                after: None,
            },
        }
    }
}

fn classify(status: StatusCode, headers: &HeaderMap) -> Answer {
    let code = status.as_u16();
    if status.is_success() {
        return Answer::Delivered(code);
    }
    let error = format!("the endpoint answered {status}");
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Answer::Retry {
            status: Some(code),
            error,
            after: None,
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Answer::Retry {
            status: Some(code),
            error,
            after: retry_after(headers),
        };
    }
    if status.is_redirection() {
        return Answer::Final {
            status: Some(code),
            error: format!("the endpoint answered {status}; redirects are not followed"),
        };
    }
    Answer::Final {
        status: Some(code),
        error,
    }
}

/// `Retry-After`, in seconds or as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match raw.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = time::PrimitiveDateTime::parse(raw, HTTP_DATE)
                .ok()?
                .assume_utc();
            let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64 - now_ms();
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The IMF-fixdate form of an HTTP date, the one senders must use.
const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// A transport error in words, without the URL (which may carry the tenant's own token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the endpoint did not answer in time".into()
    } else if error.is_connect() {
        "could not connect to the endpoint".into()
    } else {
        let mut text = error.to_string();
        if let Some(url) = error.url() {
            text = text.replace(url.as_str(), "the endpoint");
        }
        format!("the request failed: {text}")
    }
}

/// The jobs' backoff, with the delivery settings' first and longest waits.
fn backoff_with_jitter(round_attempts: i64, settings: &HookSettings) -> Duration {
    crate::jobs::jittered_backoff(round_attempts, settings.first_backoff, settings.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_retried_only_when_waiting_can_help() {
        let none = HeaderMap::new();
        assert_eq!(classify(StatusCode::OK, &none), Answer::Delivered(200));
        assert!(matches!(
            classify(StatusCode::NO_CONTENT, &none),
            Answer::Delivered(204)
        ));
        for retried in [500, 502, 503, 408, 429] {
            let status = StatusCode::from_u16(retried).unwrap();
            assert!(
                matches!(classify(status, &none), Answer::Retry { .. }),
                "{retried}"
            );
        }
        for final_ in [400, 401, 403, 404, 410, 422, 301, 302] {
            let status = StatusCode::from_u16(final_).unwrap();
            assert!(
                matches!(classify(status, &none), Answer::Final { .. }),
                "{final_}"
            );
        }
    }

    #[test]
    fn too_many_requests_waits_for_its_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers),
            Answer::Retry {
                status: Some(429),
                error: "the endpoint answered 429 Too Many Requests".into(),
                after: Some(Duration::from_secs(7)),
            }
        );
        // A date in the past means now; one ahead means until then.
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        let in_a_minute = time::OffsetDateTime::now_utc() + time::Duration::seconds(60);
        let formatted = in_a_minute.format(HTTP_DATE).unwrap();
        headers.insert(RETRY_AFTER, formatted.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        let settings = HookSettings::default();
        let first = backoff_with_jitter(1, &settings);
        assert!(first <= settings.first_backoff && first >= settings.first_backoff / 2);
        for attempts in 1..40 {
            assert!(backoff_with_jitter(attempts, &settings) <= settings.max_backoff);
        }
        assert!(backoff_with_jitter(6, &settings) >= Duration::from_secs(160));
    }
}
