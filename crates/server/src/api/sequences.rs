//! `/api/v1/sequences`: timed follow-ups, the contacts enrolled in them, and each enrollment's
//! step, next run and history.

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
use crate::automation::{EnrollTarget, SequenceError, Sequences, enrolled_by, steps_of};
use crate::clock::rfc3339;
use crate::phone::PhoneNumber;
use crate::store::sequences::{
    EnrollmentCounts, EnrollmentRow, STATE_ACTIVE, STATE_COMPLETED, STATE_STOPPED, STATE_WAITING,
    SequenceEventRow, SequenceRow,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(enroll, enrollments))
        .routes(routes!(enrollment))
        .routes(routes!(stop))
}

impl From<SequenceError> for ApiError {
    fn from(error: SequenceError) -> Self {
        match error {
            SequenceError::Invalid(fields) => Self::Validation {
                code: "validation_failed",
                message: fields.summary(),
                details: fields.to_details(),
            },
            SequenceError::NotFound => Self::NotFound("sequence"),
            SequenceError::EnrollmentNotFound => Self::NotFound("enrollment"),
            SequenceError::ContactNotFound => Self::NotFound("contact"),
            SequenceError::ConnectionNotFound => {
                Self::validation("connection_id", error.to_string())
            }
            SequenceError::ConnectionAmbiguous(_) | SequenceError::NoConnection => {
                Self::validation("connection_id", error.to_string())
            }
            SequenceError::AlreadyEnrolled(_) => Self::Conflict {
                code: "already_enrolled",
                message: error.to_string(),
            },
            SequenceError::OptedOut => Self::Conflict {
                code: "contact_opted_out",
                message: error.to_string(),
            },
            SequenceError::AlreadyEnded(_) => Self::Conflict {
                code: "enrollment_ended",
                message: error.to_string(),
            },
            SequenceError::Store(store) => store.into(),
        }
    }
}

const MANAGE: &str = "manage sequences";

fn render(row: &SequenceRow, counts: EnrollmentCounts) -> Result<Value, ApiError> {
    let steps = steps_of(row)?;
    Ok(json!({
        "id": row.id,
        "connection_id": row.connection_id,
        "name": row.name,
        "steps": steps.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        "enroll_on_first_message": row.enroll_on_first_message,
        "stop_on_reply": row.stop_on_reply,
        "opt_out_words": serde_json::from_str::<Value>(&row.opt_out_words).unwrap_or(json!([])),
        "enrollments": {
            "active": counts.active,
            "waiting": counts.waiting,
            "completed": counts.completed,
            "stopped": counts.stopped,
        },
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }))
}

/// An enrollment; `step` is the 1-based number of the step it runs next (`null` once ended).
pub fn render_enrollment(
    row: &EnrollmentRow,
    steps_total: usize,
    history: Option<&[SequenceEventRow]>,
) -> Value {
    let mut body = json!({
        "id": row.id,
        "sequence_id": row.sequence_id,
        "connection_id": row.connection_id,
        "contact": {"id": row.contact_id, "wa_id": row.contact_wa_id},
        "state": row.state,
        "step": row.is_live().then_some(row.step + 1),
        "steps_total": steps_total,
        "next_run_at": row.next_run_at.filter(|_| row.is_live()).map(rfc3339),
        "stopped_reason": row.stopped_reason,
        "enrolled_by": row.enrolled_by,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    });
    if let Some(history) = history {
        body["history"] = history
            .iter()
            .map(|e| {
                json!({
                    "event": e.event,
                    "step": e.step.map(|s| s + 1),
                    "message_id": e.message_id,
                    "detail": e.detail,
                    "at": rfc3339(e.created_at),
                })
            })
            .collect();
    }
    body
}

/// Creates a sequence: timed follow-up messages for the contacts enrolled in it.
#[utoipa::path(
    post,
    path = "/sequences",
    tag = "sequences",
    request_body = SequenceBody,
    responses(
        (status = 201, description = "Created", body = Sequence),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage sequences", body = ErrorBody),
        (status = 422, description = "A field or step is wrong, or the connection cannot be used", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_manager(MANAGE)?;
    let row = Sequences::from_state(&state)
        .create(&auth.tenant_id, &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(render(&row, EnrollmentCounts::default())?),
    ))
}

