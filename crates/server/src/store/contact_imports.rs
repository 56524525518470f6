//! CSV imports of contacts: their progress rows, and the batch write that merges a page of
//! rows into the tenant's contacts by phone number.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::conversations::{ROWS_PER_STATEMENT, placeholders};
use super::{Conn, Store, StoreError, col};

pub const IMPORT_RUNNING: &str = "running";
pub const IMPORT_DONE: &str = "done";
pub const IMPORT_FAILED: &str = "failed";

#[derive(Debug, Clone, Default)]
pub struct ContactImportRow {
    pub id: String,
    pub tenant_id: String,
    pub status: String,
    pub filename: Option<String>,
    pub bytes_read: i64,
    pub rows_read: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
    /// JSON array of `{"line", "reason"}`.
    pub errors: String,
    pub failure_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<ContactImportRow, StoreError> {
    Ok(ContactImportRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        status: col(row, "status")?,
        filename: col(row, "filename")?,
        bytes_read: col(row, "bytes_read")?,
        rows_read: col(row, "rows_read")?,
        created: col(row, "created")?,
        updated: col(row, "updated")?,
        failed: col(row, "failed")?,
        errors: col(row, "errors")?,
        failure_reason: col(row, "failure_reason")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        finished_at: col(row, "finished_at")?,
    })
}

/// One good row of a file, merged into the contact with its number.
#[derive(Debug, Clone, Default)]
pub struct ImportedContact {
    pub wa_id: String,
    /// `None` leaves what the contact has.
    pub name: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    /// Fields set on the contact (others it has stay).
    pub custom_fields: Vec<(String, String)>,
    /// Added to the contact's tags.
    pub tags: Vec<String>,
    /// `opted_in` or `opted_out`; an opt-out is never lifted by a file.
    pub opt_in: Option<String>,
}

/// The contact as it is now, for merging.
struct Existing {
    id: String,
    custom_fields: String,
    opt_in: String,
}

