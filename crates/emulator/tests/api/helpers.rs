//! What every test needs: an emulator on port 0, a registered number, and a webhook receiver whose
//! answers a test can script.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use emulator::{
    CustomerMessage, EmulatorConfig, InboundReceipt, MediaSeed, MediaView, PhoneNumberRegistration,
    RetryPolicy, RunningEmulator, TemplateSeed, TemplateView,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WABA_ID: &str = "102290129340398";
pub const DISPLAY_PHONE_NUMBER: &str = "15550783881";
pub const ACCESS_TOKEN: &str = "EAAJBtest-token";
pub const APP_SECRET: &str = "test-app-secret";
pub const CUSTOMER: &str = "16505551234";

/// Long enough for a loaded 2-core machine, short enough that a broken test fails quickly.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn spawn_emulator() -> anyhow::Result<RunningEmulator> {
    spawn_emulator_with(RetryPolicy::fast()).await
}

pub async fn spawn_emulator_with(delivery: RetryPolicy) -> anyhow::Result<RunningEmulator> {
    let config = EmulatorConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        delivery,
    };
    Ok(emulator::start(config).await?)
}

/// The numbers of Meta's example webhook, so delivered bodies can be compared with it.
///
/// Throughput and pair rate are not enforced, so tests about other things can send quickly to one
/// customer; the tests of those limits switch them on.
pub fn registration(webhook_url: Option<String>) -> PhoneNumberRegistration {
    PhoneNumberRegistration {
        enforce_throughput: false,
        enforce_pair_rate: false,
        ..metas_defaults(webhook_url)
    }
}

/// The test number with every setting left at its default, Meta's limits included.
pub fn metas_defaults(webhook_url: Option<String>) -> PhoneNumberRegistration {
    PhoneNumberRegistration {
        phone_number_id: PHONE_NUMBER_ID.into(),
        waba_id: WABA_ID.into(),
        display_phone_number: DISPLAY_PHONE_NUMBER.into(),
        verified_name: "Acme Support".into(),
        access_token: ACCESS_TOKEN.into(),
        app_secret: APP_SECRET.into(),
        webhook_url,
        ..Default::default()
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Waits this long before answering 200, to make the emulator time out.
    Stall(Duration),
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct ReceiverState {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// A webhook endpoint like wagate's: records every POST, answers as scripted, then 200.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: impl IntoIterator<Item = Answer>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Ok(Self::start_on(listener, script))
    }

    pub fn start_on(listener: TcpListener, script: impl IntoIterator<Item = Answer>) -> Self {
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.into_iter().collect()),
            ..Default::default()
        });
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/webhook"),
            state,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `count` POSTs have arrived.
    pub async fn wait_for(&self, count: usize) -> anyhow::Result<Vec<Received>> {
        let waiting = async {
            loop {
                let arrived = self.state.arrived.notified();
                let received = self.received();
                if received.len() >= count {
                    return received;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(WAIT, waiting).await.with_context(|| {
            format!(
                "fewer than {count} webhooks arrived; got {}",
                self.received().len()
            )
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let answer = state
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front()
        .unwrap_or(Answer::Status(200));
    state
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received { headers, body });
    state.arrived.notify_waiters();
    match answer {
        Answer::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Answer::Stall(duration) => {
            tokio::time::sleep(duration).await;
            StatusCode::OK
        }
    }
}

/// A port nothing listens on right now (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Meta's example text webhook, from `fixtures/`.
pub fn example_text_webhook() -> anyhow::Result<serde_json::Value> {
    let text = include_str!("fixtures/webhook_message_text.json");
    Ok(serde_json::from_str(text)?)
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> anyhow::Result<&'a str> {
    match headers.get(name) {
        Some(value) => Ok(value.to_str()?),
        None => bail!("the {name} header is missing"),
    }
}

/// `POST /v24.0/{PHONE_NUMBER_ID}/messages` of this emulator.
pub fn messages_url(meta: &RunningEmulator) -> String {
    format!("{}/v24.0/{PHONE_NUMBER_ID}/messages", meta.base_url())
}

/// POSTs JSON with an optional bearer token; the answer's status and JSON body (`null` when empty).
pub async fn post_json(
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http().post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    if text.is_empty() {
        return Ok((status, Value::Null));
    }
    let body =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("not JSON ({e}): {text:?}"))?;
    Ok((status, body))
}

/// Sends a body to this emulator's number with the number's token.
pub async fn send(meta: &RunningEmulator, body: &Value) -> anyhow::Result<(u16, Value)> {
    post_json(&messages_url(meta), Some(ACCESS_TOKEN), body).await
}

/// A text send body, as wagate sends it.
pub fn text_to(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body},
    })
}

