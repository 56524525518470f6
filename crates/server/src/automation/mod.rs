//! Sequences: timed follow-ups. A tenant defines a sequence once (ordered steps, each a delay and
//! a message) and enrolls contacts in it by the API, from the dashboard, or automatically on a
//! contact's first message. Enrollments stop when the contact replies (if the sequence says so),
//! writes an opt-out word, or by hand.
//!
//! Everything runs off the job table: each step of each enrollment is one job, queued in the
//! transaction that enrolled the contact or ran the step before, so a restart loses nothing.
//! A step's message goes through the one outbound path with the idempotency key
//! `sequence:<enrollment>:<step>`, and the enrollment only moves on from the step it is at, so a
//! step is never sent twice however often its job runs.

pub mod inbound;
pub mod opt_out;
pub mod scheduler;
pub mod steps;

use serde_json::Value;

use crate::clock::now_ms;
use crate::phone::PhoneNumber;
use crate::store::connections::STATUS_DISCONNECTED;
use crate::store::conversations::ContactUpsert;
use crate::store::sequences::{
    EnrollmentRow, NewSequenceEvent, STATE_ACTIVE, SequenceRow, event, stop_reason,
};
use crate::store::{Conn, Store, StoreError};
use crate::validation::FieldErrors;
use steps::{SequenceInput, Step};

/// Who put a contact in a sequence.
pub mod enrolled_by {
    pub const API: &str = "api";
    pub const DASHBOARD: &str = "dashboard";
    pub const FIRST_MESSAGE: &str = "first_message";
}

#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error("sequence not found")]
    NotFound,
    #[error("enrollment not found")]
    EnrollmentNotFound,
    #[error("contact not found")]
    ContactNotFound,
    #[error("connection not found: name one of this tenant's connected numbers")]
    ConnectionNotFound,
    #[error("connection_id is required: this tenant has {0} connected numbers")]
    ConnectionAmbiguous(usize),
    #[error("this tenant has no connected number; connect one first")]
    NoConnection,
    #[error("the contact is already in this sequence (enrollment {0})")]
    AlreadyEnrolled(String),
    #[error(
        "the contact opted out of this business's sequences; they are not enrolled again unless they write to you first"
    )]
    OptedOut,
    #[error("the enrollment already ended ({0})")]
    AlreadyEnded(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whom to enroll: a contact of the tenant, or a phone number (the contact is created when new).
#[derive(Debug, Clone)]
pub enum EnrollTarget {
    Contact(String),
    Phone(PhoneNumber),
}

/// Sequence CRUD and enrollment, for the API and the dashboard.
pub struct Sequences<'a> {
    pub store: &'a Store,
    pub jobs_wakeup: &'a std::sync::Arc<tokio::sync::Notify>,
}

impl<'a> Sequences<'a> {
    pub fn from_state(state: &'a crate::app::state::AppState) -> Self {
        Self {
            store: &state.store,
            jobs_wakeup: &state.jobs_wakeup,
        }
    }

