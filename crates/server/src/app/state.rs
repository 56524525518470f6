//! What every request handler and background task shares: settings, store, vault, Graph client,
//! the ingest queue and the event bus.

use std::sync::Arc;

use cloudapi::GraphClient;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::inbound::ingest::Ingest;
use crate::inbound::keys::ConnectionKeys;
use crate::limits::RateLimiter;
use crate::media::MediaStorage;
use crate::realtime::EventBus;
use crate::store::Store;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub graph: GraphClient,
    /// Where media bytes are kept (the data dir by default).
    pub media: Arc<dyn MediaStorage>,
    pub ingest: Ingest,
    /// Meta's throughput and pair budgets, shared through Redis when several processes send.
    pub limiter: RateLimiter,
    /// Connection keys and app secrets recently used by webhooks.
    pub webhook_keys: Arc<ConnectionKeys>,
    pub events: EventBus,
    /// Outbound webhooks to the tenants' own endpoints (fed by `events`).
    pub hooks: crate::hooks::Hooks,
    /// Woken after each inbox commit so the processor starts at once instead of polling.
    pub inbox_wakeup: Arc<Notify>,
    /// Woken when a job is enqueued for now.
    pub jobs_wakeup: Arc<Notify>,
    /// One template sync per connection at a time in this process.
    pub template_sync_locks: Arc<crate::templates::sync::SyncLocks>,
    /// Base of generated webhook URLs (known only after the listener is bound).
    pub public_url: Arc<str>,
    pub metrics: Option<PrometheusHandle>,
    /// Calls the assistant's model providers (any OpenAI-compatible endpoint).
    pub model_client: crate::assistant::client::ModelClient,
}

impl AppState {
    /// The URL Meta should call for a connection.
    pub fn webhook_url(&self, connection_key: &str) -> String {
        format!("{}/webhooks/whatsapp/{connection_key}", self.public_url)
    }
}
