//! Outbound webhook endpoints, their deliveries (one event for one endpoint) and each delivery's
//! attempts. Deliveries are claimed with a lease, and only the oldest undelivered one of each
//! (endpoint, ordering key) queue can be claimed, so one conversation's events reach an endpoint
//! in order.

use sqlx::any::AnyRow;

use super::{Backend, Durability, Store, StoreError, WriteQuery, col};

/// Waiting for its first or next attempt.
pub const STATE_PENDING: &str = "pending";
/// Claimed by a worker; an attempt is in flight.
pub const STATE_DELIVERING: &str = "delivering";
/// The receiver answered 2xx.
pub const STATE_DELIVERED: &str = "delivered";
/// Given up (a final answer, or out of attempts); a re-send queues it again.
pub const STATE_FAILED: &str = "failed";

/// An endpoint as stored; the secret is still sealed.
#[derive(Clone)]
pub struct EndpointRow {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub secret: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts; `None` while the last attempt succeeded.
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

// The sealed secret is bytes, but a Debug of the row still leaves it out.
impl std::fmt::Debug for EndpointRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, description, events, secret, enabled, \
     disabled_reason, failing_since, created_at, updated_at";

fn endpoint_from_row(row: &AnyRow) -> Result<EndpointRow, StoreError> {
    let events: String = col(row, "events")?;
    Ok(EndpointRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        url: col(row, "url")?,
        description: col(row, "description")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("webhook_endpoints.events: {e}")))?,
        secret: col(row, "secret")?,
        enabled: col::<i64>(row, "enabled")? != 0,
        disabled_reason: col(row, "disabled_reason")?,
        failing_since: col(row, "failing_since")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// What a PATCH changes; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// An enabled endpoint and the events it wants: what the recorder needs to fan an event out.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint_id: String,
    pub events: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub tenant_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The conversation id, or `""` for events of no conversation.
    pub ordering_key: String,
    pub seq: i64,
    pub body: String,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub seq: i64,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, seq, body, state, attempts, \
     next_attempt_at, last_status_code, last_error, delivered_at, created_at, updated_at";

fn delivery_from_row(row: &AnyRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: col(row, "id")?,
        endpoint_id: col(row, "endpoint_id")?,
        event_id: col(row, "event_id")?,
        event_type: col(row, "event_type")?,
        seq: col(row, "seq")?,
        body: col(row, "body")?,
        state: col(row, "state")?,
        attempts: col(row, "attempts")?,
        next_attempt_at: col(row, "next_attempt_at")?,
        last_status_code: col(row, "last_status_code")?,
        last_error: col(row, "last_error")?,
        delivered_at: col(row, "delivered_at")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: i64,
}

/// A delivery a worker holds, with what it needs to make the attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    pub tenant_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    /// Including this one.
    pub attempts: i64,
    /// Attempts since it was last queued, including this one.
    pub round_attempts: i64,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(i64),
    Failed,
}

/// One attempt's result, as logged.
#[derive(Debug, Clone)]
pub struct AttemptOutcome<'a> {
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    pub next: NextStep,
}

/// What recording an attempt did to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Done,
    /// The endpoint has failed for longer than allowed and was disabled just now.
    EndpointDisabled,
    /// The lease ran out and someone else holds the delivery now; nothing was recorded.
    LeaseLost,
}

/// Why an endpoint was turned off by a PATCH.
pub const REASON_DISABLED_BY_TENANT: &str = "disabled through the API";

/// The outcome of asking for a re-send.
#[derive(Debug, Clone)]
pub enum Resend {
    Queued(Box<DeliveryRow>),
    /// An attempt is in flight right now.
    InFlight,
    NotFound,
}

