//! The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver.
//! Without chromedriver these tests skip with a reason, except under `CI=true`, where they fail.
//! Screenshots go to `target/screenshots/`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::*;

mod sequences;

/// How long an element may take to appear.
const PATIENCE: Duration = Duration::from_secs(10);

pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads a process group of its own, with every Chromium process it started;
        // the whole group goes, or orphaned browsers would slow every test after this one.
        // `--` so the negative id is read as the group, never as an option.
        let leader = self.driver.id();
        if leader > 1 {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{leader}")])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file())
}

/// Starts chromedriver on a free port and opens a headless Chromium through it.
pub async fn open_browser() -> Option<Browser> {
    let Some(chromedriver) = find_program("chromedriver") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but chromedriver is not installed: the browser tests must run");
        }
        eprintln!("skipping the browser test: install chromium and chromium-driver to run it");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let driver = Command::new(chromedriver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let mut browser_args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ];
    browser_args.push("--lang=en-US");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({ "args": browser_args }));
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        // chromedriver is on this machine: plain HTTP, no TLS.
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("cannot open Chromium through chromedriver: {error}"),
        }
    };
    Some(Browser { client, driver })
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page opens");
    }

    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Does `act` on `css`, finding the element again if live updates replaced it meanwhile.
    async fn on_element<T, Act, Fut>(&self, css: &str, act: Act) -> T
    where
        Act: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match act(self.wait_for(css).await).await {
                Ok(value) => return value,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot act on {css}: {error}"),
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, |element| async move { element.click().await })
            .await;
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.on_element(css, |element| async move { element.text().await })
            .await
    }

    /// Waits until the element's text is not empty, and answers it.
    pub async fn wait_for_text(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text_of(css).await;
            if !text.trim().is_empty() {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} stayed empty");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn sign_in(&self, app: &TestApp, email: &str, password: &str) {
        self.goto(&app.url("/login")).await;
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", password).await;
        self.click("form button[type=submit]").await;
        self.wait_for("header.topbar").await;
    }

    /// Fills the connect dialog with `access_token` and the number's other credentials, and
    /// submits it.
    async fn submit_connect_form(&self, access_token: &str, number: &ConnectedNumber) {
        self.fill("#connect-form input[name=access_token]", access_token)
            .await;
        self.fill(
            "#connect-form input[name=phone_number_id]",
            &number.phone_number_id,
        )
        .await;
        self.fill("#connect-form input[name=app_secret]", &number.app_secret)
            .await;
        self.click("#connect-submit").await;
    }

    /// Saves what the page looks like at 1280 and at 390 px wide under `target/screenshots/`.
    pub async fn screenshots(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        for (width, height) in [(1280, 900), (390, 844)] {
            self.client
                .set_window_size(width, height)
                .await
                .expect("resize");
            tokio::time::sleep(Duration::from_millis(150)).await;
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{width}.png")), png).expect("save screenshot");
        }
        self.client
            .set_window_size(1280, 900)
            .await
            .expect("resize");
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_signs_in_and_connects_a_number_and_sees_its_webhook_url() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    browser.goto(&app.url("/app/integrations")).await;
    browser.wait_for("form input[name=email]").await;
    browser.screenshots("sign-in").await;
    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser.goto(&app.url("/app/integrations")).await;
    browser.click("[data-open=connect-dialog]").await;

    // Wrong credentials: Meta's own words are shown, nothing is stored.
    let number = app.register_number();
    browser.submit_connect_form("EAAwrong", &number).await;
    let error = browser.wait_for_text("#connect-error").await;
    assert!(error.contains("Meta"), "{error}");

    browser
        .submit_connect_form(&number.access_token, &number)
        .await;
    let webhook_url = browser.wait_for_text("#connect-webhook-url").await;
    assert!(
        webhook_url.starts_with(&format!("{}/webhooks/whatsapp/", app.address)),
        "{webhook_url}"
    );
    let verify_token = browser.wait_for_text("#connect-verify-token").await;
    let (_, listed) = app.get("/api/v1/connections").await;
    assert_eq!(listed["data"][0]["webhook_url"], webhook_url.as_str());
    assert_eq!(listed["data"][0]["verify_token"], verify_token.as_str());
    browser.screenshots("connect-dialog").await;

    browser.click("[data-close=connect-dialog]").await;
    let card = browser.text_of("article.connection").await;
    assert!(card.contains("Connected"), "{card}");
    assert!(card.contains(&webhook_url), "{card}");
    browser.screenshots("integrations").await;

    // Another tenant's owner sees none of it.
    let other = app.other_owner().await;
    browser.click("header form button[type=submit]").await;
    browser.wait_for("form input[name=email]").await;
    browser.sign_in(&app, &other.email, OWNER_PASSWORD).await;
    browser.goto(&app.url("/app/integrations")).await;
    let page = browser.text_of("main").await;
    assert!(page.contains("No number is connected yet"), "{page}");
    assert!(!page.contains(&webhook_url), "{page}");
}

