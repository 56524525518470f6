//! `POST /{version}/{phone_number_id}/messages`: sends and mark-as-read, answered and refused as Meta does.

use anyhow::ensure;
use emulator::{CustomerMessage, PhoneNumberRegistration, PhoneNumberUpdate, WindowViolation};
use serde_json::{Value, json};

use crate::helpers::*;

const REENGAGEMENT_DETAILS: &str = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";

fn fixture(text: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(text)?)
}

/// Checks a 131047 answer.
fn window_closed(status: u16, body: &Value) -> anyhow::Result<()> {
    ensure!(status == 400, "HTTP {status}: {body}");
    let error = meta_error(body, 131047)?;
    ensure!(
        error["message"] == "(#131047) Re-engagement message",
        "{body}"
    );
    ensure!(
        error["error_data"]["details"] == REENGAGEMENT_DETAILS,
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_text_send_answers_a_wamid_and_is_recorded() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    customer_writes_now(&meta).await?;

    let request = text_to(&format!("+{CUSTOMER}"), "Your order has shipped");
    let (status, answer) = send(&meta, &request).await?;

    assert_eq!(status, 200, "{answer}");
    let wamid = answer["messages"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        wamid.starts_with("wamid.HBgLMTY1MDU1NTEyMzQVAgARGB"),
        "an outbound wamid for the customer: {wamid}"
    );
    // Shaped like Meta's example answer, key order included.
    let mut example = fixture(include_str!("fixtures/send_message_response.json"))?;
    example["messages"][0]["id"] = wamid.clone().into();
    assert_eq!(answer.to_string(), example.to_string());

    let sent = meta.sent_messages(Some(PHONE_NUMBER_ID));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].wamid, wamid);
    assert_eq!(sent[0].to, format!("+{CUSTOMER}"));
    assert_eq!(sent[0].wa_id, CUSTOMER);
    assert_eq!(sent[0].message_type, "text");
    assert_eq!(sent[0].request, request);
    assert!(meta.sent_messages(Some("200000000000001")).is_empty());

    let (status, listed) = get_json(&format!(
        "{}/admin/sent-messages?phone_number_id={PHONE_NUMBER_ID}",
        meta.base_url()
    ))
    .await?;
    assert_eq!(status, 200);
    assert_eq!(listed["data"][0]["wamid"], wamid.as_str());
    assert_eq!(listed["data"][0]["type"], "text");
    assert_eq!(listed["data"][0]["request"], request);
    ensure!(listed["data"][0]["received_at_ms"].is_u64(), "{listed}");
    Ok(())
}

/// The test number, refusing free-form sends outside the window at once.
fn rejecting(webhook_url: Option<String>) -> PhoneNumberRegistration {
    PhoneNumberRegistration {
        window_violation: WindowViolation::Reject,
        ..registration(webhook_url)
    }
}

#[tokio::test]
async fn in_reject_mode_outside_the_window_a_text_gets_400_131047_but_a_template_goes()
-> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(rejecting(None))?;

    // Never wrote.
    let (status, body) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    window_closed(status, &body)?;

    // Wrote 25 hours ago.
    let day_and_an_hour_ago = emulator::payloads::unix_now() - 25 * 60 * 60;
    meta.customer_writes(CustomerMessage {
        timestamp: Some(day_and_an_hour_ago),
        ..CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "old")
    })
    .await?;
    let (status, body) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    window_closed(status, &body)?;
    assert!(
        meta.sent_messages(None).is_empty(),
        "refused sends are not recorded"
    );

    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200, "{answer}");
    let mut example = fixture(include_str!(
        "fixtures/send_template_response_with_message_status.json"
    ))?;
    example["messages"][0]["id"] = answer["messages"][0]["id"].clone();
    assert_eq!(answer.to_string(), example.to_string());
    assert_eq!(meta.sent_messages(None).len(), 1);
    Ok(())
}

#[tokio::test]
async fn inside_the_window_after_the_customer_writes_a_text_goes() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(rejecting(None))?;
    let (status, body) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    window_closed(status, &body)?;

    customer_writes_now(&meta).await?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 200, "{answer}");

    // The window is per customer: another one still needs a template.
    let (status, body) = send(&meta, &text_to("447700900123", "hi")).await?;
    window_closed(status, &body)?;
    Ok(())
}

#[tokio::test]
async fn a_number_without_window_enforcement_sends_free_form_to_anyone() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        enforce_service_window: false,
        ..rejecting(None)
    })?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 200, "{answer}");

    meta.update_phone_number(
        PHONE_NUMBER_ID,
        PhoneNumberUpdate {
            enforce_service_window: Some(true),
            ..Default::default()
        },
    )?;
    let (status, body) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    window_closed(status, &body)
}

