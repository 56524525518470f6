//! The `wagate` binary as people run it: separate processes for the server and the emulator,
//! configured by environment, driven over HTTP; and the server killed with SIGKILL mid-traffic.

mod cluster;
mod crash;
mod demo;
mod faults;
mod keys;
mod sending;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

/// Held by every test that starts servers under load, so they run one at a time: two of them
/// side by side on a small machine delay each other's calls by tens of milliseconds, and the
/// rate tests measure Meta's limit to the millisecond.
static MACHINE: Mutex<()> = Mutex::const_new(());

pub(crate) async fn machine_to_myself() -> MutexGuard<'static, ()> {
    MACHINE.lock().await
}

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_wagate");
const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed when the test ends, however it ends.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn wagate(data_dir: &Path, database_url: &str, listen: &str, graph: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_DATA_DIR", data_dir)
        .env("WAGATE_DATABASE_URL", database_url)
        .env("WAGATE_LISTEN", listen)
        .env("WAGATE_GRAPH_API_BASE", graph)
        .env("WAGATE_MASTER_KEY", MASTER_KEY)
        // These tests send thousands of webhooks and calls a minute with one key.
        .env("WAGATE_API_RATE_LIMIT", "0")
        .env("WAGATE_WEBHOOK_RATE_LIMIT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

pub(crate) async fn wait_until_up(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

pub(crate) fn postgres_or_skip(name: &str) -> Option<String> {
    match std::env::var("WAGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").map(|v| v != "true").unwrap_or(true),
                "CI=true but WAGATE_TEST_DATABASE_URL is not set"
            );
            eprintln!("skipping {name} on PostgreSQL: WAGATE_TEST_DATABASE_URL is not set");
            None
        }
    }
}

pub(crate) async fn fresh_postgres_database(server_url: &str, name: &str) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(server_url).await.expect("postgres");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let mut url = url::Url::parse(server_url).expect("url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_connects_the_emulator_and_sees_a_customer_message_within_a_second() {
    let _machine = machine_to_myself().await;
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/wagate.db", data.path().display());
    let emulator_port = free_port();
    let server_port = free_port();
    let emulator_url = format!("http://127.0.0.1:{emulator_port}");
    let server_url = format!("http://127.0.0.1:{server_port}");
    let listen = format!("127.0.0.1:{server_port}");
    let client = reqwest::Client::new();

    let _emulator = Proc(
        wagate(data.path(), &database_url, &listen, &emulator_url)
            .args([
                "emulator",
                "--emulator-listen",
                &format!("127.0.0.1:{emulator_port}"),
            ])
            .spawn()
            .unwrap(),
    );
    // Everything the server logs, at the most talkative level, is kept to check for secrets.
    let log_path = data.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _server = Proc(
        wagate(data.path(), &database_url, &listen, &emulator_url)
            .env("RUST_LOG", "trace")
            .stderr(log)
            .arg("serve")
            .spawn()
            .unwrap(),
    );
    wait_until_up(&client, &format!("{server_url}/healthz")).await;
    wait_until_up(&client, &format!("{emulator_url}/admin/phone-numbers")).await;

    // `wagate tenant create` works while the server runs on the same database.
    let output = wagate(data.path(), &database_url, &listen, &emulator_url)
        .args([
            "tenant",
            "create",
            "--name",
            "Acme",
            "--email",
            "owner@acme.test",
            "--password",
            "correct horse battery",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let created: Value = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    assert!(created["tenant_id"].is_string() && created["user_id"].is_string());

    let again = wagate(data.path(), &database_url, &listen, &emulator_url)
        .args([
            "tenant",
            "create",
            "--name",
            "Acme",
            "--email",
            "owner@acme.test",
            "--password",
            "correct horse battery",
        ])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!again.status.success(), "the same email twice is refused");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let registration = json!({
        "phone_number_id": "106540352242922", "waba_id": "102290129340398",
        "display_phone_number": "15550783881", "verified_name": "Acme Shoes",
        "access_token": "EAAGtesttoken", "app_secret": "0123456789abcdef0123456789abcdef"
    });
    let registered = client
        .post(format!("{emulator_url}/admin/phone-numbers"))
        .json(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let connection: Value = client
        .post(format!("{server_url}/api/v1/connections"))
        .bearer_auth(&api_key)
        .json(&json!({"access_token": "EAAGtesttoken", "phone_number_id": "106540352242922", "app_secret": "0123456789abcdef0123456789abcdef"}))
        .send().await.unwrap().json().await.unwrap();
    let webhook_url = connection["webhook_url"]
        .as_str()
        .expect("connection created")
        .to_owned();
    let patched = client
        .patch(format!(
            "{emulator_url}/admin/phone-numbers/106540352242922"
        ))
        .json(&json!({"webhook_url": webhook_url}))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());

    let sent: Value = client
        .post(format!("{emulator_url}/admin/customers/messages"))
        .json(&json!({"phone_number_id": "106540352242922", "from": "16505551234", "name": "Sheena Nelson",
            "type": "text", "text": {"body": "Does it come in another color?"}}))
        .send().await.unwrap().json().await.unwrap();
    let wamid = sent["wamid"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let page: Value = client
            .get(format!("{server_url}/api/v1/messages"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(message) = page["data"].as_array().and_then(|d| d.first()) {
            assert_eq!(message["wamid"], json!(wamid));
            assert_eq!(message["type"], "text");
            assert_eq!(
                message["text"],
                json!({"body": "Does it come in another color?"})
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the message is not visible within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.len() > 1000, "the server logged at trace level");
    for secret in [
        "EAAGtesttoken",
        "0123456789abcdef0123456789abcdef",
        api_key.as_str(),
    ] {
        assert!(!logged.contains(secret), "a secret reached the log");
    }
}

/// The body Meta posts for one customer's text message to the test number.
pub(crate) fn customer_text_webhook(
    wamid: &str,
    customer: &str,
    name: &str,
    text: &str,
    timestamp: &str,
) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": name}, "wa_id": customer}],
            "messages": [{"from": customer, "id": wamid, "timestamp": timestamp,
                "type": "text", "text": {"body": text}}]}}]}]})
    .to_string()
}

