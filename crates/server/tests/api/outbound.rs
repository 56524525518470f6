//! Sending: every message type reaches Meta exactly as documented and ends `read`; the 24-hour
//! window; idempotency; validation; Meta's errors classified; usage from pricing.

use std::time::Duration;

use emulator::{
    CustomerMessage, FaultKind, FaultSpec, GraphEndpoint, MessageStatus, PhoneNumberUpdate,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Meta's documented send requests (a copy of Meta's examples in the repository).
fn send_examples() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/meta-examples");
    let mut examples: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("testdata/meta-examples exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("send_") && name.ends_with("_request.json")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // Meta's pages hold placeholders no server accepts: links written `http(s)://…`, a
            // template called `template-name` (template names take no hyphen) in the language
            // `language-and-locale-code`, and a media id `<DOCUMENT_OBJECT_ID>`. They are filled
            // in; nothing else changes.
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("http(s)://", "https://")
                .replace("\"template-name\"", "\"template_name\"")
                .replace("<DOCUMENT_OBJECT_ID>", "1166846181421999")
                .replace("\"language-and-locale-code\"", "\"en_US\"");
            (name, serde_json::from_str(&text).unwrap())
        })
        .filter(|(_, body): &(String, Value)| body.get("type").is_some())
        .collect();
    examples.sort_by(|a, b| a.0.cmp(&b.0));
    examples
}

impl TestApp {
    /// A customer writes to the number (which opens their 24-hour window) and it is processed.
    pub async fn customer_writes(
        &self,
        number: &ConnectedNumber,
        from: &str,
        text: &str,
    ) -> String {
        let receipt = self
            .emulator
            .customer_writes(CustomerMessage::text(&number.phone_number_id, from, text))
            .await
            .unwrap();
        self.emulator
            .wait_delivered(receipt.delivery_id, Duration::from_secs(5))
            .await
            .unwrap();
        self.wait_processed().await;
        receipt.wamid
    }

    pub fn meta_behaves(&self, number: &ConnectedNumber, update: PhoneNumberUpdate) {
        self.emulator
            .update_phone_number(&number.phone_number_id, update)
            .unwrap();
    }

    pub async fn send(&self, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/messages", body).await
    }

