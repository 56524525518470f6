//! Scheduled sends: `send_at` on `POST /api/v1/messages` holds a message until its time, when the
//! 24-hour window (and a marketing template's opt-out) is checked again; one not yet left can be
//! cancelled.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::outbound::statuses_all_the_way;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn received_ms(sent: &emulator::SentMessage) -> i64 {
    sent.received_at
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

on_both_databases! {
    async fn a_scheduled_message_waits_for_its_time_and_one_not_yet_left_can_be_cancelled(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        let customer = "16505551234";
        let inbound = app.customer_writes(&number, customer, "remind me tomorrow").await;
        let send_at = now_ms() + 3_000;
        // Given in another offset: read as the same instant.
        let local = wagate::clock::rfc3339(send_at).replace('Z', "+00:00");
        let (status, later) = app.send(json!({"to": customer, "type": "text",
            "text": {"body": "your reminder"}, "send_at": local})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{later}");
        assert_eq!(later["status"], "queued");
        assert_eq!(later["send_at"], json!(wagate::clock::rfc3339(send_at)));
        let (status, other) = app.send(json!({"to": customer, "type": "text",
            "text": {"body": "changed my mind"}, "send_at": wagate::clock::rfc3339(send_at)})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{other}");

        // Cancelled before its time: failed as cancelled, and a second cancel answers the same.
        let cancel_path = format!("/api/v1/messages/{}/cancel", other["id"].as_str().unwrap());
        let (status, cancelled) = app.post(&cancel_path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["status"], "failed");
        assert_eq!(cancelled["error"]["title"], "cancelled");
        let (status, again) = app.post(&cancel_path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["status"], "failed");

        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert!(app.emulator.sent_messages(Some(&number.phone_number_id)).is_empty(),
            "nothing leaves before its time");
        let id = later["id"].as_str().unwrap();
        let sent = app.message_reaches(id, &["read", "failed"], Duration::from_secs(15)).await;
        assert_eq!(sent["status"], "read", "{sent}");
        let at_meta = app.emulator.sent_messages(Some(&number.phone_number_id));
        assert_eq!(at_meta.len(), 1, "the cancelled message never left");
        assert_eq!(at_meta[0].request["text"]["body"], "your reminder");
        assert!(received_ms(&at_meta[0]) >= send_at, "it left at its time, not before");

        // What has left, or what the customer sent, cannot be cancelled.
        let (status, refused) = app.post(&format!("/api/v1/messages/{id}/cancel"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "message_already_sent");
        let inbound_id = app.messages(&format!("&contact={customer}")).await.into_iter()
            .find(|m| m["wamid"] == json!(inbound)).unwrap()["id"].as_str().unwrap().to_owned();
        let (status, refused) = app.post(&format!("/api/v1/messages/{inbound_id}/cancel"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "message_not_cancellable");
        // Another tenant's message is not found.
        let (_, other_key) = app.other_tenant().await;
        let (status, _) = app.client.post(app.url(&format!("/api/v1/messages/{id}/cancel")))
            .bearer_auth(&other_key).json(&json!({})).send().await.map(|r| (r.status(), ())).unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn a_message_scheduled_past_the_window_fails_at_send_time_and_a_template_still_goes(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        let customer = "16505550111";
        // The customer wrote a day ago, less three seconds: the window closes in three seconds.
        let wrote_at = now_secs() - 24 * 3600 + 3;
        let webhook = messages_webhook(&number.phone_number_id, json!({"messages": [
            text_message(customer, &unique_wamid(), "ping me later", wrote_at),
        ]}));
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let send_at = wagate::clock::rfc3339((wrote_at + 24 * 3600 + 2) * 1000);
        let (status, late) = app.send(json!({"to": customer, "type": "text",
            "text": {"body": "here you go"}, "send_at": send_at})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "the window is open when it is scheduled: {late}");
        let (status, template) = app.send(json!({"to": customer, "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}}, "send_at": send_at})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{template}");

        let failed = app.message_reaches(late["id"].as_str().unwrap(), &["failed", "sent", "delivered", "read"],
            Duration::from_secs(20)).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error"]["title"], "outside_service_window");
        assert!(failed["error"]["message"].as_str().unwrap().contains("template"), "{failed}");
        let went = app.message_reaches(template["id"].as_str().unwrap(), &["read", "failed"],
            Duration::from_secs(20)).await;
        assert_eq!(went["status"], "read", "a template needs no window: {went}");
        let at_meta = app.emulator.sent_messages(Some(&number.phone_number_id));
        assert_eq!(at_meta.len(), 1, "only the template reached Meta");
        assert_eq!(at_meta[0].message_type, "template");
    }

    async fn a_marketing_template_scheduled_before_an_opt_out_is_not_sent(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        app.emulator
            .add_template(emulator::TemplateSeed {
                waba_id: TEST_WABA.into(),
                name: "winter_sale".into(),
                language: "en".into(),
                category: "MARKETING".into(),
                components: vec![json!({"type": "BODY", "text": "Winter sale: 30% off."})],
                ..Default::default()
            })
            .unwrap();
        let (status, body) = app.post("/api/v1/templates/sync", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let customer = "16505550122";
        let send_at = wagate::clock::rfc3339(now_ms() + 3_000);
        let (status, offer) = app.send(json!({"to": customer, "type": "template",
            "template": {"name": "winter_sale", "language": {"code": "en"}}, "send_at": send_at})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{offer}");
        assert_eq!(offer["template_category"], "MARKETING");
        app.customer_writes(&number, customer, "STOP").await;

        let refused = app.message_reaches(offer["id"].as_str().unwrap(), &["failed", "sent", "delivered", "read"],
            Duration::from_secs(15)).await;
        assert_eq!(refused["status"], "failed", "{refused}");
        assert_eq!(refused["error"]["title"], "contact_opted_out");
        assert!(app.emulator.sent_messages(Some(&number.phone_number_id)).is_empty());
    }

    async fn a_send_at_that_does_not_read_or_is_out_of_range_is_refused_with_the_field(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        app.customer_writes(&number, "16505550133", "hi").await;
        let now = now_ms();
        let cases = [
            (json!("tomorrow at nine"), "with its offset"),
            (json!("2026-12-05T09:00:00"), "with its offset"),
            (json!(1_800_000_000), "RFC 3339"),
            (json!(wagate::clock::rfc3339(now - 3_600_000)), "in the past"),
            (json!(wagate::clock::rfc3339(now + 91 * 24 * 3_600_000)), "90 days"),
        ];
        for (send_at, reason) in cases {
            let (status, body) = app.send(json!({"to": "16505550133", "type": "text",
                "text": {"body": "x"}, "send_at": send_at})).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{send_at}: {body}");
            assert_eq!(body["error"]["code"], "validation_failed");
            let text = body.to_string();
            assert!(text.contains("send_at") && text.contains(reason), "{send_at}: {body}");
        }
        // A moment ago (a clock a little behind) sends now.
        let (status, now_send) = app.send(json!({"to": "16505550133", "type": "text",
            "text": {"body": "now"}, "send_at": wagate::clock::rfc3339(now - 5_000)})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{now_send}");
        assert!(now_send.get("send_at").is_none(), "{now_send}");
        let sent = app.message_reaches(now_send["id"].as_str().unwrap(), &["read", "failed"],
            Duration::from_secs(10)).await;
        assert_eq!(sent["status"], "read", "{sent}");
        assert_eq!(app.emulator.sent_messages(Some(&number.phone_number_id)).len(), 1,
            "only the message that read went");
    }
}
