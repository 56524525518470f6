//! `/api/v1/templates`: the templates of the tenant's connections as Meta last described them;
//! pulling them again from Meta, submitting new ones, and previewing what a customer will see.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use cloudapi::GraphError;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::schema::{ErrorBody, Template};
use crate::app::state::AppState;
use crate::clock::{now_ms, rfc3339};
use crate::connections::meta_json;
use crate::store::connections::{ConnectionRow, STATUS_CONNECTED};
use crate::store::templates::{SyncedTemplate, TemplateFilter, TemplateOwner, TemplateRow};
use crate::templates::definition::check_definition;
use crate::templates::render::{components_from_inputs, render};
use crate::templates::sync::{SyncError, TemplateSync};
use crate::templates::{InputKind, TemplateSpec, fit};
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(sync))
        .routes(routes!(show))
        .routes(routes!(preview))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this connection's templates (404 when it is not the tenant's).
    connection_id: Option<String>,
    /// Only templates in this status (`APPROVED`, `PENDING`, `REJECTED`, ...).
    status: Option<String>,
    /// Only this category (`MARKETING`, `UTILITY`, `AUTHENTICATION`).
    category: Option<String>,
    /// Only templates of this name.
    name: Option<String>,
    /// Only this language (`en_US`, `es`, ...).
    language: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The tenant's templates, as Meta last described them.
#[utoipa::path(
    get,
    path = "/templates",
    tag = "templates",
    params(ListQuery),
    responses(
        (status = 200, description = "The templates that match the filters", body = TemplateList),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "The connection does not exist", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let connection_id = given(&query.connection_id);
    if let Some(id) = connection_id
        && state.store.connection(&auth.tenant_id, id).await?.is_none()
    {
        return Err(ApiError::NotFound("connection"));
    }
    let rows = state
        .store
        .templates(
            &auth.tenant_id,
            &TemplateFilter {
                connection_id,
                status: given(&query.status),
                category: given(&query.category),
                name: given(&query.name),
                language: given(&query.language),
            },
        )
        .await?;
    let data: Vec<Value> = rows.iter().map(views::template).collect();
    Ok(Json(json!({ "data": data })))
}

async fn template_of(
    state: &AppState,
    auth: &TenantAuth,
    id: &str,
) -> Result<TemplateRow, ApiError> {
    if !crate::ids::looks_like_id(id) {
        return Err(ApiError::NotFound("template"));
    }
    state
        .store
        .template(&auth.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("template"))
}

/// One template, with the inputs a send of it takes.
#[utoipa::path(
    get,
    path = "/templates/{id}",
    tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 200, description = "The template", body = TemplateDetail),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such template for this tenant", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = template_of(&state, &auth, &id).await?;
    Ok(Json(with_inputs(&row)))
}

/// The template object with the inputs a send of it needs (for pickers).
fn with_inputs(row: &TemplateRow) -> Value {
    let mut out = views::template(row);
    if let Ok(spec) = spec_of(row) {
        out["inputs"] = json!(
            spec.inputs()
                .iter()
                .map(|input| json!({
                    "key": input.key,
                    "component": input.component,
                    "label": input.label,
                    "example": input.example,
                    "kind": input_kind(input.kind),
                }))
                .collect::<Vec<_>>()
        );
    }
    out
}

/// An input's kind as the API names it.
fn input_kind(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Text => "text",
        InputKind::MediaLink(media) => media,
        InputKind::Location => "location",
        InputKind::UrlSuffix => "url_suffix",
        InputKind::CouponCode => "coupon_code",
    }
}

pub fn spec_of(row: &TemplateRow) -> Result<TemplateSpec, ApiError> {
    TemplateSpec::from_stored(
        &row.name,
        &row.language,
        &row.status,
        row.category.as_deref(),
        row.parameter_format.as_deref(),
        &row.components,
    )
    .map_err(ApiError::internal)
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    /// Sync only this connection (the body may name it instead).
    #[serde(default)]
    connection_id: Option<String>,
}

