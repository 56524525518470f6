//! The tenant's settings: a time zone checked against the tz database, and opt-out words of its
//! own that opt a customer out like the defaults do.

use reqwest::StatusCode;
use serde_json::json;

on_both_databases! {
    async fn the_time_zone_and_own_opt_out_words_are_kept_and_the_words_opt_customers_out(app) {
        let (status, settings) = app.get("/api/v1/settings").await;
        assert_eq!(status, StatusCode::OK, "{settings}");
        assert_eq!(settings["time_zone"], "UTC");
        assert_eq!(settings["opt_out_words"], json!([]));
        assert!(settings["default_opt_out_words"].as_array().unwrap().contains(&json!("stop")));

        let (status, refused) = app.patch("/api/v1/settings", json!({
            "time_zone": "Europe/Atlantis", "opt_out_words": ["ok", ""], "theme": "dark"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        let text = refused.to_string();
        for field in ["time_zone", "opt_out_words[1]", "theme"] {
            assert!(text.contains(field), "{field} is named: {refused}");
        }
        let (_, unchanged) = app.get("/api/v1/settings").await;
        assert_eq!(unchanged["time_zone"], "UTC", "a refused change changes nothing");

        let (status, changed) = app.patch("/api/v1/settings", json!({
            "time_zone": "America/Sao_Paulo", "opt_out_words": ["Chega", "não quero mais", "chega"]})).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["time_zone"], "America/Sao_Paulo");
        assert_eq!(changed["opt_out_words"], json!(["Chega", "não quero mais"]));
        let (status, only_zone) = app.patch("/api/v1/settings", json!({"time_zone": "Asia/Kolkata"})).await;
        assert_eq!(status, StatusCode::OK, "{only_zone}");
        assert_eq!(only_zone["opt_out_words"], json!(["Chega", "não quero mais"]), "words left out are kept");
        let (_, read_back) = app.get("/api/v1/settings").await;
        assert_eq!(read_back["time_zone"], "Asia/Kolkata");

        // The tenant's own phrase opts out; the same words inside a longer message do not.
        let number = app.connect_number().await;
        app.customer_writes(&number, "5511987650001", "Não quero mais!").await;
        app.customer_writes(&number, "5511987650002", "eu não quero mais esperar").await;
        let (_, first) = app.get("/api/v1/contacts?search=5511987650001").await;
        assert_eq!(first["data"][0]["opt_in"], "opted_out", "{first}");
        let (_, second) = app.get("/api/v1/contacts?search=5511987650002").await;
        assert_eq!(second["data"][0]["opt_in"], "unknown", "{second}");

        // Another tenant's settings are its own.
        let (_, other_key) = app.other_tenant().await;
        let (status, theirs) = app.get_as(&other_key, "/api/v1/settings").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(theirs["time_zone"], "UTC");
        assert_eq!(theirs["opt_out_words"], json!([]));
    }
}
