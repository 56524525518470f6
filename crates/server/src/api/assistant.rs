//! The assistant over the API: a connection's settings, and pausing or resuming it on one
//! conversation (a person takes over, or hands back).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiJson;
use super::schema::{AssistantState, ErrorBody};
use crate::app::state::AppState;
use crate::assistant::reply::publish_handler_change;
use crate::assistant::settings::{AssistantSettings, SettingsInput};
use crate::clock::now_ms;
use crate::connections::UpdateConnection;
use crate::store::connections::STATUS_DISCONNECTED;

/// Why a conversation is paused when a person pauses it by hand.
const PAUSED_BY_HAND: &str = "paused by a person";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, replace))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

/// A connection's assistant settings (the model's API key only as whether one is stored).
#[utoipa::path(
    get,
    path = "/connections/{id}/assistant",
    tag = "assistant",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The settings; defaults when never set", body = AssistantSettingsDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such connection for this tenant", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let connection = state
        .store
        .connection(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    let settings = state
        .store
        .assistant_settings(&auth.tenant_id, &id)
        .await?
        .map(|row| AssistantSettings::from_row(&row))
        .unwrap_or_default();
    Ok(Json(settings.to_json(&id, connection.auto_reply)))
}

/// Replaces a connection's assistant settings: the whole document, fields left out take their
/// defaults (`provider.api_key` left out keeps the stored key; `auto_reply` left out is unchanged).
#[utoipa::path(
    put,
    path = "/connections/{id}/assistant",
    tag = "assistant",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = AssistantSettingsInputDoc,
    responses(
        (status = 200, description = "The settings as now stored", body = AssistantSettingsDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "Only owners and admins can change the assistant", body = ErrorBody),
        (status = 404, description = "No such connection, or it is disconnected", body = ErrorBody),
        (status = 422, description = "A setting is wrong; every problem is named", body = ErrorBody),
    )
)]
async fn replace(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("change the assistant")?;
    let connection = state
        .store
        .connection(&auth.tenant_id, &id)
        .await?
        .filter(|c| c.status != STATUS_DISCONNECTED)
        .ok_or(ApiError::NotFound("connection"))?;
    let input = SettingsInput::parse(&body).map_err(|fields| ApiError::Validation {
        code: "validation_failed",
        message: fields.summary(),
        details: fields.to_details(),
    })?;
    let settings =
        crate::assistant::save_settings(&state.store, &state.vault, &auth.tenant_id, &id, &input)
            .await?;
    let mut auto_reply = connection.auto_reply;
    if let Some(on) = input.auto_reply
        && on != connection.auto_reply
    {
        let view = super::connections::service(&state)
            .update(
                &auth.tenant_id,
                &id,
                UpdateConnection {
                    auto_reply: Some(on),
                    ..Default::default()
                },
            )
            .await?;
        auto_reply = view.row.auto_reply;
    }
    Ok(Json(settings.to_json(&id, auto_reply)))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PauseInput {
    /// How long; the connection's `pause_minutes` when left out.
    minutes: Option<i64>,
}

/// Pauses the assistant on a conversation: a person takes over. The body is optional; without
/// `minutes` the connection's `pause_minutes` applies.
#[utoipa::path(
    post,
    path = "/conversations/{id}/assistant/pause",
    tag = "assistant",
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = Option<PauseDoc>,
    responses(
        (status = 200, description = "Paused until the time shown", body = ConversationAssistantDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such conversation for this tenant", body = ErrorBody),
        (status = 422, description = "The body or `minutes` is wrong", body = ErrorBody),
    )
)]
async fn pause(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: an empty one pauses for the connection's usual time.
    let input: PauseInput = if body.iter().all(u8::is_ascii_whitespace) {
        PauseInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::validation(
                "minutes",
                format!("the body must be {{\"minutes\": N}} or empty: {e}"),
            )
        })?
    };
    let conversation = state
        .store
        .conversation(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let minutes = match input.minutes {
        Some(m) if (1..=30 * 24 * 60).contains(&m) => m,
        Some(_) => {
            return Err(ApiError::validation(
                "minutes",
                "must be a whole number of minutes from 1 to 43200 (30 days)",
            ));
        }
        None => state
            .store
            .assistant_settings(&auth.tenant_id, &conversation.connection_id)
            .await?
            .map(|row| AssistantSettings::from_row(&row).pause_minutes)
            .unwrap_or(crate::assistant::settings::DEFAULT_PAUSE_MINUTES),
    };
    let now = now_ms();
    let until = now + minutes * 60_000;
    state
        .store
        .set_assistant_pause(&auth.tenant_id, &id, Some((until, PAUSED_BY_HAND)), now)
        .await?;
    publish_handler_change(
        &state.events,
        &id,
        &auth.tenant_id,
        Some(until),
        PAUSED_BY_HAND,
    );
    Ok(Json(json!({
        "conversation_id": id,
        "assistant": {"paused_until": crate::clock::rfc3339(until), "paused_reason": PAUSED_BY_HAND},
    })))
}

