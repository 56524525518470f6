//! Media in and out: files customers send are fetched after their message is stored, checked
//! against Meta's hash, kept once and served to their tenant only; files the tenant uploads are
//! checked against Meta's limits, uploaded, and sent by id.

use std::time::Duration;

use base64::Engine;
use emulator::{CustomerMessage, FaultKind, FaultSpec, GraphEndpoint};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::outbound::statuses_all_the_way;

const PHOTO: &[u8] = include_bytes!("../../../../testdata/media/photo.jpg");
const PNG: &[u8] = include_bytes!("../../../../testdata/media/receipt.png");
const STICKER: &[u8] = include_bytes!("../../../../testdata/media/sticker.webp");
const PDF: &[u8] = include_bytes!("../../../../testdata/media/invoice.pdf");

impl TestApp {
    /// A customer sends a file with real bytes; waits until the webhook is processed.
    async fn customer_sends_file(
        &self,
        number: &ConnectedNumber,
        from: &str,
        kind: &str,
        bytes: &[u8],
        mime_type: &str,
        extra: Value,
    ) -> String {
        let mut content = json!({
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
            "mime_type": mime_type,
        });
        if let (Some(content), Some(extra)) = (content.as_object_mut(), extra.as_object()) {
            content.extend(extra.clone());
        }
        let receipt = self
            .emulator
            .customer_writes(CustomerMessage {
                message_type: kind.into(),
                content,
                ..CustomerMessage::text(&number.phone_number_id, from, "")
            })
            .await
            .expect("the emulator takes the file");
        self.emulator
            .wait_delivered(receipt.delivery_id, Duration::from_secs(5))
            .await
            .expect("delivered");
        self.wait_processed().await;
        receipt.wamid
    }