#[tokio::test]
async fn invalid_bodies_get_code_100_with_details() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    customer_writes_now(&meta).await?;
    let text = |body: Value| json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": body});
    let cases = [
        (
            json!({"to": CUSTOMER, "type": "text", "text": {"body": "hi"}}),
            "messaging_product",
        ),
        (
            json!({"messaging_product": "sms", "to": CUSTOMER, "type": "text", "text": {"body": "hi"}}),
            "messaging_product",
        ),
        (
            json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}),
            "to",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": "+1 650-555-1234", "type": "text", "text": {"body": "hi"}}),
            "Param to",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "fax", "fax": {}}),
            "Param type",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image"}),
            "image",
        ),
        (text(json!({"body": ""})), "text['body']"),
        (text(json!({"body": "x".repeat(4097)})), "4096"),
        (text(json!({"preview_url": true})), "body"),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image", "image": {"caption": "no source"}}),
            "'id' or 'link'",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template", "template": {"name": "", "language": {"code": "en_US"}}}),
            "template['name']",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (body, mention) in cases {
        let (status, answer) = send(&meta, &body).await?;
        ensure!(status == 400, "{body} -> HTTP {status}: {answer}");
        let error = meta_error(&answer, 100)?;
        ensure!(error["message"] == "(#100) Invalid parameter", "{answer}");
        ensure!(error["type"] == "OAuthException", "{answer}");
        ensure!(
            error["error_data"]["messaging_product"] == "whatsapp",
            "{answer}"
        );
        let details = error["error_data"]["details"].as_str().unwrap_or_default();
        ensure!(details.contains(mention), "{body} -> {details}");
    }
    assert!(meta.sent_messages(None).is_empty());
    Ok(())
}

fn reply_buttons(titles: &[&str]) -> Value {
    let buttons: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(n, title)| json!({"type": "reply", "reply": {"id": format!("button-{n}"), "title": title}}))
        .collect();
    json!({
        "messaging_product": "whatsapp", "to": CUSTOMER, "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": buttons}},
    })
}

fn list(sections: usize, rows_each: usize) -> Value {
    let sections: Vec<Value> = (0..sections)
        .map(|s| {
            let rows: Vec<Value> = (0..rows_each)
                .map(|r| json!({"id": format!("s{s}-r{r}"), "title": format!("Row {r}")}))
                .collect();
            json!({"title": format!("Section {s}"), "rows": rows})
        })
        .collect();
    json!({
        "messaging_product": "whatsapp", "to": CUSTOMER, "type": "interactive",
        "interactive": {"type": "list", "body": {"text": "Choose"}, "action": {"button": "Options", "sections": sections}},
    })
}

#[tokio::test]
async fn interactive_messages_over_the_limits_get_131009() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    customer_writes_now(&meta).await?;
    let cases = [
        (
            reply_buttons(&["A", "B", "C", "D"]),
            "Invalid buttons count",
        ),
        (
            reply_buttons(&["Twenty-one characters"]),
            "Button title length invalid",
        ),
        (list(11, 1), "Invalid sections count"),
        (list(1, 11), "Total row count exceed max allowed count: 10"),
        (list(2, 6), "Total row count"),
    ];
    for (body, mention) in cases {
        let (status, answer) = send(&meta, &body).await?;
        ensure!(status == 400, "HTTP {status}: {answer}");
        let error = meta_error(&answer, 131009)?;
        ensure!(
            error["message"] == "(#131009) Parameter value is not valid",
            "{answer}"
        );
        let details = error["error_data"]["details"].as_str().unwrap_or_default();
        ensure!(details.contains(mention), "{details}");
    }

    for body in [
        reply_buttons(&["A", "B", "Twenty characters!!!"]),
        list(10, 1),
        list(2, 5),
    ] {
        let (status, answer) = send(&meta, &body).await?;
        ensure!(status == 200, "within the limits: {answer}");
    }
    Ok(())
}

