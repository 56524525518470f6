//! Media in and out: files customers send are fetched from Meta after their message is stored
//! (a job with retries, so a failed fetch never loses or holds up the message), checked against
//! Meta's hash and kept by content hash; files the tenant uploads are checked against Meta's
//! limits per kind, uploaded to Meta and kept too, so the dashboard can show both.

pub mod fetch;
pub mod kinds;
pub mod staging;
pub mod storage;
pub mod upload;

pub use kinds::MediaKind;
pub use storage::{LocalDirStorage, MediaStorage};

/// Message types whose object names a file.
pub fn is_media_type(message_type: &str) -> bool {
    MediaKind::parse(message_type).is_some()
}
