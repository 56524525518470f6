//! API keys: `wgk_` and 43 random characters, shown once and stored only as a SHA-256 hash.
//!
//! A key carries 256 bits of randomness, so a fast hash is enough (unlike passwords) and a lookup
//! by hash costs one index probe per request.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::ids::random_token;

const PREFIX: &str = "wgk_";

/// A freshly minted key: the secret to show once, and what is stored.
pub struct MintedKey {
    pub secret: SecretString,
    pub hash: String,
    /// The first characters, safe to show in a list so people can tell keys apart.
    pub display_prefix: String,
}

pub fn mint() -> MintedKey {
    let secret = format!("{PREFIX}{}", random_token(32));
    let display_prefix = secret.chars().take(PREFIX.len() + 6).collect();
    MintedKey {
        hash: hash(&secret),
        secret: SecretString::from(secret),
        display_prefix,
    }
}

/// The stored form of a presented key.
pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

/// Whether a presented string is shaped like one of our keys (cheap refusal before any lookup).
pub fn is_well_formed(presented: &SecretString) -> bool {
    let s = presented.expose_secret();
    s.len() == PREFIX.len() + 43
        && s.starts_with(PREFIX)
        && s[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_are_well_formed_unique_and_hash_to_their_stored_form() {
        let a = mint();
        let b = mint();
        assert!(is_well_formed(&a.secret));
        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert_eq!(hash(a.secret.expose_secret()), a.hash);
        assert!(a.secret.expose_secret().starts_with(&a.display_prefix));
        assert!(!is_well_formed(&SecretString::from("wgk_short")));
    }
}
