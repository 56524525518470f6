//! Signed webhook delivery as Meta does it: POST, retry anything but 200, keep every attempt on record.
//!
//! [`queue`] decides what goes out when (pure, no I/O); [`worker`] sends it, a bounded number at a time.

pub(crate) mod queue;
pub(crate) mod worker;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use crate::records::{millis, optional_unix_millis, unix_millis};

/// Identifies one webhook delivery (its body and all of its attempts); numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeliveryId(pub u64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for DeliveryId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt, or being attempted now.
    Pending,
    /// The phone number has no webhook URL; the delivery goes once one is set.
    AwaitingWebhookUrl,
    /// A POST got HTTP 200.
    Delivered,
    /// Every attempt the retry policy allows failed.
    Failed,
}

/// How one POST ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver answered; only 200 counts as delivered.
    Http { status: u16 },
    /// No answer: connection refused or reset, DNS failure and the like.
    ConnectionFailed { error: String },
    /// No complete answer within the policy's request timeout.
    TimedOut,
}

/// One POST of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The webhook URL at the time of the attempt (it can be changed between attempts).
    pub url: String,
    #[serde(rename = "started_at_ms", serialize_with = "unix_millis")]
    pub started_at: SystemTime,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    pub outcome: AttemptOutcome,
}

/// A webhook body on its way to a phone number's webhook URL, with every attempt so far.
///
/// The emulator keeps every unfinished delivery and the [`crate::RECORDS_KEPT`] that finished last;
/// older finished ones are forgotten.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub phone_number_id: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<DeliveryAttempt>,
    /// Status code of the latest attempt that got an answer.
    pub last_http_status: Option<u16>,
    #[serde(rename = "created_at_ms", serialize_with = "unix_millis")]
    pub created_at: SystemTime,
    #[serde(rename = "delivered_at_ms", serialize_with = "optional_unix_millis")]
    pub delivered_at: Option<SystemTime>,
    /// The exact bytes POSTed and signed; serialized once when the delivery was created.
    #[serde(skip)]
    pub body: Bytes,
}

impl DeliveryRecord {
    /// The body as JSON, for tests that look into what was sent.
    pub fn body_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}
