//! Connections: credentials checked with Meta first, secrets never shown, rotation, re-check,
//! disconnect.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

on_both_databases! {
    async fn a_connection_is_created_after_meta_accepts_the_credentials(app) {
        let number = app.connect_number().await;
        let c = &number.connection;
        assert_eq!(c["phone_number_id"], json!(number.phone_number_id));
        assert_eq!(c["status"], "connected");
        assert_eq!(c["verified_name"], "Acme Shoes");
        assert_eq!(c["quality_rating"], "GREEN");
        assert_eq!(c["waba_id"], "102290129340398");
        assert!(c["display_phone_number"].as_str().unwrap().starts_with("1555"));
        let url = c["webhook_url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/webhooks/whatsapp/", app.address)), "{url}");
        let key = url.rsplit('/').next().unwrap();
        assert!(key.len() >= 40, "the connection key is long enough not to be guessed");
        assert!(c["verify_token"].as_str().unwrap().len() >= 24, "a verify token is generated");
        assert!(c["created_at"].is_string());
        let text = c.to_string();
        assert!(!text.contains(&number.access_token) && !text.contains(&number.app_secret));
        for key in ["access_token", "app_secret"] {
            assert!(c.get(key).is_none());
        }
        let (status, list) = app.get("/api/v1/connections").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["data"][0]["id"], c["id"]);
        let (status, one) = app.get(&format!("/api/v1/connections/{}", number.id())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&one, c);
    }

    async fn credentials_meta_rejects_are_refused_with_metas_error_and_nothing_is_stored(app) {
        let number = app.register_number();
        let (status, body) = app.post("/api/v1/connections", json!({
            "access_token": "EAAGwrongtoken", "phone_number_id": number.phone_number_id, "app_secret": number.app_secret
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "meta_rejected");
        assert_eq!(body["error"]["details"]["meta"]["code"], 190);
        assert!(body["error"]["details"]["meta"]["fbtrace_id"].is_string());
        assert!(!body.to_string().contains("EAAGwrongtoken"));
        let (status, body) = app.post("/api/v1/connections", json!({
            "access_token": number.access_token, "phone_number_id": "999000111", "app_secret": number.app_secret
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["meta"]["code"], 100);
        let (_, list) = app.get("/api/v1/connections").await;
        assert!(list["data"].as_array().unwrap().is_empty());
    }

    async fn bad_input_names_every_field_to_fix(app) {
        let (status, body) = app.post("/api/v1/connections", json!({
            "access_token": "", "phone_number_id": "12ab", "app_secret": "has space", "waba_id": "x"
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields = &body["error"]["details"]["fields"];
        for field in ["access_token", "phone_number_id", "app_secret", "waba_id"] {
            assert!(fields[field].is_string(), "{field} in {body}");
        }
        let (status, body) = app.post("/api/v1/connections", json!({"phone_number_id": "1"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["message"].as_str().unwrap().contains("access_token"), "{body}");
        let (status, body) = app.post("/api/v1/connections", json!({
            "acess_token": "typo", "access_token": "x", "phone_number_id": "1", "app_secret": "y"
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["message"].as_str().unwrap().contains("acess_token"), "{body}");
        let raw = app.client.post(app.url("/api/v1/connections")).bearer_auth(&app.api_key)
            .header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    }

    async fn a_phone_number_already_connected_gives_409_without_saying_by_whom(app) {
        let number = app.connect_number().await;
        let (_, other_key) = app.other_tenant().await;
        let (status, body) = app.send_as(&other_key, reqwest::Method::POST, "/api/v1/connections", Some(json!({
            "access_token": number.access_token, "phone_number_id": number.phone_number_id, "app_secret": number.app_secret
        }))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "phone_number_already_connected");
        assert!(!body.to_string().contains(&app.tenant_id));
        assert!(!body.to_string().contains(number.id()));
    }

    async fn patch_rotates_credentials_and_test_rechecks_them(app) {
        let number = app.connect_number().await;
        let path = format!("/api/v1/connections/{}", number.id());
        let (status, body) = app.patch(&path, json!({"verify_token": "my-own-verify", "auto_reply": true})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verify_token"], "my-own-verify");
        assert_eq!(body["auto_reply"], true);
        let (status, body) = app.patch(&path, json!({"access_token": "EAAGnotvalid"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a new token is checked before it is stored");
        assert_eq!(body["error"]["details"]["meta"]["code"], 190);
        let (status, test) = app.post(&format!("{path}/test"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(test["ok"], true, "the old token is still in place: {test}");
        // Meta invalidates the stored token (the tenant rotated it in Meta's dashboard).
        app.emulator.update_phone_number(&number.phone_number_id, emulator::PhoneNumberUpdate {
            access_token: Some("EAAGrotated".into()),
            ..Default::default()
        }).unwrap();
        let (_, test) = app.post(&format!("{path}/test"), json!({})).await;
        assert_eq!(test["ok"], false);
        assert_eq!(test["error"]["meta"]["code"], 190);
        assert_eq!(test["connection"]["status"], "needs_reauth");
        let (status, body) = app.patch(&path, json!({"access_token": "EAAGrotated"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "connected");
        let (_, test) = app.post(&format!("{path}/test"), json!({})).await;
        assert_eq!(test["ok"], true);
        // A rotated app secret signs the next webhooks.
        let (status, _) = app.patch(&path, json!({"app_secret": "new-app-secret"})).await;
        assert_eq!(status, StatusCode::OK);
        let body = messages_webhook(&number.phone_number_id, json!({"messages": [text_message("16505551234", &unique_wamid(), "hi", now_secs())]}));
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::UNAUTHORIZED, "the old secret no longer works");
        let rotated = ConnectedNumber { app_secret: "new-app-secret".into(), ..number.clone() };
        assert_eq!(app.post_signed(&rotated, &body).await, StatusCode::OK);
    }

    async fn delete_wipes_the_secrets_keeps_the_history_and_frees_the_number(app) {
        let number = app.connect_number().await;
        let body = messages_webhook(&number.phone_number_id, json!({"messages": [text_message("16505551234", &unique_wamid(), "before", now_secs())]}));
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let (status, gone) = app.delete(&format!("/api/v1/connections/{}", number.id())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(gone["status"], "disconnected");
        let row = app.state.store.connection(&app.tenant_id, number.id()).await.unwrap().unwrap();
        assert!(row.access_token.is_none() && row.app_secret.is_none() && row.verify_token.is_none());
        assert_eq!(app.messages("").await.len(), 1, "history is kept");
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::NOT_FOUND, "its webhook URL is gone");
        let (status, again) = app.post("/api/v1/connections", json!({
            "access_token": number.access_token, "phone_number_id": number.phone_number_id, "app_secret": number.app_secret
        })).await;
        assert_eq!(status, StatusCode::CREATED, "the number can be connected again: {again}");
    }
}