/// The sync body is optional: none, `{}`, or `{"connection_id": …}`; the query may name it too.
fn sync_body(bytes: &[u8], query: SyncBody) -> Result<SyncBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(query);
    }
    let body: SyncBody = serde_json::from_slice(bytes).map_err(|e| ApiError::Validation {
        code: "validation_failed",
        message: format!("the body must be {{\"connection_id\": \"…\"}} or empty: {e}"),
        details: json!({"reason": e.to_string()}),
    })?;
    Ok(SyncBody {
        connection_id: body.connection_id.or(query.connection_id),
    })
}

/// Pulls every template from Meta now and answers the stored list.
///
/// One connection (`connection_id` in the body or the query), or else each of the tenant's
/// connected numbers. The body is optional: none, `{}` or `{"connection_id": "..."}`. When one
/// connection is named, its failure is the answer; otherwise each connection's outcome is listed
/// in `synced`.
#[utoipa::path(
    post,
    path = "/templates/sync",
    tag = "templates",
    params(SyncBody),
    request_body = Option<TemplateSyncRequest>,
    responses(
        (status = 200, description = "Synced; the stored templates and each connection's outcome", body = TemplateSyncResult),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not sync templates", body = ErrorBody),
        (status = 404, description = "The connection does not exist", body = ErrorBody),
        (status = 422, description = "The body is wrong, no number is connected, the connection has no WABA id or is not connected, or Meta refused", body = ErrorBody),
        (status = 502, description = "Meta could not be reached", body = ErrorBody),
    )
)]
async fn sync(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<SyncBody>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager("sync templates")?;
    let body = sync_body(&bytes, query)?;
    let connections: Vec<ConnectionRow> = match given(&body.connection_id) {
        Some(id) => vec![
            state
                .store
                .connection(&auth.tenant_id, id)
                .await?
                .ok_or(ApiError::NotFound("connection"))?,
        ],
        None => state
            .store
            .connections(&auth.tenant_id)
            .await?
            .into_iter()
            .filter(|c| c.status == STATUS_CONNECTED)
            .collect(),
    };
    if connections.is_empty() {
        return Err(ApiError::Validation {
            code: "no_connection",
            message: "this tenant has no connected number whose templates could be synced".into(),
            details: json!({}),
        });
    }
    let one = connections.len() == 1 && body.connection_id.is_some();
    let syncer = TemplateSync::from_state(&state);
    let mut synced = Vec::new();
    for connection in &connections {
        match syncer.sync(connection).await {
            Ok(outcome) => synced.push(json!({
                "connection_id": connection.id,
                "ok": true,
                "listed": outcome.listed,
                "added": outcome.counts.added,
                "updated": outcome.counts.updated,
                "removed": outcome.counts.removed,
                "synced_at": rfc3339(outcome.synced_at),
            })),
            Err(error) if one => return Err(sync_error(error)),
            Err(error) => {
                let api = sync_error(error);
                synced.push(json!({
                    "connection_id": connection.id,
                    "ok": false,
                    "error": {"message": api.to_string()},
                }));
            }
        }
    }
    let rows = state
        .store
        .templates(
            &auth.tenant_id,
            &TemplateFilter {
                connection_id: if one {
                    Some(connections[0].id.as_str())
                } else {
                    None
                },
                ..TemplateFilter::default()
            },
        )
        .await?;
    let data: Vec<Value> = rows.iter().map(views::template).collect();
    Ok(Json(json!({ "data": data, "synced": synced })))
}

pub fn sync_error(error: SyncError) -> ApiError {
    match error {
        SyncError::NoWaba => ApiError::Validation {
            code: "waba_id_required",
            message: error.to_string(),
            details: json!({"field": "waba_id", "reason": error.to_string()}),
        },
        SyncError::NotConnected(_) => ApiError::Validation {
            code: "connection_not_connected",
            message: error.to_string(),
            details: json!({"field": "connection_id"}),
        },
        SyncError::MetaRejected(ref meta) => ApiError::MetaRejected {
            message: error.to_string(),
            meta: meta_json(meta),
        },
        SyncError::MetaUnreachable(_) => ApiError::Upstream {
            message: error.to_string(),
            meta: None,
        },
        SyncError::Credentials(reason) => ApiError::internal(anyhow::anyhow!(reason)),
        SyncError::Store(store) => store.into(),
    }
}

