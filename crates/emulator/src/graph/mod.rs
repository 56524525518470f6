//! The Graph API endpoints wagate calls, answering as Meta does, errors included.
//!
//! Paths are `/{version}/...` with any `vNN.N` version. Each area (phone numbers now; messages, media
//! and templates later) is a submodule; this module holds what they share: the access-token check and
//! Meta's error answers.

mod phone_numbers;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::payloads::GraphErrorBody;
use crate::state::EmulatorState;

pub(crate) fn router() -> Router<EmulatorState> {
    phone_numbers::router()
}

/// A Graph error answer: Meta's envelope and the HTTP status Meta uses with it.
#[derive(Debug)]
pub(crate) struct GraphError {
    status: StatusCode,
    body: GraphErrorBody,
}

impl GraphError {
    /// 401, code 190: no token, or one no registered number has.
    pub fn invalid_access_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: GraphErrorBody::invalid_access_token(),
        }
    }

    /// 400, code 100 / subcode 33: no such object, or the token may not see it.
    pub fn unknown_object(method: &Method, id: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: GraphErrorBody::unknown_object(method.as_str(), id),
        }
    }

    /// 400, code 2500: no such path.
    pub fn unknown_path(path: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: GraphErrorBody::unknown_path(path),
        }
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
