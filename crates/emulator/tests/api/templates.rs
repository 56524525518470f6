//! Templates: listed with Meta's paging, created and reviewed with their webhooks, and checked at
//! send time as Meta checks them.

use anyhow::{Context, ensure};
use cloudapi::webhook::ChangeValue;
use emulator::{
    PhoneNumberRegistration, QualityScore, ReviewDecision, ReviewPolicy, TemplateCategory,
    TemplateReview, TemplateSeed, TemplateStatus,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

fn templates_url(meta: &emulator::RunningEmulator) -> String {
    format!("{}/v24.0/{WABA_ID}/message_templates", meta.base_url())
}

async fn get_with_token(url: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let mut request = http().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// Meta's create example, as a positional template without a media header, under `name`.
fn create_body(name: &str) -> Value {
    json!({
        "name": name,
        "language": "en_US",
        "category": "utility",
        "components": [
            {"type": "body", "text": "Your order {{1}} ships on {{2}}.", "example": {"body_text": [["A1", "Monday"]]}},
            {"type": "footer", "text": "Lucky Shrub"},
        ],
    })
}

/// The value of the one template webhook among those received, checked for its signature.
fn template_change(received: &[Received], field: &str) -> anyhow::Result<Value> {
    for webhook in received {
        let signature = header(&webhook.headers, "x-hub-signature-256")?;
        ensure!(
            cloudapi::signature::verify(
                APP_SECRET.as_bytes(),
                &webhook.body,
                Some(signature.as_bytes())
            )
            .is_ok(),
            "the signature does not verify"
        );
        let body: Value = serde_json::from_slice(&webhook.body)?;
        let change = &body["entry"][0]["changes"][0];
        if change["field"] == field {
            return Ok(body);
        }
    }
    anyhow::bail!("no {field} webhook among {} received", received.len())
}

#[tokio::test]
async fn a_new_account_has_metas_approved_hello_world_sample() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        ..registration(None)
    })?;

    let templates = meta.templates(WABA_ID);
    assert_eq!(templates.len(), 1, "one sample per account: {templates:?}");
    let sample = &templates[0];
    assert_eq!(
        (sample.name.as_str(), sample.language.as_str()),
        ("hello_world", "en_US")
    );
    assert_eq!(sample.status, TemplateStatus::Approved);
    assert_eq!(sample.category, TemplateCategory::Utility);
    assert_eq!(sample.rejected_reason, "NONE");

    let (status, listed) = get_with_token(&templates_url(&meta), Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200, "{listed}");
    let item = &listed["data"][0];
    let keys: Vec<&str> = item
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "name",
            "parameter_format",
            "components",
            "language",
            "status",
            "category",
            "quality_score",
            "rejected_reason",
            "id"
        ]
    );
    assert_eq!(item["parameter_format"], "POSITIONAL");
    assert_eq!(
        item["components"],
        json!([
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."},
            {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
        ])
    );
    ensure!(item["quality_score"]["date"].is_i64(), "{item}");
    assert_eq!(item["quality_score"]["score"], "UNKNOWN");
    ensure!(
        item["id"]
            .as_str()
            .is_some_and(|id| id.len() >= 15 && id.bytes().all(|b| b.is_ascii_digit())),
        "{item}"
    );
    ensure!(listed["paging"].get("next").is_none(), "{listed}");
    Ok(())
}

