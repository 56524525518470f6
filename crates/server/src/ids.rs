//! Identifiers: time-ordered UUIDs for rows, and random tokens for what must not be guessed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// A new row id: UUID v7, so ids sort roughly by creation time and index pages stay warm.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `bytes` random bytes from the OS generator, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Whether a path segment could be an id we issued (used to answer 404 early on garbage).
pub fn looks_like_id(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok()
}
