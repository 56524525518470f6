//! Faults switched on through the admin API and the library, expired tokens, and the Graph call log.

use std::time::Duration;

use anyhow::{Context, ensure};
use cloudapi::error::ErrorClass;
use cloudapi::send::SendMessageRequest;
use emulator::{
    FaultError, FaultKind, FaultSpec, GraphEndpoint, PhoneNumberRegistration, PhoneNumberUpdate,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

/// An emulator with the test number registered and the customer's window open.
async fn ready_emulator() -> anyhow::Result<emulator::RunningEmulator> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    customer_writes_now(&meta).await?;
    Ok(meta)
}

async fn add_fault_over_http(
    meta: &emulator::RunningEmulator,
    fault: &Value,
) -> anyhow::Result<u64> {
    let (status, answer) =
        post_json(&format!("{}/admin/faults", meta.base_url()), None, fault).await?;
    ensure!(status == 201, "{fault} -> HTTP {status}: {answer}");
    answer["id"].as_u64().context("the answer has an id")
}

async fn list_faults(meta: &emulator::RunningEmulator) -> anyhow::Result<Value> {
    let response = http()
        .get(format!("{}/admin/faults", meta.base_url()))
        .send()
        .await?;
    Ok(response.json().await?)
}

#[tokio::test]
async fn each_fault_kind_answers_as_specified_for_exactly_times_calls_then_clears()
-> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let kinds = [
        ("rate_limited", 400, 130429, "(#130429) Rate limit hit"),
        (
            "pair_rate_limited",
            400,
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        ),
        (
            "service_unavailable",
            503,
            2,
            "An unexpected error has occurred. Please retry your request later.",
        ),
        (
            "expired_token",
            401,
            190,
            "Error validating access token: Session has expired on ",
        ),
        (
            "window_closed",
            400,
            131047,
            "(#131047) Re-engagement message",
        ),
        ("internal_error", 500, 1, "(#1) An unknown error occurred"),
    ];
    for (kind, http_status, code, message) in kinds {
        let id = add_fault_over_http(
            &meta,
            &json!({"phone_number_id": PHONE_NUMBER_ID, "endpoint": "messages", "kind": kind, "times": 2}),
        )
        .await?;
        let listed = list_faults(&meta).await?;
        assert_eq!(listed["data"][0]["id"], id, "{listed}");
        assert_eq!(listed["data"][0]["kind"], kind);
        assert_eq!(listed["data"][0]["remaining"], 2);

        for call in 1..=2 {
            let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
            ensure!(
                status == http_status,
                "{kind} call {call}: HTTP {status}: {answer}"
            );
            let error = meta_error(&answer, code)?;
            ensure!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message)),
                "{kind}: {answer}"
            );
            if kind == "expired_token" {
                assert_eq!(error["error_subcode"], 463);
            }
        }
        let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
        ensure!(status == 200, "{kind} cleared after two calls: {answer}");
        assert_eq!(list_faults(&meta).await?, json!({"data": []}));
    }
    // Only the calls no fault answered were sends.
    assert_eq!(meta.sent_messages(None).len(), kinds.len());
    Ok(())
}

#[tokio::test]
async fn a_fault_for_one_number_and_endpoint_leaves_the_others_alone() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        access_token: "EAAother-tenant".into(),
        enforce_service_window: false,
        ..registration(None)
    })?;
    meta.add_fault(FaultSpec {
        phone_number_id: Some(PHONE_NUMBER_ID.into()),
        endpoint: Some(GraphEndpoint::Messages),
        ..FaultSpec::kind(FaultKind::ServiceUnavailable)
    })?;

    let other = post_json(
        &format!("{}/v24.0/200000000000001/messages", meta.base_url()),
        Some("EAAother-tenant"),
        &text_to(CUSTOMER, "hi"),
    )
    .await?;
    assert_eq!(other.0, 200, "another number: {}", other.1);
    let phone = http()
        .get(format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await?;
    assert_eq!(phone.status(), 200, "another endpoint");
    let (status, _) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 503, "the fault's own number and endpoint");
    Ok(())
}