#[tokio::test]
async fn paging_across_three_pages_returns_every_template_once_and_the_last_page_has_no_next()
-> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    for n in 0..6 {
        seed_template(&meta, &format!("reminder_{n}"), "MARKETING")?;
    }
    // hello_world and six more: pages of 3, 3 and 1.
    let mut url = format!("{}?limit=3", templates_url(&meta));
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page) = get_with_token(&url, Some(ACCESS_TOKEN)).await?;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["data"].as_array().context("data is a list")? {
            names.push(item["name"].as_str().unwrap_or_default().to_owned());
        }
        ensure!(page["paging"]["cursors"]["after"].is_string(), "{page}");
        ensure!(
            (pages > 1) == page["paging"].get("previous").is_some(),
            "previous on every page but the first: {page}"
        );
        match page["paging"].get("next").and_then(Value::as_str) {
            Some(next) => {
                ensure!(
                    next.starts_with(&meta.base_url()),
                    "an absolute URL: {next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
        ensure!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    let mut expected = vec!["hello_world".to_owned()];
    expected.extend((0..6).map(|n| format!("reminder_{n}")));
    assert_eq!(names, expected, "every template once, in creation order");

    // wagate's client follows the cursors to the same list.
    let client = cloudapi::GraphClient::new(cloudapi::GraphConfig {
        base_url: reqwest::Url::parse(&meta.base_url())?,
        ..Default::default()
    })?;
    let all = client
        .list_all_templates(&SecretString::from(ACCESS_TOKEN), WABA_ID, 2)
        .await?;
    let listed: Vec<String> = all.into_iter().map(|t| t.name).collect();
    assert_eq!(listed, expected);
    Ok(())
}

#[tokio::test]
async fn a_previous_link_leads_back_to_the_page_before() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    for n in 0..4 {
        seed_template(&meta, &format!("notice_{n}"), "UTILITY")?;
    }
    let first_url = format!("{}?limit=2", templates_url(&meta));
    let (_, first) = get_with_token(&first_url, Some(ACCESS_TOKEN)).await?;
    let next = first["paging"]["next"].as_str().context("a next page")?;
    let (_, second) = get_with_token(next, Some(ACCESS_TOKEN)).await?;
    let previous = second["paging"]["previous"]
        .as_str()
        .context("a previous page")?;
    let (_, back) = get_with_token(previous, Some(ACCESS_TOKEN)).await?;
    assert_eq!(back["data"], first["data"]);
    Ok(())
}

#[tokio::test]
async fn fields_trim_each_template_to_those_fields_and_its_id() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let url = format!(
        "{}?fields=name,status,category,not_a_field",
        templates_url(&meta)
    );
    let (status, listed) = get_with_token(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200, "{listed}");
    let id = meta.templates(WABA_ID)[0].id.clone();
    assert_eq!(
        listed["data"][0].to_string(),
        json!({"name": "hello_world", "status": "APPROVED", "category": "UTILITY", "id": id})
            .to_string()
    );
    Ok(())
}

#[tokio::test]
async fn filters_pick_templates_by_name_status_category_and_language() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    seed_template(&meta, "order_shipped", "UTILITY")?;
    seed_template(&meta, "spring_sale", "MARKETING")?;
    meta.add_template(TemplateSeed {
        status: "PAUSED".into(),
        language: "he".into(),
        ..spring_sale_in("he")
    })?;
    let names = |listed: &Value| -> Vec<String> {
        listed["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|t| {
                        format!(
                            "{}/{}",
                            t["name"].as_str().unwrap_or_default(),
                            t["language"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for (query, expected) in [
        ("name=SALE", vec!["spring_sale/en_US", "spring_sale/he"]),
        ("status=paused", vec!["spring_sale/he"]),
        (
            "category=utility",
            vec!["hello_world/en_US", "order_shipped/en_US"],
        ),
        ("language=he", vec!["spring_sale/he"]),
        (
            "category=MARKETING&status=APPROVED",
            vec!["spring_sale/en_US"],
        ),
    ] {
        let url = format!("{}?{query}&fields=name,language", templates_url(&meta));
        let (status, listed) = get_with_token(&url, Some(ACCESS_TOKEN)).await?;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(names(&listed), expected, "{query}");
    }
    Ok(())
}

fn spring_sale_in(language: &str) -> TemplateSeed {
    TemplateSeed {
        waba_id: WABA_ID.into(),
        name: "spring_sale".into(),
        language: language.into(),
        category: "MARKETING".into(),
        components: vec![json!({"type": "BODY", "text": "Sale!"})],
        ..Default::default()
    }
}

#[tokio::test]
async fn listing_needs_a_token_of_the_account_and_a_valid_cursor() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        waba_id: "300000000000001".into(),
        access_token: "EAAother-account".into(),
        ..registration(None)
    })?;
    let url = templates_url(&meta);

    let (status, body) = get_with_token(&url, None).await?;
    assert_eq!(status, 401);
    meta_error(&body, 190)?;
    let (status, body) = get_with_token(&url, Some("EAAwrong")).await?;
    assert_eq!(status, 401);
    meta_error(&body, 190)?;
    let (status, body) = get_with_token(&url, Some("EAAother-account")).await?;
    assert_eq!(status, 400);
    assert_eq!(meta_error(&body, 100)?["error_subcode"], 33);

    for bad in ["after=nonsense", "before=bm9wZQ", "limit=zero"] {
        let (status, body) = get_with_token(&format!("{url}?{bad}"), Some(ACCESS_TOKEN)).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        meta_error(&body, 100)?;
    }
    Ok(())
}

