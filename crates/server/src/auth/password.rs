//! Passwords, hashed with Argon2id. Hashing is slow on purpose, so it runs off the async runtime.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LEN} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_LEN} characters long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Checks the length rules and returns the Argon2id PHC string.
pub async fn hash(password: SecretString) -> Result<String, PasswordError> {
    let len = password.expose_secret().chars().count();
    if len < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if len > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hashing(e.to_string()))?
}

/// Whether `password` matches the stored hash. A malformed hash never matches.
pub async fn verify(password: SecretString, stored_hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored_hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hashed = hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify(SecretString::from("correct horse battery"), hashed.clone()).await);
        assert!(!verify(SecretString::from("wrong horse battery"), hashed).await);
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert!(matches!(
            hash(SecretString::from("short")).await,
            Err(PasswordError::TooShort)
        ));
    }
}
