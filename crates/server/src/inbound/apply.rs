//! Applies one stored webhook body: every entry × change × message, status and template event,
//! inside the caller's transaction. Redelivery is harmless (a wamid is stored once per connection)
//! and statuses only move forward.

use std::collections::HashMap;

use cloudapi::webhook::{
    ChangeValue, Entry, Item, Message, MessageEchoesValue, MessagesValue, Notification, Status,
    StatusKind, TemplateStatusUpdate,
};
use serde_json::Value;

use crate::store::connections::ConnectionRow;
use crate::store::conversations::{ContactUpsert, ConversationTouch, ConversationUpsert};
use crate::store::inbox::InboxRow;
use crate::store::messages::{
    DIRECTION_INBOUND, DIRECTION_OUTBOUND, MessageError, MessageRow, NewMessage, StatusChange, rank,
};
use crate::store::statuses::NewStatus;
use crate::store::templates::{TemplateRow, TemplateUpdate};
use crate::store::{Conn, Store, StoreError};
use crate::views;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The body can never be applied (not a webhook at all); retrying will not help.
    #[error("the body is not a webhook: {0}")]
    Unreadable(String),
    /// The database failed; the row is retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApplyError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Unreadable(_))
    }
}

/// What changed, to announce once the transaction has committed.
#[derive(Debug, Clone)]
pub enum Change {
    MessageCreated(Box<MessageRow>),
    StatusChanged {
        change: StatusChange,
        wamid: String,
        error: Option<MessageError>,
    },
    ConversationTouched {
        tenant_id: String,
        conversation_id: String,
        unread_changed: bool,
    },
    TemplateUpdated(Box<TemplateRow>),
}

/// What one processing transaction remembers: connections, contacts and conversations already
/// looked up, and the conversation changes to write once at the end rather than per message.
/// It lives exactly as long as its transaction, so nothing in it can outlive a rollback.
#[derive(Default)]
pub struct Batch {
    by_id: HashMap<String, Option<ConnectionRow>>,
    by_phone: HashMap<String, Option<ConnectionRow>>,
    by_waba: HashMap<String, Vec<ConnectionRow>>,
    contacts: HashMap<(String, String), String>,
    conversations: HashMap<(String, String), String>,
    touches: HashMap<String, PendingTouch>,
    /// Customer messages waiting for the batch's bulk insert.
    inbound: Vec<PendingInbound>,
}

/// A customer message, parsed and routed, to be stored with the rest of its batch.
struct PendingInbound {
    tenant_id: String,
    connection_id: String,
    customer: String,
    name: Option<String>,
    wamid: String,
    kind: String,
    payload: String,
    message_at: i64,
    preview: String,
    unread: i64,
    opens_window: bool,
}

/// The sum of what a batch's messages change on one conversation.
struct PendingTouch {
    tenant_id: String,
    unread_added: i64,
    newest_at: i64,
    newest_preview: String,
    newest_inbound: Option<(i64, String)>,
}

impl Batch {
    /// Customer messages waiting for [`Batch::flush`].
    pub fn pending_messages(&self) -> usize {
        self.inbound.len()
    }

    /// Adds a stored message to its conversation's pending change.
    fn touch(
        &mut self,
        row: &MessageRow,
        preview: String,
        unread: i64,
        inbound_wamid: Option<&str>,
    ) {
        let pending = self
            .touches
            .entry(row.conversation_id.clone())
            .or_insert_with(|| PendingTouch {
                tenant_id: row.tenant_id.clone(),
                unread_added: 0,
                newest_at: i64::MIN,
                newest_preview: String::new(),
                newest_inbound: None,
            });
        pending.unread_added += unread;
        if row.message_at >= pending.newest_at {
            pending.newest_at = row.message_at;
            pending.newest_preview = preview;
        }
        if let Some(wamid) = inbound_wamid
            && pending
                .newest_inbound
                .as_ref()
                .is_none_or(|(at, _)| row.message_at >= *at)
        {
            pending.newest_inbound = Some((row.message_at, wamid.to_owned()));
        }
    }

