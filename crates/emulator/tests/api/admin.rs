//! The admin API: registration, customers, raw webhooks, deliveries, and clear errors for bad input.

use anyhow::ensure;
use serde_json::{Value, json};

use crate::helpers::*;

async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("not JSON ({e}): {text:?}"))?;
    Ok((status, body))
}

fn registration_json(webhook_url: Option<&str>) -> Value {
    json!({
        "phone_number_id": PHONE_NUMBER_ID,
        "waba_id": WABA_ID,
        "display_phone_number": DISPLAY_PHONE_NUMBER,
        "verified_name": "Acme Support",
        "access_token": ACCESS_TOKEN,
        "app_secret": APP_SECRET,
        "webhook_url": webhook_url,
    })
}

/// Checks the admin error shape and returns the error's message.
fn admin_error(body: &Value) -> anyhow::Result<String> {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    ensure!(
        !message.is_empty() && body["error"]["code"].is_string(),
        "not an admin error: {body}"
    );
    Ok(message.to_owned())
}

#[tokio::test]
async fn a_registered_number_is_shown_and_listed_without_its_secrets() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    let base = meta.base_url();

    let (status, created) = send(
        http()
            .post(format!("{base}/admin/phone-numbers"))
            .json(&registration_json(None)),
    )
    .await?;
    assert_eq!(status, 201);
    assert_eq!(
        created,
        json!({
            "phone_number_id": PHONE_NUMBER_ID,
            "waba_id": WABA_ID,
            "display_phone_number": DISPLAY_PHONE_NUMBER,
            "verified_name": "Acme Support",
            "quality_rating": "GREEN",
            "messaging_limit_tier": "TIER_1K",
            "webhook_url": null,
            "enforce_service_window": true,
            "window_violation": "failed_status",
            "auto_statuses": [],
            "auto_status_delay_ms": 50,
            "status_order": "in_order",
            "duplicate_statuses": 0,
            "enforce_throughput": true,
            "throughput_per_second": 80,
            "enforce_pair_rate": true,
            "pair_per_minute": 10,
            "pair_burst": 3,
            "template_categories": {},
            "token_expired": false,
            "media_url_ttl_ms": 300000,
            "accepted_sends": 0,
            "rejected_throughput": 0,
            "rejected_pair_rate": 0,
            "rejected_window": 0,
            "failed_window": 0,
        })
    );

    let (status, listed) = send(http().get(format!("{base}/admin/phone-numbers"))).await?;
    assert_eq!(status, 200);
    assert_eq!(listed, json!({ "data": [created] }));
    let text = listed.to_string();
    ensure!(
        !text.contains(ACCESS_TOKEN) && !text.contains(APP_SECRET),
        "{text}"
    );

    let (status, shown) =
        send(http().get(format!("{base}/admin/phone-numbers/{PHONE_NUMBER_ID}"))).await?;
    assert_eq!((status, shown), (200, created));
    Ok(())
}

#[tokio::test]
async fn a_registration_with_a_bad_field_is_refused_naming_the_field() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    let mut body = registration_json(Some("ftp://example.com/hook"));
    body["from_extra"] = json!(1);
    let (status, answer) = send(
        http()
            .post(format!("{}/admin/phone-numbers", meta.base_url()))
            .json(&body),
    )
    .await?;
    assert_eq!(status, 422, "unknown fields are refused: {answer}");
    ensure!(admin_error(&answer)?.contains("from_extra"), "{answer}");

    let body = registration_json(Some("ftp://example.com/hook"));
    let (status, answer) = send(
        http()
            .post(format!("{}/admin/phone-numbers", meta.base_url()))
            .json(&body),
    )
    .await?;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["field"], "webhook_url");
    ensure!(admin_error(&answer)?.contains("http://"), "{answer}");
    assert!(meta.phone_numbers().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_a_json_error() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    let url = format!("{}/admin/phone-numbers", meta.base_url());

    let (status, answer) = send(http().post(&url).body("phone_number_id=1")).await?;
    assert_eq!(status, 415);
    admin_error(&answer)?;

    let (status, answer) = send(
        http()
            .post(&url)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await?;
    assert_eq!(status, 400);
    admin_error(&answer)?;
    Ok(())
}

#[tokio::test]
async fn registering_the_same_number_twice_is_a_conflict() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    let url = format!("{}/admin/phone-numbers", meta.base_url());
    let (first, _) = send(http().post(&url).json(&registration_json(None))).await?;
    let (second, answer) = send(http().post(&url).json(&registration_json(None))).await?;
    assert_eq!((first, second), (201, 409));
    admin_error(&answer)?;
    Ok(())
}

#[tokio::test]
async fn patching_changes_only_the_given_fields() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some("http://127.0.0.1:9/hook".into())))?;
    let url = format!("{}/admin/phone-numbers/{PHONE_NUMBER_ID}", meta.base_url());

    let (status, patched) = send(
        http()
            .patch(&url)
            .json(&json!({"verified_name": "Renamed", "quality_rating": "yellow"})),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(patched["verified_name"], "Renamed");
    assert_eq!(patched["quality_rating"], "YELLOW");
    assert_eq!(patched["webhook_url"], "http://127.0.0.1:9/hook");

    let (status, patched) = send(http().patch(&url).json(&json!({"webhook_url": null}))).await?;
    assert_eq!(status, 200);
    assert_eq!(patched["webhook_url"], Value::Null);

    let (status, answer) = send(
        http()
            .patch(format!("{}/admin/phone-numbers/123", meta.base_url()))
            .json(&json!({"verified_name": "x"})),
    )
    .await?;
    assert_eq!(status, 404);
    admin_error(&answer)?;
    Ok(())
}

