//! Switchable faults: answers the emulator gives instead of its normal one (or before it, late), so a
//! client's retries, timeouts and error handling can be tested against real HTTP.
//!
//! A fault answers the Graph calls it matches, oldest fault first: either the next `times` of them
//! (then it clears itself), or, with a `probability`, that share of them chosen at random until it is
//! removed or has answered `times` calls. Matching, drawing and counting happen under the emulator's
//! lock, so exactly `times` calls get a counted fault however many arrive at once, and a seeded
//! probability fault answers the same number of any given count of calls on every run.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::calls::GraphEndpoint;
use crate::error::InputError;
use crate::payloads::{self, GraphErrorBody};
use crate::phone_numbers::parse_graph_id;

/// The longest a fault may hold an answer back.
const MAX_DELAY_MS: u64 = 10 * 60 * 1000;

/// How long a `timeout` fault holds a call when `delay_ms` is left out: longer than any client
/// waits (wagate's Graph client gives up after 30 seconds by default).
pub const DEFAULT_TIMEOUT_DELAY_MS: u64 = 60 * 1000;

/// Identifies one fault; numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultId(pub u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for FaultId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Ready-made faults, each answering as Meta does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 400, code 130429 "(#130429) Rate limit hit".
    RateLimited,
    /// HTTP 400, code 131056, the pair rate limit (same recipient too often).
    PairRateLimited,
    /// HTTP 503, code 2: Graph down or overloaded for a moment.
    ServiceUnavailable,
    /// HTTP 500, code 1 "(#1) An unknown error occurred": a transient failure inside Graph.
    InternalError,
    /// HTTP 401, code 190 subcode 463: "Error validating access token: Session has expired on ...".
    ExpiredToken,
    /// HTTP 400, code 131047 "(#131047) Re-engagement message".
    WindowClosed,
    /// The normal answer, `delay_ms` late (which must be given).
    Slow,
    /// The call is held longer than a client waits (`delay_ms`, [`DEFAULT_TIMEOUT_DELAY_MS`] when
    /// left out) and then answered normally: as with Meta, a send the client gave up on is still
    /// accepted, recorded, and followed by its status webhooks.
    Timeout,
}

/// A Meta error for a fault to answer with; what is left out is filled in as Meta would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultError {
    pub code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<u32>,
    /// Meta's wording for the code when left out, e.g. "(#131000) Something went wrong".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `OAuthException` when left out.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A JSON object such as `{"messaging_product":"whatsapp","details":"..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<Value>,
}

impl FaultError {
    /// An error with only its code; message and type are Meta's.
    pub fn code(code: u32) -> Self {
        Self {
            code,
            error_subcode: None,
            message: None,
            kind: None,
            error_data: None,
        }
    }

    fn to_body(&self) -> GraphErrorBody {
        GraphErrorBody {
            message: self
                .message
                .clone()
                .unwrap_or_else(|| GraphErrorBody::default_message(self.code)),
            kind: self.kind.clone().unwrap_or_else(|| "OAuthException".into()),
            code: self.code,
            subcode: self.error_subcode,
            error_data: self.error_data.clone(),
            user_message: None,
        }
    }
}

/// A fault to switch on, as `POST /admin/faults` takes it. Explicit fields override what `kind` sets.
///
/// ```
/// use emulator::{FaultKind, FaultSpec, GraphEndpoint};
///
/// let three_rate_limits = FaultSpec {
///     endpoint: Some(GraphEndpoint::Messages),
///     times: 3,
///     ..FaultSpec::kind(FaultKind::RateLimited)
/// };
/// let a_third_of_sends_fail = FaultSpec {
///     endpoint: Some(GraphEndpoint::Messages),
///     probability: Some(0.3),
///     ..FaultSpec::kind(FaultKind::ServiceUnavailable)
/// };
/// # let _ = (three_rate_limits, a_third_of_sends_fail);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Only calls about this number; every number's when `None`.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// Only calls to this endpoint; every endpoint's when `None` (`"any"` in JSON).
    #[serde(
        default,
        serialize_with = "endpoint_or_any",
        deserialize_with = "any_or_endpoint"
    )]
    pub endpoint: Option<GraphEndpoint>,
    /// A ready-made fault; the fields below refine it or, without a kind, make one up.
    #[serde(default)]
    pub kind: Option<FaultKind>,
    /// How many calls the fault answers before it clears itself. 0 (the default, also `null` in
    /// JSON) means "not given": one call for a fault without `probability`, no cap for one with it.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub times: u32,
    /// Answer this share of matching calls (0.0 to 1.0), chosen at random, until the fault is
    /// removed or has answered `times` calls; `None` answers every matching call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Seeds the random choice of a `probability` fault, so a run can be repeated exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Hold the answer back this long (for client timeouts); the normal answer follows unless the
    /// fault also sets an error, a status or a drop.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// The HTTP status to answer; alone (with no error and no kind) the answer has an empty body.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The Meta error to answer with.
    #[serde(default)]
    pub error: Option<FaultError>,
    /// Close the TCP connection without answering.
    #[serde(default)]
    pub drop_connection: bool,
    /// With `drop_connection`: handle the call normally first (a send is accepted, recorded and gets
    /// its statuses) and only then close the connection, as when Meta's answer is lost on the way.
    #[serde(default)]
    pub accept_before_drop: bool,
}

