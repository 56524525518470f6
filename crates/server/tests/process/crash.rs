//! `wagate bench crash` as a test: webhooks resent like Meta and template sends while the server
//! is killed with SIGKILL and restarted; every message stored once, every send sent once or
//! failed with a reason.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{BIN, machine_to_myself, postgres_or_skip};

/// Runs the bench on `database_url` (the server it names, for PostgreSQL: the bench makes and
/// drops its own database there) and checks its summary.
async fn crash_run_keeps_every_message_once(database_url: &str) {
    let _machine = machine_to_myself().await;
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_DATA_DIR", data.path())
        .env("WAGATE_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .args([
            "bench",
            "crash",
            "--webhooks",
            "3000",
            "--sends",
            "300",
            "--kill-every-ms",
            "1500",
            // 3,000 over about six seconds, so kills land while webhooks are delivered.
            "--webhooks-per-second",
            "500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The bench blocks on its child processes: off the runtime.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the crash bench failed after {:.0} s: {stdout}\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    eprintln!("{summary}");
    assert_eq!(summary["webhooks"], 3000);
    assert_eq!(summary["acknowledged"], 3000, "{summary}");
    assert_eq!(summary["stored"], 3000, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["missing"], 0, "{summary}");
    assert_eq!(summary["inbox_pending"], 0, "{summary}");
    assert_eq!(summary["inbox_parked"], 0, "{summary}");
    assert!(summary["kills"].as_u64().unwrap() >= 2, "{summary}");
    assert!(
        summary["retries"].as_u64().unwrap() > 0,
        "the kills made the resender retry: {summary}"
    );
    let sends = &summary["sends"];
    assert_eq!(sends["queued"], 300, "{summary}");
    assert_eq!(
        sends["sent_once"].as_u64().unwrap() + sends["failed_with_reason"].as_u64().unwrap(),
        300,
        "every send ends sent once or failed with a reason: {summary}"
    );
    assert_eq!(sends["sent_twice"], 0, "{summary}");
    assert!(summary["problems"].as_array().unwrap().is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(180),
        "the crash test took {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_every_second_and_a_half_stores_every_webhook_once_and_sends_each_message_once_on_sqlite()
 {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/crash.db", data.path().display());
    crash_run_keeps_every_message_once(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_every_second_and_a_half_stores_every_webhook_once_and_sends_each_message_once_on_postgres()
 {
    let Some(server) = postgres_or_skip("the crash test") else {
        return;
    };
    // The bench creates a database of its own on that server and drops it at the end.
    crash_run_keeps_every_message_once(&server).await;
}
