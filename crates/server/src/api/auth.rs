//! Who is calling: `Authorization: Bearer <api key>` resolves to a tenant, or the request is 401.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};

use super::error::ApiError;
use crate::app::state::AppState;
use crate::auth::api_key;

/// The authenticated tenant of a request. Every query a handler makes is scoped by `tenant_id`.
#[derive(Debug, Clone)]
pub struct TenantAuth {
    pub tenant_id: String,
}

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
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
        tracing::Span::current().record("tenant_id", owner.tenant_id.as_str());
        Ok(Self {
            tenant_id: owner.tenant_id,
        })
    }
}
