//! The tenant event bus: what changed (a message arrived, a status moved, unread counts changed),
//! published after the change is committed and fanned out to the tenant's WebSockets.
//!
//! In one process this is a broadcast channel; several processes will share it through Redis.

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
}

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
}

impl EventBus {
    /// `capacity` events are buffered per subscriber; one that falls further behind is told so
    /// and skips ahead rather than holding memory for everyone.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        Self { sender, tap: None }
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
        // No subscriber is not an error: events are for whoever is listening now.
        let _ = self.sender.send(event);
    }

    /// Whether anyone listens; work done only to build events can be skipped when nobody does.
    pub fn has_subscribers(&self) -> bool {
        self.sender.receiver_count() > 0 || self.tap.as_ref().is_some_and(|t| t.wants_events())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}