#[tokio::test]
async fn a_custom_error_or_a_bare_status_is_answered_as_given() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    meta.add_fault(FaultSpec {
        error: Some(FaultError::code(131000)),
        ..FaultSpec::default()
    })?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 500);
    assert_eq!(
        meta_error(&answer, 131000)?["message"],
        "(#131000) Something went wrong"
    );

    add_fault_over_http(
        &meta,
        &json!({
            "http_status": 429,
            "error": {"code": 80007, "error_subcode": 2494055, "message": "(#80007) Rate limit issues", "type": "OAuthException",
                      "error_data": {"messaging_product": "whatsapp", "details": "slow down"}},
        }),
    )
    .await?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 429);
    let error = meta_error(&answer, 80007)?;
    assert_eq!(error["error_subcode"], 2_494_055);
    assert_eq!(error["error_data"]["details"], "slow down");

    add_fault_over_http(&meta, &json!({"http_status": 502})).await?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(
        (status, answer),
        (502, Value::Null),
        "a bare status has no body"
    );
    Ok(())
}

#[tokio::test]
async fn an_expired_token_answers_190_463_until_cleared_or_rotated() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let patch = |body: Value| {
        http()
            .patch(format!(
                "{}/admin/phone-numbers/{PHONE_NUMBER_ID}",
                meta.base_url()
            ))
            .json(&body)
            .send()
    };
    let patched = patch(json!({"token_expired": true})).await?;
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<Value>().await?["token_expired"], true);

    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 401, "{answer}");
    let error = meta_error(&answer, 190)?;
    assert_eq!(error["error_subcode"], 463);
    assert_eq!(error["type"], "OAuthException");
    ensure!(
        error["message"].as_str().is_some_and(|m| m
            .starts_with("Error validating access token: Session has expired on ")
            && m.contains(". The current time is ")),
        "{answer}"
    );
    let phone = http()
        .get(format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await?;
    assert_eq!(phone.status(), 401, "every call with the token");
    assert_eq!(
        meta_error(&phone.json::<Value>().await?, 190)?["error_subcode"],
        463
    );

    assert_eq!(patch(json!({"token_expired": false})).await?.status(), 200);
    let (status, _) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 200);

    meta.update_phone_number(
        PHONE_NUMBER_ID,
        PhoneNumberUpdate {
            token_expired: Some(true),
            ..Default::default()
        },
    )?;
    meta.update_phone_number(
        PHONE_NUMBER_ID,
        PhoneNumberUpdate {
            access_token: Some("EAArotated".into()),
            ..Default::default()
        },
    )?;
    let (status, answer) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 401, "the old token is unknown now");
    ensure!(
        meta_error(&answer, 190)?.get("error_subcode").is_none(),
        "{answer}"
    );
    let (status, _) = post_json(
        &messages_url(&meta),
        Some("EAArotated"),
        &text_to(CUSTOMER, "hi"),
    )
    .await?;
    assert_eq!(status, 200, "the new token works");
    Ok(())
}

#[tokio::test]
async fn a_token_rotated_on_one_number_still_serves_the_numbers_that_share_it() -> anyhow::Result<()>
{
    let meta = ready_emulator().await?;
    let second = "106540352242923";
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: second.into(),
        display_phone_number: "15550783882".into(),
        ..registration(None)
    })?;
    let messages_of = |id: &str| format!("{}/v24.0/{id}/messages", meta.base_url());
    meta.update_phone_number(
        PHONE_NUMBER_ID,
        PhoneNumberUpdate {
            access_token: Some("EAArotated".into()),
            ..Default::default()
        },
    )?;

    let (status, answer) = post_json(
        &messages_of(second),
        Some(ACCESS_TOKEN),
        &text_to(CUSTOMER, "hi"),
    )
    .await?;
    assert_eq!(
        status, 200,
        "the shared token still serves the other number: {answer}"
    );
    let (status, answer) = post_json(
        &messages_of(PHONE_NUMBER_ID),
        Some(ACCESS_TOKEN),
        &text_to(CUSTOMER, "hi"),
    )
    .await?;
    assert_eq!(status, 400, "a valid token of another number: {answer}");
    meta_error(&answer, 100)?;
    let (status, _) = post_json(
        &messages_of(PHONE_NUMBER_ID),
        Some("EAArotated"),
        &text_to(CUSTOMER, "hi"),
    )
    .await?;
    assert_eq!(status, 200, "the rotated number answers to its new token");
    let (status, _) = post_json(
        &messages_of(second),
        Some("EAArotated"),
        &text_to(CUSTOMER, "hi"),
    )
    .await?;
    assert_ne!(status, 200, "and the new token is that number's only");
    Ok(())
}

