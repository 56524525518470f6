//! Status webhooks about sent messages: automatic ones after each send, and ones posted by hand.

use anyhow::{Context, ensure};
use emulator::{MessageStatus, PhoneNumberRegistration, StatusOrder};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn automatic_statuses_arrive_signed_and_in_order_at_a_receiver() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into(), "delivered".into(), "read".into()],
        auto_status_delay_ms: 30,
        ..registration(Some(receiver.url.clone()))
    })?;
    customer_writes_now(&meta).await?;

    let mut request = text_to(CUSTOMER, "On its way");
    request["biz_opaque_callback_data"] = "order-42".into();
    let (status, answer) = send(&meta, &request).await?;
    assert_eq!(status, 200, "{answer}");
    let wamid = answer["messages"][0]["id"].clone();

    let found = wait_for_statuses(&receiver, 3).await?;
    let order: Vec<&Value> = found.iter().map(|s| &s["status"]).collect();
    assert_eq!(order, [&json!("sent"), &json!("delivered"), &json!("read")]);
    for status in &found {
        assert_eq!(status["id"], wamid);
        assert_eq!(status["recipient_id"], CUSTOMER);
        assert_eq!(status["biz_opaque_callback_data"], "order-42");
        assert_eq!(status["pricing"]["category"], "service");
        assert_eq!(status["pricing"]["billable"], false);
    }
    let conversations: Vec<&Value> = found.iter().map(|s| &s["conversation"]["id"]).collect();
    ensure!(
        conversations.windows(2).all(|w| w[0] == w[1]),
        "one conversation for all statuses: {conversations:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_sent_status_is_shaped_like_metas_example() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into()],
        ..registration(Some(receiver.url.clone()))
    })?;
    // Meta's example is of a marketing template.
    seed_template(&meta, "spring_sale", "MARKETING")?;
    let mut request = template_to(CUSTOMER);
    request["template"]["name"] = "spring_sale".into();

    let (status, answer) = send(&meta, &request).await?;
    assert_eq!(status, 200, "{answer}");
    wait_for_statuses(&receiver, 1).await?;
    let mut body: Value = serde_json::from_slice(&receiver.received()[0].body)?;
    let item = &body["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(item["id"], answer["messages"][0]["id"]);
    let timestamp: i64 = item["timestamp"].as_str().unwrap_or_default().parse()?;
    let expires: i64 = item["conversation"]["expiration_timestamp"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    assert_eq!(expires - timestamp, 24 * 60 * 60);
    ensure!(
        item["conversation"]["id"]
            .as_str()
            .is_some_and(|id| id.len() == 32),
        "{item}"
    );

    let mut example: Value =
        serde_json::from_str(include_str!("fixtures/webhook_status_sent.json"))?;
    let status_path = "/entry/0/changes/0/value/statuses/0";
    for variable in [
        "/id",
        "/timestamp",
        "/conversation/id",
        "/conversation/expiration_timestamp",
    ] {
        for webhook in [&mut body, &mut example] {
            let field = webhook
                .pointer_mut(&format!("{status_path}{variable}"))
                .with_context(|| format!("{variable} is missing"))?;
            *field = Value::Null;
        }
    }
    // Compared as text, so key order counts too.
    assert_eq!(body.to_string(), example.to_string());
    Ok(())
}

#[tokio::test]
async fn statuses_posted_by_hand_are_delivered_in_any_order_and_failed_ones_carry_errors()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;
    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200, "{answer}");
    let wamid = answer["messages"][0]["id"].as_str().unwrap_or_default();
    let url = format!("{}/admin/statuses", meta.base_url());

    // A read before its delivered, as Meta can send them.
    for status in ["read", "delivered"] {
        let (code, accepted) = post_json(
            &url,
            None,
            &json!({"phone_number_id": PHONE_NUMBER_ID, "wamid": wamid, "status": status}),
        )
        .await?;
        assert_eq!(code, 202, "{accepted}");
        let id = emulator::DeliveryId(accepted["delivery_id"].as_u64().unwrap_or_default());
        meta.wait_delivered(id, WAIT).await?;
    }
    let errors = json!([{
        "code": 131049,
        "title": "This message was not delivered to maintain healthy ecosystem engagement.",
        "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},
    }]);
    let id = meta
        .deliver_status(
            PHONE_NUMBER_ID,
            wamid,
            MessageStatus::Failed,
            Some(errors.clone()),
        )
        .await?;
    meta.wait_delivered(id, WAIT).await?;
    let id = meta
        .deliver_status(PHONE_NUMBER_ID, wamid, MessageStatus::Failed, None)
        .await?;
    meta.wait_delivered(id, WAIT).await?;

    let found = wait_for_statuses(&receiver, 4).await?;
    let order: Vec<&Value> = found.iter().map(|s| &s["status"]).collect();
    assert_eq!(
        order,
        [
            &json!("read"),
            &json!("delivered"),
            &json!("failed"),
            &json!("failed")
        ]
    );
    assert_eq!(found[2]["errors"], errors);
    ensure!(found[2].get("pricing").is_none(), "{}", found[2]);
    assert_eq!(found[3]["errors"][0]["code"], 131026);
    Ok(())
}

