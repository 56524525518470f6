//! Meta's send limits: throughput per number (130429) and the pair rate per recipient (131056),
//! each answered, logged as an answered call and counted.

use std::time::{Duration, Instant};

use anyhow::ensure;
use emulator::{GraphEndpoint, PhoneNumberRegistration, SendCounters};
use serde_json::{Value, json};

use crate::helpers::*;

const OTHER_CUSTOMER: &str = "447700900123";

/// Checks a 130429 answer as Meta words it.
fn throughput_hit(body: &Value) -> anyhow::Result<()> {
    let error = meta_error(body, 130429)?;
    ensure!(error["message"] == "(#130429) Rate limit hit", "{body}");
    ensure!(
        error["error_data"]["details"] == "Cloud API message throughput has been reached.",
        "{body}"
    );
    Ok(())
}

/// Checks a 131056 answer as Meta words it.
fn pair_rate_hit(status: u16, body: &Value) -> anyhow::Result<()> {
    ensure!(status == 400, "HTTP {status}: {body}");
    let error = meta_error(body, 131056)?;
    ensure!(
        error["message"] == "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_burst_of_100_sends_to_a_number_limited_to_20_per_second_gets_130429_for_the_excess_and_the_counters_agree()
-> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        throughput_per_second: 20,
        enforce_pair_rate: false,
        ..metas_defaults(None)
    })?;

    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let url = messages_url(&meta);
        sends.spawn(
            async move { post_json(&url, Some(ACCESS_TOKEN), &template_to(CUSTOMER)).await },
        );
    }
    let mut answers = Vec::new();
    while let Some(answer) = sends.join_next().await {
        answers.push(answer??);
    }
    let elapsed = started.elapsed();

    let accepted = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 400)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        accepted + refused.len(),
        100,
        "only 200 and 400: {answers:?}"
    );
    for body in &refused {
        throughput_hit(body)?;
    }
    if elapsed < Duration::from_secs(1) {
        assert_eq!(accepted, 20, "one window, exactly the throughput");
    } else {
        // A very slow machine spread the burst over more than one window.
        let windows = usize::try_from(elapsed.as_secs()).unwrap_or(usize::MAX) + 1;
        ensure!(
            (20..=20 * windows).contains(&accepted),
            "{accepted} accepted in {elapsed:?}"
        );
    }

    let counters = SendCounters {
        accepted_sends: u64::try_from(accepted)?,
        rejected_throughput: u64::try_from(refused.len())?,
        ..SendCounters::default()
    };
    assert_eq!(meta.send_counters(PHONE_NUMBER_ID), Some(counters));
    let shown = shown_number(&meta).await?;
    assert_eq!(shown["accepted_sends"], counters.accepted_sends);
    assert_eq!(shown["rejected_throughput"], counters.rejected_throughput);
    assert_eq!(shown["rejected_pair_rate"], 0);
    assert_eq!(meta.sent_messages(None).len(), accepted);

    // Refusals are answered calls, not faults.
    let calls = meta.calls(Some(PHONE_NUMBER_ID), Some(GraphEndpoint::Messages));
    assert_eq!(calls.len(), 100);
    assert_eq!(
        calls.iter().filter(|c| c.http_status == Some(400)).count(),
        refused.len()
    );
    ensure!(calls.iter().all(|c| c.fault_id.is_none()), "{calls:?}");

    // A second later the window has room again.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200, "{answer}");
    Ok(())
}

#[tokio::test]
async fn the_pair_limit_answers_131056_on_the_fourth_quick_send_to_one_recipient_and_allows_it_again_later()
-> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    // One send per half second after a burst of three: Meta's shape on a test's time scale.
    meta.register_phone_number(PhoneNumberRegistration {
        pair_per_minute: 120,
        pair_burst: 3,
        ..metas_defaults(None)
    })?;

    for n in 1..=3 {
        let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
        assert_eq!(status, 200, "send {n}: {answer}");
    }
    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    pair_rate_hit(status, &answer)?;
    let (status, answer) = send(&meta, &template_to(OTHER_CUSTOMER)).await?;
    assert_eq!(status, 200, "another recipient is not limited: {answer}");

    tokio::time::sleep(Duration::from_millis(550)).await;
    let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200, "allowed again half a second on: {answer}");

    assert_eq!(
        meta.send_counters(PHONE_NUMBER_ID),
        Some(SendCounters {
            accepted_sends: 5,
            rejected_pair_rate: 1,
            ..SendCounters::default()
        })
    );
    let sent_to_customer = meta
        .sent_messages(None)
        .iter()
        .filter(|m| m.wa_id == CUSTOMER)
        .count();
    assert_eq!(sent_to_customer, 4);
    let calls = meta.calls(Some(PHONE_NUMBER_ID), None);
    assert_eq!(
        calls.iter().map(|c| c.http_status).collect::<Vec<_>>(),
        [200, 200, 200, 400, 200, 200].map(Some)
    );
    Ok(())
}

#[tokio::test]
async fn with_metas_defaults_a_fourth_quick_send_to_one_customer_gets_131056() -> anyhow::Result<()>
{
    let meta = spawn_emulator().await?;
    meta.register_phone_number(metas_defaults(None))?;
    customer_writes_now(&meta).await?;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let (status, answer) = send(&meta, &text_to(CUSTOMER, &format!("part {n}"))).await?;
        statuses.push(status);
        if n == 3 {
            pair_rate_hit(status, &answer)?;
        }
    }
    assert_eq!(statuses, [200, 200, 200, 400]);
    Ok(())
}

#[tokio::test]
async fn limits_can_be_patched_off_and_bad_values_are_refused_naming_the_field()
-> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        throughput_per_second: 1,
        ..metas_defaults(None)
    })?;
    let (status, _) = send(&meta, &template_to(CUSTOMER)).await?;
    assert_eq!(status, 200);
    let (status, answer) = send(&meta, &template_to(OTHER_CUSTOMER)).await?;
    assert_eq!(status, 400);
    throughput_hit(&answer)?;

    let (status, patched) = patch_number(
        &meta,
        &json!({"enforce_throughput": false, "enforce_pair_rate": false}),
    )
    .await?;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["enforce_throughput"], false);
    assert_eq!(patched["rejected_throughput"], 1, "counters stay");
    for _ in 0..10 {
        let (status, answer) = send(&meta, &template_to(CUSTOMER)).await?;
        assert_eq!(status, 200, "{answer}");
    }

    for (body, field) in [
        (json!({"throughput_per_second": 0}), "throughput_per_second"),
        (json!({"pair_per_minute": 0}), "pair_per_minute"),
        (json!({"pair_burst": 0}), "pair_burst"),
        (json!({"duplicate_statuses": 11}), "duplicate_statuses"),
        (
            json!({"template_categories": {"promo": "free"}}),
            "template_categories.promo",
        ),
    ] {
        let (status, answer) = patch_number(&meta, &body).await?;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let shown = shown_number(&meta).await?;
    assert_eq!(shown["throughput_per_second"], 1, "nothing changed");
    Ok(())
}