/// The tenant's sequences, with counts of their enrollments.
#[utoipa::path(
    get,
    path = "/sequences",
    tag = "sequences",
    responses(
        (status = 200, description = "The sequences", body = SequenceList),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    let rows = state.store.sequences(&auth.tenant_id).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        let counts = state.store.enrollment_counts(&row.id).await?;
        data.push(render(row, counts)?);
    }
    Ok(Json(json!({ "data": data })))
}

/// One sequence.
#[utoipa::path(
    get,
    path = "/sequences/{id}",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id")),
    responses(
        (status = 200, description = "The sequence", body = Sequence),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such sequence for this tenant", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = Sequences::from_state(&state)
        .get(&auth.tenant_id, &id)
        .await?;
    let counts = state.store.enrollment_counts(&row.id).await?;
    Ok(Json(render(&row, counts)?))
}

/// Changes the fields given; new steps apply to live enrollments from the step each is at.
#[utoipa::path(
    patch,
    path = "/sequences/{id}",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id")),
    request_body = SequenceBody,
    responses(
        (status = 200, description = "The sequence as changed", body = Sequence),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage sequences", body = ErrorBody),
        (status = 404, description = "No such sequence for this tenant", body = ErrorBody),
        (status = 422, description = "A field or step is wrong, or the connection cannot be used", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    auth.require_manager(MANAGE)?;
    let row = Sequences::from_state(&state)
        .update(&auth.tenant_id, &id, &body)
        .await?;
    let counts = state.store.enrollment_counts(&row.id).await?;
    Ok(Json(render(&row, counts)?))
}

/// Deletes a sequence; its live enrollments stop, and every enrollment keeps its history.
#[utoipa::path(
    delete,
    path = "/sequences/{id}",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 403, description = "This user's role may not manage sequences", body = ErrorBody),
        (status = 404, description = "No such sequence for this tenant", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn remove(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_manager(MANAGE)?;
    Sequences::from_state(&state)
        .delete(&auth.tenant_id, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"to": "<phone>"}` or `{"contact_id": "<id>"}`.
pub fn enroll_target(body: &Value) -> Result<EnrollTarget, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::validation("body", "must be a JSON object"));
    };
    for key in object.keys() {
        if key != "to" && key != "contact_id" {
            return Err(ApiError::validation(
                key,
                "is not a field of an enrollment (give \"to\" or \"contact_id\")",
            ));
        }
    }
    match (
        object.get("to").and_then(Value::as_str),
        object.get("contact_id").and_then(Value::as_str),
    ) {
        (Some(to), None) => PhoneNumber::parse(to)
            .map(EnrollTarget::Phone)
            .map_err(|e| ApiError::validation("to", e.to_string())),
        (None, Some(id)) if !id.trim().is_empty() => {
            Ok(EnrollTarget::Contact(id.trim().to_owned()))
        }
        (Some(_), Some(_)) => Err(ApiError::validation(
            "to",
            "give either \"to\" or \"contact_id\", not both",
        )),
        _ => Err(ApiError::validation(
            "to",
            "is required: the customer's phone number (or give \"contact_id\")",
        )),
    }
}

/// Enrolls a contact, by phone number (`to`; the contact is made when new) or `contact_id`.
#[utoipa::path(
    post,
    path = "/sequences/{id}/enrollments",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id")),
    request_body = EnrollBody,
    responses(
        (status = 201, description = "Enrolled", body = SequenceEnrollmentDetail),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such sequence or contact for this tenant", body = ErrorBody),
        (status = 409, description = "Already enrolled (`already_enrolled`), or the contact opted out (`contact_opted_out`)", body = ErrorBody),
        (status = 422, description = "The body is wrong, or the sequence's connection cannot be used", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn enroll(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let target = enroll_target(&body)?;
    let service = Sequences::from_state(&state);
    // A signed-in user enrolls from the dashboard; an API key is the tenant's own systems.
    let by = if auth.role.is_some() {
        enrolled_by::DASHBOARD
    } else {
        enrolled_by::API
    };
    let row = service.enroll(&auth.tenant_id, &id, target, by).await?;
    let sequence = service.get(&auth.tenant_id, &id).await?;
    let history = state.store.sequence_events(&row.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(render_enrollment(
            &row,
            steps_of(&sequence)?.len(),
            Some(&history),
        )),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EnrollmentsQuery {
    /// Only enrollments in this state: `active`, `waiting`, `completed` or `stopped`.
    state: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_before` of the previous page.
    before: Option<String>,
}

/// A sequence's enrollments, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/sequences/{id}/enrollments",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id"), EnrollmentsQuery),
    responses(
        (status = 200, description = "A page of enrollments", body = SequenceEnrollmentPage),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such sequence for this tenant", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn enrollments(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EnrollmentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let sequence = Sequences::from_state(&state)
        .get(&auth.tenant_id, &id)
        .await?;
    let limit = super::page_limit(query.limit)?;
    let filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) if [STATE_ACTIVE, STATE_WAITING, STATE_COMPLETED, STATE_STOPPED].contains(&s) => {
            Some(s)
        }
        Some(_) => {
            return Err(ApiError::validation(
                "state",
                "must be active, waiting, completed or stopped",
            ));
        }
    };
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    ApiError::validation("before", "must be the next_before of a previous page")
                })?,
        ),
    };
    let rows = state
        .store
        .enrollments(&sequence.id, filter, before, limit)
        .await?;
    let total = steps_of(&sequence)?.len();
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| format!("{}_{}", r.created_at, r.id)))
        .flatten();
    let data: Vec<Value> = rows
        .iter()
        .map(|r| render_enrollment(r, total, None))
        .collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}

