//! The background job runner: claims due jobs from the job table with a lease and runs each with
//! the handler for its kind. Success completes the job; a retryable failure puts it back with
//! exponential backoff and jitter; a permanent one (or the last attempt) retires it as dead with
//! its error. Inbound and the API only enqueue; they never run jobs themselves.

pub mod read_receipt;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::store::jobs::Job;

/// How a job ended.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// Worth trying again later.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed; retire it.
    #[error("{0}")]
    Permanent(String),
    /// Not a failure: the job must wait (for a rate budget it has reserved) and runs again after
    /// `wait`, without the attempt counting against its limit; `payload` replaces the job's payload
    /// when given (to remember what was reserved).
    #[error("deferred for {wait:?}")]
    Defer {
        wait: Duration,
        payload: Option<String>,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct RunnerConfig {
    /// Jobs running at once in this process.
    pub concurrency: usize,
    /// How long a claim lasts; a worker that dies lets it lapse and another takes the job.
    pub lease: Duration,
    pub idle_poll: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            lease: Duration::from_secs(120),
            idle_poll: Duration::from_millis(500),
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
        }
    }
}

pub async fn run(state: AppState, config: RunnerConfig, shutdown: CancellationToken) {
    let worker = format!("worker-{}", crate::ids::random_token(6));
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let free = slots.available_permits() as i64;
        let claimed = if free == 0 {
            Ok(Vec::new())
        } else {
            state
                .store
                .claim_due_jobs(&worker, free, config.lease.as_millis() as i64, now_ms())
                .await
        };
        match claimed {
            Ok(jobs) if !jobs.is_empty() => {
                for job in jobs {
                    let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                        return;
                    };
                    let state = state.clone();
                    let worker = worker.clone();
                    tokio::spawn(async move {
                        run_one(&state, &worker, job, config).await;
                        drop(permit);
                    });
                }
            }
            Ok(_) => {
                // Sleep until the next job is due (a deferred send's reserved slot), at most
                // `idle_poll`, so work that was put off runs on time.
                let pause = match state.store.next_job_due().await {
                    Ok(Some(due)) => {
                        Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0))
                            .min(config.idle_poll)
                    }
                    _ => config.idle_poll,
                };
                tokio::select! {
                    () = state.jobs_wakeup.notified() => {}
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "claiming jobs failed; pausing");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    // Let running jobs finish (their leases cover a crash, but a clean stop should not lean on that).
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        slots.acquire_many(config.concurrency.max(1) as u32),
    )
    .await;
}

#[tracing::instrument(skip_all, fields(job_id = %job.id, kind = %job.kind, attempt = job.attempts))]
async fn run_one(state: &AppState, worker: &str, job: Job, config: RunnerConfig) {
    let outcome = match job.kind.as_str() {
        read_receipt::KIND => read_receipt::run(state, &job).await,
        crate::outbound::enqueue::SEND_JOB => crate::outbound::sender::run_send(state, &job).await,
        crate::outbound::sender::RECONCILE_JOB => {
            crate::outbound::sender::run_reconcile(state, &job).await
        }
        crate::media::fetch::FETCH_JOB => crate::media::fetch::run_fetch(state, &job).await,
        crate::templates::sync::SYNC_JOB => crate::templates::sync::run_sync(state, &job).await,
        crate::assistant::reply::REPLY_JOB => crate::assistant::reply::run_reply(state, &job).await,
        crate::automation::scheduler::STEP_JOB => {
            crate::automation::scheduler::run_step(state, &job).await
        }
        crate::automation::inbound::INBOUND_JOB => {
            crate::automation::inbound::run_inbound(state, &job).await
        }
        other => Err(JobFailure::Permanent(format!(
            "no handler for job kind {other}"
        ))),
    };
    let now = now_ms();
    let result = match outcome {
        Ok(()) => {
            metrics::counter!("wagate_jobs_completed_total", "kind" => job.kind.clone())
                .increment(1);
            state.store.complete_job(&job.id, worker, now).await
        }
        Err(JobFailure::Defer { wait, payload }) => {
            let run_at = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            state
                .store
                .defer_job(&job.id, worker, run_at, payload.as_deref(), now)
                .await
        }
        Err(JobFailure::Retry(error)) if job.attempts < job.max_attempts => {
            let delay = backoff_with_jitter(job.attempts, config);
            tracing::warn!(error = %error, retry_in_ms = delay, "job failed; will retry");
            state
                .store
                .reschedule_job(&job.id, worker, &error, Some(now + delay), now)
                .await
        }
        Err(failure) => {
            tracing::error!(error = %failure, "job failed for good");
            metrics::counter!("wagate_jobs_dead_total", "kind" => job.kind.clone()).increment(1);
            state
                .store
                .reschedule_job(&job.id, worker, &failure.to_string(), None, now)
                .await
        }
    };
    if let Err(error) = result {
        // The lease will lapse and the job will be claimed again: at least once, never lost.
        tracing::warn!(error = %error, "could not record the job's outcome");
    }
}

/// Exponential backoff with full jitter, so many failed jobs do not all come back at once.
fn backoff_with_jitter(attempts: i64, config: RunnerConfig) -> i64 {
    let delay = jittered_backoff(attempts, config.first_backoff, config.max_backoff);
    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)
}

/// The wait before attempt `attempts + 1`: `first` doubled per attempt up to `max`, drawn from
/// its upper half, so many failures do not all come back at once.
pub fn jittered_backoff(attempts: i64, first: Duration, max: Duration) -> Duration {
    let first = first.as_millis() as u64;
    let max = max.as_millis() as u64;
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let ceiling = first.saturating_mul(1u64 << exponent).min(max).max(1);
    Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        let config = RunnerConfig::default();
        for attempts in 1..30 {
            let delay = backoff_with_jitter(attempts, config);
            assert!(delay <= config.max_backoff.as_millis() as i64);
            assert!(delay >= 1000);
        }
        assert!(backoff_with_jitter(1, config) <= 2000);
    }
}
