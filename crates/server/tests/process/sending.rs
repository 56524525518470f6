//! Sending through real processes: a number's throughput held (in one process, and across two
//! sharing Redis), and a sender killed with SIGKILL mid-run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    Proc, free_port, fresh_postgres_database, machine_to_myself, postgres_or_skip, wagate,
    wait_until_up,
};

const PHONE_NUMBER_ID: &str = "106540352242922";
const TOKEN: &str = "EAAGsending";
pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// An emulator process, a database, a tenant with a connected number, and any number of
/// `wagate serve` processes on that database.
pub(crate) struct Stack {
    pub(crate) data: tempfile::TempDir,
    pub(crate) database_url: String,
    pub(crate) emulator_url: String,
    pub(crate) client: reqwest::Client,
    pub(crate) api_key: String,
    _emulator: Proc,
}

impl Stack {
    pub(crate) async fn start(database_url: String, number: Value) -> Self {
        let data = tempfile::tempdir().unwrap();
        let emulator_port = free_port();
        let emulator_url = format!("http://127.0.0.1:{emulator_port}");
        let emulator = Proc(
            wagate(data.path(), &database_url, "127.0.0.1:0", &emulator_url)
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
        let mut registration = json!({
            "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398",
            "display_phone_number": "15550783881", "verified_name": "Acme",
            "access_token": TOKEN, "app_secret": SECRET
        });
        for (key, value) in number.as_object().unwrap() {
            registration[key] = value.clone();
        }
        let registered = client
            .post(format!("{emulator_url}/admin/phone-numbers"))
            .json(&registration)
            .send()
            .await
            .unwrap();
        assert!(
            registered.status().is_success(),
            "{}",
            registered.text().await.unwrap()
        );
        // The template these tests send, approved on the number's account.
        let template = client
            .post(format!("{emulator_url}/admin/templates"))
            .json(&json!({"waba_id": "102290129340398", "name": "order_update", "language": "en",
                "category": "UTILITY", "components": [{"type": "BODY", "text": "Your order is on its way."}]}))
            .send()
            .await
            .unwrap();
        assert!(
            template.status().is_success(),
            "{}",
            template.text().await.unwrap()
        );
        let output = wagate(data.path(), &database_url, "127.0.0.1:0", &emulator_url)
            .args([
                "tenant",
                "create",
                "--name",
                "Acme",
                "--email",
                "send@acme.test",
                "--password",
                "correct horse battery",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        Self {
            data,
            database_url,
            emulator_url,
            client,
            api_key: created["api_key"].as_str().unwrap().to_owned(),
            _emulator: emulator,
        }
    }

    /// A `wagate serve` process on the stack's database, with extra environment; returns its URL.
    pub(crate) async fn serve(&self, env: &[(&str, &str)]) -> (Proc, String) {
        self.serve_with(&["serve"], env).await
    }

    /// A `wagate <args>` process that listens (`serve`, `serve --no-workers`); returns its URL.
    pub(crate) async fn serve_with(&self, args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = wagate(
            self.data.path(),
            &self.database_url,
            &listen,
            &self.emulator_url,
        );
        for (key, value) in env {
            command.env(key, value);
        }
        let process = Proc(command.args(args).spawn().unwrap());
        let url = format!("http://{listen}");
        wait_until_up(&self.client, &format!("{url}/healthz")).await;
        (process, url)
    }

    pub(crate) async fn connect(&self, server: &str) -> String {
        let connection: Value = self
            .client
            .post(format!("{server}/api/v1/connections"))
            .bearer_auth(&self.api_key)
            .json(&json!({"access_token": TOKEN, "phone_number_id": PHONE_NUMBER_ID, "app_secret": SECRET, "waba_id": "102290129340398"}))
            .send().await.unwrap().json().await.unwrap();
        let webhook_url = connection["webhook_url"]
            .as_str()
            .expect("connection created")
            .to_owned();
        self.client
            .patch(format!(
                "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
                self.emulator_url
            ))
            .json(&json!({"webhook_url": webhook_url}))
            .send()
            .await
            .unwrap();
        connection["id"].as_str().unwrap().to_owned()
    }

    /// The key in a connection's webhook URL (the last path segment).
    pub(crate) async fn webhook_key(&self, server: &str, connection_id: &str) -> String {
        let connection: Value = self
            .client
            .get(format!("{server}/api/v1/connections/{connection_id}"))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        connection["webhook_url"]
            .as_str()
            .and_then(|u| u.rsplit('/').next())
            .unwrap()
            .to_owned()
    }

    /// Queues `count` template messages to as many customers, from 8 concurrent API clients.
    pub(crate) async fn queue_templates(&self, server: &str, count: usize) -> Vec<String> {
        self.queue_templates_numbered(server, 0..count).await
    }

    /// Queues one template message to each customer numbered in `customers`.
    pub(crate) async fn queue_templates_numbered(
        &self,
        server: &str,
        customers: std::ops::Range<usize>,
    ) -> Vec<String> {
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let (client, server, key) =
                (self.client.clone(), server.to_owned(), self.api_key.clone());
            let customers = customers.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (customers.start + worker..customers.end).step_by(8) {
                    let body = json!({"to": format!("49152{:08}", i), "type": "template",
                        "template": {"name": "order_update", "language": {"code": "en"}}});
                    let answer: Value = client
                        .post(format!("{server}/api/v1/messages"))
                        .bearer_auth(&key)
                        .json(&body)
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
        let mut ids = Vec::new();
        for task in tasks {
            ids.extend(task.await.unwrap());
        }
        ids
    }

    pub(crate) async fn number(&self) -> Value {
        self.client
            .get(format!(
                "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
                self.emulator_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn wait_accepted(&self, count: u64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let number = self.number().await;
            if number["accepted_sends"].as_u64().unwrap_or(0) >= count {
                return number;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} sends reached Meta",
                number["accepted_sends"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// First and last time Meta accepted a send.
    pub(crate) async fn accepted_span(&self) -> Duration {
        let calls: Value = self
            .client
            .get(format!(
                "{}/admin/calls?phone_number_id={PHONE_NUMBER_ID}&endpoint=messages",
                self.emulator_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let times: Vec<u64> = calls["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["http_status"] == 200)
            .map(|c| c["received_at_ms"].as_u64().unwrap())
            .collect();
        let first = times.iter().min().unwrap();
        let last = times.iter().max().unwrap();
        Duration::from_millis(last - first)
    }

    /// For a failure message: the most calls accepted in any one second and the arrivals around it.
    pub(crate) async fn densest_second(&self) -> String {
        let calls: Value = self
            .client
            .get(format!(
                "{}/admin/calls?phone_number_id={PHONE_NUMBER_ID}&endpoint=messages",
                self.emulator_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut times: Vec<(u64, u64)> = calls["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["received_at_ms"].as_u64().unwrap(),
                    c["http_status"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        times.sort();
        let mut worst = (0, 0);
        for (i, (t, _)) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|(u, _)| *u < t + 1000)
                .filter(|(_, s)| *s == 200)
                .count();
            if n > worst.0 {
                worst = (n, i);
            }
        }
        let rejected: Vec<_> = times
            .iter()
            .filter(|(_, s)| *s != 200)
            .map(|(t, _)| t - times[0].0)
            .collect();
        let gaps: Vec<u64> = times[worst.1..]
            .iter()
            .take(100)
            .map(|(t, _)| t - times[worst.1].0)
            .collect();
        format!(
            "densest second: {} accepted from call {}; rejected: {rejected:?}; offsets: {gaps:?}",
            worst.0, worst.1
        )
    }

    /// How many times Meta accepted each of our messages (by the callback data wagate attaches).
    pub(crate) async fn sends_per_message(&self) -> HashMap<String, usize> {
        let sent: Value = self
            .client
            .get(format!(
                "{}/admin/sent-messages?phone_number_id={PHONE_NUMBER_ID}",
                self.emulator_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut counts = HashMap::new();
        for message in sent["data"].as_array().unwrap() {
            if let Some(id) = message["request"]["biz_opaque_callback_data"]
                .as_str()
                .and_then(|d| d.strip_prefix("wg:"))
            {
                *counts.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// The sender counts each call in its number's second until the answer is back (Meta cannot
/// answer before the call arrived), so however a call was delayed on its way, Meta's strict count
/// never sees more than the limit.
pub(crate) async fn assert_meta_never_said_too_fast(stack: &Stack, number: &Value) {
    let rejected = number["rejected_throughput"].as_u64().unwrap();
    assert_eq!(
        rejected,
        0,
        "Meta answered 130429 {rejected} times: {number} {}",
        stack.densest_second().await
    );
}

/// 2,000 messages at 80 per second: 1,999 intervals of 12.5 ms is 25 s; within 5%.
fn assert_paced_at_80_per_second(span: Duration) {
    let seconds = span.as_secs_f64();
    assert!(
        (23.75..=26.25).contains(&seconds),
        "2,000 sends took {seconds:.2} s; 25 s ± 5% expected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_messages_to_one_number_go_at_its_80_per_second_and_meta_never_says_too_fast()
{
    let _machine = machine_to_myself().await;
    let data = tempfile::tempdir().unwrap();
    let stack = Stack::start(
        format!("sqlite://{}/rate.db", data.path().display()),
        json!({"throughput_per_second": 80}),
    )
    .await;
    let (_server, url) = stack.serve(&[]).await;
    stack.connect(&url).await;
    let ids = stack.queue_templates(&url, 2000).await;
    assert_eq!(ids.len(), 2000);
    let number = stack.wait_accepted(2000, Duration::from_secs(90)).await;
    assert_meta_never_said_too_fast(&stack, &number).await;
    assert_eq!(number["accepted_sends"], 2000);
    assert_paced_at_80_per_second(stack.accepted_span().await);
    assert!(stack.sends_per_message().await.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_redis_hold_one_numbers_rate_between_them() {
    let _machine = machine_to_myself().await;
    let Some(server) = postgres_or_skip("the two-process rate test") else {
        return;
    };
    let redis =
        std::env::var("WAGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let database_url =
        fresh_postgres_database(&server, &format!("wagate_rate_{}", std::process::id())).await;
    let stack = Stack::start(database_url.clone(), json!({"throughput_per_second": 80})).await;
    // Each process on its own would allow 80/s; only the shared budget keeps the two at 80 together.
    let env = [("WAGATE_REDIS_URL", redis.as_str())];
    let (_first, first_url) = stack.serve(&env).await;
    let (_second, _) = stack.serve(&env).await;
    stack.connect(&first_url).await;
    stack.queue_templates(&first_url, 2000).await;
    let number = stack.wait_accepted(2000, Duration::from_secs(90)).await;
    assert_meta_never_said_too_fast(&stack, &number).await;
    assert_paced_at_80_per_second(stack.accepted_span().await);
    assert!(stack.sends_per_message().await.values().all(|n| *n == 1));
    // Both processes sent: the jobs were taken by two workers.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let row = sqlx::query("SELECT COUNT(DISTINCT leased_by) AS n FROM jobs WHERE kind = 'send_message' AND state = 'done'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let workers: i64 = sqlx::Row::get(&row, "n");
    assert_eq!(workers, 2, "both processes took send jobs");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_mid_run_leaves_every_message_sent_once_or_failed_with_a_reason() {
    let _machine = machine_to_myself().await;
    let data = tempfile::tempdir().unwrap();
    let stack = Stack::start(
        format!("sqlite://{}/kill-send.db", data.path().display()),
        json!({"throughput_per_second": 80, "auto_statuses": ["sent", "delivered", "read"], "auto_status_delay_ms": 20}),
    )
    .await;
    // Short leases and timeouts, so the restarted process takes over the dead one's jobs quickly.
    let env = [
        ("WAGATE_JOB_LEASE_SECS", "3"),
        ("WAGATE_GRAPH_TIMEOUT_SECS", "2"),
        // Long enough for Meta's retries (at once, 1 s, 2 s, 4 s) to bring the statuses of calls
        // that were in flight at the kill back to the restarted process.
        ("WAGATE_SEND_OUTCOME_GRACE_SECS", "10"),
    ];
    let (mut server, url) = stack.serve(&env).await;
    // The restarted process must come back on the same address: Meta's statuses go there.
    let port = url.rsplit(':').next().unwrap().to_owned();
    stack.connect(&url).await;
    let ids = stack.queue_templates(&url, 800).await;
    // Kill it once a fair part has gone out.
    stack.wait_accepted(150, Duration::from_secs(30)).await;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let accepted_before = stack.number().await["accepted_sends"].as_u64().unwrap();
    assert!(
        accepted_before < 800,
        "killed mid-run: {accepted_before} sent"
    );
    let listen = format!("127.0.0.1:{port}");
    let mut command = wagate(
        stack.data.path(),
        &stack.database_url,
        &listen,
        &stack.emulator_url,
    );
    for (key, value) in env {
        command.env(key, value);
    }
    let _restarted = Proc(command.arg("serve").spawn().unwrap());
    wait_until_up(&stack.client, &format!("{url}/healthz")).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = HashMap::new();
    loop {
        let mut unfinished = 0;
        for id in &ids {
            let message: Value = stack
                .client
                .get(format!("{url}/api/v1/messages/{id}"))
                .bearer_auth(&stack.api_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let status = message["status"].as_str().unwrap_or_default().to_owned();
            if status != "read" && status != "failed" {
                unfinished += 1;
            }
            if status == "failed" {
                assert!(
                    message["error"]["message"].is_string()
                        || message["error"]["title"].is_string(),
                    "a failure says why: {message}"
                );
            }
            last.insert(id.clone(), (status, message["error"].clone()));
        }
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} messages never finished"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sends = stack.sends_per_message().await;
    for id in &ids {
        let times = sends.get(id).copied().unwrap_or(0);
        assert!(times <= 1, "message {id} reached Meta {times} times");
        if last[id].0 == "read" {
            assert_eq!(times, 1);
        }
    }
    let read = last.values().filter(|(s, _)| s == "read").count();
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for (status, error) in last.values() {
        if status != "read" {
            *reasons.entry(error.to_string()).or_default() += 1;
        }
    }
    assert!(
        read >= 780,
        "nearly everything goes through: {read} of 800 read; the rest: {reasons:?}"
    );
}
