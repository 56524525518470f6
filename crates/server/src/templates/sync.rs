//! Keeping a connection's templates in step with Meta: every template of its WhatsApp Business
//! Account is pulled (following Meta's cursor paging to the last page) and the stored copy is
//! replaced in one transaction. It runs on demand (`POST /api/v1/templates/sync`), after a
//! connection is made, when a send names a template not seen yet, and on its own every
//! `WAGATE_TEMPLATE_SYNC_SECS` through a periodic sweep that queues one job per connection and
//! period (the job's unique key makes the period's sync happen once, however many processes
//! sweep).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloudapi::templates::MessageTemplate;
use cloudapi::{GraphClient, GraphError, MetaError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::jobs::JobFailure;
use crate::realtime::{Event, EventBus, kind};
use crate::store::connections::{ConnectionRow, STATUS_CONNECTED};
use crate::store::jobs::{Job, NewJob};
use crate::store::templates::{SyncCounts, SyncedTemplate, TemplateOwner};
use crate::store::{Store, StoreError};
use crate::vault::{SecretSlot, Vault};

/// The job kind that syncs one connection's templates.
pub const SYNC_JOB: &str = "sync_templates";
/// Templates asked for per page: fewer round trips than Meta's default of 25.
const PAGE_SIZE: u32 = 100;
/// How often the periodic sweep looks for connections whose sync is due.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Connections queued per sweep; the rest wait for the next one.
const SWEEP_BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "this connection has no WhatsApp Business Account id (waba_id); set it with PATCH /api/v1/connections/{{id}} to sync its templates"
    )]
    NoWaba,
    #[error("the connection is {0}; its templates cannot be read with its credentials")]
    NotConnected(String),
    #[error("Meta refused to list the templates: {}", .0.details().unwrap_or("no reason given"))]
    MetaRejected(Box<MetaError>),
    #[error("Meta could not be reached to list the templates: {0}")]
    MetaUnreachable(GraphError),
    #[error("the connection's access token cannot be opened: {0}")]
    Credentials(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a sync found.
#[derive(Debug, Clone, Copy)]
pub struct SyncOutcome {
    pub listed: usize,
    pub counts: SyncCounts,
    pub synced_at: i64,
}

/// One sync of a connection at a time in this process, so a burst of sends naming a template not
/// seen yet waits for one sync instead of each starting its own.
#[derive(Default)]
pub struct SyncLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SyncLocks {
    fn of(&self, connection_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(connection_id.to_owned()).or_default())
    }
}

/// Everything a sync needs.
pub struct TemplateSync<'a> {
    pub store: &'a Store,
    pub vault: &'a Vault,
    pub graph: &'a GraphClient,
    pub events: &'a EventBus,
    pub locks: &'a SyncLocks,
}

impl<'a> TemplateSync<'a> {
    pub fn from_state(state: &'a AppState) -> Self {
        Self {
            store: &state.store,
            vault: &state.vault,
            graph: &state.graph,
            events: &state.events,
            locks: &state.template_sync_locks,
        }
    }

    /// Syncs unless a sync finished less than `max_age` ago (another request's, perhaps, that
    /// this one waited for); `Ok(false)` when the stored list was fresh enough.
    pub async fn sync_unless_fresh(
        &self,
        connection: &ConnectionRow,
        max_age: Duration,
    ) -> Result<bool, SyncError> {
        let lock = self.locks.of(&connection.id);
        let _held = lock.lock().await;
        let max_age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX / 2);
        if let Some(at) = self.store.templates_synced_at(&connection.id).await?
            && now_ms() - at < max_age
        {
            return Ok(false);
        }
        self.sync_held(connection).await.map(|_| true)
    }

    /// Pulls every template of the connection's account and replaces the stored copy.
    pub async fn sync(&self, connection: &ConnectionRow) -> Result<SyncOutcome, SyncError> {
        let lock = self.locks.of(&connection.id);
        let _held = lock.lock().await;
        self.sync_held(connection).await
    }

    #[tracing::instrument(skip_all, fields(connection_id = %connection.id))]
    async fn sync_held(&self, connection: &ConnectionRow) -> Result<SyncOutcome, SyncError> {
        if connection.status != STATUS_CONNECTED {
            return Err(SyncError::NotConnected(connection.status.replace('_', " ")));
        }
        let waba_id = connection.waba_id.as_deref().ok_or(SyncError::NoWaba)?;
        let token = self.open_token(connection)?;
        let listed_at = now_ms();
        let listed = self
            .graph
            .list_all_templates(&token, waba_id, PAGE_SIZE)
            .await
            .map_err(|error| match error {
                GraphError::Meta { error, .. } => SyncError::MetaRejected(error),
                other => SyncError::MetaUnreachable(other),
            })?;
        let templates: Vec<SyncedTemplate> = listed.iter().filter_map(synced_template).collect();
        let now = now_ms();
        let counts = self
            .store
            .replace_templates(
                TemplateOwner {
                    tenant_id: &connection.tenant_id,
                    connection_id: &connection.id,
                    waba_id: Some(waba_id),
                },
                &templates,
                listed_at,
                now,
            )
            .await?;
        metrics::counter!("wagate_template_syncs_total").increment(1);
        tracing::info!(
            listed = templates.len(),
            added = counts.added,
            updated = counts.updated,
            removed = counts.removed,
            "templates synced"
        );
        self.events.publish(Event {
            tenant_id: connection.tenant_id.clone(),
            kind: kind::TEMPLATES_SYNCED,
            data: json!({
                "connection_id": connection.id,
                "listed": templates.len(),
                "added": counts.added,
                "updated": counts.updated,
                "removed": counts.removed,
            }),
        });
        Ok(SyncOutcome {
            listed: templates.len(),
            counts,
            synced_at: now,
        })
    }

    fn open_token(&self, connection: &ConnectionRow) -> Result<SecretString, SyncError> {
        let sealed = connection
            .access_token
            .as_deref()
            .ok_or_else(|| SyncError::Credentials("the connection has no access token".into()))?;
        self.vault
            .open(
                SecretSlot::new("connections", "access_token", &connection.id),
                sealed,
            )
            .map_err(|e| SyncError::Credentials(e.to_string()))
    }
}

