//! A small OpenAI-compatible model provider over real HTTP, for the assistant's tests and the demo:
//! `POST /v1/chat/completions` answers a deterministic reply built from the conversation it was
//! given, and records every request so a test can read the prompt back.
//!
//! It can be told to fail (any status), to hang past the caller's timeout, or to answer in the
//! shapes other compatible providers use (content as a list of parts, no `usage`), so the client's
//! tolerance is tested against something real.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the fake provider answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelBehaviour {
    /// `choices[0].message.content` as a string: the reply, or "Echo: <last user message>".
    Answer,
    /// The content as a list of `{"type": "text", "text"}` parts, as some providers send it.
    AnswerInParts,
    /// This status with an OpenAI-style error body.
    Fail(u16),
    /// No answer for this long (past any sensible timeout).
    Hang(Duration),
}

#[derive(Debug)]
struct ModelState {
    api_key: Option<String>,
    behaviour: ModelBehaviour,
    reply: Option<String>,
    requests: Vec<Value>,
}

type Shared = Arc<Mutex<ModelState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, ModelState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake provider; stops when dropped.
pub struct FakeModel {
    state: Shared,
    local: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModel")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl FakeModel {
    /// Starts on a free loopback port. With `api_key`, requests must carry it as a bearer token.
    pub async fn start(api_key: Option<&str>) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local = listener.local_addr()?;
        let state = Arc::new(Mutex::new(ModelState {
            api_key: api_key.map(str::to_owned),
            behaviour: ModelBehaviour::Answer,
            reply: None,
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(Arc::clone(&state));
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self {
            state,
            local,
            stop,
            server: Some(server),
        })
    }

    /// The base URL a client is configured with (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.local)
    }

    pub fn set_behaviour(&self, behaviour: ModelBehaviour) {
        lock(&self.state).behaviour = behaviour;
    }

    /// A fixed reply instead of the echo.
    pub fn set_reply(&self, reply: impl Into<String>) {
        lock(&self.state).reply = Some(reply.into());
    }

    /// Every request body received, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state).requests.clone()
    }

    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn completions(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let (behaviour, reply) = {
        let mut model = lock(&state);
        if let Some(key) = &model.api_key {
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given != Some(key.as_str()) {
                return error(401, "invalid_api_key", "Incorrect API key provided.");
            }
        }
        let Ok(parsed) = serde_json::from_str::<Value>(&body) else {
            return error(
                400,
                "invalid_request_error",
                "We could not parse the JSON body.",
            );
        };
        if parsed.get("messages").and_then(Value::as_array).is_none() {
            return error(
                400,
                "invalid_request_error",
                "'messages' is a required property",
            );
        }
        model.requests.push(parsed.clone());
        let reply = model.reply.clone().unwrap_or_else(|| echo(&parsed));
        (model.behaviour.clone(), reply)
    };
    match behaviour {
        ModelBehaviour::Answer => answer(json!(reply)),
        ModelBehaviour::AnswerInParts => answer(json!([{"type": "text", "text": reply}])),
        ModelBehaviour::Fail(status) => error(status, "server_error", "The model is overloaded."),
        ModelBehaviour::Hang(pause) => {
            tokio::time::sleep(pause).await;
            answer(json!(reply))
        }
    }
}

/// "Echo: <the last user message>", so a test sees which message was answered.
fn echo(request: &Value) -> String {
    let last_user = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("Echo: {last_user}")
}

fn answer(content: Value) -> Response {
    let parts = content.is_array();
    let mut body = json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
    });
    if !parts {
        body["usage"] = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    }
    (StatusCode::OK, Json(body)).into_response()
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "code": kind}})),
    )
        .into_response()
}
