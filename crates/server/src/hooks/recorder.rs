//! The recorder: turns published events into delivery rows, one per enabled endpoint that wants
//! the event's type, stored in batches. It runs in every process that publishes events.
//!
//! The body is built and stored here once, so every attempt (and a re-send) sends the same bytes
//! under the same event id.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Hooks, ordering_key};
use crate::clock::{now_ms, rfc3339};
use crate::realtime::Event;
use crate::store::webhook_endpoints::{NewDelivery, Subscription};
use crate::store::{Store, StoreError};

/// Events stored in one commit at most.
const BATCH: usize = 256;
/// How often the recorder checks whether any endpoint exists at all.
const ACTIVE_REFRESH: Duration = Duration::from_secs(5);
/// Commits tried before a batch is given up (and logged).
const INSERT_TRIES: u32 = 3;

pub async fn run(hooks: Hooks, store: Store, shutdown: CancellationToken) {
    let Some(mut receiver) = hooks.take_receiver() else {
        tracing::error!("the webhook recorder was started twice; this one stops");
        return;
    };
    let mut refresh = tokio::time::interval(ACTIVE_REFRESH);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = receiver.recv() => {
                let Some(event) = received else { break };
                batch.push(event);
                while batch.len() < BATCH {
                    match receiver.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                record(&hooks, &store, std::mem::take(&mut batch)).await;
            }
            _ = refresh.tick() => {
                let generation = hooks.generation();
                if let Ok(active) = store.any_enabled_webhook_endpoint().await {
                    hooks.set_active(active, generation);
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    // What was published before the stop is still recorded.
    receiver.close();
    while let Ok(event) = receiver.try_recv() {
        batch.push(event);
        if batch.len() == BATCH {
            record(&hooks, &store, std::mem::take(&mut batch)).await;
        }
    }
    record(&hooks, &store, batch).await;
}

async fn record(hooks: &Hooks, store: &Store, events: Vec<Arc<Event>>) {
    if events.is_empty() {
        return;
    }
    let now = now_ms();
    let mut rows = Vec::new();
    for event in &events {
        let subscriptions = match subscriptions(hooks, store, &event.tenant_id).await {
            Ok(subscriptions) => subscriptions,
            Err(error) => {
                tracing::error!(error = %error, tenant_id = %event.tenant_id,
                    "cannot read the tenant's webhook endpoints; the event is not recorded");
                metrics::counter!("wagate_hooks_events_dropped_total").increment(1);
                continue;
            }
        };
        let wanted: Vec<&Subscription> = subscriptions
            .iter()
            .filter(|s| s.events.iter().any(|e| e == event.kind))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let event_id = crate::ids::new_id();
        let body = json!({
            "id": event_id,
            "type": event.kind,
            "created_at": rfc3339(now),
            "tenant_id": event.tenant_id,
            "data": event.data,
        })
        .to_string();
        let key = ordering_key(event);
        let seq = next_seq(now);
        for subscription in wanted {
            rows.push(NewDelivery {
                id: crate::ids::new_id(),
                tenant_id: event.tenant_id.clone(),
                endpoint_id: subscription.endpoint_id.clone(),
                event_id: event_id.clone(),
                event_type: event.kind.to_owned(),
                ordering_key: key.clone(),
                seq,
                body: body.clone(),
                now,
            });
        }
    }
    if rows.is_empty() {
        return;
    }
    for attempt in 1..=INSERT_TRIES {
        match store.insert_webhook_deliveries(&rows).await {
            Ok(()) => {
                metrics::counter!("wagate_hooks_deliveries_recorded_total")
                    .increment(rows.len() as u64);
                hooks.wake_worker();
                return;
            }
            Err(error) if attempt < INSERT_TRIES => {
                tracing::warn!(error = %error, "storing webhook deliveries failed; trying again");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(error) => {
                tracing::error!(error = %error, deliveries = rows.len(),
                    "storing webhook deliveries failed; these events are lost for the endpoints");
                metrics::counter!("wagate_hooks_events_dropped_total")
                    .increment(events.len() as u64);
            }
        }
    }
}

async fn subscriptions(
    hooks: &Hooks,
    store: &Store,
    tenant_id: &str,
) -> Result<Arc<Vec<Subscription>>, StoreError> {
    if let Some(cached) = hooks.cached(tenant_id) {
        return Ok(cached);
    }
    let generation = hooks.generation();
    let found = Arc::new(store.webhook_subscriptions(tenant_id).await?);
    hooks.cache(tenant_id, Arc::clone(&found), generation);
    Ok(found)
}

/// Orders events: microseconds of the clock, but never the same or lower twice in this process,
/// so events published in one millisecond keep the order they were published in.
fn next_seq(now_ms: i64) -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let candidate = now_ms.saturating_mul(1000);
    let mut last = LAST.load(Ordering::SeqCst);
    loop {
        let next = candidate.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_only_grow() {
        let a = next_seq(1_000);
        let b = next_seq(1_000);
        let c = next_seq(999);
        assert!(a < b && b < c);
    }
}
