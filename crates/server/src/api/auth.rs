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

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = match parts.headers.get(AUTHORIZATION) {
            Some(header) => Self {
                tenant_id: tenant_of_api_key(header, state).await?,
                role: None,
            },
            None => tenant_of_session(parts, state).await?,
        };
        tracing::Span::current().record("tenant_id", auth.tenant_id.as_str());
        Ok(auth)
    }
}

async fn tenant_of_api_key(
    header: &axum::http::HeaderValue,
    state: &AppState,
) -> Result<String, ApiError> {
    let presented = header
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .map(|token| SecretString::from(token.to_owned()))
        .ok_or(ApiError::Unauthorized)?;
    if !api_key::is_well_formed(&presented) {
        return Err(ApiError::Unauthorized);
    }
    let owner = state
        .store
        .api_key_owner(&api_key::hash(presented.expose_secret()))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(owner.tenant_id)
}

async fn tenant_of_session(parts: &Parts, state: &AppState) -> Result<TenantAuth, ApiError> {
    let token = crate::ui::cookies::session_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
    let user = state
        .store
        .session_user(&session::hash(token.expose_secret()), now_ms())
        .await?
        .ok_or(ApiError::Unauthorized)?;
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
    Ok(TenantAuth {
        tenant_id: user.tenant_id,
        role: Some(user.role),
    })
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