/// Sends signed webhooks (one new message each) from several tasks until told to stop and
/// returns the wamids whose POST got 200.
async fn send_until_stopped(
    server_url: String,
    webhook_path: String,
    secret: String,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (url, secret, stop) = (
            format!("{server_url}{webhook_path}"),
            secret.clone(),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut acknowledged = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let wamid = format!("wamid.kill{worker}x{n}");
                let customer = format!("49151{:07}", n % 50);
                let body = customer_text_webhook(&wamid, &customer, "Load", "load", "1749416383")
                    .into_bytes();
                let signature = cloudapi::signature::sign(secret.as_bytes(), &body);
                match client
                    .post(&url)
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == StatusCode::OK => acknowledged.push(wamid),
                    // Refused or cut off: Meta would retry; nothing is promised for these.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            acknowledged
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

async fn killing_the_server_loses_no_acknowledged_webhook(database_url: String) {
    let _machine = machine_to_myself().await;
    let data = tempfile::tempdir().unwrap();
    let emulator_port = free_port();
    let server_port = free_port();
    let emulator_url = format!("http://127.0.0.1:{emulator_port}");
    let server_url = format!("http://127.0.0.1:{server_port}");
    let listen = format!("127.0.0.1:{server_port}");
    let client = reqwest::Client::new();
    let _emulator = Proc(
        wagate(data.path(), &database_url, &listen, &emulator_url)
            .args([
                "emulator",
                "--emulator-listen",
                &format!("127.0.0.1:{emulator_port}"),
            ])
            .spawn()
            .unwrap(),
    );
    let start_server = || {
        Proc(
            wagate(data.path(), &database_url, &listen, &emulator_url)
                .arg("serve")
                .spawn()
                .unwrap(),
        )
    };
    let mut server = start_server();
    wait_until_up(&client, &format!("{server_url}/healthz")).await;
    wait_until_up(&client, &format!("{emulator_url}/admin/phone-numbers")).await;
    let output = wagate(data.path(), &database_url, &listen, &emulator_url)
        .args([
            "tenant",
            "create",
            "--name",
            "Acme",
            "--email",
            "kill@acme.test",
            "--password",
            "correct horse battery",
        ])
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    let secret = "0123456789abcdef0123456789abcdef";
    client.post(format!("{emulator_url}/admin/phone-numbers")).json(&json!({
        "phone_number_id": "106540352242922", "waba_id": "102290129340398", "display_phone_number": "15550783881",
        "verified_name": "Acme", "access_token": "EAAGkill", "app_secret": secret
    })).send().await.unwrap();
    let connection: Value = client.post(format!("{server_url}/api/v1/connections")).bearer_auth(&api_key)
        .json(&json!({"access_token": "EAAGkill", "phone_number_id": "106540352242922", "app_secret": secret}))
        .send().await.unwrap().json().await.unwrap();
    let webhook_url = connection["webhook_url"].as_str().unwrap();
    let webhook_path = webhook_url.trim_start_matches(&server_url).to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(send_until_stopped(
        server_url.clone(),
        webhook_path,
        secret.to_owned(),
        Arc::clone(&stop),
    ));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        // SIGKILL: no chance to flush anything, exactly like a crash or an OOM kill.
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        server = start_server();
        wait_until_up(&client, &format!("{server_url}/healthz")).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = load.await.unwrap();
    assert!(
        acknowledged.len() > 100,
        "the load got through: {}",
        acknowledged.len()
    );

    // Everything acknowledged must be there once the restarted server has processed its inbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = Vec::new();
    loop {
        stored.clear();
        let mut before: Option<String> = None;
        loop {
            let mut url = format!("{server_url}/api/v1/messages?limit=200");
            if let Some(b) = &before {
                url.push_str(&format!("&before={b}"));
            }
            let page: Value = client
                .get(url)
                .bearer_auth(&api_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for m in page["data"].as_array().unwrap() {
                stored.push(m["wamid"].as_str().unwrap().to_owned());
            }
            match page["next_before"].as_str() {
                Some(next) => before = Some(next.to_owned()),
                None => break,
            }
        }
        // Some stored messages were never acknowledged (the server died before answering), so
        // wait for every acknowledged one, not for a count.
        let have: std::collections::HashSet<&String> = stored.iter().collect();
        if acknowledged.iter().all(|w| have.contains(w)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing is left behind: the inbox drains and no row is parked.
    let deadline = Instant::now() + Duration::from_secs(30);
    for state in ["pending", "parked"] {
        loop {
            let rows: Value = client
                .get(format!("{server_url}/api/v1/inbox?state={state}"))
                .bearer_auth(&api_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let left = rows["data"].as_array().map(Vec::len).unwrap_or(usize::MAX);
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{state} rows remain: {rows}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let stored_set: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(stored_set.len(), stored.len(), "no message is stored twice");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|w| !stored_set.contains(w))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged webhooks were lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_with_sigkill_loses_no_acknowledged_webhook_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kill.db", data.path().display());
    killing_the_server_loses_no_acknowledged_webhook(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_with_sigkill_loses_no_acknowledged_webhook_on_postgres() {
    let Some(server) = postgres_or_skip("the SIGKILL test") else {
        return;
    };
    let url =
        fresh_postgres_database(&server, &format!("wagate_kill_{}", std::process::id())).await;
    killing_the_server_loses_no_acknowledged_webhook(url).await;
}

#[test]
fn every_command_has_help_and_migrate_is_repeatable() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["worker", "--help"],
        vec!["demo", "--help"],
        vec!["emulator", "--help"],
        vec!["tenant", "create", "--help"],
        vec!["migrate", "--help"],
        vec!["bench", "ingest", "--help"],
        vec!["bench", "send", "--help"],
        vec!["bench", "crash", "--help"],
    ] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert!(output.status.success(), "wagate {args:?} --help");
        assert!(!output.stdout.is_empty());
    }
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/wagate.db", data.path().display());
    for _ in 0..2 {
        let output = wagate(data.path(), &url, "127.0.0.1:0", "http://127.0.0.1:9")
            .arg("migrate")
            .output()
            .unwrap();
        assert!(output.status.success());
    }
}

#[test]
fn a_bad_setting_fails_with_one_clear_line_on_stderr() {
    let data = tempfile::tempdir().unwrap();
    let output = wagate(
        data.path(),
        "mysql://nope",
        "127.0.0.1:0",
        "http://127.0.0.1:9",
    )
    .arg("migrate")
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("WAGATE_DATABASE_URL"), "{stderr}");
}
