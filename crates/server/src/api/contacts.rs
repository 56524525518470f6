//! `/api/v1/contacts`: the tenant's contacts (one per phone number), searched by name, email,
//! number and tag, created, changed and, while they have no history, deleted.

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
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
use crate::contacts::import::{Import, summary};
use crate::contacts::{ContactError, Contacts, opt_in, source};
use crate::store::contacts::{ContactDetailRow, ContactFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(export))
        .routes(routes!(imports))
        .routes(routes!(import_status))
        .routes(routes!(show, update, remove))
}

/// The import route reads bodies of any size as they arrive; it is mounted beside the media
/// upload, with that route's longer request timeout.
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .layer(DefaultBodyLimit::disable())
}

/// The largest CSV file an import reads.
pub const MAX_IMPORT_BYTES: u64 = 512 * 1024 * 1024;

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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// Tags every contact of the file gets, separated by commas.
    tags: Option<String>,
    /// The file's name, kept with the import.
    filename: Option<String>,
}

/// Imports contacts from a CSV file sent as the body, read as it arrives: each row checked,
/// good rows merged by phone number (a known number gets the row's fields and tags), bad rows
/// reported with their line. The answer is the import's summary; while it runs, `GET
/// /api/v1/contacts/imports/{id}` and `contacts.import` events show its progress.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/import",
    tag = "contacts",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "A header row (one column phone; name, email, notes, tags, opt_in; any other column is a custom field), then one contact per row"),
    responses(
        (status = 200, description = "The file was read to its end; the summary", body = ContactImport),
        (status = 400, description = "The upload broke off; the rows read before stay imported", body = ErrorBody),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 413, description = "The file is larger than 512 MiB", body = ErrorBody),
        (status = 422, description = "The header has no phone column, or a tag is wrong", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn import(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ImportQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let tags = import_tags(query.tags.as_deref())?;
    let filename = query
        .filename
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| f.chars().take(200).collect::<String>());
    let mut import = Import::start(
        &state.store,
        &state.events,
        &auth.tenant_id,
        filename.as_deref(),
        tags,
    )
    .await?;
    tracing::info!(import_id = import.id(), "contact import started");
    let mut stream = body.into_data_stream();
    let mut read: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                let reason = format!("the upload broke off after {read} bytes: {error}");
                let row = import.fail(&reason).await?;
                return Err(ApiError::BadRequest {
                    code: "upload_incomplete",
                    message: format!(
                        "{reason}; the {} rows read before stay imported (import {})",
                        row.created + row.updated,
                        row.id
                    ),
                });
            }
        };
        read += chunk.len() as u64;
        if read > MAX_IMPORT_BYTES {
            import
                .fail("the file is larger than 512 MiB; split it and import the parts")
                .await?;
            return Err(ApiError::PayloadTooLarge {
                limit_bytes: MAX_IMPORT_BYTES as usize,
            });
        }
        import.feed(&chunk).await?;
        if let Some(problem) = import.header_problem() {
            import.fail(&problem).await?;
            return Err(ApiError::validation("file", problem));
        }
    }
    let row = import.finish().await?;
    tracing::info!(
        import_id = row.id.as_str(),
        rows = row.rows_read,
        created = row.created,
        updated = row.updated,
        failed = row.failed,
        "contact import finished"
    );
    if row.status == crate::store::contact_imports::IMPORT_FAILED {
        return Err(ApiError::validation(
            "file",
            row.failure_reason.clone().unwrap_or_default(),
        ));
    }
    Ok(Json(summary(&row)))
}

fn import_tags(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let body = json!({"phone": "+10000000000", "tags": raw.unwrap_or_default()});
    crate::contacts::ContactInput::parse(&body, true)
        .map(|input| input.tags.unwrap_or_default())
        .map_err(|e| ApiError::validation("tags", e.summary()))
}

/// The tenant's latest imports (up to 50), newest first, with their progress.
#[utoipa::path(
    get,
    path = "/contacts/imports",
    tag = "contacts",
    responses(
        (status = 200, description = "The imports", body = ContactImportList),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn imports(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    let rows = state.store.contact_imports(&auth.tenant_id, 50).await?;
    let data: Vec<Value> = rows.iter().map(summary).collect();
    Ok(Json(json!({ "data": data })))
}

/// One import: how far it got and what it found.
#[utoipa::path(
    get,
    path = "/contacts/imports/{id}",
    tag = "contacts",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "The import", body = ContactImport),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such import for this tenant", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn import_status(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .contact_import(&auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("import"))?;
    Ok(Json(summary(&row)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// As for the list: part of the name, email or number.
    search: Option<String>,
    tag: Option<String>,
    /// `opted_in`, `opted_out` or `unknown`.
    opt_in: Option<String>,
}

/// The contacts the filters select as a CSV file (the columns an import reads back), streamed.
#[utoipa::path(
    get,
    path = "/contacts/export",
    tag = "contacts",
    params(ExportQuery),
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn export(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let filter = ContactsQuery {
        search: query.search,
        tag: query.tag,
        opt_in: query.opt_in,
        limit: None,
        before: None,
    }
    .filter()?;
    let stream = crate::contacts::export::stream(state.store.clone(), auth.tenant_id, filter);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"contacts.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
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

/// A CSV import of contacts and how far it got.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ContactImport {
    id: String,
    /// `running`, `done`, or `failed` (the file could not be read to its end; `failure_reason`).
    status: String,
    filename: Option<String>,
    bytes_read: i64,
    /// Rows after the header (blank ones aside).
    rows: i64,
    /// New contacts.
    created: i64,
    /// Known numbers whose contact got the row's fields and tags.
    updated: i64,
    /// Rows refused; the first 1,000 are in `errors`.
    failed: i64,
    errors: Vec<ContactImportError>,
    /// More rows failed than `errors` lists.
    errors_truncated: bool,
    failure_reason: Option<String>,
    created_at: String,
    finished_at: Option<String>,
}

/// A row the import refused.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ContactImportError {
    /// The line of the file the row starts on (the header is line 1).
    line: i64,
    reason: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ContactImportList {
    data: Vec<ContactImport>,
}
