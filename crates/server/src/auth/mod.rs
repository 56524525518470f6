//! Credentials people and programs present: passwords (Argon2id) and API keys (stored hashed).

pub mod api_key;
pub mod password;
pub mod session;
