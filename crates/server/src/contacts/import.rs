//! CSV import of contacts: the file is read as it arrives, each row checked like a contact sent
//! to the API, good rows merged by phone number into the tenant's contacts a page at a time (in
//! the transaction that records the import's progress), bad rows reported with their line and
//! reason. Memory holds one page of rows, whatever the size of the file.
//!
//! The first row names the columns: `phone` (or `phone_number`, `number`, `mobile`, `wa_id`,
//! `whatsapp`) is required; `name`, `email`, `notes`, `tags` (separated by `,` or `;`) and
//! `opt_in` (`opted_in`/`opted_out`, `yes`/`no`, `true`/`false`) are the contact's; any other
//! column is a custom field of that name.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::csv::{CsvReader, Record};
use super::input::{Change, ContactInput, is_field_key, source};
use crate::clock::now_ms;
use crate::realtime::{Event, EventBus, kind};
use crate::store::contact_imports::{
    ContactImportRow, IMPORT_DONE, IMPORT_FAILED, IMPORT_RUNNING, ImportedContact,
};
use crate::store::{Store, StoreError};

/// Rows merged per transaction.
pub const PAGE_ROWS: usize = 500;
/// Bad rows kept with their reason (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 1_000;

const PHONE_COLUMNS: [&str; 6] = [
    "phone",
    "phone_number",
    "number",
    "mobile",
    "wa_id",
    "whatsapp",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Phone,
    Name,
    Email,
    Notes,
    Tags,
    OptIn,
    /// A JSON object of custom fields (as an export writes them).
    CustomJson,
    Custom,
    Ignored,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// One import of one file, fed as the bytes arrive.
pub struct Import<'a> {
    store: &'a Store,
    events: &'a EventBus,
    row: ContactImportRow,
    reader: CsvReader,
    columns: Option<Vec<(Column, String)>>,
    /// Tags every imported contact gets.
    tags: Vec<String>,
    page: Vec<ImportedContact>,
    /// Where each number of the page is, so a number twice in a file is merged into one row.
    positions: HashMap<String, usize>,
    errors: Vec<RowError>,
    records: Vec<Record>,
    /// Pages merged so far.
    pages: u64,
}

impl<'a> Import<'a> {
    /// Records a new import of the tenant; `tags` go on every contact it touches.
    pub async fn start(
        store: &'a Store,
        events: &'a EventBus,
        tenant_id: &str,
        filename: Option<&str>,
        tags: Vec<String>,
    ) -> Result<Self, StoreError> {
        let now = now_ms();
        let row = ContactImportRow {
            id: crate::ids::new_id(),
            tenant_id: tenant_id.to_owned(),
            status: IMPORT_RUNNING.to_owned(),
            filename: filename.map(str::to_owned),
            errors: "[]".into(),
            created_at: now,
            updated_at: now,
            ..Default::default()
        };
        store.insert_contact_import(&row).await?;
        Ok(Self {
            store,
            events,
            row,
            reader: CsvReader::new(),
            columns: None,
            tags,
            page: Vec::new(),
            positions: HashMap::new(),
            errors: Vec::new(),
            records: Vec::new(),
            pages: 0,
        })
    }

    pub fn id(&self) -> &str {
        &self.row.id
    }

    /// Reads a chunk of the file; each full page of good rows is merged before it returns.
    pub async fn feed(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.row.bytes_read += chunk.len() as i64;
        let mut records = std::mem::take(&mut self.records);
        self.reader.feed(chunk, &mut records);
        for record in records.drain(..) {
            self.take(record);
            if self.page.len() >= PAGE_ROWS {
                self.flush(false).await?;
            }
        }
        self.records = records;
        Ok(())
    }

    /// The file ended: the last rows are merged and the import is done.
    pub async fn finish(mut self) -> Result<ContactImportRow, StoreError> {
        let mut records = Vec::new();
        self.reader.finish(&mut records);
        for record in records {
            self.take(record);
        }
        if self.columns.is_none() {
            return self
                .fail("the file is empty: its first row must name the columns, one of them phone")
                .await;
        }
        if let Some(problem) = self.header_problem() {
            return self.fail(&problem).await;
        }
        self.flush(true).await?;
        Ok(self.row)
    }

    /// The file could not be read to its end (the upload broke off, or its header is unusable):
    /// what was merged stays, and the import says why it stopped.
    pub async fn fail(mut self, reason: &str) -> Result<ContactImportRow, StoreError> {
        self.flush(false).await?;
        self.row.status = IMPORT_FAILED.to_owned();
        self.row.failure_reason = Some(reason.to_owned());
        self.row.finished_at = Some(now_ms());
        let mut tx = self.store.begin().await?;
        self.store.write_contact_import(&mut tx, &self.row).await?;
        tx.commit().await?;
        self.publish();
        Ok(self.row)
    }

