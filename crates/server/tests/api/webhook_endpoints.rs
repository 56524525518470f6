//! Outbound webhooks: a tenant's endpoint gets its events signed, retried, in order per
//! conversation, logged and re-sent on request; other tenants cannot see it; bad input is a 422.
//!
//! The tenant's receiving system is a small HTTP server inside the test that records what it got
//! and answers as told.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing"))
    }

    fn text(&self) -> String {
        self.json()["data"]["text"]["body"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// Statuses for the next requests, in order; 200 once they run out.
    next: VecDeque<u16>,
    /// Requests whose body contains this text are answered 500 while it is set.
    refuse_containing: Option<String>,
}

/// The tenant's system, on 127.0.0.1 at a port of its own.
#[derive(Clone)]
struct TenantReceiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl TenantReceiver {
    async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, script }
    }

    fn answer_next(&self, statuses: &[u16]) {
        self.script.lock().unwrap().next.extend(statuses);
    }

    fn refuse_containing(&self, text: Option<&str>) {
        self.script.lock().unwrap().refuse_containing = text.map(str::to_owned);
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }

    async fn wait_for_delivered(&self, count: usize) -> Vec<Received> {
        eventually(Duration::from_secs(15), || async {
            self.delivered().len() >= count
        })
        .await;
        self.delivered()
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let mut script = script.lock().unwrap();
    let refused = script
        .refuse_containing
        .as_deref()
        .is_some_and(|text| String::from_utf8_lossy(&body).contains(text));
    let answered = if refused {
        500
    } else {
        script.next.pop_front().unwrap_or(200)
    };
    script.received.push(Received {
        headers,
        body,
        answered,
    });
    AxumStatus::from_u16(answered).unwrap()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl TestApp {
    /// Registers an endpoint for `events` at the receiver; answers the endpoint with its secret.
    async fn register_endpoint(&self, receiver: &TenantReceiver, events: &[&str]) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/webhook-endpoints",
                json!({"url": receiver.url, "events": events, "description": "CRM"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The endpoint's delivery log, newest first.
    async fn deliveries(&self, endpoint_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/api/v1/webhook-endpoints/{endpoint_id}/deliveries"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the endpoint's newest delivery has `status`, and answers it.
    async fn newest_delivery_reaches(&self, endpoint_id: &str, status: &str) -> Value {
        eventually(Duration::from_secs(15), || async {
            self.deliveries(endpoint_id)
                .await
                .first()
                .is_some_and(|d| d["status"] == status)
        })
        .await;
        self.deliveries(endpoint_id).await.remove(0)
    }
}

fn codes_of(delivery: &Value) -> Vec<i64> {
    delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap_or(0))
        .collect()
}

on_both_databases! {
    async fn a_customer_message_reaches_the_endpoint_as_message_created_with_a_valid_signature(app) {
        let receiver = TenantReceiver::start().await;
        let endpoint = app.register_endpoint(&receiver, &["message.created"]).await;
        let secret = endpoint["secret"].as_str().expect("secret shown at creation").to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");
        assert_eq!(endpoint["status"], "enabled");
        let number = app.connect_number().await;

        let wamid = app.customer_writes(&number, "16505551234", "hi there").await;

        let got = receiver.wait_for_delivered(1).await;
        let request = &got[0];
        assert_eq!(request.header("x-wagate-signature"), hmac_hex(&secret, &request.body));
        assert_eq!(request.header("content-type"), "application/json");
        let event = request.json();
        assert_eq!(event["type"], "message.created");
        assert_eq!(request.header("x-wagate-event"), event["id"].as_str().unwrap());
        assert_eq!(request.header("x-wagate-event-type"), "message.created");
        assert!(!request.header("x-wagate-delivery").is_empty());
        let timestamp: i64 = request.header("x-wagate-timestamp").parse().unwrap();
        assert!((timestamp - now_secs()).abs() < 60);
        assert_eq!(event["tenant_id"], app.tenant_id.as_str());
        assert!(event["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["data"]["wamid"], wamid.as_str());
        assert_eq!(event["data"]["direction"], "inbound");
        assert_eq!(event["data"]["text"]["body"], "hi there");
        assert!(event["data"]["conversation_id"].is_string());
        // Only what was subscribed to: no conversation.updated, no status events.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(receiver.received().iter().all(|r| r.json()["type"] == "message.created"));
    }

    async fn an_endpoint_that_answers_500_twice_gets_the_event_on_the_third_try_and_the_log_shows_each_attempt(app) {
        let receiver = TenantReceiver::start().await;
        receiver.answer_next(&[500, 500]);
        let endpoint = app.register_endpoint(&receiver, &["message.created"]).await;
        let id = endpoint["id"].as_str().unwrap();
        let number = app.connect_number().await;

        app.customer_writes(&number, "16505551234", "retry me").await;

        receiver.wait_for_delivered(1).await;
        let all = receiver.received();
        assert_eq!(all.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 200]);
        // Every attempt sends the same event, byte for byte, under one delivery id.
        assert!(all.iter().all(|r| r.body == all[0].body));
        assert!(all.iter().all(|r| r.header("x-wagate-delivery") == all[0].header("x-wagate-delivery")));

        let delivery = app.newest_delivery_reaches(id, "delivered").await;
        assert_eq!(delivery["attempt_count"], 3);
        assert_eq!(codes_of(&delivery), [500, 500, 200]);
        assert_eq!(delivery["last_status_code"], 200);
        assert_eq!(delivery["event_type"], "message.created");
        assert_eq!(delivery["id"], all[0].header("x-wagate-delivery"));
        assert!(delivery["delivered_at"].is_string());
        let attempts = delivery["attempts"].as_array().unwrap();
        assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
    }

    async fn events_of_one_conversation_arrive_in_order_even_when_the_first_had_to_be_retried(app) {
        let receiver = TenantReceiver::start().await;
        // The first message is refused until the test says otherwise.
        receiver.refuse_containing(Some("first of three"));
        let endpoint = app.register_endpoint(&receiver, &["message.created"]).await;
        let number = app.connect_number().await;

        app.customer_writes(&number, "16505551234", "first of three").await;
        app.customer_writes(&number, "16505551234", "second of three").await;
        app.customer_writes(&number, "16505551234", "third of three").await;
        // Another conversation is not held back by this one's retries.
        app.customer_writes(&number, "16505559999", "someone else").await;
        let other = receiver.wait_for_delivered(1).await;
        assert_eq!(other[0].text(), "someone else");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = receiver.received();
        assert!(before.iter().filter(|r| r.answered == 500).count() >= 2, "the first was retried");
        assert!(
            before.iter().all(|r| r.text() == "first of three" || r.text() == "someone else"),
            "nothing after the first went out while it was failing"
        );

        receiver.refuse_containing(None);
        let got = receiver.wait_for_delivered(4).await;
        let order: Vec<String> = got
            .iter()
            .map(Received::text)
            .filter(|t| t != "someone else")
            .collect();
        assert_eq!(order, ["first of three", "second of three", "third of three"]);
        // The receiver has the last one a moment before the server has recorded its answer.
        let endpoint_id = endpoint["id"].as_str().unwrap();
        eventually(Duration::from_secs(5), || async {
            let log = app.deliveries(endpoint_id).await;
            log.len() == 4 && log.iter().all(|d| d["status"] == "delivered")
        })
        .await;
    }

    async fn a_400_is_not_retried_and_a_manual_resend_delivers_it_once_the_receiver_accepts(app) {
        let receiver = TenantReceiver::start().await;
        receiver.answer_next(&[400]);
        let endpoint = app.register_endpoint(&receiver, &["message.created"]).await;
        let id = endpoint["id"].as_str().unwrap();
        let number = app.connect_number().await;

        app.customer_writes(&number, "16505551234", "bad request").await;

        let failed = app.newest_delivery_reaches(id, "failed").await;
        assert_eq!(failed["attempt_count"], 1);
        assert_eq!(codes_of(&failed), [400]);
        assert!(failed["next_attempt_at"].is_null());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(receiver.received().len(), 1, "a 400 is not retried");

        let delivery_id = failed["id"].as_str().unwrap();
        let (status, queued) = app
            .post(&format!("/api/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/resend"), json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        assert_eq!(queued["status"], "pending");

        let got = receiver.wait_for_delivered(1).await;
        assert_eq!(got[0].text(), "bad request");
        assert_eq!(got[0].body, receiver.received()[0].body);
        let delivered = app.newest_delivery_reaches(id, "delivered").await;
        assert_eq!(delivered["attempt_count"], 2);
        assert_eq!(codes_of(&delivered), [400, 200]);

        let (status, body) = app
            .post(&format!("/api/v1/webhook-endpoints/{id}/deliveries/{}/resend", wagate::ids::new_id()), json!({}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }

    async fn another_tenant_cannot_see_or_touch_the_endpoint_and_the_secret_is_never_shown_again(app) {
        let receiver = TenantReceiver::start().await;
        let endpoint = app.register_endpoint(&receiver, &["message.created", "message.status"]).await;
        let id = endpoint["id"].as_str().unwrap().to_owned();
        let secret = endpoint["secret"].as_str().unwrap().to_owned();
        let (_, other_key) = app.other_tenant().await;
        let missing = wagate::ids::new_id();

        for target in [id.as_str(), missing.as_str()] {
            let base = format!("/api/v1/webhook-endpoints/{target}");
            let calls = [
                (Method::GET, base.clone(), None),
                (Method::PATCH, base.clone(), Some(json!({"enabled": false}))),
                (Method::DELETE, base.clone(), None),
                (Method::POST, format!("{base}/rotate-secret"), Some(json!({}))),
                (Method::GET, format!("{base}/deliveries"), None),
                (Method::POST, format!("{base}/deliveries/{missing}/resend"), Some(json!({}))),
            ];
            for (method, path, body) in calls {
                let (status, answer) = app.send_as(&other_key, method.clone(), &path, body).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
                assert_eq!(answer["error"]["code"], "not_found");
                assert_eq!(answer["error"]["message"], "webhook endpoint not found");
            }
        }
        let (status, list) = app.get_as(&other_key, "/api/v1/webhook-endpoints").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["data"], json!([]));

        // The owner still has it, untouched, and no answer but creation shows the secret.
        let (status, shown) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(shown["status"], "enabled");
        assert!(shown.get("secret").is_none());
        let (_, list) = app.get("/api/v1/webhook-endpoints").await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains(&secret));
        assert!(!shown.to_string().contains(&secret));

        let (status, rotated) = app
            .post(&format!("/api/v1/webhook-endpoints/{id}/rotate-secret"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let new_secret = rotated["secret"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, secret);
        let (_, shown) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
        assert!(!shown.to_string().contains(&new_secret));
        let (_, patched) = app
            .patch(&format!("/api/v1/webhook-endpoints/{id}"), json!({"description": null}))
            .await;
        assert!(patched.get("secret").is_none());
        assert!(patched["description"].is_null());

        // Stored sealed, not as text.
        let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
            .bind(&id)
            .fetch_one(app.state.store.reader())
            .await
            .unwrap();
        assert!(!stored.windows(new_secret.len()).any(|w| w == new_secret.as_bytes()));

        // Deliveries are signed with the new secret.
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "after rotation").await;
        let got = receiver.wait_for_delivered(1).await;
        assert_eq!(got[0].header("x-wagate-signature"), hmac_hex(&new_secret, &got[0].body));

        let (status, _) = app.delete(&format!("/api/v1/webhook-endpoints/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn bad_input_is_a_422_naming_the_field(app) {
        let cases = [
            (json!({"url": "https://crm.example.com/in", "events": ["message.deleted"]}), "events"),
            (json!({"url": "https://crm.example.com/in", "events": []}), "events"),
            (json!({"url": "ftp://crm.example.com/in", "events": ["message.created"]}), "url"),
            (json!({"url": "https://user:pw@crm.example.com/in", "events": ["message.created"]}), "url"),
            (json!({"url": format!("https://crm.example.com/{}", "a".repeat(3000)), "events": ["message.created"]}), "url"),
            (json!({"url": "https://crm.example.com/in", "events": ["message.created"], "description": "d".repeat(501)}), "description"),
        ];
        for (body, field) in cases {
            let (status, answer) = app.post("/api/v1/webhook-endpoints", body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(answer["error"]["code"], "validation_failed");
            assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        }
        let (_, answer) = app
            .post("/api/v1/webhook-endpoints", json!({"url": "https://crm.example.com/in", "events": ["message.deleted"]}))
            .await;
        assert_eq!(
            answer["error"]["details"]["valid_events"],
            json!(["message.created", "message.status", "conversation.updated", "template.updated", "connection.updated"])
        );
        assert!(answer["error"]["message"].as_str().unwrap().contains("message.status"));

        let receiver = TenantReceiver::start().await;
        let endpoint = app.register_endpoint(&receiver, &["message.created"]).await;
        let id = endpoint["id"].as_str().unwrap();
        let (status, answer) = app
            .patch(&format!("/api/v1/webhook-endpoints/{id}"), json!({"events": ["nope"], "url": "file:///etc/passwd"}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer["error"]["details"]["fields"]["events"].is_string(), "{answer}");
        assert!(answer["error"]["details"]["fields"]["url"].is_string(), "{answer}");
        let (_, unchanged) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
        assert_eq!(unchanged["events"], json!(["message.created"]));
        assert_eq!(app.get("/api/v1/webhook-endpoints").await.1["data"].as_array().unwrap().len(), 1);
    }
}

mod disabling {
    use super::*;

    async fn body(db: Db) {
        // Failing for any time at all counts as too long here.
        let app = TestApp::spawn_with(db, |s| s.hooks.disable_after = Duration::ZERO).await;
        let receiver = TenantReceiver::start().await;
        receiver.answer_next(&[503]);
        let endpoint = app.register_endpoint(&receiver, &["message.created"]).await;
        let id = endpoint["id"].as_str().unwrap();
        let number = app.connect_number().await;

        app.customer_writes(&number, "16505551234", "while down")
            .await;

        eventually(Duration::from_secs(10), || async {
            app.get(&format!("/api/v1/webhook-endpoints/{id}")).await.1["status"] == "disabled"
        })
        .await;
        let (_, shown) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
        assert!(
            shown["disabled_reason"]
                .as_str()
                .unwrap()
                .contains("failed"),
            "{shown}"
        );
        // Held, not attempted, while disabled.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(receiver.received().len(), 1);
        assert_eq!(app.deliveries(id).await[0]["status"], "pending");

        let (status, enabled) = app
            .patch(
                &format!("/api/v1/webhook-endpoints/{id}"),
                json!({"enabled": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{enabled}");
        assert_eq!(enabled["status"], "enabled");
        assert!(enabled["disabled_reason"].is_null());
        let got = receiver.wait_for_delivered(1).await;
        assert_eq!(got[0].text(), "while down");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_endpoint_failing_for_longer_than_allowed_is_disabled_and_a_patch_enables_it_sqlite()
    {
        body(Db::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_endpoint_failing_for_longer_than_allowed_is_disabled_and_a_patch_enables_it_postgres()
     {
        if postgres_url().is_some() {
            body(Db::Postgres).await;
        }
    }
}

/// Without `WAGATE_HOOKS_ALLOW_PRIVATE_URLS`, no tenant can point wagate at its own machine or
/// network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_on_loopback_and_private_addresses_are_refused_by_default() {
    let app = TestApp::spawn_with(Db::Sqlite, |s| s.hooks.allow_private_urls = false).await;
    for url in [
        "http://127.0.0.1:5432/",
        "http://localhost:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/in",
        "http://[::1]:8080/in",
    ] {
        let (status, refused) = app
            .post(
                "/api/v1/webhook-endpoints",
                json!({"url": url, "events": ["message.created"]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {refused}");
        assert_eq!(refused["error"]["details"]["field"], "url", "{refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("WAGATE_HOOKS_ALLOW_PRIVATE_URLS"),
            "{refused}"
        );
    }
    let (status, created) = app
        .post(
            "/api/v1/webhook-endpoints",
            json!({"url": "https://hooks.example.com/wagate", "events": ["message.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, refused) = app
        .patch(
            &format!(
                "/api/v1/webhook-endpoints/{}",
                created["id"].as_str().unwrap()
            ),
            json!({"url": "http://127.0.0.1:9/"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
}