    /// Waits until a message reaches one of `statuses` and returns it.
    pub async fn message_reaches(&self, id: &str, statuses: &[&str], within: Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (_, message) = self.get(&format!("/api/v1/messages/{id}")).await;
            if statuses.iter().any(|s| message["status"] == *s) {
                return message;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "message {id} did not reach {statuses:?}: {message}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn statuses_all_the_way() -> PhoneNumberUpdate {
    PhoneNumberUpdate {
        auto_statuses: Some(vec!["sent".into(), "delivered".into(), "read".into()]),
        auto_status_delay_ms: Some(20),
        ..Default::default()
    }
}

on_both_databases! {
    async fn every_message_type_reaches_meta_exactly_as_documented_and_ends_read(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        let examples = send_examples();
        assert!(examples.len() >= 15, "{} examples", examples.len());
        meta_knows_what_the_examples_name(&app, &number, &examples).await;
        let mut sent = Vec::new();
        for (i, (name, example)) in examples.iter().enumerate() {
            // One customer per message, each of whom wrote first: the window is open and Meta's
            // pair rate (one message per 6 s to the same person) is not the point here.
            let customer = format!("4915100{:05}", 10_000 + i);
            let inbound = app.customer_writes(&number, &customer, "hello").await;
            let kind = example["type"].as_str().unwrap();
            let mut body = json!({"to": format!("+{customer}"), "type": kind, kind: example[kind]});
            if example.get("context").is_some() {
                body["context"] = json!({"message_id": inbound});
            }
            if let Some(hash) = example.get("recipient_identity_key_hash") {
                body["recipient_identity_key_hash"] = hash.clone();
            }
            let (status, queued) = app.send(body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{name}: {queued}");
            assert_eq!(queued["status"], "queued");
            assert_eq!(queued[kind], example[kind], "{name}: the type object is kept as given");
            sent.push((name.clone(), example.clone(), customer, inbound, queued["id"].as_str().unwrap().to_owned()));
        }
        for (name, example, customer, inbound, id) in &sent {
            let message = app.message_reaches(id, &["read", "failed"], Duration::from_secs(20)).await;
            assert_eq!(message["status"], "read", "{name}: {message}");
            let wamid = message["wamid"].as_str().unwrap();
            let recorded = app
                .emulator
                .sent_messages(Some(&number.phone_number_id))
                .into_iter()
                .find(|m| m.wamid == wamid)
                .unwrap_or_else(|| panic!("{name}: Meta never got it"));
            let request = recorded.request;
            let kind = example["type"].as_str().unwrap();
            assert_eq!(request["messaging_product"], "whatsapp");
            assert_eq!(request["type"], example["type"]);
            assert_eq!(request[kind], example[kind], "{name}: the body Meta documents");
            assert_eq!(request["to"], json!(customer), "{name}: the number normalised to digits");
            if example.get("context").is_some() {
                assert_eq!(request["context"], json!({"message_id": inbound}), "{name}");
            }
            if let Some(hash) = example.get("recipient_identity_key_hash") {
                assert_eq!(&request["recipient_identity_key_hash"], hash);
            }
            // wagate adds exactly one key of its own: the callback data that ties statuses to the message.
            assert_eq!(request["biz_opaque_callback_data"], json!(format!("wg:{id}")));
            let documented: Vec<&String> = example.as_object().unwrap().keys().collect();
            for key in request.as_object().unwrap().keys() {
                assert!(
                    documented.contains(&key) || ["biz_opaque_callback_data", "recipient_type"].contains(&key.as_str()),
                    "{name}: unexpected key {key}"
                );
            }
        }
    }

    async fn free_form_to_a_silent_contact_is_refused_but_a_template_goes(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        let (status, refused) = app.send(json!({"to": "+1 (650) 555-0199", "type": "text", "text": {"body": "hi"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["code"], "outside_service_window");
        assert!(refused["error"]["message"].as_str().unwrap().contains("template"));
        let (status, queued) = app.send(json!({"to": "16505550199", "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        let message = app.message_reaches(queued["id"].as_str().unwrap(), &["read", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["status"], "read");
        // Nothing was queued for the refused text.
        assert_eq!(app.emulator.sent_messages(Some(&number.phone_number_id)).len(), 1);
    }

    async fn the_window_closes_exactly_24_hours_after_the_customers_last_message(app) {
        let number = app.connect_number().await;
        let now = now_secs();
        let webhook = messages_webhook(&number.phone_number_id, json!({"messages": [
            text_message("16505550101", &unique_wamid(), "an hour short of a day ago", now - 23 * 3600),
            text_message("16505550102", &unique_wamid(), "a day and a minute ago", now - 24 * 3600 - 60),
        ]}));
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let (open, body) = app.send(json!({"to": "16505550101", "type": "text", "text": {"body": "still open"}})).await;
        assert_eq!(open, StatusCode::ACCEPTED, "{body}");
        let (closed, body) = app.send(json!({"to": "16505550102", "type": "text", "text": {"body": "too late"}})).await;
        assert_eq!(closed, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["window_expired_at"], json!(wagate::clock::rfc3339((now - 60) * 1000)));
    }

    async fn the_same_idempotency_key_returns_the_first_message_and_sends_nothing_new(app) {
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "hi").await;
        let body = json!({"to": "16505551234", "type": "text", "text": {"body": "once"}, "idempotency_key": "order-42-confirmation"});
        let (first_status, first) = app.send(body.clone()).await;
        assert_eq!(first_status, StatusCode::ACCEPTED);
        let response = app.client.post(app.url("/api/v1/messages")).bearer_auth(&app.api_key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        let (_, second) = json_of(response).await;
        assert_eq!(second["id"], first["id"]);
        app.message_reaches(first["id"].as_str().unwrap(), &["queued"], Duration::from_secs(1)).await;
        eventually(Duration::from_secs(5), || async {
            app.emulator.sent_messages(Some(&number.phone_number_id)).len() == 1
        }).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.emulator.sent_messages(Some(&number.phone_number_id)).len(), 1, "sent once");
        // Another tenant may use the same key for its own message.
        let (_, other_key) = app.other_tenant().await;
        let (status, _) = app.send_as(&other_key, reqwest::Method::POST, "/api/v1/messages", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the other tenant has no connection: its own error, not our message");
    }

    async fn bad_messages_are_refused_with_the_field_and_the_limit(app) {
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "hi").await;
        let (status, body) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "x".repeat(4097)}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["field"], "text.body");
        assert_eq!(body["error"]["details"]["limit"], 4096);
        let buttons: Vec<Value> = (0..4).map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("Option {i}")}})).collect();
        let (status, body) = app.send(json!({"to": "16505551234", "type": "interactive", "interactive": {
            "type": "button", "body": {"text": "Pick one"}, "action": {"buttons": buttons}}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["limit"], 3, "{body}");
        let (status, body) = app.send(json!({"to": "call me maybe", "type": "text", "text": {"body": "hi"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["field"], "to");
        let (status, body) = app.send(json!({"to": "16505551234", "type": "hologram", "hologram": {}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["field"], "type");
        let (status, body) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "hi"}, "txt": {}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["details"]["fields"]["txt"].is_string(), "{body}");
        let (status, body) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "hi"}, "context": {"message_id": "0195f1d2-0000-7000-8000-000000000000"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["field"], "context.message_id");
        assert!(app.emulator.sent_messages(Some(&number.phone_number_id)).is_empty());
    }

    async fn a_reply_given_our_message_id_quotes_its_wamid(app) {
        let number = app.connect_number().await;
        let wamid = app.customer_writes(&number, "16505551234", "which sizes?").await;
        let ours = app.messages("").await[0]["id"].as_str().unwrap().to_owned();
        let (status, queued) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "S to XL"}, "context": {"message_id": ours}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        assert_eq!(queued["context"], json!({"message_id": wamid}));
        eventually(Duration::from_secs(5), || async { !app.emulator.sent_messages(Some(&number.phone_number_id)).is_empty() }).await;
        let request = &app.emulator.sent_messages(Some(&number.phone_number_id))[0].request;
        assert_eq!(request["context"], json!({"message_id": wamid}));
    }

    async fn a_tenant_with_several_numbers_must_say_which_one(app) {
        let first = app.connect_number().await;
        app.connect_number().await;
        app.customer_writes(&first, "16505551234", "hi").await;
        let (status, body) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "hi"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "connection_required");
        let (status, _) = app.send(json!({"connection_id": first.id(), "to": "16505551234", "type": "text", "text": {"body": "hi"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    async fn a_window_meta_closed_fails_the_message_with_metas_code_and_text(app) {
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "hi").await;
        // Meta refuses the send at once with 131047.
        app.emulator.add_fault(FaultSpec {
            phone_number_id: Some(number.phone_number_id.clone()),
            endpoint: Some(GraphEndpoint::Messages),
            kind: Some(FaultKind::WindowClosed),
            times: 1,
            ..Default::default()
        }).unwrap();
        let (_, queued) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "hi"}})).await;
        let message = app.message_reaches(queued["id"].as_str().unwrap(), &["failed"], Duration::from_secs(10)).await;
        assert_eq!(message["error"]["code"], 131047);
        assert!(message["error"]["message"].as_str().unwrap().contains("24 hours"), "{message}");
        assert_eq!(app.emulator.calls(Some(&number.phone_number_id), Some(GraphEndpoint::Messages)).len(), 1, "not retried");
    }

    async fn a_send_meta_accepts_and_then_reports_failed_ends_failed_with_metas_reason(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        // The customer's message reached wagate but Meta's own record of the window disagrees
        // (here: the webhook came another way), so Meta accepts the send and then fails it.
        let webhook = messages_webhook(&number.phone_number_id, json!({
            "messages": [text_message("16505557777", &unique_wamid(), "hi", now_secs())]
        }));
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let (status, queued) = app.send(json!({"to": "16505557777", "type": "text", "text": {"body": "hello"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let message = app.message_reaches(queued["id"].as_str().unwrap(), &["failed", "read"], Duration::from_secs(10)).await;
        assert_eq!(message["status"], "failed", "{message}");
        assert_eq!(message["error"]["code"], 131047);
        assert!(message["wamid"].is_string());
    }

    async fn typing_shows_in_whatsapp_and_marks_the_last_message_read(app) {
        let number = app.connect_number().await;
        let wamid = app.customer_writes(&number, "16505551234", "are you there?").await;
        let (_, list) = app.get("/api/v1/conversations").await;
        let id = list["data"][0]["id"].as_str().unwrap().to_owned();
        let (status, body) = app.post(&format!("/api/v1/conversations/{id}/typing"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        eventually(Duration::from_secs(5), || async { !app.emulator.read_receipts(Some(&number.phone_number_id)).is_empty() }).await;
        let receipt = &app.emulator.read_receipts(Some(&number.phone_number_id))[0];
        assert_eq!(receipt.wamid, wamid);
        assert!(receipt.typing_indicator);
    }

    async fn usage_counts_each_priced_message_once_by_day_and_category(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        app.customer_writes(&number, "16505551234", "hi").await;
        let (_, service) = app.send(json!({"to": "16505551234", "type": "text", "text": {"body": "service reply"}})).await;
        app.emulator.add_template(emulator::TemplateSeed {
            waba_id: TEST_WABA.into(),
            name: "spring_sale".into(),
            language: "en".into(),
            category: "MARKETING".into(),
            components: vec![json!({"type": "BODY", "text": "Spring sale: 20% off everything this week."})],
            ..Default::default()
        }).unwrap();
        app.post("/api/v1/templates/sync", json!({})).await;
        let (_, marketing) = app.send(json!({"to": "16505559876", "type": "template", "template": {"name": "spring_sale", "language": {"code": "en"}}})).await;
        for id in [&service, &marketing] {
            app.message_reaches(id["id"].as_str().unwrap(), &["read"], Duration::from_secs(15)).await;
        }
        app.wait_processed().await;
        let (status, usage) = app.get("/api/v1/usage").await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        let rows = usage["data"].as_array().unwrap();
        let find = |category: &str| rows.iter().find(|r| r["category"] == category).cloned().unwrap_or(Value::Null);
        assert_eq!(find("service")["messages"], 1, "{usage}");
        assert_eq!(find("service")["billable"], false);
        assert_eq!(find("marketing")["messages"], 1, "priced on sent, delivered and read: counted once");
        assert_eq!(find("marketing")["billable"], true);
        assert_eq!(usage["billable_messages"], 1);
        assert_eq!(find("marketing")["date"], json!(wagate::clock::utc_day(wagate::clock::now_ms())));
        let (status, _) = app.get("/api/v1/usage?from=2026-13-01").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

/// Meta's examples send media by id and name templates: the number holds those files and its
/// account those templates, as they would for a business that uses them.
async fn meta_knows_what_the_examples_name(
    app: &TestApp,
    number: &ConnectedNumber,
    examples: &[(String, Value)],
) {
    fn media_ids(value: &Value, out: &mut Vec<(String, &'static str)>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let mime = match key.as_str() {
                        "image" => Some("image/jpeg"),
                        "video" => Some("video/mp4"),
                        "audio" => Some("audio/ogg"),
                        "document" => Some("application/pdf"),
                        "sticker" => Some("image/webp"),
                        _ => None,
                    };
                    if let (Some(mime), Some(id)) = (mime, inner.get("id").and_then(Value::as_str))
                    {
                        out.push((id.to_owned(), mime));
                    }
                    media_ids(inner, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| media_ids(item, out)),
            _ => {}
        }
    }
    let mut ids = Vec::new();
    for (_, example) in examples {
        media_ids(example, &mut ids);
    }
    ids.sort();
    ids.dedup_by(|a, b| a.0 == b.0);
    for (id, mime_type) in ids {
        app.emulator
            .add_media(emulator::MediaSeed {
                phone_number_id: number.phone_number_id.clone(),
                bytes: bytes::Bytes::from(format!("the file {id}")),
                mime_type: mime_type.into(),
                id: Some(id),
                ..Default::default()
            })
            .expect("media seeded");
    }
    let listed: Value = serde_json::from_str(include_str!(
        "../../../../testdata/meta-examples/templates_list_response.json"
    ))
    .unwrap();
    let reservation = &listed["data"][0];
    let templates = [
        emulator::TemplateSeed {
            waba_id: TEST_WABA.into(),
            name: reservation["name"].as_str().unwrap().into(),
            language: reservation["language"].as_str().unwrap().into(),
            category: reservation["category"].as_str().unwrap().into(),
            parameter_format: Some("NAMED".into()),
            components: reservation["components"].as_array().cloned().unwrap(),
            ..Default::default()
        },
        emulator::TemplateSeed {
            waba_id: TEST_WABA.into(),
            name: "template_name".into(),
            language: "en_US".into(),
            category: "MARKETING".into(),
            parameter_format: Some("POSITIONAL".into()),
            components: vec![
                json!({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}}),
                json!({"type": "BODY", "text": "Hi {{1}}, your total is {{2}}, due {{3}}.", "example": {"body_text": [["Ana", "$10", "Monday"]]}}),
                json!({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Yes"}, {"type": "QUICK_REPLY", "text": "No"}]}),
            ],
            ..Default::default()
        },
    ];
    for template in templates {
        app.emulator
            .add_template(template)
            .expect("template seeded");
    }
    let (status, synced) = app.post("/api/v1/templates/sync", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{synced}");
}

/// Counts Meta's accepted sends per message of ours (by the callback data wagate attaches).
fn accepted_sends_by_message(
    app: &TestApp,
    phone_number_id: &str,
) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for sent in app.emulator.sent_messages(Some(phone_number_id)) {
        if let Some(id) = sent.request["biz_opaque_callback_data"]
            .as_str()
            .and_then(|d| d.strip_prefix("wg:"))
        {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

on_both_databases! {
    async fn through_5xx_an_expired_token_and_timeouts_every_message_ends_read_or_failed_with_a_reason(app) {
        let mut app = app;
        app.stop().await;
        // A Graph call gives up after 1 s; a send Meta never confirms fails 2 s later.
        let app = TestApp::spawn_with(app.db, |settings| {
            settings.graph_timeout = Duration::from_secs(1);
            settings.send_outcome_grace = Duration::from_secs(2);
        })
        .await;
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        let mut customers = Vec::new();
        for i in 0..24 {
            let customer = format!("4917000{:05}", i);
            app.customer_writes(&number, &customer, "hi").await;
            customers.push(customer);
        }
        let send = |customer: &str, text: &str| app.send(json!({"to": customer, "type": "text", "text": {"body": text}}));
        let mut ids = Vec::new();

        // 1. Meta answers 30% of sends with 503.
        let flaky = app.emulator.add_fault(FaultSpec {
            phone_number_id: Some(number.phone_number_id.clone()),
            endpoint: Some(GraphEndpoint::Messages),
            kind: Some(FaultKind::ServiceUnavailable),
            probability: Some(0.3),
            seed: Some(7),
            ..Default::default()
        }).unwrap();
        let mut phase_one = Vec::new();
        for customer in &customers[..12] {
            let (status, queued) = send(customer, "flaky").await;
            assert_eq!(status, StatusCode::ACCEPTED);
            phase_one.push(queued["id"].as_str().unwrap().to_owned());
        }
        for id in &phase_one {
            let message = app.message_reaches(id, &["read", "failed"], Duration::from_secs(20)).await;
            if message["status"] == "failed" {
                assert!(message["error"]["title"].is_string() || message["error"]["message"].is_string(), "a failure says why: {message}");
            }
        }
        app.emulator.remove_fault(flaky).unwrap();
        ids.extend(phase_one);

        // 2. The token expires: the connection needs new credentials and what is queued fails with
        // that reason. At one message a second, the five below are all queued behind a first one
        // before any of them reaches Meta: the wait below ends as soon as Meta has taken the first,
        // so the next send is still most of a second away (waiting for `read` used up that second
        // on a loaded machine, and the connection was refused before the five were queued).
        let path = format!("/api/v1/connections/{}", number.id());
        let (status, _) = app.patch(&path, json!({"throughput_per_second": 1})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, first) = send(&customers[12], "before").await;
        app.message_reaches(first["id"].as_str().unwrap(), &["sent", "delivered", "read"], Duration::from_secs(10)).await;
        app.emulator.add_fault(FaultSpec {
            phone_number_id: Some(number.phone_number_id.clone()),
            endpoint: Some(GraphEndpoint::Messages),
            kind: Some(FaultKind::ExpiredToken),
            times: 1,
            ..Default::default()
        }).unwrap();
        let mut phase_two = Vec::new();
        for customer in &customers[13..18] {
            let (status, queued) = send(customer, "token").await;
            assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
            phase_two.push(queued["id"].as_str().unwrap().to_owned());
        }
        for (i, id) in phase_two.iter().enumerate() {
            let message = app.message_reaches(id, &["failed"], Duration::from_secs(20)).await;
            assert_eq!(message["error"]["code"], 190, "{message}");
            if i > 0 {
                assert_eq!(message["error"]["title"], "Connection needs new credentials", "{message}");
                assert!(message["wamid"].is_null(), "never reached Meta: {message}");
            }
        }
        let (_, connection) = app.get(&format!("/api/v1/connections/{}", number.id())).await;
        assert_eq!(connection["status"], "needs_reauth");
        assert!(connection["status_reason"].as_str().unwrap().contains("access token"), "{connection}");
        let (status, body) = app.send(json!({"to": customers[18], "type": "text", "text": {"body": "refused"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "connection_needs_reauth");
        let (status, _) = app.patch(&path, json!({"access_token": number.access_token, "throughput_per_second": 80})).await;
        assert_eq!(status, StatusCode::OK);
        ids.extend(phase_two);

        // 3. Calls time out. Meta took those sends anyway: their status webhooks carry our callback
        // data, so they are tied to the messages and end `read`, and nothing is sent twice.
        app.emulator.add_fault(FaultSpec {
            phone_number_id: Some(number.phone_number_id.clone()),
            endpoint: Some(GraphEndpoint::Messages),
            kind: Some(FaultKind::Timeout),
            delay_ms: Some(1500),
            times: 2,
            ..Default::default()
        }).unwrap();
        let mut phase_three = Vec::new();
        for customer in &customers[18..22] {
            let (_, queued) = send(customer, "slow").await;
            phase_three.push(queued["id"].as_str().unwrap().to_owned());
        }
        for id in &phase_three {
            // Only `read` ends the wait: on a loaded machine the statuses can come after the grace
            // period has marked the send failed, and Meta's word then wins over that presumption.
            let message = app.message_reaches(id, &["read"], Duration::from_secs(20)).await;
            assert!(message["error"].is_null(), "{message}");
        }
        ids.extend(phase_three);

        // 4. A call times out and Meta never reports on it: after the grace period it fails, unsent again.
        app.meta_behaves(&number, PhoneNumberUpdate { auto_statuses: Some(vec![]), ..Default::default() });
        app.emulator.add_fault(FaultSpec {
            phone_number_id: Some(number.phone_number_id.clone()),
            endpoint: Some(GraphEndpoint::Messages),
            kind: Some(FaultKind::Timeout),
            delay_ms: Some(1500),
            times: 1,
            ..Default::default()
        }).unwrap();
        let (_, queued) = send(&customers[22], "lost").await;
        let lost = queued["id"].as_str().unwrap().to_owned();
        let message = app.message_reaches(&lost, &["failed"], Duration::from_secs(20)).await;
        assert_eq!(message["error"]["title"], "send_outcome_unknown");
        assert!(message["error"]["message"].as_str().unwrap().contains("not sent again"));
        // Meta reports on it after all: its word wins over the presumed failure.
        let sent = app.emulator.sent_messages(Some(&number.phone_number_id));
        let wamid = sent
            .iter()
            .find(|s| s.request["biz_opaque_callback_data"] == format!("wg:{lost}"))
            .map(|s| s.wamid.clone())
            .expect("the emulator took the send whose answer timed out");
        app.emulator.deliver_status(&number.phone_number_id, &wamid, MessageStatus::Delivered, None).await.unwrap();
        let message = app.message_reaches(&lost, &["delivered"], Duration::from_secs(10)).await;
        assert_eq!(message["wamid"], wamid.as_str(), "{message}");
        assert!(message["error"].is_null(), "the presumed failure is gone: {message}");

        let sends = accepted_sends_by_message(&app, &number.phone_number_id);
        assert_eq!(sends.get(&lost).copied(), Some(1), "the lost send went out once");
        for id in &ids {
            assert!(sends.get(id).copied().unwrap_or(0) <= 1, "message {id} was sent twice");
            let (_, message) = app.get(&format!("/api/v1/messages/{id}")).await;
            assert!(message["status"] == "read" || message["status"] == "failed", "{message}");
        }
    }
}
