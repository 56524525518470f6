//! Dashboard session tokens: `wgs_` and 43 random characters in an HttpOnly cookie, stored only
//! as a SHA-256 hash. The CSRF token of a session is derived from its token, so it needs no
//! storage and is worthless without the cookie it belongs to.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::random_token;

const PREFIX: &str = "wgs_";

/// How long a sign-in lasts.
pub const LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);

pub struct MintedSession {
    pub token: SecretString,
    pub hash: String,
}

pub fn mint() -> MintedSession {
    let token = format!("{PREFIX}{}", random_token(32));
    MintedSession {
        hash: hash(&token),
        token: SecretString::from(token),
    }
}

/// The stored form of a presented token.
pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

pub fn is_well_formed(presented: &str) -> bool {
    presented.len() == PREFIX.len() + 43
        && presented.starts_with(PREFIX)
        && presented[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token every form and state-changing request of this session must carry.
pub fn csrf_token(session_token: &SecretString) -> String {
    let mut digest = Sha256::new();
    digest.update(b"wagate csrf\0");
    digest.update(session_token.expose_secret().as_bytes());
    hex::encode(digest.finalize())
}

/// Whether a presented CSRF token is this session's (compared in constant time).
pub fn csrf_matches(session_token: &SecretString, presented: &str) -> bool {
    let expected = csrf_token(session_token);
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_well_formed_and_csrf_belongs_to_one_session() {
        let a = mint();
        let b = mint();
        assert!(is_well_formed(a.token.expose_secret()));
        assert_ne!(a.hash, b.hash);
        assert_eq!(hash(a.token.expose_secret()), a.hash);
        let csrf = csrf_token(&a.token);
        assert!(csrf_matches(&a.token, &csrf));
        assert!(!csrf_matches(&b.token, &csrf), "another session's token");
        assert!(!csrf_matches(&a.token, ""));
        assert!(!is_well_formed("wgs_short"));
        assert!(!is_well_formed(&format!(
            "wgk_{}",
            &a.token.expose_secret()[4..]
        )));
    }
}
