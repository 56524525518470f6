//! Outbound: every send (the API, the dashboard, the assistant, automation) goes through
//! [`enqueue`], which validates the message against Meta's rules, checks the 24-hour service
//! window, and writes the message (status `queued`) and its send job in one transaction. The
//! [`sender`] then takes the job, waits for the number's budget, calls the Graph API and records
//! what Meta answered.

pub mod cancel;
pub mod enqueue;
pub mod sender;
pub mod validate;

pub use enqueue::{Enqueued, SendError, SendRequest, enqueue};

/// Prefix of the `biz_opaque_callback_data` wagate puts on every send, followed by the message id:
/// Meta echoes it in the message's status webhooks, which ties them to the message even when the
/// Graph answer (and so the wamid) was lost.
pub const CALLBACK_PREFIX: &str = "wg:";