/// Submits a new template to Meta for review.
///
/// Checks it first against the rules of Meta's that can be checked here (every problem at once,
/// with its path, like `components[1].example.body_text`), then stores it as Meta answered
/// (usually `PENDING`).
#[utoipa::path(
    post,
    path = "/templates",
    tag = "templates",
    request_body = NewTemplateBody,
    responses(
        (status = 201, description = "Submitted; the stored template", body = Template),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not submit templates", body = ErrorBody),
        (status = 404, description = "The connection does not exist", body = ErrorBody),
        (status = 409, description = "A template of this name and language exists (`template_exists`)", body = ErrorBody),
        (status = 422, description = "A field is wrong, the connection cannot be used, or Meta refused the template", body = ErrorBody),
        (status = 502, description = "Meta could not be reached", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_manager("submit templates")?;
    let connection_id = match body.get("connection_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_owned()),
        Some(_) => {
            return Err(ApiError::validation(
                "connection_id",
                "must be a connection id (a string)",
            ));
        }
    };
    let template = check_definition(&body).map_err(|fields| ApiError::Validation {
        code: "validation_failed",
        message: fields.summary(),
        details: fields.to_details(),
    })?;
    let connection = crate::outbound::enqueue::resolve_connection(
        &state.store,
        &auth.tenant_id,
        connection_id.as_deref(),
    )
    .await?;
    let waba_id = connection
        .waba_id
        .clone()
        .ok_or_else(|| sync_error(SyncError::NoWaba))?;
    if state
        .store
        .templates_named(&connection.id, &template.name)
        .await?
        .iter()
        .any(|t| t.language == template.language)
    {
        return Err(ApiError::Conflict {
            code: "template_exists",
            message: format!(
                "this account already has a template {} in {}; edit it in WhatsApp Manager or choose another name",
                template.name, template.language
            ),
        });
    }
    let token = state
        .vault
        .open(
            crate::vault::SecretSlot::new("connections", "access_token", &connection.id),
            connection.access_token.as_deref().unwrap_or_default(),
        )
        .map_err(ApiError::internal)?;
    let request = template.to_create_request();
    let created = state
        .graph
        .create_template(&token, &waba_id, &request)
        .await
        .map_err(|error| match error {
            GraphError::Meta { error, .. } => ApiError::MetaRejected {
                message: format!(
                    "Meta refused the template: {}",
                    error
                        .details()
                        .or(error.error_user_msg.as_deref())
                        .or(error.message.as_deref())
                        .unwrap_or("no reason given")
                ),
                meta: meta_json(&error),
            },
            other => ApiError::Upstream {
                message: format!("Meta could not be reached to submit the template: {other}"),
                meta: None,
            },
        })?;
    let stored = SyncedTemplate {
        meta_template_id: Some(created.id.clone()),
        name: template.name.clone(),
        language: template.language.clone(),
        category: Some(
            created
                .category
                .clone()
                .unwrap_or_else(|| template.category.clone()),
        ),
        status: created
            .status
            .clone()
            .unwrap_or_else(|| "PENDING".to_owned()),
        quality_score: None,
        rejected_reason: None,
        parameter_format: Some(template.parameter_format.as_str().to_owned()),
        sub_category: None,
        components: template.components_json(),
        payload: serde_json::to_string(&request).unwrap_or_default(),
    };
    let row = state
        .store
        .upsert_submitted_template(
            TemplateOwner {
                tenant_id: &auth.tenant_id,
                connection_id: &connection.id,
                waba_id: Some(&waba_id),
            },
            &stored,
            now_ms(),
        )
        .await?;
    state.events.publish(crate::realtime::Event {
        tenant_id: auth.tenant_id.clone(),
        kind: crate::realtime::kind::TEMPLATE_UPDATED,
        data: views::template(&row),
    });
    Ok((StatusCode::CREATED, Json(views::template(&row))))
}

/// The message a customer will see, and whether it can be sent as given.
///
/// Parameters come as the inputs the template takes (`body.1=Ana&header.1=…&button.0.1=…`, or
/// `body.first_name=Ana` for named ones; the template's `inputs` list the keys), or as Cloud API
/// send components in `components=<JSON>`. Missing parameters are left as written and listed in
/// `missing`.
#[utoipa::path(
    get,
    path = "/templates/{id}/preview",
    tag = "templates",
    params(
        ("id" = String, Path, description = "The template's id"),
        ("components" = Option<String>, Query, description = "The JSON array of Cloud API send components; instead of the inputs"),
    ),
    responses(
        (status = 200, description = "The preview", body = TemplatePreview),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such template for this tenant", body = ErrorBody),
        (status = 422, description = "`components` is not JSON", body = ErrorBody),
    )
)]
async fn preview(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let row = template_of(&state, &auth, &id).await?;
    let spec = spec_of(&row)?;
    let mut inputs = BTreeMap::new();
    let mut components: Option<Value> = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "components" {
            components = Some(serde_json::from_str(&value).map_err(|e| {
                ApiError::validation(
                    "components",
                    format!("must be the JSON array of Cloud API send components: {e}"),
                )
            })?);
        } else {
            inputs.insert(key.into_owned(), value.into_owned());
        }
    }
    let components = components.unwrap_or_else(|| components_from_inputs(&spec, &inputs));
    let rendered = render(&spec, Some(&components));
    let send = json!({
        "name": row.name,
        "language": {"code": row.language},
        "components": components,
    });
    let problems = match fit::check_send(&spec, &send) {
        Ok(()) => None,
        Err(fit::FitError::NotApproved { status }) => Some(json!({
            "code": "template_not_approved",
            "message": format!("the template is {status}; only APPROVED templates can be sent"),
        })),
        Err(fit::FitError::Parameters(fields)) => Some(json!({
            "code": "template_parameters_mismatch",
            "message": fields.summary(),
            "details": fields.to_details(),
        })),
    };
    Ok(Json(json!({
        "template": with_inputs(&row),
        "preview": rendered.to_json(),
        "text": rendered.plain_text(),
        "missing": rendered.missing,
        "sendable": problems.is_none(),
        "problems": problems,
        "send": send,
    })))
}

