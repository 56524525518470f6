//! Templates: synced from Meta with paging, submitted for review, moved by Meta's status webhooks,
//! and checked against the stored copy before a send is queued.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::outbound::statuses_all_the_way;

/// A positional utility template with a text header variable and two body variables.
fn order_update() -> Value {
    json!({
        "name": "order_update", "language": "en", "category": "UTILITY", "status": "APPROVED",
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-1042"]}},
            {"type": "BODY", "text": "Hi {{1}}, your order ships on {{2}}.", "example": {"body_text": [["Ana", "Monday"]]}},
            {"type": "FOOTER", "text": "Acme Shoes"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://acme.test/track/{{1}}", "example": ["https://acme.test/track/A-1042"]}]}
        ]
    })
}

/// A named marketing template with an image header.
fn spring_sale() -> Value {
    json!({
        "name": "spring_sale", "language": "en_US", "category": "MARKETING", "status": "APPROVED",
        "parameter_format": "NAMED",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
            {"type": "BODY", "text": "Hello {{first_name}}, {{discount}} off everything this week.",
             "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}, {"param_name": "discount", "example": "20%"}]}}
        ]
    })
}

fn order_update_send(to: &str) -> Value {
    json!({"to": to, "type": "template", "template": {"name": "order_update", "language": {"code": "en"}, "components": [
        {"type": "header", "parameters": [{"type": "text", "text": "A-7"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "Friday"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A-7"}]}
    ]}})
}

impl TestApp {
    /// The stored templates of a connection: (name, language, status).
    async fn stored_templates(&self, number: &ConnectedNumber) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/api/v1/templates?connection_id={}", number.id()))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    async fn template_named(&self, number: &ConnectedNumber, name: &str) -> Option<Value> {
        self.stored_templates(number)
            .await
            .into_iter()
            .find(|t| t["name"] == name)
    }
}

on_both_databases! {
    async fn a_synced_template_list_equals_metas_across_every_page(app) {
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        // More than two pages' worth: the sync asks for 100 at a time.
        for i in 0..230 {
            let mut template = order_update();
            template["name"] = json!(format!("notice_{i:03}"));
            template["status"] = json!(if i % 10 == 0 { "PENDING" } else { "APPROVED" });
            template["category"] = json!(if i % 2 == 0 { "UTILITY" } else { "MARKETING" });
            app.meta_has_template(template).await;
        }
        let calls_before = app.emulator.calls(None, Some(emulator::GraphEndpoint::Templates)).len();
        let (status, synced) = app.post("/api/v1/templates/sync", json!({"connection_id": number.id()})).await;
        assert_eq!(status, StatusCode::OK, "{synced}");
        assert_eq!(synced["synced"][0]["listed"], 231, "230 and Meta's hello_world");
        let calls = app.emulator.calls(None, Some(emulator::GraphEndpoint::Templates)).len() - calls_before;
        assert_eq!(calls, 3, "231 templates at 100 a page are three pages");

        let (_, on_meta) = app.meta_admin(Method::GET, &format!("/admin/templates?waba_id={TEST_WABA}"), None).await;
        let meta: BTreeSet<(String, String, String)> = on_meta["data"].as_array().unwrap().iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t["language"].as_str().unwrap().to_owned(), t["status"].as_str().unwrap().to_owned()))
            .collect();
        let stored: BTreeSet<(String, String, String)> = app.stored_templates(&number).await.iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t["language"].as_str().unwrap().to_owned(), t["status"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(stored, meta);
        let hello = app.template_named(&number, "hello_world").await.unwrap();
        assert_eq!(hello["category"], "UTILITY");
        assert_eq!(hello["parameter_format"], "POSITIONAL");
        assert_eq!(hello["components"][1]["type"], "BODY");

        let (_, pending) = app.get(&format!("/api/v1/templates?connection_id={}&status=pending", number.id())).await;
        assert_eq!(pending["data"].as_array().unwrap().len(), 23);
        let (_, marketing) = app.get("/api/v1/templates?category=MARKETING&name=NOTICE_1").await;
        // notice_100 … notice_199 with an odd number (the name filter is any case, part of the name).
        assert_eq!(marketing["data"].as_array().unwrap().len(), 50, "{marketing}");

        // Removed on Meta's side: gone after the next sync.
        let id = on_meta["data"].as_array().unwrap().iter().find(|t| t["name"] == "notice_007").unwrap()["id"].as_str().unwrap().to_owned();
        let (status, _) = app.meta_admin(Method::DELETE, &format!("/admin/templates/{id}"), None).await;
        assert!(status.is_success());
        let (_, synced) = app.post("/api/v1/templates/sync", json!({})).await;
        assert_eq!(synced["synced"][0]["removed"], 1, "{synced}");
        assert!(app.template_named(&number, "notice_007").await.is_none());
    }

    async fn a_template_submitted_through_wagate_waits_for_metas_approval_and_then_sends(app) {
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "hi").await;
        let mut submission = order_update();
        submission.as_object_mut().unwrap().remove("status");
        submission["name"] = json!("shipping_notice");
        submission["category"] = json!("utility");
        let (status, created) = app.post("/api/v1/templates", submission).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["status"], "PENDING");
        assert_eq!(created["name"], "shipping_notice");
        let meta_id = created["meta_template_id"].as_str().unwrap().to_owned();
        let (_, on_meta) = app.meta_admin(Method::GET, &format!("/admin/templates/{meta_id}"), None).await;
        assert_eq!(on_meta["status"], "PENDING", "{on_meta}");

        let mut send = order_update_send("16505551234");
        send["template"]["name"] = json!("shipping_notice");
        let (status, refused) = app.send(send.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["code"], "template_not_approved");
        assert!(refused["error"]["message"].as_str().unwrap().contains("PENDING"));

        // Meta approves it: its status webhook moves the stored template, and it becomes sendable.
        let (status, body) = app.meta_admin(Method::POST, &format!("/admin/templates/{meta_id}/review"), Some(json!({"status": "APPROVED"}))).await;
        assert!(status.is_success(), "{body}");
        eventually(Duration::from_secs(10), || async {
            app.template_named(&number, "shipping_notice").await.is_some_and(|t| t["status"] == "APPROVED")
        }).await;
        app.meta_behaves(&number, statuses_all_the_way());
        let (status, queued) = app.send(send).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        let message = app.message_reaches(queued["id"].as_str().unwrap(), &["read", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["status"], "read", "{message}");
    }

    async fn a_rejected_template_keeps_metas_reason(app) {
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        let template = app.meta_has_template(json!({"name": "win_a_prize", "language": "en", "category": "MARKETING", "status": "PENDING",
            "components": [{"type": "BODY", "text": "Click now to win!"}]})).await;
        let id = template["id"].as_str().unwrap();
        app.post("/api/v1/templates/sync", json!({})).await;
        let (status, _) = app.meta_admin(Method::POST, &format!("/admin/templates/{id}/review"), Some(json!({"status": "REJECTED", "reason": "PROMOTIONAL"}))).await;
        assert!(status.is_success());
        eventually(Duration::from_secs(10), || async {
            app.template_named(&number, "win_a_prize").await.is_some_and(|t| t["status"] == "REJECTED")
        }).await;
        let stored = app.template_named(&number, "win_a_prize").await.unwrap();
        assert!(stored["rejected_reason"].as_str().unwrap().contains("PROMOTIONAL"), "{stored}");
    }

    async fn a_parameter_mismatch_is_a_422_that_names_the_parameter_and_nothing_reaches_meta(app) {
        let number = app.connect_number().await;
        app.meta_has_template(order_update()).await;
        app.meta_has_template(spring_sale()).await;
        app.wait_templates_synced(&number).await;
        let (status, _) = app.post("/api/v1/templates/sync", json!({})).await;
        assert_eq!(status, StatusCode::OK);

        let mut short = order_update_send("16505550111");
        short["template"]["components"][1]["parameters"].as_array_mut().unwrap().pop();
        let (status, refused) = app.send(short).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["code"], "template_parameters_mismatch");
        let details = &refused["error"]["details"];
        assert!(details["field"].as_str().unwrap().starts_with("template.components[1]"), "{details}");
        assert!(details["reason"].as_str().unwrap().contains("{{2}}"), "{details}");

        let (status, refused) = app.send(json!({"to": "16505550111", "type": "template", "template": {
            "name": "spring_sale", "language": {"code": "en_US"}, "components": [
                {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://acme.test/sale.jpg"}}]},
                {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]}
            ]}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("discount"), "{refused}");

        let (status, refused) = app.send(json!({"to": "16505550111", "type": "template", "template": {
            "name": "spring_sale", "language": {"code": "en_US"}, "components": [
                {"type": "header", "parameters": [{"type": "video", "video": {"link": "https://acme.test/sale.mp4"}}]},
                {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}, {"type": "text", "parameter_name": "discount", "text": "20%"}]}
            ]}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().to_lowercase().contains("image"), "{refused}");

        let (status, refused) = app.send(json!({"to": "16505550111", "type": "template", "template": {"name": "order_update", "language": {"code": "pt_BR"}}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused["error"]["code"], "template_not_found");
        assert!(refused["error"]["message"].as_str().unwrap().contains("en"), "names the languages it has: {refused}");

        assert!(app.emulator.sent_messages(Some(&number.phone_number_id)).is_empty(), "nothing was sent to Meta");
        app.meta_behaves(&number, statuses_all_the_way());
        let (status, queued) = app.send(order_update_send("16505550111")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        let message = app.message_reaches(queued["id"].as_str().unwrap(), &["read", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["status"], "read", "Meta took what wagate let through: {message}");
    }

    async fn a_template_made_in_whatsapp_manager_since_the_last_sync_is_looked_up_before_it_is_refused(app) {
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        // The connection's first sync is more than a minute old (set back), so a miss pulls the list again.
        app.age_template_sync(&number).await;
        app.meta_has_template(order_update()).await;
        app.meta_behaves(&number, statuses_all_the_way());
        let (status, queued) = app.send(order_update_send("16505550112")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        let (status, refused) = app.send(json!({"to": "16505550112", "type": "template", "template": {"name": "no_such_template", "language": {"code": "en"}}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused["error"]["code"], "template_not_found", "{refused}");
    }

    async fn a_burst_of_sends_naming_a_new_template_pulls_the_list_once(app) {
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        app.age_template_sync(&number).await;
        app.meta_has_template(order_update()).await;
        // Meta takes its time to list them, so every send arrives while the first sync is on.
        app.emulator.add_fault(emulator::FaultSpec {
            endpoint: Some(emulator::GraphEndpoint::Templates),
            delay_ms: Some(300),
            times: 100,
            ..emulator::FaultSpec::kind(emulator::FaultKind::Slow)
        }).unwrap();
        let before = app.emulator.calls(None, Some(emulator::GraphEndpoint::Templates)).len();
        let app = &app;
        let sends = (0..20).map(|i| {
            let body = order_update_send(&format!("165055502{i:02}"));
            async move { app.send(body).await }
        });
        for (status, body) in futures::future::join_all(sends).await {
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        let pulled = app.emulator.calls(None, Some(emulator::GraphEndpoint::Templates)).len() - before;
        assert_eq!(pulled, 1, "one sync served all twenty");
    }

    async fn new_templates_are_checked_against_metas_rules_before_anything_is_submitted(app) {
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        let (status, refused) = app.post("/api/v1/templates", json!({
            "name": "Order Update", "language": "en", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, order {{3}} ships soon.", "example": {"body_text": [["Ana", "A-1"]]}}]
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        let fields = refused["error"]["details"]["fields"].as_object().unwrap();
        assert!(fields.contains_key("name"), "{refused}");
        assert!(fields.keys().any(|k| k.starts_with("components[0]")), "{refused}");
        let (_, on_meta) = app.meta_admin(Method::GET, &format!("/admin/templates?waba_id={TEST_WABA}"), None).await;
        assert_eq!(on_meta["data"].as_array().unwrap().len(), 1, "only hello_world: nothing was submitted");
        let (status, conflict) = app.post("/api/v1/templates", json!({
            "name": "hello_world", "language": "en_US", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hello"}]
        })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    }

    async fn a_preview_renders_the_text_the_customer_will_see(app) {
        let number = app.connect_number().await;
        app.meta_has_template(order_update()).await;
        app.meta_has_template(spring_sale()).await;
        app.post("/api/v1/templates/sync", json!({"connection_id": number.id()})).await;
        let template = app.template_named(&number, "order_update").await.unwrap();
        let id = template["id"].as_str().unwrap();
        let (status, preview) = app.get(&format!("/api/v1/templates/{id}/preview?header.1=A-7&body.1=Ana&body.2=Friday&button.0.1=A-7")).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert_eq!(preview["text"], "Order A-7\n\nHi Ana, your order ships on Friday.\n\nAcme Shoes");
        assert_eq!(preview["sendable"], true, "{preview}");
        assert_eq!(preview["preview"]["buttons"][0]["url"], "https://acme.test/track/A-7");
        let (_, partial) = app.get(&format!("/api/v1/templates/{id}/preview?body.1=Ana")).await;
        assert_eq!(partial["sendable"], false);
        assert!(partial["missing"].as_array().unwrap().contains(&json!("body.2")), "{partial}");
        let named = app.template_named(&number, "spring_sale").await.unwrap();
        let (_, named_preview) = app.get(&format!("/api/v1/templates/{}/preview?body.first_name=Ana&body.discount=20%25", named["id"].as_str().unwrap())).await;
        assert_eq!(named_preview["preview"]["body"], "Hello Ana, 20% off everything this week.", "{named_preview}");
        let (_, other_key) = app.other_tenant().await;
        let (status, _) = app.get_as(&other_key, &format!("/api/v1/templates/{id}/preview")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

mod periodic {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn templates_made_on_metas_side_arrive_by_the_periodic_sync_alone() {
        let app = TestApp::spawn_with(Db::Sqlite, |settings| {
            settings.template_sync_interval = Some(Duration::from_secs(1));
        })
        .await;
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        app.meta_has_template(order_update()).await;
        eventually(Duration::from_secs(15), || async {
            app.template_named(&number, "order_update").await.is_some()
        })
        .await;
    }
}
