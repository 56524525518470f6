//! The delivery worker: takes due deliveries off the queue and POSTs them, signed, at most
//! [`MAX_CONCURRENT_ATTEMPTS`] at a time, so a slow or dead URL holds only its own attempts.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::redirect;
use secrecy::ExposeSecret;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::{AttemptOutcome, DeliveryAttempt};
use crate::config::RetryPolicy;
use crate::error::EmulatorError;
use crate::state::{DeliveryJob, EmulatorState, NextJob};

/// Attempts in flight at once; waiting between retries takes no slot.
pub(crate) const MAX_CONCURRENT_ATTEMPTS: usize = 64;

/// The User-Agent Meta's webhook POSTs carry.
const USER_AGENT: &str = "facebookexternalua";

/// The client all deliveries share, so connections to a receiver are reused as Meta's are.
pub(crate) fn http_client(policy: &RetryPolicy) -> Result<reqwest::Client, EmulatorError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // A redirect is "anything but 200" to Meta; following it would hide a misconfigured URL.
        .redirect(redirect::Policy::none())
        // Receivers are usually on loopback; a proxy from the environment must not get in between.
        .no_proxy()
        .connect_timeout(policy.request_timeout)
        .build()
        .map_err(EmulatorError::HttpClient)
}

/// Runs until `stop` turns true; attempts still in flight then are abandoned, as a process exit would.
pub(crate) async fn run(
    state: EmulatorState,
    client: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_ATTEMPTS));
    let mut attempts = JoinSet::new();
    loop {
        // Finished attempts are reaped here so the set never grows past the number of slots.
        while attempts.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        // The semaphore is never closed, so this only guards against a future change.
        let Ok(slot) = slot else { break };
        let Some(job) = next_job(&state, &mut stop).await else {
            break;
        };
        attempts.spawn(attempt(state.clone(), client.clone(), job, slot));
    }
    attempts.abort_all();
}

/// Waits until a delivery is due, or returns `None` when told to stop.
async fn next_job(state: &EmulatorState, stop: &mut watch::Receiver<bool>) -> Option<DeliveryJob> {
    loop {
        // `notify_one` stores a wakeup when nobody waits, so one sent between `next_job` and
        // `notified` below is not lost.
        let wait_until = match state.next_job(Instant::now()) {
            NextJob::Ready(job) => return Some(job),
            NextJob::At(when) => Some(when),
            NextJob::Idle => None,
        };
        let sleep = async {
            match wait_until {
                Some(when) => tokio::time::sleep_until(when.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = state.worker_wakeup().notified() => {}
            () = sleep => {}
            _ = stop.wait_for(|stopped| *stopped) => return None,
        }
    }
}

#[tracing::instrument(skip_all, fields(delivery_id = %job.id, attempt = job.attempt_number))]
async fn attempt(
    state: EmulatorState,
    client: reqwest::Client,
    job: DeliveryJob,
    slot: OwnedSemaphorePermit,
) {
    let timeout = state.retry_policy().request_timeout;
    let signature = cloudapi::signature::sign(job.app_secret.expose_secret().as_bytes(), &job.body);
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let sent = client
        .post(job.url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(cloudapi::signature::SIGNATURE_HEADER, signature)
        .timeout(timeout)
        .body(job.body.clone())
        .send()
        .await;
    let outcome = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            // Reading the answer to its end lets the connection be reused; its content does not matter.
            let _ = response.bytes().await;
            AttemptOutcome::Http { status }
        }
        Err(error) if error.is_timeout() => AttemptOutcome::TimedOut,
        Err(error) => AttemptOutcome::ConnectionFailed {
            error: error_chain(&error),
        },
    };
    drop(slot);
    let duration = clock.elapsed();
    match &outcome {
        AttemptOutcome::Http { status: 200 } => tracing::debug!(?duration, "webhook delivered"),
        other => tracing::debug!(?duration, outcome = ?other, "webhook attempt failed"),
    }
    state.record_attempt(
        job.id,
        DeliveryAttempt {
            number: job.attempt_number,
            url: job.url.to_string(),
            started_at,
            duration,
            outcome,
        },
    );
}

/// `error: cause: cause`, since reqwest's top-level message hides the useful part ("Connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
