//! Contacts as a CRM keeps them: one per phone number and tenant (a customer's messages link to
//! the contact that has their number), with name, email, tags, custom fields, notes, where the
//! contact came from and whether they may be sent marketing.
//!
//! A customer who writes an opt-out word, or whom an agent marks, is opted out: marketing
//! templates and broadcasts to them are refused from then on.

pub mod csv;
pub mod export;
pub mod import;
pub mod input;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::clock::now_ms;
use crate::store::contacts::{ContactDetailRow, ContactFields, ContactFilter, NewContact};
use crate::store::{Store, StoreError};
use crate::validation::FieldErrors;
pub use input::{Change, ContactInput, opt_in, source};

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error("contact not found")]
    NotFound,
    #[error("a contact with this number exists already ({0}); change it with PATCH instead")]
    Exists(String),
    #[error(
        "this contact has conversations or sequence enrollments, and their history stays with it; it cannot be deleted"
    )]
    HasHistory,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Contact CRUD for the API, the dashboard and the importer.
pub struct Contacts<'a> {
    pub store: &'a Store,
}

impl<'a> Contacts<'a> {
    pub fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<ContactDetailRow, ContactError> {
        self.store
            .contact_detail(tenant_id, id)
            .await?
            .ok_or(ContactError::NotFound)
    }

    /// Creates a contact from a POST body; `source` says who made it (`api`, `dashboard`).
    pub async fn create(
        &self,
        tenant_id: &str,
        body: &Value,
        source: &str,
    ) -> Result<ContactDetailRow, ContactError> {
        let input = ContactInput::parse(body, true).map_err(ContactError::Invalid)?;
        let Some(phone) = input.phone.as_ref() else {
            return Err(ContactError::Invalid(FieldErrors::new()));
        };
        if let Some(existing) = self
            .store
            .contact_by_wa_id(tenant_id, phone.as_str())
            .await?
        {
            return Err(ContactError::Exists(existing.id));
        }
        let custom = merged_fields("{}", &input.custom_fields);
        let now = now_ms();
        let set = |c: &Change<String>| match c {
            Change::Set(v) => Some(v.clone()),
            Change::Keep | Change::Clear => None,
        };
        let (name, email, notes) = (set(&input.name), set(&input.email), set(&input.notes));
        let state = input.opt_in.as_deref().unwrap_or(opt_in::UNKNOWN);
        let mut tx = self.store.begin().await?;
        let inserted = self
            .store
            .insert_contact(
                &mut tx,
                &NewContact {
                    tenant_id,
                    wa_id: phone.as_str(),
                    name: name.as_deref(),
                    email: email.as_deref(),
                    notes: notes.as_deref(),
                    custom_fields: &custom,
                    source,
                    opt_in: state,
                    opt_in_reason: input.opt_in_reason.as_deref(),
                    tags: input.tags.as_deref().unwrap_or_default(),
                    now,
                },
            )
            .await;
        let id = match inserted {
            Ok(id) => id,
            // Created by a message or another request since the check above.
            Err(e) if e.is_unique_violation() => {
                drop(tx);
                let existing = self
                    .store
                    .contact_by_wa_id(tenant_id, phone.as_str())
                    .await?;
                return Err(ContactError::Exists(
                    existing.map(|c| c.id).unwrap_or_default(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await.map_err(StoreError::from)?;
        self.get(tenant_id, &id).await
    }

    /// Changes the fields a PATCH body gives; `who` names the changer in an opt-in's reason
    /// when the body gives none.
    pub async fn update(
        &self,
        tenant_id: &str,
        id: &str,
        body: &Value,
        who: &str,
    ) -> Result<ContactDetailRow, ContactError> {
        let input = ContactInput::parse(body, false).map_err(ContactError::Invalid)?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        if !self.store.lock_contact(&mut tx, tenant_id, id, now).await? {
            return Err(ContactError::NotFound);
        }
        let current = self
            .store
            .contact_in(&mut tx, tenant_id, id)
            .await?
            .ok_or(ContactError::NotFound)?;
        let apply = |change: &Change<String>, now: &Option<String>| match change {
            Change::Keep => now.clone(),
            Change::Clear => None,
            Change::Set(v) => Some(v.clone()),
        };
        let name = apply(&input.name, &current.name);
        let email = apply(&input.email, &current.email);
        let notes = apply(&input.notes, &current.notes);
        let custom = merged_fields(&current.custom_fields, &input.custom_fields);
        let (state, changed_at, reason) = match input.opt_in.as_deref() {
            Some(state) if state != current.opt_in => (
                state.to_owned(),
                Some(now),
                Some(
                    input
                        .opt_in_reason
                        .clone()
                        .unwrap_or_else(|| format!("marked by {who}")),
                ),
            ),
            _ => (
                current.opt_in.clone(),
                current.opt_in_changed_at,
                current.opt_in_reason.clone(),
            ),
        };
        self.store
            .write_contact_fields(
                &mut tx,
                tenant_id,
                id,
                &ContactFields {
                    name: name.as_deref(),
                    // Once a person named the contact, WhatsApp's profile name no longer does;
                    // clearing the name hands it back to the profile.
                    name_set: match input.name {
                        Change::Set(_) => true,
                        Change::Clear => false,
                        Change::Keep => current.name_set,
                    },
                    email: email.as_deref(),
                    notes: notes.as_deref(),
                    custom_fields: &custom,
                    opt_in: &state,
                    opt_in_changed_at: changed_at,
                    opt_in_reason: reason.as_deref(),
                },
                now,
            )
            .await?;
        if let Some(tags) = &input.tags {
            self.store
                .replace_tags(&mut tx, tenant_id, id, tags)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.get(tenant_id, id).await
    }

    /// Deletes a contact that has no history; one with conversations keeps them and stays.
    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<(), ContactError> {
        self.get(tenant_id, id).await?;
        if self.store.delete_contact(tenant_id, id).await? {
            Ok(())
        } else {
            Err(ContactError::HasHistory)
        }
    }

    pub async fn list(
        &self,
        tenant_id: &str,
        filter: &ContactFilter,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ContactDetailRow>, ContactError> {
        Ok(self
            .store
            .search_contacts(tenant_id, filter, before, limit)
            .await?)
    }
}

/// The stored custom fields with `changes` applied (`None` removes a key).
pub fn merged_fields(stored: &str, changes: &BTreeMap<String, Option<String>>) -> String {
    let mut fields: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    for (key, value) in changes {
        match value {
            Some(v) => {
                fields.insert(key.clone(), Value::String(v.clone()));
            }
            None => {
                fields.remove(key);
            }
        }
    }
    Value::Object(fields).to_string()
}