    /// Stores the batch's customer messages (contacts, conversations and messages in a few
    /// multi-row statements), then writes every conversation's change once, and returns what to
    /// announce. Call once, after the last row of the transaction.
    pub async fn flush(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        now: i64,
    ) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        let inbound = std::mem::take(&mut self.inbound);
        if !inbound.is_empty() {
            self.store_inbound(store, conn, inbound, now, &mut changes)
                .await?;
        }
        let touches: Vec<(String, PendingTouch)> = self.touches.drain().collect();
        let rows: Vec<ConversationTouch<'_>> = touches
            .iter()
            .map(|(conversation_id, pending)| ConversationTouch {
                conversation_id,
                message_at: pending.newest_at,
                preview: &pending.newest_preview,
                unread_added: pending.unread_added,
                inbound: pending
                    .newest_inbound
                    .as_ref()
                    .map(|(at, wamid)| (*at, wamid.as_str())),
                now,
            })
            .collect();
        store.touch_conversations(conn, &rows).await?;
        for (conversation_id, pending) in touches {
            changes.push(Change::ConversationTouched {
                tenant_id: pending.tenant_id,
                conversation_id,
                unread_changed: pending.unread_added > 0,
            });
        }
        Ok(changes)
    }

    async fn store_inbound(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        inbound: Vec<PendingInbound>,
        now: i64,
        changes: &mut Vec<Change>,
    ) -> Result<(), StoreError> {
        // Contacts not yet known in this transaction, or that now come with a name.
        let mut wanted: Vec<ContactUpsert<'_>> = Vec::new();
        let mut seen = HashMap::new();
        for p in &inbound {
            let key = (p.tenant_id.clone(), p.customer.clone());
            if self.contacts.contains_key(&key) && p.name.is_none() {
                continue;
            }
            match seen.get(&key) {
                Some(&at) => {
                    if p.name.is_some() {
                        let slot: &mut ContactUpsert<'_> = &mut wanted[at];
                        slot.name = p.name.as_deref();
                    }
                }
                None => {
                    seen.insert(key, wanted.len());
                    wanted.push(ContactUpsert {
                        tenant_id: &p.tenant_id,
                        wa_id: &p.customer,
                        name: p.name.as_deref(),
                    });
                }
            }
        }
        for (key, id) in store.upsert_contacts(conn, &wanted, now).await? {
            self.contacts.insert(key, id);
        }
        let mut wanted: Vec<ConversationUpsert<'_>> = Vec::new();
        let mut seen = HashMap::new();
        let mut contact_ids = Vec::with_capacity(inbound.len());
        for p in &inbound {
            let contact_id = self
                .contacts
                .get(&(p.tenant_id.clone(), p.customer.clone()))
                .cloned()
                .ok_or_else(|| StoreError::Corrupt("a contact upsert returned no row".into()))?;
            contact_ids.push(contact_id);
        }
        for (p, contact_id) in inbound.iter().zip(&contact_ids) {
            let key = (p.connection_id.clone(), contact_id.clone());
            if self.conversations.contains_key(&key) {
                continue;
            }
            match seen.get(&key) {
                Some(&at) => {
                    let slot: &mut ConversationUpsert<'_> = &mut wanted[at];
                    slot.message_at = slot.message_at.min(p.message_at);
                }
                None => {
                    seen.insert(key, wanted.len());
                    wanted.push(ConversationUpsert {
                        tenant_id: &p.tenant_id,
                        connection_id: &p.connection_id,
                        contact_id,
                        message_at: p.message_at,
                    });
                }
            }
        }
        for (key, id) in store.upsert_conversations(conn, &wanted, now).await? {
            self.conversations.insert(key, id);
        }
        let mut rows = Vec::with_capacity(inbound.len());
        for (p, contact_id) in inbound.iter().zip(contact_ids) {
            let conversation_id = self
                .conversations
                .get(&(p.connection_id.clone(), contact_id.clone()))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt("a conversation upsert returned no row".into())
                })?;
            rows.push(MessageRow {
                id: crate::ids::new_id(),
                tenant_id: p.tenant_id.clone(),
                connection_id: p.connection_id.clone(),
                conversation_id,
                contact_id,
                contact_wa_id: p.customer.clone(),
                contact_name: p.name.clone(),
                direction: DIRECTION_INBOUND.to_owned(),
                wamid: Some(p.wamid.clone()),
                message_type: p.kind.clone(),
                payload: p.payload.clone(),
                status: "received".to_owned(),
                status_rank: rank::RECEIVED,
                error_code: None,
                error_title: None,
                error_message: None,
                message_at: p.message_at,
                created_at: now,
                updated_at: now,
            });
        }
        let new: Vec<NewMessage<'_>> = rows
            .iter()
            .map(|r| NewMessage {
                id: &r.id,
                tenant_id: &r.tenant_id,
                connection_id: &r.connection_id,
                conversation_id: &r.conversation_id,
                contact_id: &r.contact_id,
                direction: DIRECTION_INBOUND,
                wamid: r.wamid.as_deref(),
                message_type: &r.message_type,
                payload: &r.payload,
                status: "received",
                status_rank: rank::RECEIVED,
                message_at: r.message_at,
                now,
            })
            .collect();
        let inserted = store.insert_messages(conn, &new).await?;
        for (row, p) in rows.into_iter().zip(inbound) {
            if !inserted.contains(&row.id) {
                metrics::counter!("wagate_messages_duplicate_total").increment(1);
                continue;
            }
            self.touch(
                &row,
                p.preview,
                p.unread,
                p.opens_window.then_some(p.wamid.as_str()),
            );
            metrics::counter!("wagate_messages_received_total").increment(1);
            changes.push(Change::MessageCreated(Box::new(row)));
        }
        Ok(())
    }

    async fn by_id(
        &mut self,
        store: &Store,
        id: &str,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        if let Some(found) = self.by_id.get(id) {
            return Ok(found.clone());
        }
        let found = store
            .connection_by_id(id)
            .await?
            .filter(|c| c.status != crate::store::connections::STATUS_DISCONNECTED);
        self.by_id.insert(id.to_owned(), found.clone());
        Ok(found)
    }

    async fn by_phone(
        &mut self,
        store: &Store,
        phone_number_id: &str,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        if let Some(found) = self.by_phone.get(phone_number_id) {
            return Ok(found.clone());
        }
        let found = store.connection_by_phone_number_id(phone_number_id).await?;
        self.by_phone
            .insert(phone_number_id.to_owned(), found.clone());
        Ok(found)
    }

    async fn by_waba(
        &mut self,
        store: &Store,
        waba_id: &str,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        if let Some(found) = self.by_waba.get(waba_id) {
            return Ok(found.clone());
        }
        let found = store.live_connections_of_waba(waba_id).await?;
        self.by_waba.insert(waba_id.to_owned(), found.clone());
        Ok(found)
    }
}

