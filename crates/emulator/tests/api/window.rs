//! Free-form sends outside the 24-hour window: accepted and then failed with 131047 as Meta does
//! today, or refused at once in `reject` mode.

use anyhow::ensure;
use emulator::{PhoneNumberRegistration, SendCounters, WindowViolation};
use serde_json::{Value, json};

use crate::helpers::*;

/// A number that would send every automatic status, so their absence means something.
fn with_every_status(receiver: &Receiver) -> PhoneNumberRegistration {
    PhoneNumberRegistration {
        auto_statuses: vec!["sent".into(), "delivered".into(), "read".into()],
        auto_status_delay_ms: 10,
        ..registration(Some(receiver.url.clone()))
    }
}

#[tokio::test]
async fn a_free_form_send_outside_the_window_is_accepted_then_a_failed_131047_status_arrives_and_no_other()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(with_every_status(&receiver))?;

    let mut request = text_to(CUSTOMER, "Are you still there?");
    request["biz_opaque_callback_data"] = "ticket-9".into();
    let (status, answer) = send(&meta, &request).await?;
    assert_eq!(status, 200, "Meta accepts it: {answer}");
    let wamid = answer["messages"][0]["id"].clone();
    ensure!(
        wamid.as_str().is_some_and(|w| w.starts_with("wamid.")),
        "{answer}"
    );
    ensure!(
        answer["messages"][0].get("message_status").is_none(),
        "{answer}"
    );
    assert_eq!(meta.sent_messages(None).len(), 1, "the send is recorded");

    wait_for_statuses(&receiver, 1).await?;
    // Every status is queued when the send is accepted, so once all deliveries are done nothing
    // else can come.
    all_delivered(&meta).await?;
    assert_eq!(meta.deliveries().len(), 1);
    let found = statuses(&receiver.received())?;
    assert_eq!(found.len(), 1, "no sent, delivered or read: {found:?}");
    let failed = &found[0];
    assert_eq!(failed["id"], wamid);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["recipient_id"], CUSTOMER);
    assert_eq!(failed["biz_opaque_callback_data"], "ticket-9");
    let example: Value = serde_json::from_str(include_str!(
        "fixtures/error_131047_reengagement_error_object.json"
    ))?;
    assert_eq!(failed["errors"], json!([example]));
    ensure!(
        failed.get("pricing").is_none() && failed.get("conversation").is_none(),
        "a failed message is not priced: {failed}"
    );

    assert_eq!(
        meta.send_counters(PHONE_NUMBER_ID),
        Some(SendCounters {
            accepted_sends: 1,
            failed_window: 1,
            ..SendCounters::default()
        })
    );
    let shown = shown_number(&meta).await?;
    assert_eq!(
        (&shown["accepted_sends"], &shown["failed_window"]),
        (&json!(1), &json!(1))
    );

    // Once the customer writes, the same send goes out with all its statuses.
    customer_writes_now(&meta).await?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "Welcome back")).await?;
    assert_eq!(status, 200, "{answer}");
    let found = wait_for_statuses(&receiver, 4).await?;
    let order: Vec<&Value> = found[1..].iter().map(|s| &s["status"]).collect();
    assert_eq!(order, [&json!("sent"), &json!("delivered"), &json!("read")]);
    Ok(())
}

#[tokio::test]
async fn a_template_outside_the_window_goes_with_its_statuses() -> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(with_every_status(&receiver))?;
    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200, "{answer}");
    let found = wait_for_statuses(&receiver, 3).await?;
    ensure!(found.iter().all(|s| s["status"] != "failed"), "{found:?}");
    assert_eq!(
        meta.send_counters(PHONE_NUMBER_ID).map(|c| c.failed_window),
        Some(0)
    );
    Ok(())
}

#[tokio::test]
async fn in_reject_mode_the_send_answers_400_131047_and_the_mode_can_be_patched_back()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        window_violation: WindowViolation::Reject,
        ..with_every_status(&receiver)
    })?;
    assert_eq!(shown_number(&meta).await?["window_violation"], "reject");

    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 400, "{answer}");
    let error = meta_error(&answer, 131047)?;
    assert_eq!(error["message"], "(#131047) Re-engagement message");
    assert!(meta.sent_messages(None).is_empty(), "nothing was sent");
    assert_eq!(
        meta.send_counters(PHONE_NUMBER_ID),
        Some(SendCounters {
            rejected_window: 1,
            ..SendCounters::default()
        })
    );
    let calls = meta.calls(Some(PHONE_NUMBER_ID), None);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].http_status, Some(400));

    let (status, patched) =
        patch_number(&meta, &json!({"window_violation": "failed_status"})).await?;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["window_violation"], "failed_status");
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 200, "{answer}");
    let found = wait_for_statuses(&receiver, 1).await?;
    assert_eq!(found[0]["errors"][0]["code"], 131047);

    let (status, refused) = patch_number(&meta, &json!({"window_violation": "sometimes"})).await?;
    assert_eq!(status, 422, "{refused}");
    ensure!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("window_violation")),
        "{refused}"
    );
    Ok(())
}