/// A template as Meta lists it, as stored; one without a language cannot be sent and is skipped.
pub fn synced_template(template: &MessageTemplate) -> Option<SyncedTemplate> {
    let language = template.language.clone().filter(|l| !l.is_empty())?;
    let components =
        serde_json::to_string(template.components.as_deref().unwrap_or_default()).ok()?;
    let quality_score = match &template.quality_score {
        Some(Value::Object(score)) => score
            .get("score")
            .and_then(Value::as_str)
            .map(str::to_owned),
        Some(Value::String(score)) => Some(score.clone()),
        _ => None,
    };
    Some(SyncedTemplate {
        meta_template_id: Some(template.id.clone()),
        name: template.name.clone(),
        language,
        category: template.category.clone(),
        status: template
            .status
            .clone()
            .unwrap_or_else(|| "PENDING".to_owned()),
        quality_score,
        rejected_reason: template
            .rejected_reason
            .clone()
            .filter(|r| !r.eq_ignore_ascii_case("NONE")),
        parameter_format: template
            .parameter_format
            .as_deref()
            .map(str::to_ascii_uppercase),
        sub_category: template.sub_category.clone(),
        components,
        payload: serde_json::to_string(template).unwrap_or_default(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    connection_id: String,
}

/// Queues a sync of one connection's templates; `reason` keeps the job distinct from the
/// periodic ones (`created`, `credentials`, or the period's number).
pub async fn enqueue_sync(
    store: &Store,
    connection: &ConnectionRow,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&Payload {
        connection_id: connection.id.clone(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let unique_key = format!("{SYNC_JOB}:{}:{reason}", connection.id);
    let mut tx = store.begin_with(crate::store::Durability::Relaxed).await?;
    let queued = store
        .enqueue_job(
            &mut tx,
            &NewJob {
                kind: SYNC_JOB,
                payload: &payload,
                tenant_id: Some(&connection.tenant_id),
                unique_key: Some(&unique_key),
                run_at: now,
                max_attempts: 5,
                now,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(queued)
}

/// Runs one sync job. Meta being away is retried; a connection that cannot be synced is not.
pub async fn run_sync(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    let Some(connection) = state
        .store
        .connection_by_id(&payload.connection_id)
        .await
        .map_err(|e| JobFailure::Retry(e.to_string()))?
    else {
        return Ok(());
    };
    if connection.status != STATUS_CONNECTED {
        // Disconnected or waiting for new credentials: nothing to sync until that changes.
        return Ok(());
    }
    match TemplateSync::from_state(state).sync(&connection).await {
        Ok(_) => Ok(()),
        Err(SyncError::MetaUnreachable(error)) => Err(JobFailure::Retry(error.to_string())),
        Err(SyncError::MetaRejected(error)) if error.class().is_retryable() => {
            Err(JobFailure::Retry(format!("Meta: {error}")))
        }
        Err(SyncError::Store(error)) => Err(JobFailure::Retry(error.to_string())),
        Err(other) => Err(JobFailure::Permanent(other.to_string())),
    }
}

/// The periodic sweep: every [`SWEEP_EVERY`], connections whose last sync is older than
/// `interval` get a sync job, at most one per connection and period.
pub async fn run_periodic(state: AppState, interval: Duration, shutdown: CancellationToken) {
    let interval_ms = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX / 2)
        .max(1);
    let every = SWEEP_EVERY.min(interval);
    loop {
        let now = now_ms();
        match state
            .store
            .connections_due_for_template_sync(now - interval_ms, SWEEP_BATCH)
            .await
        {
            Ok(due) => {
                let mut queued = 0;
                for connection in &due {
                    let period = (now / interval_ms).to_string();
                    match enqueue_sync(&state.store, connection, &period, now).await {
                        Ok(true) => queued += 1,
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(error = %error, "could not queue a template sync");
                        }
                    }
                }
                if queued > 0 {
                    state.jobs_wakeup.notify_one();
                    tracing::debug!(queued, "periodic template syncs queued");
                }
            }
            Err(error) => tracing::warn!(error = %error, "template sync sweep failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_listed_templates_become_rows_with_their_quality_and_no_none_reason() {
        let text = include_str!("../../../../testdata/meta-examples/templates_list_response.json");
        let page: cloudapi::templates::TemplatePage = serde_json::from_str(text).unwrap();
        let rows: Vec<SyncedTemplate> = page.data.iter().filter_map(synced_template).collect();
        assert_eq!(rows.len(), page.data.len());
        let first = &rows[0];
        assert_eq!(first.name, "reservation_confirmation");
        assert_eq!(first.language, "en_US");
        assert_eq!(first.parameter_format.as_deref(), Some("NAMED"));
        assert!(first.components.contains("BODY"));
        let with_quality = serde_json::from_value::<MessageTemplate>(json!({
            "id": "1", "name": "x", "language": "en", "status": "APPROVED",
            "quality_score": {"score": "GREEN", "date": 1}, "rejected_reason": "NONE"
        }))
        .unwrap();
        let row = synced_template(&with_quality).unwrap();
        assert_eq!(row.quality_score.as_deref(), Some("GREEN"));
        assert_eq!(row.rejected_reason, None);
    }
}
