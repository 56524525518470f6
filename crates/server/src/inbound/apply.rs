//! Applies stored webhook bodies: every entry × change × message, status and template event,
//! inside the caller's transaction. Redelivery is harmless (a wamid is stored once per connection)
//! and statuses only move forward.
//!
//! Messages are gathered while the rows of a batch are read and stored together at the end
//! ([`Batch::flush`]): contacts, conversations and messages each in a few multi-row statements,
//! and every conversation updated once. A status about a message stored in the same batch is kept
//! first and applied when the message is inserted, exactly like one that arrives days early.

use std::collections::HashMap;

use cloudapi::webhook::{
    ChangeValue, Entry, Item, Message, MessageEchoesValue, MessagesValue, Notification, Status,
    StatusKind, TemplateStatusUpdate,
};
use serde_json::Value;

use crate::store::connections::{ConnectionRow, STATUS_DISCONNECTED};
use crate::store::conversations::{ContactUpsert, ConversationTouch, ConversationUpsert};
use crate::store::inbox::InboxRow;
use crate::store::media::{
    DIRECTION_INBOUND as MEDIA_INBOUND, DIRECTION_OUTBOUND as MEDIA_OUTBOUND, MediaRow,
    STATUS_PENDING,
};
use crate::store::messages::{
    DIRECTION_INBOUND, DIRECTION_OUTBOUND, MessageError, MessageMedia, MessageRow, NewMessage,
    StatusChange, rank,
};
use crate::store::statuses::NewStatus;
use crate::store::templates::{TemplateRow, TemplateUpdate};
use crate::store::usage::PricedMessage;
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

/// What one processing transaction gathers and remembers: connections, contacts and
/// conversations already looked up, and the messages and conversation changes to write at the
/// end. It lives exactly as long as its transaction, so nothing in it can outlive a rollback.
pub struct Batch {
    /// Attempts each media fetch queued by this batch gets.
    media_fetch_attempts: i64,
    /// Jobs queued by this batch, so the runner can be woken once it commits.
    jobs_queued: usize,
    by_id: HashMap<String, Option<ConnectionRow>>,
    by_phone: HashMap<String, Option<ConnectionRow>>,
    by_waba: HashMap<String, Vec<ConnectionRow>>,
    contacts: HashMap<(String, String), String>,
    conversations: HashMap<(String, String), String>,
    messages: Vec<PendingMessage>,
    touches: HashMap<String, PendingTouch>,
    /// Whether each connection seen has sequences (or enrollments) that a message may move.
    uses_sequences: HashMap<String, bool>,
    /// Each tenant's own opt-out words (empty for most), besides the localised defaults.
    opt_out_words: HashMap<String, Vec<String>>,
}

/// Payloads longer than this hold no opt-out word (the longest is a few dozen characters).
const MAX_OPT_OUT_PAYLOAD: usize = 600;

impl Default for Batch {
    fn default() -> Self {
        Self::new(3)
    }
}

/// A file named by a message, to be fetched once the message is stored.
struct PendingMedia {
    id: String,
    kind: String,
    meta_media_id: String,
    mime_type: Option<String>,
    meta_sha256: Option<String>,
    filename: Option<String>,
}

impl PendingMedia {
    /// The file a media message names (`image`, `audio`, `video`, `document`, `sticker` with an `id`).
    fn of(kind: &str, object: Option<&Value>) -> Option<Self> {
        if !crate::media::is_media_type(kind) {
            return None;
        }
        let object = object?;
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Some(Self {
            id: crate::ids::new_id(),
            kind: kind.to_owned(),
            meta_media_id: text("id")?,
            mime_type: text("mime_type"),
            meta_sha256: text("sha256"),
            filename: text("filename"),
        })
    }
}

