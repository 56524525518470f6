//! Message templates of a connection's WhatsApp Business Account, as Meta last described them.

use sqlx::any::AnyRow;

use super::{Conn, Store, StoreError, col};

#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub waba_id: Option<String>,
    pub meta_template_id: Option<String>,
    pub name: String,
    pub language: String,
    pub category: Option<String>,
    pub status: String,
    pub quality_score: Option<String>,
    pub rejected_reason: Option<String>,
    pub parameter_format: Option<String>,
    /// JSON text.
    pub components: String,
    /// The last JSON Meta sent about this template.
    pub payload: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, connection_id, waba_id, meta_template_id, name, language, category, \
     status, quality_score, rejected_reason, parameter_format, components, payload, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<TemplateRow, StoreError> {
    Ok(TemplateRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        connection_id: col(row, "connection_id")?,
        waba_id: col(row, "waba_id")?,
        meta_template_id: col(row, "meta_template_id")?,
        name: col(row, "name")?,
        language: col(row, "language")?,
        category: col(row, "category")?,
        status: col(row, "status")?,
        quality_score: col(row, "quality_score")?,
        rejected_reason: col(row, "rejected_reason")?,
        parameter_format: col(row, "parameter_format")?,
        components: col(row, "components")?,
        payload: col(row, "payload")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// What a template webhook says changed. `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct TemplateUpdate<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub waba_id: Option<&'a str>,
    pub meta_template_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub language: Option<&'a str>,
    pub status: Option<&'a str>,
    pub category: Option<&'a str>,
    pub quality_score: Option<&'a str>,
    /// Replaces the old reason, including with none when a template is approved again.
    pub rejected_reason: Option<Option<&'a str>>,
    pub payload: &'a str,
    pub now: i64,
}

impl Store {
    /// Applies a template webhook: updates the stored template found by Meta's id (or by name and
    /// language), or keeps what is known as a new row when the template was never synced.
    /// Returns the template after the change, or `None` when nothing identifies one.
    pub async fn apply_template_update(
        &self,
        conn: &mut Conn,
        u: &TemplateUpdate<'_>,
    ) -> Result<Option<TemplateRow>, StoreError> {
        let existing = match (u.meta_template_id, u.name, u.language) {
            (Some(meta_id), _, _) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM templates WHERE connection_id = $1 AND meta_template_id = $2"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(u.connection_id)
                    .bind(meta_id)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            _ => None,
        };
        let existing = match (existing, u.name, u.language) {
            (Some(row), _, _) => Some(row),
            (None, Some(name), Some(language)) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM templates WHERE connection_id = $1 AND name = $2 AND language = $3"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(u.connection_id)
                    .bind(name)
                    .bind(language)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            (None, _, _) => None,
        };
        let id = match existing.as_ref().map(from_row).transpose()? {
            Some(row) => {
                let (set_reason, reason) = match u.rejected_reason {
                    Some(reason) => (1i64, reason),
                    None => (0, None),
                };
                sqlx::query(
                    "UPDATE templates SET
                         meta_template_id = COALESCE($2, meta_template_id),
                         status = COALESCE($3, status),
                         category = COALESCE($4, category),
                         quality_score = COALESCE($5, quality_score),
                         rejected_reason = CASE WHEN $6 = 1 THEN $7 ELSE rejected_reason END,
                         payload = $8, updated_at = $9
                     WHERE id = $1",
                )
                .bind(&row.id)
                .bind(u.meta_template_id)
                .bind(u.status)
                .bind(u.category)
                .bind(u.quality_score)
                .bind(set_reason)
                .bind(reason)
                .bind(u.payload)
                .bind(u.now)
                .execute(&mut *conn)
                .await?;
                row.id
            }
            None => {
                let (Some(name), Some(language)) = (u.name, u.language) else {
                    return Ok(None);
                };
                let id = crate::ids::new_id();
                sqlx::query(
                    "INSERT INTO templates (id, tenant_id, connection_id, waba_id, meta_template_id,
                         name, language, category, status, quality_score, rejected_reason,
                         parameter_format, components, payload, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, '[]', $12, $13, $13)",
                )
                .bind(&id)
                .bind(u.tenant_id)
                .bind(u.connection_id)
                .bind(u.waba_id)
                .bind(u.meta_template_id)
                .bind(name)
                .bind(language)
                .bind(u.category)
                .bind(u.status.unwrap_or("PENDING"))
                .bind(u.quality_score)
                .bind(u.rejected_reason.flatten())
                .bind(u.payload)
                .bind(u.now)
                .execute(&mut *conn)
                .await?;
                id
            }
        };
        let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub async fn templates(
        &self,
        tenant_id: &str,
        connection_id: Option<&str>,
    ) -> Result<Vec<TemplateRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM templates WHERE tenant_id = $1");
        if connection_id.is_some() {
            sql.push_str(" AND connection_id = $2");
        }
        sql.push_str(" ORDER BY name, language");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(connection_id.unwrap_or(""))
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }
}
