//! The step job: sends one step of one enrollment when it is due, then queues the next.
//!
//! The job for step N is written in the transaction that moved the enrollment to step N, so the
//! job table is the schedule and it survives restarts. A run sends through `outbound::enqueue`
//! with the key `sequence:<enrollment>:<step>` and then moves the enrollment on only from step N:
//! a run that crashed after queueing the message finds it by its key instead of sending again.

use serde::{Deserialize, Serialize};

use super::steps::{OutsideWindow, Step};
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::jobs::JobFailure;
use crate::outbound::enqueue::{Outbox, SendError, SendRequest, SentBy, enqueue};
use crate::outbound::validate::ValidatedMessage;
use crate::phone::PhoneNumber;
use crate::store::jobs::{Job, NewJob};
use crate::store::sequences::{
    Advance, EnrollmentRow, NewSequenceEvent, STATE_ACTIVE, STATE_COMPLETED, STATE_WAITING, event,
    stop_reason,
};
use crate::store::{Conn, Store, StoreError};

pub const STEP_JOB: &str = "sequence_step";

#[derive(Debug, Serialize, Deserialize)]
struct StepPayload {
    enrollment_id: String,
    step: i64,
}

/// Queues the job that runs `step` of `enrollment` at `run_at`, inside the caller's transaction.
/// `resumed_by` names what woke a waiting step (each wake-up is its own job).
pub async fn enqueue_step(
    store: &Store,
    conn: &mut Conn,
    enrollment: &EnrollmentRow,
    step: i64,
    run_at: i64,
    resumed_by: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&StepPayload {
        enrollment_id: enrollment.id.clone(),
        step,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let unique_key = match resumed_by {
        None => format!("{STEP_JOB}:{}:{step}", enrollment.id),
        Some(by) => format!("{STEP_JOB}:{}:{step}:after:{by}", enrollment.id),
    };
    store
        .enqueue_job(
            conn,
            &NewJob {
                kind: STEP_JOB,
                payload: &payload,
                tenant_id: Some(&enrollment.tenant_id),
                unique_key: Some(&unique_key),
                run_at,
                max_attempts: 8,
                now,
            },
        )
        .await
}

fn retry(error: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(error.to_string())
}

pub async fn run_step(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: StepPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    let store = &state.store;
    let Some(enrollment) = store
        .enrollment_by_id(&payload.enrollment_id)
        .await
        .map_err(retry)?
        .filter(|e| Some(e.tenant_id.as_str()) == job.tenant_id.as_deref())
    else {
        return Ok(());
    };
    // Stopped, finished, waiting for the window, or already past this step: nothing to do.
    if enrollment.state != STATE_ACTIVE || enrollment.step != payload.step {
        return Ok(());
    }
    let Some(sequence) = store
        .sequence(&enrollment.tenant_id, &enrollment.sequence_id)
        .await
        .map_err(retry)?
    else {
        return Ok(());
    };
    let steps = super::steps_of(&sequence).map_err(|e| JobFailure::Permanent(e.to_string()))?;
    let index = usize::try_from(payload.step).unwrap_or(usize::MAX);
    let Some(step) = steps.get(index) else {
        // The sequence was shortened below this enrollment's step: it is done.
        return finish(
            store,
            &enrollment,
            &steps,
            None,
            event::COMPLETED,
            None,
            None,
        )
        .await;
    };
    let message = match step.message() {
        Ok(message) => message,
        Err(problems) => {
            return fail(store, &enrollment, &problems.summary()).await;
        }
    };
    match send(state, &enrollment, message).await {
        Ok(message_id) => {
            finish(
                store,
                &enrollment,
                &steps,
                Some(&message_id),
                event::SENT,
                None,
                Some(state.jobs_wakeup.as_ref()),
            )
            .await
        }
        Err(SendError::OutsideServiceWindow { .. }) => {
            outside_window(state, &enrollment, &steps, step).await
        }
        Err(error) => send_failed(store, &enrollment, error).await,
    }
}

/// The step is free text and the customer's window is closed: what the step says to do.
async fn outside_window(
    state: &AppState,
    enrollment: &EnrollmentRow,
    steps: &[Step],
    step: &Step,
) -> Result<(), JobFailure> {
    let store = &state.store;
    match step.outside_window {
        OutsideWindow::FallbackTemplate => {
            let Some(fallback) = step.fallback() else {
                return fail(store, enrollment, "the step has no fallback template").await;
            };
            let fallback = match fallback {
                Ok(fallback) => fallback,
                Err(problems) => return fail(store, enrollment, &problems.summary()).await,
            };
            match send(state, enrollment, fallback).await {
                Ok(message_id) => {
                    finish(
                        store,
                        enrollment,
                        steps,
                        Some(&message_id),
                        event::SENT,
                        Some("the window was closed: sent the fallback template"),
                        Some(state.jobs_wakeup.as_ref()),
                    )
                    .await
                }
                Err(error) => send_failed(store, enrollment, error).await,
            }
        }
        OutsideWindow::Skip => {
            finish(
                store,
                enrollment,
                steps,
                None,
                event::SKIPPED,
                Some("the window was closed"),
                Some(state.jobs_wakeup.as_ref()),
            )
            .await
        }
        OutsideWindow::Wait => {
            let now = now_ms();
            let mut tx = store.begin().await.map_err(retry)?;
            if store
                .advance_enrollment(
                    &mut tx,
                    &enrollment.id,
                    &Advance {
                        from: enrollment.step,
                        to: enrollment.step,
                        state: STATE_WAITING,
                        next_run_at: None,
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
                            event: event::WAITING,
                            message_id: None,
                            detail: Some(
                                "the window is closed; the step is sent when the customer writes",
                            ),
                            now,
                        },
                    )
                    .await
                    .map_err(retry)?;
            }
            tx.commit().await.map_err(retry)
        }
    }
}