/// A message, parsed and routed, waiting for its batch's bulk insert.
struct PendingMessage {
    tenant_id: String,
    connection_id: String,
    /// The customer's wa_id (the sender inbound, the recipient of an echo).
    customer: String,
    name: Option<String>,
    direction: &'static str,
    status: &'static str,
    status_rank: i64,
    wamid: String,
    kind: String,
    payload: String,
    message_at: i64,
    preview: String,
    unread: i64,
    /// A customer message that opens the 24-hour window.
    opens_window: bool,
    media: Option<PendingMedia>,
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
    pub fn new(media_fetch_attempts: i64) -> Self {
        Self {
            media_fetch_attempts,
            jobs_queued: 0,
            by_id: HashMap::new(),
            by_phone: HashMap::new(),
            by_waba: HashMap::new(),
            contacts: HashMap::new(),
            conversations: HashMap::new(),
            messages: Vec::new(),
            touches: HashMap::new(),
            uses_sequences: HashMap::new(),
            opt_out_words: HashMap::new(),
        }
    }

    /// Background jobs this batch queued (media fetches), to wake the runner after commit.
    pub fn jobs_queued(&self) -> usize {
        self.jobs_queued
    }

    /// Looks up the connections the rows were received for, and which of them use sequences, in
    /// a few queries for the whole batch instead of two per connection: with thousands of
    /// numbers active, a batch's rows name nearly as many connections as there are rows.
    pub async fn prefetch(&mut self, store: &Store, rows: &[InboxRow]) -> Result<(), StoreError> {
        let mut wanted: Vec<&str> = rows
            .iter()
            .filter_map(|row| row.connection_id.as_deref())
            .filter(|id| !self.by_id.contains_key(*id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = store.connections_by_ids(&wanted).await?;
        let used = store.connections_using_sequences(&wanted).await?;
        for id in &wanted {
            self.by_id.insert((*id).to_owned(), None);
            self.uses_sequences
                .insert((*id).to_owned(), used.contains(*id));
        }
        let mut tenants: Vec<&str> = found
            .iter()
            .map(|c| c.tenant_id.as_str())
            .filter(|t| !self.opt_out_words.contains_key(*t))
            .collect();
        tenants.sort_unstable();
        tenants.dedup();
        let mut words = store.tenants_opt_out_words(&tenants).await?;
        for tenant in tenants {
            let own = words.remove(tenant).unwrap_or_default();
            self.opt_out_words.insert(tenant.to_owned(), own);
        }
        for connection in found {
            if connection.status != STATUS_DISCONNECTED {
                let id = connection.id.clone();
                self.by_id.insert(id, Some(connection));
            }
        }
        Ok(())
    }

    /// Messages waiting for [`Batch::flush`].
    pub fn pending_messages(&self) -> usize {
        self.messages.len()
    }

    /// Stores the gathered messages, writes each touched conversation once, and returns what
    /// to announce. Call once, after the last row of the transaction.
    pub async fn flush(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        now: i64,
    ) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        let messages = std::mem::take(&mut self.messages);
        if !messages.is_empty() {
            self.store_messages(store, conn, messages, now, &mut changes)
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

    async fn store_messages(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        messages: Vec<PendingMessage>,
        now: i64,
        changes: &mut Vec<Change>,
    ) -> Result<(), StoreError> {
        self.resolve_contacts(store, conn, &messages, now).await?;
        let contact_ids = messages
            .iter()
            .map(|m| {
                self.contacts
                    .get(&(m.tenant_id.clone(), m.customer.clone()))
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt("a contact upsert returned no row".into()))
            })
            .collect::<Result<Vec<String>, StoreError>>()?;
        self.resolve_conversations(store, conn, &messages, &contact_ids, now)
            .await?;
        let mut rows = Vec::with_capacity(messages.len());
        for (m, contact_id) in messages.iter().zip(contact_ids) {
            let conversation_id = self
                .conversations
                .get(&(m.connection_id.clone(), contact_id.clone()))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt("a conversation upsert returned no row".into())
                })?;
            rows.push(MessageRow {
                id: crate::ids::new_id(),
                tenant_id: m.tenant_id.clone(),
                connection_id: m.connection_id.clone(),
                conversation_id,
                contact_id,
                contact_wa_id: m.customer.clone(),
                contact_name: m.name.clone(),
                direction: m.direction.to_owned(),
                wamid: Some(m.wamid.clone()),
                message_type: m.kind.clone(),
                payload: m.payload.clone(),
                status: m.status.to_owned(),
                status_rank: m.status_rank,
                error_code: None,
                error_title: None,
                error_message: None,
                message_at: m.message_at,
                created_at: now,
                updated_at: now,
                send_started_at: None,
                accepted_at: None,
                media: m.media.as_ref().map(|media| MessageMedia {
                    id: media.id.clone(),
                    status: STATUS_PENDING.to_owned(),
                    failure_reason: None,
                    mime_type: media.mime_type.clone(),
                    file_size: None,
                    filename: media.filename.clone(),
                }),
                sent_by: None,
                send_at: None,
                template_category: None,
            });
        }
        let new: Vec<NewMessage<'_>> = rows
            .iter()
            .zip(&messages)
            .map(|(r, m)| NewMessage {
                id: &r.id,
                tenant_id: &r.tenant_id,
                connection_id: &r.connection_id,
                conversation_id: &r.conversation_id,
                contact_id: &r.contact_id,
                direction: m.direction,
                wamid: r.wamid.as_deref(),
                message_type: &r.message_type,
                payload: &r.payload,
                status: m.status,
                status_rank: m.status_rank,
                message_at: r.message_at,
                now,
                idempotency_key: None,
                media_id: m.media.as_ref().map(|media| media.id.as_str()),
                sent_by: None,
                send_at: None,
                template_category: None,
            })
            .collect();
        let inserted = store.insert_messages(conn, &new).await?;
        for (mut row, m) in rows.into_iter().zip(messages) {
            if !inserted.contains(&row.id) {
                metrics::counter!("wagate_messages_duplicate_total").increment(1);
                continue;
            }
            if let Some(media) = &m.media {
                // Stored with its message and fetched after: a fetch that fails never costs the message.
                let media_row = MediaRow {
                    id: media.id.clone(),
                    tenant_id: row.tenant_id.clone(),
                    connection_id: row.connection_id.clone(),
                    direction: if m.direction == DIRECTION_OUTBOUND {
                        MEDIA_OUTBOUND
                    } else {
                        MEDIA_INBOUND
                    }
                    .to_owned(),
                    kind: media.kind.clone(),
                    meta_media_id: Some(media.meta_media_id.clone()),
                    mime_type: media.mime_type.clone(),
                    file_size: None,
                    sha256: None,
                    meta_sha256: media.meta_sha256.clone(),
                    filename: media.filename.clone(),
                    storage_key: None,
                    status: STATUS_PENDING.to_owned(),
                    failure_reason: None,
                    created_at: now,
                    updated_at: now,
                };
                store.insert_media(conn, &media_row).await?;
                crate::media::fetch::enqueue_fetch(
                    store,
                    conn,
                    &media_row,
                    self.media_fetch_attempts,
                    now,
                )
                .await?;
                self.jobs_queued += 1;
            }
            if m.direction == DIRECTION_INBOUND
                && crate::assistant::reply::answers_type(&m.kind)
                && self.auto_reply_on(&m.connection_id)
            {
                // Queued with the message, so a crash after commit still gets it answered, and
                // a redelivery (not inserted again) never gets a second answer.
                crate::assistant::reply::enqueue_reply(store, conn, &row.tenant_id, &row.id, now)
                    .await?;
                self.jobs_queued += 1;
            }
            if m.direction == DIRECTION_INBOUND
                && self.uses_sequences(store, &m.connection_id).await?
            {
                // Stop on reply, opt-out, resume and first-message enrollment, queued with the
                // message like the assistant's answer.
                crate::automation::inbound::enqueue_inbound(
                    store,
                    conn,
                    &row.tenant_id,
                    &row.id,
                    now,
                )
                .await?;
                self.jobs_queued += 1;
            }
            if m.direction == DIRECTION_INBOUND {
                self.note_opt_out(store, conn, &row, now).await?;
            }
            if m.direction == DIRECTION_OUTBOUND {
                apply_waiting_status(store, conn, &mut row, now).await?;
            } else {
                metrics::counter!("wagate_messages_received_total").increment(1);
            }
            self.touch(
                &row,
                m.preview,
                m.unread,
                m.opens_window.then_some(m.wamid.as_str()),
            );
            changes.push(Change::MessageCreated(Box::new(row)));
        }
        Ok(())
    }

