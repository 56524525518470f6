//! The sender: runs a message's send job. It waits for the phone number's throughput budget and
//! the recipient's pair budget, opens the access token only for the call, sends through the Graph
//! client and records Meta's answer:
//!
//! - accepted: the wamid is stored; `sent`, `delivered` and `read` then come from status webhooks;
//! - rate limited (130429, 131056, 4, 80007) or a temporary error (5xx, 131000, …): the number or
//!   recipient is held back and the send is retried with backoff, up to the configured attempts;
//! - window closed, invalid number, template or policy errors: failed at once with Meta's code and text;
//! - token refused (0, 190): the message fails, the connection is marked `needs_reauth`, every send
//!   of it still queued fails with that reason, and a `connection.updated` event goes out;
//! - outcome unknown (the call timed out or the connection broke after the request left): the
//!   message is never sent again, because Meta may have taken it. Every send carries our message id
//!   in `biz_opaque_callback_data`, so a status webhook still ties Meta's wamid to the message; if
//!   none arrives within the grace period, the message fails with code `send_outcome_unknown`,
//!   a failure a later status webhook from Meta still overrides.
//!
//! So a message never stays `queued`: each path ends in a wamid or a failure with a reason.

use std::time::Duration;

use cloudapi::error::ErrorClass;
use cloudapi::send::SendMessageRequest;
use cloudapi::{GraphError, MetaError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::CALLBACK_PREFIX;
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::jobs::JobFailure;
use crate::limits::{Quota, RateLimiter};
use crate::realtime::{Event, kind};
use crate::store::StoreError;
use crate::store::connections::{ConnectionRow, STATUS_CONNECTED, STATUS_NEEDS_REAUTH};
use crate::store::jobs::{Job, NewJob};
use crate::store::messages::{MessageError, MessageRow, StatusChange};
use crate::vault::SecretSlot;

/// The job kind that closes the books on a send whose outcome is unknown.
pub const RECONCILE_JOB: &str = "reconcile_send";

/// How long a job may wait in place for its run instant; longer waits give the job's slot back
/// (keeping the reservation), so one busy number never holds every sender.
const WAIT_IN_PLACE_MS: i64 = 50;
/// A send deferred to its reserved slot wakes this much earlier, to do its database work first:
/// a call that leaves late bunches with the next ones, and Meta counts every second.
const SLOT_LEAD_MS: i64 = 250;
/// How long before its instant a send marks itself started: enough for that one write.
const MARK_LEAD_MS: i64 = 30;
/// How late a send may be before it counts as having missed its instant (a metric: the sender
/// falling behind its schedule).
const LATE_TOLERANCE_MS: i64 = 100;
/// The share of a number's throughput its reservations are spaced at: arrival at Meta jitters by
/// a few milliseconds, and pacing a hair under the limit keeps any one second under it.
const THROUGHPUT_HEADROOM: f64 = 0.97;
/// The most sends in any one second as Meta counts them, as a share of the limit: the departure
/// log counts each send until its answer is back, so it may allow nearly all of the limit; the
/// sliver left covers clocks that tick differently.
const DEPARTURE_SHARE: f64 = 0.99;
/// How long after it left a send whose answer is not back yet counts as arriving: Meta's front
/// door counts a request well before it answers, and a far-away Meta should not cost the number
/// its pace for the whole of a slow answer. Close by (the emulator, a fast link) the answer comes
/// first and is the bound.
const ARRIVAL_BOUND: Duration = Duration::from_millis(100);
/// How long a number is held back after Meta said it went too fast.
const THROUGHPUT_PENALTY: Duration = Duration::from_millis(500);
/// How long a recipient is held back after Meta's pair rate limit.
const PAIR_PENALTY: Duration = Duration::from_secs(6);

/// A send job's payload: the message, and the budget instants already reserved for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendPayload {
    pub message_id: String,
    /// When the recipient's pair budget reserved for this send is due (Unix ms).
    #[serde(default)]
    pub pair_at: Option<i64>,
    /// When the number's throughput budget reserved for this send is due (Unix ms).
    #[serde(default)]
    pub slot_at: Option<i64>,
}

