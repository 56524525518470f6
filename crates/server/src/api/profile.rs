//! `/api/v1/connections/{id}/profile`: the number's WhatsApp business profile, as Meta holds it.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiJson;
use super::schema::ErrorBody;
use crate::app::state::AppState;
use crate::profile::ProfileError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

/// A number's business profile, with its quality rating and messaging limit tier.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BusinessProfile {
    connection_id: String,
    /// Up to 139 characters.
    about: Option<String>,
    address: Option<String>,
    description: Option<String>,
    email: Option<String>,
    /// Up to two web addresses.
    websites: Vec<String>,
    /// Meta's business category (`RETAIL`, `RESTAURANT`, ...).
    vertical: Option<String>,
    profile_picture_url: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    quality_rating: Option<String>,
    /// How many customers the number may start conversations with in 24 hours (`TIER_250`,
    /// `TIER_1K`, `TIER_10K`, `TIER_100K`, `TIER_UNLIMITED`).
    messaging_limit_tier: Option<String>,
}

/// A change to the profile: only the fields given change; `""` or `null` clears address,
/// description and email, `[]` the websites.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BusinessProfileChange {
    about: Option<String>,
    address: Option<String>,
    description: Option<String>,
    email: Option<String>,
    websites: Option<Vec<String>>,
    vertical: Option<String>,
}

impl From<ProfileError> for ApiError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::NotFound => Self::NotFound("connection"),
            ProfileError::Disconnected => Self::Conflict {
                code: "connection_disconnected",
                message: error.to_string(),
            },
            ProfileError::Invalid(fields) => fields.into(),
            ProfileError::MetaRejected(meta) => Self::MetaRejected {
                message: ProfileError::MetaRejected(meta.clone()).to_string(),
                meta: crate::connections::meta_json(&meta),
            },
            ProfileError::MetaUnreachable(graph) => Self::Upstream {
                message: ProfileError::MetaUnreachable(graph).to_string(),
                meta: None,
            },
            ProfileError::Store(store) => store.into(),
            ProfileError::Vault(vault) => Self::Internal(vault.into()),
        }
    }
}

/// The number's business profile as Meta has it now.
#[utoipa::path(
    get,
    path = "/connections/{id}/profile",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The profile", body = BusinessProfile),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such connection for this tenant", body = ErrorBody),
        (status = 409, description = "The connection is disconnected", body = ErrorBody),
        (status = 422, description = "Meta refused (its error is in details.meta)", body = ErrorBody),
        (status = 502, description = "Meta could not be reached", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        crate::profile::read(&state, &auth.tenant_id, &id).await?,
    ))
}

/// Changes the business profile at Meta (owners and admins, or an API key).
#[utoipa::path(
    patch,
    path = "/connections/{id}/profile",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = BusinessProfileChange,
    responses(
        (status = 200, description = "The profile as Meta now has it", body = BusinessProfile),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "An agent may not change it", body = ErrorBody),
        (status = 404, description = "No such connection for this tenant", body = ErrorBody),
        (status = 409, description = "The connection is disconnected", body = ErrorBody),
        (status = 422, description = "A field is wrong, or Meta refused", body = ErrorBody),
        (status = 502, description = "Meta could not be reached", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("change the business profile")?;
    // The connection is looked up before the body is judged, so another tenant's id answers 404
    // whatever the body.
    state
        .store
        .connection(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    let change = crate::profile::parse_update(&body)?;
    Ok(Json(
        crate::profile::update(&state, &auth.tenant_id, &id, &change).await?,
    ))
}