impl Store {
    pub async fn insert_contact_import(&self, row: &ContactImportRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO contact_imports (id, tenant_id, status, filename, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.status)
        .bind(&row.filename)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes the import's progress (in the caller's transaction, with the rows it counts).
    pub async fn write_contact_import(
        &self,
        conn: &mut Conn,
        row: &ContactImportRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE contact_imports SET status = $2, bytes_read = $3, rows_read = $4, created = $5,
                 updated = $6, failed = $7, errors = $8, failure_reason = $9, updated_at = $10,
                 finished_at = $11
             WHERE id = $1",
        )
        .bind(&row.id)
        .bind(&row.status)
        .bind(row.bytes_read)
        .bind(row.rows_read)
        .bind(row.created)
        .bind(row.updated)
        .bind(row.failed)
        .bind(&row.errors)
        .bind(&row.failure_reason)
        .bind(row.updated_at)
        .bind(row.finished_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn contact_import(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ContactImportRow>, StoreError> {
        sqlx::query("SELECT * FROM contact_imports WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The tenant's latest imports, newest first.
    pub async fn contact_imports(
        &self,
        tenant_id: &str,
        limit: i64,
    ) -> Result<Vec<ContactImportRow>, StoreError> {
        sqlx::query(
            "SELECT * FROM contact_imports WHERE tenant_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// Brings PostgreSQL's statistics of the contacts table up to date. Planned on a table it
    /// believed nearly empty, the lookup of a page's numbers went through the (tenant, created)
    /// index and filtered every contact of the tenant, once per page: an import took quadratic
    /// time. SQLite plans by the unique index without statistics.
    pub async fn refresh_contact_statistics(&self) -> Result<(), StoreError> {
        if self.backend() == super::Backend::Postgres {
            sqlx::query("ANALYZE contacts").execute(&self.write).await?;
        }
        Ok(())
    }

    /// Merges a page of rows (each number once) into the tenant's contacts in the caller's
    /// transaction: new numbers become contacts, known ones get the fields the row gives and its
    /// tags added. Answers how many were created and how many updated.
    pub async fn merge_imported_contacts(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        rows: &[ImportedContact],
        source: &str,
        now: i64,
    ) -> Result<(i64, i64), StoreError> {
        let mut existing: HashMap<String, Existing> = HashMap::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let list = placeholders(chunk.len(), 1, |p| format!("${}", p + 1));
            let sql = format!(
                "SELECT id, wa_id, custom_fields, opt_in FROM contacts
                 WHERE tenant_id = $1 AND wa_id IN ({list})"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
            for row in chunk {
                query = query.bind(row.wa_id.as_str());
            }
            for found in query.fetch_all(&mut *conn).await? {
                existing.insert(
                    col(&found, "wa_id")?,
                    Existing {
                        id: col(&found, "id")?,
                        custom_fields: col(&found, "custom_fields")?,
                        opt_in: col(&found, "opt_in")?,
                    },
                );
            }
        }
        let (mut created, mut updated) = (0, 0);
        let mut tags: Vec<(String, &str)> = Vec::new();
        let mut new_rows: Vec<(String, &ImportedContact, String)> = Vec::new();
        for row in rows {
            let changes: std::collections::BTreeMap<String, Option<String>> = row
                .custom_fields
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            let Some(contact) = existing.get(&row.wa_id) else {
                let id = crate::ids::new_id();
                tags.extend(row.tags.iter().map(|t| (id.clone(), t.as_str())));
                new_rows.push((id, row, crate::contacts::merged_fields("{}", &changes)));
                continue;
            };
            // An opt-out the customer (or an agent) made stands whatever a file says.
            let opt_in = match row.opt_in.as_deref() {
                Some(state) if contact.opt_in != "opted_out" && state != contact.opt_in => {
                    Some(state)
                }
                _ => None,
            };
            sqlx::query(
                "UPDATE contacts SET
                     name = COALESCE($2, name),
                     name_set = CASE WHEN $2 IS NULL THEN name_set ELSE 1 END,
                     email = COALESCE($3, email),
                     notes = COALESCE($4, notes),
                     custom_fields = $5,
                     opt_in = COALESCE($6, opt_in),
                     opt_in_changed_at = CASE WHEN $6 IS NULL THEN opt_in_changed_at ELSE $7 END,
                     opt_in_reason = CASE WHEN $6 IS NULL THEN opt_in_reason ELSE 'imported' END,
                     updated_at = $7
                 WHERE id = $1",
            )
            .bind(&contact.id)
            .bind(&row.name)
            .bind(&row.email)
            .bind(&row.notes)
            .bind(crate::contacts::merged_fields(
                &contact.custom_fields,
                &changes,
            ))
            .bind(opt_in)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            tags.extend(row.tags.iter().map(|t| (contact.id.clone(), t.as_str())));
            updated += 1;
        }
        // New numbers in multi-row statements: most rows of a first import are new.
        for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
            let values = placeholders(chunk.len(), 13, |p| {
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9,
                    p + 10,
                    p + 11,
                    p + 12,
                    p + 12
                )
            });
            let sql = format!(
                "INSERT INTO contacts (id, tenant_id, wa_id, name, name_set, email, notes,
                     custom_fields, source, opt_in, opt_in_reason, opt_in_changed_at,
                     created_at, updated_at)
                 VALUES {values}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, row, custom) in chunk {
                query = query
                    .bind(id.as_str())
                    .bind(tenant_id)
                    .bind(row.wa_id.as_str())
                    .bind(row.name.as_deref())
                    .bind(i64::from(row.name.is_some()))
                    .bind(row.email.as_deref())
                    .bind(row.notes.as_deref())
                    .bind(custom.as_str())
                    .bind(source)
                    .bind(row.opt_in.as_deref().unwrap_or("unknown"))
                    .bind(row.opt_in.is_some().then_some("imported"))
                    .bind(row.opt_in.is_some().then_some(now))
                    .bind(now);
            }
            query.execute(&mut *conn).await?;
            created += chunk.len() as i64;
        }
        for chunk in tags.chunks(ROWS_PER_STATEMENT) {
            let values = placeholders(chunk.len(), 3, |p| {
                format!("(${}, ${}, ${})", p, p + 1, p + 2)
            });
            let sql = format!(
                "INSERT INTO contact_tags (contact_id, tenant_id, tag) VALUES {values}
                 ON CONFLICT (contact_id, tag) DO NOTHING"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (contact_id, tag) in chunk {
                query = query.bind(contact_id.clone()).bind(tenant_id).bind(*tag);
            }
            query.execute(&mut *conn).await?;
        }
        Ok((created, updated))
    }
}
