//! Contacts: created, searched, changed and deleted through the API; a customer's messages link
//! to the contact that has their number; an opt-out word or an agent's mark keeps marketing away.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    async fn create_contact(&self, body: Value) -> Value {
        let (status, created) = self.post("/api/v1/contacts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    async fn contacts(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/contacts?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    async fn add_marketing_template(&self) {
        self.emulator
            .add_template(emulator::TemplateSeed {
                waba_id: TEST_WABA.into(),
                name: "spring_sale".into(),
                language: "en".into(),
                category: "MARKETING".into(),
                components: vec![json!({"type": "BODY", "text": "Spring sale: 20% off."})],
                ..Default::default()
            })
            .unwrap();
        let (status, body) = self.post("/api/v1/templates/sync", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn ids(contacts: &[Value]) -> Vec<&str> {
    contacts.iter().map(|c| c["id"].as_str().unwrap()).collect()
}

fn marketing_to(to: &str) -> Value {
    json!({"to": to, "type": "template", "template": {"name": "spring_sale", "language": {"code": "en"}}})
}

on_both_databases! {
    async fn a_contact_is_created_found_changed_and_deleted(app) {
        let ana = app.create_contact(json!({
            "phone": "+49 (151) 123-4567", "name": "Ana Lima", "email": "ana@example.com",
            "tags": ["VIP", "lead", "vip"], "custom_fields": {"plan": "gold", "visits": 3},
            "notes": "prefers mornings"
        })).await;
        assert_eq!(ana["wa_id"], "491511234567");
        assert_eq!(ana["phone"], "+491511234567");
        assert_eq!(ana["tags"], json!(["VIP", "lead"]), "duplicates merged without case");
        assert_eq!(ana["custom_fields"], json!({"plan": "gold", "visits": "3"}));
        assert_eq!(ana["opt_in"], "unknown");
        assert_eq!(ana["source"], "api");
        let bo = app.create_contact(json!({"phone": "0044 7700 900123", "name": "Bo", "tags": ["lead"]})).await;
        assert_eq!(bo["wa_id"], "447700900123");

        // The same number however written is the same contact.
        let (status, body) = app.post("/api/v1/contacts", json!({"phone": "491511234567"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "contact_exists");
        let (status, body) = app.post("/api/v1/contacts", json!({"phone": "12ab", "email": "nope", "colour": 1})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let fields = body["error"]["details"]["fields"].as_object().unwrap();
        for field in ["phone", "email", "colour"] {
            assert!(fields.contains_key(field), "{field} not named: {body}");
        }

        let id_of = |c: &Value| c["id"].as_str().unwrap().to_owned();
        assert_eq!(ids(&app.contacts("search=lima").await), [id_of(&ana)]);
        assert_eq!(ids(&app.contacts("search=EXAMPLE.com").await), [id_of(&ana)]);
        assert_eq!(ids(&app.contacts("search=%2B44%207700").await), [id_of(&bo)], "by number, however written");
        assert_eq!(ids(&app.contacts("tag=LEAD").await), [id_of(&bo), id_of(&ana)], "newest first");
        assert_eq!(ids(&app.contacts("tag=vip").await), [id_of(&ana)]);
        assert!(app.contacts("search=nobody").await.is_empty());
        let (status, _) = app.get("/api/v1/contacts?opt_in=perhaps").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // Pages follow one another without gaps or repeats.
        let (_, first) = app.get("/api/v1/contacts?limit=1").await;
        let before = first["next_before"].as_str().unwrap();
        let (_, second) = app.get(&format!("/api/v1/contacts?limit=1&before={before}")).await;
        assert_eq!(first["data"][0]["id"], bo["id"]);
        assert_eq!(second["data"][0]["id"], ana["id"]);

        let path = format!("/api/v1/contacts/{}", id_of(&ana));
        let (status, changed) = app.patch(&path, json!({
            "email": null, "tags": ["customer"], "custom_fields": {"plan": null, "city": "Porto"}
        })).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert!(changed["email"].is_null());
        assert_eq!(changed["name"], "Ana Lima", "left alone");
        assert_eq!(changed["tags"], json!(["customer"]));
        assert_eq!(changed["custom_fields"], json!({"visits": "3", "city": "Porto"}));
        assert!(app.contacts("tag=vip").await.is_empty());
        let (status, body) = app.patch(&path, json!({"phone": "+4915100000000"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        let (status, _) = app.delete(&path).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(ids(&app.contacts("").await), [id_of(&bo)]);
    }

    async fn a_customers_messages_link_to_their_contact_and_keep_the_name_an_agent_gave(app) {
        let number = app.connect_number().await;
        let contact = app.create_contact(json!({"phone": "+1 650 555 1234", "name": "Dr. Ana Lima"})).await;
        let receipt = app.emulator
            .customer_writes(emulator::CustomerMessage::text(&number.phone_number_id, "16505551234", "hello"))
            .await
            .unwrap();
        app.emulator.wait_delivered(receipt.delivery_id, Duration::from_secs(5)).await.unwrap();
        app.wait_processed().await;
        let all = app.contacts("").await;
        assert_eq!(all.len(), 1, "no second contact for the same number: {all:?}");
        assert_eq!(all[0]["id"], contact["id"]);
        assert_eq!(all[0]["name"], "Dr. Ana Lima", "WhatsApp's profile name does not replace it");
        assert!(all[0]["last_message_at"].is_string());
        let (_, conversations) = app.get("/api/v1/conversations").await;
        assert_eq!(conversations["data"][0]["contact"]["wa_id"], "16505551234");

        // A customer who wrote first is a contact too, named by their profile.
        let receipt = app.emulator
            .customer_writes(emulator::CustomerMessage::text(&number.phone_number_id, "16505559876", "hi"))
            .await
            .unwrap();
        app.emulator.wait_delivered(receipt.delivery_id, Duration::from_secs(5)).await.unwrap();
        app.wait_processed().await;
        let found = app.contacts("search=16505559876").await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["source"], "inbound");
    }

    async fn an_opted_out_contact_gets_no_marketing_but_still_gets_service_replies(app) {
        let number = app.connect_number().await;
        app.add_marketing_template().await;
        let customer = "16505551234";
        let (status, queued) = app.send(marketing_to(customer)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");

        // The customer answers STOP: opted out, with the word as the reason.
        app.customer_writes(&number, customer, "  Stop! ").await;
        let contact = app.contacts(&format!("search={customer}")).await.remove(0);
        assert_eq!(contact["opt_in"], "opted_out", "{contact}");
        assert!(contact["opt_in_reason"].as_str().unwrap().contains("Stop"), "{contact}");
        let (status, refused) = app.send(marketing_to(customer)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["code"], "contact_opted_out");
        assert!(refused["error"]["message"].as_str().unwrap().contains("opted out"), "{refused}");
        let (status, reply) = app.send(json!({"to": customer, "type": "text", "text": {"body": "Done, no more offers."}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "a service reply in the window still goes: {reply}");

        // "can you stop by?" is not an opt-out; an agent's mark is.
        let other = "16505559876";
        app.customer_writes(&number, other, "can you stop by the shop?").await;
        let contact = app.contacts(&format!("search={other}")).await.remove(0);
        assert_eq!(contact["opt_in"], "unknown");
        let path = format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap());
        let (status, marked) = app.patch(&path, json!({"opt_in": "opted_out"})).await;
        assert_eq!(status, StatusCode::OK, "{marked}");
        assert_eq!(marked["opt_in_reason"], "marked by the API");
        let (status, refused) = app.send(marketing_to(other)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(ids(&app.contacts("opt_in=opted_out").await).len(), 2);

        // Opted in again by hand (the customer asked): marketing goes again.
        let (status, _) = app.patch(&path, json!({"opt_in": "opted_in", "opt_in_reason": "asked by phone"})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, queued) = app.send(marketing_to(other)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    }

    async fn a_contact_with_history_is_kept_and_another_tenants_contacts_are_not_found(app) {
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "hi").await;
        let contact = app.contacts("").await.remove(0);
        let path = format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap());
        let (status, body) = app.delete(&path).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "contact_has_history");

        let (_, other_key) = app.other_tenant().await;
        let (status, _) = app.get_as(&other_key, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = app.get_as(&other_key, "/api/v1/contacts").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"], json!([]));
    }
}

/// The lines (1-based, the header is line 1) of the rows `import_file` makes bad.
fn is_bad_row(i: usize) -> bool {
    i % 1000 == 999
}

/// A header and `rows` contacts: every thousandth row is wrong (alternately the number and the
/// email), and row 1 repeats row 0's number in another spelling.
fn import_file(rows: usize) -> Vec<String> {
    let mut lines = vec!["Phone Number,Name,E-mail,Tags,Plan".to_owned()];
    for i in 0..rows {
        let phone = if i == 1 {
            "+1 (650) 200-0000".to_owned()
        } else {
            format!("+1650{:07}", 2_000_000 + i)
        };
        let line = match (is_bad_row(i), i % 2000 == 999) {
            (true, true) => format!("12ab{i},Customer {i},c{i}@example.com,spring,basic"),
            (true, false) => format!("{phone},Customer {i},not-an-email,spring,basic"),
            _ => format!(
                "{phone},\"Customer {i}, Jr.\",c{i}@example.com,\"spring;lead\",{}",
                if i % 2 == 0 { "gold" } else { "basic" }
            ),
        };
        lines.push(line);
    }
    lines
}

on_both_databases! {
    async fn a_large_csv_is_imported_as_it_arrives_with_bad_rows_reported_by_line(app) {
        let rows_in_file: usize = 100_000;
        // A number the tenant already has: the file's row updates it.
        let known = app.create_contact(json!({"phone": "+16502000002", "name": "Known", "tags": ["old"]})).await;
        let lines = import_file(rows_in_file);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let body = reqwest::Body::wrap_stream(tokio_stream_of(rx));
        let request = app.client
            .post(app.url("/api/v1/contacts/import?tags=import-2026&filename=customers.csv"))
            .bearer_auth(&app.api_key)
            .header("content-type", "text/csv")
            .body(body)
            .send();
        let upload = tokio::spawn(request);
        let half = lines.len() / 2;
        for chunk in lines[..half].chunks(1000) {
            tx.send(Ok(format!("{}\r\n", chunk.join("\r\n")).into_bytes())).await.unwrap();
        }
        // The first half is stored while the second has not been sent: read as it arrives.
        eventually(Duration::from_secs(60), || async {
            let (_, imports) = app.get("/api/v1/contacts/imports").await;
            let running = &imports["data"][0];
            running["status"] == "running" && running["created"].as_i64().unwrap_or(0) > 0
        }).await;
        for chunk in lines[half..].chunks(1000) {
            tx.send(Ok(format!("{}\r\n", chunk.join("\r\n")).into_bytes())).await.unwrap();
        }
        drop(tx);
        let (status, summary) = json_of(upload.await.unwrap().expect("the upload")).await;
        assert_eq!(status, StatusCode::OK, "{summary}");

        let bad: Vec<u64> = (0..rows_in_file).filter(|i| is_bad_row(*i)).map(|i| i as u64 + 2).collect();
        assert_eq!(summary["status"], "done");
        assert_eq!(summary["rows"], rows_in_file as u64);
        assert_eq!(summary["failed"], bad.len() as u64);
        let lines_reported: Vec<u64> = summary["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
        assert_eq!(lines_reported, bad, "each bad row by its line");
        let reasons: Vec<&str> = summary["errors"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
        assert!(reasons[0].contains("phone"), "{}", reasons[0]);
        assert!(reasons[1].contains("email"), "{}", reasons[1]);
        // Row 1 is row 0's number; the known number is updated, not made again.
        let good = (rows_in_file - bad.len()) as u64;
        assert_eq!(summary["created"], good - 2, "{summary}");
        assert_eq!(summary["updated"], 1, "{summary}");

        let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM contacts WHERE tenant_id = $1")
            .bind(&app.tenant_id)
            .fetch_one(app.state.store.reader())
            .await
            .unwrap();
        assert_eq!(stored as u64, good - 1, "every good row stored once, the known number kept");
        let known_now = app.get(&format!("/api/v1/contacts/{}", known["id"].as_str().unwrap())).await.1;
        assert_eq!(known_now["name"], "Customer 2, Jr.");
        assert_eq!(known_now["tags"], json!(["import-2026", "lead", "old", "spring"]));
        assert_eq!(known_now["custom_fields"], json!({"plan": "gold"}));
        let first = app.contacts("search=16502000000").await.remove(0);
        assert_eq!(first["name"], "Customer 1, Jr.", "the later row of a repeated number wins");
        assert_eq!(first["source"], "import");

        // The export of a filter reads back as the same contacts.
        let response = app.client.get(app.url("/api/v1/contacts/export?search=Customer%2042"))
            .bearer_auth(&app.api_key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = response.text().await.unwrap();
        let exported: Vec<&str> = csv.lines().collect();
        assert!(exported[0].starts_with("phone,name,email,tags,opt_in"), "{}", exported[0]);
        // "Customer 42", 420 to 429, 4200 to 4299, 42000 to 42998 (42999 is a bad row).
        let expected = (0..rows_in_file).filter(|i| !is_bad_row(*i) && format!("customer {i},").starts_with("customer 42")).count();
        assert_eq!(exported.len() - 1, expected, "{}", exported[1]);
        assert!(exported.iter().any(|l| l.starts_with("+16502000042,\"Customer 42, Jr.\",c42@example.com,")), "{}", exported[1]);
    }

    async fn an_import_without_a_phone_column_is_refused_and_says_which_columns_it_needs(app) {
        let response = app.client
            .post(app.url("/api/v1/contacts/import"))
            .bearer_auth(&app.api_key)
            .header("content-type", "text/csv")
            .body("name,email\nAna,ana@example.com\n")
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("phone"), "{body}");
        let (_, imports) = app.get("/api/v1/contacts/imports").await;
        assert_eq!(imports["data"][0]["status"], "failed");
        assert!(app.contacts("").await.is_empty());
    }
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