/// Applies one inbox row and returns what changed.
pub async fn apply_row(
    store: &Store,
    conn: &mut Conn,
    cache: &mut Batch,
    row: &InboxRow,
    now: i64,
) -> Result<Vec<Change>, ApplyError> {
    let notification =
        Notification::parse(&row.body).map_err(|e| ApplyError::Unreadable(e.to_string()))?;
    let own = match &row.connection_id {
        Some(id) => match cache.by_id(store, id).await? {
            Some(connection) => Some(connection),
            // Disconnected since the body arrived: its history stays, nothing new is applied.
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let mut changes = Vec::new();
    let mut applier = Applier {
        store,
        conn,
        now,
        received_at: row.received_at,
        changes: &mut changes,
        batch: cache,
    };
    for entry in notification.entry.iter().filter_map(Item::parsed) {
        for change in entry.changes.iter() {
            let change = match change {
                Item::Parsed(change) => change,
                Item::Malformed(bad) => {
                    skipped("malformed_change", &bad.error);
                    continue;
                }
            };
            match &change.value {
                ChangeValue::Messages(value) => {
                    let target = route(
                        store,
                        applier.batch,
                        own.as_ref(),
                        &value.metadata.phone_number_id,
                    )
                    .await?;
                    if let Some(connection) = target {
                        applier.messages(&connection, value).await?;
                    }
                }
                ChangeValue::MessageEchoes(value) => {
                    let target = route(
                        store,
                        applier.batch,
                        own.as_ref(),
                        &value.metadata.phone_number_id,
                    )
                    .await?;
                    if let Some(connection) = target {
                        applier.echoes(&connection, value).await?;
                    }
                }
                ChangeValue::TemplateStatus(_)
                | ChangeValue::TemplateQuality(_)
                | ChangeValue::TemplateCategory(_) => {
                    for connection in
                        template_targets(store, applier.batch, own.as_ref(), entry).await?
                    {
                        applier.template(&connection, entry, &change.value).await?;
                    }
                }
                ChangeValue::Other { field, .. } => {
                    tracing::debug!(field = %field, "webhook field not applied; kept in the inbox");
                }
                ChangeValue::Malformed { field, error, .. } => {
                    tracing::warn!(field = %field, error = %error, "webhook change did not fit its type; kept in the inbox");
                    skipped("malformed_change", error);
                }
            }
        }
    }
    for bad in notification.entry.iter().filter_map(Item::malformed) {
        skipped("malformed_entry", &bad.error);
    }
    Ok(changes)
}

/// The connection a change belongs to. A connection's own URL only applies its own number's items;
/// the platform URL routes each item by its phone number.
async fn route(
    store: &Store,
    cache: &mut Batch,
    own: Option<&ConnectionRow>,
    phone_number_id: &str,
) -> Result<Option<ConnectionRow>, StoreError> {
    match own {
        Some(connection) if connection.phone_number_id == phone_number_id => {
            Ok(Some(connection.clone()))
        }
        Some(connection) => {
            tracing::warn!(
                connection_id = %connection.id,
                phone_number_id = %phone_number_id,
                "webhook item names another phone number than this connection's; not applied"
            );
            metrics::counter!("wagate_webhook_items_skipped_total", "reason" => "foreign_phone_number").increment(1);
            Ok(None)
        }
        None => {
            let found = cache.by_phone(store, phone_number_id).await?;
            if found.is_none() {
                tracing::warn!(phone_number_id = %phone_number_id, "platform webhook for a phone number no tenant has connected; not applied");
                metrics::counter!("wagate_webhook_items_skipped_total", "reason" => "unknown_phone_number").increment(1);
            }
            Ok(found)
        }
    }
}

/// Template events name a WhatsApp Business Account (the entry id), not a phone number.
async fn template_targets(
    store: &Store,
    cache: &mut Batch,
    own: Option<&ConnectionRow>,
    entry: &Entry,
) -> Result<Vec<ConnectionRow>, StoreError> {
    match own {
        Some(connection) => match &connection.waba_id {
            Some(waba) if waba != &entry.id => {
                metrics::counter!("wagate_webhook_items_skipped_total", "reason" => "foreign_waba")
                    .increment(1);
                Ok(Vec::new())
            }
            _ => Ok(vec![connection.clone()]),
        },
        None => cache.by_waba(store, &entry.id).await,
    }
}

fn skipped(reason: &'static str, error: &str) {
    tracing::warn!(reason, error = %error, "webhook item skipped; the raw body stays in the inbox");
    metrics::counter!("wagate_webhook_items_skipped_total", "reason" => reason).increment(1);
}

struct Applier<'a> {
    store: &'a Store,
    conn: &'a mut Conn,
    now: i64,
    received_at: i64,
    changes: &'a mut Vec<Change>,
    batch: &'a mut Batch,
}

impl Applier<'_> {
    async fn messages(
        &mut self,
        connection: &ConnectionRow,
        value: &MessagesValue,
    ) -> Result<(), StoreError> {
        for item in value.messages() {
            match item {
                Item::Parsed(message) => {
                    let name = message
                        .from
                        .as_deref()
                        .and_then(|from| value.contact_name(from));
                    self.inbound(connection, message, name).await?;
                }
                Item::Malformed(bad) => skipped("malformed_message", &bad.error),
            }
        }
        for item in value.statuses() {
            match item {
                Item::Parsed(status) => self.status(connection, status).await?,
                Item::Malformed(bad) => skipped("malformed_status", &bad.error),
            }
        }
        for error in value.errors().iter().filter_map(Item::parsed) {
            tracing::warn!(
                connection_id = %connection.id,
                code = error.code,
                title = error.title.as_deref().unwrap_or_default(),
                "Meta reported an error in a webhook"
            );
            metrics::counter!("wagate_webhook_value_errors_total").increment(1);
        }
        Ok(())
    }

    async fn inbound(
        &mut self,
        connection: &ConnectionRow,
        message: &Message,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(customer) = message
            .from
            .as_deref()
            .or(message.from_user_id.as_deref())
            .filter(|s| !s.is_empty())
        else {
            skipped("message_without_sender", &message.id);
            return Ok(());
        };
        let kind = message.message_type();
        self.batch.inbound.push(PendingInbound {
            tenant_id: connection.tenant_id.clone(),
            connection_id: connection.id.clone(),
            customer: customer.to_owned(),
            name: name.map(str::to_owned),
            wamid: message.id.clone(),
            kind: kind.to_owned(),
            payload: message.to_value().to_string(),
            message_at: message_time(message.timestamp_secs(), self.received_at),
            preview: views::preview(kind, message.type_object()),
            unread: i64::from(counts_as_unread(kind)),
            opens_window: opens_service_window(kind),
        });
        Ok(())
    }

    async fn echoes(
        &mut self,
        connection: &ConnectionRow,
        value: &MessageEchoesValue,
    ) -> Result<(), StoreError> {
        for item in value.message_echoes() {
            let Item::Parsed(message) = item else {
                if let Some(bad) = item.malformed() {
                    skipped("malformed_echo", &bad.error);
                }
                continue;
            };
            let customer = message.to.clone().or_else(|| {
                message
                    .extra
                    .get("to_user_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let Some(customer) = customer.filter(|s| !s.is_empty()) else {
                skipped("echo_without_recipient", &message.id);
                continue;
            };
            let kind = message.message_type();
            let message_at = message_time(message.timestamp_secs(), self.received_at);
            let payload = message.to_value();
            let stored = self
                .store_message(StoredMessage {
                    connection,
                    customer: &customer,
                    name: value.contact_name(&customer),
                    direction: DIRECTION_OUTBOUND,
                    wamid: &message.id,
                    kind,
                    payload: &payload,
                    status: "sent",
                    status_rank: rank::SENT,
                    message_at,
                })
                .await?;
            let Some(row) = stored else { continue };
            let preview = views::preview(kind, message.type_object());
            self.batch.touch(&row, preview, 0, None);
            let mut row = row;
            self.apply_waiting_status(connection, &mut row).await?;
            self.changes.push(Change::MessageCreated(Box::new(row)));
        }
        Ok(())
    }

    /// A status that arrived before its message is applied now that the message exists.
    async fn apply_waiting_status(
        &mut self,
        connection: &ConnectionRow,
        row: &mut MessageRow,
    ) -> Result<(), StoreError> {
        let Some(wamid) = row.wamid.clone() else {
            return Ok(());
        };
        let Some(waiting) = self
            .store
            .furthest_status(self.conn, &connection.id, &wamid, row.status_rank)
            .await?
        else {
            return Ok(());
        };
        let status_value: Value = serde_json::from_str(&waiting.payload).unwrap_or(Value::Null);
        let error = serde_json::from_value::<Status>(status_value)
            .ok()
            .and_then(|s| first_error(&s));
        let Some(status) = contract_status(&waiting.status) else {
            return Ok(());
        };
        if let Some(change) = self
            .store
            .advance_message_status(
                self.conn,
                &connection.id,
                &wamid,
                status,
                waiting.status_rank,
                error.as_ref(),
                self.now,
            )
            .await?
        {
            row.status = change.status;
            row.status_rank = waiting.status_rank;
            if let Some(error) = error {
                row.error_code = error.code;
                row.error_title = error.title;
                row.error_message = error.message;
            }
        }
        Ok(())
    }

    async fn status(
        &mut self,
        connection: &ConnectionRow,
        status: &Status,
    ) -> Result<(), StoreError> {
        let (status_rank, contract) = status_rank(&status.status);
        let payload = status.to_value().to_string();
        self.store
            .insert_status(
                self.conn,
                &NewStatus {
                    connection_id: &connection.id,
                    wamid: &status.id,
                    status: status.status.as_str(),
                    status_rank,
                    meta_timestamp: status.timestamp_secs(),
                    recipient_id: status.recipient_id.as_deref(),
                    payload: &payload,
                    now: self.now,
                },
            )
            .await?;
        let Some(contract) = contract else {
            tracing::debug!(
                status = status.status.as_str(),
                "status kind not known; kept, not applied"
            );
            return Ok(());
        };
        let error = first_error(status);
        if let Some(change) = self
            .store
            .advance_message_status(
                self.conn,
                &connection.id,
                &status.id,
                contract,
                status_rank,
                error.as_ref(),
                self.now,
            )
            .await?
        {
            metrics::counter!("wagate_message_status_changes_total", "status" => contract)
                .increment(1);
            self.changes.push(Change::StatusChanged {
                change,
                wamid: status.id.clone(),
                error,
            });
        }
        Ok(())
    }

    async fn template(
        &mut self,
        connection: &ConnectionRow,
        entry: &Entry,
        value: &ChangeValue,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_string(value).unwrap_or_default();
        let mut update = TemplateUpdate {
            tenant_id: &connection.tenant_id,
            connection_id: &connection.id,
            waba_id: Some(&entry.id),
            payload: &payload,
            now: self.now,
            ..TemplateUpdate::default()
        };
        let meta_id;
        let reason;
        match value {
            ChangeValue::TemplateStatus(v) => {
                meta_id = v.message_template_id.as_ref().map(ToString::to_string);
                update.name = v.message_template_name.as_deref();
                update.language = v.message_template_language.as_deref();
                update.status = Some(v.event.as_str());
                update.category = v.message_template_category.as_deref();
                reason = rejection_reason(v);
                if v.event.eq_ignore_ascii_case("REJECTED") {
                    update.rejected_reason = Some(reason.as_deref());
                } else if v.event.eq_ignore_ascii_case("APPROVED") {
                    update.rejected_reason = Some(None);
                }
            }
            ChangeValue::TemplateQuality(v) => {
                meta_id = v.message_template_id.as_ref().map(ToString::to_string);
                update.name = v.message_template_name.as_deref();
                update.language = v.message_template_language.as_deref();
                update.quality_score = v.new_quality_score.as_deref();
            }
            ChangeValue::TemplateCategory(v) => {
                meta_id = v.message_template_id.as_ref().map(ToString::to_string);
                update.name = v.message_template_name.as_deref();
                update.language = v.message_template_language.as_deref();
                update.category = v.new_category.as_deref();
            }
            _ => return Ok(()),
        }
        update.meta_template_id = meta_id.as_deref();
        if let Some(row) = self.store.apply_template_update(self.conn, &update).await? {
            self.changes.push(Change::TemplateUpdated(Box::new(row)));
        }
        Ok(())
    }

    /// Stores a message (creating its contact and conversation) unless its wamid is known;
    /// returns the stored row, or `None` for a redelivery.
    async fn store_message(
        &mut self,
        m: StoredMessage<'_>,
    ) -> Result<Option<MessageRow>, StoreError> {
        let tenant_id = &m.connection.tenant_id;
        let contact_key = (tenant_id.clone(), m.customer.to_owned());
        let contact_id = match self.batch.contacts.get(&contact_key) {
            // Seen earlier in this transaction; a name given now is still worth keeping.
            Some(id) if m.name.is_none() => id.clone(),
            _ => {
                let id = self
                    .store
                    .upsert_contact(self.conn, tenant_id, m.customer, m.name, self.now)
                    .await?;
                self.batch.contacts.insert(contact_key, id.clone());
                id
            }
        };
        let conversation_key = (m.connection.id.clone(), contact_id.clone());
        let conversation_id = match self.batch.conversations.get(&conversation_key) {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .store
                    .upsert_conversation(
                        self.conn,
                        tenant_id,
                        &m.connection.id,
                        &contact_id,
                        m.message_at,
                        self.now,
                    )
                    .await?;
                self.batch
                    .conversations
                    .insert(conversation_key, id.clone());
                id
            }
        };
        let id = crate::ids::new_id();
        let payload = m.payload.to_string();
        let inserted = self
            .store
            .insert_message(
                self.conn,
                &NewMessage {
                    id: &id,
                    tenant_id,
                    connection_id: &m.connection.id,
                    conversation_id: &conversation_id,
                    contact_id: &contact_id,
                    direction: m.direction,
                    wamid: Some(m.wamid),
                    message_type: m.kind,
                    payload: &payload,
                    status: m.status,
                    status_rank: m.status_rank,
                    message_at: m.message_at,
                    now: self.now,
                },
            )
            .await?;
        if !inserted {
            return Ok(None);
        }
        Ok(Some(MessageRow {
            id,
            tenant_id: tenant_id.clone(),
            connection_id: m.connection.id.clone(),
            conversation_id,
            contact_id,
            contact_wa_id: m.customer.to_owned(),
            contact_name: m.name.map(str::to_owned),
            direction: m.direction.to_owned(),
            wamid: Some(m.wamid.to_owned()),
            message_type: m.kind.to_owned(),
            payload,
            status: m.status.to_owned(),
            status_rank: m.status_rank,
            error_code: None,
            error_title: None,
            error_message: None,
            message_at: m.message_at,
            created_at: self.now,
            updated_at: self.now,
        }))
    }
}

struct StoredMessage<'a> {
    connection: &'a ConnectionRow,
    customer: &'a str,
    name: Option<&'a str>,
    direction: &'static str,
    wamid: &'a str,
    kind: &'a str,
    payload: &'a Value,
    status: &'static str,
    status_rank: i64,
    message_at: i64,
}

