//! Tenants, their users and their API keys.

use super::{Durability, Store, StoreError, WriteQuery, col};

/// A tenant with its first user (the owner) and first API key, created together or not at all.
#[derive(Debug)]
pub struct NewTenant<'a> {
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub user_id: &'a str,
    /// Lower-cased.
    pub email: &'a str,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    pub api_key_id: &'a str,
    pub api_key_hash: &'a str,
    pub api_key_prefix: &'a str,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who an API key belongs to.
#[derive(Debug, Clone)]
pub struct ApiKeyOwner {
    pub tenant_id: String,
    pub api_key_id: String,
}

impl Store {
    pub async fn create_tenant(&self, new: &NewTenant<'_>) -> Result<(), CreateTenantError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(new.tenant_id)
            .bind(new.name)
            .bind(new.now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let user = sqlx::query(
            "INSERT INTO users (id, tenant_id, email, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, 'owner', $5)",
        )
        .bind(new.user_id)
        .bind(new.tenant_id)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(new.now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from);
        match user {
            Err(e) if e.is_unique_violation() => return Err(CreateTenantError::EmailTaken),
            other => {
                other?;
            }
        }
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, created_at)
             VALUES ($1, $2, 'default', $3, $4, $5)",
        )
        .bind(new.api_key_id)
        .bind(new.tenant_id)
        .bind(new.api_key_hash)
        .bind(new.api_key_prefix)
        .bind(new.now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The tenant of a live (not revoked) API key, by the key's hash.
    pub async fn api_key_owner(&self, key_hash: &str) -> Result<Option<ApiKeyOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(ApiKeyOwner {
                api_key_id: col(&r, "id")?,
                tenant_id: col(&r, "tenant_id")?,
            })
        })
        .transpose()
    }

    /// The display prefixes of a tenant's live API keys.
    pub async fn api_key_prefixes(&self, tenant_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "SELECT key_prefix FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL
             ORDER BY created_at",
        )
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| col(r, "key_prefix"))
        .collect()
    }

    /// Revokes every live API key of the tenant and adds a new one, together.
    pub async fn replace_api_key(
        &self,
        tenant_id: &str,
        api_key_id: &str,
        key_hash: &str,
        key_prefix: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL",
        )
        .bind(tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, created_at)
             VALUES ($1, $2, 'default', $3, $4, $5)",
        )
        .bind(api_key_id)
        .bind(tenant_id)
        .bind(key_hash)
        .bind(key_prefix)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's users, owners first, then by when they joined.
    pub async fn users(&self, tenant_id: &str) -> Result<Vec<UserRow>, StoreError> {
        sqlx::query(
            "SELECT id, email, role, created_at FROM users WHERE tenant_id = $1
             ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, created_at",
        )
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(UserRow {
                id: col(r, "id")?,
                email: col(r, "email")?,
                role: col(r, "role")?,
                created_at: col(r, "created_at")?,
            })
        })
        .collect()
    }

    /// Adds a user to a tenant; a taken email is refused.
    pub async fn add_user(&self, new: &NewUser<'_>) -> Result<(), CreateTenantError> {
        let result = sqlx::query(
            "INSERT INTO users (id, tenant_id, email, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new.user_id)
        .bind(new.tenant_id)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(new.role)
        .bind(new.now)
        .run_on(self, Durability::Full)
        .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(CreateTenantError::EmailTaken),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Removes a user who is not an owner, with their sessions; `false` when there was none.
    pub async fn remove_user(&self, tenant_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1
               AND user_id IN (SELECT id FROM users WHERE tenant_id = $2 AND role <> 'owner')",
        )
        .bind(user_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let removed =
            sqlx::query("DELETE FROM users WHERE id = $1 AND tenant_id = $2 AND role <> 'owner'")
                .bind(user_id)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(removed.rows_affected() == 1)
    }

    /// Sets a user's password and ends their other sessions (keeping `keep_session`).
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| col(&r, "password_hash")).transpose()
    }
}

/// A user as the users page lists them.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub created_at: i64,
}

/// A user an owner or admin adds.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub tenant_id: &'a str,
    /// Lower-cased.
    pub email: &'a str,
    pub password_hash: &'a str,
    /// `admin` or `agent`.
    pub role: &'a str,
    pub now: i64,
}

impl Store {
    /// The extra opt-out words of those of `tenant_ids` that set any (the localised defaults
    /// apply to every tenant and are not stored).
    pub async fn tenants_opt_out_words(
        &self,
        tenant_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
        let mut words = std::collections::HashMap::new();
        for chunk in tenant_ids.chunks(super::conversations::ROWS_PER_STATEMENT) {
            let list = super::conversations::placeholders(chunk.len(), 1, |p| format!("${p}"));
            let sql = format!(
                "SELECT id, opt_out_words FROM tenants WHERE id IN ({list}) AND opt_out_words <> '[]'"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.reader()).await? {
                let stored: String = col(&row, "opt_out_words")?;
                let list: Vec<String> = serde_json::from_str(&stored)
                    .map_err(|e| StoreError::Corrupt(format!("a tenant's opt-out words: {e}")))?;
                words.insert(col(&row, "id")?, list);
            }
        }
        Ok(words)
    }

    /// The tenant's time zone and own opt-out words; `None` for a tenant that does not exist.
    pub async fn tenant_settings(
        &self,
        tenant_id: &str,
    ) -> Result<Option<crate::tenant_settings::TenantSettings>, StoreError> {
        let row = sqlx::query("SELECT time_zone, opt_out_words FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = col(&row, "opt_out_words")?;
        Ok(Some(crate::tenant_settings::TenantSettings {
            time_zone: col(&row, "time_zone")?,
            opt_out_words: serde_json::from_str(&stored)
                .map_err(|e| StoreError::Corrupt(format!("a tenant's opt-out words: {e}")))?,
        }))
    }

    pub async fn set_tenant_settings(
        &self,
        tenant_id: &str,
        settings: &crate::tenant_settings::TenantSettings,
    ) -> Result<(), StoreError> {
        let words = serde_json::to_string(&settings.opt_out_words)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE tenants SET time_zone = $2, opt_out_words = $3 WHERE id = $1")
            .bind(tenant_id)
            .bind(&settings.time_zone)
            .bind(words)
            .run_on(self, Durability::Full)
            .await?;
        Ok(())
    }
}
