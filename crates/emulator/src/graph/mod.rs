//! The Graph API endpoints wagate calls, answering as Meta does, errors included.
//!
//! Paths are `/{version}/...` with any `vNN.N` version. Each area (phone numbers, business
//! profiles, messages, media, templates) is a submodule, and [`nodes`] sends `/{version}/{id}` to the area the id belongs to;
//! this module holds what they share: the access-token checks and Meta's error answers.
//! [`intercept`] sits in front of all of them, for faults and the call log.

mod business_profile;
pub(crate) mod intercept;
mod media;
mod messages;
mod nodes;
mod phone_numbers;
mod templates;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::payloads::{self, GraphErrorBody};
use crate::phone_numbers::PhoneNumber;
use crate::state::{EmulatorState, World};

pub(crate) fn router() -> Router<EmulatorState> {
    nodes::router()
        .merge(messages::router())
        .merge(media::router())
        .merge(templates::router())
        .merge(business_profile::router())
}

/// A Graph error answer: Meta's envelope and the HTTP status Meta uses with it.
#[derive(Debug)]
pub(crate) struct GraphError {
    status: StatusCode,
    /// Boxed to keep `Result<_, GraphError>` small on the happy path.
    body: Box<GraphErrorBody>,
}

impl GraphError {
    /// Any error body with the status to answer it with.
    pub fn new(status: StatusCode, body: GraphErrorBody) -> Self {
        Self {
            status,
            body: Box::new(body),
        }
    }

    /// 401, code 190: no token, or one no registered number has.
    pub fn invalid_access_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            GraphErrorBody::invalid_access_token(),
        )
    }

    /// 401, code 190 subcode 463: the token was good and has expired.
    pub fn expired_access_token(expired_at: i64) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            GraphErrorBody::expired_access_token(expired_at, payloads::unix_now()),
        )
    }

    /// 400, code 100: a missing or malformed parameter; `details` names it.
    pub fn invalid_parameter(details: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::invalid_parameter(details.as_ref()),
        )
    }

    /// 400, code 131009: a value over one of Meta's limits; `details` says which.
    pub fn parameter_value_not_valid(details: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::parameter_value_not_valid(details.as_ref()),
        )
    }

    /// 500, code 1: something that should not fail did; the cause is logged by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            GraphErrorBody::cloud_api(1, "An unknown error occurred", None),
        )
    }

    /// 400, code 131053: an upload Meta does not take, or a media id it does not know.
    pub fn media_upload_error(details: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::media_upload_error(details.as_ref()),
        )
    }

    /// 400, code 131047: free-form message outside the customer service window.
    pub fn reengagement_message() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::reengagement_message(),
        )
    }

    /// 400, code 130429: over the number's throughput.
    pub fn rate_limit_hit() -> Self {
        Self::new(StatusCode::BAD_REQUEST, GraphErrorBody::rate_limit_hit())
    }

    /// 400, code 131056: over the pair rate for this recipient.
    pub fn pair_rate_limit_hit() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::pair_rate_limit_hit(),
        )
    }

    /// 400, code 100 / subcode 33: no such object, or the token may not see it.
    pub fn unknown_object(method: &Method, id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::unknown_object(method.as_str(), id),
        )
    }

    /// 400, code 2500: no such path.
    pub fn unknown_path(path: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, GraphErrorBody::unknown_path(path))
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body.to_json())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // Meta repeats the reason in an OAuth challenge; clients that read only headers see it too.
            let challenge = format!(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                self.body.message.replace('"', "'")
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The token of a call, checked as Meta checks it before anything else: missing or unknown, 190;
/// expired, 190/463.
pub(crate) fn check_token<'t>(
    world: &World,
    token: Option<&'t str>,
) -> Result<&'t str, GraphError> {
    let token = token.ok_or_else(GraphError::invalid_access_token)?;
    let mut owners = world.numbers_with_token(token).peekable();
    if owners.peek().is_none() {
        return Err(GraphError::invalid_access_token());
    }
    if let Some(expired_at) = owners.find_map(|n| n.token_expired_at) {
        return Err(GraphError::expired_access_token(expired_at));
    }
    Ok(token)
}

/// The number a call may act on, checked as Meta checks: the token first (unknown: 190; expired:
/// 190/463), then the object (missing, or not this token's: 100/33).
pub(crate) fn authorize<'w>(
    world: &'w World,
    token: Option<&str>,
    method: &Method,
    phone_number_id: &str,
) -> Result<&'w PhoneNumber, GraphError> {
    let token = check_token(world, token)?;
    // A valid token of another number gets the same answer as a missing number, as in Meta.
    world
        .phone_numbers
        .get(phone_number_id)
        .filter(|n| n.has_access_token(token))
        .ok_or_else(|| GraphError::unknown_object(method, phone_number_id))
}

/// A call on a WhatsApp Business Account: the token must be one of the account's numbers'
/// (else 100/33, as for an account the token cannot see).
pub(crate) fn authorize_waba(
    world: &World,
    token: Option<&str>,
    method: &Method,
    waba_id: &str,
) -> Result<(), GraphError> {
    let token = check_token(world, token)?;
    if world
        .numbers_with_token(token)
        .any(|n| n.waba_id == waba_id)
    {
        Ok(())
    } else {
        Err(GraphError::unknown_object(method, waba_id))
    }
}

/// A download of a number's media: the token must be the owner number's, else 401 (190, or
/// 190/463 for an expired one), as the download host refuses anyone else.
pub(crate) fn authorize_owner<'w>(
    world: &'w World,
    token: Option<&str>,
    owner_id: &str,
) -> Result<&'w PhoneNumber, GraphError> {
    let token = check_token(world, token)?;
    world
        .phone_numbers
        .get(owner_id)
        .filter(|n| n.has_access_token(token))
        .ok_or_else(GraphError::invalid_access_token)
}

/// `http://host:port` as the caller reached the emulator (its `Host` header), for URLs in answers;
/// the emulator's own base URL when the request names no usable host.
pub(crate) fn public_base_url(headers: &HeaderMap, state: &EmulatorState) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(
            || state.base_url().to_owned(),
            |host| format!("http://{host}"),
        )
}

/// Meta's versions look like `v24.0`; anything else is not a Graph path.
pub(crate) fn is_api_version(version: &str) -> bool {
    let Some((major, minor)) = version.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// The access token of a request: `Authorization: Bearer <token>` (or `OAuth <token>`, which Graph
/// also takes), else the `access_token` query parameter.
pub(crate) fn access_token<'a>(
    headers: &'a HeaderMap,
    query_token: Option<&'a str>,
) -> Option<&'a str> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")
        })
        .map(|(_, token)| token.trim());
    from_header.or(query_token).filter(|t| !t.is_empty())
}

/// Other methods on a Graph path: Meta's "Unsupported <method> request".
pub(crate) async fn unsupported_method(
    method: Method,
    axum::extract::Path((version, object_id)): axum::extract::Path<(String, String)>,
    uri: Uri,
) -> GraphError {
    if is_api_version(&version) {
        GraphError::unknown_object(&method, &object_id)
    } else {
        GraphError::unknown_path(uri.path())
    }
}

/// The answer to any path nothing else matched.
pub(crate) async fn unknown_path(uri: Uri) -> GraphError {
    GraphError::unknown_path(uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_recognised() {
        for good in ["v24.0", "v21.0", "v9.0", "v100.12"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in ["24.0", "v24", "v24.", "va.0", "admin", "v24.0.1", ""] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(access_token(&headers, Some("q")), Some("q"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(access_token(&headers, Some("q")), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(access_token(&headers, None), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(access_token(&headers, None), None);
    }
}
