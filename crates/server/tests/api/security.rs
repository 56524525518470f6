//! What must never happen: forged webhooks stored, another tenant's data shown, secrets in the clear.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::{Visitor, meta_csrf};
use crate::helpers::*;
use crate::openapi::Documented;

/// A body each changing route accepts, so the sweep reaches the route's lookup of the id rather
/// than stopping at validation; routes not named here take `{}`.
fn valid_body(method: &str, template: &str) -> Option<Value> {
    Some(match (method, template) {
        ("get" | "delete", _) => return None,
        ("patch", "/api/v1/connections/{id}") => json!({"auto_reply": true}),
        ("put", "/api/v1/connections/{id}/assistant") => json!({"auto_reply": false}),
        ("post", "/api/v1/conversations/{id}/assistant/pause") => json!({"minutes": 5}),
        ("post", "/api/v1/sequences/{id}/enrollments") => json!({"to": "+16505550000"}),
        ("patch", "/api/v1/sequences/{id}") => json!({"name": "Renamed"}),
        ("patch", "/api/v1/contacts/{id}") => json!({"name": "Renamed"}),
        ("patch", "/api/v1/connections/{id}/profile") => json!({"about": "Renamed"}),
        ("patch", "/api/v1/webhook-endpoints/{id}") => json!({"description": "Renamed"}),
        _ => json!({}),
    })
}

