//! The dashboard's cookies: the session (HttpOnly, SameSite=Lax, Secure behind HTTPS) and the
//! short-lived sign-in form token that guards the sign-in form against cross-site posts.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use secrecy::SecretString;

pub const SESSION: &str = "wagate_session";
pub const SIGNIN_FORM: &str = "wagate_signin";

/// The value of cookie `name` in the request, if any.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The session token the request presents, if it is shaped like one.
pub fn session_token(headers: &HeaderMap) -> Option<SecretString> {
    get(headers, SESSION)
        .filter(|token| crate::auth::session::is_well_formed(token))
        .map(|token| SecretString::from(token.to_owned()))
}

/// A `Set-Cookie` value for `name`; `max_age` zero removes the cookie.
pub fn set(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; wagate_signin=xyz"));
        headers.append(COOKIE, HeaderValue::from_static("wagate_session=abc"));
        assert_eq!(get(&headers, SIGNIN_FORM), Some("xyz"));
        assert_eq!(get(&headers, SESSION), Some("abc"));
        assert_eq!(get(&headers, "missing"), None);
        assert!(session_token(&headers).is_none(), "not shaped like a token");
    }

    #[test]
    fn session_cookies_are_http_only_and_same_site() {
        let cookie = set(SESSION, "v", Duration::from_secs(60), true);
        assert_eq!(
            cookie,
            "wagate_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }
}
