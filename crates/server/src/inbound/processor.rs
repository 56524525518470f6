//! The inbox processor: takes stored webhook bodies in arrival order and applies them.
//!
//! A batch of rows is applied in one transaction. If any row fails, the batch is rolled back and
//! each row is applied on its own, so one bad row delays only itself: it is retried with backoff
//! and, if it keeps failing, parked with its error. Rows are never dropped, and a restart resumes
//! at the first row not marked done.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::apply::{ApplyError, Batch, Change, apply_row};
use crate::clock::now_ms;
use crate::realtime::{Event, EventBus, kind};
use crate::store::inbox::InboxRow;
use crate::store::{Store, StoreError};
use crate::views;

#[derive(Debug, Clone, Copy)]
pub struct ProcessorConfig {
    /// Rows applied per transaction.
    pub batch_size: i64,
    /// A transaction stops taking rows once it holds this many customer messages.
    pub max_messages_per_batch: usize,
    /// Failed attempts before a row is parked.
    pub max_attempts: i64,
    /// How often to look for due retries when nothing wakes the processor.
    pub idle_poll: Duration,
    /// Backoff after the first failure; doubles each time up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts each media fetch gets (`WAGATE_MEDIA_FETCH_ATTEMPTS`).
    pub media_fetch_attempts: i64,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            batch_size: 128,
            max_messages_per_batch: 256,
            max_attempts: 10,
            idle_poll: Duration::from_secs(1),
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            media_fetch_attempts: 3,
        }
    }
}

pub struct Processor {
    store: Store,
    events: EventBus,
    wakeup: Arc<Notify>,
    /// Woken when applied rows queued jobs (media fetches), so they start at once.
    jobs_wakeup: Arc<Notify>,
    config: ProcessorConfig,
}

impl Processor {
    pub fn new(
        store: Store,
        events: EventBus,
        wakeup: Arc<Notify>,
        jobs_wakeup: Arc<Notify>,
        config: ProcessorConfig,
    ) -> Self {
        Self {
            store,
            events,
            wakeup,
            jobs_wakeup,
            config,
        }
    }