fn null_as_zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(deserializer)?.unwrap_or(0))
}

impl FaultSpec {
    /// A ready-made fault for the next call to any endpoint of any number.
    pub fn kind(kind: FaultKind) -> Self {
        Self {
            kind: Some(kind),
            ..Self::default()
        }
    }
}

fn endpoint_or_any<S: Serializer>(
    endpoint: &Option<GraphEndpoint>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(endpoint.map_or("any", GraphEndpoint::as_str))
}

fn any_or_endpoint<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<GraphEndpoint>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    match text.as_deref() {
        None | Some("any") => Ok(None),
        Some(name) => GraphEndpoint::parse("endpoint", name)
            .map(Some)
            .map_err(|_| {
                serde::de::Error::custom(
                    "endpoint must be one of any, messages, phone_number, media, media_download, templates, other",
                )
            }),
    }
}

/// An active fault as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveFault {
    pub id: FaultId,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Calls it will still answer; `None` (`null`) for a probability fault without a cap.
    pub remaining: Option<u32>,
    /// Calls it has answered so far.
    pub answered: u64,
}

/// How a fault answers, worked out once when it is added.
#[derive(Debug, Clone)]
pub(crate) struct FaultAnswer {
    pub delay: Option<Duration>,
    pub action: FaultAction,
}

#[derive(Debug, Clone)]
pub(crate) enum FaultAction {
    /// Answer normally (after the delay).
    Proceed,
    /// Answer with Meta's error envelope.
    Error { status: u16, body: GraphErrorBody },
    /// Answer with this status and an empty body, as a proxy in front of Graph might.
    Bare { status: u16 },
    /// Close the connection without answering; after handling the call normally when `accept_first`.
    Drop { accept_first: bool },
}

struct Fault {
    id: FaultId,
    spec: FaultSpec,
    /// `None`: no cap.
    remaining: Option<u32>,
    answered: u64,
    /// Each matching call is answered with this chance; `None`: every one.
    probability: Option<f64>,
    /// Its own generator when seeded; the thread's otherwise.
    rng: Option<StdRng>,
    answer: FaultAnswer,
}

impl Fault {
    /// Whether the fault answers this matching call.
    fn fires(&mut self) -> bool {
        let Some(probability) = self.probability else {
            return true;
        };
        let draw: f64 = match &mut self.rng {
            Some(rng) => rng.random(),
            None => rand::rng().random(),
        };
        draw < probability
    }
}

/// The active faults, oldest first.
pub(crate) struct Faults {
    active: Vec<Fault>,
    next_id: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            active: Vec::new(),
            next_id: 1,
        }
    }
}

impl Faults {
    pub fn add(&mut self, mut spec: FaultSpec) -> Result<FaultId, InputError> {
        spec.phone_number_id = spec
            .phone_number_id
            .as_deref()
            .map(|id| parse_graph_id("phone_number_id", id))
            .transpose()?;
        let answer = resolve(&spec)?;
        let id = FaultId(self.next_id);
        self.next_id += 1;
        let remaining = match (spec.times, spec.probability) {
            (0, Some(_)) => None,
            (0, None) => Some(1),
            (times, _) => Some(times),
        };
        self.active.push(Fault {
            id,
            remaining,
            answered: 0,
            probability: spec.probability,
            rng: spec.seed.map(StdRng::seed_from_u64),
            spec,
            answer,
        });
        Ok(id)
    }