impl Browser {
    /// Marks the page, so a later check can tell it was never reloaded.
    async fn mark_page(&self) {
        self.client
            .execute("window.__samePage = true; return true;", vec![])
            .await
            .expect("script");
    }

    async fn same_page(&self) -> bool {
        self.client
            .execute("return window.__samePage === true;", vec![])
            .await
            .expect("script")
            .as_bool()
            .unwrap_or(false)
    }

    /// Waits until `css` matches an element whose text contains `text`.
    async fn wait_for_text_in(&self, css: &str, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self.client.find_all(Locator::Css(css)).await.expect("find");
            for element in found {
                if element.text().await.unwrap_or_default().contains(text) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no {css} with {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn attribute_becomes(&self, css: &str, attribute: &str, value: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let current = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.attr(attribute).await.ok().flatten(),
                Err(_) => None,
            };
            if current.as_deref() == Some(value) {
                return;
            }
            if Instant::now() >= deadline {
                self.screenshots("failure").await;
                let source = self.client.source().await.unwrap_or_default();
                panic!("{css} {attribute} stayed {current:?}, not {value}; page: {source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_new_messages_live_and_replies_reach_read() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let number = app.connect_number().await;
    app.meta_behaves(&number, crate::outbound::statuses_all_the_way());
    app.customer_writes(&number, "5511987654321", "Oi! Do you ship to São Paulo?")
        .await;

    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser.goto(&app.url("/app/inbox")).await;
    browser.wait_for_text_in("#bell-count", "1").await;
    browser.click("a.conversation").await;
    browser
        .wait_for_text_in("#messages .message.in", "Do you ship")
        .await;
    // Opening the conversation reads it: the bell empties, Meta gets a read receipt.
    browser
        .attribute_becomes("#bell-count", "hidden", "true")
        .await;
    browser.mark_page().await;

    // A second customer writes: the list and the bell change without a reload.
    app.emulator
        .customer_writes(emulator::CustomerMessage::text(
            &number.phone_number_id,
            "919876543210",
            "Hi, my order has not arrived yet.",
        ))
        .await
        .unwrap();
    browser
        .wait_for_text_in("a.conversation.unread", "my order has not arrived")
        .await;
    browser.wait_for_text_in("#bell-count", "1").await;
    // The open customer writes again: it appears in the open chat.
    app.emulator
        .customer_writes(emulator::CustomerMessage::text(
            &number.phone_number_id,
            "5511987654321",
            "How long does delivery take?",
        ))
        .await
        .unwrap();
    browser
        .wait_for_text_in("#messages .message.in", "How long does delivery take?")
        .await;
    assert!(browser.same_page().await, "the page was never reloaded");

    // Typing an answer shows the customer "typing…"; Enter sends it and its tick moves to read.
    browser
        .fill("#composer textarea", "Two to three days.")
        .await;
    let deadline = Instant::now() + PATIENCE;
    while !app
        .emulator
        .read_receipts(Some(&number.phone_number_id))
        .iter()
        .any(|r| r.typing_indicator)
    {
        assert!(
            Instant::now() < deadline,
            "Meta was never asked to show typing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .wait_for("#composer textarea")
        .await
        .send_keys("\n")
        .await
        .expect("Enter");
    browser
        .wait_for_text_in("#messages .message.out", "Two to three days.")
        .await;
    browser
        .attribute_becomes("#messages .message.out .tick", "data-status", "read")
        .await;
    let sent = app.emulator.sent_messages(Some(&number.phone_number_id));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].request["text"]["body"], "Two to three days.");
    browser.screenshots("inbox").await;

    // The bell lists what is unread; "mark all as read" empties it.
    browser.click("#bell").await;
    browser
        .wait_for_text_in("#bell-menu .bell-items", "my order has not arrived")
        .await;
    browser.screenshots("bell-menu").await;
    browser.click("[data-mark-all-read]").await;
    browser
        .attribute_becomes("#bell-count", "hidden", "true")
        .await;
    let (_, unread) = app.get("/api/v1/unread-count").await;
    assert_eq!(unread["unread"], 0);

    // A customer whose window has closed can only get a template: the text box says so.
    let mut tx = app.state.store.begin().await.unwrap();
    sqlx::query("UPDATE conversations SET window_expires_at = $1")
        .bind(wagate::clock::now_ms() - 1_000)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    browser.client.refresh().await.unwrap();
    let composer = browser.wait_for("#composer textarea").await;
    assert_eq!(
        composer.attr("disabled").await.unwrap().as_deref(),
        Some("true")
    );
    let placeholder = composer
        .attr("placeholder")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(placeholder.contains("template"), "{placeholder}");
    let head = browser.text_of(".chat-head").await;
    assert!(head.contains("Window closed"), "{head}");
    browser.screenshots("inbox-window-closed").await;

    // The contact behind the chat, with its timeline; and the webhook log.
    browser.goto(&app.url("/app/contacts")).await;
    browser.click("#contacts a").await;
    browser.wait_for_text_in("#timeline", "Meta: read").await;
    browser.screenshots("contact").await;
    browser.goto(&app.url("/app/webhooks")).await;
    browser.wait_for("#webhook-log").await;
    browser.screenshots("webhook-log").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_reconnects_after_the_server_restarts_and_keeps_updating() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let mut app = TestApp::spawn(Db::Sqlite).await;
    let number = app.connect_number().await;
    app.customer_writes(
        &number,
        "919876543210",
        "Hi, my order #4821 has not arrived.",
    )
    .await;
    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser.goto(&app.url("/app/inbox")).await;
    browser.click("a.conversation").await;
    browser
        .wait_for_text_in("#messages .message.in", "has not arrived")
        .await;
    browser.mark_page().await;

    app.restart().await;
    app.emulator
        .customer_writes(emulator::CustomerMessage::text(
            &number.phone_number_id,
            "919876543210",
            "Are you still there?",
        ))
        .await
        .unwrap();
    browser
        .wait_for_text_in("#messages .message.in", "Are you still there?")
        .await;
    assert!(
        browser.same_page().await,
        "the page got the message over its new socket, not by reloading"
    );
}

/// An approved template with a text header, two body values and a link button, on Meta's side.
fn order_update_template() -> emulator::TemplateSeed {
    emulator::TemplateSeed {
        waba_id: TEST_WABA.into(),
        name: "order_update".into(),
        language: "en".into(),
        category: "UTILITY".into(),
        parameter_format: Some("POSITIONAL".into()),
        components: vec![
            json!({"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-1042"]}}),
            json!({"type": "BODY", "text": "Hi {{1}}, your order ships on {{2}}.", "example": {"body_text": [["Ana", "Monday"]]}}),
            json!({"type": "FOOTER", "text": "Acme Shoes"}),
            json!({"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://acme.test/track/{{1}}", "example": ["https://acme.test/track/A-1042"]}]}),
        ],
        ..Default::default()
    }
}

impl Browser {
    /// Clicks the first element matching `css` whose text contains `text`.
    async fn click_with_text(&self, css: &str, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            for element in self.client.find_all(Locator::Css(css)).await.expect("find") {
                if element.text().await.unwrap_or_default().contains(text)
                    && element.click().await.is_ok()
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no {css} with {text:?} to click");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the image matched by `css` has loaded (it has a width), and answers that width.
    async fn image_loads(&self, css: &str) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let width = self
                .client
                .execute(
                    "const img = document.querySelector(arguments[0]); return img && img.complete ? img.naturalWidth : 0;",
                    vec![json!(css)],
                )
                .await
                .expect("script")
                .as_u64()
                .unwrap_or(0);
            if width > 0 {
                return width;
            }
            assert!(Instant::now() < deadline, "{css} never loaded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_show_in_the_chat_and_a_closed_window_leaves_only_the_template_picker() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let number = app.connect_number().await;
    app.meta_behaves(&number, crate::outbound::statuses_all_the_way());
    app.emulator.add_template(order_update_template()).unwrap();
    app.post("/api/v1/templates/sync", json!({})).await;
    let photo: &[u8] = include_bytes!("../../../../testdata/media/photo.jpg");
    let pdf: &[u8] = include_bytes!("../../../../testdata/media/invoice.pdf");
    for message in [
        emulator::CustomerMessage::media(
            &number.phone_number_id,
            "5511987654321",
            "image",
            photo.to_vec(),
            "image/jpeg",
        )
        .with_caption("Do you have these in blue?"),
        emulator::CustomerMessage::media(
            &number.phone_number_id,
            "5511987654321",
            "document",
            pdf.to_vec(),
            "application/pdf",
        )
        .with_filename("invoice-1042.pdf"),
    ] {
        let receipt = app.emulator.customer_writes(message).await.unwrap();
        app.emulator
            .wait_delivered(receipt.delivery_id, Duration::from_secs(5))
            .await
            .unwrap();
    }

    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser.goto(&app.url("/app/inbox")).await;
    browser.click("a.conversation").await;
    // The customer's photo is shown as a picture (fetched from Meta, served by wagate), the
    // document as a named file.
    let width = browser
        .image_loads("#messages .message.in .media-image img")
        .await;
    assert_eq!(width, 320);
    browser
        .wait_for_text_in("#messages .message.in", "Do you have these in blue?")
        .await;
    browser
        .wait_for_text_in(
            "#messages .message.in .media-document .file",
            "invoice-1042.pdf",
        )
        .await;

    // Attaching a photo uploads it and sends it by id; it shows on our side too.
    let photo_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/media/photo.jpg")
        .canonicalize()
        .unwrap();
    browser.fill("#composer textarea", "The blue ones").await;
    browser
        .wait_for("#attach-input")
        .await
        .send_keys(photo_path.to_str().unwrap())
        .await
        .expect("file chosen");
    browser
        .image_loads("#messages .message.out .media-image img")
        .await;
    browser
        .wait_for_text_in("#messages .message.out", "The blue ones")
        .await;
    browser
        .attribute_becomes("#messages .message.out .tick", "data-status", "read")
        .await;
    let sent = app.emulator.sent_messages(Some(&number.phone_number_id));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].request["type"], "image");
    assert_eq!(sent[0].request["image"]["caption"], "The blue ones");
    let uploaded = sent[0].request["image"]["id"].as_str().unwrap();
    assert_eq!(&app.emulator.media_content(uploaded).unwrap()[..], photo);
    browser.screenshots("inbox-media").await;

    // The window closes: the text box says why, and the template picker is the way to write.
    let mut tx = app.state.store.begin().await.unwrap();
    sqlx::query("UPDATE conversations SET window_expires_at = $1")
        .bind(wagate::clock::now_ms() - 1_000)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    browser.client.refresh().await.unwrap();
    let composer = browser.wait_for("#composer textarea").await;
    assert_eq!(
        composer.attr("disabled").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        browser.client.find(Locator::Css("#attach")).await.is_err(),
        "no attachments outside the window"
    );
    browser.click("#composer .template-open").await;
    browser
        .wait_for_text_in("#template-picker .template-choice", "order_update")
        .await;
    browser.screenshots("template-list").await;
    browser
        .click_with_text("#template-picker .template-choice", "order_update")
        .await;
    browser
        .fill("#template-form input[name='header.1']", "A-7")
        .await;
    browser
        .fill("#template-form input[name='body.1']", "Ana")
        .await;
    browser
        .wait_for_text_in("#template-preview", "Hi Ana, your order ships on")
        .await;
    browser
        .fill("#template-form input[name='body.2']", "Friday")
        .await;
    browser
        .fill("#template-form input[name='button.0.1']", "A-7")
        .await;
    browser
        .wait_for_text_in("#template-preview", "Hi Ana, your order ships on Friday.")
        .await;
    browser
        .wait_for_text_in("#template-preview", "Order A-7")
        .await;
    browser.screenshots("template-picker").await;
    browser.click("#template-send").await;
    browser
        .wait_for_text_in("#messages .message.out", "order_update")
        .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let sent = app.emulator.sent_messages(Some(&number.phone_number_id));
        if let Some(template) = sent.iter().find(|m| m.message_type == "template") {
            let components = &template.request["template"]["components"];
            assert_eq!(
                components[1]["parameters"][1]["text"], "Friday",
                "{components}"
            );
            assert_eq!(components[2]["sub_type"], "url");
            break;
        }
        assert!(Instant::now() < deadline, "the template never reached Meta");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .attribute_becomes(
            "#messages .message.out:last-child .tick",
            "data-status",
            "read",
        )
        .await;

    // Another tenant sees none of it, files included.
    let other = app.other_owner().await;
    let (_, mine) = app.get("/api/v1/messages?limit=10").await;
    let media_url = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|m| m["media"]["url"].as_str())
        .unwrap()
        .to_owned();
    browser.click("header form button[type=submit]").await;
    browser.wait_for("form input[name=email]").await;
    browser.sign_in(&app, &other.email, OWNER_PASSWORD).await;
    browser.goto(&app.url(&media_url)).await;
    let page = browser.client.source().await.unwrap();
    assert!(page.contains("\"not_found\""), "{page}");
    assert!(
        !page.contains("JFIF"),
        "the photo's bytes are not served to another tenant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_header_shows_who_answers_and_a_person_takes_over_from_the_assistant() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let number = app.connect_number().await;
    let (status, body) = json_of(
        app.client
            .put(app.url(&format!("/api/v1/connections/{}/assistant", number.id())))
            .bearer_auth(&app.api_key)
            .json(&serde_json::json!({
                "auto_reply": true,
                "faqs": [{"question": "Do you repair bikes?", "answer": "Yes, repairs take a day.", "keywords": ["repair"]}]
            }))
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    app.customer_writes(&number, "4915112345901", "Can you repair my bike?")
        .await;

    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser.goto(&app.url("/app/inbox")).await;
    browser.click("a.conversation").await;
    browser
        .wait_for_text_in("#messages .message.out", "Yes, repairs take a day.")
        .await;
    browser
        .wait_for_text_in("#handler.bot", "The assistant is answering")
        .await;
    browser.mark_page().await;
    browser.screenshots("assistant-answering").await;

    browser.click("[data-assistant=pause]").await;
    browser
        .wait_for_text_in("#handler.person", "A person is handling this")
        .await;
    let (_, list) = app.get("/api/v1/conversations").await;
    assert_eq!(
        list["data"][0]["assistant"]["paused_reason"],
        "paused by a person"
    );
    browser.screenshots("assistant-paused").await;

    browser.click("[data-assistant=resume]").await;
    browser
        .wait_for_text_in("#handler.bot", "The assistant is answering")
        .await;
    assert!(
        browser.same_page().await,
        "the header changed without a reload"
    );
}

impl Browser {
    /// Scrolls `css` to the middle of the window, for a screenshot of that part of a long page.
    async fn scroll_to(&self, css: &str) {
        let element = self.wait_for(css).await;
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'}); return true;",
                vec![serde_json::to_value(&element).expect("element as an argument")],
            )
            .await
            .expect("scroll");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_page_saves_a_numbers_settings_shows_the_apis_errors_and_never_the_key() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let number = app.connect_number().await;
    let settings_path = format!("/api/v1/connections/{}/assistant", number.id());
    const KEY: &str = "sk-test-never-shown-4821";

    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser.click("nav a[href='/app/assistant']").await;
    browser.wait_for("#assistant-form").await;
    browser.click("input[name=auto_reply]").await;
    browser
        .fill(
            "textarea[name=system_prompt]",
            "You answer for Acme Bikes. Be brief.",
        )
        .await;
    browser.click("#add-faq").await;
    let faq = "#faq-rows .faq-row:last-child";
    browser
        .fill(
            &format!("{faq} [data-faq=question]"),
            "Do you repair bikes?",
        )
        .await;
    browser
        .fill(
            &format!("{faq} [data-faq=answer]"),
            "Yes, repairs take a day.",
        )
        .await;
    browser
        .fill(&format!("{faq} [data-faq=keywords]"), "Repair, fix")
        .await;
    browser
        .wait_for("select[name=reply_language]")
        .await
        .select_by_value("es")
        .await
        .expect("choose a language");
    browser
        .fill("input[name=provider_base_url]", "ftp://models.example")
        .await;
    browser
        .fill("input[name=provider_model]", "acme-small")
        .await;
    browser.fill("input[name=provider_api_key]", KEY).await;
    browser.fill("input[name=history_length]", "500").await;
    browser
        .fill("input[name=handoff_phrases]", "agent, talk to someone")
        .await;
    browser.click("#assistant-save").await;

    // Each problem is shown under its field in the API's words, and nothing is stored.
    let base_url_error = browser
        .wait_for_text("[data-error-for='provider.base_url']")
        .await;
    assert!(
        base_url_error.contains("must be the http(s) URL of an OpenAI-compatible API"),
        "{base_url_error}"
    );
    let history_error = browser
        .wait_for_text("[data-error-for=history_length]")
        .await;
    assert_eq!(history_error, "must be a whole number from 0 to 50");
    let summary = browser.wait_for_text("#assistant-error").await;
    assert!(summary.starts_with("Not saved:"), "{summary}");
    browser
        .attribute_becomes("input[name=provider_base_url]", "aria-invalid", "true")
        .await;
    let (_, stored) = app.get(&settings_path).await;
    assert_eq!(stored["auto_reply"], false, "{stored}");
    assert!(stored["provider"].is_null(), "{stored}");
    browser
        .scroll_to("[data-error-for='provider.base_url']")
        .await;
    browser.screenshots("assistant-errors").await;

    browser
        .fill(
            "input[name=provider_base_url]",
            "https://models.example/v1/",
        )
        .await;
    browser.fill("input[name=history_length]", "8").await;
    browser.click("input[name=hours_limited]").await;
    browser.fill("input[name=hours_utc_offset]", "+01:00").await;
    browser.fill("input[name=hours_mon]", "09:00-18:00").await;
    browser.click("#assistant-save").await;
    browser.wait_for_text_in("#assistant-saved", "Saved").await;

    let (status, stored) = app.get(&settings_path).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{stored}");
    assert_eq!(stored["auto_reply"], true, "{stored}");
    assert_eq!(
        stored["system_prompt"],
        "You answer for Acme Bikes. Be brief."
    );
    assert_eq!(
        stored["faqs"],
        json!([{"question": "Do you repair bikes?", "answer": "Yes, repairs take a day.", "keywords": ["repair", "fix"]}])
    );
    assert_eq!(stored["reply_language"], "es");
    assert_eq!(
        stored["provider"],
        json!({"base_url": "https://models.example/v1", "model": "acme-small", "has_api_key": true})
    );
    assert_eq!(stored["history_length"], 8);
    assert_eq!(
        stored["handoff_phrases"],
        json!(["agent", "talk to someone"])
    );
    assert_eq!(
        stored["hours"],
        json!({"utc_offset": "+01:00", "days": {"mon": [["09:00", "18:00"]]}})
    );
    assert!(!stored.to_string().contains(KEY));

    // After a reload the page shows what is stored, and of the key only that there is one.
    browser
        .goto(&app.url(&format!("/app/assistant?connection={}", number.id())))
        .await;
    let value = |css: &'static str| {
        let browser = &browser;
        async move {
            browser
                .wait_for(css)
                .await
                .prop("value")
                .await
                .expect("value")
                .unwrap_or_default()
        }
    };
    assert_eq!(
        value("textarea[name=system_prompt]").await,
        "You answer for Acme Bikes. Be brief."
    );
    assert_eq!(
        value("#faq-rows .faq-row [data-faq=answer]").await,
        "Yes, repairs take a day."
    );
    assert_eq!(
        value("#faq-rows .faq-row [data-faq=keywords]").await,
        "repair, fix"
    );
    assert_eq!(value("select[name=reply_language]").await, "es");
    assert_eq!(
        value("input[name=provider_base_url]").await,
        "https://models.example/v1"
    );
    assert_eq!(value("input[name=provider_api_key]").await, "");
    assert_eq!(value("input[name=hours_mon]").await, "09:00-18:00");
    let note = browser.wait_for_text("#assistant-key-note").await;
    assert!(note.contains("A key is stored"), "{note}");
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains(KEY), "the key is on the page");
    browser.screenshots("assistant-settings").await;
    browser.scroll_to("#assistant-key-note").await;
    browser.screenshots("assistant-settings-model").await;

