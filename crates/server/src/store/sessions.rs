//! Dashboard sessions and the users who sign in to them.

use super::{Durability, Store, StoreError, WriteQuery, col};

/// A user as sign-in sees them: who they are and the hash their password must match.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user_id: String,
    pub tenant_id: String,
    pub password_hash: String,
}

/// The user behind a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub email: String,
    /// `owner`, `admin` or `agent`.
    pub role: String,
    pub expires_at: i64,
}

impl Store {
    /// The user with this (lower-cased) email, if any.
    pub async fn user_credentials(
        &self,
        email: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let row = sqlx::query("SELECT id, tenant_id, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| {
            Ok(UserCredentials {
                user_id: col(&r, "id")?,
                tenant_id: col(&r, "tenant_id")?,
                password_hash: col(&r, "password_hash")?,
            })
        })
        .transpose()
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user: &UserCredentials,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, tenant_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&user.user_id)
        .bind(&user.tenant_id)
        .bind(now)
        .bind(expires_at)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// The user of a session that has not expired, by the session token's hash.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        let row = sqlx::query(
            "SELECT s.user_id, s.tenant_id, s.expires_at, u.email, u.role, t.name AS tenant_name
             FROM sessions s
             JOIN users u ON u.id = s.user_id
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(SessionUser {
                user_id: col(&r, "user_id")?,
                tenant_id: col(&r, "tenant_id")?,
                tenant_name: col(&r, "tenant_name")?,
                email: col(&r, "email")?,
                role: col(&r, "role")?,
                expires_at: col(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out), and sweeps sessions that expired.
    pub async fn end_session(&self, token_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(token_hash)
            .bind(now)
            .run_on(self, Durability::Full)
            .await?;
        Ok(())
    }
}