    /// The oldest fault that matches a call and answers it (a probability fault may let it pass to
    /// the next one), using up one of its calls and clearing it when none is left.
    pub fn take(
        &mut self,
        phone_number_id: Option<&str>,
        endpoint: GraphEndpoint,
    ) -> Option<(FaultId, FaultAnswer)> {
        let index = self.active.iter_mut().position(|fault| {
            fault.spec.endpoint.is_none_or(|e| e == endpoint)
                && fault
                    .spec
                    .phone_number_id
                    .as_deref()
                    .is_none_or(|id| Some(id) == phone_number_id)
                && fault.fires()
        })?;
        let fault = &mut self.active[index];
        fault.answered += 1;
        if let Some(remaining) = &mut fault.remaining {
            *remaining = remaining.saturating_sub(1);
        }
        let taken = (fault.id, fault.answer.clone());
        if fault.remaining == Some(0) {
            self.active.remove(index);
        }
        Some(taken)
    }

    pub fn list(&self) -> Vec<ActiveFault> {
        self.active
            .iter()
            .map(|fault| ActiveFault {
                id: fault.id,
                spec: fault.spec.clone(),
                remaining: fault.remaining,
                answered: fault.answered,
            })
            .collect()
    }

    /// Removes one fault; `false` when no active fault has this id.
    pub fn remove(&mut self, id: FaultId) -> bool {
        let before = self.active.len();
        self.active.retain(|fault| fault.id != id);
        self.active.len() != before
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }
}

/// Checks a spec and works out its answer: explicit fields first, then the kind's, then Meta's defaults.
fn resolve(spec: &FaultSpec) -> Result<FaultAnswer, InputError> {
    if let Some(probability) = spec.probability
        && !(0.0..=1.0).contains(&probability)
    {
        return Err(InputError::new(
            "probability",
            "must be from 0.0 to 1.0: the share of matching calls the fault answers",
        ));
    }
    if spec.seed.is_some() && spec.probability.is_none() {
        return Err(InputError::new(
            "seed",
            "only makes sense with a probability: it seeds the random choice of calls",
        ));
    }
    if spec.accept_before_drop && !spec.drop_connection {
        return Err(InputError::new(
            "accept_before_drop",
            "needs drop_connection: true; it says whether the call is handled before the connection is dropped",
        ));
    }
    if let Some(delay) = spec.delay_ms
        && delay > MAX_DELAY_MS
    {
        return Err(InputError::new(
            "delay_ms",
            format!("must be at most {MAX_DELAY_MS} (10 minutes)"),
        ));
    }
    if let Some(status) = spec.http_status
        && !(200..=599).contains(&status)
    {
        return Err(InputError::new(
            "http_status",
            "must be an HTTP status from 200 to 599",
        ));
    }
    if let Some(error) = &spec.error
        && error
            .error_data
            .as_ref()
            .is_some_and(|data| !data.is_object())
    {
        return Err(InputError::new(
            "error.error_data",
            "must be a JSON object, e.g. {\"messaging_product\":\"whatsapp\",\"details\":\"...\"}",
        ));
    }
    if spec.kind == Some(FaultKind::Slow) && spec.delay_ms.is_none() {
        return Err(InputError::new(
            "delay_ms",
            "is required for a slow fault: how late to answer, in milliseconds",
        ));
    }
    let delay_ms = match spec.kind {
        Some(FaultKind::Timeout) => Some(spec.delay_ms.unwrap_or(DEFAULT_TIMEOUT_DELAY_MS)),
        _ => spec.delay_ms,
    };
    let preset = spec.kind.and_then(preset_answer);
    let body = spec
        .error
        .as_ref()
        .map(FaultError::to_body)
        .or_else(|| preset.as_ref().map(|(_, body)| body.clone()));
    let status = spec
        .http_status
        .or_else(|| preset.as_ref().map(|(status, _)| *status))
        .or_else(|| body.as_ref().map(|body| default_status(body.code)));
    let action = match (spec.drop_connection, body, status) {
        (true, _, _) => FaultAction::Drop {
            accept_first: spec.accept_before_drop,
        },
        (false, Some(body), Some(status)) => FaultAction::Error { status, body },
        (false, None, Some(status)) => FaultAction::Bare { status },
        (false, _, None) if delay_ms.is_some() => FaultAction::Proceed,
        (false, _, None) => {
            return Err(InputError::new(
                "kind",
                "or one of error, http_status, drop_connection, delay_ms is needed: the fault must do something",
            ));
        }
    };
    Ok(FaultAnswer {
        delay: delay_ms.map(Duration::from_millis),
        action,
    })
}

