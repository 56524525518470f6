//! Ingest-to-queryable lag: while the load runs, a probe sends a webhook of its own every
//! [`PROBE_EVERY`] and times it from the moment it is sent until its message can be read from the
//! store (the rows the API's message list reads). Under an unpaced load this is mostly the
//! backlog the processor works through; under `--rate` below what it applies, the pipeline's own
//! delay (acknowledge, claim, apply, commit).

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{REQUEST_TIMEOUT, WebhookFactory};
use crate::store::{Store, col};

/// How often a probe goes out.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How often the store is asked whether the probe's message is there yet.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// A probe not readable by then counts as lost (the run then fails).
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

#[derive(Default)]
pub(super) struct LagOutcome {
    /// Probes acknowledged with 200; each is one message the run must find stored.
    pub acknowledged: u64,
    /// Acknowledged probes whose message never became readable.
    pub unseen: u64,
    samples_us: Vec<u32>,
}

impl LagOutcome {
    pub fn sorted_us(&self) -> Vec<u32> {
        let mut sorted = self.samples_us.clone();
        sorted.sort_unstable();
        sorted
    }
}

/// Probes one at a time until `until`, each timed until readable.
pub(super) async fn probe_until(
    store: &Store,
    factory: &WebhookFactory,
    connection_id: &str,
    until: Instant,
) -> anyhow::Result<LagOutcome> {
    let client = reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the probe's HTTP client")?;
    let mut outcome = LagOutcome::default();
    let mut n = 0;
    while Instant::now() < until {
        let (webhook, wamid) = factory.probe(n)?;
        n += 1;
        let sent_at = Instant::now();
        let answered = webhook.send(&client).await;
        // A refused or lost probe stores nothing for sure, or may have: either way it is not
        // timed; only acknowledged ones count, and each must then be found.
        if !answered.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
            tokio::time::sleep(PROBE_EVERY).await;
            continue;
        }
        outcome.acknowledged += 1;
        match readable_after(store, connection_id, &wamid, sent_at).await? {
            Some(lag) => outcome
                .samples_us
                .push(u32::try_from(lag.as_micros()).unwrap_or(u32::MAX)),
            None => outcome.unseen += 1,
        }
        if let Some(rest) = PROBE_EVERY.checked_sub(sent_at.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    Ok(outcome)
}

/// How long after `sent_at` the message became readable; `None` if not within [`GIVE_UP_AFTER`].
async fn readable_after(
    store: &Store,
    connection_id: &str,
    wamid: &str,
    sent_at: Instant,
) -> anyhow::Result<Option<Duration>> {
    loop {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM messages WHERE connection_id = $1 AND wamid = $2",
        )
        .bind(connection_id)
        .bind(wamid)
        .fetch_one(store.reader())
        .await
        .context("cannot look for the probe's message")?;
        let found: i64 = col(&row, "n")?;
        if found > 0 {
            return Ok(Some(sent_at.elapsed()));
        }
        if sent_at.elapsed() >= GIVE_UP_AFTER {
            return Ok(None);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
