//! Credentials people and programs present: passwords (Argon2id) and API keys (stored hashed).

pub mod api_key;
pub mod password;
pub mod session;

/// Owners and admins manage a tenant's numbers, templates, users and settings; agents read and
/// answer conversations.
pub fn role_manages(role: &str) -> bool {
    matches!(role, "owner" | "admin")
}
