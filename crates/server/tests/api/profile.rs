//! The business profile: read from and written to Meta (the emulator) through the connection's
//! token, with the number's quality rating and messaging limit tier.

use emulator::PhoneNumberUpdate;
use reqwest::StatusCode;
use serde_json::json;

on_both_databases! {
    async fn the_business_profile_is_read_and_changed_at_meta_with_the_numbers_tier(app) {
        let number = app.connect_number().await;
        let id = number.id().to_owned();
        let path = format!("/api/v1/connections/{id}/profile");
        let (status, empty) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{empty}");
        assert_eq!(empty["connection_id"], json!(id));
        assert_eq!(empty["about"], json!(null));
        assert_eq!(empty["websites"], json!([]));
        assert_eq!(empty["quality_rating"], "GREEN");
        assert_eq!(empty["messaging_limit_tier"], "TIER_1K");

        let (status, changed) = app.patch(&path, json!({
            "about": "Fresh bread every morning", "email": "hello@bakery.example",
            "websites": ["https://bakery.example", "https://bakery.example/menu"],
            "vertical": "RESTAURANT", "address": "1 Baker Street"})).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["about"], "Fresh bread every morning");
        assert_eq!(changed["vertical"], "RESTAURANT");
        assert_eq!(changed["websites"], json!(["https://bakery.example", "https://bakery.example/menu"]));
        let at_meta = app.emulator.business_profile(&number.phone_number_id).expect("Meta has the profile");
        assert_eq!(at_meta.about.as_deref(), Some("Fresh bread every morning"));
        assert_eq!(at_meta.email.as_deref(), Some("hello@bakery.example"));

        // Only what is given changes; null clears the address.
        let (status, partly) = app.patch(&path, json!({"description": "Since 1921", "address": null})).await;
        assert_eq!(status, StatusCode::OK, "{partly}");
        assert_eq!(partly["about"], "Fresh bread every morning");
        assert_eq!(partly["description"], "Since 1921");
        assert_eq!(partly["address"], json!(null), "{partly}");

        // Meta's limits are named before anything is sent; Meta's copy is unchanged.
        let (status, refused) = app.patch(&path, json!({
            "about": "x".repeat(140), "websites": ["https://a.example", "https://b.example", "https://c.example"],
            "vertical": "SPACESHIPS", "email": "nope"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        let text = refused.to_string();
        for field in ["about", "websites", "vertical", "email"] {
            assert!(text.contains(field), "{field} is named: {refused}");
        }
        let at_meta = app.emulator.business_profile(&number.phone_number_id).unwrap();
        assert_eq!(at_meta.about.as_deref(), Some("Fresh bread every morning"));

        // Meta raises the number's tier and lowers its quality: the profile page shows it.
        app.emulator.update_phone_number(&number.phone_number_id, PhoneNumberUpdate {
            messaging_limit_tier: Some("TIER_10K".into()),
            quality_rating: Some("YELLOW".into()),
            ..Default::default()
        }).unwrap();
        let (_, now) = app.get(&path).await;
        assert_eq!(now["messaging_limit_tier"], "TIER_10K");
        assert_eq!(now["quality_rating"], "YELLOW");

        // A disconnected number has no profile to show.
        let (status, _) = app.delete(&format!("/api/v1/connections/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, gone) = app.get(&path).await;
        assert_eq!(status, StatusCode::CONFLICT, "{gone}");
        assert_eq!(gone["error"]["code"], "connection_disconnected");
    }
}