    /// Runs until `shutdown`; the batch in hand is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures_in_a_row = 0u32;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match self.process_batch().await {
                Ok(0) => {
                    failures_in_a_row = 0;
                    tokio::select! {
                        () = self.wakeup.notified() => {}
                        () = tokio::time::sleep(self.config.idle_poll) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
                Ok(_) => failures_in_a_row = 0,
                Err(error) => {
                    failures_in_a_row = failures_in_a_row.saturating_add(1);
                    let pause = Duration::from_millis(100 * 2u64.pow(failures_in_a_row.min(6)));
                    tracing::warn!(error = %error, pause_ms = pause.as_millis() as u64, "inbox processing paused");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Applies one batch of due rows; returns how many rows were handled.
    pub async fn process_batch(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut tx = self.store.begin_derived().await?;
        let rows = self
            .store
            .claim_inbox_rows(&mut tx, self.config.batch_size, now)
            .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        // Read the clock again once the rows are ours: on PostgreSQL the claim may have waited
        // for another process to commit this connection's earlier rows, and what this batch
        // stamps (`processed_at`, `updated_at`) must come after what that one stamped.
        let now = now_ms();
        let mut batch = Batch::new(self.config.media_fetch_attempts);
        batch.prefetch(&self.store, &rows).await?;
        let mut changes = Vec::new();
        let mut failed = false;
        let mut taken = 0;
        for row in &rows {
            match apply_row(&self.store, &mut tx, &mut batch, row, now).await {
                Ok(mut applied) => {
                    changes.append(&mut applied);
                    taken += 1;
                    // Webhooks queue for the same writer on SQLite: keep each hold short. Rows
                    // left unapplied stay pending and lead the next batch.
                    if batch.pending_messages() >= self.config.max_messages_per_batch {
                        break;
                    }
                }
                Err(error) => {
                    tracing::debug!(inbox_id = row.id, error = %error, "row failed inside a batch; applying the batch row by row");
                    failed = true;
                    taken += 1;
                    break;
                }
            }
        }
        let rows = &rows[..taken];
        if !failed {
            match batch.flush(&self.store, &mut tx, now).await {
                Ok(mut touched) => changes.append(&mut touched),
                Err(error) if error.is_unavailable() => return Err(error),
                Err(error) => {
                    tracing::debug!(error = %error, "batch write failed; applying the batch row by row");
                    failed = true;
                }
            }
        }
        if !failed {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            self.store.mark_inbox_done(&mut tx, &ids, now).await?;
            tx.commit().await?;
            if batch.jobs_queued() > 0 {
                self.jobs_wakeup.notify_one();
            }
            self.store.confirm_inbox_done(&ids, now).await?;
            metrics::counter!("wagate_inbox_rows_applied_total").increment(rows.len() as u64);
            record_lag(rows);
            self.publish(changes).await;
            return Ok(rows.len());
        }
        tx.rollback().await?;
        for row in rows {
            self.process_alone(row).await?;
        }
        Ok(rows.len())
    }

    async fn process_alone(&self, row: &InboxRow) -> Result<(), StoreError> {
        let mut tx = self.store.begin_derived().await?;
        if !self.store.reclaim_inbox_row(&mut tx, row.id).await? {
            tx.rollback().await?;
            return Ok(());
        }
        let now = now_ms();
        let mut batch = Batch::new(self.config.media_fetch_attempts);
        let applied = match apply_row(&self.store, &mut tx, &mut batch, row, now).await {
            Ok(mut changes) => batch
                .flush(&self.store, &mut tx, now)
                .await
                .map(|mut touched| {
                    changes.append(&mut touched);
                    changes
                })
                .map_err(ApplyError::from),
            Err(error) => Err(error),
        };
        match applied {
            Ok(changes) => {
                self.store.mark_inbox_done(&mut tx, &[row.id], now).await?;
                tx.commit().await?;
                if batch.jobs_queued() > 0 {
                    self.jobs_wakeup.notify_one();
                }
                self.store.confirm_inbox_done(&[row.id], now).await?;
                metrics::counter!("wagate_inbox_rows_applied_total").increment(1);
                record_lag(std::slice::from_ref(row));
                self.publish(changes).await;
                Ok(())
            }
            Err(ApplyError::Store(error)) if error.is_unavailable() => {
                // The database itself is away: not this row's fault, so it keeps its attempts.
                Err(error)
            }
            Err(error) => {
                tx.rollback().await?;
                let attempts = row.attempts + 1;
                let park = error.is_permanent() || attempts >= self.config.max_attempts;
                let next = now + self.backoff_ms(attempts);
                self.store
                    .record_inbox_failure(row.id, attempts, next, &error.to_string(), park)
                    .await?;
                if park {
                    metrics::counter!("wagate_inbox_rows_parked_total").increment(1);
                    tracing::error!(inbox_id = row.id, attempts, error = %error, "inbox row parked; it is kept and can be retried through the API");
                } else {
                    metrics::counter!("wagate_inbox_rows_retried_total").increment(1);
                    tracing::warn!(inbox_id = row.id, attempts, error = %error, "inbox row failed; will retry");
                }
                Ok(())
            }
        }
    }

    fn backoff_ms(&self, attempts: i64) -> i64 {
        let first = self.config.first_backoff.as_millis() as i64;
        let max = self.config.max_backoff.as_millis() as i64;
        let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        first.saturating_mul(1i64 << exponent).min(max)
    }

    /// Announces committed changes. Conversations and unread totals are read once per batch.
    async fn publish(&self, changes: Vec<Change>) {
        if !self.events.has_subscribers() {
            return;
        }
        let mut conversations = BTreeMap::new();
        let mut unread_tenants = HashSet::new();
        for change in changes {
            match change {
                Change::MessageCreated(row) => self.events.publish(Event {
                    tenant_id: row.tenant_id.clone(),
                    kind: kind::MESSAGE_CREATED,
                    data: views::message(&row),
                }),
                Change::StatusChanged { change, wamid, error } => self.events.publish(Event {
                    tenant_id: change.tenant_id.clone(),
                    kind: kind::MESSAGE_STATUS,
                    data: json!({
                        "id": change.message_id,
                        "conversation_id": change.conversation_id,
                        "wamid": wamid,
                        "status": change.status,
                        "error": error.map(|e| json!({"code": e.code, "title": e.title, "message": e.message})),
                    }),
                }),
                Change::ConversationTouched {
                    tenant_id,
                    conversation_id,
                    unread_changed,
                } => {
                    if unread_changed {
                        unread_tenants.insert(tenant_id.clone());
                    }
                    conversations.insert(conversation_id, tenant_id);
                }
                Change::TemplateUpdated(row) => self.events.publish(Event {
                    tenant_id: row.tenant_id.clone(),
                    kind: kind::TEMPLATE_UPDATED,
                    data: views::template(&row),
                }),
            }
        }
        for (conversation_id, tenant_id) in conversations {
            if let Ok(Some(row)) = self.store.conversation(&tenant_id, &conversation_id).await {
                self.events.publish(Event {
                    tenant_id,
                    kind: kind::CONVERSATION_UPDATED,
                    data: views::conversation(&row),
                });
            }
        }
        for tenant_id in unread_tenants {
            if let Ok(unread) = self.store.unread_total(&tenant_id).await {
                self.events.publish(Event {
                    tenant_id,
                    kind: kind::UNREAD_CHANGED,
                    data: json!({ "unread": unread }),
                });
            }
        }
    }
}

/// From the webhook's arrival to its changes being committed and queryable.
fn record_lag(rows: &[InboxRow]) {
    let now = now_ms();
    for row in rows {
        metrics::histogram!("wagate_inbox_processing_lag_seconds")
            .record((now - row.received_at).max(0) as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::connections::{ConnectionRow, STATUS_CONNECTED, STATUS_DISCONNECTED};
    use crate::store::inbox::InboxAppend;
    use crate::store::sequences::SequenceRow;
    use crate::store::testing::{connection_row, store_with_tenant};

    fn connection(id: &str, phone: &str, status: &str) -> ConnectionRow {
        ConnectionRow {
            waba_id: Some("800".into()),
            status: status.to_owned(),
            ..connection_row(id, phone)
        }
    }

    fn text_webhook(phone: &str, from: &str, wamid: &str) -> bytes::Bytes {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "800", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": phone, "phone_number_id": phone},
                "contacts": [{"profile": {"name": "Sheena"}, "wa_id": from}],
                "messages": [{"from": from, "id": wamid, "timestamp": "1700000000",
                              "type": "text", "text": {"body": "hello"}}]
            }}]}]
        });
        bytes::Bytes::from(body.to_string())
    }

    async fn count(store: &Store, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(store.reader())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn one_batch_over_many_connections_applies_each_connection_as_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_tenant(dir.path()).await;
        let plain = connection("c-plain", "1001", STATUS_CONNECTED);
        let sequenced = connection("c-sequenced", "1002", STATUS_CONNECTED);
        let gone = connection("c-gone", "1003", STATUS_DISCONNECTED);
        for row in [&plain, &sequenced, &gone] {
            store.insert_connection(row).await.unwrap();
        }
        store
            .insert_sequence(&SequenceRow {
                id: "s1".into(),
                tenant_id: "t1".into(),
                connection_id: sequenced.id.clone(),
                name: "Welcome".into(),
                steps: "[]".into(),
                enroll_on_first_message: true,
                stop_on_reply: true,
                opt_out_words: "[]".into(),
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
        // Interleaved as webhooks for many numbers arrive, each connection twice.
        let mut appends = Vec::new();
        for round in 0..2 {
            for c in [&plain, &sequenced, &gone] {
                appends.push(InboxAppend {
                    connection_id: Some(c.id.clone()),
                    body: text_webhook(
                        &c.phone_number_id,
                        "16505551234",
                        &format!("wamid.{}.{round}", c.id),
                    ),
                    received_at: now_ms(),
                });
            }
        }
        store.append_to_inbox(&appends).await.unwrap();
        let processor = Processor::new(
            store.clone(),
            EventBus::new(16),
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
            ProcessorConfig::default(),
        );

        assert_eq!(
            processor.process_batch().await.unwrap(),
            6,
            "one batch takes every row"
        );

        assert_eq!(store.inbox_pending_count().await.unwrap(), 0);
        let per_connection: Vec<(String, i64)> = sqlx::query_as(
            "SELECT connection_id, COUNT(*) FROM messages GROUP BY connection_id ORDER BY connection_id",
        )
        .fetch_all(store.reader())
        .await
        .unwrap();
        assert_eq!(
            per_connection,
            vec![("c-plain".to_owned(), 2), ("c-sequenced".to_owned(), 2)],
            "the disconnected number's rows are not applied"
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM conversations").await,
            2,
            "one conversation per connection and customer"
        );
        let sequence_jobs: Vec<(String,)> = sqlx::query_as(
            "SELECT m.connection_id FROM jobs j
             JOIN messages m ON j.unique_key = 'sequence_inbound:' || m.id
             WHERE j.kind = 'sequence_inbound'",
        )
        .fetch_all(store.reader())
        .await
        .unwrap();
        assert_eq!(
            sequence_jobs,
            vec![("c-sequenced".to_owned(),); 2],
            "sequence work is queued for the messages of the connection with a sequence only"
        );
    }
}
