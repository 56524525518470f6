//! Contacts as the dashboard lists them: everyone who wrote to (or was written from) one of the
//! tenant's numbers, with their conversations and what happened with them.

use sqlx::any::AnyRow;

use super::{Store, StoreError, col};

#[derive(Debug, Clone)]
pub struct ContactRow {
    pub id: String,
    pub wa_id: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub last_message_at: Option<i64>,
}

/// A status Meta reported on a message to the contact.
#[derive(Debug, Clone)]
pub struct StatusEvent {
    pub message_id: String,
    pub message_type: String,
    pub status: String,
    pub at: i64,
}

const SELECT: &str = "SELECT c.id, c.wa_id, c.name, c.created_at,
        (SELECT MAX(v.last_message_at) FROM conversations v WHERE v.contact_id = c.id) AS last_message_at
     FROM contacts c";

fn from_row(row: &AnyRow) -> Result<ContactRow, StoreError> {
    Ok(ContactRow {
        id: col(row, "id")?,
        wa_id: col(row, "wa_id")?,
        name: col(row, "name")?,
        created_at: col(row, "created_at")?,
        last_message_at: col(row, "last_message_at")?,
    })
}

impl Store {
    /// The tenant's contacts, latest activity first; `search` matches name or number.
    pub async fn contacts(
        &self,
        tenant_id: &str,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ContactRow>, StoreError> {
        let mut sql = format!("SELECT * FROM ({SELECT} WHERE c.tenant_id = $1");
        let pattern = search.map(super::conversations::like_pattern);
        if pattern.is_some() {
            sql.push_str(
                " AND (LOWER(COALESCE(c.name, '')) LIKE $3 ESCAPE '\\' OR c.wa_id LIKE $3 ESCAPE '\\')",
            );
        }
        // PostgreSQL orders by an output column only when it stands alone, hence the subquery.
        sql.push_str(
            ") listed ORDER BY COALESCE(listed.last_message_at, listed.created_at) DESC, listed.id LIMIT $2",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(limit);
        if let Some(pattern) = pattern {
            query = query.bind(pattern);
        }
        query
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    pub async fn contact(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ContactRow>, StoreError> {
        let sql = format!("{SELECT} WHERE c.tenant_id = $1 AND c.id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Statuses Meta reported on messages to the contact, newest first, timed by when they
    /// arrived (Meta stamps whole seconds, which would sort a status before its own send).
    pub async fn contact_status_events(
        &self,
        tenant_id: &str,
        contact_id: &str,
        limit: i64,
    ) -> Result<Vec<StatusEvent>, StoreError> {
        sqlx::query(
            "SELECT m.id AS message_id, m.type, s.status,
                    s.received_at AS at
             FROM statuses s
             JOIN messages m ON m.connection_id = s.connection_id AND m.wamid = s.wamid
             WHERE m.tenant_id = $1 AND m.contact_id = $2
             ORDER BY at DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(contact_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(StatusEvent {
                message_id: col(r, "message_id")?,
                message_type: col(r, "type")?,
                status: col(r, "status")?,
                at: col(r, "at")?,
            })
        })
        .collect()
    }
}