// Doc-only shapes of this module's answers and bodies, read by the OpenAPI derive.

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateList {
    data: Vec<Template>,
}

/// A template with the inputs a send of it takes (left out when its components cannot be read).
#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateDetail {
    id: String,
    connection_id: String,
    meta_template_id: Option<String>,
    name: String,
    language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    category: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    status: String,
    quality_score: Option<String>,
    rejected_reason: Option<String>,
    /// `POSITIONAL` or `NAMED`.
    parameter_format: String,
    sub_category: Option<String>,
    /// Meta's components (header, body, footer, buttons) as Meta has them.
    #[schema(value_type = Vec<Object>)]
    components: Value,
    created_at: String,
    updated_at: String,
    /// What a send of it needs, in display order.
    inputs: Option<Vec<TemplateInputView>>,
}

/// A value a send of the template needs.
#[derive(ToSchema)]
#[schema(as = TemplateInput)]
#[allow(dead_code)]
struct TemplateInputView {
    /// The key the preview's query and the dashboard's forms use: `header.1`, `header.image`,
    /// `body.1`, `body.first_name`, `button.0.1`, `button.2.coupon_code`, ...
    #[schema(example = "body.1")]
    key: String,
    /// `header`, `body` or `button`.
    component: String,
    /// What to show next to the field: `{{1}}`, `Header image link`, ...
    label: String,
    /// The template's example value, when it has one.
    example: Option<String>,
    /// `text`, `image`, `video`, `document`, `location`, `url_suffix` or `coupon_code`.
    kind: String,
}

