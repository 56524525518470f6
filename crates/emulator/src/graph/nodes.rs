//! `/{version}/{id}`: one path for every Graph node, answered by the area the id belongs to: a
//! registered phone number, or a media object. Anything else is Meta's 100/33 once the token passes.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::{GraphError, access_token, authorize, is_api_version, media, phone_numbers};
use crate::state::EmulatorState;

pub(super) fn router() -> Router<EmulatorState> {
    Router::new().route(
        "/{version}/{phone_number_id}",
        get(show_node)
            .delete(delete_node)
            .fallback(super::unsupported_method),
    )
}

/// A node call's parts, parsed once for both methods.
struct NodeCall {
    id: String,
    query: HashMap<String, String>,
}

fn node_call(
    version: &str,
    id: String,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: &Uri,
) -> Result<NodeCall, GraphError> {
    if !is_api_version(version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    // A query Graph cannot decode is treated as absent rather than failing the whole request.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    Ok(NodeCall { id, query })
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show_node(
    State(state): State<EmulatorState>,
    Path((version, id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, GraphError> {
    let call = node_call(&version, id, query, &uri)?;
    let token = access_token(&headers, call.query.get("access_token").map(String::as_str));
    let is_media = {
        let world = state.world();
        if world.phone_numbers.contains_key(&call.id) {
            let number = authorize(&world, token, &Method::GET, &call.id)?;
            return Ok(Json(phone_numbers::describe(number, &call.query)).into_response());
        }
        world.media.contains(&call.id)
    };
    if is_media {
        let base_url = super::public_base_url(&headers, &state);
        let queried_number = call.query.get("phone_number_id").map(String::as_str);
        let info = media::describe(&state, token, &call.id, queried_number, &base_url)?;
        return Ok(Json::<Value>(info).into_response());
    }
    Err(unknown(&state, token, &Method::GET, &call.id))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_node(
    State(state): State<EmulatorState>,
    Path((version, id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, GraphError> {
    let call = node_call(&version, id, query, &uri)?;
    let token = access_token(&headers, call.query.get("access_token").map(String::as_str));
    if state.world().media.contains(&call.id) {
        let queried_number = call.query.get("phone_number_id").map(String::as_str);
        return media::delete(&state, token, &call.id, queried_number);
    }
    Err(unknown(&state, token, &Method::DELETE, &call.id))
}

/// Not a node the emulator has: a bad token is still refused first, as Graph does.
fn unknown(state: &EmulatorState, token: Option<&str>, method: &Method, id: &str) -> GraphError {
    match super::check_token(&state.world(), token) {
        Ok(_) => GraphError::unknown_object(method, id),
        Err(error) => error,
    }
}
