//! Group commit for webhook bodies: many concurrent requests wait on one transaction, so a
//! durable append costs one disk flush per batch instead of one per webhook.
//!
//! A request hands its body to the queue and waits; a committer takes everything waiting (up to a
//! batch limit), writes it in one transaction, and answers every waiter once the commit returned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::Store;
use crate::store::inbox::InboxAppend;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The transaction failed; nothing of the batch is stored and the caller answers 503.
    #[error("the inbox could not be written: {0}")]
    Store(String),
    /// The server is shutting down and takes no more webhooks.
    #[error("the server is shutting down")]
    Closed,
}

#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Most bodies in one transaction.
    pub max_batch: usize,
    /// Most body bytes in one transaction.
    pub max_batch_bytes: usize,
    /// Transactions in flight at once: one on SQLite (one writer), several on PostgreSQL.
    pub committers: usize,
    /// Bodies waiting for a committer before new requests wait to enqueue.
    pub queue_capacity: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch: 512,
            max_batch_bytes: 16 * 1024 * 1024,
            committers: 1,
            queue_capacity: 8192,
        }
    }
}

struct Waiting {
    item: InboxAppend,
    done: oneshot::Sender<Result<(), IngestError>>,
}

/// The handle requests append through. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    queue: mpsc::Sender<Waiting>,
}

impl Ingest {
    /// Starts the committers. They stop once every `Ingest` handle is dropped and the queue is empty.
    pub fn start(
        store: Store,
        wakeup: Arc<Notify>,
        config: IngestConfig,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let committers = (0..config.committers.max(1))
            .map(|_| {
                tokio::spawn(run_committer(
                    store.clone(),
                    Arc::clone(&receiver),
                    Arc::clone(&wakeup),
                    config,
                ))
            })
            .collect();
        (Self { queue }, committers)
    }

    /// Returns once the body is durably stored, or with the reason it is not.
    pub async fn append(&self, item: InboxAppend) -> Result<(), IngestError> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Waiting { item, done })
            .await
            .map_err(|_| IngestError::Closed)?;
        outcome.await.unwrap_or(Err(IngestError::Closed))
    }
}

async fn run_committer(
    store: Store,
    receiver: Arc<Mutex<mpsc::Receiver<Waiting>>>,
    wakeup: Arc<Notify>,
    config: IngestConfig,
) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut bytes = first.item.body.len();
            let mut batch = vec![first];
            while batch.len() < config.max_batch && bytes < config.max_batch_bytes {
                match receiver.try_recv() {
                    Ok(next) => {
                        bytes += next.item.body.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        commit(&store, batch, &wakeup).await;
    }
}

async fn commit(store: &Store, batch: Vec<Waiting>, wakeup: &Notify) {
    let started = Instant::now();
    let (items, waiters): (Vec<InboxAppend>, Vec<_>) =
        batch.into_iter().map(|w| (w.item, w.done)).unzip();
    let outcome = append_with_one_retry(store, &items).await;
    metrics::histogram!("wagate_inbox_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("wagate_inbox_commit_batch_size").record(items.len() as f64);
    match &outcome {
        Ok(()) => {
            metrics::counter!("wagate_webhooks_stored_total").increment(items.len() as u64);
            wakeup.notify_one();
        }
        Err(e) => {
            metrics::counter!("wagate_webhooks_store_failed_total").increment(items.len() as u64);
            tracing::error!(error = %e, bodies = items.len(), "inbox append failed; answering 503 so Meta retries");
        }
    }
    for waiter in waiters {
        // A waiter that gave up (client went away) no longer cares; the body is stored anyway.
        let _ = waiter.send(outcome.clone());
    }
}

/// One quick retry covers a momentary lock or a dropped pooled connection; beyond that the
/// webhook is refused and Meta's own retries take over.
async fn append_with_one_retry(store: &Store, items: &[InboxAppend]) -> Result<(), IngestError> {
    match store.append_to_inbox(items).await {
        Ok(()) => Ok(()),
        Err(first) => {
            tracing::warn!(error = %first, "inbox append failed; retrying once");
            tokio::time::sleep(Duration::from_millis(50)).await;
            store
                .append_to_inbox(items)
                .await
                .map_err(|e| IngestError::Store(e.to_string()))
        }
    }
}