#[tokio::test]
async fn a_created_template_is_pending_until_approved_and_the_approval_arrives_as_a_signed_webhook()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    let (status, created) = post_json(
        &templates_url(&meta),
        Some(ACCESS_TOKEN),
        &create_body("order_update"),
    )
    .await?;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().context("an id")?.to_owned();
    assert_eq!(
        created.to_string(),
        json!({"id": id, "status": "PENDING", "category": "UTILITY"}).to_string(),
        "shaped like Meta's create answer"
    );
    let stored = meta.template(&id).context("stored")?;
    assert_eq!(stored.status, TemplateStatus::Pending);
    assert_eq!(
        stored.components[0]["type"], "BODY",
        "normalised to upper case"
    );
    // Pending templates cannot be sent.
    let mut request = template_to(CUSTOMER);
    request["template"]["name"] = "order_update".into();
    let (status, answer) = send(&meta, &request).await?;
    assert_eq!(status, 400);
    meta_error(&answer, 132001)?;

    let (status, reviewed) = post_json(
        &format!("{}/admin/templates/{id}/review", meta.base_url()),
        None,
        &json!({"status": "APPROVED"}),
    )
    .await?;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(reviewed["status"], "APPROVED");

    let received = receiver.wait_for(1).await?;
    let mut webhook = template_change(&received, "message_template_status_update")?;
    let time = webhook["entry"][0]["time"].take();
    ensure!(time.is_i64(), "{webhook}");
    let mut example: Value = serde_json::from_str(include_str!(
        "fixtures/webhook_template_status_update_approved.json"
    ))?;
    example["entry"][0]["id"] = WABA_ID.into();
    example["entry"][0]["time"] = Value::Null;
    webhook["entry"][0]["time"] = Value::Null;
    let value = &mut example["entry"][0]["changes"][0]["value"];
    value["message_template_id"] = id.parse::<u64>()?.into();
    value["message_template_name"] = "order_update".into();
    value["message_template_language"] = "en_US".into();
    // Compared as text, so key order counts too.
    assert_eq!(webhook.to_string(), example.to_string());

    let parsed = cloudapi::Notification::from_value(webhook)?;
    let values: Vec<&ChangeValue> = parsed.changes().map(|(_, change)| &change.value).collect();
    let [ChangeValue::TemplateStatus(update)] = values.as_slice() else {
        anyhow::bail!("wagate's parser reads one template status update: {values:?}");
    };
    assert_eq!(update.event, "APPROVED");
    request["template"]["components"] = json!([{"type": "body", "parameters": [
        {"type": "text", "text": "A1"}, {"type": "text", "text": "Monday"},
    ]}]);
    let (status, answer) = send(&meta, &request).await?;
    assert_eq!(status, 200, "approved templates can be sent: {answer}");
    let sent = meta.sent_messages(None);
    assert_eq!(sent.last().and_then(|m| m.template_id.clone()), Some(id));
    Ok(())
}