    /// Creates or refreshes the contacts of the gathered messages that this transaction has not
    /// seen yet (or that now come with a name).
    async fn resolve_contacts(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        messages: &[PendingMessage],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<ContactUpsert<'_>> = Vec::new();
        let mut position = HashMap::new();
        for m in messages {
            let key = (m.tenant_id.clone(), m.customer.clone());
            if self.contacts.contains_key(&key) && m.name.is_none() {
                continue;
            }
            match position.get(&key) {
                Some(&at) => {
                    if m.name.is_some() {
                        let slot: &mut ContactUpsert<'_> = &mut wanted[at];
                        slot.name = m.name.as_deref();
                    }
                }
                None => {
                    position.insert(key, wanted.len());
                    wanted.push(ContactUpsert {
                        tenant_id: &m.tenant_id,
                        wa_id: &m.customer,
                        name: m.name.as_deref(),
                        // An echo is a message the business sent from the WhatsApp app.
                        source: if m.direction == DIRECTION_OUTBOUND {
                            crate::contacts::source::OUTBOUND
                        } else {
                            crate::contacts::source::INBOUND
                        },
                    });
                }
            }
        }
        for (key, id) in store.upsert_contacts(conn, &wanted, now).await? {
            self.contacts.insert(key, id);
        }
        Ok(())
    }