    // Saving again without typing a key keeps the stored one.
    browser.click("#assistant-save").await;
    browser.wait_for_text_in("#assistant-saved", "Saved").await;
    let (_, stored) = app.get(&settings_path).await;
    assert_eq!(stored["provider"]["has_api_key"], true, "{stored}");

    // An agent reads the settings but cannot change them.
    browser.goto(&app.url("/app/users")).await;
    browser
        .fill(
            "form[action='/app/users'] input[name=email]",
            "agent@example.com",
        )
        .await;
    browser
        .click("form[action='/app/users'] button[type=submit]")
        .await;
    let temporary = browser.wait_for_text("#temporary-password").await;
    browser.click("header form button[type=submit]").await;
    browser.wait_for("form input[name=email]").await;
    browser
        .sign_in(&app, "agent@example.com", temporary.trim())
        .await;
    browser.goto(&app.url("/app/assistant")).await;
    let note = browser.wait_for_text("#assistant-read-only").await;
    assert!(note.contains("Only owners and admins"), "{note}");
    assert!(
        browser
            .client
            .find(Locator::Css("#assistant-save"))
            .await
            .is_err(),
        "an agent has no Save button"
    );
    assert_eq!(
        value("textarea[name=system_prompt]").await,
        "You answer for Acme Bikes. Be brief."
    );
}