impl SendPayload {
    pub fn new(message_id: &str) -> Self {
        Self {
            message_id: message_id.to_owned(),
            pair_at: None,
            slot_at: None,
        }
    }

    /// The instant the send may leave, once both budgets are reserved.
    fn departure(&self) -> Option<i64> {
        Some(self.pair_at?.max(self.slot_at?))
    }
}

/// Reserves what a send still lacks (the recipient's pair budget first, then the number's
/// throughput) and answers when its job should run: shortly before it may leave, so the
/// database work is done in time. Enqueueing calls it too, so a burst of sends is spread over
/// its slots at once instead of each send taking and giving back a job slot to find its place.
pub async fn schedule(
    limiter: &RateLimiter,
    connection: &ConnectionRow,
    wa_id: &str,
    mut payload: SendPayload,
) -> (i64, SendPayload) {
    if payload.pair_at.is_none() {
        let wait = limiter
            .reserve(&pair_key(connection, wa_id), Quota::pair_default())
            .await;
        payload.pair_at = Some(now_ms() + millis(wait));
    }
    let pair_at = payload.pair_at.unwrap_or_default();
    // A recipient waited on for seconds does not hold a throughput slot meanwhile.
    if payload.slot_at.is_none() && pair_at - now_ms() <= SLOT_LEAD_MS {
        let wait = limiter
            .reserve(&number_key(connection), number_quota(connection))
            .await;
        payload.slot_at = Some(now_ms() + millis(wait));
    }
    let leave = payload.departure().unwrap_or(pair_at);
    (leave - SLOT_LEAD_MS, payload)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Runs one send job.
#[tracing::instrument(skip_all, fields(message_id))]
pub async fn run_send(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: SendPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    tracing::Span::current().record("message_id", payload.message_id.as_str());
    let store = &state.store;
    let message = store
        .message_by_id(&payload.message_id)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobFailure::Permanent("the message no longer exists".into()))?;
    if message.status != "queued" || message.wamid.is_some() {
        // Already sent, failed or answered for by a status webhook: nothing left to do.
        return Ok(());
    }
    if message.send_started_at.is_some() {
        // An earlier attempt may have reached Meta and we never learned the answer (the process
        // died mid-call): never send it again; let the reconciler decide.
        schedule_reconcile(state, &message).await?;
        return Ok(());
    }
    let connection = store
        .connection_by_id(&message.connection_id)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobFailure::Permanent("the connection no longer exists".into()))?;
    if connection.status != STATUS_CONNECTED {
        let reason = if connection.status == STATUS_NEEDS_REAUTH {
            connection
                .status_reason
                .clone()
                .unwrap_or_else(|| "Meta refused the connection's access token".into())
        } else {
            "the connection was disconnected before the message was sent".into()
        };
        fail(
            state,
            &message,
            MessageError {
                code: None,
                title: Some("Connection unavailable".into()),
                message: Some(reason.clone()),
            },
        )
        .await?;
        return Err(JobFailure::Permanent(reason));
    }

    if message.send_at.is_some()
        && let Some(refusal) = recheck_scheduled(state, &message).await?
    {
        let reason = refusal.message.clone().unwrap_or_default();
        fail(state, &message, refusal).await?;
        return Err(JobFailure::Permanent(reason));
    }

    let slot_at = match take_budget(state, &connection, &message, &payload).await {
        Ok(slot_at) => slot_at,
        Err(deferred) => return Err(deferred),
    };
    // Everything the call needs is ready before its instant, so nothing stands between the
    // last budget check and the request leaving.
    let token = match open_token(state, &connection) {
        Ok(token) => token,
        Err(reason) => {
            fail(
                state,
                &message,
                MessageError {
                    code: None,
                    title: Some("Credentials unreadable".into()),
                    message: Some(reason.clone()),
                },
            )
            .await?;
            return Err(JobFailure::Permanent(reason));
        }
    };
    let request = build_request(&message).map_err(|e| JobFailure::Permanent(e.to_string()))?;
    // Marked only just before the call: a process that dies between the mark and the call leaves
    // a message that can never be sent again (it fails after the grace period), so that gap is
    // kept to the time the write takes.
    sleep_until(slot_at - MARK_LEAD_MS).await;
    if !store
        .mark_send_started(&message.id, now_ms())
        .await
        .map_err(retry)?
    {
        return not_marked(state, &message.id).await;
    }
    // A send that missed its instant leaves as soon as the departure log lets it. Taking a new
    // instant instead would waste the one it had: under load many sends miss theirs by a little,
    // and re-reserving each one halved the number's pace (the departure log alone keeps a bunch
    // of late sends under Meta's count).
    if now_ms() > slot_at + LATE_TOLERANCE_MS {
        metrics::counter!("wagate_send_slot_missed_total").increment(1);
    }
    sleep_until(slot_at).await;
    // The last guard: however sends were delayed on their way here, no second gets more of them
    // than Meta allows.
    let cap = departure_cap(&connection);
    let departure = loop {
        match state
            .limiter
            .admit_departure(
                &number_key(&connection),
                cap,
                Duration::from_secs(1),
                ARRIVAL_BOUND,
            )
            .await
        {
            Ok(departure) => break departure,
            Err(wait) => {
                metrics::counter!("wagate_send_window_waits_total").increment(1);
                metrics::histogram!("wagate_rate_limit_wait_seconds", "stage" => "departure")
                    .record(wait.as_secs_f64());
                tokio::time::sleep(wait).await;
            }
        }
    };
    let started = now_ms();
    // Behind schedule by this much when the call left: how well the sender keeps its pace.
    metrics::histogram!("wagate_send_departure_lateness_seconds")
        .record((started - slot_at).max(0) as f64 / 1000.0);
    let answer = state
        .graph
        .send_message(&token, &connection.phone_number_id, &request)
        .await;
    state.limiter.settle_departure(departure).await;
    metrics::histogram!("wagate_send_seconds").record((now_ms() - started).max(0) as f64 / 1000.0);
    match answer {
        Ok(response) => {
            let Some(wamid) = response.wamid() else {
                // An answer without a message id: Meta took something, we cannot tell what.
                schedule_reconcile(state, &message).await?;
                return Ok(());
            };
            record_accepted(state, &message, wamid).await?;
            metrics::counter!("wagate_messages_accepted_total").increment(1);
            count_send("accepted", None);
            Ok(())
        }
        Err(error) => handle_error(state, job, &connection, &message, error).await,
    }
}

