//! The server's dependencies failing under load: PostgreSQL unreachable (webhooks answered 503,
//! never 200, and the server recovering by itself with nothing lost), and Redis unreachable (rate
//! budgets falling back to the process's own, with a warning and a metric, and nothing crashing).
//!
//! The faults are made with a TCP proxy between the server and the service, so the service itself
//! stays up for the tests that run beside these: cutting the proxy breaks every open connection
//! and refuses new ones, which is what a restarted or unreachable database looks like from the
//! server's side.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};

use crate::sending::{SECRET, Stack};
use crate::{fresh_postgres_database, machine_to_myself, postgres_or_skip};

/// Forwards TCP connections to `target` until cut; while cut, every open connection is broken
/// and new ones are closed at once.
struct FaultProxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl FaultProxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, _) = watch::channel(true);
        let state = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watcher = state.subscribe();
                if !*watcher.borrow() {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watcher.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// What happened to each webhook: every answer it got, with the time it was sent and answered.
#[derive(Default)]
struct Outcomes {
    answers: HashMap<String, Vec<(Instant, Instant, Option<StatusCode>)>>,
}

/// Posts `count` signed webhooks (one new customer message each) from 8 tasks, each retried
/// like Meta does until it gets a 200; returns every answer.
async fn resend_until_acknowledged(
    server: String,
    key: String,
    count: usize,
    outcomes: Arc<Mutex<Outcomes>>,
    gave_up: Arc<AtomicBool>,
) {
    let mut tasks = Vec::new();
    for lane in 0..8 {
        let (server, key, outcomes, gave_up) = (
            server.clone(),
            key.clone(),
            Arc::clone(&outcomes),
            Arc::clone(&gave_up),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            for i in (lane..count).step_by(8) {
                let wamid = format!("wamid.fault.{i}");
                let customer = format!("4917100{:05}", i % 40);
                let body = crate::customer_text_webhook(
                    &wamid,
                    &customer,
                    "Load",
                    &format!("fault {i}"),
                    "1767000000",
                );
                let signature = cloudapi::signature::sign(SECRET.as_bytes(), body.as_bytes());
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let sent = Instant::now();
                    let answer = client
                        .post(format!("{server}/webhooks/whatsapp/{key}"))
                        .header("x-hub-signature-256", &signature)
                        .body(body.clone())
                        .send()
                        .await
                        .ok()
                        .map(|r| r.status());
                    outcomes
                        .lock()
                        .await
                        .answers
                        .entry(wamid.clone())
                        .or_default()
                        .push((sent, Instant::now(), answer));
                    if answer == Some(StatusCode::OK) {
                        break;
                    }
                    if Instant::now() > deadline {
                        gave_up.store(true, Ordering::Relaxed);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn readiness(client: &reqwest::Client, server: &str) -> (StatusCode, Value) {
    let answer = client
        .get(format!("{server}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn metric(client: &reqwest::Client, server: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{server}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_unreachable_webhooks_get_503_never_200_and_the_server_recovers_by_itself()
 {
    let _machine = machine_to_myself().await;
    let Some(server) = postgres_or_skip("the database fault test") else {
        return;
    };
    let direct =
        fresh_postgres_database(&server, &format!("wagate_fault_{}", std::process::id())).await;
    let mut url = url::Url::parse(&direct).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = FaultProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    let stack = Stack::start(url.to_string(), json!({})).await;
    let (_server, base) = stack.serve(&[]).await;
    let connection_id = stack.connect(&base).await;
    let key = stack.webhook_key(&base, &connection_id).await;

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let gave_up = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(resend_until_acknowledged(
        base.clone(),
        key,
        3000,
        Arc::clone(&outcomes),
        Arc::clone(&gave_up),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut();
    let cut_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ready, body) = readiness(&stack.client, &base).await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"], "unavailable");
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let restored_at = Instant::now();
    load.await.unwrap();
    assert!(
        !gave_up.load(Ordering::Relaxed),
        "the server did not come back"
    );
    let (ready, body) = readiness(&stack.client, &base).await;
    assert_eq!(ready, StatusCode::OK, "{body}");

    let outcomes = outcomes.lock().await;
    let mut refused_during_cut = 0;
    let mut acknowledged_during_cut = Vec::new();
    let mut first_200_after = None::<Duration>;
    for (wamid, answers) in &outcomes.answers {
        for (sent, answered, status) in answers {
            // A request sent after the cut and answered before the restore met no database.
            let blind = *sent > cut_at + Duration::from_millis(100) && *answered < restored_at;
            match status {
                Some(StatusCode::OK) if blind => acknowledged_during_cut.push(wamid.clone()),
                Some(StatusCode::OK) if *sent > restored_at => {
                    let after = *answered - restored_at;
                    first_200_after = Some(first_200_after.map_or(after, |d| d.min(after)));
                }
                Some(StatusCode::SERVICE_UNAVAILABLE) if blind => refused_during_cut += 1,
                _ => {}
            }
        }
    }
    assert!(
        acknowledged_during_cut.is_empty(),
        "answered 200 while nothing could be stored: {acknowledged_during_cut:?}"
    );
    assert!(
        refused_during_cut > 0,
        "webhooks were answered 503 during the cut"
    );
    let recovered = first_200_after.expect("webhooks were acknowledged after the restore");
    assert!(
        recovered < Duration::from_secs(10),
        "took {recovered:?} to recover"
    );

    // Every webhook was stored exactly once, and the inbox drained.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&direct).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = sqlx::query("SELECT COUNT(*) AS n, COUNT(DISTINCT wamid) AS d FROM messages WHERE direction = 'inbound'")
            .fetch_one(&pool)
            .await
            .unwrap();
        let (n, d): (i64, i64) = (sqlx::Row::get(&row, "n"), sqlx::Row::get(&row, "d"));
        assert_eq!(n, d, "a message was stored twice");
        if n == 3000 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} of 3000 messages stored");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_unreachable_sends_go_on_under_local_budgets_with_a_warning_and_a_metric() {
    let _machine = machine_to_myself().await;
    let redis =
        std::env::var("WAGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis_url = url::Url::parse(&redis).unwrap();
    let target = format!(
        "{}:{}",
        redis_url.host_str().unwrap(),
        redis_url.port().unwrap_or(6379)
    );
    if TcpStream::connect(&target).await.is_err() {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "CI=true but Redis does not answer at {target}"
        );
        eprintln!("skipping the Redis fault test: Redis does not answer at {target}");
        return;
    }
    let proxy = FaultProxy::start(target).await;
    let through_proxy = format!("redis://127.0.0.1:{}", proxy.port);
    let data = tempfile::tempdir().unwrap();
    let stack = Stack::start(
        format!("sqlite://{}/redis-fault.db", data.path().display()),
        json!({"throughput_per_second": 80}),
    )
    .await;
    let (_server, base) = stack
        .serve(&[("WAGATE_REDIS_URL", through_proxy.as_str())])
        .await;
    stack.connect(&base).await;
    let (ready, body) = readiness(&stack.client, &base).await;
    assert_eq!(
        (ready, body["checks"]["redis"].clone()),
        (StatusCode::OK, json!("ok"))
    );

    let queued = stack.queue_templates(&base, 400).await;
    assert_eq!(queued.len(), 400);
    stack.wait_accepted(80, Duration::from_secs(30)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ready, body) = readiness(&stack.client, &base).await;
    assert_eq!(
        ready,
        StatusCode::OK,
        "Redis away is not a reason to stop serving"
    );
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"], "unavailable");

    // Every send still reaches Meta exactly once, and never too fast.
    let number = stack.wait_accepted(400, Duration::from_secs(60)).await;
    assert_eq!(number["rejected_throughput"], 0, "{number}");
    let per_message = stack.sends_per_message().await;
    assert_eq!(per_message.len(), 400);
    assert!(per_message.values().all(|n| *n == 1));
    assert!(
        metric(&stack.client, &base, "wagate_rate_limit_fallback_total").await >= 1.0,
        "the fallback is counted"
    );
    assert_eq!(
        metric(&stack.client, &base, "wagate_rate_limit_shared").await,
        0.0
    );

    // Redis back: shared budgets again, by themselves.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = readiness(&stack.client, &base).await;
        if body["status"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "still {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Budgets are shared again once a send finds Redis answering (it is tried again at most once
    // a second while degraded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = 400;
    while metric(&stack.client, &base, "wagate_rate_limit_shared").await != 1.0 {
        assert!(Instant::now() < deadline, "budgets were not shared again");
        stack.queue_templates_numbered(&base, next..next + 8).await;
        next += 8;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stack
        .wait_accepted(next as u64, Duration::from_secs(30))
        .await;
    let per_message = stack.sends_per_message().await;
    assert!(per_message.values().all(|n| *n == 1));
}