/// The API's routes that take an id (the endpoints Meta calls take a connection key instead).
fn routes_with_ids(documented: &Documented<'_>) -> Vec<(String, String)> {
    documented
        .operations()
        .into_iter()
        .filter(|(_, template)| template.starts_with("/api/") && template.contains('{'))
        .collect()
}

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

    async fn every_api_route_answers_another_tenants_ids_exactly_like_missing_ones(app) {
        let mut documented = Documented::fetch(&app).await;
        documented.seed().await;
        let (_, other) = app.other_tenant().await;
        let mut owner_view = Vec::new();
        for (method, template) in routes_with_ids(&documented) {
            if method == "get" && !template.starts_with("/api/v1/media/{id}") {
                owner_view.push((template.clone(), app.get(&documented.fill(&template, false)).await));
            }
        }
        let swept = routes_with_ids(&documented);
        assert!(swept.len() >= 25, "only {} routes take an id", swept.len());
        for (method, template) in &swept {
            let theirs_path = documented.fill(template, false);
            let missing_path = documented.fill(template, true);
            let body = valid_body(method, template);
            let (theirs, theirs_body) = documented.call(Some(&other), method, template, &theirs_path, body.clone()).await;
            let (absent, absent_body) = documented.call(Some(&other), method, template, &missing_path, body).await;
            assert_eq!(theirs, StatusCode::NOT_FOUND, "{method} {theirs_path} as another tenant: {theirs_body}");
            assert_eq!(absent, StatusCode::NOT_FOUND, "{method} {missing_path}: {absent_body}");
            assert_eq!(theirs_body, absent_body, "{method} {template}: another tenant's id and no id must look the same");
        }
        // Nothing the other tenant asked for changed anything of the owner's.
        for (template, (status, before)) in owner_view {
            let (now_status, now) = app.get(&documented.fill(&template, false)).await;
            assert_eq!((now_status, status), (StatusCode::OK, StatusCode::OK), "{template}: {now}");
            for stable in ["status", "auto_reply", "name", "url", "enabled", "state"] {
                assert_eq!(now.get(stable), before.get(stable), "{template}: `{stable}` changed");
            }
        }
    }

    async fn the_dashboards_pages_answer_another_tenants_ids_with_404(app) {
        let mut documented = Documented::fetch(&app).await;
        documented.seed().await;
        let mut owner = Visitor::new(&app);
        owner.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, contacts, _) = owner.get("/app/contacts").await;
        let contact_id = contacts.split("href=\"/app/contacts/").nth(1).and_then(|rest| rest.split('"').next())
            .expect("the owner's contact is listed").to_owned();
        let owner_user: String = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1")
            .bind(&app.tenant_id).fetch_one(app.state.store.reader()).await.unwrap();
        let other = app.other_owner().await;
        let mut intruder = Visitor::new(&app);
        intruder.sign_in(&other.email, OWNER_PASSWORD).await;
        let (_, page, _) = intruder.get("/app/settings").await;
        let csrf = meta_csrf(&page);
        let conversation = &documented.ids["conversations"];
        let message = &documented.ids["messages"];
        let connection = &documented.ids["connections"];
        let template = &documented.ids["templates"];
        for path in [
            format!("/app/inbox?c={conversation}"),
            format!("/app/inbox/older?c={conversation}&before={message}"),
            format!("/app/inbox/templates?connection={connection}"),
            format!("/app/inbox/template?id={template}"),
            format!("/app/contacts/{contact_id}"),
        ] {
            let (status, body, _) = intruder.get(&path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path} as another tenant: {body}");
            let (status, _, _) = owner.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path} for its owner");
        }
        let (status, _, _) = intruder.post_form(&format!("/app/users/{owner_user}/remove"), &[("csrf_token", &csrf)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "removing another tenant's user");
        let (status, _, _) = owner.get("/app/settings").await;
        assert_eq!(status, StatusCode::OK, "the owner is still signed in and still a user");
    }

    async fn every_route_refuses_requests_without_credentials_or_without_the_csrf_token(app) {
        let mut documented = Documented::fetch(&app).await;
        documented.seed().await;
        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, page, _) = visitor.get("/app/settings").await;
        let csrf = meta_csrf(&page);
        let cookie = visitor.cookie_header();
        let client = reqwest::Client::new();
        let mut guarded = 0;
        for (method, template) in documented.operations() {
            if !documented.needs_credentials(&method, &template) {
                continue;
            }
            guarded += 1;
            let path = documented.fill(&template, false);
            for key in [None, Some("wgk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
                let (status, body) = documented.call(key, &method, &template, &path, valid_body(&method, &template)).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {key:?}: {body}");
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            if method == "get" {
                continue;
            }
            let request = |token: Option<&str>, origin: Option<&str>| {
                let mut request = client
                    .request(reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), app.url(&path))
                    .header(reqwest::header::COOKIE, &cookie)
                    .json(&valid_body(&method, &template).unwrap_or(json!({})));
                if let Some(token) = token {
                    request = request.header("X-CSRF-Token", token);
                }
                if let Some(origin) = origin {
                    request = request.header("Origin", origin);
                }
                request.send()
            };
            let (status, body) = json_of(request(None, None).await.unwrap()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with the cookie and no token: {body}");
            assert_eq!(body["error"]["code"], "csrf_token_missing");
            let (status, body) = json_of(request(Some("not-the-token"), None).await.unwrap()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with a wrong token: {body}");
            let (status, body) = json_of(request(Some(&csrf), Some("https://evil.example")).await.unwrap()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} from another site: {body}");
        }
        assert!(guarded >= 40, "only {guarded} routes need credentials");
        // The dashboard's own forms need the token as well.
        let forms: [(&str, &[(&str, &str)]); 4] = [
            ("/logout", &[]),
            ("/app/settings/api-key", &[]),
            ("/app/settings/password", &[("current", OWNER_PASSWORD), ("new", "a brand new passphrase")]),
            ("/app/users", &[("email", "agent@example.com"), ("role", "agent")]),
        ];
        for (path, fields) in forms {
            let mut form = vec![("csrf_token", "not-the-token")];
            form.extend_from_slice(fields);
            let (status, _, _) = visitor.post_form(path, &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} with a wrong token");
        }
        let (status, _, _) = visitor.get("/app/settings").await;
        assert_eq!(status, StatusCode::OK, "none of the refused posts signed the owner out");
    }

    async fn api_bodies_over_the_limit_are_413_and_a_client_that_never_finishes_its_headers_is_cut_off(app) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let big = json!({"to": "+16505551234", "type": "text", "text": {"body": "x".repeat(1024 * 1024)}});
        let (status, body) = app.post("/api/v1/messages", big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["error"]["code"], "payload_too_large");
        // A body that claims less than it sends, or streams without end, stops at the limit too.
        let endless: Vec<Result<Vec<u8>, std::io::Error>> = (0..3).map(|_| Ok(vec![b' '; 1024 * 1024])).collect();
        let streamed = app.client.post(app.url("/api/v1/messages")).bearer_auth(&app.api_key)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(endless)))
            .send().await;
        // The server answers 413 at the limit and stops reading: the client sees the answer, or,
        // when it was still writing, the connection closed under it.
        match streamed {
            Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
            Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
        }
        assert!(app.messages("").await.is_empty(), "nothing was queued");

        let address = app.address.trim_start_matches("http://").to_owned();
        let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: wagate\r\nX-Slow: ").await.unwrap();
        let started = std::time::Instant::now();
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), slow.read(&mut buffer)).await
            .expect("the server closes a connection whose headers never end");
        let waited = started.elapsed();
        assert!(matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buffer).contains("408"),
            "the connection is closed, not answered: {:?}", String::from_utf8_lossy(&buffer));
        assert!(waited >= std::time::Duration::from_secs(5), "not before the header timeout ({waited:?})");
        // Meanwhile, and after, the server answers everyone else.
        let (status, _) = app.get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }
}