/// Stores media of the test number under an id one of Meta's example requests sends, as if the
/// number had uploaded it.
pub fn seed_media(meta: &RunningEmulator, id: &str, mime_type: &str) -> anyhow::Result<MediaView> {
    Ok(meta.add_media(MediaSeed {
        phone_number_id: PHONE_NUMBER_ID.into(),
        bytes: Bytes::from(format!("bytes of {id}")),
        mime_type: mime_type.into(),
        id: Some(id.into()),
        ..Default::default()
    })?)
}

/// Stores an approved template of the test account whose body has no variables.
pub fn seed_template(
    meta: &RunningEmulator,
    name: &str,
    category: &str,
) -> anyhow::Result<TemplateView> {
    Ok(meta.add_template(TemplateSeed {
        waba_id: WABA_ID.into(),
        name: name.into(),
        language: "en_US".into(),
        category: category.into(),
        components: vec![json!({"type": "BODY", "text": format!("The {name} message.")})],
        ..Default::default()
    })?)
}

/// Stores the first template of Meta's list example (`reservation_confirmation`: named
/// parameters, an image header) as an approved template of the test account.
pub fn seed_listed_template(meta: &RunningEmulator) -> anyhow::Result<TemplateView> {
    let listed: Value =
        serde_json::from_str(include_str!("fixtures/templates_list_response.json"))?;
    let template = &listed["data"][0];
    let text = |key: &str| template[key].as_str().unwrap_or_default().to_owned();
    Ok(meta.add_template(TemplateSeed {
        waba_id: WABA_ID.into(),
        name: text("name"),
        language: text("language"),
        category: text("category"),
        parameter_format: Some(text("parameter_format")),
        components: template["components"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    })?)
}

/// A template send body with no parameters.
pub fn template_to(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    })
}

/// The customer writes now, opening the 24-hour window.
pub async fn customer_writes_now(meta: &RunningEmulator) -> anyhow::Result<InboundReceipt> {
    Ok(meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "hello"))
        .await?)
}

/// Checks Meta's error envelope and returns its inner `error` object.
pub fn meta_error(body: &Value, code: u64) -> anyhow::Result<&Value> {
    let error = &body["error"];
    ensure!(error["code"] == code, "expected code {code}: {body}");
    ensure!(
        error["message"].is_string() && error["type"].is_string(),
        "{body}"
    );
    let trace = error["fbtrace_id"].as_str().unwrap_or_default();
    ensure!(trace.len() >= 11, "fbtrace_id missing: {body}");
    Ok(error)
}

/// Waits until `done` holds, checking every few milliseconds.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let waiting = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .with_context(|| format!("timed out waiting until {what}"))
}

/// The `statuses[0]` of every status webhook received, in arrival order, each checked for its signature.
pub fn statuses(received: &[Received]) -> anyhow::Result<Vec<Value>> {
    let mut found = Vec::new();
    for webhook in received {
        let signature = header(&webhook.headers, "x-hub-signature-256")?;
        ensure!(
            cloudapi::signature::verify(
                APP_SECRET.as_bytes(),
                &webhook.body,
                Some(signature.as_bytes())
            )
            .is_ok(),
            "the signature does not verify"
        );
        let body: Value = serde_json::from_slice(&webhook.body)?;
        let status = &body["entry"][0]["changes"][0]["value"]["statuses"][0];
        if !status.is_null() {
            found.push(status.clone());
        }
    }
    Ok(found)
}

/// Waits until `count` status webhooks have arrived (besides any message webhooks).
pub async fn wait_for_statuses(receiver: &Receiver, count: usize) -> anyhow::Result<Vec<Value>> {
    let waiting = async {
        loop {
            let found = statuses(&receiver.received())?;
            if found.len() >= count {
                return Ok::<_, anyhow::Error>(found);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .with_context(|| format!("fewer than {count} status webhooks arrived"))?
}

/// Waits until every delivery the emulator has queued so far got its 200, so a receiver has seen
/// everything that will ever come of what happened up to now.
pub async fn all_delivered(meta: &RunningEmulator) -> anyhow::Result<()> {
    for delivery in meta.deliveries() {
        meta.wait_delivered(delivery.id, WAIT).await?;
    }
    Ok(())
}

/// `GET` a URL; the status and the JSON body.
pub async fn get_json(url: &str) -> anyhow::Result<(u16, Value)> {
    let response = http().get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// `PATCH /admin/phone-numbers/{PHONE_NUMBER_ID}`; the status and the JSON body.
pub async fn patch_number(meta: &RunningEmulator, body: &Value) -> anyhow::Result<(u16, Value)> {
    let response = http()
        .patch(format!(
            "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
            meta.base_url()
        ))
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// The test number as `GET /admin/phone-numbers/{PHONE_NUMBER_ID}` shows it.
pub async fn shown_number(meta: &RunningEmulator) -> anyhow::Result<Value> {
    let (status, body) = get_json(&format!(
        "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
        meta.base_url()
    ))
    .await?;
    ensure!(status == 200, "HTTP {status}: {body}");
    Ok(body)
}
