//! Fan-out between processes: every event a process publishes is also published on one Redis
//! pub/sub channel, and every process hands the events of the others to its own WebSockets.
//!
//! A webhook applied by a worker process, or a send made by another server, thus reaches a socket
//! held by any server. Pub/sub is fire-and-forget on purpose: live events are a view of stored
//! facts, and a socket that misses some (Redis away, a process restarting) is told so
//! (`events.lagged`) and reloads from the API. Only the originating process hands an event to the
//! tenant webhook recorder, so each is recorded once however many processes relay it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Event, kind};

/// The one channel every process publishes on and listens to.
pub const CHANNEL: &str = "wagate:events";
/// Events waiting for Redis; past this the newest are dropped (and counted) rather than held.
const OUTGOING_CAPACITY: usize = 8192;
/// Events sent to Redis in one round trip.
const PUBLISH_BATCH: usize = 256;
/// How long one round trip to Redis may take before the batch is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between reconnection attempts of the listener, doubling up to the last.
const RECONNECT_PAUSES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
];
/// At most one warning per this long when Redis is away.
const WARN_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("WAGATE_REDIS_URL is not a Redis URL: {0}")]
    BadUrl(#[source] redis::RedisError),
}

/// An event as it travels between processes.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    /// The publishing process, so it does not deliver its own events twice.
    origin: &'a str,
    tenant_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    data: Value,
}

/// The sending half, held by the event bus.
#[derive(Clone)]
pub struct Relay {
    outgoing: mpsc::Sender<Arc<Event>>,
}

impl Relay {
    /// Starts the publisher and the listener. Events from other processes are sent to `local`;
    /// both tasks end when `stop` is cancelled (the publisher first sends what it holds).
    pub fn start(
        redis_url: &str,
        local: broadcast::Sender<Arc<Event>>,
        stop: CancellationToken,
    ) -> Result<Self, RelayError> {
        let client = redis::Client::open(redis_url).map_err(RelayError::BadUrl)?;
        let origin: Arc<str> = uuid::Uuid::new_v4().to_string().into();
        let (outgoing, queue) = mpsc::channel(OUTGOING_CAPACITY);
        tokio::spawn(publish_loop(
            client.clone(),
            Arc::clone(&origin),
            queue,
            stop.clone(),
        ));
        tokio::spawn(listen_loop(client, origin, local, stop));
        Ok(Self { outgoing })
    }

    /// Hands an event on without waiting; when Redis has fallen far behind it is dropped.
    pub fn offer(&self, event: &Arc<Event>) {
        if self.outgoing.try_send(Arc::clone(event)).is_err() {
            metrics::counter!("wagate_events_relay_dropped_total").increment(1);
        }
    }
}

async fn publish_loop(
    client: redis::Client,
    origin: Arc<str>,
    mut queue: mpsc::Receiver<Arc<Event>>,
    stop: CancellationToken,
) {
    let warnings = Warnings::default();
    let mut connection: Option<ConnectionManager> = None;
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        let received = tokio::select! {
            n = queue.recv_many(&mut batch, PUBLISH_BATCH) => n,
            () = stop.cancelled() => {
                // What was published before the stop still goes out.
                queue.close();
                queue.recv_many(&mut batch, OUTGOING_CAPACITY).await
            }
        };
        if received == 0 {
            return;
        }
        if connection.is_none() {
            connection = connect(&client).await.ok();
        }
        let sent = match connection.as_mut() {
            Some(manager) => publish(manager, &origin, &batch).await,
            None => false,
        };
        if sent {
            metrics::counter!("wagate_events_relayed_total", "direction" => "out")
                .increment(batch.len() as u64);
        } else {
            metrics::counter!("wagate_events_relay_dropped_total").increment(batch.len() as u64);
            warnings.warn("Redis does not take live events; other processes' sockets miss them");
        }
        batch.clear();
        if stop.is_cancelled() && queue.is_empty() {
            return;
        }
    }
}

async fn connect(client: &redis::Client) -> Result<ConnectionManager, redis::RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1);
    match tokio::time::timeout(
        CALL_TIMEOUT,
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        ))),
    }
}

async fn publish(manager: &mut ConnectionManager, origin: &str, batch: &[Arc<Event>]) -> bool {
    let mut pipe = redis::pipe();
    for event in batch {
        let wire = Wire {
            origin,
            tenant_id: &event.tenant_id,
            kind: event.kind,
            data: event.data.clone(),
        };
        let Ok(payload) = serde_json::to_string(&wire) else {
            continue;
        };
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(payload).ignore();
    }
    matches!(
        tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(manager)).await,
        Ok(Ok(()))
    )
}

async fn listen_loop(
    client: redis::Client,
    origin: Arc<str>,
    local: broadcast::Sender<Arc<Event>>,
    stop: CancellationToken,
) {
    let warnings = Warnings::default();
    let mut failures = 0usize;
    let mut subscribed_before = false;
    loop {
        let subscription = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            result = tokio::time::timeout(CALL_TIMEOUT, subscription) => match result {
                Ok(Ok(pubsub)) => Some(pubsub),
                _ => None,
            },
            () = stop.cancelled() => return,
        };
        if let Some(pubsub) = pubsub {
            failures = 0;
            if subscribed_before {
                // Events published while this process was not listening are gone: the sockets
                // here say so, and their pages reload what they show.
                tell_sockets_they_missed_events(&local);
            }
            subscribed_before = true;
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => deliver(&origin, &local, message.get_payload_bytes()),
                        None => break,
                    },
                    () = stop.cancelled() => return,
                }
            }
        }
        warnings.warn("lost the Redis subscription for live events; reconnecting");
        let pause = RECONNECT_PAUSES[failures.min(RECONNECT_PAUSES.len() - 1)];
        failures += 1;
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Sends one relayed event to this process's sockets, unless it is this process's own.
fn deliver(origin: &str, local: &broadcast::Sender<Arc<Event>>, payload: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<Wire<'_>>(payload) else {
        tracing::debug!("ignored a relayed event that is not in wagate's format");
        return;
    };
    if wire.origin == origin {
        return;
    }
    // Kinds are static names; one this build does not know (a newer process mid-upgrade) has
    // no socket here that would understand it.
    let Some(kind) = kind::known(wire.kind) else {
        tracing::debug!(
            kind = wire.kind,
            "ignored a relayed event of an unknown type"
        );
        return;
    };
    metrics::counter!("wagate_events_relayed_total", "direction" => "in").increment(1);
    let _ = local.send(Arc::new(Event {
        tenant_id: wire.tenant_id.to_owned(),
        kind,
        data: wire.data,
    }));
}

fn tell_sockets_they_missed_events(local: &broadcast::Sender<Arc<Event>>) {
    let _ = local.send(Arc::new(Event {
        tenant_id: super::EVERY_TENANT.to_owned(),
        kind: kind::EVENTS_LAGGED,
        data: serde_json::json!({ "reason": "relay_reconnected" }),
    }));
}

/// Rate-limited warnings: Redis being away should be visible, not flood the log.
#[derive(Default)]
struct Warnings {
    last: AtomicU64,
    started: std::sync::OnceLock<Instant>,
}

impl Warnings {
    fn warn(&self, message: &'static str) {
        let started = self.started.get_or_init(Instant::now);
        let now = started.elapsed().as_secs() + WARN_INTERVAL.as_secs();
        let last = self.last.load(Ordering::Relaxed);
        if now >= last + WARN_INTERVAL.as_secs()
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!("{message}");
        }
    }
}