/// Meta's seconds as milliseconds; a missing or absurd timestamp falls back to when we received it.
fn message_time(meta_secs: Option<i64>, received_at: i64) -> i64 {
    match meta_secs {
        Some(secs) if secs > 0 && secs < 100_000_000_000 => secs * 1000,
        _ => received_at,
    }
}

/// Reactions, edits, deletions and system notices are not new things to read.
fn counts_as_unread(kind: &str) -> bool {
    !matches!(kind, "reaction" | "edit" | "revoke" | "system")
}

/// Any customer message opens the 24-hour window; a system notice is not from the customer.
fn opens_service_window(kind: &str) -> bool {
    kind != "system"
}

/// Where a Meta status sits in the forward-only order, and the contract status it becomes
/// (`None` for kinds we keep but do not apply).
fn status_rank(kind: &StatusKind) -> (i64, Option<&'static str>) {
    match kind {
        StatusKind::Sent => (rank::SENT, Some("sent")),
        StatusKind::Delivered => (rank::DELIVERED, Some("delivered")),
        // A played voice message has been read; the contract has no separate state for it.
        StatusKind::Read | StatusKind::Played => (rank::READ, Some("read")),
        StatusKind::Failed => (rank::FAILED, Some("failed")),
        StatusKind::Other(_) => (-1, None),
    }
}

