//! `GET /api/v1/events`: a WebSocket that carries the authenticated tenant's events as JSON text frames.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use crate::api::auth::TenantAuth;
use crate::app::state::AppState;

/// Upgrades to a WebSocket; the server then sends `{"type", "data"}` text frames:
/// `message.created`, `message.status`, `conversation.updated`, `unread.changed`, ... Browsers,
/// which cannot set headers on a WebSocket, authenticate with the session cookie.
#[utoipa::path(
    get,
    path = "/events",
    tag = "realtime",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "No valid API key or session", body = crate::api::schema::ErrorBody),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    auth: TenantAuth,
    ws: WebSocketUpgrade,
) -> Response {
    let events = state.events.subscribe();
    ws.on_upgrade(move |socket| forward(socket, events, auth.tenant_id))
}

async fn forward(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<super::Event>>,
    tenant_id: String,
) {
    metrics::gauge!("wagate_websockets_open").increment(1.0);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) if event.tenant_id == tenant_id || event.tenant_id == super::EVERY_TENANT => {
                    let Ok(text) = serde_json::to_string(&*event) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    // The client fell behind; tell it so it can reload instead of silently missing events.
                    let notice = serde_json::json!({"type": super::kind::EVENTS_LAGGED, "data": {"missed": missed}});
                    if socket.send(Message::Text(notice.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    metrics::gauge!("wagate_websockets_open").decrement(1.0);
}
