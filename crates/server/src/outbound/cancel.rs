//! Cancelling a send that has not left: a scheduled message, or one still waiting for its
//! number's budget. Once the sender has marked a message as leaving, Meta may have it, so it can
//! no longer be called back.

use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::store::StoreError;
use crate::store::messages::{MessageError, MessageRow};

/// The error title a cancelled message carries.
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("message not found")]
    NotFound,
    #[error(
        "the message has already left for Meta (it is {status}); a message Meta may have cannot be called back"
    )]
    AlreadyLeft { status: String },
    #[error("only messages you send can be cancelled; this one the customer sent")]
    Inbound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Cancels the tenant's queued message `id` and answers it as it now is (failed, `cancelled`).
pub async fn cancel(
    state: &AppState,
    tenant_id: &str,
    id: &str,
) -> Result<MessageRow, CancelError> {
    let store = &state.store;
    let error = MessageError {
        code: None,
        title: Some(CANCELLED.into()),
        message: Some("Cancelled before it was sent; it was not sent.".into()),
    };
    let changed = store
        .cancel_queued_message(tenant_id, id, &error, now_ms())
        .await?;
    let current = store
        .message(tenant_id, id)
        .await?
        .ok_or(CancelError::NotFound)?;
    match changed {
        Some(change) => {
            metrics::counter!("wagate_messages_cancelled_total").increment(1);
            super::sender::publish_status(state, &change, None, Some(&error));
            Ok(current)
        }
        None if current.direction != crate::store::messages::DIRECTION_OUTBOUND => {
            Err(CancelError::Inbound)
        }
        // Cancelling twice answers the cancelled message again.
        None if current.error_title.as_deref() == Some(CANCELLED) => Ok(current),
        None => Err(CancelError::AlreadyLeft {
            status: if current.status == "queued" {
                "on its way".to_owned()
            } else {
                current.status
            },
        }),
    }
}