#[tokio::test]
async fn drop_connection_makes_the_client_see_a_connection_error() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let fault = add_fault_over_http(
        &meta,
        &json!({"endpoint": "messages", "drop_connection": true}),
    )
    .await?;

    let outcome = http()
        .post(messages_url(&meta))
        .bearer_auth(ACCESS_TOKEN)
        .json(&text_to(CUSTOMER, "hi"))
        .send()
        .await;
    let Err(error) = outcome else {
        anyhow::bail!("expected a connection error, got {outcome:?}");
    };
    ensure!(!error.is_timeout(), "{error:?}");

    let calls = meta.calls(Some(PHONE_NUMBER_ID), Some(GraphEndpoint::Messages));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].http_status, None, "nothing was answered");
    assert_eq!(calls[0].fault_id.map(|id| id.0), Some(fault));
    assert!(meta.sent_messages(None).is_empty());

    let (status, _) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 200, "the fault answered one call only");
    Ok(())
}

#[tokio::test]
async fn a_delay_makes_a_client_with_a_short_timeout_time_out() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    meta.add_fault(FaultSpec {
        delay_ms: Some(1_000),
        ..FaultSpec::kind(FaultKind::Slow)
    })?;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()?;

    let outcome = impatient
        .post(messages_url(&meta))
        .bearer_auth(ACCESS_TOKEN)
        .json(&text_to(CUSTOMER, "hi"))
        .send()
        .await;
    let Err(error) = outcome else {
        anyhow::bail!("expected a timeout, got {outcome:?}");
    };
    ensure!(error.is_timeout(), "{error:?}");

    // As with Meta, the call goes on without the client: the message is sent and the call logged.
    eventually("the late call is logged", || {
        !meta.calls(Some(PHONE_NUMBER_ID), None).is_empty()
    })
    .await?;
    let calls = meta.calls(Some(PHONE_NUMBER_ID), None);
    assert_eq!(calls[0].http_status, Some(200));
    ensure!(
        calls[0].duration >= Duration::from_millis(1_000),
        "{calls:?}"
    );
    assert_eq!(meta.sent_messages(None).len(), 1);

    let started = tokio::time::Instant::now();
    let (status, _) = send(&meta, &text_to(CUSTOMER, "hi")).await?;
    assert_eq!(status, 200);
    ensure!(
        started.elapsed() < Duration::from_millis(900),
        "no delay once cleared"
    );
    Ok(())
}

#[tokio::test]
async fn the_call_log_counts_every_graph_call_exactly() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    meta.add_fault(FaultSpec {
        endpoint: Some(GraphEndpoint::Messages),
        ..FaultSpec::kind(FaultKind::RateLimited)
    })?;
    let base = meta.base_url();

    let mut sends = tokio::task::JoinSet::new();
    for n in 0..300 {
        let url = messages_url(&meta);
        sends.spawn(async move {
            post_json(
                &url,
                Some(ACCESS_TOKEN),
                &text_to(CUSTOMER, &format!("message {n}")),
            )
            .await
        });
    }
    let mut statuses = Vec::new();
    while let Some(sent) = sends.join_next().await {
        statuses.push(sent??.0);
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 299);
    assert_eq!(statuses.iter().filter(|&&s| s == 400).count(), 1);
    for _ in 0..3 {
        http()
            .get(format!("{base}/v24.0/{PHONE_NUMBER_ID}"))
            .bearer_auth(ACCESS_TOKEN)
            .send()
            .await?;
    }
    http().get(format!("{base}/v24.0/1/2/3")).send().await?;
    // Admin calls are not Graph calls.
    http()
        .get(format!("{base}/admin/deliveries"))
        .send()
        .await?;

    let sends = meta.calls(Some(PHONE_NUMBER_ID), Some(GraphEndpoint::Messages));
    assert_eq!(sends.len(), 300);
    assert_eq!(sends.iter().filter(|c| c.fault_id.is_some()).count(), 1);
    ensure!(
        sends
            .iter()
            .all(|c| c.method == "POST" && c.path == format!("/v24.0/{PHONE_NUMBER_ID}/messages")),
        "method and path are logged"
    );
    assert_eq!(meta.calls(None, Some(GraphEndpoint::PhoneNumber)).len(), 3);
    assert_eq!(meta.calls(None, Some(GraphEndpoint::Other)).len(), 1);
    assert_eq!(meta.calls(None, None).len(), 304);
    assert_eq!(meta.sent_messages(None).len(), 299);

    let response = http()
        .get(format!(
            "{base}/admin/calls?phone_number_id={PHONE_NUMBER_ID}&endpoint=messages"
        ))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await?;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(300));
    let first = &listed["data"][0];
    for key in [
        "method",
        "path",
        "endpoint",
        "phone_number_id",
        "http_status",
        "fault_id",
        "received_at_ms",
        "duration_ms",
    ] {
        ensure!(first.get(key).is_some(), "{key} missing: {first}");
    }
    let unfiltered: Value = http()
        .get(format!("{base}/admin/calls?phone_number_id=&endpoint="))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(unfiltered["data"].as_array().map(Vec::len), Some(304));
    let bad = http()
        .get(format!("{base}/admin/calls?endpoint=everything"))
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    Ok(())
}