    async fn resolve_conversations(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        messages: &[PendingMessage],
        contact_ids: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<ConversationUpsert<'_>> = Vec::new();
        let mut position = HashMap::new();
        for (m, contact_id) in messages.iter().zip(contact_ids) {
            let key = (m.connection_id.clone(), contact_id.clone());
            if self.conversations.contains_key(&key) {
                continue;
            }
            match position.get(&key) {
                Some(&at) => {
                    let slot: &mut ConversationUpsert<'_> = &mut wanted[at];
                    slot.message_at = slot.message_at.min(m.message_at);
                }
                None => {
                    position.insert(key, wanted.len());
                    wanted.push(ConversationUpsert {
                        tenant_id: &m.tenant_id,
                        connection_id: &m.connection_id,
                        contact_id,
                        message_at: m.message_at,
                    });
                }
            }
        }
        for (key, id) in store.upsert_conversations(conn, &wanted, now).await? {
            self.conversations.insert(key, id);
        }
        Ok(())
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

    /// Whether the connection has sequences a customer message may move (looked up once per batch).
    /// A customer whose whole message is an opt-out word ("STOP", "Abmelden", or one of the
    /// tenant's own) is opted out of marketing and broadcasts, in the message's transaction.
    async fn note_opt_out(
        &mut self,
        store: &Store,
        conn: &mut Conn,
        message: &MessageRow,
        now: i64,
    ) -> Result<(), StoreError> {
        // Opt-out words are short; a long message is never one, and is not parsed again.
        if message.payload.len() > MAX_OPT_OUT_PAYLOAD
            || !matches!(
                message.message_type.as_str(),
                "text" | "button" | "interactive"
            )
        {
            return Ok(());
        }
        let Some(said) = crate::assistant::reply::customer_text(message) else {
            return Ok(());
        };
        if !self.opt_out_words.contains_key(&message.tenant_id) {
            let mut words = store
                .tenants_opt_out_words(&[message.tenant_id.as_str()])
                .await?;
            let own = words.remove(&message.tenant_id).unwrap_or_default();
            self.opt_out_words.insert(message.tenant_id.clone(), own);
        }
        let extra = self
            .opt_out_words
            .get(&message.tenant_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if crate::automation::opt_out::is_opt_out(&said, extra) {
            let reason = format!("wrote \"{said}\"");
            if store
                .opt_out_contact(conn, &message.contact_id, &reason, now)
                .await?
            {
                metrics::counter!("wagate_contacts_opted_out_total").increment(1);
            }
        }
        Ok(())
    }

    async fn uses_sequences(
        &mut self,
        store: &Store,
        connection_id: &str,
    ) -> Result<bool, StoreError> {
        if let Some(used) = self.uses_sequences.get(connection_id) {
            return Ok(*used);
        }
        let used = store
            .connections_using_sequences(&[connection_id])
            .await?
            .contains(connection_id);
        self.uses_sequences.insert(connection_id.to_owned(), used);
        Ok(used)
    }

    /// Whether the connection (looked up by this batch already) answers automatically.
    fn auto_reply_on(&self, connection_id: &str) -> bool {
        self.by_id
            .get(connection_id)
            .and_then(Option::as_ref)
            .or_else(|| {
                self.by_phone
                    .values()
                    .flatten()
                    .find(|c| c.id == connection_id)
            })
            .or_else(|| {
                self.by_waba
                    .values()
                    .flatten()
                    .find(|c| c.id == connection_id)
            })
            .is_some_and(|c| c.auto_reply)
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
            .filter(|c| c.status != STATUS_DISCONNECTED);
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

    /// The connection a change belongs to. A connection's own URL only applies its own number's
    /// items; the platform URL routes each item by its phone number.
    async fn route(
        &mut self,
        store: &Store,
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
                skipped_metric("foreign_phone_number");
                Ok(None)
            }
            None => {
                let found = self.by_phone(store, phone_number_id).await?;
                if found.is_none() {
                    tracing::warn!(phone_number_id = %phone_number_id, "platform webhook for a phone number no tenant has connected; not applied");
                    skipped_metric("unknown_phone_number");
                }
                Ok(found)
            }
        }
    }

    /// Template events name a WhatsApp Business Account (the entry id), not a phone number.
    async fn template_targets(
        &mut self,
        store: &Store,
        own: Option<&ConnectionRow>,
        entry: &Entry,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        match own {
            Some(connection) => match &connection.waba_id {
                Some(waba) if waba != &entry.id => {
                    skipped_metric("foreign_waba");
                    Ok(Vec::new())
                }
                _ => Ok(vec![connection.clone()]),
            },
            None => self.by_waba(store, &entry.id).await,
        }
    }
}

/// Reads one inbox row into the batch: statuses and template events are applied at once,
/// messages are gathered for [`Batch::flush`]. Returns the changes made so far.
pub async fn apply_row(
    store: &Store,
    conn: &mut Conn,
    batch: &mut Batch,
    row: &InboxRow,
    now: i64,
) -> Result<Vec<Change>, ApplyError> {
    let notification =
        Notification::parse(&row.body).map_err(|e| ApplyError::Unreadable(e.to_string()))?;
    let own = match &row.connection_id {
        Some(id) => match batch.by_id(store, id).await? {
            Some(connection) => Some(connection),
            // Disconnected since the body arrived: its history stays, nothing new is applied.
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let mut applier = Applier {
        store,
        conn,
        batch,
        now,
        received_at: row.received_at,
        changes: Vec::new(),
    };
    for bad in notification.entry.iter().filter_map(Item::malformed) {
        skipped("malformed_entry", &bad.error);
    }
    for entry in notification.entry.iter().filter_map(Item::parsed) {
        for change in &entry.changes {
            let change = match change {
                Item::Parsed(change) => change,
                Item::Malformed(bad) => {
                    skipped("malformed_change", &bad.error);
                    continue;
                }
            };
            applier.change(own.as_ref(), entry, &change.value).await?;
        }
    }
    Ok(applier.changes)
}

struct Applier<'a> {
    store: &'a Store,
    conn: &'a mut Conn,
    batch: &'a mut Batch,
    now: i64,
    received_at: i64,
    changes: Vec<Change>,
}

impl Applier<'_> {
    async fn change(
        &mut self,
        own: Option<&ConnectionRow>,
        entry: &Entry,
        value: &ChangeValue,
    ) -> Result<(), StoreError> {
        match value {
            ChangeValue::Messages(value) => {
                let phone = &value.metadata.phone_number_id;
                if let Some(connection) = self.batch.route(self.store, own, phone).await? {
                    self.learn_waba(&connection, entry).await?;
                    self.messages(&connection, value).await?;
                }
            }
            ChangeValue::MessageEchoes(value) => {
                let phone = &value.metadata.phone_number_id;
                if let Some(connection) = self.batch.route(self.store, own, phone).await? {
                    self.echoes(&connection, value);
                }
            }
            ChangeValue::TemplateStatus(_)
            | ChangeValue::TemplateQuality(_)
            | ChangeValue::TemplateCategory(_) => {
                for connection in self.batch.template_targets(self.store, own, entry).await? {
                    self.template(&connection, entry, value).await?;
                }
            }
            ChangeValue::Other { field, .. } => {
                tracing::debug!(field = %field, "webhook field not applied; kept in the inbox");
            }
            ChangeValue::Malformed { field, error, .. } => {
                tracing::warn!(field = %field, error = %error, "webhook change did not fit its type; kept in the inbox");
                skipped_metric("malformed_change");
            }
        }
        Ok(())
    }

    /// A connection made without its WhatsApp Business Account learns it from the entry id of
    /// its first webhook, so its templates can be synced.
    async fn learn_waba(
        &mut self,
        connection: &ConnectionRow,
        entry: &Entry,
    ) -> Result<(), StoreError> {
        if connection.waba_id.is_none()
            && !entry.id.is_empty()
            && entry.id.bytes().all(|b| b.is_ascii_digit())
            && self
                .store
                .learn_waba_id(self.conn, &connection.id, &entry.id, self.now)
                .await?
        {
            tracing::info!(connection_id = %connection.id, waba_id = %entry.id, "learned the connection's WhatsApp Business Account from a webhook");
        }
        Ok(())
    }

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
                    self.inbound(connection, message, name);
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

    fn inbound(&mut self, connection: &ConnectionRow, message: &Message, name: Option<&str>) {
        let Some(customer) = message
            .from
            .as_deref()
            .or(message.from_user_id.as_deref())
            .filter(|s| !s.is_empty())
        else {
            skipped("message_without_sender", &message.id);
            return;
        };
        let kind = message.message_type();
        self.batch.messages.push(PendingMessage {
            tenant_id: connection.tenant_id.clone(),
            connection_id: connection.id.clone(),
            customer: customer.to_owned(),
            name: name.map(str::to_owned),
            direction: DIRECTION_INBOUND,
            status: "received",
            status_rank: rank::RECEIVED,
            wamid: message.id.clone(),
            kind: kind.to_owned(),
            payload: message.to_value().to_string(),
            message_at: message_time(message.timestamp_secs(), self.received_at),
            preview: views::preview(kind, message.type_object()),
            unread: i64::from(counts_as_unread(kind)),
            opens_window: opens_service_window(kind),
            media: PendingMedia::of(kind, message.type_object()),
        });
    }

    /// Messages the business sent from the WhatsApp Business app: outbound, already sent.
    fn echoes(&mut self, connection: &ConnectionRow, value: &MessageEchoesValue) {
        for item in value.message_echoes() {
            let message = match item {
                Item::Parsed(message) => message,
                Item::Malformed(bad) => {
                    skipped("malformed_echo", &bad.error);
                    continue;
                }
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
            self.batch.messages.push(PendingMessage {
                tenant_id: connection.tenant_id.clone(),
                connection_id: connection.id.clone(),
                name: value.contact_name(&customer).map(str::to_owned),
                customer,
                direction: DIRECTION_OUTBOUND,
                status: "sent",
                status_rank: rank::SENT,
                wamid: message.id.clone(),
                kind: kind.to_owned(),
                payload: message.to_value().to_string(),
                message_at: message_time(message.timestamp_secs(), self.received_at),
                preview: views::preview(kind, message.type_object()),
                unread: 0,
                opens_window: false,
                media: PendingMedia::of(kind, message.type_object()),
            });
        }
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
        if let Some(pricing) = &status.pricing {
            let at = message_time(status.timestamp_secs(), self.received_at);
            let day = crate::clock::utc_day(at);
            self.store
                .count_priced_message(
                    self.conn,
                    &PricedMessage {
                        tenant_id: &connection.tenant_id,
                        connection_id: &connection.id,
                        wamid: &status.id,
                        day: &day,
                        category: pricing.category.as_deref().unwrap_or("unknown"),
                        billable: pricing.billable.unwrap_or(false),
                        pricing_model: pricing.pricing_model.as_deref().unwrap_or("unknown"),
                    },
                )
                .await?;
        }
        let Some(contract) = contract else {
            tracing::debug!(
                status = status.status.as_str(),
                "status kind not known; kept, not applied"
            );
            return Ok(());
        };
        let error = first_error(status);
        let mut changed = self
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
            .await?;
        if changed.is_none()
            && let Some(message_id) = status
                .biz_opaque_callback_data
                .as_deref()
                .and_then(|data| data.strip_prefix(crate::outbound::CALLBACK_PREFIX))
            && self
                .store
                .adopt_wamid(self.conn, &connection.id, message_id, &status.id, self.now)
                .await?
        {
            // Our send's answer was lost (or has not been recorded yet): the callback data ties
            // Meta's wamid to the message, and the status applies.
            changed = self
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
                .await?;
        }
        if let Some(change) = changed {
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
}

/// Applies the furthest status that waited for a message (by id), once it has its wamid.
pub async fn apply_waiting_status_of(
    store: &Store,
    conn: &mut Conn,
    message_id: &str,
    now: i64,
) -> Result<Option<StatusChange>, StoreError> {
    match store.message_by_id_in(conn, message_id).await? {
        Some(mut row) => apply_waiting_status(store, conn, &mut row, now).await,
        None => Ok(None),
    }
}

/// A status that arrived before its message is applied now that the message exists.
async fn apply_waiting_status(
    store: &Store,
    conn: &mut Conn,
    row: &mut MessageRow,
    now: i64,
) -> Result<Option<StatusChange>, StoreError> {
    let Some(wamid) = row.wamid.clone() else {
        return Ok(None);
    };
    let Some(waiting) = store
        .furthest_status(conn, &row.connection_id, &wamid, row.status_rank)
        .await?
    else {
        return Ok(None);
    };
    let Some(status) = contract_status(&waiting.status) else {
        return Ok(None);
    };
    let error = serde_json::from_str::<Status>(&waiting.payload)
        .ok()
        .and_then(|s| first_error(&s));
    let changed = store
        .advance_message_status(
            conn,
            &row.connection_id,
            &wamid,
            status,
            waiting.status_rank,
            error.as_ref(),
            now,
        )
        .await?;
    if let Some(change) = &changed {
        row.status = change.status.clone();
        row.status_rank = waiting.status_rank;
        if let Some(error) = error {
            row.error_code = error.code;
            row.error_title = error.title;
            row.error_message = error.message;
        }
    }
    Ok(changed)
}

fn skipped(reason: &'static str, detail: &str) {
    tracing::warn!(reason, detail = %detail, "webhook item skipped; the raw body stays in the inbox");
    skipped_metric(reason);
}

fn skipped_metric(reason: &'static str) {
    metrics::counter!("wagate_webhook_items_skipped_total", "reason" => reason).increment(1);
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