#[tokio::test]
async fn a_rejection_carries_its_reason_and_rejection_info() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;
    let (_, created) = post_json(
        &templates_url(&meta),
        Some(ACCESS_TOKEN),
        &create_body("abandoned_cart"),
    )
    .await?;
    let id = created["id"].as_str().context("an id")?.to_owned();

    let view = meta.review_template(&id, TemplateReview::reject("INVALID_FORMAT"))?;
    assert_eq!(view.status, TemplateStatus::Rejected);
    assert_eq!(view.rejected_reason, "INVALID_FORMAT");

    let received = receiver.wait_for(1).await?;
    let webhook = template_change(&received, "message_template_status_update")?;
    let value = &webhook["entry"][0]["changes"][0]["value"];
    let example: Value = serde_json::from_str(include_str!(
        "fixtures/webhook_template_status_update_rejected.json"
    ))?;
    let expected = &example["entry"][0]["changes"][0]["value"];
    assert_eq!(value["event"], "REJECTED");
    assert_eq!(value["reason"], "INVALID_FORMAT");
    assert_eq!(value["message_template_category"], "UTILITY");
    assert_eq!(value["rejection_info"], expected["rejection_info"]);
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(value), keys(expected), "Meta's keys in Meta's order");

    let (_, listed) = get_with_token(
        &format!(
            "{}?status=REJECTED&fields=name,rejected_reason",
            templates_url(&meta)
        ),
        Some(ACCESS_TOKEN),
    )
    .await?;
    assert_eq!(listed["data"][0]["rejected_reason"], "INVALID_FORMAT");
    Ok(())
}

#[tokio::test]
async fn an_account_policy_can_approve_or_reject_submissions_by_itself_after_a_delay()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;
    meta.set_template_review(
        WABA_ID,
        ReviewPolicy {
            decision: ReviewDecision::Approve,
            delay_ms: 50,
            reason: None,
        },
    )?;
    let (_, created) = post_json(
        &templates_url(&meta),
        Some(ACCESS_TOKEN),
        &create_body("auto_ok"),
    )
    .await?;
    assert_eq!(
        created["status"], "PENDING",
        "Meta answers before it reviews"
    );
    let id = created["id"].as_str().context("an id")?.to_owned();
    let received = receiver.wait_for(1).await?;
    let webhook = template_change(&received, "message_template_status_update")?;
    assert_eq!(
        webhook["entry"][0]["changes"][0]["value"]["event"],
        "APPROVED"
    );
    assert_eq!(
        meta.template(&id).map(|t| t.status),
        Some(TemplateStatus::Approved)
    );

    let client = http();
    let response = client
        .put(format!(
            "{}/admin/wabas/{WABA_ID}/template-review",
            meta.base_url()
        ))
        .json(&json!({"decision": "reject", "reason": "SCAM"}))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let policy: Value = response.json().await?;
    assert_eq!(
        policy,
        json!({"waba_id": WABA_ID, "decision": "reject", "delay_ms": 0, "reason": "SCAM"})
    );
    let (_, created) = post_json(
        &templates_url(&meta),
        Some(ACCESS_TOKEN),
        &create_body("auto_no"),
    )
    .await?;
    let id = created["id"].as_str().context("an id")?.to_owned();
    let received = receiver.wait_for(2).await?;
    let webhook = template_change(&received[1..], "message_template_status_update")?;
    assert_eq!(webhook["entry"][0]["changes"][0]["value"]["reason"], "SCAM");
    assert_eq!(
        meta.template(&id).map(|t| t.rejected_reason),
        Some("SCAM".into())
    );
    Ok(())
}