    /// Whether the header was read and was unusable (no phone column): the caller stops.
    pub fn header_problem(&self) -> Option<String> {
        let columns = self.columns.as_ref()?;
        (!columns.iter().any(|(c, _)| *c == Column::Phone)).then(|| {
            format!(
                "no phone column: the first row must name the columns, one of them {}",
                PHONE_COLUMNS.join(", ")
            )
        })
    }

    fn take(&mut self, record: Record) {
        let (line, fields) = match record {
            Record::Fields { line, fields } => (line, fields),
            Record::Unreadable { line, reason } => {
                if self.columns.is_some() {
                    self.row.rows_read += 1;
                    self.refuse(line, reason);
                }
                return;
            }
        };
        if self.columns.is_none() {
            self.columns = Some(fields.iter().map(|h| column_of(h)).collect());
            return;
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            return;
        }
        let outcome = match &self.columns {
            Some(columns) if fields.len() > columns.len() => Err(format!(
                "the row has {} fields and the header {} columns",
                fields.len(),
                columns.len()
            )),
            Some(columns) => row_contact(columns, &fields, &self.tags),
            None => return,
        };
        self.row.rows_read += 1;
        match outcome {
            Ok(contact) => self.add(contact),
            Err(reason) => self.refuse(line, reason),
        }
    }

    fn add(&mut self, contact: ImportedContact) {
        match self.positions.get(&contact.wa_id) {
            // The number came earlier in this page: the later row's fields win, tags add up.
            Some(&at) => {
                let earlier = &mut self.page[at];
                earlier.name = contact.name.or(earlier.name.take());
                earlier.email = contact.email.or(earlier.email.take());
                earlier.notes = contact.notes.or(earlier.notes.take());
                earlier.opt_in = contact.opt_in.or(earlier.opt_in.take());
                for (k, v) in contact.custom_fields {
                    earlier.custom_fields.retain(|(key, _)| *key != k);
                    earlier.custom_fields.push((k, v));
                }
                for tag in contact.tags {
                    if !earlier.tags.contains(&tag) {
                        earlier.tags.push(tag);
                    }
                }
            }
            None => {
                self.positions
                    .insert(contact.wa_id.clone(), self.page.len());
                self.page.push(contact);
            }
        }
    }

    fn refuse(&mut self, line: u64, reason: String) {
        self.row.failed += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(RowError { line, reason });
        }
    }

    /// Merges the page and writes the progress in one transaction; `done` ends the import.
    async fn flush(&mut self, done: bool) -> Result<(), StoreError> {
        if !self.page.is_empty() {
            self.pages += 1;
            // The table grows faster than autovacuum follows: after pages 1, 2, 4, 8, ... the
            // statistics are refreshed, so each page finds its numbers through the number's
            // index however large the import has made the table (a handful of refreshes per
            // file, each reading a bounded sample).
            if self.pages.is_power_of_two() {
                self.store.refresh_contact_statistics().await?;
            }
        }
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        if !self.page.is_empty() {
            let (created, updated) = self
                .store
                .merge_imported_contacts(
                    &mut tx,
                    &self.row.tenant_id,
                    &self.page,
                    source::IMPORT,
                    now,
                )
                .await?;
            self.row.created += created;
            self.row.updated += updated;
        }
        self.row.errors =
            serde_json::to_string(&self.errors).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.row.updated_at = now;
        if done {
            self.row.status = IMPORT_DONE.to_owned();
            self.row.finished_at = Some(now);
        }
        self.store.write_contact_import(&mut tx, &self.row).await?;
        tx.commit().await?;
        self.page.clear();
        self.positions.clear();
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        self.events.publish(Event {
            tenant_id: self.row.tenant_id.clone(),
            kind: kind::CONTACTS_IMPORT,
            data: summary(&self.row),
        });
    }
}

/// The import object of the API and of `contacts.import` events.
pub fn summary(row: &ContactImportRow) -> Value {
    let errors: Value = serde_json::from_str(&row.errors).unwrap_or_else(|_| json!([]));
    let reported = errors.as_array().map_or(0, Vec::len) as i64;
    json!({
        "id": row.id,
        "status": row.status,
        "filename": row.filename,
        "bytes_read": row.bytes_read,
        "rows": row.rows_read,
        "created": row.created,
        "updated": row.updated,
        "failed": row.failed,
        "errors": errors,
        "errors_truncated": row.failed > reported,
        "failure_reason": row.failure_reason,
        "created_at": crate::clock::rfc3339(row.created_at),
        "finished_at": row.finished_at.map(crate::clock::rfc3339),
    })
}

fn column_of(header: &str) -> (Column, String) {
    let key: String = header
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    let key = key.trim_matches('_').to_owned();
    let column = match key.as_str() {
        k if PHONE_COLUMNS.contains(&k) => Column::Phone,
        "name" | "full_name" => Column::Name,
        "email" | "e_mail" => Column::Email,
        "notes" | "note" => Column::Notes,
        "tags" | "tag" => Column::Tags,
        "opt_in" | "optin" | "opted_in" => Column::OptIn,
        "custom_fields" => Column::CustomJson,
        // What an export adds about a contact that a file cannot set.
        "" | "id" | "source" | "opt_in_reason" | "created_at" | "updated_at"
        | "last_message_at" => Column::Ignored,
        k if is_field_key(k) => Column::Custom,
        _ => Column::Ignored,
    };
    (column, key)
}

