//! Signed webhook delivery: shape, signature, headers, retries, parking and isolation.

use std::time::Duration;

use anyhow::{Context, ensure};
use emulator::{
    AttemptOutcome, CustomerMessage, DeliveryStatus, EmulatorError, PhoneNumberRegistration,
    PhoneNumberUpdate, RetryPolicy,
};
use serde_json::json;
use tokio::net::TcpListener;

use crate::helpers::*;

#[tokio::test]
async fn a_customer_text_message_arrives_signed_and_shaped_like_metas_example() -> anyhow::Result<()>
{
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    let receipt = meta
        .customer_writes(CustomerMessage {
            name: Some("Sheena Nelson".into()),
            timestamp: Some(1_749_416_383),
            ..CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "Does it come in another color?")
        })
        .await?;
    let record = meta.wait_delivered(receipt.delivery_id, WAIT).await?;
    let received = receiver.wait_for(1).await?;
    let webhook = &received[0];

    let signature = header(&webhook.headers, "x-hub-signature-256")?;
    ensure!(
        cloudapi::signature::verify(
            APP_SECRET.as_bytes(),
            &webhook.body,
            Some(signature.as_bytes())
        )
        .is_ok(),
        "the signature does not verify: {signature}"
    );
    ensure!(header(&webhook.headers, "content-type")? == "application/json");
    ensure!(header(&webhook.headers, "user-agent")? == "facebookexternalua");
    ensure!(
        webhook.body == record.body,
        "the body POSTed is the body recorded"
    );

    let mut body: serde_json::Value = serde_json::from_slice(&webhook.body)?;
    let wamid = body["entry"][0]["changes"][0]["value"]["messages"][0]["id"].take();
    ensure!(wamid == json!(receipt.wamid));
    ensure!(
        receipt
            .wamid
            .starts_with("wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQ"),
        "{}",
        receipt.wamid
    );
    let mut example = example_text_webhook()?;
    example["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = serde_json::Value::Null;
    // Compared as text, so key order counts too.
    assert_eq!(
        serde_json::to_string(&body)?,
        serde_json::to_string(&example)?
    );
    Ok(())
}

#[tokio::test]
async fn a_webhook_that_gets_500_is_retried_until_200() -> anyhow::Result<()> {
    let receiver = Receiver::start([Answer::Status(500), Answer::Status(500)]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    let receipt = meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "hi"))
        .await?;
    let record = meta.wait_delivered(receipt.delivery_id, WAIT).await?;

    let outcomes: Vec<_> = record.attempts.iter().map(|a| a.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [500, 500, 200].map(|status| AttemptOutcome::Http { status }),
    );
    assert_eq!(
        record.attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(record.last_http_status, Some(200));
    assert!(record.delivered_at.is_some());
    // Every retry carries the same bytes and the same signature.
    let received = receiver.wait_for(3).await?;
    ensure!(received.iter().all(|r| r.body == record.body));
    ensure!(received.windows(2).all(
        |w| w[0].headers.get("x-hub-signature-256") == w[1].headers.get("x-hub-signature-256")
    ));
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_receiver_starts() -> anyhow::Result<()> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}/webhook");
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(url)))?;

    let receipt = meta
        .customer_writes(CustomerMessage::text(
            PHONE_NUMBER_ID,
            CUSTOMER,
            "anyone there?",
        ))
        .await?;
    // Let a few attempts hit the closed port before anyone listens.
    let failed_attempts = async {
        loop {
            let attempts = meta
                .delivery(receipt.delivery_id)
                .map_or(0, |r| r.attempts.len());
            if attempts >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, failed_attempts)
        .await
        .context("no attempts were made")?;

    let receiver = Receiver::start_on(TcpListener::bind(("127.0.0.1", port)).await?, []);
    let record = meta.wait_delivered(receipt.delivery_id, WAIT).await?;
    receiver.wait_for(1).await?;

    let (last, earlier) = record.attempts.split_last().context("no attempts")?;
    assert_eq!(last.outcome, AttemptOutcome::Http { status: 200 });
    ensure!(earlier.len() >= 2);
    for attempt in earlier {
        let AttemptOutcome::ConnectionFailed { error } = &attempt.outcome else {
            anyhow::bail!("expected a connection failure, got {:?}", attempt.outcome);
        };
        ensure!(error.to_lowercase().contains("connect"), "{error}");
    }
    Ok(())
}

#[tokio::test]
async fn a_receiver_slower_than_the_request_timeout_counts_as_a_failed_attempt()
-> anyhow::Result<()> {
    let receiver = Receiver::start([Answer::Stall(Duration::from_secs(2))]).await?;
    let meta = spawn_emulator_with(RetryPolicy {
        request_timeout: Duration::from_millis(200),
        ..RetryPolicy::fast()
    })
    .await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    let receipt = meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "slow"))
        .await?;
    let record = meta.wait_delivered(receipt.delivery_id, WAIT).await?;

    let outcomes: Vec<_> = record.attempts.iter().map(|a| a.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::TimedOut,
            AttemptOutcome::Http { status: 200 }
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_delivery_that_never_gets_200_fails_after_the_last_attempt() -> anyhow::Result<()> {
    let receiver = Receiver::start([Answer::Status(503); 10]).await?;
    let meta = spawn_emulator_with(RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::fast()
    })
    .await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    let receipt = meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "hello?"))
        .await?;
    let outcome = meta.wait_delivered(receipt.delivery_id, WAIT).await;

    let Err(EmulatorError::DeliveryFailed(record)) = outcome else {
        anyhow::bail!("expected the delivery to fail, got {outcome:?}");
    };
    assert_eq!(record.status, DeliveryStatus::Failed);
    assert_eq!(record.attempts.len(), 3);
    assert_eq!(record.last_http_status, Some(503));
    assert_eq!(receiver.received().len(), 3);
    Ok(())
}