async fn enrollment_of(
    state: &AppState,
    tenant_id: &str,
    sequence_id: &str,
    enrollment_id: &str,
) -> Result<(SequenceRow, EnrollmentRow), ApiError> {
    let service = Sequences::from_state(state);
    let sequence = service.get(tenant_id, sequence_id).await?;
    let enrollment = service.enrollment(tenant_id, enrollment_id).await?;
    if enrollment.sequence_id != sequence.id {
        return Err(ApiError::NotFound("enrollment"));
    }
    Ok((sequence, enrollment))
}

/// One enrollment, with its history.
#[utoipa::path(
    get,
    path = "/sequences/{id}/enrollments/{enrollment_id}",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id"), ("enrollment_id" = String, Path, description = "The enrollment's id")),
    responses(
        (status = 200, description = "The enrollment", body = SequenceEnrollmentDetail),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such sequence, or no such enrollment of it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn enrollment(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path((id, enrollment_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (sequence, row) = enrollment_of(&state, &auth.tenant_id, &id, &enrollment_id).await?;
    let history = state.store.sequence_events(&row.id).await?;
    Ok(Json(render_enrollment(
        &row,
        steps_of(&sequence)?.len(),
        Some(&history),
    )))
}

/// Stops an enrollment: no more of its steps are sent.
#[utoipa::path(
    post,
    path = "/sequences/{id}/enrollments/{enrollment_id}/stop",
    tag = "sequences",
    params(("id" = String, Path, description = "The sequence's id"), ("enrollment_id" = String, Path, description = "The enrollment's id")),
    responses(
        (status = 200, description = "The enrollment, stopped", body = SequenceEnrollmentDetail),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such sequence, or no such enrollment of it", body = ErrorBody),
        (status = 409, description = "The enrollment has already ended (`enrollment_ended`)", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(tenant_id = %auth.tenant_id))]
async fn stop(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path((id, enrollment_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (sequence, _) = enrollment_of(&state, &auth.tenant_id, &id, &enrollment_id).await?;
    let row = Sequences::from_state(&state)
        .stop(&auth.tenant_id, &enrollment_id)
        .await?;
    let history = state.store.sequence_events(&row.id).await?;
    Ok(Json(render_enrollment(
        &row,
        steps_of(&sequence)?.len(),
        Some(&history),
    )))
}

// Doc-only shapes of this module's answers and bodies, read by the OpenAPI derive.

/// A sequence: steps sent one after another to each contact enrolled.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Sequence {
    id: String,
    /// The number the steps are sent from.
    connection_id: String,
    name: String,
    steps: Vec<SequenceStep>,
    /// Enroll each new customer when their first message arrives.
    enroll_on_first_message: bool,
    /// Stop an enrollment when the customer replies.
    stop_on_reply: bool,
    /// Words that stop an enrollment (and keep the contact out) when the customer sends them.
    opt_out_words: Vec<String>,
    enrollments: SequenceEnrollmentCounts,
    created_at: String,
    updated_at: String,
}

/// One step: how long after the step before it (or the enrollment) it runs, and what it sends.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceStep {
    /// Seconds after the step before (or after enrolling, for the first), 0 to 90 days.
    delay_seconds: i64,
    /// The message as a send takes it: `{"type": "text", "text": {"body": "..."}}` or
    /// `{"type": "template", "template": {...}}`.
    #[schema(value_type = Object)]
    message: Value,
    /// When the customer's window is closed (not for templates): `wait` for it to reopen, send
    /// the `fallback_template`, or `skip` the step.
    outside_window: String,
    /// The template object (`{"name", "language", "components"?}`) sent instead while the
    /// window is closed.
    #[schema(value_type = Option<Object>)]
    fallback_template: Option<Value>,
}

/// How many enrollments are in each state.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceEnrollmentCounts {
    active: i64,
    waiting: i64,
    completed: i64,
    stopped: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceList {
    data: Vec<Sequence>,
}

/// `POST /api/v1/sequences` (`name` and `steps` required) and `PATCH` (the fields given).
#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceBody {
    /// 1 to 100 characters.
    name: Option<String>,
    /// Which number sends the steps; may be left out when the tenant has only one.
    connection_id: Option<String>,
    /// 1 to 50 steps.
    steps: Option<Vec<SequenceStepBody>>,
    /// Default `false`.
    enroll_on_first_message: Option<bool>,
    /// Default `true`.
    stop_on_reply: Option<bool>,
    /// At most 50 words or short phrases (1 to 50 characters each).
    opt_out_words: Option<Vec<String>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceStepBody {
    /// Seconds after the step before (or after enrolling, for the first), 0 to 7776000 (90 days).
    delay_seconds: i64,
    /// The message as `POST /api/v1/messages` takes it, without `to`: `{"type", <type>: {...}}`.
    /// Reactions are not taken.
    #[schema(value_type = Object)]
    message: Value,
    /// `wait` (the default), `fallback_template` (the default when one is given) or `skip`.
    outside_window: Option<String>,
    /// An approved template object (`{"name", "language", "components"?}`) to send while the
    /// window is closed; only for free-form messages.
    #[schema(value_type = Option<Object>)]
    fallback_template: Option<Value>,
}

/// `POST /api/v1/sequences/{id}/enrollments`: `to` or `contact_id`, not both.
#[derive(ToSchema)]
#[allow(dead_code)]
struct EnrollBody {
    /// The customer's number in any common format.
    #[schema(example = "+16505551234")]
    to: Option<String>,
    /// A contact of the tenant.
    contact_id: Option<String>,
}

/// A contact's way through a sequence.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceEnrollment {
    id: String,
    sequence_id: String,
    connection_id: String,
    contact: SequenceContact,
    /// `active`, `waiting` (for the customer's window), `completed` or `stopped`.
    state: String,
    /// The 1-based number of the step it runs next; `null` once ended.
    step: Option<i64>,
    steps_total: i64,
    /// When the next step runs; `null` once ended.
    next_run_at: Option<String>,
    /// `replied`, `opted_out`, `by_hand`, `sequence_deleted` or `send_failed`.
    stopped_reason: Option<String>,
    /// `api`, `dashboard` or `first_message`.
    enrolled_by: String,
    created_at: String,
    updated_at: String,
}

/// An enrollment with its history, oldest first.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceEnrollmentDetail {
    id: String,
    sequence_id: String,
    connection_id: String,
    contact: SequenceContact,
    /// `active`, `waiting` (for the customer's window), `completed` or `stopped`.
    state: String,
    /// The 1-based number of the step it runs next; `null` once ended.
    step: Option<i64>,
    steps_total: i64,
    /// When the next step runs; `null` once ended.
    next_run_at: Option<String>,
    /// `replied`, `opted_out`, `by_hand`, `sequence_deleted` or `send_failed`.
    stopped_reason: Option<String>,
    /// `api`, `dashboard` or `first_message`.
    enrolled_by: String,
    created_at: String,
    updated_at: String,
    history: Vec<SequenceEventView>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceContact {
    id: String,
    /// The customer's WhatsApp id: their number, digits only.
    wa_id: String,
}

/// Something that happened to an enrollment.
#[derive(ToSchema)]
#[schema(as = SequenceEvent)]
#[allow(dead_code)]
struct SequenceEventView {
    /// `enrolled`, `sent`, `waiting_for_window`, `resumed`, `skipped`, `failed`, `stopped` or
    /// `completed`.
    event: String,
    /// The 1-based step it concerns, if any.
    step: Option<i64>,
    /// The message sent, for `sent`.
    message_id: Option<String>,
    detail: Option<String>,
    at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct SequenceEnrollmentPage {
    data: Vec<SequenceEnrollment>,
    /// Pass as `before` for the next, older page; `null` on the last one.
    next_before: Option<String>,
}
