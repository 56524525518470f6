//! The inbox: the tenant's conversations, and the open one's messages with a composer. Pages are
//! rendered here; the page's script refreshes them when a live event arrives and sends through
//! the REST API.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use serde_json::Value;

use super::error::PageError;
use super::session::{Layout, Signed};
use crate::app::state::AppState;
use crate::clock::{now_ms, rfc3339};
use crate::store::conversations::{ConversationQuery, ConversationRow};
use crate::store::messages::{MessageQuery, MessageRow};

/// Conversations listed at once, and messages shown of the open one.
const CONVERSATIONS_SHOWN: i64 = 100;
const MESSAGES_SHOWN: i64 = 100;

#[derive(Deserialize, Default)]
pub struct InboxQuery {
    /// The open conversation.
    #[serde(default)]
    c: Option<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

pub struct ConversationItem {
    pub id: String,
    pub title: String,
    pub number: String,
    pub preview: String,
    pub at: String,
    pub unread: i64,
    pub open: bool,
}

pub struct OpenConversation {
    pub id: String,
    pub connection_id: String,
    pub title: String,
    pub wa_id: String,
    pub unread: i64,
    /// When the service window closes (RFC 3339), while it is open.
    pub window_closes_at: Option<String>,
    /// Whether the connection answers automatically; then who handles this conversation shows.
    pub assistant_on: bool,
    /// Until when a person has the conversation (RFC 3339), while the assistant is paused.
    pub assistant_paused_until: Option<String>,
    /// The rendered message items (see `messages.html`).
    pub items_html: String,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessageItems {
    conversation_id: String,
    bubbles: Vec<Bubble>,
    /// The oldest message shown, when older ones may exist.
    older_than: Option<String>,
}

/// One message as the chat shows it.
pub struct Bubble {
    pub id: String,
    pub wamid: Option<String>,
    pub inbound: bool,
    /// The message this one answers: what it said, or `None` inside when it is not on the page.
    pub quote: Option<Option<String>>,
    /// Reactions customers (or we) put on it.
    pub reactions: Vec<String>,
    pub text: String,
    /// What kind of message it is when that is worth saying (`Photo`, `Location`, ...).
    pub label: Option<&'static str>,
    pub at: String,
    pub status: String,
    pub error: Option<String>,
    /// The file the message carries, when it is one.
    pub media: Option<BubbleMedia>,
    /// Changes whenever what the bubble shows changes, so live refreshes replace only those.
    pub version: String,
}

/// A message's file as the chat shows it.
pub struct BubbleMedia {
    /// `image`, `video`, `audio`, `document` or `sticker`.
    pub kind: String,
    /// `pending`, `stored`, `failed`, or `link` for a file sent by its web address.
    pub state: &'static str,
    /// Where to load it: ours once stored, or the link it was sent by.
    pub url: Option<String>,
    pub reason: Option<String>,
    pub filename: Option<String>,
    pub size: Option<String>,
    /// Our media id, for a retry of a failed fetch.
    pub media_id: Option<String>,
}

impl BubbleMedia {
    /// What the file is, in a word.
    pub fn noun(&self) -> &'static str {
        match self.kind.as_str() {
            "image" => "photo",
            "video" => "video",
            "audio" => "voice message",
            "sticker" => "sticker",
            _ => "document",
        }
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    page: Layout,
    unread_only: bool,
    search: String,
    conversations: Vec<ConversationItem>,
    open: Option<OpenConversation>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<InboxQuery>,
) -> Result<Html<String>, PageError> {
    let tenant_id = signed.user.tenant_id.clone();
    let unread_only = query.filter.as_deref() == Some("unread");
    let search = query.q.clone().unwrap_or_default();
    let rows = state
        .store
        .conversations(
            &tenant_id,
            &ConversationQuery {
                unread_only,
                search: Some(search.trim().to_owned()).filter(|s| !s.is_empty()),
                before: None,
                limit: CONVERSATIONS_SHOWN,
            },
        )
        .await?;
    let open = match query.c.as_deref() {
        Some(id) => {
            let Some(conversation) = state.store.conversation(&tenant_id, id).await? else {
                return Err(PageError::NotFound);
            };
            Some(open_conversation(&state, &tenant_id, conversation).await?)
        }
        None => None,
    };
    let open_id = open.as_ref().map(|o| o.id.clone());
    let conversations = rows
        .into_iter()
        .map(|row| item(row, open_id.as_deref()))
        .collect();
    let page = Layout::of(&state, &signed, "inbox").await?;
    Ok(Html(
        InboxPage {
            page,
            unread_only,
            search,
            conversations,
            open,
        }
        .render()?,
    ))
}

#[derive(Template)]
#[template(path = "bell.html")]
struct BellMenu {
    items: Vec<ConversationItem>,
}

/// Conversations listed in the bell's menu.
const BELL_ITEMS: i64 = 10;

/// The bell's menu: the conversations with unread messages, newest first.
pub async fn bell(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Html<String>, PageError> {
    let rows = state
        .store
        .conversations(
            &signed.user.tenant_id,
            &ConversationQuery {
                unread_only: true,
                limit: BELL_ITEMS,
                ..ConversationQuery::default()
            },
        )
        .await?;
    let items = rows.into_iter().map(|row| item(row, None)).collect();
    Ok(Html(BellMenu { items }.render()?))
}

fn item(row: ConversationRow, open_id: Option<&str>) -> ConversationItem {
    ConversationItem {
        open: open_id == Some(row.id.as_str()),
        title: title(&row),
        number: format!("+{}", row.contact_wa_id),
        preview: row.last_message_preview.clone().unwrap_or_default(),
        at: row.last_message_at.map(rfc3339).unwrap_or_default(),
        unread: row.unread_count,
        id: row.id,
    }
}

async fn open_conversation(
    state: &AppState,
    tenant_id: &str,
    row: ConversationRow,
) -> Result<OpenConversation, PageError> {
    let items_html = message_items(state, tenant_id, &row.id, None).await?;
    let assistant_on = state
        .store
        .connection(tenant_id, &row.connection_id)
        .await?
        .is_some_and(|c| c.auto_reply);
    Ok(OpenConversation {
        assistant_on,
        assistant_paused_until: row
            .assistant_paused_until
            .filter(|&at| at > now_ms())
            .map(rfc3339),
        title: title(&row),
        window_closes_at: row
            .window_expires_at
            .filter(|&at| at > now_ms())
            .map(rfc3339),
        items_html,
        id: row.id,
        connection_id: row.connection_id,
        wa_id: row.contact_wa_id,
        unread: row.unread_count,
    })
}

/// A conversation's messages before `before` (newest when `None`), oldest first, as list items.
async fn message_items(
    state: &AppState,
    tenant_id: &str,
    conversation_id: &str,
    before: Option<(i64, String)>,
) -> Result<String, PageError> {
    let mut rows: Vec<MessageRow> = state
        .store
        .messages(
            tenant_id,
            &MessageQuery {
                conversation_id: Some(conversation_id.to_owned()),
                before,
                limit: MESSAGES_SHOWN,
                ..MessageQuery::default()
            },
        )
        .await?;
    let older_than = (rows.len() as i64 == MESSAGES_SHOWN)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    rows.reverse();
    Ok(MessageItems {
        conversation_id: conversation_id.to_owned(),
        bubbles: bubbles(&rows),
        older_than,
    }
    .render()?)
}

#[derive(Deserialize)]
pub struct OlderQuery {
    c: String,
    before: String,
}

/// The page of messages before one already shown ("load older").
pub async fn older(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<OlderQuery>,
) -> Result<Html<String>, PageError> {
    let tenant_id = &signed.user.tenant_id;
    let anchor = state
        .store
        .message(tenant_id, &query.before)
        .await?
        .filter(|m| m.conversation_id == query.c)
        .ok_or(PageError::NotFound)?;
    Ok(Html(
        message_items(
            &state,
            tenant_id,
            &query.c,
            Some((anchor.message_at, anchor.id)),
        )
        .await?,
    ))
}

/// Bubbles for messages in order; reactions join the message they react to, and replies quote
/// theirs, when those are among `rows`.
fn bubbles(rows: &[MessageRow]) -> Vec<Bubble> {
    let mut out: Vec<Bubble> = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
        if row.message_type == "reaction" {
            let target = payload["reaction"]["message_id"].as_str();
            let emoji = payload["reaction"]["emoji"].as_str().unwrap_or_default();
            if let Some(bubble) =
                target.and_then(|t| out.iter_mut().find(|b| b.wamid.as_deref() == Some(t)))
            {
                if !emoji.is_empty() {
                    bubble.reactions.push(emoji.to_owned());
                }
                continue;
            }
        }
        let mut bubble = bubble(row, &payload);
        let replied_to = payload["context"]["id"]
            .as_str()
            .or_else(|| payload["context"]["message_id"].as_str());
        if let Some(target) = replied_to {
            let quoted = out
                .iter()
                .find(|b| b.wamid.as_deref() == Some(target) || b.id == target)
                .map(|b| match (b.label, b.text.is_empty()) {
                    (Some(label), true) => label.to_owned(),
                    _ => b.text.clone(),
                });
            bubble.quote = Some(quoted);
        }
        out.push(bubble);
    }
    out
}

fn title(row: &ConversationRow) -> String {
    row.contact_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| format!("+{}", row.contact_wa_id))
}

fn bubble(row: &MessageRow, payload: &Value) -> Bubble {
    let (label, text) = describe(&row.message_type, payload);
    let error = (row.status == "failed").then(|| {
        let code = row
            .error_code
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let text = row
            .error_message
            .clone()
            .or_else(|| row.error_title.clone())
            .unwrap_or_else(|| "Meta gave no reason".into());
        format!("{text}{code}")
    });
    let media = bubble_media(row, payload);
    // A document's name is shown with its file; the text is its caption.
    let text = if media.is_some() && row.message_type == "document" {
        payload["document"]["caption"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        text
    };
    let version = format!(
        "{}-{}",
        row.status,
        media.as_ref().map(|m| m.state).unwrap_or("none")
    );
    Bubble {
        id: row.id.clone(),
        wamid: row.wamid.clone(),
        quote: None,
        reactions: Vec::new(),
        inbound: row.direction == crate::store::messages::DIRECTION_INBOUND,
        text,
        label,
        at: rfc3339(row.message_at),
        status: row.status.clone(),
        error,
        media,
        version,
    }
}

fn bubble_media(row: &MessageRow, payload: &Value) -> Option<BubbleMedia> {
    if !crate::media::is_media_type(&row.message_type) {
        return None;
    }
    let object = &payload[row.message_type.as_str()];
    if let Some(media) = &row.media {
        let state = match media.status.as_str() {
            crate::store::media::STATUS_STORED => "stored",
            crate::store::media::STATUS_FAILED => "failed",
            _ => "pending",
        };
        return Some(BubbleMedia {
            kind: row.message_type.clone(),
            state,
            url: (state == "stored").then(|| crate::views::media_url(&media.id)),
            reason: media.failure_reason.clone().filter(|_| state == "failed"),
            filename: media
                .filename
                .clone()
                .or_else(|| object["filename"].as_str().map(str::to_owned)),
            size: media
                .file_size
                .and_then(|s| u64::try_from(s).ok())
                .map(crate::media::kinds::human_size),
            media_id: Some(media.id.clone()),
        });
    }
    let link = object["link"].as_str()?;
    Some(BubbleMedia {
        kind: row.message_type.clone(),
        state: "link",
        url: Some(link.to_owned()),
        reason: None,
        filename: object["filename"].as_str().map(str::to_owned),
        size: None,
        media_id: None,
    })
}

/// What a message says, in words, for each kind Meta sends or we send.
pub(super) fn describe(kind: &str, payload: &Value) -> (Option<&'static str>, String) {
    let object = &payload[kind];
    let field = |name: &str| object[name].as_str().unwrap_or_default().to_owned();
    match kind {
        "text" => (None, field("body")),
        "image" => (Some("Photo"), field("caption")),
        "video" => (Some("Video"), field("caption")),
        "audio" => (Some("Audio"), String::new()),
        "document" => (Some("Document"), {
            let name = field("filename");
            if name.is_empty() {
                field("caption")
            } else {
                name
            }
        }),
        "sticker" => (Some("Sticker"), String::new()),
        "location" => (Some("Location"), {
            let place = [field("name"), field("address")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            if place.is_empty() {
                format!("{}, {}", object["latitude"], object["longitude"])
            } else {
                place
            }
        }),
        "contacts" => (Some("Contact"), {
            object
                .as_array()
                .map(|cards| {
                    cards
                        .iter()
                        .filter_map(|c| c["name"]["formatted_name"].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        }),
        "reaction" => (Some("Reaction"), field("emoji")),
        "interactive" => {
            let reply = object
                .get("button_reply")
                .or_else(|| object.get("list_reply"))
                .and_then(|r| r["title"].as_str());
            match reply {
                Some(title) => (Some("Reply"), title.to_owned()),
                None => (
                    Some("Interactive"),
                    object["body"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
            }
        }
        "button" => (Some("Reply"), field("text")),
        "template" => (Some("Template"), field("name")),
        "order" => (Some("Order"), String::new()),
        _ => (Some("Message"), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_kind_of_message_is_put_in_words() {
        let cases = [
            ("text", json!({"text": {"body": "hi"}}), None, "hi"),
            (
                "image",
                json!({"image": {"caption": "look"}}),
                Some("Photo"),
                "look",
            ),
            (
                "document",
                json!({"document": {"filename": "a.pdf"}}),
                Some("Document"),
                "a.pdf",
            ),
            (
                "location",
                json!({"location": {"latitude": 1.5, "longitude": 2.5}}),
                Some("Location"),
                "1.5, 2.5",
            ),
            (
                "location",
                json!({"location": {"name": "Shop", "address": "Main St"}}),
                Some("Location"),
                "Shop, Main St",
            ),
            (
                "contacts",
                json!({"contacts": [{"name": {"formatted_name": "Ana"}}]}),
                Some("Contact"),
                "Ana",
            ),
            (
                "interactive",
                json!({"interactive": {"button_reply": {"id": "y", "title": "Yes"}}}),
                Some("Reply"),
                "Yes",
            ),
            (
                "reaction",
                json!({"reaction": {"emoji": "x"}}),
                Some("Reaction"),
                "x",
            ),
            ("unsupported", json!({}), Some("Message"), ""),
        ];
        for (kind, payload, label, text) in cases {
            assert_eq!(describe(kind, &payload), (label, text.to_owned()), "{kind}");
        }
    }
}