#[tokio::test]
async fn statuses_for_unknown_messages_or_with_bad_values_are_refused() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let (_, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    let wamid = answer["messages"][0]["id"].clone();
    let url = format!("{}/admin/statuses", meta.base_url());
    let cases = [
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "wamid": "wamid.never-sent", "status": "read"}),
            404,
        ),
        (
            json!({"phone_number_id": "200000000000001", "wamid": wamid, "status": "read"}),
            404,
        ),
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "wamid": wamid, "status": "seen"}),
            400,
        ),
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "wamid": wamid, "status": "failed", "errors": {"code": 1}}),
            400,
        ),
        (
            json!({"phone_number_id": PHONE_NUMBER_ID, "wamid": wamid}),
            422,
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_json(&url, None, &body).await?;
        assert_eq!(status, expected, "{body} -> {answer}");
        ensure!(answer["error"]["message"].is_string(), "{answer}");
    }
    assert!(meta.deliveries().is_empty());
    Ok(())
}

/// A number that sends sent, delivered and read after each send, delivered as `order` says.
fn ordered(receiver: &Receiver, order: StatusOrder, duplicates: u32) -> PhoneNumberRegistration {
    PhoneNumberRegistration {
        auto_statuses: vec!["sent".into(), "delivered".into(), "read".into()],
        auto_status_delay_ms: 25,
        status_order: order,
        duplicate_statuses: duplicates,
        ..registration(Some(receiver.url.clone()))
    }
}

/// The `status` of each status item, in arrival order.
fn names(found: &[Value]) -> Vec<&str> {
    found
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default())
        .collect()
}

/// A send's statuses, once everything queued has been delivered.
async fn statuses_of_one_send(
    meta: &emulator::RunningEmulator,
    receiver: &Receiver,
    request: &Value,
) -> anyhow::Result<(Value, Vec<Value>)> {
    let (status, answer) = send(meta, request).await?;
    ensure!(status == 200, "HTTP {status}: {answer}");
    all_delivered(meta).await?;
    let wamid = answer["messages"][0]["id"].clone();
    let found = statuses(&receiver.received())?
        .into_iter()
        .filter(|s| s["id"] == wamid)
        .collect();
    Ok((wamid, found))
}

#[tokio::test]
async fn reversed_statuses_arrive_read_first_with_their_real_timestamps() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(ordered(&receiver, StatusOrder::Reversed, 0))?;
    let (_, found) = statuses_of_one_send(&meta, &receiver, &template_to(CUSTOMER)).await?;
    assert_eq!(names(&found), ["read", "delivered", "sent"]);
    let stamps: Vec<i64> = found
        .iter()
        .map(|s| {
            s["timestamp"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .unwrap_or(0)
        })
        .collect();
    ensure!(
        stamps.windows(2).all(|w| w[0] >= w[1]),
        "delivered late, the sent status still has the earliest time: {stamps:?}"
    );
    Ok(())
}

