//! Connections: a tenant's WhatsApp Business number, with its credentials sealed by the vault.

use sqlx::any::AnyRow;

use super::{Durability, Store, StoreError, WriteQuery, col};

pub const STATUS_CONNECTED: &str = "connected";
pub const STATUS_NEEDS_REAUTH: &str = "needs_reauth";
pub const STATUS_DISCONNECTED: &str = "disconnected";

/// A connection row as stored; secrets are still sealed.
#[derive(Clone)]
pub struct ConnectionRow {
    pub id: String,
    pub tenant_id: String,
    pub phone_number_id: String,
    pub waba_id: Option<String>,
    pub display_phone_number: String,
    pub verified_name: String,
    pub quality_rating: Option<String>,
    /// The unguessable part of the connection's webhook URL.
    pub connection_key: String,
    pub access_token: Option<Vec<u8>>,
    pub app_secret: Option<Vec<u8>>,
    pub verify_token: Option<Vec<u8>>,
    pub status: String,
    pub status_reason: Option<String>,
    pub auto_reply: bool,
    /// Messages per second this number may send.
    pub throughput_per_second: i64,
    /// When the templates were last pulled from Meta in full.
    pub templates_synced_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

// Sealed secrets are bytes, but a Debug of the row still leaves them out.
impl std::fmt::Debug for ConnectionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("phone_number_id", &self.phone_number_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, tenant_id, phone_number_id, waba_id, display_phone_number, verified_name, \
     quality_rating, connection_key, access_token, app_secret, verify_token, status, status_reason, \
     auto_reply, throughput_per_second, templates_synced_at, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<ConnectionRow, StoreError> {
    Ok(ConnectionRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        phone_number_id: col(row, "phone_number_id")?,
        waba_id: col(row, "waba_id")?,
        display_phone_number: col(row, "display_phone_number")?,
        verified_name: col(row, "verified_name")?,
        quality_rating: col(row, "quality_rating")?,
        connection_key: col(row, "connection_key")?,
        access_token: col(row, "access_token")?,
        app_secret: col(row, "app_secret")?,
        verify_token: col(row, "verify_token")?,
        status: col(row, "status")?,
        status_reason: col(row, "status_reason")?,
        auto_reply: col::<i64>(row, "auto_reply")? != 0,
        throughput_per_second: col(row, "throughput_per_second")?,
        templates_synced_at: col(row, "templates_synced_at")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum InsertConnectionError {
    #[error("this phone number is already connected")]
    PhoneNumberTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// New credentials for an existing connection; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct CredentialUpdate {
    pub access_token: Option<Vec<u8>>,
    pub app_secret: Option<Vec<u8>>,
    pub verify_token: Option<Vec<u8>>,
    pub auto_reply: Option<bool>,
    pub throughput_per_second: Option<i64>,
    /// The WhatsApp Business Account, when it was not known (templates live there).
    pub waba_id: Option<String>,
    /// Fresh facts from Meta when the token was re-checked.
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    /// A new token that Meta accepted lifts `needs_reauth`.
    pub mark_connected: bool,
}

impl Store {
    pub async fn insert_connection(
        &self,
        row: &ConnectionRow,
    ) -> Result<(), InsertConnectionError> {
        let result = sqlx::query(
            "INSERT INTO connections (id, tenant_id, phone_number_id, waba_id, display_phone_number,
                 verified_name, quality_rating, connection_key, access_token, app_secret, verify_token,
                 status, status_reason, auto_reply, created_at, updated_at, throughput_per_second)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.phone_number_id)
        .bind(&row.waba_id)
        .bind(&row.display_phone_number)
        .bind(&row.verified_name)
        .bind(&row.quality_rating)
        .bind(&row.connection_key)
        .bind(&row.access_token)
        .bind(&row.app_secret)
        .bind(&row.verify_token)
        .bind(&row.status)
        .bind(&row.status_reason)
        .bind(i64::from(row.auto_reply))
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.throughput_per_second)
        .run_on(self, Durability::Full)
        .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(InsertConnectionError::PhoneNumberTaken),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        Ok(self
            .select_connections("tenant_id = $1 AND id = $2", &[tenant_id, id])
            .await?
            .pop())
    }

    /// Any tenant's connection by id, for background work that already holds a trusted id.
    pub async fn connection_by_id(&self, id: &str) -> Result<Option<ConnectionRow>, StoreError> {
        Ok(self.select_connections("id = $1", &[id]).await?.pop())
    }

    /// Any tenants' connections by id, in as few queries as the list allows; ids not found are
    /// left out. For background work that already holds trusted ids.
    pub async fn connections_by_ids(&self, ids: &[&str]) -> Result<Vec<ConnectionRow>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::conversations::ROWS_PER_STATEMENT) {
            let list = super::conversations::placeholders(chunk.len(), 1, |p| format!("${p}"));
            found.extend(
                self.select_connections(&format!("id IN ({list})"), chunk)
                    .await?,
            );
        }
        Ok(found)
    }