#[tokio::test]
async fn metas_example_send_requests_are_accepted() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    customer_writes_now(&meta).await?;
    // What the examples refer to: uploaded media and the template they send.
    seed_media(&meta, "1479537139650973", "image/jpeg")?;
    seed_media(&meta, "1013859600285441", "audio/ogg")?;
    seed_media(&meta, "2871834006348767", "image/jpeg")?;
    seed_media(&meta, "2762702990552401", "image/jpeg")?;
    seed_listed_template(&meta)?;
    let examples = [
        include_str!("fixtures/send_text_reply_context_request.json"),
        include_str!("fixtures/send_image_by_id_request.json"),
        include_str!("fixtures/send_audio_voice_request.json"),
        include_str!("fixtures/send_location_request.json"),
        include_str!("fixtures/send_contacts_request.json"),
        include_str!("fixtures/send_reaction_request.json"),
        include_str!("fixtures/send_interactive_reply_buttons_request.json"),
        include_str!("fixtures/send_interactive_list_request.json"),
        include_str!("fixtures/send_interactive_cta_url_request.json"),
        include_str!("fixtures/send_template_named_params_request.json"),
    ];
    for text in examples {
        let request = fixture(text)?;
        let (status, answer) = send(&meta, &request).await?;
        ensure!(status == 200, "{request} -> {answer}");
        ensure!(answer["contacts"][0]["wa_id"] == CUSTOMER, "{answer}");
    }
    let types: Vec<String> = meta
        .sent_messages(None)
        .into_iter()
        .map(|m| m.message_type)
        .collect();
    assert_eq!(
        types,
        [
            "text",
            "image",
            "audio",
            "location",
            "contacts",
            "reaction",
            "interactive",
            "interactive",
            "interactive",
            "template"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn mark_read_answers_success_and_is_recorded() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let first = customer_writes_now(&meta).await?;
    let second = customer_writes_now(&meta).await?;

    let (status, answer) = send(
        &meta,
        &json!({"messaging_product": "whatsapp", "status": "read", "message_id": first.wamid}),
    )
    .await?;
    assert_eq!((status, answer), (200, json!({"success": true})));
    let (status, answer) = send(
        &meta,
        &json!({
            "messaging_product": "whatsapp", "status": "read", "message_id": second.wamid,
            "typing_indicator": {"type": "text"},
        }),
    )
    .await?;
    assert_eq!((status, answer), (200, json!({"success": true})));

    let receipts = meta.read_receipts(Some(PHONE_NUMBER_ID));
    let seen: Vec<(&str, bool)> = receipts
        .iter()
        .map(|r| (r.wamid.as_str(), r.typing_indicator))
        .collect();
    assert_eq!(
        seen,
        [(first.wamid.as_str(), false), (second.wamid.as_str(), true)]
    );
    let (status, listed) = get_json(&format!("{}/admin/read-receipts", meta.base_url())).await?;
    assert_eq!(status, 200);
    assert_eq!(listed["data"][1]["typing_indicator"], true);
    assert!(
        meta.sent_messages(None).is_empty(),
        "mark-as-read is not a send"
    );
    Ok(())
}

#[tokio::test]
async fn marking_an_unknown_wamid_read_fails_with_code_100() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        ..registration(None)
    })?;
    let elsewhere = meta
        .customer_writes(CustomerMessage::text("200000000000001", CUSTOMER, "hi"))
        .await?;

    for wamid in [
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
        elsewhere.wamid.as_str(),
    ] {
        let (status, answer) = send(
            &meta,
            &json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid}),
        )
        .await?;
        assert_eq!(status, 400, "{answer}");
        let error = meta_error(&answer, 100)?;
        assert_eq!(error["message"], "(#100) Invalid parameter");
        ensure!(
            error["error_data"]["details"]
                .as_str()
                .is_some_and(|d| d.contains(wamid)),
            "{answer}"
        );
    }
    assert!(meta.read_receipts(None).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_raw_webhooks_messages_can_be_marked_read_and_open_the_window() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(rejecting(None))?;
    let mut webhook = example_text_webhook()?;
    let message = &mut webhook["entry"][0]["changes"][0]["value"]["messages"][0];
    message["timestamp"] = emulator::payloads::unix_now().to_string().into();
    let wamid = message["id"].as_str().unwrap_or_default().to_owned();
    let from = message["from"].as_str().unwrap_or_default().to_owned();
    meta.deliver_raw(PHONE_NUMBER_ID, webhook).await?;

    let (status, _) = send(
        &meta,
        &json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid}),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, answer) = send(&meta, &text_to(&from, "thanks")).await?;
    assert_eq!(status, 200, "{answer}");
    Ok(())
}

#[tokio::test]
async fn sends_need_the_numbers_own_token() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        access_token: "EAAother-tenant".into(),
        ..registration(None)
    })?;
    customer_writes_now(&meta).await?;
    let url = messages_url(&meta);
    let body = text_to(CUSTOMER, "hi");

    let (status, answer) = post_json(&url, None, &body).await?;
    assert_eq!(status, 401);
    meta_error(&answer, 190)?;
    let (status, answer) = post_json(&url, Some("EAAwrong"), &body).await?;
    assert_eq!(status, 401);
    meta_error(&answer, 190)?;
    let (status, answer) = post_json(&url, Some("EAAother-tenant"), &body).await?;
    assert_eq!(status, 400);
    let error = meta_error(&answer, 100)?;
    assert_eq!(error["error_subcode"], 33);
    ensure!(
        error["message"].as_str().is_some_and(
            |m| m.starts_with("Unsupported post request. Object with ID '106540352242922'")
        ),
        "{answer}"
    );
    let (status, answer) = post_json(
        &format!("{}/v24.0/999999999999999/messages", meta.base_url()),
        Some(ACCESS_TOKEN),
        &body,
    )
    .await?;
    assert_eq!(status, 400);
    meta_error(&answer, 100)?;
    assert!(meta.sent_messages(None).is_empty());
    Ok(())
}
