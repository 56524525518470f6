//! The business profile and the messaging limit tier: reads, partial updates, Meta's limits (100
//! naming the field), the token check, faults, and wagate's client against them.

use anyhow::{Context, ensure};
use cloudapi::business_profile::{BusinessProfileUpdate, Vertical};
use cloudapi::phone_number::MESSAGING_LIMIT_FIELD;
use emulator::{BusinessProfile, FaultKind, FaultSpec, GraphEndpoint, RunningEmulator};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

fn profile_url(meta: &RunningEmulator) -> String {
    format!(
        "{}/v24.0/{PHONE_NUMBER_ID}/whatsapp_business_profile",
        meta.base_url()
    )
}

async fn get_with(url: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let mut request = http().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// The one element of a profile read's `data`, checked to be the only one.
async fn read_profile(meta: &RunningEmulator, query: &str) -> anyhow::Result<Value> {
    let (status, body) =
        get_with(&format!("{}{query}", profile_url(meta)), Some(ACCESS_TOKEN)).await?;
    ensure!(status == 200, "HTTP {status}: {body}");
    let data = body["data"].as_array().context("no data list")?;
    ensure!(data.len() == 1, "one profile expected: {body}");
    Ok(data[0].clone())
}

async fn update(meta: &RunningEmulator, body: &Value) -> anyhow::Result<(u16, Value)> {
    post_json(&profile_url(meta), Some(ACCESS_TOKEN), body).await
}

async fn ready_emulator() -> anyhow::Result<RunningEmulator> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    Ok(meta)
}

#[tokio::test]
async fn an_update_then_a_read_answers_the_fields() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    assert_eq!(
        read_profile(&meta, "").await?,
        json!({"messaging_product": "whatsapp"}),
        "a new number's profile is empty"
    );

    let (status, body) = update(
        &meta,
        &json!({
            "messaging_product": "whatsapp",
            "about": "Welcome to our business! We provide excellent service.",
            "address": "123 Business Street, City, State 12345",
            "description": "We are a leading provider of quality products and services.",
            "email": "contact@business.com",
            "profile_picture_handle": "4:VGVzdC5wbmc=:aW1hZ2UvanBlZw==:ARat4Mt",
            "websites": ["https://www.business.com", "https://www.facebook.com/business"],
            "vertical": "RESTAURANT"
        }),
    )
    .await?;
    assert_eq!((status, body), (200, json!({"success": true})));

    let shown = read_profile(
        &meta,
        "?fields=about,address,description,email,profile_picture_url,websites,vertical",
    )
    .await?;
    assert_eq!(
        shown["about"],
        "Welcome to our business! We provide excellent service."
    );
    assert_eq!(shown["address"], "123 Business Street, City, State 12345");
    assert_eq!(
        shown["description"],
        "We are a leading provider of quality products and services."
    );
    assert_eq!(shown["email"], "contact@business.com");
    assert_eq!(
        shown["websites"],
        json!([
            "https://www.business.com",
            "https://www.facebook.com/business"
        ])
    );
    assert_eq!(shown["vertical"], "RESTAURANT");
    assert_eq!(shown["messaging_product"], "whatsapp");
    let picture = shown["profile_picture_url"]
        .as_str()
        .context("no picture URL")?;
    ensure!(
        picture.starts_with(&format!("{}/", meta.base_url())),
        "{picture}"
    );

    let held = meta
        .business_profile(PHONE_NUMBER_ID)
        .context("registered")?;
    assert_eq!(held.email.as_deref(), Some("contact@business.com"));
    assert_eq!(held.profile_picture_url.as_deref(), Some(picture));

    let some = read_profile(&meta, "?fields=vertical,email").await?;
    assert_eq!(
        some,
        json!({"vertical": "RESTAURANT", "email": "contact@business.com", "messaging_product": "whatsapp"})
    );
    Ok(())
}

