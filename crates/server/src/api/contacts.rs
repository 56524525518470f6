//! `/api/v1/contacts`: the tenant's contacts (one per phone number), searched by name, email,
//! number and tag, created, changed and, while they have no history, deleted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::schema::ErrorBody;
use crate::app::state::AppState;
use crate::clock::rfc3339;
use crate::contacts::{ContactError, Contacts, opt_in, source};
use crate::store::contacts::{ContactDetailRow, ContactFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
}

impl From<ContactError> for ApiError {
    fn from(error: ContactError) -> Self {
        match error {
            ContactError::Invalid(fields) => Self::Validation {
                code: "validation_failed",
                message: fields.summary(),
                details: fields.to_details(),
            },
            ContactError::NotFound => Self::NotFound("contact"),
            ContactError::Exists(_) => Self::Conflict {
                code: "contact_exists",
                message: error.to_string(),
            },
            ContactError::HasHistory => Self::Conflict {
                code: "contact_has_history",
                message: error.to_string(),
            },
            ContactError::Store(store) => store.into(),
        }
    }
}

/// The contact object of the API.
pub fn render(row: &ContactDetailRow) -> Value {
    json!({
        "id": row.id,
        "wa_id": row.wa_id,
        "phone": format!("+{}", row.wa_id),
        "name": row.name,
        "email": row.email,
        "tags": row.tags,
        "custom_fields": serde_json::from_str::<Value>(&row.custom_fields).unwrap_or_else(|_| json!({})),
        "notes": row.notes,
        "opt_in": row.opt_in,
        "opt_in_reason": row.opt_in_reason,
        "opt_in_changed_at": row.opt_in_changed_at.map(rfc3339),
        "source": row.source,
        "last_message_at": row.last_message_at.map(rfc3339),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

/// Who made a change, for the record of an opt-in change.
fn changer(auth: &TenantAuth) -> &'static str {
    if auth.role.is_some() {
        "an agent in the dashboard"
    } else {
        "the API"
    }
}

/// Creates a contact. A number the tenant already has a contact for is 409 `contact_exists`.
#[utoipa::path(
    post,
    path = "/contacts",
    tag = "contacts",
    request_body = ContactBody,
    responses(
        (status = 201, description = "Created", body = ContactRecord),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 409, description = "A contact with this number exists (`contact_exists`)", body = ErrorBody),
        (status = 422, description = "A field is wrong; `details` names each", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let made_by = if auth.role.is_some() {
        source::DASHBOARD
    } else {
        source::API
    };
    let row = Contacts::new(&state.store)
        .create(&auth.tenant_id, &body, made_by)
        .await?;
    Ok((StatusCode::CREATED, Json(render(&row))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// Part of the name or email (any case), or of the number (its digits, however written).
    pub search: Option<String>,
    /// Only contacts with this tag (any case).
    pub tag: Option<String>,
    /// Only contacts in this opt-in state: `opted_in`, `opted_out` or `unknown`.
    pub opt_in: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_before` of the previous page.
    pub before: Option<String>,
}

impl ContactsQuery {
    pub fn filter(&self) -> Result<ContactFilter, ApiError> {
        let opt_in = match self
            .opt_in
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) if opt_in::ALL.contains(&s) => Some(s.to_owned()),
            Some(_) => {
                return Err(ApiError::validation(
                    "opt_in",
                    "must be opted_in, opted_out or unknown",
                ));
            }
        };
        Ok(ContactFilter {
            search: self.search.clone().filter(|s| !s.trim().is_empty()),
            tag: self.tag.clone().filter(|s| !s.trim().is_empty()),
            opt_in,
        })
    }

    fn cursor(&self) -> Result<Option<(i64, String)>, ApiError> {
        match self.before.as_deref().filter(|b| !b.is_empty()) {
            None => Ok(None),
            Some(raw) => raw
                .split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .map(Some)
                .ok_or_else(|| {
                    ApiError::validation("before", "must be the next_before of a previous page")
                }),
        }
    }
}

/// The tenant's contacts, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/contacts",
    tag = "contacts",
    params(ContactsQuery),
    responses(
        (status = 200, description = "A page of contacts", body = ContactPage),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ContactsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(query.limit)?;
    let filter = query.filter()?;
    let rows = Contacts::new(&state.store)
        .list(&auth.tenant_id, &filter, query.cursor()?, limit)
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| format!("{}_{}", r.created_at, r.id)))
        .flatten();
    let data: Vec<Value> = rows.iter().map(render).collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}

/// One contact.
#[utoipa::path(
    get,
    path = "/contacts/{id}",
    tag = "contacts",
    params(("id" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact", body = ContactRecord),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such contact for this tenant", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = Contacts::new(&state.store)
        .get(&auth.tenant_id, &id)
        .await?;
    Ok(Json(render(&row)))
}

/// Changes the fields given: `null` (or `""`) clears one, `tags` replaces the list, and each key
/// of `custom_fields` is set (or removed with `null`) on its own. The number cannot change.
#[utoipa::path(
    patch,
    path = "/contacts/{id}",
    tag = "contacts",
    params(("id" = String, Path, description = "The contact's id")),
    request_body = ContactBody,
    responses(
        (status = 200, description = "The contact as changed", body = ContactRecord),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such contact for this tenant", body = ErrorBody),
        (status = 422, description = "A field is wrong; `details` names each", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let row = Contacts::new(&state.store)
        .update(&auth.tenant_id, &id, &body, changer(&auth))
        .await?;
    Ok(Json(render(&row)))
}

/// Deletes a contact that has no conversations or sequence enrollments; one with history is
/// 409 `contact_has_history` (mark it opted out to stop writing to it).
#[utoipa::path(
    delete,
    path = "/contacts/{id}",
    tag = "contacts",
    params(("id" = String, Path, description = "The contact's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such contact for this tenant", body = ErrorBody),
        (status = 409, description = "The contact has history (`contact_has_history`)", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn remove(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    Contacts::new(&state.store)
        .delete(&auth.tenant_id, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// Doc-only shapes of this module's answers and bodies, read by the OpenAPI derive.

/// A contact: one phone number of a customer, with what the business keeps about them.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ContactRecord {
    id: String,
    /// The number as WhatsApp writes it: E.164 digits without the plus.
    wa_id: String,
    /// The number with its plus.
    phone: String,
    name: Option<String>,
    email: Option<String>,
    tags: Vec<String>,
    /// The tenant's own fields, each a string.
    #[schema(value_type = Object)]
    custom_fields: Value,
    notes: Option<String>,
    /// `opted_in`, `opted_out` (no marketing, no broadcasts) or `unknown`.
    opt_in: String,
    /// Why the opt-in state last changed: the word the customer sent, or who marked them.
    opt_in_reason: Option<String>,
    opt_in_changed_at: Option<String>,
    /// `inbound` (wrote first), `outbound`, `api`, `import` or `dashboard`.
    source: String,
    last_message_at: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ContactPage {
    data: Vec<ContactRecord>,
    /// Give as `before` for the next page; `null` on the last.
    next_before: Option<String>,
}

/// `POST /api/v1/contacts` (`phone` required) and `PATCH` (the fields given; not `phone`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct ContactBody {
    /// Any common format: `+49 151 1234567`, `0049…`, digits.
    phone: Option<String>,
    /// Up to 200 characters.
    name: Option<String>,
    email: Option<String>,
    /// Up to 50 tags of up to 50 characters (a comma-separated string also works).
    tags: Option<Vec<String>>,
    /// Up to 50 fields: names of letters, digits and `_`; values strings, numbers or booleans.
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Value>,
    /// Up to 10,000 characters.
    notes: Option<String>,
    /// `opted_in`, `opted_out` or `unknown` (or `true`/`false`).
    opt_in: Option<String>,
    /// With `opt_in`: why (kept with the state).
    opt_in_reason: Option<String>,
}
