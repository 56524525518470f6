//! Switchable faults: answers the emulator gives instead of its normal one (or before it, late), so a
//! client's retries, timeouts and error handling can be tested against real HTTP.
//!
//! A fault answers the next `times` Graph calls it matches, oldest fault first, then clears itself.
//! Matching and counting happen under the emulator's lock, so exactly `times` calls get it however
//! many arrive at once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::calls::GraphEndpoint;
use crate::error::InputError;
use crate::payloads::{self, GraphErrorBody};
use crate::phone_numbers::parse_graph_id;

/// The longest a fault may hold an answer back.
const MAX_DELAY_MS: u64 = 10 * 60 * 1000;

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
    /// HTTP 401, code 190 subcode 463: "Error validating access token: Session has expired on ...".
    ExpiredToken,
    /// HTTP 400, code 131047 "(#131047) Re-engagement message".
    WindowClosed,
    /// The normal answer, `delay_ms` late (which must be given).
    Slow,
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
/// # let _ = three_rate_limits;
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// How many matching calls the fault answers before it clears itself; at least 1.
    #[serde(default = "one")]
    pub times: u32,
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
}

fn one() -> u32 {
    1
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            phone_number_id: None,
            endpoint: None,
            kind: None,
            times: 1,
            delay_ms: None,
            http_status: None,
            error: None,
            drop_connection: false,
        }
    }
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
                    "endpoint must be one of any, messages, phone_number, media, templates, other",
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
    /// Calls it will still answer.
    pub remaining: u32,
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
    /// Close the connection without answering.
    Drop,
}

struct Fault {
    id: FaultId,
    spec: FaultSpec,
    remaining: u32,
    answer: FaultAnswer,
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
        self.active.push(Fault {
            id,
            remaining: spec.times,
            spec,
            answer,
        });
        Ok(id)
    }

    /// Takes one use of the oldest fault matching a call, clearing the fault when it is used up.
    pub fn take(
        &mut self,
        phone_number_id: Option<&str>,
        endpoint: GraphEndpoint,
    ) -> Option<(FaultId, FaultAnswer)> {
        let index = self.active.iter().position(|fault| {
            fault.spec.endpoint.is_none_or(|e| e == endpoint)
                && fault
                    .spec
                    .phone_number_id
                    .as_deref()
                    .is_none_or(|id| Some(id) == phone_number_id)
        })?;
        let fault = &mut self.active[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        let taken = (fault.id, fault.answer.clone());
        if fault.remaining == 0 {
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
    if spec.times == 0 {
        return Err(InputError::new(
            "times",
            "must be at least 1: the number of calls the fault answers",
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
        (true, _, _) => FaultAction::Drop,
        (false, Some(body), Some(status)) => FaultAction::Error { status, body },
        (false, None, Some(status)) => FaultAction::Bare { status },
        (false, _, None) if spec.delay_ms.is_some() => FaultAction::Proceed,
        (false, _, None) => {
            return Err(InputError::new(
                "kind",
                "or one of error, http_status, drop_connection, delay_ms is needed: the fault must do something",
            ));
        }
    };
    Ok(FaultAnswer {
        delay: spec.delay_ms.map(Duration::from_millis),
        action,
    })
}

/// The status and body of a ready-made fault; `None` for `slow`, which answers normally.
fn preset_answer(kind: FaultKind) -> Option<(u16, GraphErrorBody)> {
    Some(match kind {
        FaultKind::RateLimited => (400, GraphErrorBody::rate_limit_hit()),
        FaultKind::PairRateLimited => (400, GraphErrorBody::pair_rate_limit_hit()),
        FaultKind::ServiceUnavailable => (503, GraphErrorBody::service_unavailable()),
        FaultKind::ExpiredToken => {
            // As if the token had lapsed an hour ago.
            let now = payloads::unix_now();
            (401, GraphErrorBody::expired_access_token(now - 3600, now))
        }
        FaultKind::WindowClosed => (400, GraphErrorBody::reengagement_message()),
        FaultKind::Slow => return None,
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
                times: 0,
                ..FaultSpec::kind(FaultKind::RateLimited)
            }),
            Some("times".to_owned())
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
        assert_eq!(faults.list().first().map(|f| f.remaining), Some(1));
        assert!(faults.take(Some("1"), GraphEndpoint::Messages).is_some());
        assert!(faults.take(Some("1"), GraphEndpoint::Messages).is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn any_in_json_means_every_endpoint() {
        let spec: Result<FaultSpec, _> =
            serde_json::from_str(r#"{"endpoint":"any","kind":"rate_limited"}"#);
        assert_eq!(spec.as_ref().ok().map(|s| s.endpoint), Some(None));
        assert_eq!(spec.ok().map(|s| s.times), Some(1));
        let shown = serde_json::to_value(FaultSpec::kind(FaultKind::Slow)).unwrap_or_default();
        assert_eq!(shown["endpoint"], "any");
        let bad: Result<FaultSpec, _> = serde_json::from_str(r#"{"endpoint":"everything"}"#);
        assert!(bad.is_err());
    }
}
