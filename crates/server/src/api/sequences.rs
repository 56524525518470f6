//! `/api/v1/sequences`: timed follow-ups, the contacts enrolled in them, and each enrollment's
//! step, next run and history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use crate::app::state::AppState;
use crate::automation::{EnrollTarget, SequenceError, Sequences, enrolled_by, steps_of};
use crate::clock::rfc3339;
use crate::phone::PhoneNumber;
use crate::store::sequences::{
    EnrollmentCounts, EnrollmentRow, STATE_ACTIVE, STATE_COMPLETED, STATE_STOPPED, STATE_WAITING,
    SequenceEventRow, SequenceRow,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sequences", post(create).get(list))
        .route("/sequences/{id}", get(show).patch(update).delete(remove))
        .route("/sequences/{id}/enrollments", post(enroll).get(enrollments))
        .route(
            "/sequences/{id}/enrollments/{enrollment_id}",
            get(enrollment),
        )
        .route(
            "/sequences/{id}/enrollments/{enrollment_id}/stop",
            post(stop),
        )
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

#[derive(Debug, Deserialize)]
struct EnrollmentsQuery {
    state: Option<String>,
    limit: Option<i64>,
    /// `next_before` of the previous page.
    before: Option<String>,
}

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
