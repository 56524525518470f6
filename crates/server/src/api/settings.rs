//! `/api/v1/settings`: the tenant's time zone and its own opt-out words.

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiJson;
use super::schema::ErrorBody;
use crate::app::state::AppState;
use crate::tenant_settings::{SettingsChange, view};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

/// The tenant's settings.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Settings {
    /// IANA time zone name: analytics days and broadcast times are read in it.
    #[schema(example = "Europe/Berlin")]
    time_zone: String,
    /// Words or phrases that opt a customer out when they are the whole message, besides the
    /// defaults.
    opt_out_words: Vec<String>,
    /// The localised words that always opt out (English, Spanish, Portuguese, French, German,
    /// Arabic, Hindi, Indonesian).
    default_opt_out_words: Vec<String>,
}

/// A change to the settings; fields left out keep their value.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SettingsPatch {
    #[schema(example = "America/Sao_Paulo")]
    time_zone: Option<String>,
    /// Replaces the tenant's own words (at most 50, each 1 to 50 characters).
    opt_out_words: Option<Vec<String>>,
}

/// The tenant's time zone and opt-out words.
#[utoipa::path(
    get,
    path = "/settings",
    tag = "settings",
    responses(
        (status = 200, description = "The settings", body = Settings),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
    )
)]
async fn show(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    let settings = state
        .store
        .tenant_settings(&auth.tenant_id)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    Ok(Json(view(&settings)))
}

/// Changes the time zone or the opt-out words (owners and admins, or an API key).
#[utoipa::path(
    patch,
    path = "/settings",
    tag = "settings",
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The settings as they now are", body = Settings),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "An agent may not change them", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("change the settings")?;
    let change = SettingsChange::parse(&body)?;
    let mut settings = state
        .store
        .tenant_settings(&auth.tenant_id)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    change.apply_to(&mut settings);
    state
        .store
        .set_tenant_settings(&auth.tenant_id, &settings)
        .await?;
    tracing::info!(time_zone = %settings.time_zone, opt_out_words = settings.opt_out_words.len(), "settings changed");
    Ok(Json(view(&settings)))
}