#[tokio::test]
async fn faults_are_listed_removed_and_cleared_and_bad_ones_refused() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let base = meta.base_url();
    let first = add_fault_over_http(&meta, &json!({"kind": "rate_limited", "times": 5})).await?;
    add_fault_over_http(&meta, &json!({"kind": "slow", "delay_ms": 10})).await?;
    let listed = list_faults(&meta).await?;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed["data"][0]["endpoint"], "any");
    assert_eq!(listed["data"][0]["remaining"], 5);

    let removed = http()
        .delete(format!("{base}/admin/faults/{first}"))
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    let again = http()
        .delete(format!("{base}/admin/faults/{first}"))
        .send()
        .await?;
    assert_eq!(again.status(), 404);
    assert_eq!(meta.faults().len(), 1);
    let cleared = http().delete(format!("{base}/admin/faults")).send().await?;
    assert_eq!(cleared.status(), 204);
    assert!(meta.faults().is_empty());

    let url = format!("{base}/admin/faults");
    for (body, status, mention) in [
        (json!({"kind": "slow"}), 400, "delay_ms"),
        (json!({}), 400, "kind"),
        (
            json!({"kind": "service_unavailable", "probability": 1.5}),
            400,
            "probability",
        ),
        (
            json!({"kind": "rate_limited", "accept_before_drop": true}),
            400,
            "accept_before_drop",
        ),
        (json!({"kind": "meteor_strike"}), 422, "meteor_strike"),
        (
            json!({"kind": "rate_limited", "endpoint": "everything"}),
            422,
            "endpoint",
        ),
        (
            json!({"kind": "rate_limited", "phone_number_id": "abc"}),
            400,
            "phone_number_id",
        ),
    ] {
        let (code, answer) = post_json(&url, None, &body).await?;
        assert_eq!(code, status, "{body} -> {answer}");
        ensure!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(mention)),
            "{body} -> {answer}"
        );
    }
    assert!(meta.faults().is_empty());
    Ok(())
}

#[tokio::test]
async fn wagates_graph_client_sorts_each_fault_into_its_class() -> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let client = cloudapi::GraphClient::new(cloudapi::GraphConfig {
        base_url: reqwest::Url::parse(&meta.base_url())?,
        timeout: Duration::from_millis(500),
        ..Default::default()
    })?;
    let token = SecretString::from(ACCESS_TOKEN);
    let request = SendMessageRequest::text(CUSTOMER, "hi");

    let cases = [
        (FaultKind::RateLimited, ErrorClass::RateLimited),
        (FaultKind::PairRateLimited, ErrorClass::PairRateLimited),
        (FaultKind::ServiceUnavailable, ErrorClass::RetryLater),
        (FaultKind::ExpiredToken, ErrorClass::CredentialsRejected),
        (FaultKind::WindowClosed, ErrorClass::ServiceWindowClosed),
        (FaultKind::InternalError, ErrorClass::RetryLater),
    ];
    for (kind, class) in cases {
        meta.add_fault(FaultSpec::kind(kind))?;
        let outcome = client.send_message(&token, PHONE_NUMBER_ID, &request).await;
        let Err(error) = outcome else {
            anyhow::bail!("{kind:?}: expected an error, got {outcome:?}");
        };
        assert_eq!(error.class(), class, "{kind:?}: {error}");
        ensure!(
            !error.outcome_unknown(),
            "{kind:?}: Meta answered, so nothing is unknown"
        );
    }

    meta.add_fault(FaultSpec {
        drop_connection: true,
        ..FaultSpec::default()
    })?;
    let dropped = client.send_message(&token, PHONE_NUMBER_ID, &request).await;
    let Err(error) = dropped else {
        anyhow::bail!("expected a transport error, got {dropped:?}");
    };
    assert_eq!(error.class(), ErrorClass::RetryLater);
    ensure!(
        error.outcome_unknown(),
        "a dropped connection may have sent: {error}"
    );

    meta.add_fault(FaultSpec {
        delay_ms: Some(2_000),
        ..FaultSpec::kind(FaultKind::Slow)
    })?;
    let late = client.send_message(&token, PHONE_NUMBER_ID, &request).await;
    let Err(error) = late else {
        anyhow::bail!("expected a timeout, got {late:?}");
    };
    ensure!(
        error.outcome_unknown(),
        "a timed-out call may have sent: {error}"
    );

    let sent = client
        .send_message(&token, PHONE_NUMBER_ID, &request)
        .await?;
    ensure!(sent.wamid().is_some_and(|w| w.starts_with("wamid.")));
    Ok(())
}