/// A scheduled send was accepted hours or days ago: what allowed it then is asked again as it
/// leaves. A free-form message needs the customer's window open now, and a marketing template a
/// contact who has not opted out since. Answers why it may not leave, in the words `enqueue`
/// would have used.
async fn recheck_scheduled(
    state: &AppState,
    message: &MessageRow,
) -> Result<Option<MessageError>, JobFailure> {
    let store = &state.store;
    let mut conn = store
        .reader()
        .acquire()
        .await
        .map_err(|e| retry(StoreError::from(e)))?;
    if message.message_type != "template" {
        let window = store
            .conversation_window(&mut conn, &message.conversation_id)
            .await
            .map_err(retry)?;
        let now = now_ms();
        if window.is_none_or(|closes| closes <= now) {
            metrics::counter!("wagate_scheduled_sends_refused_total", "reason" => "outside_service_window")
                .increment(1);
            return Ok(Some(MessageError {
                code: None,
                title: Some("outside_service_window".into()),
                message: Some(format!(
                    "Scheduled for {}, but the customer's 24-hour window {} by then, so only a template could be sent. Send an approved template instead.",
                    crate::clock::rfc3339(message.send_at.unwrap_or(now)),
                    window.map_or_else(
                        || "was never open".to_owned(),
                        |closes| format!("closed at {}", crate::clock::rfc3339(closes))
                    )
                )),
            }));
        }
    } else if message
        .template_category
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case(super::enqueue::MARKETING))
        && let Some(reason) = store
            .contact_opted_out(&mut conn, &message.contact_id)
            .await
            .map_err(retry)?
    {
        metrics::counter!("wagate_scheduled_sends_refused_total", "reason" => "contact_opted_out")
            .increment(1);
        return Ok(Some(MessageError {
            code: None,
            title: Some("contact_opted_out".into()),
            message: Some(format!(
                "{} opted out of marketing ({reason}) after this marketing template was scheduled; it was not sent.",
                message.contact_wa_id
            )),
        }));
    }
    Ok(None)
}

