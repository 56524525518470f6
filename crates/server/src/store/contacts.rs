//! Contacts as the dashboard lists them: everyone who wrote to (or was written from) one of the
//! tenant's numbers, with their conversations and what happened with them.

use sqlx::any::AnyRow;

use super::conversations::placeholders;
use super::{Conn, Store, StoreError, col};

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

/// A contact with everything a CRM keeps about it.
#[derive(Debug, Clone)]
pub struct ContactDetailRow {
    pub id: String,
    pub tenant_id: String,
    pub wa_id: String,
    pub name: Option<String>,
    /// A person gave the name; WhatsApp's profile name no longer replaces it.
    pub name_set: bool,
    pub email: Option<String>,
    pub notes: Option<String>,
    /// JSON object of string values.
    pub custom_fields: String,
    pub source: String,
    pub opt_in: String,
    pub opt_in_changed_at: Option<i64>,
    pub opt_in_reason: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_message_at: Option<i64>,
}

/// A contact to create.
#[derive(Debug, Clone)]
pub struct NewContact<'a> {
    pub tenant_id: &'a str,
    pub wa_id: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub notes: Option<&'a str>,
    pub custom_fields: &'a str,
    pub source: &'a str,
    pub opt_in: &'a str,
    pub opt_in_reason: Option<&'a str>,
    pub tags: &'a [String],
    pub now: i64,
}

/// The fields of a contact to write back after a change (all of them; the caller merged).
#[derive(Debug, Clone)]
pub struct ContactFields<'a> {
    pub name: Option<&'a str>,
    pub name_set: bool,
    pub email: Option<&'a str>,
    pub notes: Option<&'a str>,
    pub custom_fields: &'a str,
    pub opt_in: &'a str,
    pub opt_in_changed_at: Option<i64>,
    pub opt_in_reason: Option<&'a str>,
}

/// Which contacts a list or an export wants.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Matches the name (any case), the email or the number.
    pub search: Option<String>,
    pub tag: Option<String>,
    pub opt_in: Option<String>,
}

const DETAIL: &str = "SELECT c.id, c.tenant_id, c.wa_id, c.name, c.name_set, c.email, c.notes, c.custom_fields,
        c.source, c.opt_in, c.opt_in_changed_at, c.opt_in_reason, c.created_at, c.updated_at,
        (SELECT MAX(v.last_message_at) FROM conversations v WHERE v.contact_id = c.id) AS last_message_at
     FROM contacts c";

fn detail_from_row(row: &AnyRow) -> Result<ContactDetailRow, StoreError> {
    Ok(ContactDetailRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        wa_id: col(row, "wa_id")?,
        name: col(row, "name")?,
        name_set: col::<i64>(row, "name_set")? != 0,
        email: col(row, "email")?,
        notes: col(row, "notes")?,
        custom_fields: col(row, "custom_fields")?,
        source: col(row, "source")?,
        opt_in: col(row, "opt_in")?,
        opt_in_changed_at: col(row, "opt_in_changed_at")?,
        opt_in_reason: col(row, "opt_in_reason")?,
        tags: Vec::new(),
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        last_message_at: col(row, "last_message_at")?,
    })
}

impl Store {
    /// One contact with its tags; `None` when it is not the tenant's.
    pub async fn contact_detail(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ContactDetailRow>, StoreError> {
        let sql = format!("{DETAIL} WHERE c.tenant_id = $1 AND c.id = $2");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        let mut contacts = vec![detail_from_row(&row)?];
        self.attach_tags(&mut contacts).await?;
        Ok(contacts.pop())
    }

    pub async fn contact_by_wa_id(
        &self,
        tenant_id: &str,
        wa_id: &str,
    ) -> Result<Option<ContactDetailRow>, StoreError> {
        let sql = format!("{DETAIL} WHERE c.tenant_id = $1 AND c.wa_id = $2");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(wa_id)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        let mut contacts = vec![detail_from_row(&row)?];
        self.attach_tags(&mut contacts).await?;
        Ok(contacts.pop())
    }

    /// The tenant's contacts matching `filter`, newest first, after the `before` cursor
    /// (`(created_at, id)` of the last one of the page before).
    pub async fn search_contacts(
        &self,
        tenant_id: &str,
        filter: &ContactFilter,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ContactDetailRow>, StoreError> {
        let mut sql = format!("{DETAIL} WHERE c.tenant_id = $1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut param = |value: Bind| {
            binds.push(value);
            format!("${}", binds.len() + 2)
        };
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let p = param(Bind::Text(super::conversations::like_pattern(
                &search.to_lowercase(),
            )));
            let mut clause = format!(
                " AND (LOWER(COALESCE(c.name, '')) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(c.email, '')) LIKE {p} ESCAPE '\\'"
            );
            // A number is searched by its digits, whichever way it was written.
            let digits: String = search.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 3 {
                let d = param(Bind::Text(super::conversations::like_pattern(&digits)));
                clause.push_str(&format!(" OR c.wa_id LIKE {d} ESCAPE '\\'"));
            }
            clause.push(')');
            sql.push_str(&clause);
        }
        if let Some(tag) = filter
            .tag
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let p = param(Bind::Text(tag.to_lowercase()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM contact_tags t
                   WHERE t.contact_id = c.id AND t.tenant_id = c.tenant_id AND LOWER(t.tag) = {p})"
            ));
        }
        if let Some(state) = filter.opt_in.as_deref() {
            let p = param(Bind::Text(state.to_owned()));
            sql.push_str(&format!(" AND c.opt_in = {p}"));
        }
        if let Some((at, id)) = before {
            let a = param(Bind::Int(at));
            let i = param(Bind::Text(id));
            sql.push_str(&format!(
                " AND (c.created_at < {a} OR (c.created_at = {a} AND c.id < {i}))"
            ));
        }
        sql.push_str(" ORDER BY c.created_at DESC, c.id DESC LIMIT $2");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(limit);
        for value in binds {
            query = match value {
                Bind::Text(text) => query.bind(text),
                Bind::Int(n) => query.bind(n),
            };
        }
        let mut contacts = query
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(detail_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.attach_tags(&mut contacts).await?;
        Ok(contacts)
    }