/// Sends `count` texts through `workers` concurrent clients; the answers' statuses and bodies.
async fn many_sends(
    meta: &emulator::RunningEmulator,
    count: usize,
    workers: usize,
) -> anyhow::Result<Vec<(u16, Value)>> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let url = messages_url(meta);
        let share = count / workers + usize::from(worker < count % workers);
        tasks.spawn(async move {
            let mut answers = Vec::with_capacity(share);
            for n in 0..share {
                let body = text_to(CUSTOMER, &format!("worker {worker} message {n}"));
                answers.push(post_json(&url, Some(ACCESS_TOKEN), &body).await?);
            }
            Ok::<_, anyhow::Error>(answers)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(answers) = tasks.join_next().await {
        all.extend(answers??);
    }
    Ok(all)
}

#[tokio::test]
async fn a_30_percent_5xx_fault_answers_between_20_and_40_percent_of_1000_sends_until_removed()
-> anyhow::Result<()> {
    let meta = ready_emulator().await?;
    let fault = add_fault_over_http(
        &meta,
        &json!({"endpoint": "messages", "kind": "service_unavailable", "probability": 0.3}),
    )
    .await?;

    let answers = many_sends(&meta, 1_000, 16).await?;
    let failed = answers.iter().filter(|(status, _)| *status == 503).count();
    let sent = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(failed + sent, 1_000);
    // Binomial(1000, 0.3) has a standard deviation of 14.5 calls: 20% and 40% are 7 of them away.
    ensure!(
        (200..=400).contains(&failed),
        "{failed} of 1000 answered 503"
    );
    for (status, body) in &answers {
        if *status == 503 {
            meta_error(body, 2)?;
        }
    }
    assert_eq!(meta.sent_messages(None).len(), sent);
    let by_fault = meta
        .calls(Some(PHONE_NUMBER_ID), None)
        .iter()
        .filter(|c| c.fault_id.map(|id| id.0) == Some(fault))
        .count();
    assert_eq!(by_fault, failed);

    let listed = list_faults(&meta).await?;
    assert_eq!(listed["data"][0]["probability"], 0.3, "{listed}");
    assert_eq!(listed["data"][0]["remaining"], Value::Null, "no cap");
    assert_eq!(listed["data"][0]["answered"], failed);

    let removed = http()
        .delete(format!("{}/admin/faults/{fault}", meta.base_url()))
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    let answers = many_sends(&meta, 50, 5).await?;
    ensure!(answers.iter().all(|(status, _)| *status == 200), "removed");
    Ok(())
}

#[tokio::test]
async fn a_probability_fault_with_times_stops_after_answering_that_many_calls() -> anyhow::Result<()>
{
    let meta = ready_emulator().await?;
    meta.add_fault(FaultSpec {
        probability: Some(1.0),
        times: 3,
        ..FaultSpec::kind(FaultKind::ExpiredToken)
    })?;
    let answers = many_sends(&meta, 10, 1).await?;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [401, 401, 401, 200, 200, 200, 200, 200, 200, 200]);
    assert_eq!(meta_error(&answers[0].1, 190)?["error_subcode"], 463);
    assert!(meta.faults().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_timeout_fault_holds_the_call_past_the_clients_timeout_and_the_send_still_goes_out_with_its_statuses()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into(), "delivered".into()],
        auto_status_delay_ms: 10,
        ..registration(Some(receiver.url.clone()))
    })?;
    let fault = add_fault_over_http(
        &meta,
        &json!({"endpoint": "messages", "kind": "timeout", "delay_ms": 500}),
    )
    .await?;

    // wagate's own client, so its "outcome unknown" rule meets a send that did go out.
    let client = cloudapi::GraphClient::new(cloudapi::GraphConfig {
        base_url: reqwest::Url::parse(&meta.base_url())?,
        timeout: Duration::from_millis(100),
        ..Default::default()
    })?;
    let token = SecretString::from(ACCESS_TOKEN);
    let request: SendMessageRequest = serde_json::from_value(template_to(CUSTOMER))?;
    let outcome = client.send_message(&token, PHONE_NUMBER_ID, &request).await;
    let Err(error) = outcome else {
        anyhow::bail!("expected a timeout, got {outcome:?}");
    };
    ensure!(error.outcome_unknown(), "{error}");
    assert!(
        meta.sent_messages(None).is_empty(),
        "not yet: the call is still held"
    );

    eventually("the held send is accepted", || {
        meta.sent_messages(None).len() == 1
    })
    .await?;
    let wamid = meta.sent_messages(None)[0].wamid.clone();
    let found = wait_for_statuses(&receiver, 2).await?;
    let shown: Vec<(&Value, &Value)> = found.iter().map(|s| (&s["id"], &s["status"])).collect();
    assert_eq!(
        shown,
        [
            (&json!(wamid), &json!("sent")),
            (&json!(wamid), &json!("delivered"))
        ]
    );
    eventually("the call is logged", || {
        !meta.calls(Some(PHONE_NUMBER_ID), None).is_empty()
    })
    .await?;
    let calls = meta.calls(Some(PHONE_NUMBER_ID), None);
    assert_eq!(calls.len(), 1, "one call, not retried: {calls:?}");
    assert_eq!(meta.sent_messages(None).len(), 1);
    assert_eq!(calls[0].http_status, Some(200));
    assert_eq!(calls[0].fault_id.map(|id| id.0), Some(fault));
    ensure!(calls[0].duration >= Duration::from_millis(500), "{calls:?}");
    assert_eq!(
        meta.send_counters(PHONE_NUMBER_ID)
            .map(|c| c.accepted_sends),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn drop_connection_can_accept_the_send_before_dropping_or_drop_it_unsent()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = spawn_emulator().await?;
    meta.register_phone_number(PhoneNumberRegistration {
        auto_statuses: vec!["sent".into()],
        auto_status_delay_ms: 10,
        ..registration(Some(receiver.url.clone()))
    })?;
    customer_writes_now(&meta).await?;
    let accepted_fault = add_fault_over_http(
        &meta,
        &json!({"endpoint": "messages", "drop_connection": true, "accept_before_drop": true}),
    )
    .await?;
    let sent = http()
        .post(messages_url(&meta))
        .bearer_auth(ACCESS_TOKEN)
        .json(&text_to(CUSTOMER, "lost answer"))
        .send()
        .await;
    ensure!(sent.is_err(), "the connection was dropped: {sent:?}");
    let sent = meta.sent_messages(None);
    assert_eq!(sent.len(), 1, "accepted before the drop");
    let found = wait_for_statuses(&receiver, 1).await?;
    assert_eq!(found[0]["id"], sent[0].wamid.as_str());

    meta.add_fault(FaultSpec {
        endpoint: Some(GraphEndpoint::Messages),
        drop_connection: true,
        ..FaultSpec::default()
    })?;
    let unsent = http()
        .post(messages_url(&meta))
        .bearer_auth(ACCESS_TOKEN)
        .json(&text_to(CUSTOMER, "never sent"))
        .send()
        .await;
    ensure!(unsent.is_err(), "the connection was dropped: {unsent:?}");
    assert_eq!(meta.sent_messages(None).len(), 1, "nothing more was sent");

    let calls = meta.calls(Some(PHONE_NUMBER_ID), Some(GraphEndpoint::Messages));
    assert_eq!(calls.len(), 2);
    ensure!(calls.iter().all(|c| c.http_status.is_none()), "{calls:?}");
    assert_eq!(calls[0].fault_id.map(|id| id.0), Some(accepted_fault));
    Ok(())
}