/// The message could not be marked as leaving: another attempt took it or it was answered for
/// (nothing to do), or its connection stopped being usable while this attempt waited for its
/// instant (Meta refused the token for an earlier send). Then the attempt runs again, and the
/// connection check at its start fails the message with the reason.
async fn not_marked(state: &AppState, message_id: &str) -> Result<(), JobFailure> {
    let current = state.store.message_by_id(message_id).await.map_err(retry)?;
    match current {
        Some(m) if m.status == "queued" && m.wamid.is_none() && m.send_started_at.is_none() => Err(
            JobFailure::Retry("the connection stopped being usable before the call".into()),
        ),
        _ => Ok(()),
    }
}

/// Reserves whatever the send still lacks and answers the instant it may leave; a far instant
/// defers the job (its payload keeps the reservations) to shortly before it. Reservations queue
/// in order, so messages to one customer go out in the order they were queued.
async fn take_budget(
    state: &AppState,
    connection: &ConnectionRow,
    message: &MessageRow,
    payload: &SendPayload,
) -> Result<i64, JobFailure> {
    let mut current = payload.clone();
    loop {
        let (run_at, next) =
            schedule(&state.limiter, connection, &message.contact_wa_id, current).await;
        let wait = run_at - now_ms();
        if wait > 0 {
            metrics::histogram!("wagate_rate_limit_wait_seconds", "stage" => "budget")
                .record(wait as f64 / 1000.0);
        }
        if wait > WAIT_IN_PLACE_MS {
            return Err(defer(Duration::from_millis(wait as u64), &next));
        }
        if let Some(departure) = next.departure() {
            return Ok(departure);
        }
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        current = next;
    }
}

fn defer(wait: Duration, reserved: &SendPayload) -> JobFailure {
    metrics::counter!("wagate_send_deferred_total").increment(1);
    JobFailure::Defer {
        wait,
        payload: serde_json::to_string(reserved).ok(),
    }
}

fn number_key(connection: &ConnectionRow) -> String {
    format!("number:{}", connection.phone_number_id)
}

fn pair_key(connection: &ConnectionRow, wa_id: &str) -> String {
    format!("pair:{}:{wa_id}", connection.phone_number_id)
}

/// The number's pace: evenly spaced sends (no burst), a hair under its throughput.
fn number_quota(connection: &ConnectionRow) -> Quota {
    let rate = connection.throughput_per_second.clamp(1, 1000) as f64;
    Quota::new(rate * THROUGHPUT_HEADROOM, 1)
}

/// The most sends of a number that may leave in any one second.
fn departure_cap(connection: &ConnectionRow) -> u32 {
    let rate = connection.throughput_per_second.clamp(1, 1000) as f64;
    ((rate * DEPARTURE_SHARE).floor() as u32).max(1)
}

