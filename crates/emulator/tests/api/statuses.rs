//! Status webhooks about sent messages: automatic ones after each send, and ones posted by hand.

use anyhow::{Context, ensure};
use emulator::{MessageStatus, PhoneNumberRegistration};
use serde_json::{Value, json};

use crate::helpers::*;

/// The `statuses[0]` of every status webhook received, in arrival order, each checked for its signature.
fn statuses(received: &[Received]) -> anyhow::Result<Vec<Value>> {
    let mut found = Vec::new();
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
        let status = &body["entry"][0]["changes"][0]["value"]["statuses"][0];
        if !status.is_null() {
            found.push(status.clone());
        }
    }
    Ok(found)
}

/// Waits until `count` status webhooks have arrived (besides any message webhooks).
async fn wait_for_statuses(receiver: &Receiver, count: usize) -> anyhow::Result<Vec<Value>> {
    let waiting = async {
        loop {
            let found = statuses(&receiver.received())?;
            if found.len() >= count {
                return Ok::<_, anyhow::Error>(found);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .with_context(|| format!("fewer than {count} status webhooks arrived"))?
}

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

    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
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
