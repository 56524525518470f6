//! The tenant event bus: what changed (a message arrived, a status moved, unread counts changed),
//! published after the change is committed and fanned out to the tenant's WebSockets.
//!
//! In one process this is a broadcast channel; with `WAGATE_REDIS_URL` set, every process also
//! relays its events to the others through Redis pub/sub (`relay`), so a socket on any server
//! sees what any process did.

pub mod relay;
pub mod socket;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// One event as the WebSocket sends it: `{"type": ..., "data": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Only this tenant's sockets receive it.
    #[serde(skip)]
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub data: Value,
}

pub mod kind {
    pub const MESSAGE_CREATED: &str = "message.created";
    pub const MESSAGE_STATUS: &str = "message.status";
    /// A message changed otherwise than by status: its file was fetched, or failed to be.
    pub const MESSAGE_UPDATED: &str = "message.updated";
    pub const CONVERSATION_UPDATED: &str = "conversation.updated";
    pub const UNREAD_CHANGED: &str = "unread.changed";
    pub const CONNECTION_UPDATED: &str = "connection.updated";
    pub const TEMPLATE_UPDATED: &str = "template.updated";
    /// A connection's templates were pulled from Meta again.
    pub const TEMPLATES_SYNCED: &str = "templates.synced";
    /// The socket missed events (it fell behind, or the relay between processes was away).
    pub const EVENTS_LAGGED: &str = "events.lagged";
    /// A CSV import of contacts moved on (rows read, made, merged, refused) or ended.
    pub const CONTACTS_IMPORT: &str = "contacts.import";

    const ALL: [&str; 10] = [
        MESSAGE_CREATED,
        MESSAGE_STATUS,
        MESSAGE_UPDATED,
        CONVERSATION_UPDATED,
        UNREAD_CHANGED,
        CONNECTION_UPDATED,
        TEMPLATE_UPDATED,
        TEMPLATES_SYNCED,
        EVENTS_LAGGED,
        CONTACTS_IMPORT,
    ];

    /// The static name of a kind given by name (an event relayed from another process).
    pub fn known(name: &str) -> Option<&'static str> {
        ALL.into_iter().find(|k| *k == name)
    }
}

/// The `tenant_id` of an event every socket receives (a notice about the stream itself).
pub const EVERY_TENANT: &str = "*";

/// Something besides the WebSockets that wants the published events (the tenants' outbound
/// webhooks). `offer` runs inside `publish`, so it must only hand the event on, never wait.
pub trait EventTap: Send + Sync {
    fn offer(&self, event: &Arc<Event>);
    /// Whether events are wanted at all now; when not (and no socket listens), publishers may
    /// skip building them.
    fn wants_events(&self) -> bool;
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    tap: Option<Arc<dyn EventTap>>,
    /// Other processes, when they share Redis.
    relay: Option<relay::Relay>,
}

impl EventBus {
    /// `capacity` events are buffered per subscriber; one that falls further behind is told so
    /// and skips ahead rather than holding memory for everyone.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        Self {
            sender,
            tap: None,
            relay: None,
        }
    }

    /// The same bus, also relaying events to and from the other processes on `redis_url`;
    /// the relay's tasks end when `stop` is cancelled.
    pub fn with_relay(
        mut self,
        redis_url: &str,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Self, relay::RelayError> {
        self.relay = Some(relay::Relay::start(redis_url, self.sender.clone(), stop)?);
        Ok(self)
    }

    /// The same bus, also handing every event to `tap`.
    pub fn with_tap(mut self, tap: Arc<dyn EventTap>) -> Self {
        self.tap = Some(tap);
        self
    }

    pub fn publish(&self, event: Event) {
        metrics::counter!("wagate_events_published_total", "type" => event.kind).increment(1);
        let event = Arc::new(event);
        if let Some(tap) = &self.tap {
            tap.offer(&event);
        }
        if let Some(relay) = &self.relay {
            relay.offer(&event);
        }
        // No subscriber is not an error: events are for whoever is listening now.
        let _ = self.sender.send(event);
    }

    /// Whether anyone listens; work done only to build events can be skipped when nobody does.
    /// With a relay, sockets of other processes may listen, so the answer is always yes.
    pub fn has_subscribers(&self) -> bool {
        self.relay.is_some()
            || self.sender.receiver_count() > 0
            || self.tap.as_ref().is_some_and(|t| t.wants_events())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}
