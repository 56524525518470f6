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
    pub sub_category: Option<String>,
    /// JSON text.
    pub components: String,
    /// The last JSON Meta sent about this template.
    pub payload: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, connection_id, waba_id, meta_template_id, name, language, category, \
     status, quality_score, rejected_reason, parameter_format, sub_category, components, payload, \
     created_at, updated_at";

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
        sub_category: col(row, "sub_category")?,
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

    /// The tenant's templates that match the filter, by name and language.
    pub async fn templates(
        &self,
        tenant_id: &str,
        filter: &TemplateFilter<'_>,
    ) -> Result<Vec<TemplateRow>, StoreError> {
        // Filters are added only when asked for; `$n` numbering stays fixed so binds line up.
        let mut sql = format!("SELECT {COLUMNS} FROM templates WHERE tenant_id = $1");
        if filter.connection_id.is_some() {
            sql.push_str(" AND connection_id = $2");
        }
        if filter.status.is_some() {
            sql.push_str(" AND UPPER(status) = UPPER($3)");
        }
        if filter.category.is_some() {
            sql.push_str(" AND UPPER(category) = UPPER($4)");
        }
        if filter.name.is_some() {
            sql.push_str(" AND LOWER(name) LIKE $5 ESCAPE '\\'");
        }
        if filter.language.is_some() {
            sql.push_str(" AND language = $6");
        }
        sql.push_str(" ORDER BY name, language, connection_id");
        let name_pattern = filter
            .name
            .map(|n| format!("%{}%", escape_like(&n.to_lowercase())))
            .unwrap_or_default();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(filter.connection_id.unwrap_or(""))
            .bind(filter.status.unwrap_or(""))
            .bind(filter.category.unwrap_or(""))
            .bind(name_pattern)
            .bind(filter.language.unwrap_or(""))
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// One of the tenant's templates by our id.
    pub async fn template(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<TemplateRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM templates WHERE tenant_id = $1 AND id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The connection's templates of this name, in every language it has.
    pub async fn templates_named(
        &self,
        connection_id: &str,
        name: &str,
    ) -> Result<Vec<TemplateRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM templates WHERE connection_id = $1 AND name = $2 ORDER BY language"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(connection_id)
            .bind(name)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Replaces what is stored of a connection's templates with Meta's full list, in one
    /// transaction: new ones are added, known ones (by name and language) updated, and those Meta
    /// no longer lists are removed. Marks the connection as synced. Two syncs at once (two
    /// processes) meet in the upsert rather than in a unique violation.
    pub async fn replace_templates(
        &self,
        connection: TemplateOwner<'_>,
        listed: &[SyncedTemplate],
        listed_at: i64,
        now: i64,
    ) -> Result<SyncCounts, StoreError> {
        let mut tx = self.begin().await?;
        let known: Vec<(String, String, String)> =
            sqlx::query("SELECT id, name, language FROM templates WHERE connection_id = $1")
                .bind(connection.connection_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((col(r, "id")?, col(r, "name")?, col(r, "language")?)))
                .collect::<Result<_, StoreError>>()?;
        let known_keys: std::collections::HashSet<(&str, &str)> = known
            .iter()
            .map(|(_, name, language)| (name.as_str(), language.as_str()))
            .collect();
        let mut counts = SyncCounts::default();
        let mut seen = std::collections::HashSet::new();
        for template in listed {
            if !seen.insert((template.name.as_str(), template.language.as_str())) {
                continue;
            }
            if known_keys.contains(&(template.name.as_str(), template.language.as_str())) {
                counts.updated += 1;
            } else {
                counts.added += 1;
            }
            upsert_template(&mut tx, &connection, template, listed_at, now).await?;
        }
        for (id, name, language) in &known {
            if !seen.contains(&(name.as_str(), language.as_str())) {
                // A template submitted (or moved by a status webhook) after the listing began is
                // newer than the listing, which cannot have seen it.
                let removed =
                    sqlx::query("DELETE FROM templates WHERE id = $1 AND updated_at <= $2")
                        .bind(id)
                        .bind(listed_at)
                        .execute(&mut *tx)
                        .await?;
                if removed.rows_affected() > 0 {
                    counts.removed += 1;
                }
            }
        }
        sqlx::query("UPDATE connections SET templates_synced_at = $2 WHERE id = $1")
            .bind(connection.connection_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// When the connection's templates were last synced (read afresh, not from a cached row).
    pub async fn templates_synced_at(
        &self,
        connection_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT templates_synced_at FROM connections WHERE id = $1")
            .bind(connection_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(row) => col(&row, "templates_synced_at")?,
            None => None,
        })
    }

    /// Stores a template just submitted to Meta (or replaces what is known under its name and
    /// language), and returns it.
    pub async fn upsert_submitted_template(
        &self,
        connection: TemplateOwner<'_>,
        template: &SyncedTemplate,
        now: i64,
    ) -> Result<TemplateRow, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM templates WHERE connection_id = $1 AND name = $2 AND language = $3",
        )
        .bind(connection.connection_id)
        .bind(&template.name)
        .bind(&template.language)
        .execute(&mut *tx)
        .await?;
        let id = insert_template(&mut tx, &connection, template, now).await?;
        let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        let row = from_row(&row)?;
        tx.commit().await?;
        Ok(row)
    }
}

