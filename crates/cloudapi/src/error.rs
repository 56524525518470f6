//! Meta's error shapes (the Graph API's `{"error": {...}}` answer and the error objects inside
//! webhooks) and what each error code means for the caller: retry, slow down, or give up.

use serde::{Deserialize, Serialize};

use crate::shared::Extra;

/// The body of a failed Graph API call: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaErrorEnvelope {
    pub error: MetaError,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The error Meta's Graph API answers with. Act on `code`, never on the wording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaError {
    pub code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `OAuthException` and the like.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Deprecated by Meta from v16.0, still sent by parts of the Graph API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    /// Meta's request id: what Meta support asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MetaError {
    /// What the caller should do about this error.
    pub fn class(&self) -> ErrorClass {
        classify(self.code)
    }

    /// The most specific human explanation Meta gave: `error_data.details`, else `message`.
    pub fn details(&self) -> Option<&str> {
        self.error_data
            .as_ref()
            .and_then(|data| data.details.as_deref())
            .or(self.message.as_deref())
    }
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Meta error {}", self.code)?;
        if let Some(details) = self.details() {
            write!(f, ": {details}")?;
        }
        Ok(())
    }
}

/// An error inside a webhook: in `statuses[].errors`, `messages[].errors` or the value-level `errors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    /// A link to Meta's error-code page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ErrorObject {
    /// What the caller should do about this error.
    pub fn class(&self) -> ErrorClass {
        classify(self.code)
    }
}

/// `error_data`: Meta's longer explanation of an error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What an error code means for the caller, after the table in Meta's error-code reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A temporary failure on Meta's side (or the way there): try again with backoff.
    RetryLater,
    /// An app, account or throughput limit: try again with backoff and slow the number down.
    RateLimited,
    /// Too many messages to the same recipient: try again later, for that recipient only.
    PairRateLimited,
    /// More than 24 hours since the customer last wrote: only a template can reach them now.
    ServiceWindowClosed,
    /// The access token is invalid or expired: new credentials are needed.
    CredentialsRejected,
    /// The token lacks a permission: the tenant must grant it.
    PermissionMissing,
    /// Trying again will not help: fail and show Meta's details.
    Permanent,
}

impl ErrorClass {
    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RetryLater | Self::RateLimited | Self::PairRateLimited
        )
    }
}

/// The class of a Meta error code; codes not in the table are [`ErrorClass::Permanent`].
pub fn classify(code: i64) -> ErrorClass {
    known_class(code).unwrap_or(ErrorClass::Permanent)
}

/// The class of a failed HTTP answer, from its status and Meta's code if the body had one.
///
/// A known code decides. Without one, a 5xx is a failure on Meta's side and worth retrying, and a
/// 429 is a rate limit; anything else is permanent.
pub fn classify_response(http_status: u16, code: Option<i64>) -> ErrorClass {
    match code.and_then(known_class) {
        Some(class) => class,
        None if (500..=599).contains(&http_status) => ErrorClass::RetryLater,
        None if http_status == 429 => ErrorClass::RateLimited,
        None => ErrorClass::Permanent,
    }
}

/// The table of Meta's README, and nothing else: `None` for codes it does not name.
fn known_class(code: i64) -> Option<ErrorClass> {
    let class = match code {
        0 | 190 => ErrorClass::CredentialsRejected,
        3 | 10 | 200..=299 => ErrorClass::PermissionMissing,
        4 | 80007 | 130429 => ErrorClass::RateLimited,
        131056 => ErrorClass::PairRateLimited,
        131047 => ErrorClass::ServiceWindowClosed,
        1 | 2 | 131000 | 131057 | 131052 | 131053 => ErrorClass::RetryLater,
        100 | 368 | 131026 | 131051 | 132000..=132016 => ErrorClass::Permanent,
        _ => return None,
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_table_has_its_class() {
        use ErrorClass::*;
        let table: &[(i64, ErrorClass)] = &[
            (0, CredentialsRejected),
            (190, CredentialsRejected),
            (3, PermissionMissing),
            (10, PermissionMissing),
            (200, PermissionMissing),
            (250, PermissionMissing),
            (299, PermissionMissing),
            (4, RateLimited),
            (80007, RateLimited),
            (130429, RateLimited),
            (131056, PairRateLimited),
            (131047, ServiceWindowClosed),
            (131026, Permanent),
            (131051, Permanent),
            (131052, RetryLater),
            (131053, RetryLater),
            (132000, Permanent),
            (132001, Permanent),
            (132016, Permanent),
            (368, Permanent),
            (100, Permanent),
            (131057, RetryLater),
            (1, RetryLater),
            (2, RetryLater),
            (131000, RetryLater),
        ];
        for &(code, class) in table {
            assert_eq!(classify(code), class, "code {code}");
        }
    }

    #[test]
    fn codes_just_outside_the_ranges_and_unknown_codes_are_permanent() {
        for code in [
            199,
            300,
            131999,
            132017,
            5,
            131048,
            130472,
            131049,
            -1,
            i64::MAX,
        ] {
            assert_eq!(classify(code), ErrorClass::Permanent, "code {code}");
        }
    }

    #[test]
    fn only_retry_and_rate_limit_classes_are_retryable() {
        use ErrorClass::*;
        for class in [RetryLater, RateLimited, PairRateLimited] {
            assert!(class.is_retryable(), "{class:?}");
        }
        for class in [
            ServiceWindowClosed,
            CredentialsRejected,
            PermissionMissing,
            Permanent,
        ] {
            assert!(!class.is_retryable(), "{class:?}");
        }
    }

    #[test]
    fn a_5xx_without_a_known_code_is_retried_but_a_known_code_decides() {
        assert_eq!(classify_response(500, None), ErrorClass::RetryLater);
        assert_eq!(classify_response(503, Some(99999)), ErrorClass::RetryLater);
        assert_eq!(
            classify_response(500, Some(190)),
            ErrorClass::CredentialsRejected
        );
        assert_eq!(
            classify_response(400, Some(131047)),
            ErrorClass::ServiceWindowClosed
        );
        assert_eq!(classify_response(429, None), ErrorClass::RateLimited);
        assert_eq!(classify_response(400, None), ErrorClass::Permanent);
        assert_eq!(classify_response(404, Some(99999)), ErrorClass::Permanent);
    }

    #[test]
    fn details_prefer_error_data_over_the_message() {
        let error: MetaError = serde_json::from_value(serde_json::json!({
            "code": 100, "message": "(#100) Invalid parameter",
            "error_data": {"messaging_product": "whatsapp", "details": "Message must be a template message."}
        }))
        .unwrap();
        assert_eq!(error.details(), Some("Message must be a template message."));
        assert_eq!(
            error.to_string(),
            "Meta error 100: Message must be a template message."
        );
    }
}