#[tokio::test]
async fn a_customer_message_through_the_admin_api_is_delivered_and_recorded() -> anyhow::Result<()>
{
    let receiver = Receiver::start([Answer::Status(500)]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;
    let base = meta.base_url();

    let (status, accepted) = send(
        http()
            .post(format!("{base}/admin/customers/messages"))
            .json(&json!({
                "phone_number_id": PHONE_NUMBER_ID,
                "from": CUSTOMER,
                "name": "Sheena Nelson",
                "type": "text",
                "text": {"body": "hi"},
                "context": {"from": DISPLAY_PHONE_NUMBER, "id": "wamid.earlier"},
            })),
    )
    .await?;
    assert_eq!(status, 202);
    let wamid = accepted["wamid"].as_str().unwrap_or_default().to_owned();
    ensure!(wamid.starts_with("wamid."), "{accepted}");
    let id = accepted["delivery_id"].as_u64().unwrap_or_default();

    meta.wait_delivered(emulator::DeliveryId(id), WAIT).await?;
    let (status, record) = send(http().get(format!("{base}/admin/deliveries/{id}"))).await?;
    assert_eq!(status, 200);
    assert_eq!(record["status"], "delivered");
    assert_eq!(record["phone_number_id"], PHONE_NUMBER_ID);
    assert_eq!(record["last_http_status"], 200);
    assert_eq!(record["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        record["attempts"][0]["outcome"],
        json!({"kind": "http", "status": 500})
    );
    let message = &record["body"]["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(message["id"], wamid.as_str());
    assert_eq!(message["context"]["id"], "wamid.earlier");
    assert_eq!(message["text"]["body"], "hi");

    let (status, list) =
        send(http().get(format!("{base}/admin/deliveries?status=delivered"))).await?;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    ensure!(
        list["data"][0].get("body").is_none(),
        "lists leave bodies out: {list}"
    );
    let (_, list) = send(http().get(format!("{base}/admin/deliveries?status=failed"))).await?;
    assert_eq!(list["data"], json!([]));
    Ok(())
}

#[tokio::test]
async fn bad_customer_messages_are_refused_saying_what_to_fix() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let url = format!("{}/admin/customers/messages", meta.base_url());
    let cases = [
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "from": CUSTOMER, "type": "text"}),
            400,
            "text",
        ),
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "from": "+1 650", "type": "text", "text": {"body": "x"}}),
            400,
            "from",
        ),
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "type": "text", "text": {"body": "x"}}),
            400,
            "from",
        ),
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "from": CUSTOMER, "type": "text", "text": {"body": "x"}, "bogus": 1}),
            400,
            "bogus",
        ),
        (
            json!({"phone_number_id": "777", "from": CUSTOMER, "type": "text", "text": {"body": "x"}}),
            404,
            "777",
        ),
    ];
    for (body, expected_status, mention) in cases {
        let (status, answer) = send(http().post(&url).json(&body)).await?;
        assert_eq!(status, expected_status, "{body} -> {answer}");
        ensure!(
            admin_error(&answer)?.contains(mention),
            "{body} -> {answer}"
        );
    }
    assert!(meta.deliveries().is_empty());
    Ok(())
}

#[tokio::test]
async fn raw_webhooks_need_a_known_number_and_a_body() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let url = format!("{}/admin/webhooks", meta.base_url());

    let (status, answer) = send(
        http()
            .post(&url)
            .json(&json!({"phone_number_id": PHONE_NUMBER_ID})),
    )
    .await?;
    assert_eq!(status, 422);
    ensure!(admin_error(&answer)?.contains("body"), "{answer}");

    let (status, answer) = send(
        http()
            .post(&url)
            .json(&json!({"phone_number_id": "1", "body": {}})),
    )
    .await?;
    assert_eq!(status, 404);
    admin_error(&answer)?;

    let (status, answer) = send(
        http()
            .post(&url)
            .json(&json!({"phone_number_id": PHONE_NUMBER_ID, "body": {}})),
    )
    .await?;
    assert_eq!(status, 202);
    let (status, record) = send(http().get(format!(
        "{}/admin/deliveries/{}",
        meta.base_url(),
        answer["delivery_id"]
    )))
    .await?;
    assert_eq!(status, 200);
    assert_eq!(record["status"], "awaiting_webhook_url");
    Ok(())
}

#[tokio::test]
async fn unknown_deliveries_and_admin_paths_answer_json_errors() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    let base = meta.base_url();
    for (request, expected) in [
        (http().get(format!("{base}/admin/deliveries/42")), 404),
        (http().get(format!("{base}/admin/deliveries/abc")), 400),
        (
            http().get(format!("{base}/admin/deliveries?status=lost")),
            400,
        ),
        (http().get(format!("{base}/admin/nothing-here")), 404),
        (http().get(format!("{base}/admin")), 404),
        (
            http().get(format!("{base}/admin/phone-numbers/1/extra")),
            404,
        ),
        (http().delete(format!("{base}/admin/phone-numbers")), 405),
    ] {
        let (status, answer) = send(request).await?;
        assert_eq!(status, expected, "{answer}");
        admin_error(&answer)?;
    }
    Ok(())
}