#[tokio::test]
async fn a_duplicate_name_and_language_is_refused_with_subcode_2388024() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let body = create_body("order_update");
    let (status, _) = post_json(&templates_url(&meta), Some(ACCESS_TOKEN), &body).await?;
    assert_eq!(status, 200);

    let (status, answer) = post_json(&templates_url(&meta), Some(ACCESS_TOKEN), &body).await?;
    assert_eq!(status, 400, "{answer}");
    let error = meta_error(&answer, 100)?;
    assert_eq!(error["error_subcode"], 2_388_024);
    assert_eq!(error["error_user_title"], "Message template already exists");

    let mut other_language = body.clone();
    other_language["language"] = "es".into();
    let (status, answer) =
        post_json(&templates_url(&meta), Some(ACCESS_TOKEN), &other_language).await?;
    assert_eq!(
        status, 200,
        "another language is another template: {answer}"
    );
    assert_eq!(meta.templates(WABA_ID).len(), 3);
    Ok(())
}

#[tokio::test]
async fn a_create_body_meta_refuses_gets_code_100_naming_the_field() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let patch = |key: &str, value: Value| {
        let mut body = create_body("order_update");
        body[key] = value;
        body
    };
    for (body, mention) in [
        (patch("name", "Order Update".into()), "name"),
        (patch("category", "service".into()), "category"),
        (
            patch(
                "components",
                json!([{"type": "FOOTER", "text": "only a footer"}]),
            ),
            "BODY",
        ),
        (json!("not an object"), "JSON object"),
    ] {
        let (status, answer) = post_json(&templates_url(&meta), Some(ACCESS_TOKEN), &body).await?;
        assert_eq!(status, 400, "{answer}");
        let error = meta_error(&answer, 100)?;
        let details = error["error_data"]["details"].as_str().unwrap_or_default();
        ensure!(details.contains(mention), "{body} -> {details}");
    }
    assert_eq!(meta.templates(WABA_ID).len(), 1, "only the sample");
    Ok(())
}

#[tokio::test]
async fn wagates_client_creates_a_template_as_meta_answers() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let client = cloudapi::GraphClient::new(cloudapi::GraphConfig {
        base_url: reqwest::Url::parse(&meta.base_url())?,
        ..Default::default()
    })?;
    let request: cloudapi::templates::TemplateCreateRequest =
        serde_json::from_str(include_str!("fixtures/template_create_request.json"))?;
    let created = client
        .create_template(&SecretString::from(ACCESS_TOKEN), WABA_ID, &request)
        .await?;
    assert_eq!(created.status.as_deref(), Some("PENDING"));
    assert_eq!(created.category.as_deref(), Some("UTILITY"));
    let stored = meta.template(&created.id).context("stored")?;
    assert_eq!(stored.name, "reservation_confirmation");
    assert_eq!(stored.components[3]["buttons"][2]["type"], "QUICK_REPLY");
    Ok(())
}

#[tokio::test]
async fn deleting_by_name_removes_every_language_or_only_the_hsm_id() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let english = meta.add_template(spring_sale_in("en_US"))?;
    let hebrew = meta.add_template(spring_sale_in("he"))?;
    meta.add_template(spring_sale_in("es"))?;
    let delete = |query: String| {
        let url = format!("{}?{query}", templates_url(&meta));
        async move {
            let response = http().delete(url).bearer_auth(ACCESS_TOKEN).send().await?;
            let status = response.status().as_u16();
            Ok::<_, anyhow::Error>((status, response.json::<Value>().await?))
        }
    };
    let (status, answer) = delete(format!("name=spring_sale&hsm_id={}", hebrew.id)).await?;
    assert_eq!((status, answer), (200, json!({"success": true})));
    assert!(meta.template(&hebrew.id).is_none());
    assert!(meta.template(&english.id).is_some());
    let (status, _) = delete("name=spring_sale".into()).await?;
    assert_eq!(status, 200);
    assert_eq!(meta.templates(WABA_ID).len(), 1, "only the sample is left");
    let (status, answer) = delete("name=spring_sale".into()).await?;
    assert_eq!(status, 400);
    meta_error(&answer, 100)?;
    Ok(())
}

