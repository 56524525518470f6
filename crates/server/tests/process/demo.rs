//! `wagate demo` as a newcomer runs it: one command, then the printed API key and curl work.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{BIN, Proc, free_port, machine_to_myself};

/// Reads the demo's welcome text up to its last line.
fn welcome(stdout: std::process::ChildStdout) -> String {
    let (lines, read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text.contains("Press Ctrl-C to stop.") {
        let line = read
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the demo printed its welcome: {text}"));
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn field_after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{label} in the welcome: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_a_key_and_a_curl_that_work_and_its_customers_write_and_read() {
    let _machine = machine_to_myself().await;
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_DATA_DIR", data.path())
        .env("WAGATE_LISTEN", &listen)
        .env("RUST_LOG", "warn")
        .args(["demo", "--customer-every-secs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Proc(child);
    let text = welcome(stdout);
    let base = format!("http://{listen}");
    assert_eq!(field_after(&text, "Dashboard"), format!("{base}/"));
    assert_eq!(field_after(&text, "Login"), "demo@example.com");
    let api_key = field_after(&text, "API key").to_owned();
    let client = reqwest::Client::new();

    // The dashboard URL leads to its sign-in page, where the printed login works.
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert!(page.status().is_success());
    assert!(page.url().path().starts_with("/login"), "{}", page.url());
    let page = page.text().await.unwrap();
    let form_token = hidden_value(&page, "form_token");
    let password = field_after(&text, "Password").to_owned();
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/login"))
        .header("Cookie", format!("wagate_signin={form_token}"))
        .form(&[
            ("email", "demo@example.com"),
            ("password", password.as_str()),
            ("form_token", form_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_in.status(),
        reqwest::StatusCode::SEE_OTHER,
        "the printed password signs in"
    );

    // The three customers write in on their own.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conversations: Value = client
            .get(format!("{base}/api/v1/conversations"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = conversations["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["contact"]["name"].as_str())
            .collect();
        if names.len() == 3 {
            assert!(names.contains(&"Ana Souza"), "{names:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "customers wrote in: {conversations}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The printed curl's request, sent as printed: the customer gets it and reads it.
    let data_line = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("-d '"))
        .and_then(|rest| rest.strip_suffix('\''))
        .expect("the curl's body");
    let body: Value = serde_json::from_str(data_line).unwrap();
    assert_eq!(body["to"], json!("+5511987654321"));
    let sent: Value = client
        .post(format!("{base}/api/v1/messages"))
        .bearer_auth(&api_key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sent["id"].as_str().expect("queued").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let message: Value = client
            .get(format!("{base}/api/v1/messages/{id}"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if message["status"] == "read" {
            break;
        }
        assert!(Instant::now() < deadline, "the customer read it: {message}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Ctrl-C (SIGTERM here) stops it cleanly.
    let pid = demo.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let mut demo = demo;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo stopped on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
}

fn hidden_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}