/// The status and body of a ready-made fault; `None` for `slow` and `timeout`, which answer normally.
fn preset_answer(kind: FaultKind) -> Option<(u16, GraphErrorBody)> {
    Some(match kind {
        FaultKind::RateLimited => (400, GraphErrorBody::rate_limit_hit()),
        FaultKind::PairRateLimited => (400, GraphErrorBody::pair_rate_limit_hit()),
        FaultKind::ServiceUnavailable => (503, GraphErrorBody::service_unavailable()),
        FaultKind::InternalError => (
            500,
            GraphErrorBody::cloud_api(1, "An unknown error occurred", None),
        ),
        FaultKind::ExpiredToken => {
            // As if the token had lapsed an hour ago.
            let now = payloads::unix_now();
            (401, GraphErrorBody::expired_access_token(now - 3600, now))
        }
        FaultKind::WindowClosed => (400, GraphErrorBody::reengagement_message()),
        FaultKind::Slow | FaultKind::Timeout => return None,
    })
}

/// The HTTP status Meta answers a code with.
fn default_status(code: u32) -> u16 {
    match code {
        0 | 102 | 190 => 401,
        2 => 503,
        1 | 131000 => 500,
        3 | 10 | 200..=299 => 403,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(answer: &FaultAnswer) -> Option<(u16, u32)> {
        match &answer.action {
            FaultAction::Error { status, body } => Some((*status, body.code)),
            _ => None,
        }
    }

    #[test]
    fn each_kind_answers_with_metas_status_and_code() {
        let cases = [
            (FaultKind::RateLimited, 400, 130429),
            (FaultKind::PairRateLimited, 400, 131056),
            (FaultKind::ServiceUnavailable, 503, 2),
            (FaultKind::ExpiredToken, 401, 190),
            (FaultKind::WindowClosed, 400, 131047),
            (FaultKind::InternalError, 500, 1),
        ];
        for (kind, status, code) in cases {
            let answer = resolve(&FaultSpec::kind(kind));
            assert_eq!(
                answer.ok().as_ref().and_then(status_and_code),
                Some((status, code)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn explicit_fields_override_the_kind() {
        let spec = FaultSpec {
            http_status: Some(429),
            ..FaultSpec::kind(FaultKind::RateLimited)
        };
        assert_eq!(
            resolve(&spec).ok().as_ref().and_then(status_and_code),
            Some((429, 130429))
        );
        let spec = FaultSpec {
            error: Some(FaultError::code(131000)),
            ..FaultSpec::kind(FaultKind::RateLimited)
        };
        let answer = resolve(&spec).ok();
        assert_eq!(
            answer.as_ref().and_then(status_and_code),
            Some((400, 131000))
        );
        let Some(FaultAction::Error { body, .. }) = answer.map(|a| a.action) else {
            panic!("an error answer");
        };
        assert_eq!(body.message, "(#131000) Something went wrong");
    }

    #[test]
    fn a_fault_that_does_nothing_or_a_slow_one_without_delay_is_refused() {
        let field = |spec: FaultSpec| resolve(&spec).err().map(|e| e.field);
        assert_eq!(field(FaultSpec::default()), Some("kind".to_owned()));
        assert_eq!(
            field(FaultSpec::kind(FaultKind::Slow)),
            Some("delay_ms".to_owned())
        );
        assert_eq!(
            field(FaultSpec {
                probability: Some(1.5),
                ..FaultSpec::kind(FaultKind::RateLimited)
            }),
            Some("probability".to_owned())
        );
        assert_eq!(
            field(FaultSpec {
                probability: Some(f64::NAN),
                ..FaultSpec::kind(FaultKind::RateLimited)
            }),
            Some("probability".to_owned())
        );
        assert_eq!(
            field(FaultSpec {
                seed: Some(7),
                ..FaultSpec::kind(FaultKind::RateLimited)
            }),
            Some("seed".to_owned())
        );
        assert_eq!(
            field(FaultSpec {
                accept_before_drop: true,
                ..FaultSpec::kind(FaultKind::RateLimited)
            }),
            Some("accept_before_drop".to_owned())
        );
        assert!(
            resolve(&FaultSpec {
                delay_ms: Some(10),
                ..FaultSpec::kind(FaultKind::Slow)
            })
            .is_ok_and(|a| matches!(a.action, FaultAction::Proceed))
        );
    }

    #[test]
    fn a_fault_answers_exactly_times_matching_calls_then_clears() {
        let mut faults = Faults::default();
        let added = faults.add(FaultSpec {
            phone_number_id: Some("1".into()),
            endpoint: Some(GraphEndpoint::Messages),
            times: 2,
            ..FaultSpec::kind(FaultKind::RateLimited)
        });
        assert_eq!(added, Ok(FaultId(1)));
        assert!(faults.take(Some("2"), GraphEndpoint::Messages).is_none());
        assert!(faults.take(Some("1"), GraphEndpoint::PhoneNumber).is_none());
        assert!(faults.take(None, GraphEndpoint::Messages).is_none());
        assert!(faults.take(Some("1"), GraphEndpoint::Messages).is_some());
        assert_eq!(faults.list().first().map(|f| f.remaining), Some(Some(1)));
        assert!(faults.take(Some("1"), GraphEndpoint::Messages).is_some());
        assert!(faults.take(Some("1"), GraphEndpoint::Messages).is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn any_in_json_means_every_endpoint() {
        let spec: Result<FaultSpec, _> =
            serde_json::from_str(r#"{"endpoint":"any","kind":"rate_limited"}"#);
        assert_eq!(spec.as_ref().ok().map(|s| s.endpoint), Some(None));
        assert_eq!(spec.ok().map(|s| s.times), Some(0), "not given: once");
        let shown = serde_json::to_value(FaultSpec::kind(FaultKind::Slow)).unwrap_or_default();
        assert_eq!(shown["endpoint"], "any");
        let bad: Result<FaultSpec, _> = serde_json::from_str(r#"{"endpoint":"everything"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn a_timeout_holds_the_call_a_minute_unless_told_and_then_answers_normally() {
        let answer = resolve(&FaultSpec::kind(FaultKind::Timeout));
        assert!(
            answer
                .as_ref()
                .is_ok_and(|a| matches!(a.action, FaultAction::Proceed))
        );
        assert_eq!(
            answer.ok().and_then(|a| a.delay),
            Some(Duration::from_millis(DEFAULT_TIMEOUT_DELAY_MS))
        );
        let short = resolve(&FaultSpec {
            delay_ms: Some(300),
            ..FaultSpec::kind(FaultKind::Timeout)
        });
        assert_eq!(
            short.ok().and_then(|a| a.delay),
            Some(Duration::from_millis(300))
        );
    }

    #[test]
    fn a_probability_fault_has_no_cap_unless_times_is_given() {
        let mut faults = Faults::default();
        let uncapped = faults.add(FaultSpec {
            probability: Some(1.0),
            ..FaultSpec::kind(FaultKind::ServiceUnavailable)
        });
        assert!(uncapped.is_ok());
        for _ in 0..50 {
            assert!(faults.take(None, GraphEndpoint::Messages).is_some());
        }
        let listed = faults.list();
        assert_eq!(
            listed.first().map(|f| (f.remaining, f.answered)),
            Some((None, 50))
        );
        faults.clear();
        let capped = faults.add(FaultSpec {
            probability: Some(1.0),
            times: 3,
            ..FaultSpec::kind(FaultKind::ServiceUnavailable)
        });
        assert!(capped.is_ok());
        let answered = (0..10)
            .filter(|_| faults.take(None, GraphEndpoint::Messages).is_some())
            .count();
        assert_eq!(answered, 3);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn a_seeded_probability_fault_answers_the_same_calls_every_time() {
        let run = || {
            let mut faults = Faults::default();
            let _ = faults.add(FaultSpec {
                probability: Some(0.3),
                seed: Some(42),
                ..FaultSpec::kind(FaultKind::ServiceUnavailable)
            });
            (0..1_000)
                .map(|_| faults.take(None, GraphEndpoint::Messages).is_some())
                .collect::<Vec<bool>>()
        };
        let first = run();
        assert_eq!(first, run());
        let share = first.iter().filter(|&&hit| hit).count();
        assert!((200..=400).contains(&share), "{share}");
    }

    #[test]
    fn a_call_a_probability_fault_lets_pass_can_meet_the_next_fault() {
        let mut faults = Faults::default();
        let never = faults.add(FaultSpec {
            probability: Some(0.0),
            ..FaultSpec::kind(FaultKind::ServiceUnavailable)
        });
        let next = faults.add(FaultSpec::kind(FaultKind::RateLimited));
        assert!(never.is_ok());
        assert_eq!(
            faults.take(None, GraphEndpoint::Messages).map(|(id, _)| id),
            next.ok()
        );
        assert_eq!(faults.list().len(), 1, "the probability fault stays");
    }
}
