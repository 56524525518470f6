//! `POST /{version}/{phone_number_id}/messages`: sends and mark-as-read, checked and answered as Meta
//! does: 100 and 131009 for bad bodies, 132000-132016 for templates the account does not have or
//! that do not fit, 131053 for media ids the number does not have, 130429 over the number's
//! throughput, 131056 over the pair rate, and 131047 outside the service window when the number
//! rejects such sends at once. Accepted sends are recorded and may set off status webhooks (a
//! `failed` 131047 for a free-form send outside the window, else the number's automatic ones).

mod checks;
mod references;

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use cloudapi::send::{SendMessageResponse, SentContact, SuccessResponse};
use cloudapi::shared::Extra;
use serde_json::{Map, Value};

use self::checks::{check_mark_read, check_messaging_product, check_send};
use super::{GraphError, access_token, authorize, is_api_version};
use crate::error::EmulatorError;
use crate::state::{CheckedSend, EmulatorState, SendOutcome};

pub(super) fn router() -> Router<EmulatorState> {
    Router::new().route(
        "/{version}/{phone_number_id}/messages",
        post(post_messages).fallback(super::unsupported_method),
    )
}

#[tracing::instrument(
    skip_all,
    fields(phone_number_id = %phone_number_id, wamid = tracing::field::Empty)
)]
async fn post_messages(
    State(state): State<EmulatorState>,
    Path((version, phone_number_id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
    arrived: Option<Extension<super::intercept::Arrived>>,
    body: Bytes,
) -> Result<Response, GraphError> {
    let arrived = arrived.map_or_else(std::time::Instant::now, |Extension(at)| at.0);
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let token = access_token(&headers, query.get("access_token").map(String::as_str));
    authorize(&state.world(), token, &Method::POST, &phone_number_id)?;

    let request: Value = serde_json::from_slice(&body)
        .map_err(|_| GraphError::invalid_parameter("The request body must be a JSON object."))?;
    let Value::Object(fields) = &request else {
        return Err(GraphError::invalid_parameter(
            "The request body must be a JSON object.",
        ));
    };
    check_messaging_product(fields)?;
    // Meta tells the two apart by `status`: only mark-as-read has one.
    if fields.contains_key("status") {
        return mark_read(&state, &phone_number_id, fields);
    }

    let checked = check_send(fields)?;
    let template =
        references::check_references(&state.world(), &phone_number_id, &checked.content)?;
    let is_template = checked.is_template();
    let template_name = is_template
        .then(|| {
            fields
                .get("template")
                .and_then(|t| t.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten();
    let to = checked.to.clone();
    let wa_id = checked.wa_id.clone();
    let send = CheckedSend {
        to: checked.to,
        wa_id: checked.wa_id,
        message_type: checked.message_type,
        is_template,
        template_name,
        template,
        biz_opaque_callback_data: checked.biz_opaque_callback_data,
        request,
    };
    let wamid = match state
        .accept_send(&phone_number_id, send, arrived)
        .map_err(internal)?
    {
        SendOutcome::Accepted { wamid } => wamid,
        SendOutcome::WindowClosed => return Err(GraphError::reengagement_message()),
        SendOutcome::ThroughputExceeded => return Err(GraphError::rate_limit_hit()),
        SendOutcome::PairRateExceeded => return Err(GraphError::pair_rate_limit_hit()),
    };
    tracing::Span::current().record("wamid", wamid.as_str());
    let answer = SendMessageResponse {
        messaging_product: Some("whatsapp".to_owned()),
        contacts: Some(vec![SentContact {
            input: Some(to),
            wa_id: Some(wa_id),
            extra: Extra::new(),
        }]),
        messages: vec![cloudapi::send::SentMessage {
            id: wamid,
            // Meta tells template senders whether the template was accepted or held back.
            message_status: is_template.then(|| "accepted".to_owned()),
            extra: Extra::new(),
        }],
        extra: Extra::new(),
    };
    Ok(Json(answer).into_response())
}

fn mark_read(
    state: &EmulatorState,
    phone_number_id: &str,
    fields: &Map<String, Value>,
) -> Result<Response, GraphError> {
    let (wamid, typing) = check_mark_read(fields)?;
    tracing::Span::current().record("wamid", wamid.as_str());
    if !state
        .mark_read(phone_number_id, &wamid, typing)
        .map_err(internal)?
    {
        return Err(GraphError::invalid_parameter(format!(
            "Invalid message_id: {wamid} is not a message this phone number received."
        )));
    }
    let answer = SuccessResponse {
        success: true,
        extra: Extra::new(),
    };
    Ok(Json(answer).into_response())
}

/// The number was authorized a moment ago, so failing now is a bug; Meta would answer code 1.
fn internal(error: EmulatorError) -> GraphError {
    tracing::error!(
        error = &error as &dyn std::error::Error,
        "a send could not be processed"
    );
    GraphError::internal()
}
