//! Master key rotation through real processes: secrets stored under one key, the server restarted
//! with a new primary key and the old one as previous, `wagate keys rotate` run while sends go
//! out, and then a server with the new key alone still sends, verifies webhooks, signs its own
//! and calls the model.

use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    BIN, Proc, free_port, fresh_postgres_database, machine_to_myself, postgres_or_skip, wagate,
    wait_until_up,
};

// Test keys: base64 of 32 bytes of 'A' and of 'B'.
const KEY_A: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
const KEY_B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
const PHONE_NUMBER_ID: &str = "106540352242922";
const TOKEN: &str = "EAAGrotation";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const MODEL_KEY: &str = "sk-rotation-test";
/// Sealed secrets the test stores: three of the connection, the endpoints, the model key.
const EXTRA_ENDPOINTS: usize = 6;
const STORED_SECRETS: u64 = 3 + 1 + EXTRA_ENDPOINTS as u64 + 1;
const SENDS: usize = 480;

/// Which keys a process is given.
#[derive(Clone, Copy)]
struct Keys {
    primary: &'static str,
    previous: Option<&'static str>,
}

const ONLY_A: Keys = Keys {
    primary: KEY_A,
    previous: None,
};
const B_WITH_A: Keys = Keys {
    primary: KEY_B,
    previous: Some(KEY_A),
};
const ONLY_B: Keys = Keys {
    primary: KEY_B,
    previous: None,
};

