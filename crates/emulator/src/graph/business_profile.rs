//! `/{version}/{phone_number_id}/whatsapp_business_profile`: the number's business profile, read
//! with `fields=` and changed by `POST`, behind the same token checks as the number itself.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::get;
use bytes::Bytes;
use cloudapi::send::SuccessResponse;
use cloudapi::shared::Extra;
use serde_json::{Value, json};

use super::{GraphError, access_token, authorize, is_api_version, public_base_url};
use crate::business_profile::{ProfileChange, pictures_at};
use crate::state::EmulatorState;

pub(super) fn router() -> Router<EmulatorState> {
    Router::new().route(
        "/{version}/{phone_number_id}/whatsapp_business_profile",
        get(show_profile)
            .post(update_profile)
            .fallback(super::unsupported_method),
    )
}

/// A query Graph cannot decode is treated as absent rather than failing the whole request.
fn query_of(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> HashMap<String, String> {
    query.map(|Query(q)| q).unwrap_or_default()
}

#[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id))]
async fn show_profile(
    State(state): State<EmulatorState>,
    Path((version, phone_number_id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = query_of(query);
    let token = access_token(&headers, query.get("access_token").map(String::as_str));
    let world = state.world();
    let number = authorize(&world, token, &Method::GET, &phone_number_id)?;
    let element = number
        .business_profile
        .graph_element(query.get("fields").map(String::as_str));
    Ok(Json(json!({ "data": [element] })))
}

#[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id))]
async fn update_profile(
    State(state): State<EmulatorState>,
    Path((version, phone_number_id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Json<SuccessResponse>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = query_of(query);
    let token = access_token(&headers, query.get("access_token").map(String::as_str));
    authorize(&state.world(), token, &Method::POST, &phone_number_id)?;

    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(GraphError::invalid_parameter(
            "The request body must be a JSON object.",
        ));
    };
    let pictures = pictures_at(&public_base_url(&headers, &state), &phone_number_id);
    let change = ProfileChange::parse(&fields, &pictures).map_err(|error| {
        GraphError::invalid_parameter(format!("Param {} {}.", error.field, error.problem))
    })?;
    if !state.change_business_profile(&phone_number_id, change) {
        return Err(GraphError::unknown_object(&Method::POST, &phone_number_id));
    }
    Ok(Json(SuccessResponse {
        success: true,
        extra: Extra::new(),
    }))
}
