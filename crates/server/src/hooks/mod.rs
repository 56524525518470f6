//! Outbound webhooks: a tenant's own systems are told of its events by signed POSTs to the
//! endpoints it registered, retried with backoff, delivered in order per conversation, logged.
//!
//! Events reach this module through the event bus (`EventTap`): [`Hooks::offer`] hands each
//! event of a public kind to the recorder ([`recorder`]), which stores one delivery row per
//! subscribed endpoint; the delivery worker ([`deliver`]) claims rows and POSTs them. An event is
//! recorded after the change it describes was committed, so a crash between the two loses it.

pub mod address;
pub mod deliver;
pub mod endpoints;
pub mod recorder;
pub mod sign;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use crate::realtime::{Event, EventTap, kind};
use crate::store::webhook_endpoints::Subscription;

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 5] = [
    kind::MESSAGE_CREATED,
    kind::MESSAGE_STATUS,
    kind::CONVERSATION_UPDATED,
    kind::TEMPLATE_UPDATED,
    kind::CONNECTION_UPDATED,
];

/// Events waiting for the recorder; past this the newest are dropped (and counted) rather than
/// holding up the publishers.
const QUEUE_CAPACITY: usize = 10_000;

/// How long a tenant's endpoint list is trusted; changes made by another process show after this.
const DIRECTORY_TTL: Duration = Duration::from_secs(5);

/// The process's handle on outbound webhooks: the recorder's queue, the cache of who subscribes
/// to what, and the worker's wakeup. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    queue: mpsc::Sender<Arc<Event>>,
    /// Taken once by the recorder task.
    receiver: Mutex<Option<mpsc::Receiver<Arc<Event>>>>,
    /// Whether any tenant has an enabled endpoint; when none has, events are not even queued.
    active: AtomicBool,
    /// Bumped by every local change of endpoints, so a lookup that raced one is not cached.
    generation: AtomicU64,
    directory: Mutex<HashMap<String, Cached>>,
    /// Wakes the delivery worker when deliveries were stored or a queue moved on.
    wakeup: Notify,
}

struct Cached {
    at: Instant,
    subscriptions: Arc<Vec<Subscription>>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self::new()
    }
}

impl Hooks {
    pub fn new() -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                queue,
                receiver: Mutex::new(Some(receiver)),
                // Until the recorder has looked, assume endpoints exist: building an event that
                // nobody wants costs less than missing one.
                active: AtomicBool::new(true),
                generation: AtomicU64::new(0),
                directory: Mutex::new(HashMap::new()),
                wakeup: Notify::new(),
            }),
        }
    }

    /// This handle as the event bus's tap.
    pub fn tap(&self) -> Arc<dyn EventTap> {
        Arc::new(self.clone())
    }

    /// The tenant's endpoints changed in this process: forget what was cached.
    pub fn endpoints_changed(&self, tenant_id: &str) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.active.store(true, Ordering::SeqCst);
        if let Ok(mut directory) = self.inner.directory.lock() {
            directory.remove(tenant_id);
        }
    }

    pub(crate) fn take_receiver(&self) -> Option<mpsc::Receiver<Arc<Event>>> {
        self.inner.receiver.lock().ok().and_then(|mut r| r.take())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Records whether endpoints exist, unless endpoints changed since `generation` was read.
    pub(crate) fn set_active(&self, active: bool, generation: u64) {
        if self.generation() == generation {
            self.inner.active.store(active, Ordering::SeqCst);
        }
    }

    pub(crate) fn cached(&self, tenant_id: &str) -> Option<Arc<Vec<Subscription>>> {
        let directory = self.inner.directory.lock().ok()?;
        directory
            .get(tenant_id)
            .filter(|c| c.at.elapsed() < DIRECTORY_TTL)
            .map(|c| Arc::clone(&c.subscriptions))
    }

    pub(crate) fn cache(
        &self,
        tenant_id: &str,
        subscriptions: Arc<Vec<Subscription>>,
        generation: u64,
    ) {
        if self.generation() != generation {
            return;
        }
        if let Ok(mut directory) = self.inner.directory.lock() {
            // Bounded: entries are only ever as many as tenants with recent events, and old
            // ones are dropped when the map grows large.
            if directory.len() > 50_000 {
                directory.retain(|_, c| c.at.elapsed() < DIRECTORY_TTL);
            }
            directory.insert(
                tenant_id.to_owned(),
                Cached {
                    at: Instant::now(),
                    subscriptions,
                },
            );
        }
    }

    pub(crate) fn wake_worker(&self) {
        self.inner.wakeup.notify_one();
    }

    pub(crate) async fn worker_woken(&self) {
        self.inner.wakeup.notified().await;
    }
}

impl EventTap for Hooks {
    fn offer(&self, event: &Arc<Event>) {
        if !EVENT_TYPES.contains(&event.kind) || !self.wants_events() {
            return;
        }
        if self.inner.queue.try_send(Arc::clone(event)).is_err() {
            metrics::counter!("wagate_hooks_events_dropped_total").increment(1);
            tracing::warn!(tenant_id = %event.tenant_id, kind = event.kind,
                "the webhook recorder is behind; an event was not recorded for the tenant's endpoints");
        }
    }

    fn wants_events(&self) -> bool {
        self.inner.active.load(Ordering::Relaxed)
    }
}

/// The queue within an endpoint an event belongs to: its conversation, or `""` for events of no
/// conversation (templates, connections), which are then ordered among themselves.
pub fn ordering_key(event: &Event) -> String {
    let field = match event.kind {
        kind::CONVERSATION_UPDATED => "id",
        kind::MESSAGE_CREATED | kind::MESSAGE_STATUS => "conversation_id",
        _ => return String::new(),
    };
    event
        .data
        .get(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &'static str, data: serde_json::Value) -> Event {
        Event {
            tenant_id: "t".into(),
            kind,
            data,
        }
    }

    #[test]
    fn events_are_queued_by_their_conversation() {
        assert_eq!(
            ordering_key(&event(
                kind::MESSAGE_CREATED,
                json!({"id": "m", "conversation_id": "c1"})
            )),
            "c1"
        );
        assert_eq!(
            ordering_key(&event(kind::CONVERSATION_UPDATED, json!({"id": "c2"}))),
            "c2"
        );
        assert_eq!(
            ordering_key(&event(kind::TEMPLATE_UPDATED, json!({"id": "tpl"}))),
            ""
        );
    }

    #[test]
    fn only_public_kinds_are_queued() {
        let hooks = Hooks::new();
        let mut receiver = hooks.take_receiver().unwrap();
        hooks.offer(&Arc::new(event(kind::UNREAD_CHANGED, json!({}))));
        hooks.offer(&Arc::new(event(kind::MESSAGE_CREATED, json!({}))));
        assert_eq!(receiver.try_recv().unwrap().kind, kind::MESSAGE_CREATED);
        assert!(receiver.try_recv().is_err());
    }
}