#[tokio::test]
async fn deliveries_wait_for_a_webhook_url_and_go_once_one_is_set() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    let first = meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "one"))
        .await?;
    let second = meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "two"))
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for id in [first.delivery_id, second.delivery_id] {
        let record = meta.delivery(id).context("the delivery exists")?;
        assert_eq!(record.status, DeliveryStatus::AwaitingWebhookUrl);
        assert!(record.attempts.is_empty());
    }

    let receiver = Receiver::start([]).await?;
    let patched = http()
        .patch(format!(
            "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
            meta.base_url()
        ))
        .json(&json!({ "webhook_url": receiver.url }))
        .send()
        .await?;
    assert_eq!(patched.status(), 200);

    meta.wait_delivered(first.delivery_id, WAIT).await?;
    meta.wait_delivered(second.delivery_id, WAIT).await?;
    let bodies: Vec<serde_json::Value> = receiver
        .wait_for(2)
        .await?
        .iter()
        .map(|r| serde_json::from_slice(&r.body))
        .collect::<Result<_, _>>()?;
    let texts: Vec<_> = bodies
        .iter()
        .map(|b| b["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"].clone())
        .collect();
    assert_eq!(texts, [json!("one"), json!("two")]);
    Ok(())
}

#[tokio::test]
async fn a_raw_body_is_delivered_byte_for_byte_and_signed() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    // Odd spacing and key order must survive, since the signature covers the exact bytes.
    let raw = r#"{ "phone_number_id": "106540352242922", "body": {"object":"whatsapp_business_account",  "entry" : [ ]} }"#;
    let response = http()
        .post(format!("{}/admin/webhooks", meta.base_url()))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await?;
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await?;
    ensure!(accepted["delivery_id"].is_u64(), "{accepted}");

    let received = receiver.wait_for(1).await?;
    let expected = r#"{"object":"whatsapp_business_account",  "entry" : [ ]}"#;
    assert_eq!(std::str::from_utf8(&received[0].body)?, expected);
    let signature = header(&received[0].headers, "x-hub-signature-256")?;
    assert_eq!(
        signature,
        cloudapi::signature::sign(APP_SECRET.as_bytes(), expected.as_bytes())
    );
    Ok(())
}

#[tokio::test]
async fn deliver_raw_signs_and_sends_any_body() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;

    let status =
        json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": []}]});
    let id = meta.deliver_raw(PHONE_NUMBER_ID, status.clone()).await?;
    let record = meta.wait_delivered(id, WAIT).await?;

    assert_eq!(record.body_json()?, status);
    let received = receiver.wait_for(1).await?;
    let signature = header(&received[0].headers, "x-hub-signature-256")?;
    ensure!(
        cloudapi::signature::verify(
            APP_SECRET.as_bytes(),
            &received[0].body,
            Some(signature.as_bytes())
        )
        .is_ok()
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_url_does_not_hold_up_another_numbers_deliveries() -> anyhow::Result<()> {
    let stuck = Receiver::start([Answer::Stall(Duration::from_secs(30)); 100]).await?;
    let healthy = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(Some(stuck.url.clone())))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        webhook_url: Some(healthy.url.clone()),
        ..registration(None)
    })?;

    // Each stuck attempt holds one slot until the request timeout; the other number's goes meanwhile.
    for n in 0..10 {
        meta.customer_writes(CustomerMessage::text(
            PHONE_NUMBER_ID,
            CUSTOMER,
            format!("stuck {n}"),
        ))
        .await?;
    }
    let receipt = meta
        .customer_writes(CustomerMessage::text("200000000000001", CUSTOMER, "fine"))
        .await?;
    let started = tokio::time::Instant::now();
    meta.wait_delivered(receipt.delivery_id, WAIT).await?;
    ensure!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_new_app_secret_signs_the_next_attempts() -> anyhow::Result<()> {
    let receiver = Receiver::start([Answer::Status(500); 2]).await?;
    let meta = spawn_emulator_with(RetryPolicy {
        initial_delay: Duration::from_millis(300),
        ..RetryPolicy::fast()
    })
    .await?;
    meta.register_phone_number(registration(Some(receiver.url.clone())))?;
    let receipt = meta
        .customer_writes(CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "rotate"))
        .await?;
    // The first retry follows at once; the third attempt waits 300 ms, time enough to rotate.
    receiver.wait_for(2).await?;
    meta.update_phone_number(
        PHONE_NUMBER_ID,
        PhoneNumberUpdate {
            app_secret: Some("rotated-secret".into()),
            ..Default::default()
        },
    )?;
    meta.wait_delivered(receipt.delivery_id, WAIT).await?;
    let last = receiver.received().pop().context("a webhook arrived")?;
    let signature = header(&last.headers, "x-hub-signature-256")?;
    ensure!(
        cloudapi::signature::verify(b"rotated-secret", &last.body, Some(signature.as_bytes()))
            .is_ok()
    );
    Ok(())
}
