//! Sign-in and sign-out. The sign-in form carries a token that must match a short-lived cookie
//! (so no other site can sign a browser in to an account of its choosing), attempts are limited
//! per account and per address (`WAGATE_SIGNIN_RATE_LIMIT`, with the same `X-RateLimit-*`
//! headers as the API), and a failed attempt never says whether the email exists.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::cookies;
use super::error::PageError;
use super::session::{CsrfForm, Signed};
use crate::api::rate_limit::{LimitHeaders, client_address};
use crate::app::state::AppState;
use crate::auth::{password, session};
use crate::clock::now_ms;
use crate::ids::random_token;
/// How long the sign-in form stays usable.
const FORM_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A well-formed Argon2id hash of a password nobody has, checked when the email is unknown so
/// a wrong email takes as long as a wrong password.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$2f8KDf3bAy4Ww5NYr+8o1q7gqBv0yJxK4o5YtM3b1Hk";

#[derive(Template)]
#[template(path = "login.html")]
struct SignInPage<'a> {
    form_token: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    signed: Option<Signed>,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    if signed.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    render_form(&state, StatusCode::OK, next, "", None)
}

fn render_form(
    state: &AppState,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<String>,
) -> Result<Response, PageError> {
    let form_token = random_token(24);
    let html = SignInPage {
        form_token: &form_token,
        next,
        email,
        error,
    }
    .render()?;
    let cookie = cookies::set(
        cookies::SIGNIN_FORM,
        &form_token,
        FORM_LIFETIME,
        secure(state),
    );
    Ok((status, AppendHeaders([(SET_COOKIE, cookie)]), Html(html)).into_response())
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: SecretString,
    form_token: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let expected = cookies::get(&headers, cookies::SIGNIN_FORM).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.form_token.as_bytes())) {
        return Err(PageError::FormExpired);
    }
    let email = form.email.trim().to_lowercase();
    let limit = match count_attempt(&state, &email, &client_address(&extensions)).await {
        Ok(limit) => limit,
        Err(refused) => {
            let seconds = refused.retry_after_secs().unwrap_or(1);
            metrics::counter!("wagate_signin_throttled_total").increment(1);
            let mut page = render_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                &email,
                Some(format!(
                    "Too many sign-in attempts. Try again in {seconds} second{}.",
                    if seconds == 1 { "" } else { "s" }
                )),
            )?;
            refused.apply(page.headers_mut());
            return Ok(page);
        }
    };
    let mut response = check_credentials(&state, form.password, &email, next).await?;
    if let Some(limit) = limit {
        limit.apply(response.headers_mut());
    }
    Ok(response)
}

/// Counts one attempt against the account's budget and the address's. `Ok(None)` when sign-in
/// is not limited; `Err` (nothing more counted) when either budget is spent.
async fn count_attempt(
    state: &AppState,
    email: &str,
    address: &str,
) -> Result<Option<LimitHeaders>, LimitHeaders> {
    let Some(limit) = state.settings.rate_limits.signin else {
        return Ok(None);
    };
    let mut tightest: Option<LimitHeaders> = None;
    for key in [
        format!("signin:account:{email}"),
        format!("signin:address:{address}"),
    ] {
        let headers = match state.limiter.try_acquire_metered(&key, limit.quota()).await {
            Ok(allowance) => LimitHeaders::allowed(limit, allowance),
            Err(exhausted) => return Err(LimitHeaders::refused(limit, exhausted)),
        };
        tightest = Some(tightest.map_or(headers, |seen| seen.tightest(headers)));
    }
    Ok(tightest)
}

/// Signs the user in if the password is theirs, else shows the form again.
async fn check_credentials(
    state: &AppState,
    password: SecretString,
    email: &str,
    next: &str,
) -> Result<Response, PageError> {
    let user = state.store.user_credentials(email).await?;
    let stored = user
        .as_ref()
        .map_or_else(|| DECOY_HASH.to_owned(), |u| u.password_hash.clone());
    let matches = password::verify(password, stored).await;
    let Some(user) = user.filter(|_| matches) else {
        metrics::counter!("wagate_signin_failed_total").increment(1);
        return render_form(
            state,
            StatusCode::UNAUTHORIZED,
            next,
            email,
            Some("Wrong email or password.".into()),
        );
    };
    let minted = session::mint();
    let now = now_ms();
    let lifetime = i64::try_from(session::LIFETIME.as_millis()).unwrap_or(i64::MAX / 4);
    state
        .store
        .create_session(&minted.hash, &user, now, now + lifetime)
        .await?;
    tracing::info!(user_id = %user.user_id, tenant_id = %user.tenant_id, "signed in");
    let secure = secure(state);
    Ok((
        AppendHeaders([
            (
                SET_COOKIE,
                cookies::set(
                    cookies::SESSION,
                    minted.token.expose_secret(),
                    session::LIFETIME,
                    secure,
                ),
            ),
            (
                SET_COOKIE,
                cookies::set(cookies::SIGNIN_FORM, "", Duration::ZERO, secure),
            ),
        ]),
        Redirect::to(next),
    )
        .into_response())
}

pub async fn sign_out(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf_token)?;
    state
        .store
        .end_session(&session::hash(signed.token.expose_secret()), now_ms())
        .await?;
    Ok((
        AppendHeaders([(
            SET_COOKIE,
            cookies::set(cookies::SESSION, "", Duration::ZERO, secure(&state)),
        )]),
        Redirect::to("/login"),
    )
        .into_response())
}

/// Cookies are marked Secure when the server is reached over HTTPS.
fn secure(state: &AppState) -> bool {
    state.public_url.starts_with("https://")
}

/// Where to go after signing in: only a path of this site, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with("/app") && !path.contains("//") && !path.contains('\\') => {
            path
        }
        _ => "/app",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/app/inbox?c=1")), "/app/inbox?c=1");
        assert_eq!(safe_next(Some("https://evil.example/app")), "/app");
        assert_eq!(safe_next(Some("//evil.example")), "/app");
        assert_eq!(safe_next(Some("/app//evil.example")), "/app");
        assert_eq!(safe_next(Some("/api/v1/messages")), "/app");
        assert_eq!(safe_next(None), "/app");
    }

    #[test]
    fn the_decoy_hash_is_well_formed() {
        assert!(argon2::password_hash::PasswordHash::new(DECOY_HASH).is_ok());
    }
}
