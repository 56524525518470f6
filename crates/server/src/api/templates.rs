//! `/api/v1/templates`: the templates of the tenant's connections as Meta last described them;
//! pulling them again from Meta, submitting new ones, and previewing what a customer will see.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudapi::GraphError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list).post(create))
        .route("/templates/sync", post(sync))
        .route("/templates/{id}", get(show))
        .route("/templates/{id}/preview", get(preview))
}

#[derive(Deserialize)]
struct ListQuery {
    connection_id: Option<String>,
    status: Option<String>,
    category: Option<String>,
    name: Option<String>,
    language: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /api/v1/templates?connection_id=&status=&category=&name=&language=`.
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncBody {
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

/// `POST /api/v1/templates/sync` with `{"connection_id"?}`: pulls every template from Meta now
/// (one connection, or each of the tenant's connected numbers) and answers the stored list.
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

/// `POST /api/v1/templates`: checks a new template against Meta's rules that can be checked
/// here, submits it to Meta for review and stores it as Meta answered (PENDING).
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

/// `GET /api/v1/templates/{id}/preview`: the text a customer will see. Parameters come as the
/// inputs the template takes (`body.1=Ana&header.1=…&button.0.1=…`, or `body.first_name=Ana`
/// for named ones), or as Cloud API send components in `components=<JSON>`.
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