/// Hands the conversation back to the assistant.
#[utoipa::path(
    post,
    path = "/conversations/{id}/assistant/resume",
    tag = "assistant",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The assistant has the conversation again", body = ConversationAssistantDoc),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such conversation for this tenant", body = ErrorBody),
    )
)]
async fn resume(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state
        .store
        .set_assistant_pause(&auth.tenant_id, &id, None, now_ms())
        .await?
    {
        return Err(ApiError::NotFound("conversation"));
    }
    publish_handler_change(&state.events, &id, &auth.tenant_id, None, "");
    Ok(Json(json!({
        "conversation_id": id,
        "assistant": {"paused_until": null, "paused_reason": null},
    })))
}

/// A connection's assistant settings, as `GET`/`PUT /api/v1/connections/{id}/assistant` show them.
#[derive(ToSchema)]
#[schema(as = AssistantSettings)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct AssistantSettingsDoc {
    connection_id: String,
    /// Whether the assistant answers on this connection.
    auto_reply: bool,
    system_prompt: String,
    business_facts: String,
    faqs: Vec<FaqDoc>,
    /// `null`: answer in the customer's language.
    reply_language: Option<String>,
    /// The OpenAI-compatible model; `null` when none is set.
    provider: Option<ProviderDoc>,
    /// Earlier messages given to the model, 0 to 50.
    history_length: i64,
    /// When the assistant answers; `null` at any hour.
    hours: Option<OpeningHoursDoc>,
    /// Phrases that hand the conversation to a person.
    handoff_phrases: Vec<String>,
    /// How long a hand-off or a manual pause lasts.
    pause_minutes: i64,
    model_timeout_seconds: i64,
}

#[derive(ToSchema)]
#[schema(as = AssistantFaq)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct FaqDoc {
    question: String,
    answer: String,
    keywords: Vec<String>,
}

#[derive(ToSchema)]
#[schema(as = AssistantProvider)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ProviderDoc {
    #[schema(example = "https://api.openai.com/v1")]
    base_url: String,
    model: String,
    /// Whether a key is stored (the key itself is never shown).
    has_api_key: bool,
}

/// Opening hours: the assistant answers only within them.
#[derive(ToSchema)]
#[schema(as = AssistantOpeningHours)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct OpeningHoursDoc {
    #[schema(example = "+01:00")]
    utc_offset: String,
    /// Day (`mon` ... `sun`) to `[from, to]` ranges as `HH:MM`.
    #[schema(example = json!({"mon": [["09:00", "18:00"]]}))]
    days: BTreeMap<String, Vec<Vec<String>>>,
}

/// `PUT /api/v1/connections/{id}/assistant`. Every field is optional; `null` is the same as
/// leaving it out.
#[derive(ToSchema)]
#[schema(as = AssistantSettingsInput)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct AssistantSettingsInputDoc {
    /// Turns the assistant on or off for the connection; left out, unchanged.
    auto_reply: Option<bool>,
    /// At most 8000 characters.
    system_prompt: Option<String>,
    /// At most 16000 characters.
    business_facts: Option<String>,
    /// At most 200.
    faqs: Option<Vec<FaqInputDoc>>,
    /// A language code such as `en`, `es` or `pt-BR`; `null` answers in the customer's language.
    reply_language: Option<String>,
    /// `null` for no model.
    provider: Option<ProviderInputDoc>,
    /// 0 to 50 (default 12).
    history_length: Option<i64>,
    /// `null` answers at any hour.
    hours: Option<OpeningHoursDoc>,
    /// At most 30 phrases of 1 to 100 characters.
    handoff_phrases: Option<Vec<String>>,
    /// 1 to 43200 (default 720).
    pause_minutes: Option<i64>,
    /// 1 to 120 (default 20).
    model_timeout_seconds: Option<i64>,
}

#[derive(ToSchema)]
#[schema(as = AssistantFaqInput)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct FaqInputDoc {
    /// At most 2000 characters.
    question: String,
    /// At most 2000 characters.
    answer: String,
    keywords: Option<Vec<String>>,
}

#[derive(ToSchema)]
#[schema(as = AssistantProviderInput)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ProviderInputDoc {
    /// The http(s) URL of an OpenAI-compatible API, without credentials in it.
    #[schema(example = "https://api.openai.com/v1")]
    base_url: String,
    /// The model's name at the provider.
    model: String,
    /// The provider's key; `null` removes the stored one, left out keeps it.
    api_key: Option<String>,
}

/// `POST /api/v1/conversations/{id}/assistant/pause`; the body may also be empty.
#[derive(ToSchema)]
#[schema(as = AssistantPause)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct PauseDoc {
    /// 1 to 43200 (30 days); the connection's `pause_minutes` when left out.
    minutes: Option<i64>,
}

/// Who has a conversation after a pause or a resume.
#[derive(ToSchema)]
#[schema(as = ConversationAssistant)]
#[allow(dead_code)] // Read by the OpenAPI derive, never constructed.
struct ConversationAssistantDoc {
    conversation_id: String,
    assistant: AssistantState,
}
