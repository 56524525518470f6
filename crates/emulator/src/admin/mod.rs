//! The admin API under `/admin`: register numbers, make customers write, push raw webhooks and
//! statuses, watch deliveries, sends, read receipts and Graph calls, switch faults on and off, and
//! seed and review templates ([`templates`]) and media ([`media`]), over HTTP, for the demo and for
//! tests in other processes.
//!
//! It has no authentication on purpose: it is a test tool. Never expose an emulator to the internet.

mod media;
mod templates;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::calls::{CallRecord, GraphEndpoint};
use crate::customers::{CustomerMessage, InboundReceipt};
use crate::delivery::{DeliveryId, DeliveryRecord, DeliveryStatus};
use crate::error::{EmulatorError, InputError};
use crate::faults::{ActiveFault, FaultId, FaultSpec};
use crate::messaging::{MessageStatus, ReadReceipt, SentMessage};
use crate::phone_numbers::{PhoneNumberRegistration, PhoneNumberUpdate, RegisteredPhoneNumber};
use crate::state::EmulatorState;

/// Meta batches up to 1000 updates in one POST, so raw webhook bodies can be large.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Bodies that carry a file in base64: the largest file Meta takes, a third larger, and room.
const MAX_FILE_BODY_BYTES: usize = 140 * 1024 * 1024;

