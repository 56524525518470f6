//! Reading back: conversations with unread counts and the service window, marking read (with
//! Meta's read receipt), and paging messages.

use std::time::Duration;

use emulator::CustomerMessage;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

on_both_databases! {
    async fn conversations_count_unread_messages_and_marking_read_zeroes_them_and_tells_meta(app) {
        let number = app.connect_number().await;
        let mut last = None;
        for text in ["hi", "anyone?", "hello??"] {
            let receipt = app.emulator.customer_writes(CustomerMessage::text(&number.phone_number_id, "4915112345678", text)).await.unwrap();
            app.emulator.wait_delivered(receipt.delivery_id, Duration::from_secs(5)).await.unwrap();
            last = Some(receipt.wamid);
        }
        app.wait_processed().await;
        let (status, list) = app.get("/api/v1/conversations?unread_only=true").await;
        assert_eq!(status, StatusCode::OK);
        let conversation = &list["data"][0];
        assert_eq!(conversation["unread_count"], 3);
        assert_eq!(conversation["last_message_preview"], "hello??");
        assert_eq!(conversation["contact"]["wa_id"], "4915112345678");
        let id = conversation["id"].as_str().unwrap().to_owned();
        let (status, read) = app.post(&format!("/api/v1/conversations/{id}/read"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read["unread_count"], 0);
        let (_, unread) = app.get("/api/v1/unread-count").await;
        assert_eq!(unread, json!({"unread": 0}));
        let (_, list) = app.get("/api/v1/conversations?unread_only=true").await;
        assert!(list["data"].as_array().unwrap().is_empty());
        let jobs = app.state.store.jobs_of_kind("read_receipt", 10).await.unwrap();
        assert_eq!(jobs.len(), 1, "one read receipt for the last inbound message");
        let wamid = last.unwrap();
        eventually(Duration::from_secs(5), || async {
            app.state.store.jobs_of_kind("read_receipt", 10).await.unwrap()[0].state == "done"
        }).await;
        let receipts = app.emulator.read_receipts(Some(&number.phone_number_id));
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].wamid, wamid, "Meta is told the newest customer message was read");
    }

    async fn the_service_window_closes_24_hours_after_the_customers_last_message(app) {
        let number = app.connect_number().await;
        let older = now_secs() - 3600;
        let newer = now_secs() - 60;
        // Delivered newest first: the window must still follow the newest message.
        for (ts, body) in [(newer, "second"), (older, "first")] {
            let webhook = messages_webhook(&number.phone_number_id, json!({
                "messages": [text_message("16505551234", &unique_wamid(), body, ts)]
            }));
            assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
            app.wait_processed().await;
        }
        let (_, list) = app.get("/api/v1/conversations").await;
        let conversation = &list["data"][0];
        let expires = conversation["window_expires_at"].as_str().unwrap();
        assert_eq!(expires, wagate::clock::rfc3339((newer + 24 * 3600) * 1000));
        assert_eq!(conversation["last_message_preview"], "second");
        assert_eq!(conversation["window_open"], true);
        let stale = now_secs() - 25 * 3600;
        let old_contact = messages_webhook(&number.phone_number_id, json!({
            "messages": [text_message("16505559999", &unique_wamid(), "long ago", stale)]
        }));
        assert_eq!(app.post_signed(&number, &old_contact).await, StatusCode::OK);
        app.wait_processed().await;
        let (_, list) = app.get("/api/v1/conversations").await;
        let stale_conversation = list["data"].as_array().unwrap().iter()
            .find(|c| c["contact"]["wa_id"] == "16505559999").unwrap().clone();
        assert_eq!(stale_conversation["window_open"], false);
    }

    async fn messages_page_newest_first_with_before(app) {
        let number = app.connect_number().await;
        let base = now_secs() - 1000;
        let messages: Vec<_> = (0..7).map(|i| text_message("16505551234", &unique_wamid(), &format!("m{i}"), base + i)).collect();
        let webhook = messages_webhook(&number.phone_number_id, json!({"messages": messages}));
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let query = match &before {
                Some(b) => format!("/api/v1/messages?limit=3&before={b}"),
                None => "/api/v1/messages?limit=3".to_owned(),
            };
            let (status, page) = app.get(&query).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for m in page["data"].as_array().unwrap() {
                seen.push(m["text"]["body"].as_str().unwrap().to_owned());
            }
            match page["next_before"].as_str() {
                Some(next) => before = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["m6", "m5", "m4", "m3", "m2", "m1", "m0"]);
        let (_, conversations) = app.get("/api/v1/conversations").await;
        let id = conversations["data"][0]["id"].as_str().unwrap();
        let (_, by_conversation) = app.get(&format!("/api/v1/messages?conversation_id={id}&limit=2")).await;
        assert_eq!(by_conversation["data"].as_array().unwrap().len(), 2);
        let (_, by_contact) = app.get("/api/v1/messages?contact=%2B1%20(650)%20555-1234").await;
        assert_eq!(by_contact["data"].as_array().unwrap().len(), 7, "contact in any common format");
        let (status, bad) = app.get("/api/v1/messages?limit=1000").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad["error"]["code"], "validation_failed");
        let (status, _) = app.get("/api/v1/messages?before=nope").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn health_and_readiness_answer(app) {
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), StatusCode::OK);
    }

    async fn events_stream_new_messages_to_the_tenants_websocket(app) {
        use futures::StreamExt;
        let number = app.connect_number().await;
        let ws_url = app.url("/api/v1/events").replace("http://", "ws://");
        let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url).unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {}", app.api_key).parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let receipt = app.emulator.customer_writes(CustomerMessage::text(&number.phone_number_id, "16505551234", "live!")).await.unwrap();
        let mut kinds = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while kinds.len() < 3 {
            let frame = tokio::time::timeout_at(deadline, socket.next()).await.expect("events within 5 s").unwrap().unwrap();
            let event: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
            // Connecting the number pulls its templates in the background; that sync may end
            // after the socket opened, and its event is not the message's.
            if event["type"] == "templates.synced" {
                continue;
            }
            if event["type"] == "message.created" {
                assert_eq!(event["data"]["wamid"], json!(receipt.wamid));
                assert_eq!(event["data"]["text"]["body"], "live!");
            }
            if event["type"] == "unread.changed" {
                assert_eq!(event["data"]["unread"], 1);
            }
            kinds.push(event["type"].as_str().unwrap().to_owned());
        }
        kinds.sort();
        assert_eq!(kinds, ["conversation.updated", "message.created", "unread.changed"]);
        let unauthenticated = tokio_tungstenite::connect_async(app.url("/api/v1/events").replace("http://", "ws://")).await;
        assert!(unauthenticated.is_err(), "no API key, no events");
    }
}