async fn sleep_until(instant_ms: i64) {
    let wait = instant_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

fn open_token(state: &AppState, connection: &ConnectionRow) -> Result<SecretString, String> {
    let sealed = connection
        .access_token
        .as_deref()
        .ok_or_else(|| "the connection has no access token".to_owned())?;
    state
        .vault
        .open(
            SecretSlot::new("connections", "access_token", &connection.id),
            sealed,
        )
        .map_err(|e| e.to_string())
}

/// The Cloud API request stored with the message, plus our callback data.
fn build_request(message: &MessageRow) -> Result<SendMessageRequest, serde_json::Error> {
    let mut body: Value = serde_json::from_str(&message.payload)?;
    body["biz_opaque_callback_data"] = json!(format!("{CALLBACK_PREFIX}{}", message.id));
    serde_json::from_value(body)
}

async fn record_accepted(
    state: &AppState,
    message: &MessageRow,
    wamid: &str,
) -> Result<(), JobFailure> {
    let store = &state.store;
    let now = now_ms();
    // Relaxed: if a power failure loses this commit, the durable "send started" mark keeps the
    // message from ever being sent again, and Meta's status webhooks, which carry our message id
    // in their callback data, tie the wamid to it once more. One flush per send fewer.
    let mut tx = store
        .begin_with(crate::store::Durability::Relaxed)
        .await
        .map_err(retry)?;
    store
        .adopt_wamid(&mut tx, &message.connection_id, &message.id, wamid, now)
        .await
        .map_err(retry)?;
    // Meta's `sent` webhook may have beaten its own answer here; apply what is waiting.
    let changed = crate::inbound::apply::apply_waiting_status_of(store, &mut tx, &message.id, now)
        .await
        .map_err(retry)?;
    tx.commit().await.map_err(|e| retry(StoreError::from(e)))?;
    if let Some(change) = changed {
        publish_status(state, &change, Some(wamid), None);
    }
    Ok(())
}

async fn handle_error(
    state: &AppState,
    job: &Job,
    connection: &ConnectionRow,
    message: &MessageRow,
    error: GraphError,
) -> Result<(), JobFailure> {
    let store = &state.store;
    if error.outcome_unknown() {
        tracing::warn!(error = %error, "send outcome unknown; it will not be sent again");
        metrics::counter!("wagate_send_outcome_unknown_total").increment(1);
        count_send("unknown", None);
        schedule_reconcile(state, message).await?;
        return Ok(());
    }
    // Meta answered: it did not take the message, so it may go again.
    store
        .clear_send_started(&message.id, now_ms())
        .await
        .map_err(retry)?;
    let class = error.class();
    let meta = error.meta_error().cloned();
    let described = describe(&error, meta.as_ref());
    match class {
        ErrorClass::RateLimited => {
            state
                .limiter
                .penalize(
                    &number_key(connection),
                    number_quota(connection),
                    THROUGHPUT_PENALTY,
                )
                .await;
        }
        ErrorClass::PairRateLimited => {
            state
                .limiter
                .penalize(
                    &pair_key(connection, &message.contact_wa_id),
                    Quota::pair_default(),
                    PAIR_PENALTY,
                )
                .await;
        }
        ErrorClass::CredentialsRejected => {
            credentials_refused(state, connection, &described).await?;
        }
        _ => {}
    }
    let meta_code = meta.as_ref().map(|m| m.code);
    if class.is_retryable() && job.attempts < job.max_attempts {
        metrics::counter!("wagate_send_retries_total").increment(1);
        count_send("retried", meta_code);
        // The next attempt takes new budget: the reserved slots were used by this one.
        let fresh = serde_json::to_string(&SendPayload::new(&message.id)).unwrap_or_default();
        state
            .store
            .set_job_payload(&job.id, &fresh)
            .await
            .map_err(retry)?;
        return Err(JobFailure::Retry(
            described
                .message
                .clone()
                .or(described.title.clone())
                .unwrap_or_else(|| error.to_string()),
        ));
    }
    count_send("failed", meta_code);
    fail(state, message, described.clone()).await?;
    Err(JobFailure::Permanent(
        described.message.unwrap_or_else(|| error.to_string()),
    ))
}

/// One call to Meta by how it ended (`accepted`, `retried`, `failed`, `unknown`) and Meta's code.
fn count_send(outcome: &'static str, meta_code: Option<i64>) {
    let code = meta_code.map_or_else(|| "none".to_owned(), |c| c.to_string());
    metrics::counter!("wagate_sends_total", "outcome" => outcome, "meta_code" => code).increment(1);
}

/// Meta's code, title and most specific text, as the message's error.
fn describe(error: &GraphError, meta: Option<&MetaError>) -> MessageError {
    match meta {
        Some(meta) => MessageError {
            code: Some(meta.code),
            title: meta
                .error_user_title
                .clone()
                .or_else(|| meta.message.clone()),
            message: meta.details().map(str::to_owned),
        },
        None => MessageError {
            code: None,
            title: Some("Meta could not be reached".into()),
            message: Some(error.to_string()),
        },
    }
}

/// Meta refused the token: the connection needs new credentials, and nothing else of it can go.
async fn credentials_refused(
    state: &AppState,
    connection: &ConnectionRow,
    error: &MessageError,
) -> Result<(), JobFailure> {
    let store = &state.store;
    let reason = format!(
        "Meta refused the access token (code {}): {}. Update the connection's access_token.",
        error.code.unwrap_or_default(),
        error.message.as_deref().unwrap_or("no details")
    );
    let now = now_ms();
    store
        .set_connection_status(&connection.id, STATUS_NEEDS_REAUTH, Some(&reason), now)
        .await
        .map_err(retry)?;
    state.webhook_keys.forget_connection(&connection.id);
    let failed = store
        .fail_queued_sends(
            &connection.id,
            &MessageError {
                code: error.code,
                title: Some("Connection needs new credentials".into()),
                message: Some(reason.clone()),
            },
            now,
        )
        .await
        .map_err(retry)?;
    for change in &failed {
        publish_status(state, change, None, None);
    }
    if let Ok(Some(row)) = store
        .connection(&connection.tenant_id, &connection.id)
        .await
    {
        state.events.publish(Event {
            tenant_id: row.tenant_id.clone(),
            kind: kind::CONNECTION_UPDATED,
            data: json!({
                "id": row.id,
                "status": row.status,
                "status_reason": row.status_reason,
            }),
        });
    }
    tracing::error!(connection_id = %connection.id, failed_sends = failed.len(), "connection needs new credentials");
    Ok(())
}

async fn fail(
    state: &AppState,
    message: &MessageRow,
    error: MessageError,
) -> Result<(), JobFailure> {
    let changed = state
        .store
        .fail_message(&message.id, &error, now_ms())
        .await
        .map_err(retry)?;
    if let Some(change) = changed {
        metrics::counter!("wagate_messages_failed_total").increment(1);
        publish_status(state, &change, message.wamid.as_deref(), Some(&error));
    }
    Ok(())
}

pub(crate) fn publish_status(
    state: &AppState,
    change: &StatusChange,
    wamid: Option<&str>,
    error: Option<&MessageError>,
) {
    state.events.publish(Event {
        tenant_id: change.tenant_id.clone(),
        kind: kind::MESSAGE_STATUS,
        data: json!({
            "id": change.message_id,
            "conversation_id": change.conversation_id,
            "wamid": wamid,
            "status": change.status,
            "error": error.map(|e| json!({"code": e.code, "title": e.title, "message": e.message})),
        }),
    });
}

async fn schedule_reconcile(state: &AppState, message: &MessageRow) -> Result<(), JobFailure> {
    let now = now_ms();
    let grace = state.settings.send_outcome_grace.as_millis() as i64;
    let payload = json!({ "message_id": message.id }).to_string();
    let unique_key = format!("{RECONCILE_JOB}:{}", message.id);
    let mut tx = state.store.begin().await.map_err(retry)?;
    state
        .store
        .enqueue_job(
            &mut tx,
            &NewJob {
                kind: RECONCILE_JOB,
                payload: &payload,
                tenant_id: Some(&message.tenant_id),
                unique_key: Some(&unique_key),
                run_at: now + grace,
                max_attempts: 5,
                now,
            },
        )
        .await
        .map_err(retry)?;
    tx.commit().await.map_err(|e| retry(StoreError::from(e)))?;
    Ok(())
}

/// Closes the books on a send whose outcome was unknown: if a status webhook has tied a wamid to
/// it by now, Meta took it; if not, it failed, and it is not sent again.
pub async fn run_reconcile(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: SendPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    let Some(message) = state
        .store
        .message_by_id(&payload.message_id)
        .await
        .map_err(retry)?
    else {
        return Ok(());
    };
    if message.wamid.is_some() || message.status != "queued" {
        return Ok(());
    }
    let grace = state.settings.send_outcome_grace.as_secs();
    let error = MessageError {
        code: None,
        title: Some("send_outcome_unknown".into()),
        message: Some(format!(
            "The call to Meta timed out or broke off after the message was handed over, and Meta did not confirm it within {grace} s. It was not sent again, to avoid a duplicate; send it again if the customer did not get it. Should Meta still report on it, its status follows."
        )),
    };
    let changed = state
        .store
        .fail_unconfirmed_send(&message.id, &error, now_ms())
        .await
        .map_err(retry)?;
    if let Some(change) = changed {
        metrics::counter!("wagate_messages_failed_total").increment(1);
        publish_status(state, &change, None, Some(&error));
    }
    Ok(())
}

fn retry(error: StoreError) -> JobFailure {
    JobFailure::Retry(error.to_string())
}