/// Queues the step's message (or finds the one an earlier run of this step queued).
async fn send(
    state: &AppState,
    enrollment: &EnrollmentRow,
    message: ValidatedMessage,
) -> Result<String, SendError> {
    let to = PhoneNumber::parse(&enrollment.contact_wa_id).map_err(|e| {
        let mut fields = crate::validation::FieldErrors::new();
        fields.add("to", e.to_string());
        SendError::Invalid(fields)
    })?;
    let request = SendRequest {
        connection_id: Some(enrollment.connection_id.clone()),
        to,
        message,
        reply_to: None,
        idempotency_key: Some(format!("sequence:{}:{}", enrollment.id, enrollment.step)),
        recipient_identity_key_hash: None,
        sent_by: SentBy::Automation,
        send_at: None,
    };
    let enqueued = enqueue(&Outbox::from_state(state), &enrollment.tenant_id, request).await?;
    if !enqueued.replayed {
        metrics::counter!("wagate_sequence_steps_sent_total").increment(1);
    }
    Ok(enqueued.message.id)
}

/// A send that could not be queued: retried when it may pass later, else the enrollment stops
/// with Meta's or our reason in its history.
async fn send_failed(
    store: &Store,
    enrollment: &EnrollmentRow,
    error: SendError,
) -> Result<(), JobFailure> {
    match error {
        SendError::Store(error) => Err(retry(error)),
        // The tenant can fix these (new token, Meta reachable again): try again later.
        SendError::ConnectionNeedsReauth | SendError::TemplatesUnavailable(_) => Err(retry(error)),
        other => fail(store, enrollment, &other.to_string()).await,
    }
}

/// Stops the enrollment because its step cannot be sent.
async fn fail(store: &Store, enrollment: &EnrollmentRow, reason: &str) -> Result<(), JobFailure> {
    let now = now_ms();
    let mut tx = store.begin().await.map_err(retry)?;
    store
        .insert_sequence_event(
            &mut tx,
            &NewSequenceEvent {
                enrollment_id: &enrollment.id,
                step: Some(enrollment.step),
                event: event::FAILED,
                message_id: None,
                detail: Some(reason),
                now,
            },
        )
        .await
        .map_err(retry)?;
    super::stop_in(store, &mut tx, enrollment, stop_reason::SEND_FAILED, now)
        .await
        .map_err(retry)?;
    tx.commit().await.map_err(retry)?;
    metrics::counter!("wagate_sequence_steps_failed_total").increment(1);
    tracing::warn!(enrollment_id = %enrollment.id, reason, "a sequence step could not be sent; the enrollment stopped");
    Ok(())
}

/// Records what the step did and moves the enrollment to the next step (queueing its job) or
/// to completed, in one transaction, only if it is still at this step.
async fn finish(
    store: &Store,
    enrollment: &EnrollmentRow,
    steps: &[Step],
    message_id: Option<&str>,
    what: &str,
    detail: Option<&str>,
    wakeup: Option<&tokio::sync::Notify>,
) -> Result<(), JobFailure> {
    let now = now_ms();
    let next = enrollment.step + 1;
    let next_step = usize::try_from(next).ok().and_then(|i| steps.get(i));
    let mut tx = store.begin().await.map_err(retry)?;
    let (state, next_run_at) = match next_step {
        Some(step) => (STATE_ACTIVE, Some(now + step.delay_seconds * 1000)),
        None => (STATE_COMPLETED, None),
    };
    let moved = store
        .advance_enrollment(
            &mut tx,
            &enrollment.id,
            &Advance {
                from: enrollment.step,
                to: next,
                state,
                next_run_at,
            },
            now,
        )
        .await
        .map_err(retry)?;
    if !moved {
        // Stopped or moved on while this ran; the message (if any) was the step's one send.
        return Ok(());
    }
    if what != event::COMPLETED {
        store
            .insert_sequence_event(
                &mut tx,
                &NewSequenceEvent {
                    enrollment_id: &enrollment.id,
                    step: Some(enrollment.step),
                    event: what,
                    message_id,
                    detail,
                    now,
                },
            )
            .await
            .map_err(retry)?;
    }
    match next_run_at {
        Some(run_at) => {
            enqueue_step(store, &mut tx, enrollment, next, run_at, None, now)
                .await
                .map_err(retry)?;
        }
        None => {
            store
                .insert_sequence_event(
                    &mut tx,
                    &NewSequenceEvent {
                        enrollment_id: &enrollment.id,
                        step: None,
                        event: event::COMPLETED,
                        message_id: None,
                        detail: None,
                        now,
                    },
                )
                .await
                .map_err(retry)?;
        }
    }
    tx.commit().await.map_err(retry)?;
    if let Some(wakeup) = wakeup {
        wakeup.notify_one();
    }
    Ok(())
}