    /// Fills in each contact's tags with one query.
    async fn attach_tags(&self, contacts: &mut [ContactDetailRow]) -> Result<(), StoreError> {
        if contacts.is_empty() {
            return Ok(());
        }
        let list = placeholders(contacts.len(), 1, |p| format!("${p}"));
        let sql = format!(
            "SELECT contact_id, tag FROM contact_tags WHERE contact_id IN ({list}) ORDER BY contact_id, tag"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in contacts.iter() {
            query = query.bind(c.id.clone());
        }
        for row in query.fetch_all(self.reader()).await? {
            let contact_id: String = col(&row, "contact_id")?;
            let tag: String = col(&row, "tag")?;
            if let Some(c) = contacts.iter_mut().find(|c| c.id == contact_id) {
                c.tags.push(tag);
            }
        }
        Ok(())
    }

    /// Creates a contact; a unique violation means the tenant has one with that number.
    pub async fn insert_contact(
        &self,
        conn: &mut Conn,
        contact: &NewContact<'_>,
    ) -> Result<String, StoreError> {
        let id = crate::ids::new_id();
        sqlx::query(
            "INSERT INTO contacts (id, tenant_id, wa_id, name, name_set, email, notes, custom_fields,
                 source, opt_in, opt_in_changed_at, opt_in_reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(&id)
        .bind(contact.tenant_id)
        .bind(contact.wa_id)
        .bind(contact.name)
        .bind(i64::from(contact.name.is_some()))
        .bind(contact.email)
        .bind(contact.notes)
        .bind(contact.custom_fields)
        .bind(contact.source)
        .bind(contact.opt_in)
        .bind((contact.opt_in != "unknown").then_some(contact.now))
        .bind(contact.opt_in_reason)
        .bind(contact.now)
        .execute(&mut *conn)
        .await?;
        self.replace_tags(conn, contact.tenant_id, &id, contact.tags)
            .await?;
        Ok(id)
    }

    /// Locks the contact's row for the rest of the transaction (a write to it does, on both
    /// databases), so a read-merge-write of its fields is not raced; false when it is not the
    /// tenant's.
    pub async fn lock_contact(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE contacts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The contact's stored fields, read inside the caller's transaction.
    pub async fn contact_in(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ContactDetailRow>, StoreError> {
        let sql = format!("{DETAIL} WHERE c.tenant_id = $1 AND c.id = $2");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let mut contact = detail_from_row(&row)?;
        contact.tags =
            sqlx::query("SELECT tag FROM contact_tags WHERE contact_id = $1 ORDER BY tag")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| col(r, "tag"))
                .collect::<Result<_, _>>()?;
        Ok(Some(contact))
    }

    pub async fn write_contact_fields(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        id: &str,
        fields: &ContactFields<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE contacts SET name = $3, name_set = $4, email = $5, notes = $6, custom_fields = $7,
                 opt_in = $8, opt_in_changed_at = $9, opt_in_reason = $10, updated_at = $11
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(fields.name)
        .bind(i64::from(fields.name_set))
        .bind(fields.email)
        .bind(fields.notes)
        .bind(fields.custom_fields)
        .bind(fields.opt_in)
        .bind(fields.opt_in_changed_at)
        .bind(fields.opt_in_reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn replace_tags(
        &self,
        conn: &mut Conn,
        tenant_id: &str,
        contact_id: &str,
        tags: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1")
            .bind(contact_id)
            .execute(&mut *conn)
            .await?;
        if tags.is_empty() {
            return Ok(());
        }
        let values = placeholders(tags.len(), 3, |p| {
            format!("(${}, ${}, ${})", p, p + 1, p + 2)
        });
        let sql = format!("INSERT INTO contact_tags (contact_id, tenant_id, tag) VALUES {values}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for tag in tags {
            query = query.bind(contact_id).bind(tenant_id).bind(tag.clone());
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }

    /// Deletes a contact without history (and its tags); false when there was none.
    pub async fn delete_contact(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2
               AND NOT EXISTS (SELECT 1 FROM conversations v WHERE v.contact_id = contacts.id)
               AND NOT EXISTS (SELECT 1 FROM sequence_enrollments e WHERE e.contact_id = contacts.id)",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let deleted = done.rows_affected() == 1;
        if deleted {
            sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Why the contact opted out, when they did.
    pub async fn contact_opted_out(
        &self,
        conn: &mut Conn,
        contact_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT opt_in, opt_in_reason FROM contacts WHERE id = $1")
            .bind(contact_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let state: String = col(&row, "opt_in")?;
        Ok((state == "opted_out").then(|| {
            col::<Option<String>>(&row, "opt_in_reason")
                .ok()
                .flatten()
                .unwrap_or_else(|| "marked opted out".to_owned())
        }))
    }

    /// Marks a contact opted out (a stop word, an agent); does nothing when it already is.
    pub async fn opt_out_contact(
        &self,
        conn: &mut Conn,
        contact_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE contacts SET opt_in = 'opted_out', opt_in_reason = $2, opt_in_changed_at = $3,
                 updated_at = $3
             WHERE id = $1 AND opt_in <> 'opted_out'",
        )
        .bind(contact_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// A value bound to a statement built piece by piece.
enum Bind {
    Text(String),
    Int(i64),
}