#[tokio::test]
async fn duplicated_statuses_arrive_n_plus_one_times_each_in_order() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(ordered(&receiver, StatusOrder::InOrder, 2))?;
    let (_, found) = statuses_of_one_send(&meta, &receiver, &template_to(CUSTOMER)).await?;
    assert_eq!(
        names(&found),
        [
            "sent",
            "sent",
            "sent",
            "delivered",
            "delivered",
            "delivered",
            "read",
            "read",
            "read"
        ]
    );
    // Copies are the same webhook, byte for byte, as Meta's redeliveries are.
    let bodies: Vec<_> = receiver.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    assert_ne!(bodies[2], bodies[3]);

    // Reversed and duplicated together, switched on through the admin API.
    let (status, patched) = patch_number(
        &meta,
        &json!({"status_order": "reversed", "duplicate_statuses": 1}),
    )
    .await?;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (&patched["status_order"], &patched["duplicate_statuses"]),
        (&json!("reversed"), &json!(1))
    );
    let (_, found) = statuses_of_one_send(&meta, &receiver, &template_to(CUSTOMER)).await?;
    assert_eq!(
        names(&found),
        ["read", "read", "delivered", "delivered", "sent", "sent"]
    );
    Ok(())
}

#[tokio::test]
async fn shuffled_statuses_all_arrive_once_in_some_order() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(ordered(&receiver, StatusOrder::Shuffled, 0))?;
    for _ in 0..3 {
        let (_, found) = statuses_of_one_send(&meta, &receiver, &template_to(CUSTOMER)).await?;
        let mut arrived = names(&found);
        arrived.sort_unstable();
        assert_eq!(arrived, ["delivered", "read", "sent"]);
    }
    Ok(())
}

#[tokio::test]
async fn played_follows_audio_messages_only() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into(), "delivered".into(), "played".into()],
        auto_status_delay_ms: 10,
        ..registration(Some(receiver.url.clone()))
    })?;
    customer_writes_now(&meta).await?;
    seed_media(&meta, "1013859600285441", "audio/ogg")?;
    let mut voice: Value =
        serde_json::from_str(include_str!("fixtures/send_audio_voice_request.json"))?;
    voice["to"] = CUSTOMER.into();
    let (_, found) = statuses_of_one_send(&meta, &receiver, &voice).await?;
    assert_eq!(names(&found), ["sent", "delivered", "played"]);
    let (_, found) = statuses_of_one_send(&meta, &receiver, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(names(&found), ["sent", "delivered"]);
    Ok(())
}

#[tokio::test]
async fn pricing_is_free_service_for_a_reply_and_billable_in_the_templates_category()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into(), "delivered".into()],
        auto_status_delay_ms: 10,
        // The number's registration can override a template's own category.
        template_categories: [("otp".to_owned(), "AUTHENTICATION".to_owned())].into(),
        ..registration(Some(receiver.url.clone()))
    })?;
    customer_writes_now(&meta).await?;
    seed_template(&meta, "spring_sale", "MARKETING")?;
    seed_template(&meta, "order_shipped", "utility")?;
    seed_template(&meta, "otp", "UTILITY")?;
    let template = |name: &str| {
        let mut body = template_to(CUSTOMER);
        body["template"]["name"] = name.into();
        body["biz_opaque_callback_data"] = format!("campaign-{name}").into();
        body
    };
    let pricing = |billable: bool, kind: &str, category: &str| json!({"billable": billable, "pricing_model": "PMP", "type": kind, "category": category});
    let cases = [
        (
            text_to(CUSTOMER, "Thanks for writing"),
            pricing(false, "free_customer_service", "service"),
            None,
        ),
        (
            template("hello_world"),
            pricing(true, "regular", "utility"),
            Some("campaign-hello_world"),
        ),
        (
            template("spring_sale"),
            pricing(true, "regular", "marketing"),
            Some("campaign-spring_sale"),
        ),
        (
            template("order_shipped"),
            pricing(true, "regular", "utility"),
            Some("campaign-order_shipped"),
        ),
        (
            template("otp"),
            pricing(true, "regular", "authentication"),
            Some("campaign-otp"),
        ),
    ];
    for (request, expected, callback) in cases {
        let (_, found) = statuses_of_one_send(&meta, &receiver, &request).await?;
        assert_eq!(found.len(), 2, "{found:?}");
        for status in &found {
            assert_eq!(status["pricing"], expected, "{request}");
            assert_eq!(
                status["conversation"]["origin"]["type"], expected["category"],
                "{status}"
            );
            match callback {
                Some(data) => assert_eq!(status["biz_opaque_callback_data"], data),
                None => ensure!(status.get("biz_opaque_callback_data").is_none(), "{status}"),
            }
        }
    }
    let shown = shown_number(&meta).await?;
    assert_eq!(
        shown["template_categories"],
        json!({"otp": "authentication"})
    );
    Ok(())
}
