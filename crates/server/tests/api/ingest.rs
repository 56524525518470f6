//! Webhooks in: signature, durable inbox, every item of a batch, redelivery, status order.

use std::time::Duration;

use emulator::CustomerMessage;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::*;

on_both_databases! {
    async fn a_customer_message_from_the_emulator_is_visible_through_the_api(app) {
        let number = app.connect_number().await;
        let photo: &[u8] = include_bytes!("../../../../testdata/media/photo.jpg");
        // The photo is Meta's: the webhook names it by its id, as Meta's example does.
        app.emulator.add_media(emulator::MediaSeed {
            phone_number_id: number.phone_number_id.clone(),
            bytes: bytes::Bytes::from_static(photo),
            mime_type: "image/jpeg".into(),
            id: Some("1487611172367485".into()),
            ..Default::default()
        }).unwrap();
        let image = json!({
            "caption": "Does it come in blue?",
            "mime_type": "image/jpeg",
            "sha256": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha2::Sha256::digest(photo)),
            "id": "1487611172367485"
        });
        let receipt = app
            .emulator
            .customer_writes(CustomerMessage {
                name: Some("Sheena Nelson".into()),
                message_type: "image".into(),
                content: image.clone(),
                ..CustomerMessage::text(&number.phone_number_id, "16505551234", "")
            })
            .await
            .unwrap();
        app.emulator
            .wait_delivered(receipt.delivery_id, Duration::from_secs(5))
            .await
            .unwrap();
        // Within a second of Meta's delivery being acknowledged, the API shows the message.
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let messages = loop {
            let messages = app.messages("").await;
            if !messages.is_empty() {
                break messages;
            }
            assert!(std::time::Instant::now() < deadline, "not visible within a second");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let message = &messages[0];
        assert_eq!(message["wamid"], json!(receipt.wamid));
        assert_eq!(message["type"], "image");
        assert_eq!(message["image"], image, "the type object exactly as Meta sent it");
        assert_eq!(message["direction"], "inbound");
        assert_eq!(message["status"], "received");
        assert_eq!(message["contact"], json!({"wa_id": "16505551234", "name": "Sheena Nelson"}));
        assert_eq!(message["connection_id"], json!(number.id()));
        // Once its photo is fetched, the message reads the same one by one as in the list.
        eventually(Duration::from_secs(10), || async {
            app.messages("").await[0]["media"]["status"] == "stored"
        }).await;
        let message = &app.messages("").await[0];
        let (status, one) = app.get(&format!("/api/v1/messages/{}", message["id"].as_str().unwrap())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&one, message);
    }

    async fn a_batch_with_several_entries_changes_and_messages_stores_every_item(app) {
        let number = app.connect_number().await;
        let now = now_secs();
        let value = |from: &str, n: usize| {
            json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": number.phone_number_id},
                "contacts": [{"profile": {"name": format!("Customer {from}")}, "wa_id": from}],
                "messages": (0..n).map(|i| text_message(from, &unique_wamid(), &format!("{from} #{i}"), now)).collect::<Vec<_>>()
            })
        };
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [
                    {"field": "messages", "value": value("4915100000001", 3)},
                    {"field": "messages", "value": value("4915100000002", 2)}
                ]},
                {"id": "102290129340398", "changes": [
                    {"field": "messages", "value": value("4915100000003", 4)}
                ]}
            ]
        });
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let messages = app.messages("").await;
        assert_eq!(messages.len(), 9, "every message of every change of every entry");
        let (_, conversations) = app.get("/api/v1/conversations").await;
        assert_eq!(conversations["data"].as_array().unwrap().len(), 3);
        let (_, unread) = app.get("/api/v1/unread-count").await;
        assert_eq!(unread, json!({"unread": 9}));
    }

    async fn the_same_webhook_delivered_five_times_stores_each_message_once(app) {
        let number = app.connect_number().await;
        let body = messages_webhook(&number.phone_number_id, json!({
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511999990000"}],
            "messages": [
                text_message("5511999990000", &unique_wamid(), "one", now_secs()),
                text_message("5511999990000", &unique_wamid(), "two", now_secs()),
            ]
        }));
        for _ in 0..5 {
            assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        }
        app.wait_processed().await;
        assert_eq!(app.inbox_rows().await, 5, "every delivery is kept raw");
        assert_eq!(app.messages("").await.len(), 2);
        let (_, unread) = app.get("/api/v1/unread-count").await;
        assert_eq!(unread["unread"], 2, "a redelivery does not count as unread again");
    }

    async fn statuses_arriving_read_then_sent_then_delivered_leave_the_message_read(app) {
        let number = app.connect_number().await;
        let wamid = unique_wamid();
        let echo = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": number.phone_number_id},
                "message_echoes": [{"from": "15550783881", "to": "16505551234", "id": wamid,
                    "timestamp": now_secs().to_string(), "type": "text", "text": {"body": "Sent from the app"}}]
            }}]}]
        });
        assert_eq!(app.post_signed(&number, &echo).await, StatusCode::OK);
        app.wait_processed().await;
        for status in ["read", "sent", "delivered"] {
            let body = messages_webhook(&number.phone_number_id, json!({
                "statuses": [{"id": wamid, "status": status, "timestamp": now_secs().to_string(), "recipient_id": "16505551234"}]
            }));
            assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
            app.wait_processed().await;
        }
        let messages = app.messages("").await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["direction"], "outbound");
        assert_eq!(messages[0]["status"], "read");
        let kept = app.state.store.statuses_of(number.id(), &wamid).await.unwrap();
        assert_eq!(kept.len(), 3, "every status is kept with its payload");
        assert!(kept.iter().all(|s| serde_json::from_str::<Value>(&s.payload).unwrap()["id"] == json!(wamid)));
    }

    async fn a_status_that_arrives_before_its_message_is_applied_when_the_message_appears(app) {
        let number = app.connect_number().await;
        let wamid = unique_wamid();
        let delivered = messages_webhook(&number.phone_number_id, json!({
            "statuses": [{"id": wamid, "status": "delivered", "timestamp": now_secs().to_string(), "recipient_id": "16505551234"}]
        }));
        assert_eq!(app.post_signed(&number, &delivered).await, StatusCode::OK);
        app.wait_processed().await;
        assert!(app.messages("").await.is_empty());
        let echo = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": number.phone_number_id},
                "message_echoes": [{"from": "15550783881", "to": "16505551234", "id": wamid,
                    "timestamp": now_secs().to_string(), "type": "text", "text": {"body": "hello"}}]
            }}]}]
        });
        assert_eq!(app.post_signed(&number, &echo).await, StatusCode::OK);
        app.wait_processed().await;
        let messages = app.messages("").await;
        assert_eq!(messages[0]["status"], "delivered");
    }

    async fn an_echo_and_its_statuses_in_one_webhook_leave_the_message_at_its_furthest_status(app) {
        let number = app.connect_number().await;
        let wamid = unique_wamid();
        let metadata = json!({"display_phone_number": "15550783881", "phone_number_id": number.phone_number_id});
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [
                {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata,
                    "statuses": [{"id": wamid, "status": "delivered", "timestamp": now_secs().to_string(), "recipient_id": "16505551234"}]}},
                {"field": "smb_message_echoes", "value": {"messaging_product": "whatsapp", "metadata": metadata,
                    "message_echoes": [{"from": "15550783881", "to": "16505551234", "id": wamid,
                        "timestamp": now_secs().to_string(), "type": "text", "text": {"body": "from the app"}}]}},
                {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata,
                    "statuses": [{"id": wamid, "status": "sent", "timestamp": now_secs().to_string(), "recipient_id": "16505551234"}]}}
            ]}]
        });
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let messages = app.messages("").await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["status"], "delivered");
        assert_eq!(messages[0]["direction"], "outbound");
        let (_, conversations) = app.get("/api/v1/conversations").await;
        assert_eq!(conversations["data"][0]["unread_count"], 0, "the business's own message is not unread");
        assert_eq!(conversations["data"][0]["last_message_preview"], "from the app");
    }

    async fn a_failed_status_keeps_metas_error_and_nothing_moves_it_afterwards(app) {
        let number = app.connect_number().await;
        let wamid = unique_wamid();
        let echo = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": number.phone_number_id},
                "message_echoes": [{"from": "15550783881", "to": "16505551234", "id": wamid,
                    "timestamp": now_secs().to_string(), "type": "text", "text": {"body": "hello"}}]
            }}]}]
        });
        assert_eq!(app.post_signed(&number, &echo).await, StatusCode::OK);
        let failed = messages_webhook(&number.phone_number_id, json!({
            "statuses": [{"id": wamid, "status": "failed", "timestamp": now_secs().to_string(), "recipient_id": "16505551234",
                "errors": [{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
                    "message": "This message was not delivered to maintain healthy ecosystem engagement.",
                    "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."}}]}]
        }));
        assert_eq!(app.post_signed(&number, &failed).await, StatusCode::OK);
        let read = messages_webhook(&number.phone_number_id, json!({
            "statuses": [{"id": wamid, "status": "read", "timestamp": (now_secs() + 1).to_string(), "recipient_id": "16505551234"}]
        }));
        assert_eq!(app.post_signed(&number, &read).await, StatusCode::OK);
        app.wait_processed().await;
        let message = &app.messages("").await[0];
        assert_eq!(message["status"], "failed");
        assert_eq!(message["error"]["code"], 131049);
        assert_eq!(message["error"]["message"], "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.");
    }

    async fn unknown_message_types_and_fields_are_kept_not_rejected(app) {
        let number = app.connect_number().await;
        let wamid = unique_wamid();
        let body = messages_webhook(&number.phone_number_id, json!({
            "contacts": [{"profile": {"name": "Future"}, "wa_id": "16505550000"}],
            "messages": [
                {"from": "16505550000", "id": wamid, "timestamp": now_secs().to_string(), "type": "hologram",
                 "hologram": {"shape": "cube", "size": 3}, "brand_new_field": {"x": 1}},
                {"from": "16505550000", "id": 12345, "type": "text"}
            ],
            "another_new_thing": true
        }));
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let messages = app.messages("").await;
        assert_eq!(messages.len(), 1, "the malformed neighbour does not spoil the good message");
        assert_eq!(messages[0]["type"], "hologram");
        assert_eq!(messages[0]["hologram"], json!({"shape": "cube", "size": 3}));
        let (_, parked) = app.get("/api/v1/inbox?state=parked").await;
        assert!(parked["data"].as_array().unwrap().is_empty());
    }

    async fn items_for_another_phone_number_are_not_applied(app) {
        let number = app.connect_number().await;
        let other = app.connect_number().await;
        let body = messages_webhook(&other.phone_number_id, json!({
            "messages": [text_message("16505551234", &unique_wamid(), "not for you", now_secs())]
        }));
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK, "signed correctly, so accepted");
        app.wait_processed().await;
        assert!(app.messages("").await.is_empty());
    }

    async fn a_body_that_is_not_a_webhook_is_parked_visible_and_can_be_retried(app) {
        let number = app.connect_number().await;
        let bytes = b"this is not json".to_vec();
        let signature = cloudapi::signature::sign(number.app_secret.as_bytes(), &bytes);
        let status = app.client.post(number.webhook_url())
            .header("x-hub-signature-256", signature)
            .body(bytes)
            .send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "a signed body is stored whatever it holds");
        app.wait_processed().await;
        let (status, parked) = app.get("/api/v1/inbox?state=parked").await;
        assert_eq!(status, StatusCode::OK);
        let rows = parked["data"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0]["last_error"].as_str().unwrap().contains("not JSON"), "{}", rows[0]);
        let id = rows[0]["id"].as_i64().unwrap();
        let (status, retried) = app.post(&format!("/api/v1/inbox/{id}/retry"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(retried["state"], "pending");
        app.wait_processed().await;
        let (_, parked) = app.get("/api/v1/inbox?state=parked").await;
        assert_eq!(parked["data"].as_array().unwrap().len(), 1, "parked again, never dropped");
    }

    async fn the_platform_url_routes_each_item_to_its_connection(app) {
        let mut app = app;
        app.stop().await;
        let app = TestApp::spawn_with(app.db, |settings| {
            settings.meta_app_secret = Some(secrecy::SecretString::from("platform-secret".to_owned()));
            settings.meta_verify_token = Some(secrecy::SecretString::from("platform-verify".to_owned()));
        })
        .await;
        let first = app.connect_number().await;
        let second = app.connect_number().await;
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [
                {"field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "1", "phone_number_id": first.phone_number_id},
                    "messages": [text_message("16505551234", &unique_wamid(), "to first", now_secs())]}},
                {"field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "2", "phone_number_id": second.phone_number_id},
                    "messages": [text_message("16505551234", &unique_wamid(), "to second", now_secs())]}},
                {"field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "3", "phone_number_id": "999999999"},
                    "messages": [text_message("16505551234", &unique_wamid(), "to nobody", now_secs())]}}
            ]}]
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let status = app.client.post(app.url("/webhooks/whatsapp"))
            .header("x-hub-signature-256", cloudapi::signature::sign(b"platform-secret", &bytes))
            .body(bytes.clone())
            .send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK);
        let forged = app.client.post(app.url("/webhooks/whatsapp"))
            .header("x-hub-signature-256", cloudapi::signature::sign(first.app_secret.as_bytes(), &bytes))
            .body(bytes)
            .send().await.unwrap().status();
        assert_eq!(forged, StatusCode::UNAUTHORIZED);
        app.wait_processed().await;
        let first_messages = app.messages("&contact=16505551234").await;
        assert_eq!(first_messages.len(), 2);
        let connections: Vec<&str> = first_messages.iter().map(|m| m["connection_id"].as_str().unwrap()).collect();
        assert!(connections.contains(&first.id()) && connections.contains(&second.id()));
        let challenge = app.client.get(app.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=platform-verify&hub.challenge=1158201444"))
            .send().await.unwrap();
        assert_eq!(challenge.status(), StatusCode::OK);
        assert_eq!(challenge.text().await.unwrap(), "1158201444");
    }

    async fn template_status_webhooks_update_the_stored_template_and_keep_the_rejection_reason(app) {
        let number = app.connect_number().await;
        // Connecting pulls the account's templates; Meta's webhook about one comes after that.
        app.wait_templates_synced(&number).await;
        let body = json!({
            "entry": [{"id": "102290129340398", "time": 1751247548, "changes": [{"field": "message_template_status_update", "value": {
                "event": "REJECTED", "message_template_id": 1689556908129835_i64, "message_template_name": "abandoned_cart",
                "message_template_language": "en", "reason": "INVALID_FORMAT", "message_template_category": "MARKETING",
                "rejection_info": {"reason": "Parameters are placed next to each other.", "recommendation": "Separate them."}
            }}]}],
            "object": "whatsapp_business_account"
        });
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let (_, templates) = app.get(&format!("/api/v1/templates?connection_id={}", number.id())).await;
        let template = &templates["data"][0];
        assert_eq!(template["name"], "abandoned_cart");
        assert_eq!(template["status"], "REJECTED");
        assert_eq!(template["meta_template_id"], "1689556908129835");
        assert!(template["rejected_reason"].as_str().unwrap().contains("INVALID_FORMAT"));
        let quality = json!({
            "entry": [{"id": "102290129340398", "time": 1751247548, "changes": [{"field": "message_template_quality_update", "value": {
                "previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": 1689556908129835_i64,
                "message_template_name": "abandoned_cart", "message_template_language": "en"
            }}]}],
            "object": "whatsapp_business_account"
        });
        assert_eq!(app.post_signed(&number, &quality).await, StatusCode::OK);
        app.wait_processed().await;
        let (_, templates) = app.get("/api/v1/templates").await;
        assert_eq!(templates["data"][0]["quality_score"], "YELLOW");
        assert_eq!(templates["data"][0]["status"], "REJECTED");
    }

    async fn webhook_verification_answers_the_challenge_only_for_the_right_token(app) {
        let number = app.connect_number().await;
        let verify = number.connection["verify_token"].as_str().unwrap();
        let url = |token: &str| format!("{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444", number.webhook_url());
        let ok = app.client.get(url(verify)).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(ok.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        assert_eq!(app.client.get(url("wrong")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
        let wrong_mode = format!("{}?hub.mode=unsubscribe&hub.verify_token={verify}&hub.challenge=1", number.webhook_url());
        assert_eq!(app.client.get(wrong_mode).send().await.unwrap().status(), StatusCode::FORBIDDEN);
        let unknown = app.url("/webhooks/whatsapp/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1");
        assert_eq!(app.client.get(unknown).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    }

    async fn a_webhook_waiting_at_meta_for_a_url_arrives_once_the_url_is_set(app) {
        let number = app.register_number();
        // Meta holds the webhook until the app has a callback URL.
        let (status, connection) = app.post("/api/v1/connections", json!({
            "access_token": number.access_token, "phone_number_id": number.phone_number_id, "app_secret": number.app_secret
        })).await;
        assert_eq!(status, StatusCode::CREATED);
        let receipt = app.emulator.customer_writes(CustomerMessage::text(&number.phone_number_id, "16505551234", "are you there?")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(app.messages("").await.is_empty());
        app.emulator.update_phone_number(&number.phone_number_id, emulator::PhoneNumberUpdate {
            webhook_url: Some(Some(connection["webhook_url"].as_str().unwrap().to_owned())),
            ..Default::default()
        }).unwrap();
        app.emulator.wait_delivered(receipt.delivery_id, Duration::from_secs(5)).await.unwrap();
        app.wait_processed().await;
        let messages = app.messages("").await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["text"]["body"], "are you there?");
    }
}