pub(crate) fn router() -> Router<EmulatorState> {
    Router::new()
        .route(
            "/phone-numbers",
            post(register_phone_number).get(list_phone_numbers),
        )
        .route(
            "/phone-numbers/{phone_number_id}",
            get(show_phone_number).patch(update_phone_number),
        )
        .route(
            "/customers/messages",
            post(customer_writes).layer(DefaultBodyLimit::max(MAX_FILE_BODY_BYTES)),
        )
        .route("/webhooks", post(deliver_raw))
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{id}", get(show_delivery))
        .route("/statuses", post(deliver_status))
        .route("/sent-messages", get(list_sent_messages))
        .route("/read-receipts", get(list_read_receipts))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/calls", get(list_calls))
        .merge(templates::router())
        .merge(media::router())
        .method_not_allowed_fallback(method_not_allowed)
        // Explicit catch-alls rather than a fallback: nested routes are flattened into the root, where
        // Graph's `/{version}/{id}` would otherwise claim `/admin/<anything>`.
        .route("/", any(unknown_admin_path))
        .route("/{*rest}", any(unknown_admin_path))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Errors of the admin API, answered as `{"error":{"code","message","field"?}}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// The body was not JSON of the right shape; the status is the extractor's (400, 413, 415 or 422).
    #[error("{0}")]
    BadJson(#[from] JsonRejection),
    /// 400: a field is invalid; the message names it and says what would be right.
    #[error("{0}")]
    Invalid(InputError),
    /// 404: no such phone number, delivery, sent message, fault, template, media or path.
    #[error("{0}")]
    NotFound(String),
    /// 409: the phone number is registered already, or the template or media exists already.
    #[error("{0}")]
    Conflict(String),
    /// 405: the path exists but not with this method.
    #[error("this path does not take that method; see the crate docs for the admin endpoints")]
    MethodNotAllowed,
    /// 500: a bug; logged with its cause and not shown.
    #[error("internal error")]
    Internal(EmulatorError),
}

impl From<EmulatorError> for AdminError {
    fn from(error: EmulatorError) -> Self {
        match error {
            EmulatorError::InvalidInput(input) => Self::Invalid(input),
            EmulatorError::UnknownPhoneNumber(_)
            | EmulatorError::UnknownDelivery(_)
            | EmulatorError::UnknownMessage { .. }
            | EmulatorError::UnknownFault(_)
            | EmulatorError::UnknownTemplate(_)
            | EmulatorError::UnknownMedia(_) => Self::NotFound(error.to_string()),
            EmulatorError::PhoneNumberAlreadyRegistered(_)
            | EmulatorError::TemplateAlreadyExists { .. }
            | EmulatorError::MediaAlreadyExists(_) => Self::Conflict(error.to_string()),
            other => Self::Internal(other),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadJson(rejection) => (rejection.status(), "invalid_json"),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Internal(error) => {
                tracing::error!(
                    error = error as &dyn std::error::Error,
                    "admin request failed"
                );
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut error = json!({ "code": code, "message": self.to_string() });
        if let Self::Invalid(input) = &self {
            error["field"] = input.field.clone().into();
        }
        (status, axum::Json(json!({ "error": error }))).into_response()
    }
}

/// `axum::Json`, but a bad body answers in the admin API's JSON error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AdminError))]
struct AdminJson<T>(T);

impl<T: Serialize> IntoResponse for AdminJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Lists come as `{"data":[...]}`, as Graph lists do.
#[derive(Serialize)]
struct List<T> {
    data: Vec<T>,
}

#[tracing::instrument(skip_all, fields(phone_number_id = %registration.phone_number_id))]
async fn register_phone_number(
    State(state): State<EmulatorState>,
    AdminJson(registration): AdminJson<PhoneNumberRegistration>,
) -> Result<(StatusCode, AdminJson<RegisteredPhoneNumber>), AdminError> {
    let registered = state.register_phone_number(registration)?;
    Ok((StatusCode::CREATED, AdminJson(registered)))
}

async fn list_phone_numbers(
    State(state): State<EmulatorState>,
) -> AdminJson<List<RegisteredPhoneNumber>> {
    AdminJson(List {
        data: state.phone_numbers(),
    })
}

async fn show_phone_number(
    State(state): State<EmulatorState>,
    Path(phone_number_id): Path<String>,
) -> Result<AdminJson<RegisteredPhoneNumber>, AdminError> {
    state
        .phone_number(&phone_number_id)
        .map(AdminJson)
        .ok_or_else(|| EmulatorError::UnknownPhoneNumber(phone_number_id).into())
}

#[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id))]
async fn update_phone_number(
    State(state): State<EmulatorState>,
    Path(phone_number_id): Path<String>,
    AdminJson(update): AdminJson<PhoneNumberUpdate>,
) -> Result<AdminJson<RegisteredPhoneNumber>, AdminError> {
    Ok(AdminJson(
        state.update_phone_number(&phone_number_id, update)?,
    ))
}

/// `{"phone_number_id","from","name"?,"type":"text","text":{"body":"hi"},"context"?,"referral"?,"timestamp"?}`;
/// a media type's object may carry the file itself: `"image":{"data":"<base64>","mime_type":"image/jpeg"}`.
#[tracing::instrument(skip_all)]
async fn customer_writes(
    State(state): State<EmulatorState>,
    AdminJson(body): AdminJson<Value>,
) -> Result<(StatusCode, AdminJson<InboundReceipt>), AdminError> {
    let message = CustomerMessage::from_admin_json(body).map_err(AdminError::Invalid)?;
    let receipt = state.customer_writes(message)?;
    Ok((StatusCode::ACCEPTED, AdminJson(receipt)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    phone_number_id: String,
    /// Kept as the caller's text, so the delivered bytes are exactly what was given.
    body: Box<RawValue>,
}

#[derive(Serialize)]
struct Accepted {
    delivery_id: DeliveryId,
}

#[tracing::instrument(skip_all, fields(phone_number_id = %raw.phone_number_id))]
async fn deliver_raw(
    State(state): State<EmulatorState>,
    AdminJson(raw): AdminJson<RawWebhook>,
) -> Result<(StatusCode, AdminJson<Accepted>), AdminError> {
    let body = Bytes::copy_from_slice(raw.body.get().as_bytes());
    let delivery_id = state.deliver_bytes(&raw.phone_number_id, body)?;
    Ok((StatusCode::ACCEPTED, AdminJson(Accepted { delivery_id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryFilter {
    phone_number_id: Option<String>,
    status: Option<String>,
}

/// Every delivery (without bodies), optionally only one number's or one status's.
async fn list_deliveries(
    State(state): State<EmulatorState>,
    filter: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Result<AdminJson<List<DeliveryRecord>>, AdminError> {
    let filter = query(filter)?;
    let status = filter.status.as_deref().map(parse_status).transpose()?;
    let data = state
        .deliveries()
        .into_iter()
        .filter(|d| {
            filter
                .phone_number_id
                .as_ref()
                .is_none_or(|p| *p == d.phone_number_id)
        })
        .filter(|d| status.is_none_or(|s| s == d.status))
        .collect();
    Ok(AdminJson(List { data }))
}

fn parse_status(value: &str) -> Result<DeliveryStatus, AdminError> {
    match value {
        "pending" => Ok(DeliveryStatus::Pending),
        "awaiting_webhook_url" => Ok(DeliveryStatus::AwaitingWebhookUrl),
        "delivered" => Ok(DeliveryStatus::Delivered),
        "failed" => Ok(DeliveryStatus::Failed),
        _ => Err(AdminError::Invalid(InputError::new(
            "status",
            "must be one of pending, awaiting_webhook_url, delivered, failed",
        ))),
    }
}

/// One delivery with its body, as it was sent.
#[derive(Serialize)]
struct DeliveryDetail<'a> {
    #[serde(flatten)]
    record: &'a DeliveryRecord,
    body: Option<&'a RawValue>,
}

async fn show_delivery(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id: DeliveryId = id.parse().map_err(|_| {
        AdminError::Invalid(InputError::new(
            "id",
            "must be a delivery id: a positive integer",
        ))
    })?;
    let record = state
        .delivery(id)
        .ok_or(EmulatorError::UnknownDelivery(id))?;
    let body_text = std::str::from_utf8(&record.body).ok();
    let body = body_text.and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
    Ok(AdminJson(DeliveryDetail {
        record: &record,
        body,
    })
    .into_response())
}

/// `{"phone_number_id","wamid","status","errors"?}`: one status webhook about a message the number sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    phone_number_id: String,
    wamid: String,
    status: String,
    errors: Option<Value>,
}

#[tracing::instrument(skip_all, fields(phone_number_id = %request.phone_number_id, wamid = %request.wamid))]
async fn deliver_status(
    State(state): State<EmulatorState>,
    AdminJson(request): AdminJson<StatusRequest>,
) -> Result<(StatusCode, AdminJson<Accepted>), AdminError> {
    let status = MessageStatus::parse("status", &request.status).map_err(AdminError::Invalid)?;
    let delivery_id = state.deliver_status(
        &request.phone_number_id,
        &request.wamid,
        status,
        request.errors,
    )?;
    Ok((StatusCode::ACCEPTED, AdminJson(Accepted { delivery_id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberFilter {
    phone_number_id: Option<String>,
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AdminError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| AdminError::Invalid(InputError::new("(query)", e.body_text())))
}

/// A filter value, where `?name=` (empty) counts as no filter.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Accepted sends with their request bodies, oldest first.
async fn list_sent_messages(
    State(state): State<EmulatorState>,
    filter: Result<Query<NumberFilter>, QueryRejection>,
) -> Result<AdminJson<List<SentMessage>>, AdminError> {
    let filter = query(filter)?;
    Ok(AdminJson(List {
        data: state.sent_messages(given(&filter.phone_number_id)),
    }))
}

async fn list_read_receipts(
    State(state): State<EmulatorState>,
    filter: Result<Query<NumberFilter>, QueryRejection>,
) -> Result<AdminJson<List<ReadReceipt>>, AdminError> {
    let filter = query(filter)?;
    Ok(AdminJson(List {
        data: state.read_receipts(given(&filter.phone_number_id)),
    }))
}

#[derive(Serialize)]
struct Created {
    id: FaultId,
}

#[tracing::instrument(skip_all)]
async fn add_fault(
    State(state): State<EmulatorState>,
    AdminJson(spec): AdminJson<FaultSpec>,
) -> Result<(StatusCode, AdminJson<Created>), AdminError> {
    let id = state.add_fault(spec)?;
    Ok((StatusCode::CREATED, AdminJson(Created { id })))
}

async fn list_faults(State(state): State<EmulatorState>) -> AdminJson<List<ActiveFault>> {
    AdminJson(List {
        data: state.faults(),
    })
}

async fn remove_fault(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    let id: FaultId = id.parse().map_err(|_| {
        AdminError::Invalid(InputError::new(
            "id",
            "must be a fault id: a positive integer",
        ))
    })?;
    state.remove_fault(id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(state): State<EmulatorState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallFilter {
    phone_number_id: Option<String>,
    endpoint: Option<String>,
}

/// Graph calls, oldest first, optionally one number's or one endpoint's.
async fn list_calls(
    State(state): State<EmulatorState>,
    filter: Result<Query<CallFilter>, QueryRejection>,
) -> Result<AdminJson<List<CallRecord>>, AdminError> {
    let filter = query(filter)?;
    let endpoint = given(&filter.endpoint)
        .map(|e| GraphEndpoint::parse("endpoint", e))
        .transpose()
        .map_err(AdminError::Invalid)?;
    Ok(AdminJson(List {
        data: state.calls(given(&filter.phone_number_id), endpoint),
    }))
}

async fn unknown_admin_path() -> AdminError {
    AdminError::NotFound(
        "no such admin endpoint; see /admin/phone-numbers, /admin/customers/messages, /admin/webhooks, \
         /admin/statuses, /admin/deliveries, /admin/sent-messages, /admin/read-receipts, /admin/faults, \
         /admin/calls, /admin/templates, /admin/wabas/{waba_id}/template-review, /admin/media"
            .into(),
    )
}

async fn method_not_allowed() -> AdminError {
    AdminError::MethodNotAllowed
}