    pub async fn connections(&self, tenant_id: &str) -> Result<Vec<ConnectionRow>, StoreError> {
        self.select_connections("tenant_id = $1 ORDER BY created_at, id", &[tenant_id])
            .await
    }

    /// The live connection a webhook URL's key names.
    pub async fn connection_by_key(&self, key: &str) -> Result<Option<ConnectionRow>, StoreError> {
        Ok(self
            .select_connections("connection_key = $1 AND status <> 'disconnected'", &[key])
            .await?
            .pop())
    }

    /// The live connection of a phone number, whichever tenant holds it (platform-app webhooks).
    pub async fn connection_by_phone_number_id(
        &self,
        phone_number_id: &str,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        Ok(self
            .select_connections(
                "phone_number_id = $1 AND status <> 'disconnected'",
                &[phone_number_id],
            )
            .await?
            .pop())
    }

    /// The live connections on a WhatsApp Business Account (template events are per account).
    pub async fn live_connections_of_waba(
        &self,
        waba_id: &str,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        self.select_connections("waba_id = $1 AND status <> 'disconnected'", &[waba_id])
            .await
    }

    /// The ids of all the tenant's connections, live or not.
    pub async fn connection_ids(&self, tenant_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT id FROM connections WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| col(r, "id"))
            .collect()
    }

    /// Connections matching a fixed filter (written here, never from input) with text binds.
    /// `filter` is SQL written in this module, with `$n` placeholders for `binds`.
    async fn select_connections(
        &self,
        filter: &str,
        binds: &[&str],
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connections WHERE {filter}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(*bind);
        }
        query
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Applies a credential update; returns the row after it, or `None` when it is not the tenant's
    /// or is disconnected.
    pub async fn update_connection(
        &self,
        tenant_id: &str,
        id: &str,
        update: &CredentialUpdate,
        now: i64,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let result = sqlx::query(
            "UPDATE connections SET
                 access_token = COALESCE($3, access_token),
                 app_secret = COALESCE($4, app_secret),
                 verify_token = COALESCE($5, verify_token),
                 auto_reply = COALESCE($6, auto_reply),
                 display_phone_number = COALESCE($7, display_phone_number),
                 verified_name = COALESCE($8, verified_name),
                 quality_rating = COALESCE($9, quality_rating),
                 status = CASE WHEN $10 = 1 THEN 'connected' ELSE status END,
                 status_reason = CASE WHEN $10 = 1 THEN NULL ELSE status_reason END,
                 updated_at = $11,
                 throughput_per_second = COALESCE($12, throughput_per_second),
                 waba_id = COALESCE($13, waba_id)
             WHERE tenant_id = $1 AND id = $2 AND status <> 'disconnected'",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(&update.access_token)
        .bind(&update.app_secret)
        .bind(&update.verify_token)
        .bind(update.auto_reply.map(i64::from))
        .bind(&update.display_phone_number)
        .bind(&update.verified_name)
        .bind(&update.quality_rating)
        .bind(i64::from(update.mark_connected))
        .bind(now)
        .bind(update.throughput_per_second)
        .bind(&update.waba_id)
        .run_on(self, Durability::Full)
        .await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        self.connection(tenant_id, id).await
    }

    /// Marks a connection's status (for example `needs_reauth` after Meta refused its token).
    pub async fn set_connection_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE connections SET status = $2, status_reason = $3, updated_at = $4
             WHERE id = $1 AND status <> 'disconnected'",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// Disconnects: wipes every stored secret and frees the phone number; messages stay.
    pub async fn disconnect_connection(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let result = sqlx::query(
            "UPDATE connections SET access_token = NULL, app_secret = NULL, verify_token = NULL,
                 status = 'disconnected', status_reason = NULL, auto_reply = 0,
                 updated_at = $3, disconnected_at = $3
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        self.connection(tenant_id, id).await
    }

    /// Live connections whose templates were last synced before `synced_before` (or never), the
    /// longest waiting first.
    pub async fn connections_due_for_template_sync(
        &self,
        synced_before: i64,
        limit: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM connections
             WHERE status = 'connected' AND waba_id IS NOT NULL
               AND (templates_synced_at IS NULL OR templates_synced_at < $1)
             ORDER BY COALESCE(templates_synced_at, 0), id LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(synced_before)
            .bind(limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Learns a connection's WhatsApp Business Account from Meta's webhooks when it was not given.
    pub async fn learn_waba_id(
        &self,
        conn: &mut super::Conn,
        id: &str,
        waba_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE connections SET waba_id = $2, updated_at = $3 WHERE id = $1 AND waba_id IS NULL",
        )
        .bind(id)
        .bind(waba_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