/// The connection templates are stored for.
#[derive(Debug, Clone, Copy)]
pub struct TemplateOwner<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub waba_id: Option<&'a str>,
}

/// A template as Meta lists it, flattened to its columns.
#[derive(Debug, Clone, Default)]
pub struct SyncedTemplate {
    pub meta_template_id: Option<String>,
    pub name: String,
    pub language: String,
    pub category: Option<String>,
    pub status: String,
    pub quality_score: Option<String>,
    pub rejected_reason: Option<String>,
    pub parameter_format: Option<String>,
    pub sub_category: Option<String>,
    /// JSON text.
    pub components: String,
    /// Meta's whole object, JSON text.
    pub payload: String,
}

/// What a sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
}

/// Which templates to list; `None` leaves a filter off.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateFilter<'a> {
    pub connection_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub category: Option<&'a str>,
    /// Part of the name, any case.
    pub name: Option<&'a str>,
    pub language: Option<&'a str>,
}

/// Adds a listed template, or refreshes the one stored under its name and language.
async fn upsert_template(
    conn: &mut Conn,
    owner: &TemplateOwner<'_>,
    template: &SyncedTemplate,
    listed_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    // A row changed since the listing began (a status webhook, a submission) keeps what it has:
    // the listing is older than that change.
    sqlx::query(
        "INSERT INTO templates (id, tenant_id, connection_id, waba_id, meta_template_id, name,
             language, category, status, quality_score, rejected_reason, parameter_format,
             sub_category, components, payload, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
         ON CONFLICT (connection_id, name, language) DO UPDATE SET
             waba_id = excluded.waba_id, meta_template_id = excluded.meta_template_id,
             category = excluded.category, status = excluded.status,
             quality_score = excluded.quality_score, rejected_reason = excluded.rejected_reason,
             parameter_format = excluded.parameter_format, sub_category = excluded.sub_category,
             components = excluded.components, payload = excluded.payload,
             updated_at = excluded.updated_at
         WHERE templates.updated_at <= $17",
    )
    .bind(crate::ids::new_id())
    .bind(owner.tenant_id)
    .bind(owner.connection_id)
    .bind(owner.waba_id)
    .bind(&template.meta_template_id)
    .bind(&template.name)
    .bind(&template.language)
    .bind(&template.category)
    .bind(&template.status)
    .bind(&template.quality_score)
    .bind(&template.rejected_reason)
    .bind(&template.parameter_format)
    .bind(&template.sub_category)
    .bind(&template.components)
    .bind(&template.payload)
    .bind(now)
    .bind(listed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_template(
    conn: &mut Conn,
    owner: &TemplateOwner<'_>,
    template: &SyncedTemplate,
    now: i64,
) -> Result<String, StoreError> {
    let id = crate::ids::new_id();
    sqlx::query(
        "INSERT INTO templates (id, tenant_id, connection_id, waba_id, meta_template_id, name,
             language, category, status, quality_score, rejected_reason, parameter_format,
             sub_category, components, payload, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    )
    .bind(&id)
    .bind(owner.tenant_id)
    .bind(owner.connection_id)
    .bind(owner.waba_id)
    .bind(&template.meta_template_id)
    .bind(&template.name)
    .bind(&template.language)
    .bind(&template.category)
    .bind(&template.status)
    .bind(&template.quality_score)
    .bind(&template.rejected_reason)
    .bind(&template.parameter_format)
    .bind(&template.sub_category)
    .bind(&template.components)
    .bind(&template.payload)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A LIKE pattern that matches the text literally (`%` and `_` in a name are not wildcards).
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
