//! What must never happen: forged webhooks stored, another tenant's data shown, secrets in the clear.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

on_both_databases! {
    async fn bad_missing_and_unknown_signatures_and_oversized_bodies_are_refused_and_nothing_is_stored(app) {
        let number = app.connect_number().await;
        let body = serde_json::to_vec(&messages_webhook(&number.phone_number_id, json!({
            "messages": [text_message("16505551234", &unique_wamid(), "forged", now_secs())]
        }))).unwrap();
        let post = |url: String, signature: Option<String>, body: Vec<u8>| {
            let mut request = app.client.post(url).header("content-type", "application/json").body(body);
            if let Some(signature) = signature {
                request = request.header("x-hub-signature-256", signature);
            }
            request.send()
        };
        let wrong = cloudapi::signature::sign(b"not the app secret", &body);
        assert_eq!(post(number.webhook_url().into(), Some(wrong), body.clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(number.webhook_url().into(), None, body.clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(number.webhook_url().into(), Some("sha256=zz".into()), body.clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 1;
        let good_signature = cloudapi::signature::sign(number.app_secret.as_bytes(), &body);
        assert_eq!(post(number.webhook_url().into(), Some(good_signature.clone()), tampered).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let unknown = app.url("/webhooks/whatsapp/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(post(unknown, Some(good_signature), body.clone()).await.unwrap().status(), StatusCode::NOT_FOUND);
        let huge = vec![b' '; 3 * 1024 * 1024 + 1];
        let huge_signature = cloudapi::signature::sign(number.app_secret.as_bytes(), &huge);
        assert_eq!(post(number.webhook_url().into(), Some(huge_signature), huge).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
        // The same without a Content-Length (chunked): the limit holds while reading.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(vec![b' '; 1024 * 1024])).collect();
        let chunked = app.client.post(number.webhook_url())
            .header("x-hub-signature-256", cloudapi::signature::sign(number.app_secret.as_bytes(), b"x"))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send().await.unwrap();
        assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(app.inbox_rows().await, 0, "nothing refused is stored");
        assert!(app.messages("").await.is_empty());
    }

    async fn another_tenants_ids_answer_404_exactly_like_missing_ones(app) {
        let number = app.connect_number().await;
        let webhook = messages_webhook(&number.phone_number_id, json!({"messages": [text_message("16505551234", &unique_wamid(), "mine", now_secs())]}));
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let message_id = app.messages("").await[0]["id"].as_str().unwrap().to_owned();
        let (_, conversations) = app.get("/api/v1/conversations").await;
        let conversation_id = conversations["data"][0]["id"].as_str().unwrap().to_owned();
        app.wait_templates_synced(&number).await;
        let (_, templates) = app.get("/api/v1/templates").await;
        let template_id = templates["data"][0]["id"].as_str().unwrap().to_owned();
        let (status, media) = app.upload(include_bytes!("../../../../testdata/media/photo.jpg"), "p.jpg", "image/jpeg", &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{media}");
        let media_id = media["id"].as_str().unwrap().to_owned();
        let (_, other) = app.other_tenant().await;
        let missing = "0195f1d2-0000-7000-8000-000000000000";
        for path in [
            format!("/api/v1/connections/{}", number.id()),
            format!("/api/v1/messages/{message_id}"),
            format!("/api/v1/conversations/{conversation_id}"),
            format!("/api/v1/templates/{template_id}"),
            format!("/api/v1/media/{media_id}"),
        ] {
            let (theirs, theirs_body) = app.get_as(&other, &path).await;
            let missing_path = path.rsplit_once('/').unwrap().0.to_owned() + "/" + missing;
            let (absent, absent_body) = app.get_as(&other, &missing_path).await;
            assert_eq!(theirs, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(absent, StatusCode::NOT_FOUND);
            assert_eq!(theirs_body, absent_body, "no difference between another tenant's id and none");
        }
        for (method, path) in [
            (reqwest::Method::POST, format!("/api/v1/conversations/{conversation_id}/read")),
            (reqwest::Method::POST, format!("/api/v1/connections/{}/test", number.id())),
            (reqwest::Method::PATCH, format!("/api/v1/connections/{}", number.id())),
            (reqwest::Method::DELETE, format!("/api/v1/connections/{}", number.id())),
            (reqwest::Method::GET, format!("/api/v1/templates/{template_id}/preview")),
            (reqwest::Method::GET, format!("/api/v1/media/{media_id}/info")),
            (reqwest::Method::POST, format!("/api/v1/media/{media_id}/retry")),
            (reqwest::Method::POST, "/api/v1/templates/sync".to_owned()),
        ] {
            let body = if method == reqwest::Method::PATCH {
                Some(json!({"auto_reply": true}))
            } else if path.ends_with("/sync") {
                Some(json!({"connection_id": number.id()}))
            } else {
                None
            };
            let (status, _) = app.send_as(&other, method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        }
        let (status, _) = app.get_as(&other, &format!("/api/v1/templates?connection_id={}", number.id())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, listing) = app.get_as(&other, "/api/v1/templates").await;
        assert!(listing["data"].as_array().unwrap().is_empty());
        let (_, listing) = app.get_as(&other, "/api/v1/messages").await;
        assert!(listing["data"].as_array().unwrap().is_empty());
        let (_, listing) = app.get_as(&other, "/api/v1/conversations").await;
        assert!(listing["data"].as_array().unwrap().is_empty());
        let (_, unread) = app.get_as(&other, "/api/v1/unread-count").await;
        assert_eq!(unread["unread"], 0);
        let (status, _) = app.get(&format!("/api/v1/connections/{}", number.id())).await;
        assert_eq!(status, StatusCode::OK, "still there for its owner");
    }

    async fn requests_without_a_valid_api_key_are_refused(app) {
        for key in [None, Some("wgk_nope"), Some("wgk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
            let mut request = app.client.get(app.url("/api/v1/messages"));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let (_, body) = json_of(response).await;
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    async fn no_stored_secret_is_readable_in_the_database(app) {
        let number = app.connect_number().await;
        let verify = number.connection["verify_token"].as_str().unwrap().to_owned();
        let secrets = [number.access_token.clone(), number.app_secret.clone(), verify];
        let mut dump = Vec::new();
        match app.db {
            Db::Sqlite => {
                app.state.store.ping().await.unwrap();
                for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
                    let path = entry.unwrap().path();
                    if path.file_name().unwrap().to_string_lossy().starts_with("wagate") {
                        dump.extend(std::fs::read(path).unwrap());
                    }
                }
            }
            Db::Postgres => {
                let rows = sqlx::query("SELECT CAST(row_to_json(c) AS TEXT) AS j FROM connections c")
                    .fetch_all(app.state.store.reader()).await.unwrap();
                for row in rows {
                    dump.extend(sqlx::Row::try_get::<String, _>(&row, "j").unwrap().into_bytes());
                }
                // BYTEA renders as hex in JSON: search the hex form too.
            }
        }
        assert!(dump.len() > 100, "something was read");
        for secret in &secrets {
            let plain = secret.as_bytes();
            let hexed = plain.iter().map(|b| format!("{b:02x}")).collect::<String>();
            assert!(!dump.windows(plain.len()).any(|w| w == plain), "a secret is stored in plain text");
            assert!(!dump.windows(hexed.len()).any(|w| w == hexed.as_bytes()), "a secret is stored in plain text (hex)");
        }
    }
}
