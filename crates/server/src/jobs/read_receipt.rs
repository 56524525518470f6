//! Telling Meta the customer's message was read (the blue ticks), after the conversation is
//! marked read in the inbox. A job, so a slow or failing Graph call never holds up the API.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::JobFailure;
use crate::api::error::ApiError;
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::store::connections::STATUS_NEEDS_REAUTH;
use crate::store::jobs::{Job, NewJob};
use crate::vault::SecretSlot;
use cloudapi::error::ErrorClass;

pub const KIND: &str = "read_receipt";

#[derive(Serialize, Deserialize)]
struct Payload {
    connection_id: String,
    wamid: String,
    /// Also show the customer that an answer is being typed (for up to 25 seconds).
    #[serde(default)]
    typing: bool,
}

/// Queues a read receipt for `wamid` (with `typing`, also the typing indicator).
pub async fn enqueue(
    state: &AppState,
    tenant_id: &str,
    connection_id: &str,
    wamid: &str,
    typing: bool,
) -> Result<(), ApiError> {
    let payload = serde_json::to_string(&Payload {
        connection_id: connection_id.to_owned(),
        wamid: wamid.to_owned(),
        typing,
    })
    .map_err(ApiError::internal)?;
    let now = now_ms();
    // One receipt per message; a typing indicator may be repeated, but not more than every 10 s.
    let unique_key = if typing {
        format!("typing:{connection_id}:{wamid}:{}", now / 10_000)
    } else {
        format!("{KIND}:{connection_id}:{wamid}")
    };
    let mut tx = state.store.begin().await?;
    state
        .store
        .enqueue_job(
            &mut tx,
            &NewJob {
                kind: KIND,
                payload: &payload,
                tenant_id: Some(tenant_id),
                unique_key: Some(&unique_key),
                run_at: now,
                max_attempts: 5,
                now,
            },
        )
        .await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.jobs_wakeup.notify_one();
    Ok(())
}

pub async fn run(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    let connection = state
        .store
        .connection_by_id(&payload.connection_id)
        .await
        .map_err(|e| JobFailure::Retry(e.to_string()))?
        .ok_or_else(|| JobFailure::Permanent("the connection no longer exists".into()))?;
    let Some(sealed) = connection.access_token.as_deref() else {
        return Err(JobFailure::Permanent(
            "the connection is disconnected".into(),
        ));
    };
    let token: SecretString = state
        .vault
        .open(
            SecretSlot::new("connections", "access_token", &connection.id),
            sealed,
        )
        .map_err(|e| JobFailure::Permanent(e.to_string()))?;
    match state
        .graph
        .mark_read(
            &token,
            &connection.phone_number_id,
            &payload.wamid,
            payload.typing,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => match error.class() {
            ErrorClass::CredentialsRejected => {
                let reason = error.to_string();
                let _ = state
                    .store
                    .set_connection_status(
                        &connection.id,
                        STATUS_NEEDS_REAUTH,
                        Some(&reason),
                        now_ms(),
                    )
                    .await;
                Err(JobFailure::Permanent(reason))
            }
            class if class.is_retryable() => Err(JobFailure::Retry(error.to_string())),
            _ => Err(JobFailure::Permanent(error.to_string())),
        },
    }
}
