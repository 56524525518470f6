//! What a customer's message does to sequences: an opt-out word stops all of the contact's
//! enrollments on the number; any other message stops those whose sequence stops on reply and
//! resumes those waiting for the window; a contact's first message enrolls them in the
//! sequences that enroll on first message.
//!
//! The inbound processor queues this job with the message (one per message, so a redelivered
//! webhook does nothing twice), only for connections that use sequences.

use serde::{Deserialize, Serialize};

use crate::app::state::AppState;
use crate::assistant::reply::customer_text;
use crate::clock::now_ms;
use crate::jobs::JobFailure;
use crate::store::jobs::{Job, NewJob};
use crate::store::messages::DIRECTION_INBOUND;
use crate::store::sequences::{
    Advance, NewSequenceEvent, STATE_ACTIVE, STATE_WAITING, event, stop_reason,
};
use crate::store::{Conn, Store, StoreError};

pub const INBOUND_JOB: &str = "sequence_inbound";

#[derive(Debug, Serialize, Deserialize)]
struct InboundPayload {
    message_id: String,
}

/// Queues the sequence work of a stored customer message, inside the caller's transaction.
pub async fn enqueue_inbound(
    store: &Store,
    conn: &mut Conn,
    tenant_id: &str,
    message_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&InboundPayload {
        message_id: message_id.to_owned(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let unique_key = format!("{INBOUND_JOB}:{message_id}");
    store
        .enqueue_job(
            conn,
            &NewJob {
                kind: INBOUND_JOB,
                payload: &payload,
                tenant_id: Some(tenant_id),
                unique_key: Some(&unique_key),
                run_at: now,
                max_attempts: 8,
                now,
            },
        )
        .await
}

fn retry(error: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(error.to_string())
}

pub async fn run_inbound(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: InboundPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    let store = &state.store;
    let Some(message) = store
        .message_by_id(&payload.message_id)
        .await
        .map_err(retry)?
        .filter(|m| {
            Some(m.tenant_id.as_str()) == job.tenant_id.as_deref()
                && m.direction == DIRECTION_INBOUND
        })
    else {
        return Ok(());
    };
    let sequences = store
        .sequences_of_connection(&message.connection_id)
        .await
        .map_err(retry)?;
    let live: Vec<_> = store
        .enrollments_of_contact(&message.connection_id, &message.contact_id)
        .await
        .map_err(retry)?
        .into_iter()
        // Enrolled after this message was stored: it is not a reply to them.
        .filter(|e| e.is_live() && e.created_at <= message.created_at)
        .collect();
    let said = customer_text(&message);
    let extra_words: Vec<String> = sequences.iter().flat_map(super::opt_out_words_of).collect();
    let opted_out = said
        .as_deref()
        .is_some_and(|said| super::opt_out::is_opt_out(said, &extra_words));

    let now = now_ms();
    let mut tx = store.begin().await.map_err(retry)?;
    let mut woke = false;
    for enrollment in &live {
        let stop_on_reply = sequences
            .iter()
            .find(|s| s.id == enrollment.sequence_id)
            .is_none_or(|s| s.stop_on_reply);
        if opted_out {
            super::stop_in(store, &mut tx, enrollment, stop_reason::OPTED_OUT, now)
                .await
                .map_err(retry)?;
        } else if stop_on_reply {
            super::stop_in(store, &mut tx, enrollment, stop_reason::REPLIED, now)
                .await
                .map_err(retry)?;
        } else if enrollment.state == STATE_WAITING {
            // The customer wrote: the window is open again and the waiting step can go.
            if store
                .advance_enrollment(
                    &mut tx,
                    &enrollment.id,
                    &Advance {
                        from: enrollment.step,
                        to: enrollment.step,
                        state: STATE_ACTIVE,
                        next_run_at: Some(now),
                    },
                    now,
                )
                .await
                .map_err(retry)?
            {
                store
                    .insert_sequence_event(
                        &mut tx,
                        &NewSequenceEvent {
                            enrollment_id: &enrollment.id,
                            step: Some(enrollment.step),
                            event: event::RESUMED,
                            message_id: Some(&message.id),
                            detail: Some("the customer wrote; the window is open"),
                            now,
                        },
                    )
                    .await
                    .map_err(retry)?;
                super::scheduler::enqueue_step(
                    store,
                    &mut tx,
                    enrollment,
                    enrollment.step,
                    now,
                    Some(&message.id),
                    now,
                )
                .await
                .map_err(retry)?;
                woke = true;
            }
        }
    }
    if !opted_out
        && sequences.iter().any(|s| s.enroll_on_first_message)
        && !store
            .earlier_inbound_exists(&message.conversation_id, message.created_at, &message.id)
            .await
            .map_err(retry)?
    {
        for sequence in sequences.iter().filter(|s| s.enroll_on_first_message) {
            // A savepoint per sequence: one the contact is already in must not undo the others.
            let mut savepoint = sqlx::Acquire::begin(&mut *tx).await.map_err(retry)?;
            match super::enroll_in(
                store,
                &mut savepoint,
                sequence,
                &message.contact_id,
                &message.contact_wa_id,
                super::enrolled_by::FIRST_MESSAGE,
                now,
            )
            .await
            {
                Ok(_) => {
                    savepoint.commit().await.map_err(retry)?;
                    woke = true;
                }
                Err(error) if error.is_unique_violation() => {
                    savepoint.rollback().await.map_err(retry)?;
                }
                Err(error) => return Err(retry(error)),
            }
        }
    }
    tx.commit().await.map_err(retry)?;
    if woke {
        state.jobs_wakeup.notify_one();
    }
    Ok(())
}