/// Sends `name` in `language` with these components; Meta's status and answer.
async fn send_template(
    meta: &emulator::RunningEmulator,
    name: &str,
    language: &str,
    components: Value,
) -> anyhow::Result<(u16, Value)> {
    let body = json!({
        "messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
        "template": {"name": name, "language": {"code": language}, "components": components},
    });
    send(meta, &body).await
}

#[tokio::test]
async fn an_unknown_paused_or_disabled_template_gives_132001_132015_or_132016() -> anyhow::Result<()>
{
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    for (name, status) in [("paused_one", "PAUSED"), ("disabled_one", "disabled")] {
        meta.add_template(TemplateSeed {
            name: name.into(),
            status: status.into(),
            ..spring_sale_in("en_US")
        })?;
    }
    let cases = [
        (
            "no_such_template",
            "en_US",
            132001,
            "Template name does not exist in the translation",
        ),
        (
            "hello_world",
            "fr",
            132001,
            "Template name does not exist in the translation",
        ),
        ("paused_one", "en_US", 132015, "Template is Paused"),
        ("disabled_one", "en_US", 132016, "Template is Disabled"),
    ];
    for (name, language, code, title) in cases {
        let (status, answer) = send_template(&meta, name, language, json!([])).await?;
        assert_eq!(status, 400, "{name}: {answer}");
        let error = meta_error(&answer, code)?;
        assert_eq!(error["message"], format!("(#{code}) {title}"));
        ensure!(
            error["error_data"]["details"].is_string(),
            "details say more: {answer}"
        );
    }
    assert!(meta.sent_messages(None).is_empty());
    let (status, answer) = send_template(&meta, "hello_world", "en_US", json!([])).await?;
    assert_eq!(status, 200, "{answer}");
    Ok(())
}

#[tokio::test]
async fn a_positional_template_with_two_body_parameters_sent_with_one_gives_132000()
-> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    meta.add_template(TemplateSeed {
        waba_id: WABA_ID.into(),
        name: "order_update".into(),
        language: "en_US".into(),
        category: "UTILITY".into(),
        components: vec![
            json!({"type": "HEADER", "format": "IMAGE"}),
            json!({"type": "BODY", "text": "Your order {{1}} ships on {{2}}."}),
        ],
        ..Default::default()
    })?;
    let header = json!({"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/box.jpg"}}]});
    let body = |values: &[&str]| {
        let parameters: Vec<Value> = values
            .iter()
            .map(|v| json!({"type": "text", "text": v}))
            .collect();
        json!({"type": "body", "parameters": parameters})
    };

    let (status, answer) = send_template(
        &meta,
        "order_update",
        "en_US",
        json!([header, body(&["A1"])]),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    let error = meta_error(&answer, 132000)?;
    assert_eq!(
        error["message"],
        "(#132000) Number of parameters does not match the expected number of params"
    );

    let (status, answer) = send_template(
        &meta,
        "order_update",
        "en_US",
        json!([body(&["A1", "Monday"])]),
    )
    .await?;
    assert_eq!(status, 400, "a media header needs its parameter: {answer}");
    meta_error(&answer, 132000)?;

    let text_header = json!({"type": "header", "parameters": [{"type": "text", "text": "Hi"}]});
    let (status, answer) = send_template(
        &meta,
        "order_update",
        "en_US",
        json!([text_header, body(&["A1", "Monday"])]),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    meta_error(&answer, 132012)?;

    let (status, answer) = send_template(
        &meta,
        "order_update",
        "en_US",
        json!([header, body(&["A1", "Monday"])]),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    Ok(())
}

#[tokio::test]
async fn pricing_follows_the_templates_stored_category_and_a_category_change_is_announced()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into()],
        ..registration(Some(receiver.url.clone()))
    })?;
    let sample = meta.templates(WABA_ID)[0].clone();
    let view = meta.update_template_category(&sample.id, TemplateCategory::Marketing)?;
    assert_eq!(view.category, TemplateCategory::Marketing);
    let received = receiver.wait_for(1).await?;
    let webhook = template_change(&received, "template_category_update")?;
    let value = &webhook["entry"][0]["changes"][0]["value"];
    assert_eq!(value["previous_category"], "UTILITY");
    assert_eq!(value["new_category"], "MARKETING");
    assert_eq!(value["message_template_id"], sample.id.parse::<u64>()?);

    let (status, _) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200);
    let found = wait_for_statuses(&receiver, 1).await?;
    assert_eq!(found[0]["pricing"]["category"], "marketing");
    Ok(())
}