/// `POST /api/v1/templates/sync`, optional.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateSyncRequest {
    /// Sync only this connection.
    connection_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateSyncResult {
    /// The stored templates after the sync: the named connection's, or all of the tenant's.
    data: Vec<Template>,
    /// One entry per connection synced.
    synced: Vec<TemplateSyncOutcome>,
}

/// How one connection's sync went. `listed` to `synced_at` are there when `ok`, `error` when not.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateSyncOutcome {
    connection_id: String,
    ok: bool,
    /// Templates Meta listed.
    listed: Option<i64>,
    added: Option<i64>,
    updated: Option<i64>,
    removed: Option<i64>,
    synced_at: Option<String>,
    error: Option<TemplateSyncFailure>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateSyncFailure {
    message: String,
}

/// `POST /api/v1/templates`: a template definition as Meta takes it.
#[derive(ToSchema)]
#[allow(dead_code)]
struct NewTemplateBody {
    /// Which number's account gets it; may be left out when the tenant has only one.
    connection_id: Option<String>,
    /// Lowercase letters, digits and underscores, at most 512 characters.
    #[schema(example = "order_update")]
    name: String,
    /// A template language code, `en_US`, `es`, `pt_BR`, ...
    #[schema(example = "en_US")]
    language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION` (any case).
    category: String,
    /// `named` (`{{first_name}}`) or `positional` (`{{1}}`, the default).
    parameter_format: Option<String>,
    /// The `HEADER`, `BODY`, `FOOTER` and `BUTTONS` components as Meta takes them; a `BODY` at
    /// least.
    #[schema(value_type = Vec<Object>)]
    components: Value,
    /// Lets Meta move the template to the category its review finds.
    allow_category_change: Option<bool>,
    /// Taken (and ignored) so a listed template can be sent back as is; Meta sets it.
    sub_category: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplatePreview {
    /// The template, with its inputs.
    template: TemplateDetail,
    /// The message as the customer will see it.
    preview: TemplateRendering,
    /// Its words: a text header, the body and the footer, joined by blank lines.
    text: String,
    /// Input keys of placeholders that had no value (`body.2`, `header.image`).
    missing: Vec<String>,
    /// Whether a send of `send` would be taken (no `problems`).
    sendable: bool,
    /// Why it would not be taken: `template_not_approved` or `template_parameters_mismatch`.
    problems: Option<TemplatePreviewProblem>,
    /// The `template` object of a send with these parameters.
    send: TemplatePreviewSend,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateRendering {
    header: Option<TemplateRenderedHeader>,
    body: String,
    footer: Option<String>,
    buttons: Vec<TemplateRenderedButton>,
    /// Input keys of placeholders that had no value.
    missing: Vec<String>,
}

/// The top of the message: `text` has `text`; `image`, `video` and `document` have `link`, `id`
/// and `filename`; `location` has `name`, `address`, `latitude` and `longitude`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateRenderedHeader {
    /// `text`, `image`, `video`, `document` or `location`.
    #[schema(rename = "type")]
    header_type: String,
    text: Option<String>,
    link: Option<String>,
    id: Option<String>,
    filename: Option<String>,
    name: Option<String>,
    address: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplateRenderedButton {
    /// The template's button type: `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, ...
    #[schema(rename = "type")]
    button_type: String,
    text: String,
    /// The address a URL button opens, its suffix in place.
    url: Option<String>,
    phone_number: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplatePreviewProblem {
    code: String,
    message: String,
    /// For `template_parameters_mismatch`: the field and reason, as in validation errors.
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplatePreviewSend {
    name: String,
    language: TemplatePreviewLanguage,
    /// The send components: those given in `components`, or built from the inputs.
    components: Value,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TemplatePreviewLanguage {
    code: String,
}
