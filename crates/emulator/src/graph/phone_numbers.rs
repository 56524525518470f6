//! `GET /{version}/{phone_number_id}`: a business phone number as Graph describes it.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{GraphError, access_token, authorize, is_api_version};
use crate::phone_numbers::PhoneNumber;
use crate::state::EmulatorState;

pub(super) fn router() -> Router<EmulatorState> {
    Router::new().route(
        "/{version}/{phone_number_id}",
        get(show_phone_number).fallback(unsupported_method),
    )
}

/// Fields Graph returns when the request names none, in Meta's order (`id` is added last).
const DEFAULT_FIELDS: [&str; 6] = [
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
];

#[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id))]
async fn show_phone_number(
    State(state): State<EmulatorState>,
    Path((version, phone_number_id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    // A query Graph cannot decode is treated as absent rather than failing the whole request.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let token = access_token(&headers, query.get("access_token").map(String::as_str));

    let world = state.world();
    let number = authorize(&world, token, &Method::GET, &phone_number_id)?;

    let requested: Vec<&str> = match query.get("fields") {
        Some(fields) => fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    let mut body = Map::new();
    for name in requested {
        // Unknown fields are skipped (Meta would refuse them); wagate only asks for known ones.
        if let Some(value) = field(number, name) {
            body.insert(name.to_owned(), value);
        }
    }
    body.insert("id".into(), number.id.clone().into());
    Ok(Json(Value::Object(body)))
}

/// One field of the phone number node, or `None` for fields the emulator does not model.
fn field(number: &PhoneNumber, name: &str) -> Option<Value> {
    Some(match name {
        "verified_name" => number.verified_name.clone().into(),
        "display_phone_number" => number.display_phone_number.clone().into(),
        "quality_rating" => number.quality_rating.as_str().into(),
        "code_verification_status" => "VERIFIED".into(),
        "platform_type" => "CLOUD_API".into(),
        "throughput" => json!({ "level": "STANDARD" }),
        "status" => "CONNECTED".into(),
        "name_status" => "APPROVED".into(),
        "account_mode" => "LIVE".into(),
        "webhook_configuration" => json!({ "application": number.webhook_url.as_ref()?.as_str() }),
        _ => return None,
    })
}

/// Other methods on a phone number path: Meta's "Unsupported <method> request".
async fn unsupported_method(
    method: Method,
    Path((version, object_id)): Path<(String, String)>,
    uri: Uri,
) -> GraphError {
    if is_api_version(&version) {
        GraphError::unknown_object(&method, &object_id)
    } else {
        GraphError::unknown_path(uri.path())
    }
}
