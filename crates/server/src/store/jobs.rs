//! The job table: durable background work with leases, backoff and dead letters.
//!
//! A job is claimed with a lease; a worker that crashes lets the lease run out and the job is
//! claimed again. Attempts are counted at claim time, so a job that crashes its worker every time
//! still reaches its limit and stops.

use super::{Backend, Conn, Durability, Store, StoreError, WriteQuery, col};

pub const STATE_READY: &str = "ready";
pub const STATE_RUNNING: &str = "running";
pub const STATE_DONE: &str = "done";
pub const STATE_DEAD: &str = "dead";

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    /// JSON text.
    pub payload: &'a str,
    pub tenant_id: Option<&'a str>,
    /// A job with the same key is not enqueued twice.
    pub unique_key: Option<&'a str>,
    pub run_at: i64,
    pub max_attempts: i64,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub tenant_id: Option<String>,
    /// Including the current one.
    pub attempts: i64,
    pub max_attempts: i64,
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub run_at: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Adds a job inside the caller's transaction; `false` when its unique key already exists.
    pub async fn enqueue_job(&self, conn: &mut Conn, job: &NewJob<'_>) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO jobs (id, kind, payload, tenant_id, unique_key, state, attempts,
                 max_attempts, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'ready', 0, $6, $7, $8, $8)
             ON CONFLICT (unique_key) DO NOTHING",
        )
        .bind(crate::ids::new_id())
        .bind(job.kind)
        .bind(job.payload)
        .bind(job.tenant_id)
        .bind(job.unique_key)
        .bind(job.max_attempts)
        .bind(job.run_at)
        .bind(job.now)
        .execute(&mut *conn)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Claims up to `limit` due jobs (and jobs whose lease ran out) for `worker`.
    pub async fn claim_due_jobs(
        &self,
        worker: &str,
        limit: i64,
        lease_ms: i64,
        now: i64,
    ) -> Result<Vec<Job>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "UPDATE jobs SET state = 'running', lease_until = $1 + $2, leased_by = $3,
                     attempts = attempts + 1, updated_at = $1
                 WHERE id IN (SELECT id FROM jobs
                     WHERE (state = 'ready' AND run_at <= $1) OR (state = 'running' AND lease_until < $1)
                     ORDER BY run_at LIMIT $4)
                 RETURNING id, kind, payload, tenant_id, attempts, max_attempts"
            }
            Backend::Postgres => {
                "UPDATE jobs SET state = 'running', lease_until = $1 + $2, leased_by = $3,
                     attempts = attempts + 1, updated_at = $1
                 WHERE id IN (SELECT id FROM jobs
                     WHERE (state = 'ready' AND run_at <= $1) OR (state = 'running' AND lease_until < $1)
                     ORDER BY run_at LIMIT $4 FOR UPDATE SKIP LOCKED)
                 RETURNING id, kind, payload, tenant_id, attempts, max_attempts"
            }
        };
        sqlx::query(sql)
            .bind(now)
            .bind(lease_ms)
            .bind(worker)
            .bind(limit)
            .fetch_all_on(self, Durability::Relaxed)
            .await?
            .iter()
            .map(|r| {
                Ok(Job {
                    id: col(r, "id")?,
                    kind: col(r, "kind")?,
                    payload: col(r, "payload")?,
                    tenant_id: col(r, "tenant_id")?,
                    attempts: col(r, "attempts")?,
                    max_attempts: col(r, "max_attempts")?,
                })
            })
            .collect()
    }

    /// Finishes a job this worker still holds.
    pub async fn complete_job(&self, id: &str, worker: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, updated_at = $3
             WHERE id = $1 AND leased_by = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(now)
        .run_on(self, Durability::Relaxed)
        .await?;
        Ok(())
    }

    /// Puts a job back to run at `run_at`, or retires it as dead when `run_at` is `None`.
    pub async fn reschedule_job(
        &self,
        id: &str,
        worker: &str,
        error: &str,
        run_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = $4, run_at = COALESCE($5, run_at), lease_until = NULL,
                 last_error = $3, updated_at = $6
             WHERE id = $1 AND leased_by = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(error)
        .bind(if run_at.is_some() {
            STATE_READY
        } else {
            STATE_DEAD
        })
        .bind(run_at)
        .bind(now)
        .run_on(self, Durability::Relaxed)
        .await?;
        Ok(())
    }

    /// Puts a job back to run at `run_at` without counting the attempt it just used (it waited
    /// for a budget; it did not fail).
    pub async fn defer_job(
        &self,
        id: &str,
        worker: &str,
        run_at: i64,
        payload: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = 'ready', run_at = $3, lease_until = NULL,
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $4,
                 payload = COALESCE($5, payload)
             WHERE id = $1 AND leased_by = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(run_at)
        .bind(now)
        .bind(payload)
        .run_on(self, Durability::Relaxed)
        .await?;
        Ok(())
    }

    /// Replaces a job's payload (what the next attempt starts from).
    pub async fn set_job_payload(&self, id: &str, payload: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET payload = $2 WHERE id = $1")
            .bind(id)
            .bind(payload)
            .run_on(self, Durability::Relaxed)
            .await?;
        Ok(())
    }

    /// When the next ready job becomes due, if any.
    pub async fn next_job_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(run_at) AS due FROM jobs WHERE state = 'ready'")
            .fetch_one(self.reader())
            .await?;
        col(&row, "due")
    }

    /// Jobs waiting to run now (due and not running), by kind: the queue's depth for `/metrics`.
    pub async fn due_job_counts(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM jobs WHERE state = 'ready' AND run_at <= $1 GROUP BY kind",
        )
        .bind(now)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| Ok((col(r, "kind")?, col(r, "n")?)))
        .collect()
    }

    /// Jobs of a kind (most recent first), for the API and tests.
    pub async fn jobs_of_kind(&self, kind: &str, limit: i64) -> Result<Vec<JobRecord>, StoreError> {
        sqlx::query(
            "SELECT id, kind, state, attempts, run_at, last_error FROM jobs
             WHERE kind = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(kind)
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(JobRecord {
                id: col(r, "id")?,
                kind: col(r, "kind")?,
                state: col(r, "state")?,
                attempts: col(r, "attempts")?,
                run_at: col(r, "run_at")?,
                last_error: col(r, "last_error")?,
            })
        })
        .collect()
    }
}
