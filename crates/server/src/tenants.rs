//! Creating tenants: a business with its owner user and first API key.

use secrecy::{ExposeSecret, SecretString};

use crate::auth::{api_key, password};
use crate::clock::now_ms;
use crate::ids::new_id;
use crate::store::Store;
use crate::store::tenants::{CreateTenantError, NewTenant};

pub struct NewTenantInput {
    pub name: String,
    pub email: String,
    pub password: SecretString,
}

pub struct CreatedTenant {
    pub tenant_id: String,
    pub user_id: String,
    /// Shown once; only its hash is stored.
    pub api_key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("--name must not be empty (at most 200 characters)")]
    BadName,
    #[error("--email must be an email address like owner@example.com")]
    BadEmail,
    #[error("--password is not acceptable: {0}")]
    BadPassword(#[from] password::PasswordError),
    #[error("a user with the email {0} already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub async fn create(store: &Store, input: NewTenantInput) -> Result<CreatedTenant, TenantError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TenantError::BadName);
    }
    let email = input.email.trim().to_lowercase();
    if !plausible_email(&email) {
        return Err(TenantError::BadEmail);
    }
    let password_hash = password::hash(input.password).await?;
    let key = api_key::mint();
    let tenant_id = new_id();
    let user_id = new_id();
    let api_key_id = new_id();
    let created = store
        .create_tenant(&NewTenant {
            tenant_id: &tenant_id,
            name,
            user_id: &user_id,
            email: &email,
            password_hash: &password_hash,
            api_key_id: &api_key_id,
            api_key_hash: &key.hash,
            api_key_prefix: &key.display_prefix,
            now: now_ms(),
        })
        .await;
    match created {
        Ok(()) => Ok(CreatedTenant {
            tenant_id,
            user_id,
            api_key: SecretString::from(key.secret.expose_secret().to_owned()),
        }),
        Err(CreateTenantError::EmailTaken) => Err(TenantError::EmailTaken(email)),
        Err(CreateTenantError::Store(e)) => Err(e.into()),
    }
}

pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape() {
        assert!(plausible_email("owner@example.com"));
        assert!(!plausible_email("owner"));
        assert!(!plausible_email("owner@localhost"));
        assert!(!plausible_email("a b@example.com"));
    }
}
