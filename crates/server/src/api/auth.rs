//! Who is calling: `Authorization: Bearer <api key>`, or the dashboard's session cookie, resolves
//! to a tenant, or the request is 401. A request made with the cookie that changes anything must
//! also carry the session's CSRF token in `X-CSRF-Token`, so another site cannot make a signed-in
//! browser act.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};

use super::error::ApiError;
use crate::app::state::AppState;
use crate::auth::{api_key, session};
use crate::clock::now_ms;

/// The header the dashboard's scripts send the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated tenant of a request. Every query a handler makes is scoped by `tenant_id`.
#[derive(Debug, Clone)]
pub struct TenantAuth {
    pub tenant_id: String,
    /// The signed-in user's role; `None` for an API key, which acts for the whole tenant.
    pub role: Option<String>,
}

impl TenantAuth {
    /// The tenant's API key may do anything; a signed-in user only what their role allows.
    pub fn require_manager(&self, what: &str) -> Result<(), ApiError> {
        match self.role.as_deref() {
            Some(role) if !crate::auth::role_manages(role) => Err(ApiError::Forbidden(format!(
                "only owners and admins can {what}; ask one of them"
            ))),
            _ => Ok(()),
        }
    }
}

/// Whose credentials a request carries, looked up but not yet checked against the request's
/// method and origin. The rate-limit middleware looks this up first (it limits per credential)
/// and leaves it in the request's extensions, so `TenantAuth` does not look it up again.
#[derive(Debug, Clone)]
pub enum Caller {
    ApiKey {
        tenant_id: String,
        api_key_id: String,
    },
    /// The dashboard's session cookie.
    User {
        tenant_id: String,
        user_id: String,
        role: String,
    },
    /// No credentials, or ones that match no live key or session.
    Anonymous,
}

impl Caller {
    /// The `Authorization` header decides when present (a wrong key is not rescued by a cookie);
    /// otherwise the session cookie.
    pub async fn identify(parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        match parts.headers.get(AUTHORIZATION) {
            Some(header) => api_key_caller(header, state).await,
            None => session_caller(parts, state).await,
        }
    }
}

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = match parts.extensions.get::<Caller>() {
            Some(caller) => caller.clone(),
            None => Caller::identify(parts, state).await?,
        };
        let auth = match caller {
            Caller::ApiKey { tenant_id, .. } => Self {
                tenant_id,
                role: None,
            },
            Caller::User {
                tenant_id, role, ..
            } => {
                check_cookie_request(parts)?;
                Self {
                    tenant_id,
                    role: Some(role),
                }
            }
            Caller::Anonymous => return Err(ApiError::Unauthorized),
        };
        tracing::Span::current().record("tenant_id", auth.tenant_id.as_str());
        Ok(auth)
    }
}

async fn api_key_caller(
    header: &axum::http::HeaderValue,
    state: &AppState,
) -> Result<Caller, ApiError> {
    let presented = header
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .map(|token| SecretString::from(token.to_owned()));
    let Some(presented) = presented.filter(api_key::is_well_formed) else {
        return Ok(Caller::Anonymous);
    };
    let owner = state
        .store
        .api_key_owner(&api_key::hash(presented.expose_secret()))
        .await?;
    Ok(owner.map_or(Caller::Anonymous, |owner| Caller::ApiKey {
        tenant_id: owner.tenant_id,
        api_key_id: owner.api_key_id,
    }))
}

async fn session_caller(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(token) = crate::ui::cookies::session_token(&parts.headers) else {
        return Ok(Caller::Anonymous);
    };
    let user = state
        .store
        .session_user(&session::hash(token.expose_secret()), now_ms())
        .await?;
    Ok(user.map_or(Caller::Anonymous, |user| Caller::User {
        tenant_id: user.tenant_id,
        user_id: user.user_id,
        role: user.role,
    }))
}

/// A request made with the session cookie must come from our own pages, and one that changes
/// anything must carry the session's CSRF token.
fn check_cookie_request(parts: &Parts) -> Result<(), ApiError> {
    let token = crate::ui::cookies::session_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
    // A browser names the page that made a request in `Origin`; with the cookie, only our own
    // pages may (this also covers WebSocket upgrades, which carry no CSRF header).
    if let Some(origin) = parts.headers.get(axum::http::header::ORIGIN)
        && !same_origin(origin, parts)
    {
        return Err(ApiError::CsrfMissing);
    }
    if !parts.method.is_safe() {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session::csrf_matches(&token, presented) {
            return Err(ApiError::CsrfMissing);
        }
    }
    Ok(())
}

/// Whether `Origin` names the host this request was sent to.
fn same_origin(origin: &axum::http::HeaderValue, parts: &Parts) -> bool {
    let Some(host) = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}