fn contract_status(stored: &str) -> Option<&'static str> {
    status_rank(&StatusKind::from(stored)).1
}

fn first_error(status: &Status) -> Option<MessageError> {
    status.errors().first().map(|e| MessageError {
        code: Some(e.code),
        title: e.title.clone(),
        message: e
            .error_data
            .as_ref()
            .and_then(|d| d.details.clone())
            .or_else(|| e.message.clone()),
    })
}

fn rejection_reason(update: &TemplateStatusUpdate) -> Option<String> {
    let detail = update
        .rejection_info
        .as_ref()
        .and_then(|info| info.reason.clone());
    match (update.reason.as_deref(), detail) {
        (Some(code), Some(detail)) if code != "NONE" => Some(format!("{code}: {detail}")),
        (_, Some(detail)) => Some(detail),
        (Some(code), None) if code != "NONE" => Some(code.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_rank_forward_and_failed_is_final() {
        let order = ["sent", "delivered", "read", "failed"];
        let ranks: Vec<i64> = order
            .iter()
            .map(|s| status_rank(&StatusKind::from(*s)).0)
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(status_rank(&StatusKind::from("played")).1, Some("read"));
        assert_eq!(status_rank(&StatusKind::from("deleted")).1, None);
    }

    #[test]
    fn odd_timestamps_fall_back_to_arrival_time() {
        assert_eq!(message_time(Some(1_749_416_383), 5), 1_749_416_383_000);
        assert_eq!(message_time(None, 5), 5);
        assert_eq!(message_time(Some(-3), 5), 5);
    }
}