#[tokio::test]
async fn a_quality_change_is_announced_with_the_previous_score() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;
    let sample = meta.templates(WABA_ID)[0].clone();

    let (status, view) = post_json(
        &format!("{}/admin/templates/{}/quality", meta.base_url(), sample.id),
        None,
        &json!({"score": "YELLOW"}),
    )
    .await?;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["quality_score"]["score"], "YELLOW");
    let received = receiver.wait_for(1).await?;
    let webhook = template_change(&received, "message_template_quality_update")?;
    let value = &webhook["entry"][0]["changes"][0]["value"];
    let example: Value = serde_json::from_str(include_str!(
        "fixtures/webhook_template_quality_update.json"
    ))?;
    let expected = &example["entry"][0]["changes"][0]["value"];
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(value), keys(expected));
    assert_eq!(value["previous_quality_score"], "UNKNOWN");
    assert_eq!(value["new_quality_score"], "YELLOW");

    let view = meta.update_template_quality(&sample.id, QualityScore::Red)?;
    assert_eq!(view.quality_score.score, QualityScore::Red);
    Ok(())
}

#[tokio::test]
async fn the_admin_api_seeds_lists_shows_and_deletes_templates() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let base = meta.base_url();
    let (status, created) = post_json(
        &format!("{base}/admin/templates"),
        None,
        &json!({
            "waba_id": WABA_ID, "name": "otp_code", "language": "en", "category": "authentication",
            "components": [{"type": "body", "text": "{{1}} is your code."}], "quality_score": "green",
        }),
    )
    .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "APPROVED");
    assert_eq!(created["category"], "AUTHENTICATION");
    assert_eq!(created["quality_score"]["score"], "GREEN");
    let id = created["id"].as_str().context("an id")?.to_owned();

    let (status, listed) = get_json(&format!("{base}/admin/templates?waba_id={WABA_ID}")).await?;
    assert_eq!(status, 200);
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));
    let (status, shown) = get_json(&format!("{base}/admin/templates/{id}")).await?;
    assert_eq!((status, &shown), (200, &created));

    let (status, answer) = post_json(
        &format!("{base}/admin/templates"),
        None,
        &json!({"waba_id": WABA_ID, "name": "otp_code", "language": "en", "category": "UTILITY",
                "components": [{"type": "BODY", "text": "again"}]}),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = post_json(
        &format!("{base}/admin/templates"),
        None,
        &json!({"waba_id": WABA_ID, "name": "x", "language": "en", "category": "UTILITY",
                "status": "LIVE", "components": [{"type": "BODY", "text": "x"}]}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "status");

    let deleted = http()
        .delete(format!("{base}/admin/templates/{id}"))
        .send()
        .await?;
    assert_eq!(deleted.status(), 204);
    let (status, _) = get_json(&format!("{base}/admin/templates/{id}")).await?;
    assert_eq!(status, 404);
    Ok(())
}
