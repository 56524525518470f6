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
    let page = Layout::of(&state, &signed, "contacts").await?;
    Ok(Html(
        ContactPage {
            page,
            contact: item(contact),
            message_link,
            opens_chat,
            timeline: timeline.into_iter().map(|(_, a)| a).collect(),
        }
        .render()?,
    ))
}
