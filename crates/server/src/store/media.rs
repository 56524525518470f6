//! Media rows: what is known of a message's file (Meta's id, type, size, hash) and where its
//! bytes are kept once stored. The bytes themselves live in the media storage, not here.

use sqlx::any::AnyRow;

use super::{Conn, Durability, Store, StoreError, WriteQuery, col};

/// Fetched from Meta (a customer's file, or one the business sent from the app).
pub const DIRECTION_INBOUND: &str = "inbound";
/// Uploaded by the tenant, to send.
pub const DIRECTION_OUTBOUND: &str = "outbound";

/// The bytes are not here yet: a fetch job is on it.
pub const STATUS_PENDING: &str = "pending";
/// The bytes are in the media storage.
pub const STATUS_STORED: &str = "stored";
/// The bytes could not be fetched; `failure_reason` says why. The message itself is kept.
pub const STATUS_FAILED: &str = "failed";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRow {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub direction: String,
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub kind: String,
    pub meta_media_id: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<i64>,
    /// Lower-case hex of the stored bytes.
    pub sha256: Option<String>,
    /// The hash Meta announced, as Meta wrote it.
    pub meta_sha256: Option<String>,
    pub filename: Option<String>,
    pub storage_key: Option<String>,
    pub status: String,
    pub failure_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, connection_id, direction, kind, meta_media_id, mime_type, \
     file_size, sha256, meta_sha256, filename, storage_key, status, failure_reason, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<MediaRow, StoreError> {
    Ok(MediaRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        connection_id: col(row, "connection_id")?,
        direction: col(row, "direction")?,
        kind: col(row, "kind")?,
        meta_media_id: col(row, "meta_media_id")?,
        mime_type: col(row, "mime_type")?,
        file_size: col(row, "file_size")?,
        sha256: col(row, "sha256")?,
        meta_sha256: col(row, "meta_sha256")?,
        filename: col(row, "filename")?,
        storage_key: col(row, "storage_key")?,
        status: col(row, "status")?,
        failure_reason: col(row, "failure_reason")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// What a stored file turned out to be.
#[derive(Debug, Clone)]
pub struct StoredFile<'a> {
    pub mime_type: &'a str,
    pub file_size: i64,
    pub sha256: &'a str,
    pub storage_key: &'a str,
}

impl Store {
    /// Adds a media row inside the caller's transaction.
    pub async fn insert_media(&self, conn: &mut Conn, row: &MediaRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO media (id, tenant_id, connection_id, direction, kind, meta_media_id,
                 mime_type, file_size, sha256, meta_sha256, filename, storage_key, status,
                 failure_reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.connection_id)
        .bind(&row.direction)
        .bind(&row.kind)
        .bind(&row.meta_media_id)
        .bind(&row.mime_type)
        .bind(row.file_size)
        .bind(&row.sha256)
        .bind(&row.meta_sha256)
        .bind(&row.filename)
        .bind(&row.storage_key)
        .bind(&row.status)
        .bind(&row.failure_reason)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Adds a media row in a durable transaction of its own (an upload the tenant is told of).
    pub async fn insert_media_now(&self, row: &MediaRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        self.insert_media(&mut tx, row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's media by id; another tenant's id is `None`, as a missing one is.
    pub async fn media(&self, tenant_id: &str, id: &str) -> Result<Option<MediaRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM media WHERE tenant_id = $1 AND id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Any tenant's media by id, for background work that already holds a trusted id.
    pub async fn media_by_id(&self, id: &str) -> Result<Option<MediaRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM media WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Records that the bytes are stored.
    pub async fn mark_media_stored(
        &self,
        id: &str,
        file: &StoredFile<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE media SET status = 'stored', mime_type = $2, file_size = $3, sha256 = $4,
                 storage_key = $5, failure_reason = NULL, updated_at = $6
             WHERE id = $1",
        )
        .bind(id)
        .bind(file.mime_type)
        .bind(file.file_size)
        .bind(file.sha256)
        .bind(file.storage_key)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// Records a failed fetch: the reason, and whether it is final (`failed`) or will be retried
    /// (still `pending`). A stored file is never marked failed.
    pub async fn mark_media_failure(
        &self,
        id: &str,
        reason: &str,
        is_final: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE media SET status = CASE WHEN $3 = 1 THEN 'failed' ELSE status END,
                 failure_reason = $2, updated_at = $4
             WHERE id = $1 AND status <> 'stored'",
        )
        .bind(id)
        .bind(reason)
        .bind(i64::from(is_final))
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(())
    }

    /// Puts a failed fetch back to pending (a person asked to try again).
    pub async fn reset_media_fetch(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE media SET status = 'pending', failure_reason = NULL, updated_at = $2
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now)
        .run_on(self, Durability::Full)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The message that carries this media first (an inbound file has exactly one).
    pub async fn message_id_of_media(&self, media_id: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT id FROM messages WHERE media_id = $1 ORDER BY created_at LIMIT 1")
                .bind(media_id)
                .fetch_optional(self.reader())
                .await?;
        row.map(|r| col(&r, "id")).transpose()
    }
}