    /// The stored message with this wamid, once its media is in one of `states`.
    async fn media_reaches(&self, wamid: &str, states: &[&str], within: Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let message = self
                .messages("")
                .await
                .into_iter()
                .find(|m| m["wamid"] == wamid);
            if let Some(message) = &message
                && states.iter().any(|s| message["media"]["status"] == *s)
            {
                return message.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "media of {wamid} did not reach {states:?}: {message:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn download(&self, api_key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(api_key)
            .send()
            .await
            .expect("download")
    }

    pub async fn upload(
        &self,
        bytes: &[u8],
        filename: &str,
        mime_type: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(filename.to_owned())
            .mime_str(mime_type)
            .expect("mime");
        let mut form = reqwest::multipart::Form::new().part("file", part);
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let response = self
            .client
            .post(self.url("/api/v1/media"))
            .bearer_auth(&self.api_key)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        json_of(response).await
    }

    /// Files kept in the media storage.
    fn stored_files(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            let path = e.path();
                            if path.is_dir() { count(&path) } else { 1 }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(&self.data_dir.path().join("media").join("sha256"))
    }
}

on_both_databases! {
    async fn an_inbound_image_is_stored_once_matches_metas_hash_and_only_its_tenant_can_download_it(app) {
        let number = app.connect_number().await;
        let wamid = app.customer_sends_file(&number, "16505551234", "image", PHOTO, "image/jpeg", json!({"caption": "Does it come in blue?"})).await;
        // The message is there at once, its file still on its way or already fetched.
        let first = app.messages("").await.into_iter().find(|m| m["wamid"] == wamid).expect("stored at once");
        assert_eq!(first["image"]["caption"], "Does it come in blue?");
        assert!(["pending", "stored"].contains(&first["media"]["status"].as_str().unwrap()), "{first}");
        let message = app.media_reaches(&wamid, &["stored", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["media"]["status"], "stored", "{message}");
        assert_eq!(message["media"]["mime_type"], "image/jpeg");
        assert_eq!(message["media"]["file_size"], PHOTO.len());
        let url = message["media"]["url"].as_str().unwrap().to_owned();

        let response = app.download(&app.api_key, &url).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["cache-control"], "private, no-cache");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&bytes[..], PHOTO);
        let (_, info) = app.get(&format!("{url}/info")).await;
        assert_eq!(info["sha256"], hex::encode(Sha256::digest(PHOTO)));
        assert_eq!(info["direction"], "inbound");

        // Browsers revalidate their copy every time: the owner gets 304, anyone else 404.
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(PHOTO)));
        let revalidated = app.client.get(app.url(&url)).bearer_auth(&app.api_key).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        let (_, other_key) = app.other_tenant().await;
        let foreign = app.client.get(app.url(&url)).bearer_auth(&other_key).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.download(&other_key, &url).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.download("wgk_not-a-key", &url).await.status(), StatusCode::UNAUTHORIZED);

        // The same photo from another customer: a message of its own, one file kept.
        let again = app.customer_sends_file(&number, "16505559999", "image", PHOTO, "image/jpeg", json!({})).await;
        app.media_reaches(&again, &["stored"], Duration::from_secs(10)).await;
        assert_eq!(app.stored_files(), 1);
        assert_eq!(app.messages("").await.len(), 2);
    }

    async fn a_redelivered_media_message_is_stored_and_fetched_once(app) {
        let number = app.connect_number().await;
        let media = app.emulator.add_media(emulator::MediaSeed {
            phone_number_id: number.phone_number_id.clone(),
            bytes: bytes::Bytes::from_static(PHOTO),
            mime_type: "image/jpeg".into(),
            ..Default::default()
        }).unwrap();
        let wamid = unique_wamid();
        let webhook = messages_webhook(&number.phone_number_id, json!({
            "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
            "messages": [{"from": "16505551234", "id": wamid, "timestamp": now_secs().to_string(), "type": "image",
                "image": {"id": media.id, "mime_type": "image/jpeg",
                    "sha256": base64::engine::general_purpose::STANDARD.encode(Sha256::digest(PHOTO))}}]
        }));
        // Meta did not get our 200 in time and sends it again, twice.
        for _ in 0..3 {
            assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        }
        app.wait_processed().await;
        let message = app.media_reaches(&wamid, &["stored", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["media"]["status"], "stored", "{message}");
        assert_eq!(app.messages("").await.len(), 1);
        assert_eq!(app.emulator.calls(Some(&number.phone_number_id), Some(GraphEndpoint::Media)).len(), 1, "fetched once");
        assert_eq!(app.stored_files(), 1);
    }

    async fn a_file_whose_bytes_do_not_match_metas_hash_is_not_kept(app) {
        let number = app.connect_number().await;
        let media = app.emulator.add_media(emulator::MediaSeed {
            phone_number_id: number.phone_number_id.clone(),
            bytes: bytes::Bytes::from_static(PHOTO),
            mime_type: "image/jpeg".into(),
            ..Default::default()
        }).unwrap();
        let wamid = unique_wamid();
        let webhook = messages_webhook(&number.phone_number_id, json!({
            "messages": [{"from": "16505551234", "id": wamid, "timestamp": now_secs().to_string(), "type": "image",
                "image": {"id": media.id, "mime_type": "image/jpeg",
                    "sha256": base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"another file"))}}]
        }));
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let message = app.media_reaches(&wamid, &["failed", "stored"], Duration::from_secs(15)).await;
        assert_eq!(message["media"]["status"], "failed", "{message}");
        assert!(message["media"]["reason"].as_str().unwrap().contains("SHA-256"), "{message}");
        assert_eq!(app.stored_files(), 0, "nothing unverified is kept");
    }

    async fn documents_stickers_and_audio_arrive_with_their_names_and_types(app) {
        let number = app.connect_number().await;
        let doc = app.customer_sends_file(&number, "16505551234", "document", PDF, "application/pdf", json!({"filename": "invoice-1042.pdf"})).await;
        let sticker = app.customer_sends_file(&number, "16505551234", "sticker", STICKER, "image/webp", json!({"animated": false})).await;
        let voice_note = b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00 a voice note";
        let voice = app.customer_sends_file(&number, "16505551234", "audio", voice_note, "audio/ogg; codecs=opus", json!({"voice": true})).await;
        let doc = app.media_reaches(&doc, &["stored"], Duration::from_secs(10)).await;
        assert_eq!(doc["media"]["filename"], "invoice-1042.pdf");
        let response = app.download(&app.api_key, doc["media"]["url"].as_str().unwrap()).await;
        // Documents are downloads, never shown on the dashboard's own origin.
        assert_eq!(response.headers()["content-type"], "application/pdf");
        assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
        assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"invoice-1042.pdf\""));
        assert_eq!(&response.bytes().await.unwrap()[..], PDF);
        let sticker = app.media_reaches(&sticker, &["stored"], Duration::from_secs(10)).await;
        let response = app.download(&app.api_key, sticker["media"]["url"].as_str().unwrap()).await;
        assert_eq!(response.headers()["content-type"], "image/webp");
        let voice = app.media_reaches(&voice, &["stored"], Duration::from_secs(10)).await;
        assert_eq!(voice["audio"]["voice"], true);
        let response = app.download(&app.api_key, voice["media"]["url"].as_str().unwrap()).await;
        assert_eq!(response.headers()["content-type"], "audio/ogg; codecs=opus");
        assert_eq!(&response.bytes().await.unwrap()[..], voice_note);
    }

    async fn an_expired_download_url_is_renewed_and_the_file_still_arrives(app) {
        let number = app.connect_number().await;
        // Meta's download URL answers 404 once it has expired: the first one given is.
        app.emulator.add_fault(FaultSpec {
            endpoint: Some(GraphEndpoint::MediaDownload),
            http_status: Some(404),
            times: 1,
            ..FaultSpec::default()
        }).unwrap();
        let wamid = app.customer_sends_file(&number, "16505551234", "image", PHOTO, "image/jpeg", json!({})).await;
        let message = app.media_reaches(&wamid, &["stored", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["media"]["status"], "stored", "{message}");
        let info_calls = app.emulator.calls(Some(&number.phone_number_id), Some(GraphEndpoint::Media)).len();
        assert_eq!(info_calls, 2, "a second URL was asked for");
        let downloads = app.emulator.calls(Some(&number.phone_number_id), Some(GraphEndpoint::MediaDownload)).len();
        assert_eq!(downloads, 2);
    }

    async fn a_media_fetch_that_fails_three_times_leaves_the_message_with_media_failed(app) {
        let number = app.connect_number().await;
        app.emulator.add_fault(FaultSpec {
            endpoint: Some(GraphEndpoint::Media),
            times: 3,
            ..FaultSpec::kind(FaultKind::InternalError)
        }).unwrap();
        let wamid = app.customer_sends_file(&number, "16505551234", "image", PHOTO, "image/jpeg", json!({"caption": "blue?"})).await;
        let message = app.media_reaches(&wamid, &["failed", "stored"], Duration::from_secs(15)).await;
        assert_eq!(message["media"]["status"], "failed", "{message}");
        let reason = message["media"]["reason"].as_str().unwrap();
        assert!(reason.contains("attempt 3 of 3"), "{reason}");
        // The message itself is whole and readable.
        assert_eq!(message["status"], "received");
        assert_eq!(message["image"]["caption"], "blue?");
        let (_, conversations) = app.get("/api/v1/conversations").await;
        assert_eq!(conversations["data"][0]["unread_count"], 1);
        let media_id = message["media"]["id"].as_str().unwrap();
        let (status, _) = app.get(&format!("/api/v1/media/{media_id}")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        // Meta is fine again: a retry fetches it.
        let (status, body) = app.post(&format!("/api/v1/media/{media_id}/retry"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let message = app.media_reaches(&wamid, &["stored"], Duration::from_secs(10)).await;
        assert!(message["media"].get("reason").is_none(), "{message}");
    }

    async fn an_uploaded_image_is_sent_by_id_and_reaches_meta_byte_for_byte(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, statuses_all_the_way());
        app.customer_writes(&number, "16505551234", "send me a photo").await;
        let (status, media) = app.upload(PHOTO, "sneakers.jpg", "image/jpeg", &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{media}");
        assert_eq!(media["kind"], "image");
        assert_eq!(media["status"], "stored");
        assert_eq!(media["file_size"], PHOTO.len());
        let meta_id = media["meta_media_id"].as_str().unwrap().to_owned();
        let (status, queued) = app.send(json!({"to": "16505551234", "type": "image",
            "image": {"id": media["id"], "caption": "The blue ones"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        assert_eq!(queued["image"]["id"], meta_id, "sent by Meta's own id");
        assert_eq!(queued["media"]["id"], media["id"]);
        let message = app.message_reaches(queued["id"].as_str().unwrap(), &["read", "failed"], Duration::from_secs(10)).await;
        assert_eq!(message["status"], "read", "{message}");
        let sent = app.emulator.sent_messages(Some(&number.phone_number_id));
        assert_eq!(sent[0].request["image"]["id"], meta_id);
        let (status, on_meta) = app.meta_admin(Method::GET, &format!("/admin/media/{meta_id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{on_meta}");
        assert_eq!(on_meta["sha256"], hex::encode(Sha256::digest(PHOTO)));
        let response = app.client.get(format!("{}/admin/media/{meta_id}/content", app.emulator.base_url())).send().await.unwrap();
        assert_eq!(&response.bytes().await.unwrap()[..], PHOTO, "Meta has exactly the bytes uploaded");
        // The dashboard can show what was sent.
        let response = app.download(&app.api_key, message["media"]["url"].as_str().unwrap()).await;
        assert_eq!(&response.bytes().await.unwrap()[..], PHOTO);
    }

    async fn uploads_of_the_wrong_type_or_size_are_422_saying_the_limit(app) {
        let number = app.connect_number().await;
        let _ = &number;
        let mut big = PHOTO.to_vec();
        big.resize(5 * 1024 * 1024 + 1, 0);
        let (status, refused) = app.upload(&big, "huge.jpg", "image/jpeg", &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["details"]["field"], "file");
        assert_eq!(refused["error"]["details"]["limit"], 5 * 1024 * 1024);
        assert!(refused["error"]["message"].as_str().unwrap().contains("5 MB"), "{refused}");

        let (status, refused) = app.upload(b"GIF89a\x01\x00\x01\x00", "anim.gif", "image/gif", &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused["error"]["details"]["field"], "type", "{refused}");

        let (status, refused) = app.upload(PNG, "photo.jpg", "image/jpeg", &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused["error"]["message"].as_str().unwrap().contains("PNG"), "{refused}");

        let mut sticker = STICKER.to_vec();
        sticker.resize(100 * 1024 + 10, 0);
        let (status, refused) = app.upload(&sticker, "s.webp", "image/webp", &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused["error"]["details"]["limit"], 100 * 1024, "{refused}");

        let (status, refused) = app.upload(b"", "empty.txt", "text/plain", &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(app.emulator.calls(None, Some(GraphEndpoint::Media)).is_empty(), "nothing reached Meta");

        let (status, ok) = app.upload(PDF, "invoice.pdf", "application/pdf", &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{ok}");
        assert_eq!(ok["kind"], "document");
    }

    async fn a_media_id_of_another_tenant_or_of_another_kind_cannot_be_sent(app) {
        let number = app.connect_number().await;
        app.customer_writes(&number, "16505551234", "hi").await;
        let (_, media) = app.upload(PHOTO, "p.jpg", "image/jpeg", &[]).await;
        let (status, refused) = app.send(json!({"to": "16505551234", "type": "video", "video": {"id": media["id"]}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused["error"]["code"], "media_unusable", "{refused}");
        let (_, other_key) = app.other_tenant().await;
        let response = app.client.post(app.url("/api/v1/messages")).bearer_auth(&other_key)
            .json(&json!({"to": "16505551234", "type": "image", "image": {"id": media["id"]}})).send().await.unwrap();
        let (status, body) = json_of(response).await;
        // The other tenant has no connection; whichever it is told, it is never this file.
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_ne!(body["error"]["code"], "media_unusable");
        let (status, _) = app.get_as(&other_key, &format!("/api/v1/media/{}/info", media["id"].as_str().unwrap())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