/// A row as the contact it describes, checked like a POST of it; the reason when it is wrong.
fn row_contact(
    columns: &[(Column, String)],
    fields: &[String],
    extra_tags: &[String],
) -> Result<ImportedContact, String> {
    let mut body = Map::new();
    let mut custom = Map::new();
    let mut tags: Vec<Value> = extra_tags.iter().map(|t| json!(t)).collect();
    for ((column, key), value) in columns.iter().zip(fields) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match column {
            Column::Phone => {
                body.insert("phone".into(), json!(value));
            }
            Column::Name => {
                body.insert("name".into(), json!(value));
            }
            Column::Email => {
                body.insert("email".into(), json!(value));
            }
            Column::Notes => {
                body.insert("notes".into(), json!(value));
            }
            Column::Tags => tags.extend(value.split([',', ';']).map(|t| json!(t))),
            Column::OptIn => {
                let state = match value.to_lowercase().as_str() {
                    "yes" | "y" | "true" | "1" | "opted_in" | "opt_in" => "opted_in",
                    "no" | "n" | "false" | "0" | "opted_out" | "opt_out" => "opted_out",
                    "unknown" => continue,
                    _ => {
                        return Err(format!(
                            "opt_in: \"{value}\" is not yes, no, opted_in or opted_out"
                        ));
                    }
                };
                body.insert("opt_in".into(), json!(state));
            }
            Column::Custom => {
                custom.insert(key.clone(), json!(value));
            }
            Column::CustomJson => match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(fields)) => {
                    for (k, v) in fields {
                        custom.entry(k).or_insert(v);
                    }
                }
                _ => {
                    return Err(
                        "custom_fields: must be a JSON object, like {\"plan\": \"gold\"}".into(),
                    );
                }
            },
            Column::Ignored => {}
        }
    }
    if !body.contains_key("phone") {
        return Err("phone: the row has no phone number".into());
    }
    body.insert("tags".into(), Value::Array(tags));
    if !custom.is_empty() {
        body.insert("custom_fields".into(), Value::Object(custom));
    }
    let input = ContactInput::parse(&Value::Object(body), true).map_err(|e| e.summary())?;
    let set = |c: Change<String>| match c {
        Change::Set(v) => Some(v),
        Change::Keep | Change::Clear => None,
    };
    Ok(ImportedContact {
        wa_id: input
            .phone
            .map(|p| p.as_str().to_owned())
            .ok_or("phone: the row has no phone number")?,
        name: set(input.name),
        email: set(input.email),
        notes: set(input.notes),
        custom_fields: input
            .custom_fields
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect(),
        tags: input.tags.unwrap_or_default(),
        opt_in: input.opt_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<(Column, String)> {
        names.iter().map(|h| column_of(h)).collect()
    }

    fn row(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn columns_are_known_by_their_common_names_and_the_rest_are_custom_fields() {
        let columns = header(&[
            "Phone Number",
            "Full Name",
            "E-mail",
            "Tags",
            "Plan",
            "Opt-in",
            "!!",
        ]);
        let contact = row_contact(
            &columns,
            &row(&[
                "+49 151 1234567",
                "Ana",
                "ana@example.com",
                "vip; lead",
                "gold",
                "yes",
                "x",
            ]),
            &["spring".to_owned()],
        )
        .unwrap();
        assert_eq!(contact.wa_id, "491511234567");
        assert_eq!(contact.name.as_deref(), Some("Ana"));
        assert_eq!(contact.email.as_deref(), Some("ana@example.com"));
        assert_eq!(contact.tags, ["spring", "vip", "lead"]);
        assert_eq!(
            contact.custom_fields,
            [("plan".to_owned(), "gold".to_owned())]
        );
        assert_eq!(contact.opt_in.as_deref(), Some("opted_in"));
    }

    #[test]
    fn a_bad_row_says_what_is_wrong() {
        let columns = header(&["phone", "email", "opt_in"]);
        let reason = row_contact(&columns, &row(&["12ab", "", ""]), &[]).unwrap_err();
        assert!(reason.contains("phone"), "{reason}");
        let reason = row_contact(&columns, &row(&["+4915112345678", "nope", ""]), &[]).unwrap_err();
        assert!(reason.contains("email"), "{reason}");
        let reason =
            row_contact(&columns, &row(&["+4915112345678", "", "maybe"]), &[]).unwrap_err();
        assert!(reason.contains("opt_in"), "{reason}");
        let reason = row_contact(&columns, &row(&["", "a@b.co", ""]), &[]).unwrap_err();
        assert!(reason.contains("phone"), "{reason}");
    }
}
