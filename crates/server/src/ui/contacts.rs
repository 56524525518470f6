//! Contacts: everyone who wrote to the tenant's numbers (leads), with their conversations and a
//! timeline of what happened: messages each way, Meta's status reports, template sends.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use serde_json::Value;

use super::error::PageError;
use super::session::{Layout, Signed};
use crate::app::state::AppState;
use crate::clock::rfc3339;
use crate::store::connections::STATUS_CONNECTED;
use crate::store::contacts::ContactRow;
use crate::store::messages::{DIRECTION_INBOUND, MessageQuery};
use crate::store::sequences::{STATE_ACTIVE, STATE_COMPLETED, STATE_STOPPED, STATE_WAITING};

const CONTACTS_SHOWN: i64 = 200;
const TIMELINE_MESSAGES: i64 = 100;

pub struct ContactItem {
    pub id: String,
    pub name: String,
    pub number: String,
    pub since: String,
    pub last_activity: String,
}

fn item(row: ContactRow) -> ContactItem {
    ContactItem {
        name: row
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_default(),
        number: format!("+{}", row.wa_id),
        since: rfc3339(row.created_at),
        last_activity: row.last_message_at.map(rfc3339).unwrap_or_default(),
        id: row.id,
    }
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsPage {
    page: Layout,
    search: String,
    contacts: Vec<ContactItem>,
}

#[derive(Deserialize, Default)]
pub struct ContactsQuery {
    #[serde(default)]
    q: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ContactsQuery>,
) -> Result<Html<String>, PageError> {
    let search = query.q.unwrap_or_default();
    let trimmed = search.trim();
    let contacts = state
        .store
        .contacts(
            &signed.user.tenant_id,
            (!trimmed.is_empty()).then_some(trimmed),
            CONTACTS_SHOWN,
        )
        .await?
        .into_iter()
        .map(item)
        .collect();
    let page = Layout::of(&state, &signed, "contacts").await?;
    Ok(Html(
        ContactsPage {
            page,
            search,
            contacts,
        }
        .render()?,
    ))
}

/// One line of the timeline.
pub struct Activity {
    pub at: String,
    pub what: String,
    pub detail: String,
    pub kind: &'static str,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    page: Layout,
    contact: ContactItem,
    /// Where "Message on WhatsApp" leads: the chat, or wa.me when no number is connected.
    message_link: String,
    opens_chat: bool,
    timeline: Vec<Activity>,
    /// The tenant's sequences, to enroll the contact in.
    sequences: Vec<SequenceOption>,
    enrollments: Vec<EnrollmentItem>,
}

pub struct SequenceOption {
    pub id: String,
    pub name: String,
}

/// One of the contact's enrollments: where it is and what happened last.
pub struct EnrollmentItem {
    pub id: String,
    pub sequence_id: String,
    pub sequence_name: String,
    pub state: String,
    pub progress: String,
    pub next_run: String,
    pub last_event: String,
    pub live: bool,
}

const ENROLLMENTS_SHOWN: i64 = 20;

async fn enrollment_items(
    state: &AppState,
    tenant_id: &str,
    contact_id: &str,
) -> Result<Vec<EnrollmentItem>, PageError> {
    let mut items = Vec::new();
    for row in state
        .store
        .contact_enrollments(tenant_id, contact_id, ENROLLMENTS_SHOWN)
        .await?
    {
        let sequence = state
            .store
            .sequence_including_deleted(tenant_id, &row.sequence_id)
            .await?;
        let total = sequence
            .as_ref()
            .and_then(|s| crate::automation::steps_of(s).ok())
            .map_or(0, |steps| steps.len());
        let last = state.store.sequence_events(&row.id).await?.pop();
        let progress = match row.state.as_str() {
            STATE_ACTIVE | STATE_WAITING => format!("step {} of {total}", row.step + 1),
            STATE_COMPLETED => format!("all {total} steps"),
            _ => format!("stopped at step {} of {total}", row.step + 1),
        };
        items.push(EnrollmentItem {
            live: row.is_live(),
            id: row.id,
            sequence_id: row.sequence_id,
            sequence_name: sequence.map_or_else(|| "(deleted)".to_owned(), |s| s.name),
            state: match row.state.as_str() {
                STATE_WAITING => "waiting for the customer to write".to_owned(),
                STATE_STOPPED => format!(
                    "stopped: {}",
                    row.stopped_reason
                        .as_deref()
                        .unwrap_or("by hand")
                        .replace('_', " ")
                ),
                other => other.to_owned(),
            },
            progress,
            next_run: row
                .next_run_at
                .filter(|_| row.state == STATE_ACTIVE)
                .map(rfc3339)
                .unwrap_or_default(),
            last_event: last.map(|e| e.event.replace('_', " ")).unwrap_or_default(),
        });
    }
    Ok(items)
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let tenant_id = signed.user.tenant_id.clone();
    let contact = state
        .store
        .contact(&tenant_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let messages = state
        .store
        .messages(
            &tenant_id,
            &MessageQuery {
                contact_wa_id: Some(contact.wa_id.clone()),
                limit: TIMELINE_MESSAGES,
                ..MessageQuery::default()
            },
        )
        .await?;
    let connected: Vec<String> = state
        .store
        .connections(&tenant_id)
        .await?
        .into_iter()
        .filter(|c| c.status == STATUS_CONNECTED)
        .map(|c| c.id)
        .collect();
    let chat = messages
        .iter()
        .find(|m| connected.contains(&m.connection_id))
        .map(|m| m.conversation_id.clone());
    let (message_link, opens_chat) = match chat {
        Some(conversation_id) => (format!("/app/inbox?c={conversation_id}"), true),
        None => (format!("https://wa.me/{}", contact.wa_id), false),
    };

    let mut timeline: Vec<(i64, Activity)> = messages
        .iter()
        .map(|m| {
            let payload: Value = serde_json::from_str(&m.payload).unwrap_or(Value::Null);
            let (label, text) = super::inbox::describe(&m.message_type, &payload);
            let inbound = m.direction == DIRECTION_INBOUND;
            let what = match (inbound, m.message_type.as_str()) {
                (false, "template") => "Template sent".to_owned(),
                (true, _) => format!("Wrote: {}", label.unwrap_or("Text")),
                (false, _) => format!("Sent: {}", label.unwrap_or("Text")),
            };
            (
                m.message_at,
                Activity {
                    at: rfc3339(m.message_at),
                    what,
                    detail: text,
                    kind: if inbound { "in" } else { "out" },
                },
            )
        })
        .collect();
    for event in state
        .store
        .contact_status_events(&tenant_id, &contact.id, TIMELINE_MESSAGES * 3)
        .await?
    {
        timeline.push((
            event.at,
            Activity {
                at: rfc3339(event.at),
                what: format!("Meta: {}", event.status),
                detail: format!("{} message", event.message_type),
                kind: "status",
            },
        ));
    }
    timeline.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let sequences = state
        .store
        .sequences(&tenant_id)
        .await?
        .into_iter()
        .map(|s| SequenceOption {
            id: s.id,
            name: s.name,
        })
        .collect();
    let enrollments = enrollment_items(&state, &tenant_id, &contact.id).await?;
    let page = Layout::of(&state, &signed, "contacts").await?;
    Ok(Html(
        ContactPage {
            page,
            contact: item(contact),
            message_link,
            opens_chat,
            timeline: timeline.into_iter().map(|(_, a)| a).collect(),
            sequences,
            enrollments,
        }
        .render()?,
    ))
}