#[tokio::test]
async fn only_the_given_fields_change() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    meta.set_business_profile(
        PHONE_NUMBER_ID,
        BusinessProfile {
            about: Some("Open 9 to 5".into()),
            address: Some("1 Main St".into()),
            websites: vec!["https://acme.example".into()],
            vertical: Some("RETAIL".into()),
            ..Default::default()
        },
    )?;

    let (status, body) = update(
        &meta,
        &json!({"messaging_product": "whatsapp", "about": "Open late", "address": ""}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");

    assert_eq!(
        read_profile(&meta, "").await?,
        json!({
            "about": "Open late",
            "websites": ["https://acme.example"],
            "vertical": "RETAIL",
            "messaging_product": "whatsapp"
        }),
        "the address is cleared, the rest kept"
    );
    let held = meta
        .business_profile(PHONE_NUMBER_ID)
        .context("registered")?;
    assert_eq!(held.address, None);
    assert_eq!(held.vertical.as_deref(), Some("RETAIL"));
    Ok(())
}

#[tokio::test]
async fn each_limit_answers_100_naming_the_field() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let cases = [
        ("about", json!({"about": "a".repeat(140)})),
        (
            "websites",
            json!({"websites": ["https://a.example", "https://b.example", "https://c.example"]}),
        ),
        ("vertical", json!({"vertical": "BAKERY"})),
        ("email", json!({"email": "contact-at-business.com"})),
        ("address", json!({"address": "a".repeat(257)})),
        ("description", json!({"description": "a".repeat(513)})),
        ("websites[0]", json!({"websites": ["www.business.com"]})),
    ];
    for (field, mut body) in cases {
        body["messaging_product"] = "whatsapp".into();
        let (status, answer) = update(&meta, &body).await?;
        assert_eq!(status, 400, "{field}: {answer}");
        let details = meta_error(&answer, 100)?["error_data"]["details"]
            .as_str()
            .context("no details")?;
        ensure!(
            details.contains(&format!("Param {field} ")),
            "{field}: {details}"
        );
    }
    for product in [json!("sms"), Value::Null] {
        let mut body = json!({"about": "Hi"});
        if !product.is_null() {
            body["messaging_product"] = product;
        }
        let (status, answer) = update(&meta, &body).await?;
        assert_eq!(status, 400, "{answer}");
        let details = meta_error(&answer, 100)?["error_data"]["details"]
            .as_str()
            .context("no details")?;
        ensure!(details.contains("messaging_product"), "{details}");
    }
    assert_eq!(
        meta.business_profile(PHONE_NUMBER_ID),
        Some(BusinessProfile::default()),
        "a refused update changes nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_answers_190() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;

    let (status, body) = get_with(&profile_url(&meta), Some("EAAwrong")).await?;
    assert_eq!(status, 401);
    meta_error(&body, 190)?;
    let (status, body) = post_json(
        &profile_url(&meta),
        Some("EAAwrong"),
        &json!({"messaging_product": "whatsapp", "about": "Hijacked"}),
    )
    .await?;
    assert_eq!(status, 401);
    meta_error(&body, 190)?;
    let (status, body) = get_with(&profile_url(&meta), None).await?;
    assert_eq!(status, 401);
    meta_error(&body, 190)?;

    assert_eq!(
        meta.business_profile(PHONE_NUMBER_ID),
        Some(BusinessProfile::default())
    );
    Ok(())
}

#[tokio::test]
async fn profile_calls_are_phone_number_calls_for_faults_and_the_call_log() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    meta.add_fault(FaultSpec {
        phone_number_id: Some(PHONE_NUMBER_ID.into()),
        endpoint: Some(GraphEndpoint::PhoneNumber),
        ..FaultSpec::kind(FaultKind::ServiceUnavailable)
    })?;

    let (status, _) = update(
        &meta,
        &json!({"messaging_product": "whatsapp", "about": "Hi"}),
    )
    .await?;
    assert_eq!(status, 503, "the fault answers the update");
    assert_eq!(
        meta.business_profile(PHONE_NUMBER_ID),
        Some(BusinessProfile::default())
    );
    read_profile(&meta, "").await?;

    let calls = meta.calls(Some(PHONE_NUMBER_ID), Some(GraphEndpoint::PhoneNumber));
    let statuses: Vec<Option<u16>> = calls.iter().map(|c| c.http_status).collect();
    assert_eq!(statuses, vec![Some(503), Some(200)]);
    Ok(())
}

#[tokio::test]
async fn the_phone_number_answers_its_messaging_limit_tier_and_an_update_changes_it()
-> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let url = format!(
        "{}/v24.0/{PHONE_NUMBER_ID}?fields=whatsapp_business_manager_messaging_limit,quality_rating",
        meta.base_url()
    );

    let (status, body) = get_with(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"whatsapp_business_manager_messaging_limit": "TIER_1K", "quality_rating": "GREEN", "id": PHONE_NUMBER_ID})
    );

    let (status, patched) =
        patch_number(&meta, &json!({"messaging_limit_tier": "TIER_10K"})).await?;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["messaging_limit_tier"], "TIER_10K");
    let (_, body) = get_with(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(
        body["whatsapp_business_manager_messaging_limit"],
        "TIER_10K"
    );

    let (status, refused) =
        patch_number(&meta, &json!({"messaging_limit_tier": "TIER_3K"})).await?;
    assert_eq!(status, 400, "{refused}");
    let (_, body) = get_with(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(
        body["whatsapp_business_manager_messaging_limit"],
        "TIER_10K"
    );

    let (_, default_fields) = get_with(
        &format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()),
        Some(ACCESS_TOKEN),
    )
    .await?;
    ensure!(
        default_fields
            .get("whatsapp_business_manager_messaging_limit")
            .is_none(),
        "as with Meta, only a read that names it gets it: {default_fields}"
    );
    Ok(())
}

#[tokio::test]
async fn wagates_client_round_trips_the_profile_and_reads_the_tier() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let client = cloudapi::GraphClient::new(cloudapi::GraphConfig {
        base_url: reqwest::Url::parse(&meta.base_url())?,
        ..Default::default()
    })?;
    let token = SecretString::from(ACCESS_TOKEN);

    client
        .update_business_profile(
            &token,
            PHONE_NUMBER_ID,
            &BusinessProfileUpdate {
                about: Some("Open late".into()),
                email: Some("hello@acme.example".into()),
                vertical: Some(Vertical::Grocery),
                ..Default::default()
            },
        )
        .await?;
    let profile = client.get_business_profile(&token, PHONE_NUMBER_ID).await?;
    assert_eq!(profile.about.as_deref(), Some("Open late"));
    assert_eq!(profile.email.as_deref(), Some("hello@acme.example"));
    assert_eq!(profile.vertical, Some(Vertical::Grocery));
    assert_eq!(profile.websites, None);

    let refused = client
        .update_business_profile(
            &token,
            PHONE_NUMBER_ID,
            &BusinessProfileUpdate {
                about: Some("a".repeat(140)),
                ..Default::default()
            },
        )
        .await;
    let code = refused.err().and_then(|e| e.meta_error().map(|m| m.code));
    assert_eq!(code, Some(100));

    let number = client
        .get_phone_number_fields(&token, PHONE_NUMBER_ID, &[MESSAGING_LIMIT_FIELD])
        .await?;
    assert_eq!(
        number.whatsapp_business_manager_messaging_limit.as_deref(),
        Some("TIER_1K")
    );
    Ok(())
}