    pub async fn create(
        &self,
        tenant_id: &str,
        body: &Value,
    ) -> Result<SequenceRow, SequenceError> {
        let input = SequenceInput::parse(body, true).map_err(SequenceError::Invalid)?;
        let connection_id = self
            .connection_for(tenant_id, input.connection_id.as_deref())
            .await?;
        let now = now_ms();
        let row = SequenceRow {
            id: crate::ids::new_id(),
            tenant_id: tenant_id.to_owned(),
            connection_id,
            name: input.name.unwrap_or_default(),
            steps: stored_steps(input.steps.as_deref().unwrap_or_default())?,
            enroll_on_first_message: input.enroll_on_first_message.unwrap_or(false),
            stop_on_reply: input.stop_on_reply.unwrap_or(true),
            opt_out_words: stored_words(input.opt_out_words.as_deref().unwrap_or_default())?,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_sequence(&row).await?;
        Ok(row)
    }

    /// Changes the fields given. New steps apply to live enrollments from the step each is at.
    pub async fn update(
        &self,
        tenant_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<SequenceRow, SequenceError> {
        let input = SequenceInput::parse(body, false).map_err(SequenceError::Invalid)?;
        let mut row = self.get(tenant_id, id).await?;
        if let Some(connection_id) = input.connection_id.as_deref() {
            row.connection_id = self.connection_for(tenant_id, Some(connection_id)).await?;
        }
        if let Some(name) = input.name {
            row.name = name;
        }
        if let Some(steps) = input.steps.as_deref() {
            row.steps = stored_steps(steps)?;
        }
        if let Some(on) = input.enroll_on_first_message {
            row.enroll_on_first_message = on;
        }
        if let Some(on) = input.stop_on_reply {
            row.stop_on_reply = on;
        }
        if let Some(words) = input.opt_out_words.as_deref() {
            row.opt_out_words = stored_words(words)?;
        }
        row.updated_at = now_ms();
        if !self.store.update_sequence(&row).await? {
            return Err(SequenceError::NotFound);
        }
        Ok(row)
    }

    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<SequenceRow, SequenceError> {
        if !crate::ids::looks_like_id(id) {
            return Err(SequenceError::NotFound);
        }
        self.store
            .sequence(tenant_id, id)
            .await?
            .ok_or(SequenceError::NotFound)
    }

    /// Deletes a sequence; its live enrollments stop, and every enrollment keeps its history.
    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<(), SequenceError> {
        if !crate::ids::looks_like_id(id) {
            return Err(SequenceError::NotFound);
        }
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let stopped = self
            .store
            .delete_sequence(&mut tx, tenant_id, id, now)
            .await?
            .ok_or(SequenceError::NotFound)?;
        for enrollment_id in &stopped {
            self.store
                .insert_sequence_event(
                    &mut tx,
                    &NewSequenceEvent {
                        enrollment_id,
                        step: None,
                        event: event::STOPPED,
                        message_id: None,
                        detail: Some(stop_reason::SEQUENCE_DELETED),
                        now,
                    },
                )
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    pub async fn enroll(
        &self,
        tenant_id: &str,
        sequence_id: &str,
        target: EnrollTarget,
        by: &'static str,
    ) -> Result<EnrollmentRow, SequenceError> {
        let sequence = self.get(tenant_id, sequence_id).await?;
        let connection = self
            .store
            .connection(tenant_id, &sequence.connection_id)
            .await?
            .filter(|c| c.status != STATUS_DISCONNECTED)
            .ok_or(SequenceError::ConnectionNotFound)?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let (contact_id, wa_id) = match target {
            EnrollTarget::Contact(id) => {
                let contact = if crate::ids::looks_like_id(&id) {
                    self.store.contact(tenant_id, &id).await?
                } else {
                    None
                };
                let contact = contact.ok_or(SequenceError::ContactNotFound)?;
                (contact.id, contact.wa_id)
            }
            EnrollTarget::Phone(phone) => {
                let id = self
                    .store
                    .upsert_contacts(
                        &mut tx,
                        &[ContactUpsert {
                            tenant_id,
                            wa_id: phone.as_str(),
                            name: None,
                            source: crate::contacts::source::API,
                        }],
                        now,
                    )
                    .await?
                    .pop()
                    .map(|(_, id)| id)
                    .ok_or_else(|| {
                        StoreError::Corrupt("a contact upsert returned no row".into())
                    })?;
                (id, phone.as_str().to_owned())
            }
        };
        if self
            .store
            .contact_opted_out_of_sequences(tenant_id, &contact_id)
            .await?
        {
            return Err(SequenceError::OptedOut);
        }
        let enrolled =
            enroll_in(self.store, &mut tx, &sequence, &contact_id, &wa_id, by, now).await;
        match enrolled {
            Ok(row) => {
                tx.commit().await.map_err(StoreError::from)?;
                self.jobs_wakeup.notify_one();
                tracing::info!(sequence_id = %sequence.id, enrollment_id = %row.id, connection_id = %connection.id, "contact enrolled");
                Ok(row)
            }
            Err(error) if error.is_unique_violation() => {
                drop(tx);
                let existing = self
                    .store
                    .enrollments_of_contact(&sequence.connection_id, &contact_id)
                    .await?
                    .into_iter()
                    .find(|e| e.sequence_id == sequence.id && e.is_live())
                    .map(|e| e.id)
                    .unwrap_or_default();
                Err(SequenceError::AlreadyEnrolled(existing))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Stops an enrollment by hand.
    pub async fn stop(
        &self,
        tenant_id: &str,
        enrollment_id: &str,
    ) -> Result<EnrollmentRow, SequenceError> {
        let enrollment = self.enrollment(tenant_id, enrollment_id).await?;
        if !enrollment.is_live() {
            return Err(SequenceError::AlreadyEnded(enrollment.state));
        }
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        stop_in(self.store, &mut tx, &enrollment, stop_reason::BY_HAND, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.enrollment(tenant_id, enrollment_id).await
    }

    pub async fn enrollment(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<EnrollmentRow, SequenceError> {
        if !crate::ids::looks_like_id(id) {
            return Err(SequenceError::EnrollmentNotFound);
        }
        self.store
            .enrollment(tenant_id, id)
            .await?
            .ok_or(SequenceError::EnrollmentNotFound)
    }

    /// The connection a sequence sends from: the one named, or the tenant's only live one.
    async fn connection_for(
        &self,
        tenant_id: &str,
        named: Option<&str>,
    ) -> Result<String, SequenceError> {
        let live: Vec<_> = self
            .store
            .connections(tenant_id)
            .await?
            .into_iter()
            .filter(|c| c.status != STATUS_DISCONNECTED)
            .collect();
        match named {
            Some(id) => live
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.id.clone())
                .ok_or(SequenceError::ConnectionNotFound),
            None => match live.as_slice() {
                [] => Err(SequenceError::NoConnection),
                [only] => Ok(only.id.clone()),
                many => Err(SequenceError::ConnectionAmbiguous(many.len())),
            },
        }
    }
}

fn stored_steps(steps: &[Step]) -> Result<String, StoreError> {
    serde_json::to_string(steps).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn stored_words(words: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(words).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The sequence's steps as stored.
pub fn steps_of(sequence: &SequenceRow) -> Result<Vec<Step>, StoreError> {
    steps::from_stored(&sequence.steps)
        .map_err(|e| StoreError::Corrupt(format!("sequences.steps of {}: {e}", sequence.id)))
}

/// The sequence's own opt-out words.
pub fn opt_out_words_of(sequence: &SequenceRow) -> Vec<String> {
    serde_json::from_str(&sequence.opt_out_words).unwrap_or_default()
}

/// Enrolls a contact inside the caller's transaction: the enrollment, its first history entry
/// and the job of its first step are written together.
pub async fn enroll_in(
    store: &Store,
    conn: &mut Conn,
    sequence: &SequenceRow,
    contact_id: &str,
    wa_id: &str,
    by: &str,
    now: i64,
) -> Result<EnrollmentRow, StoreError> {
    let steps = steps_of(sequence)?;
    let first_at = now + steps.first().map_or(0, |s| s.delay_seconds * 1000);
    let row = EnrollmentRow {
        id: crate::ids::new_id(),
        tenant_id: sequence.tenant_id.clone(),
        sequence_id: sequence.id.clone(),
        connection_id: sequence.connection_id.clone(),
        contact_id: contact_id.to_owned(),
        contact_wa_id: wa_id.to_owned(),
        state: STATE_ACTIVE.to_owned(),
        step: 0,
        next_run_at: Some(first_at),
        stopped_reason: None,
        enrolled_by: by.to_owned(),
        created_at: now,
        updated_at: now,
    };
    store.insert_enrollment(conn, &row).await?;
    store
        .insert_sequence_event(
            conn,
            &NewSequenceEvent {
                enrollment_id: &row.id,
                step: None,
                event: event::ENROLLED,
                message_id: None,
                detail: Some(by),
                now,
            },
        )
        .await?;
    scheduler::enqueue_step(store, conn, &row, 0, first_at, None, now).await?;
    Ok(row)
}

/// Stops a live enrollment inside the caller's transaction, with its history entry.
pub async fn stop_in(
    store: &Store,
    conn: &mut Conn,
    enrollment: &EnrollmentRow,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    if !store
        .stop_enrollment(conn, &enrollment.id, reason, now)
        .await?
    {
        return Ok(false);
    }
    store
        .insert_sequence_event(
            conn,
            &NewSequenceEvent {
                enrollment_id: &enrollment.id,
                step: Some(enrollment.step),
                event: event::STOPPED,
                message_id: None,
                detail: Some(reason),
                now,
            },
        )
        .await?;
    Ok(true)
}