impl Store {
    pub async fn insert_webhook_endpoint(&self, row: &EndpointRow) -> Result<(), StoreError> {
        let events = serde_json::to_string(&row.events)
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, secret,
                 enabled, disabled_reason, failing_since, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.url)
        .bind(&row.description)
        .bind(events)
        .bind(&row.secret)
        .bind(i64::from(row.enabled))
        .bind(&row.disabled_reason)
        .bind(row.failing_since)
        .bind(row.created_at)
        .bind(row.updated_at)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// The tenant's endpoint; another tenant's id is `None`, as a missing one is.
    pub async fn webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(endpoint_from_row)
            .transpose()
    }

    /// Any tenant's endpoint, for the delivery worker that holds a trusted id.
    pub async fn webhook_endpoint_by_id(
        &self,
        id: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(endpoint_from_row)
            .transpose()
    }

    pub async fn webhook_endpoints(&self, tenant_id: &str) -> Result<Vec<EndpointRow>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1
             ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(endpoint_from_row)
            .collect()
    }

    /// The tenant's enabled endpoints and the events each wants.
    pub async fn webhook_subscriptions(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        sqlx::query("SELECT id, events FROM webhook_endpoints WHERE tenant_id = $1 AND enabled = 1")
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                let events: String = col(r, "events")?;
                Ok(Subscription {
                    endpoint_id: col(r, "id")?,
                    events: serde_json::from_str(&events).map_err(|e| {
                        StoreError::Corrupt(format!("webhook_endpoints.events: {e}"))
                    })?,
                })
            })
            .collect()
    }

    /// Whether any tenant has an enabled endpoint (when none has, events are not even offered).
    pub async fn any_enabled_webhook_endpoint(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_endpoints WHERE enabled = 1")
            .fetch_one(self.reader())
            .await?;
        Ok(col::<i64>(&row, "n")? > 0)
    }

    pub async fn count_webhook_endpoints(&self, tenant_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_endpoints WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(self.reader())
            .await?;
        col(&row, "n")
    }

    /// Applies a PATCH; re-enabling clears the reason and the failure run, so the endpoint gets a
    /// fresh start. `None` when the endpoint is not the tenant's.
    pub async fn update_webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        changes: &EndpointChanges,
        now: i64,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let events = changes
            .events
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
        let sql = format!(
            "UPDATE webhook_endpoints SET
                 url = COALESCE($3, url),
                 events = COALESCE($4, events),
                 description = CASE WHEN $5 = 1 THEN $6 ELSE description END,
                 enabled = COALESCE($7, enabled),
                 disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                     WHEN $7 = 1 THEN NULL ELSE $8 END,
                 failing_since = CASE WHEN $7 = 1 THEN NULL ELSE failing_since END,
                 updated_at = $9
             WHERE tenant_id = $1 AND id = $2
             RETURNING {ENDPOINT_COLUMNS}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .bind(changes.url.as_deref())
            .bind(events)
            .bind(i64::from(changes.description.is_some()))
            .bind(changes.description.clone().flatten())
            .bind(changes.enabled.map(i64::from))
            .bind(REASON_DISABLED_BY_TENANT)
            .bind(now)
            .fetch_optional_on(self, Durability::Full)
            .await?
            .as_ref()
            .map(endpoint_from_row)
            .transpose()
    }

    /// Replaces the sealed secret; `false` when the endpoint is not the tenant's.
    pub async fn set_webhook_secret(
        &self,
        tenant_id: &str,
        id: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE webhook_endpoints SET secret = $3, updated_at = $4
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(sealed)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the endpoint with its deliveries and their attempts.
    pub async fn delete_webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Explicit rather than left to ON DELETE CASCADE, which SQLite applies only with its
        // foreign-key pragma on.
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN
                 (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                  WHERE e.tenant_id = $1 AND e.id = $2)",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE endpoint_id IN
                 (SELECT id FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let result = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores a batch of new deliveries in one durable commit.
    pub async fn insert_webhook_deliveries(&self, rows: &[NewDelivery]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type,
                     ordering_key, seq, body, state, attempts, round_attempts, next_attempt_at,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, 0, $9, $9, $9)",
            )
            .bind(&row.id)
            .bind(&row.tenant_id)
            .bind(&row.endpoint_id)
            .bind(&row.event_id)
            .bind(&row.event_type)
            .bind(&row.ordering_key)
            .bind(row.seq)
            .bind(&row.body)
            .bind(row.now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries of enabled endpoints for `worker`: each the oldest
    /// undelivered one of its (endpoint, ordering key) queue, so a delivery waiting for a retry
    /// holds back the later ones of its conversation. A lapsed lease is claimed again.
    pub async fn claim_webhook_deliveries(
        &self,
        worker: &str,
        limit: i64,
        lease_ms: i64,
        now: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET state = 'delivering', lease_until = $1 + $2,
                 leased_by = $3, attempts = attempts + 1, round_attempts = round_attempts + 1,
                 updated_at = $1
             WHERE id IN (SELECT d.id FROM webhook_deliveries d
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id
                 WHERE e.enabled = 1
                   AND ((d.state = 'pending' AND d.next_attempt_at <= $1)
                        OR (d.state = 'delivering' AND d.lease_until < $1))
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                       WHERE o.endpoint_id = d.endpoint_id AND o.ordering_key = d.ordering_key
                         AND o.state IN ('pending', 'delivering') AND o.seq < d.seq)
                 ORDER BY d.seq LIMIT $4 {lock})
             RETURNING id, tenant_id, endpoint_id, event_id, event_type, body, attempts, round_attempts"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(lease_ms)
            .bind(worker)
            .bind(limit)
            .fetch_all_on(self, Durability::Relaxed)
            .await?
            .iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    id: col(r, "id")?,
                    tenant_id: col(r, "tenant_id")?,
                    endpoint_id: col(r, "endpoint_id")?,
                    event_id: col(r, "event_id")?,
                    event_type: col(r, "event_type")?,
                    body: col(r, "body")?,
                    attempts: col(r, "attempts")?,
                    round_attempts: col(r, "round_attempts")?,
                })
            })
            .collect()
    }

    /// Logs an attempt and moves the delivery on, in one commit; a failed attempt of an endpoint
    /// that has failed every attempt for `disable_after_ms` disables it.
    pub async fn record_webhook_attempt(
        &self,
        claim: &ClaimedDelivery,
        worker: &str,
        outcome: &AttemptOutcome<'_>,
        disable_after_ms: i64,
        disable_reason: &str,
        now: i64,
    ) -> Result<Recorded, StoreError> {
        let (state, next_at) = match outcome.next {
            NextStep::Delivered => (STATE_DELIVERED, None),
            NextStep::RetryAt(at) => (STATE_PENDING, Some(at)),
            NextStep::Failed => (STATE_FAILED, None),
        };
        let mut tx = self.begin().await?;
        let moved = sqlx::query(
            "UPDATE webhook_deliveries SET state = $3, next_attempt_at = COALESCE($4, next_attempt_at),
                 lease_until = NULL, leased_by = NULL, last_status_code = $5, last_error = $6,
                 delivered_at = CASE WHEN $3 = 'delivered' THEN $7 ELSE delivered_at END,
                 updated_at = $7
             WHERE id = $1 AND leased_by = $2 AND state = 'delivering'",
        )
        .bind(&claim.id)
        .bind(worker)
        .bind(state)
        .bind(next_at)
        .bind(outcome.status_code)
        .bind(outcome.error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(Recorded::LeaseLost);
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (id, delivery_id, attempt, status_code, error,
                 duration_ms, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crate::ids::new_id())
        .bind(&claim.id)
        .bind(claim.attempts)
        .bind(outcome.status_code)
        .bind(outcome.error)
        .bind(outcome.duration_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut recorded = Recorded::Done;
        if outcome.next == NextStep::Delivered {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(&claim.endpoint_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2)
                 WHERE id = $1",
            )
            .bind(&claim.endpoint_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let disabled = sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $3, updated_at = $2
                 WHERE id = $1 AND enabled = 1 AND failing_since <= $2 - $4",
            )
            .bind(&claim.endpoint_id)
            .bind(now)
            .bind(disable_reason)
            .bind(disable_after_ms)
            .execute(&mut *tx)
            .await?;
            if disabled.rows_affected() == 1 {
                recorded = Recorded::EndpointDisabled;
            }
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// The endpoint's deliveries, newest first, those older than `before_seq` when given.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: &str,
        limit: i64,
        before_seq: Option<i64>,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE endpoint_id = $1 AND ($2 IS NULL OR seq < $2)
             ORDER BY seq DESC LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(endpoint_id)
            .bind(before_seq)
            .bind(limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    /// The attempts of the endpoint's deliveries from `min_seq` on, oldest first.
    pub async fn webhook_attempts(
        &self,
        endpoint_id: &str,
        min_seq: i64,
        max_seq: i64,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        sqlx::query(
            "SELECT a.delivery_id, a.attempt, a.status_code, a.error, a.duration_ms, a.created_at
             FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
             WHERE d.endpoint_id = $1 AND d.seq >= $2 AND d.seq <= $3
             ORDER BY a.attempt",
        )
        .bind(endpoint_id)
        .bind(min_seq)
        .bind(max_seq)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRow {
                delivery_id: col(r, "delivery_id")?,
                attempt: col(r, "attempt")?,
                status_code: col(r, "status_code")?,
                error: col(r, "error")?,
                duration_ms: col(r, "duration_ms")?,
                created_at: col(r, "created_at")?,
            })
        })
        .collect()
    }

    /// Queues a fresh round of attempts for a delivery of the endpoint, due now.
    pub async fn resend_webhook_delivery(
        &self,
        endpoint_id: &str,
        delivery_id: &str,
        now: i64,
    ) -> Result<Resend, StoreError> {
        let sql = format!(
            "UPDATE webhook_deliveries SET state = 'pending', round_attempts = 0,
                 next_attempt_at = $3, updated_at = $3
             WHERE endpoint_id = $1 AND id = $2 AND state <> 'delivering'
             RETURNING {DELIVERY_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(endpoint_id)
            .bind(delivery_id)
            .bind(now)
            .fetch_optional_on(self, Durability::Full)
            .await?;
        if let Some(row) = row {
            return Ok(Resend::Queued(Box::new(delivery_from_row(&row)?)));
        }
        let exists =
            sqlx::query("SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2")
                .bind(endpoint_id)
                .bind(delivery_id)
                .fetch_optional(self.reader())
                .await?;
        Ok(if exists.is_some() {
            Resend::InFlight
        } else {
            Resend::NotFound
        })
    }
}