/// Deliveries of wagate's own webhooks: (signature header, raw body).
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A tenant's webhook receiver on a free loopback port; answers 200 to everything.
async fn start_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = Arc::clone(&store);
            async move {
                let signature = headers
                    .get("x-wagate-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                store.lock().unwrap().push((signature, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Stack {
    data: tempfile::TempDir,
    database_url: String,
    emulator_url: String,
    /// Every server of the test binds here in turn, so the webhook URL Meta has stays right.
    listen: String,
    server_url: String,
    client: reqwest::Client,
    api_key: String,
    _emulator: Proc,
}

impl Stack {
    async fn start(database_url: String) -> Self {
        let data = tempfile::tempdir().unwrap();
        let emulator_port = free_port();
        let emulator_url = format!("http://127.0.0.1:{emulator_port}");
        let listen = format!("127.0.0.1:{}", free_port());
        let emulator = Proc(
            wagate(data.path(), &database_url, &listen, &emulator_url)
                .args([
                    "emulator",
                    "--emulator-listen",
                    &format!("127.0.0.1:{emulator_port}"),
                ])
                .spawn()
                .unwrap(),
        );
        let client = reqwest::Client::new();
        wait_until_up(&client, &format!("{emulator_url}/admin/phone-numbers")).await;
        let registered = client
            .post(format!("{emulator_url}/admin/phone-numbers"))
            .json(&json!({
                "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398",
                "display_phone_number": "15550783881", "verified_name": "Acme",
                "access_token": TOKEN, "app_secret": APP_SECRET, "throughput_per_second": 80
            }))
            .send()
            .await
            .unwrap();
        assert!(registered.status().is_success());
        let template = client
            .post(format!("{emulator_url}/admin/templates"))
            .json(&json!({"waba_id": "102290129340398", "name": "order_update", "language": "en",
                "category": "UTILITY", "components": [{"type": "BODY", "text": "Your order is on its way."}]}))
            .send()
            .await
            .unwrap();
        assert!(template.status().is_success());
        let output = wagate(data.path(), &database_url, &listen, &emulator_url)
            .env("WAGATE_MASTER_KEY", KEY_A)
            .args([
                "tenant",
                "create",
                "--name",
                "Acme",
                "--email",
                "keys@acme.test",
                "--password",
                "correct horse battery",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        Self {
            server_url: format!("http://{listen}"),
            data,
            database_url,
            emulator_url,
            listen,
            client,
            api_key: created["api_key"].as_str().unwrap().to_owned(),
            _emulator: emulator,
        }
    }

    fn command(&self, keys: Keys) -> Command {
        let mut command = wagate(
            self.data.path(),
            &self.database_url,
            &self.listen,
            &self.emulator_url,
        );
        command
            .env("WAGATE_MASTER_KEY", keys.primary)
            .env("WAGATE_HOOKS_ALLOW_PRIVATE_URLS", "true");
        if let Some(previous) = keys.previous {
            command.env("WAGATE_PREVIOUS_MASTER_KEYS", previous);
        }
        command
    }

    async fn serve(&self, keys: Keys) -> Proc {
        let process = Proc(self.command(keys).arg("serve").spawn().unwrap());
        wait_until_up(&self.client, &format!("{}/healthz", self.server_url)).await;
        process
    }

    /// `wagate keys ...` with these keys; the output, with stderr captured.
    fn keys(&self, keys: Keys, args: &[&str]) -> Output {
        self.command(keys)
            .arg("keys")
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    }

    fn status(&self, keys: Keys) -> Value {
        let output = self.keys(keys, &["status"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("one JSON line")
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v1{path}", self.server_url))
            .bearer_auth(&self.api_key)
    }

    async fn accepted_sends(&self) -> u64 {
        let number: Value = self
            .client
            .get(format!(
                "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
                self.emulator_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        number["accepted_sends"].as_u64().unwrap_or(0)
    }

    async fn wait_accepted(&self, count: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let accepted = self.accepted_sends().await;
            if accepted >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {accepted} of {count} sends reached Meta"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send_template(&self, to: String) -> String {
        let body = json!({"to": to, "type": "template",
            "template": {"name": "order_update", "language": {"code": "en"}}});
        let answer: Value = self
            .api(reqwest::Method::POST, "/messages")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["id"]
            .as_str()
            .unwrap_or_else(|| panic!("queued: {answer}"))
            .to_owned()
    }

    /// Every queued message, once each has reached Meta or failed (or the deadline passed).
    async fn final_statuses(&self, ids: &[String], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let mut messages = Vec::new();
            for id in ids {
                let message: Value = self
                    .api(reqwest::Method::GET, &format!("/messages/{id}"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                messages.push(message);
            }
            if messages.iter().all(sent_or_failed) || Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Meta accepted it (it has a wamid; statuses are not sent back in this test) or it failed.
fn sent_or_failed(message: &Value) -> bool {
    message["wamid"].is_string() || message["status"] == "failed"
}

fn summary_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one summary line: {stdout}"
    );
    serde_json::from_str(stdout.trim()).expect("a JSON summary")
}

fn count(map: &Value, key_id: &str) -> u64 {
    map.get(key_id).and_then(Value::as_u64).unwrap_or(0)
}

async fn rotating_the_master_key_while_the_server_sends_keeps_every_secret(database_url: String) {
    let _machine = machine_to_myself().await;
    let stack = Stack::start(database_url).await;
    let (receiver_url, received) = start_receiver().await;
    let model = emulator::FakeModel::start(Some(MODEL_KEY)).await.unwrap();

    // Everything stored under key A.
    let server = stack.serve(ONLY_A).await;
    let connection: Value = stack
        .api(reqwest::Method::POST, "/connections")
        .json(&json!({"access_token": TOKEN, "phone_number_id": PHONE_NUMBER_ID,
            "app_secret": APP_SECRET, "waba_id": "102290129340398", "verify_token": "verify-before"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let connection_id = connection["id"].as_str().expect("connected").to_owned();
    let webhook_url = connection["webhook_url"].as_str().unwrap().to_owned();
    stack
        .client
        .patch(format!(
            "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
            stack.emulator_url
        ))
        .json(&json!({"webhook_url": webhook_url}))
        .send()
        .await
        .unwrap();
    let endpoint: Value = stack
        .api(reqwest::Method::POST, "/webhook-endpoints")
        .json(&json!({"url": receiver_url, "events": ["message.created"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint_secret = endpoint["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("endpoint created: {endpoint}"))
        .to_owned();
    for _ in 0..EXTRA_ENDPOINTS {
        let extra = stack
            .api(reqwest::Method::POST, "/webhook-endpoints")
            .json(&json!({"url": receiver_url, "events": ["template.updated"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(extra.status(), StatusCode::CREATED);
    }
    let assistant = stack
        .api(
            reqwest::Method::PUT,
            &format!("/connections/{connection_id}/assistant"),
        )
        .json(&json!({"auto_reply": true,
            "provider": {"base_url": model.base_url(), "model": "fake-1", "api_key": MODEL_KEY}}))
        .send()
        .await
        .unwrap();
    assert_eq!(assistant.status(), StatusCode::OK);
    let under_a = stack.status(ONLY_A);
    let id_a = under_a["primary_key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        count(&under_a["by_key"], &id_a),
        STORED_SECRETS,
        "{under_a}"
    );
    assert_eq!(under_a["primary_key_from"], "WAGATE_MASTER_KEY");
    drop(server);

    // Step 1: restarted with B primary and A previous; old secrets still open.
    let server = stack.serve(B_WITH_A).await;
    let before = stack.status(B_WITH_A);
    let id_b = before["primary_key_id"].as_str().unwrap().to_owned();
    assert_ne!(id_a, id_b);
    assert_eq!(before["under_other_keys"], STORED_SECRETS, "{before}");
    assert_eq!(count(&before["by_key"], &id_a), STORED_SECRETS);

    // Without A, nothing opens: each secret is reported with the key id and what to set, the
    // run goes on to the end, and fails.
    let missing = stack.keys(ONLY_B, &["rotate"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(&id_a) && stderr.contains("WAGATE_PREVIOUS_MASTER_KEYS"),
        "{stderr}"
    );
    let summary = summary_of(&missing);
    assert_eq!(summary["resealed"], 0, "{summary}");
    assert_eq!(summary["unreadable"], STORED_SECRETS, "{summary}");
    assert_eq!(summary["left_under_other_keys"], STORED_SECRETS);
    assert!(
        stderr.trim().lines().last().unwrap().starts_with("error:"),
        "{stderr}"
    );

    // Step 2: sends going out, a verify token changed through the API, and the rotation beside them.
    let mut senders = Vec::new();
    for worker in 0..8 {
        let stack_client = (
            stack.client.clone(),
            stack.server_url.clone(),
            stack.api_key.clone(),
        );
        senders.push(tokio::spawn(async move {
            let (client, server_url, api_key) = stack_client;
            let mut ids = Vec::new();
            for i in (worker..SENDS).step_by(8) {
                let answer: Value = client
                    .post(format!("{server_url}/api/v1/messages"))
                    .bearer_auth(&api_key)
                    .json(&json!({"to": format!("49152{:08}", i), "type": "template",
                        "template": {"name": "order_update", "language": {"code": "en"}}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                ids.push(
                    answer["id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("queued: {answer}"))
                        .to_owned(),
                );
            }
            ids
        }));
    }
    stack.wait_accepted(40, Duration::from_secs(30)).await;
    let patch = stack
        .api(
            reqwest::Method::PATCH,
            &format!("/connections/{connection_id}"),
        )
        .json(&json!({"verify_token": "verify-after"}));
    let mut rotate = stack.command(B_WITH_A);
    rotate
        .args(["keys", "rotate", "--batch-size", "2"])
        .stderr(Stdio::piped());
    let rotation = tokio::task::spawn_blocking(move || rotate.output().unwrap());
    let patched = patch.send().await.unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let rotated = rotation.await.unwrap();
    let accepted_at_end_of_rotation = stack.accepted_sends().await;
    let stderr = String::from_utf8_lossy(&rotated.stderr);
    assert!(rotated.status.success(), "{stderr}");
    assert!(stderr.contains("resealed"), "progress on stderr: {stderr}");
    let summary = summary_of(&rotated);
    assert_eq!(summary["left_under_other_keys"], 0, "{summary}");
    assert_eq!(summary["unreadable"], 0, "{summary}");
    // The verify token may have been saved under B before the run counted, or after.
    let before_total =
        count(&summary["by_key_before"], &id_a) + count(&summary["by_key_before"], &id_b);
    assert_eq!(before_total, STORED_SECRETS, "{summary}");
    assert!(
        summary["resealed"].as_u64().unwrap() >= STORED_SECRETS - 1,
        "{summary}"
    );
    assert!(
        accepted_at_end_of_rotation < SENDS as u64,
        "the rotation ran while sends were going out ({accepted_at_end_of_rotation} of {SENDS} done)"
    );
    let mut ids = Vec::new();
    for sender in senders {
        ids.extend(sender.await.unwrap());
    }
    stack
        .wait_accepted(SENDS as u64, Duration::from_secs(60))
        .await;
    let messages = stack.final_statuses(&ids, Duration::from_secs(30)).await;
    let failed: Vec<&Value> = messages
        .iter()
        .filter(|m| !m["wamid"].is_string() || m["status"] == "failed")
        .collect();
    assert!(
        failed.is_empty(),
        "every send succeeded: {:?}",
        &failed[..failed.len().min(3)]
    );

    // Step 3: nothing left under A; a second run has nothing to do.
    let after = stack.status(ONLY_B);
    assert_eq!(after["under_other_keys"], 0, "{after}");
    assert_eq!(count(&after["by_key"], &id_a), 0, "{after}");
    assert_eq!(count(&after["by_key"], &id_b), STORED_SECRETS, "{after}");
    let again = stack.keys(B_WITH_A, &["rotate"]);
    assert!(again.status.success());
    let summary = summary_of(&again);
    assert_eq!(summary["resealed"], 0, "{summary}");
    assert_eq!(summary["already_current"], STORED_SECRETS, "{summary}");
    drop(server);

    // A server with B alone: sends, checks Meta's verification and signatures, signs its own
    // webhooks, and calls the model with the stored key.
    let _server = stack.serve(ONLY_B).await;
    stack.send_template("4915300000001".into()).await;
    stack
        .wait_accepted(SENDS as u64 + 1, Duration::from_secs(30))
        .await;
    let challenge = stack
        .client
        .get(format!(
            "{webhook_url}?hub.mode=subscribe&hub.verify_token=verify-after&hub.challenge=8675309"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        challenge.status(),
        StatusCode::OK,
        "the token saved during rotation is kept"
    );
    assert_eq!(challenge.text().await.unwrap(), "8675309");
    let stale = stack
        .client
        .get(format!(
            "{webhook_url}?hub.mode=subscribe&hub.verify_token=verify-before&hub.challenge=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);

    let deliveries_before = received.lock().unwrap().len();
    let customer = "4915112345999";
    let written = stack
        .client
        .post(format!("{}/admin/customers/messages", stack.emulator_url))
        .json(
            &json!({"phone_number_id": PHONE_NUMBER_ID, "from": customer, "name": "Rita",
            "type": "text", "text": {"body": "Is my order on its way?"}}),
        )
        .send()
        .await
        .unwrap();
    assert!(written.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page: Value = stack
            .api(
                reqwest::Method::GET,
                &format!("/messages?contact={customer}"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = page["data"].as_array().cloned().unwrap_or_default();
        let inbound = data.iter().any(|m| m["direction"] == "inbound");
        let answered = data.iter().any(|m| {
            m["direction"] == "outbound" && m["text"]["body"] == "Echo: Is my order on its way?"
        });
        if inbound && answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the signed webhook was taken and the model answered: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!model.requests().is_empty(), "the model got the stored key");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let new: Vec<(String, Vec<u8>)> = received.lock().unwrap()[deliveries_before..].to_vec();
        if !new.is_empty() {
            for (signature, body) in &new {
                assert_eq!(
                    signature,
                    &hmac_hex(&endpoint_secret, body),
                    "signed with the endpoint's secret"
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no webhook reached the tenant's receiver"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_master_key_while_the_server_sends_keeps_every_secret_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keys.db", data.path().display());
    rotating_the_master_key_while_the_server_sends_keeps_every_secret(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_master_key_while_the_server_sends_keeps_every_secret_on_postgres() {
    let Some(server) = postgres_or_skip("the key rotation test") else {
        return;
    };
    let url =
        fresh_postgres_database(&server, &format!("wagate_keys_{}", std::process::id())).await;
    rotating_the_master_key_while_the_server_sends_keeps_every_secret(url).await;
}

#[test]
fn rotation_refuses_a_generated_key_file_and_says_what_to_set() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/wagate.db", data.path().display());
    let output = wagate(data.path(), &url, "127.0.0.1:0", "http://127.0.0.1:9")
        .env_remove("WAGATE_MASTER_KEY")
        .args(["keys", "rotate"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for needed in [
        "key file",
        "WAGATE_MASTER_KEY",
        "WAGATE_PREVIOUS_MASTER_KEYS",
        "master.key",
    ] {
        assert!(stderr.contains(needed), "{needed}: {stderr}");
    }
    assert!(
        !data.path().join("master.key").exists(),
        "refusing creates no key file"
    );
    // Status works with the key file, and says where the key came from.
    let status = wagate(data.path(), &url, "127.0.0.1:0", "http://127.0.0.1:9")
        .env_remove("WAGATE_MASTER_KEY")
        .args(["keys", "status"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["primary_key_from"], "key_file");
    assert_eq!(status["total"], 0);
}

#[test]
fn the_keys_commands_have_help_that_gives_the_procedure() {
    let output = Command::new(BIN)
        .args(["keys", "rotate", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for step in [
        "WAGATE_PREVIOUS_MASTER_KEYS=<old key>",
        "left_under_other_keys",
        "--batch-size",
    ] {
        assert!(help.contains(step), "{step}: {help}");
    }
    for args in [vec!["keys", "--help"], vec!["keys", "status", "--help"]] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert!(output.status.success(), "wagate {args:?}");
        assert!(!output.stdout.is_empty());
    }
}
