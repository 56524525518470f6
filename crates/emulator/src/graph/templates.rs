//! `/{version}/{waba_id}/message_templates`: an account's templates listed with Meta's cursor
//! paging, created (stored `PENDING`, then reviewed by the account's policy), and deleted by name.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cloudapi::send::SuccessResponse;
use cloudapi::shared::Extra;
use reqwest::Url;
use serde_json::{Map, Value, json};

use super::{GraphError, access_token, authorize_waba, is_api_version};
use crate::payloads::GraphErrorBody;
use crate::state::{EmulatorState, SubmitRefusal};
use crate::templates::{DEFAULT_GRAPH_FIELDS, Template};

/// Templates on a page when the request names no `limit`, and the most it may name.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;

/// What a cursor says before it is base64-encoded: a creation sequence number.
const CURSOR_PREFIX: &str = "emulator-template:";

pub(super) fn router() -> Router<EmulatorState> {
    Router::new().route(
        "/{version}/{phone_number_id}/message_templates",
        get(list_templates)
            .post(create_template)
            .delete(delete_templates)
            .fallback(super::unsupported_method),
    )
}

type Pairs = Vec<(String, String)>;

/// The query as given, in order (the `next` URL repeats it), and lookups by name (last one wins).
struct TemplatesQuery {
    pairs: Pairs,
}

impl TemplatesQuery {
    fn new(query: Result<Query<Pairs>, QueryRejection>) -> Self {
        Self {
            pairs: query.map(|Query(q)| q).unwrap_or_default(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

fn cursor(sequence: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{sequence}"))
}

fn parse_cursor(param: &str, cursor: &str) -> Result<u64, GraphError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX)?.parse().ok())
        .ok_or_else(|| {
            GraphError::invalid_parameter(format!(
                "Param {param} is not a valid paging cursor: use the cursors of a previous page."
            ))
        })
}

/// Whether a template passes the list's filters: `name` (a part of it, any case), and `status`,
/// `category` and `language` (comma lists, any case).
fn passes(template: &Template, query: &TemplatesQuery) -> bool {
    let one_of = |key: &str, value: &str| {
        query.get(key).is_none_or(|wanted| {
            wanted
                .split(',')
                .any(|w| w.trim().eq_ignore_ascii_case(value))
        })
    };
    let named = query.get("name").is_none_or(|part| {
        template
            .name
            .to_ascii_lowercase()
            .contains(&part.to_ascii_lowercase())
    });
    named
        && one_of("status", template.status.as_str())
        && one_of("category", template.category.as_str())
        && one_of("language", &template.language)
}

/// A template with the fields asked for, `id` last, as Meta lists them.
fn listed(template: &Template, fields: &[&str]) -> Value {
    let mut item = Map::new();
    for &name in fields {
        if name == "id" {
            continue;
        }
        if let Some(value) = template.graph_field(name) {
            item.insert(name.to_owned(), value);
        }
    }
    item.insert("id".into(), template.id.clone().into());
    Value::Object(item)
}

#[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
async fn list_templates(
    State(state): State<EmulatorState>,
    Path((version, waba_id)): Path<(String, String)>,
    query: Result<Query<Pairs>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = TemplatesQuery::new(query);
    let token = access_token(&headers, query.get("access_token"));
    authorize_waba(&state.world(), token, &Method::GET, &waba_id)?;

    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(0) | Err(_) => {
                return Err(GraphError::invalid_parameter(
                    "Param limit must be a positive integer.",
                ));
            }
            Ok(n) => n.min(MAX_LIMIT),
        },
    };
    let after = query
        .get("after")
        .map(|c| parse_cursor("after", c))
        .transpose()?;
    let before = query
        .get("before")
        .map(|c| parse_cursor("before", c))
        .transpose()?;
    let requested: Vec<&str> = match query.get("fields") {
        Some(fields) => fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_GRAPH_FIELDS.to_vec(),
    };

    let all: Vec<(u64, Value)> = {
        let world = state.world();
        world
            .templates
            .of_waba(&waba_id)
            .filter(|(_, t)| passes(t, &query))
            .map(|(sequence, t)| (sequence, listed(t, &requested)))
            .collect()
    };
    // The page is a window of the filtered list: after a cursor, before one, or from the start.
    let (start, end) = match (after, before) {
        (Some(after), _) => {
            let start = all.partition_point(|(sequence, _)| *sequence <= after);
            (start, (start + limit).min(all.len()))
        }
        (None, Some(before)) => {
            let end = all.partition_point(|(sequence, _)| *sequence < before);
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(all.len())),
    };
    let has_previous = start > 0;
    let has_next = end < all.len();
    let page: Vec<(u64, Value)> = all.into_iter().skip(start).take(end - start).collect();
    let (Some(first), Some(last)) = (page.first().map(|p| p.0), page.last().map(|p| p.0)) else {
        return Ok(Json(json!({ "data": [] })));
    };

    let base_url = super::public_base_url(&headers, &state);
    let page_url = |cursor_param: &str, cursor_value: String| -> Option<String> {
        let mut url = Url::parse(&format!("{base_url}{}", uri.path())).ok()?;
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &query.pairs {
                if !matches!(key.as_str(), "after" | "before" | "limit" | "access_token") {
                    pairs.append_pair(key, value);
                }
            }
            pairs.append_pair("limit", &limit.to_string());
            pairs.append_pair(cursor_param, &cursor_value);
        }
        Some(url.to_string())
    };
    let mut paging = Map::new();
    paging.insert(
        "cursors".into(),
        json!({ "before": cursor(first), "after": cursor(last) }),
    );
    if has_next && let Some(next) = page_url("after", cursor(last)) {
        paging.insert("next".into(), next.into());
    }
    if has_previous && let Some(previous) = page_url("before", cursor(first)) {
        paging.insert("previous".into(), previous.into());
    }
    let data: Vec<Value> = page.into_iter().map(|(_, item)| item).collect();
    Ok(Json(json!({ "data": data, "paging": paging })))
}

#[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
async fn create_template(
    State(state): State<EmulatorState>,
    Path((version, waba_id)): Path<(String, String)>,
    query: Result<Query<Pairs>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Json<Value>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = TemplatesQuery::new(query);
    let token = access_token(&headers, query.get("access_token"));
    authorize_waba(&state.world(), token, &Method::POST, &waba_id)?;
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(GraphError::invalid_parameter(
            "The request body must be a JSON object.",
        ));
    };
    match state.submit_template(&waba_id, &fields) {
        Ok(submitted) => Ok(Json(json!({
            "id": submitted.id,
            "status": "PENDING",
            "category": submitted.category.as_str(),
        }))),
        Err(SubmitRefusal::Invalid(error)) => Err(GraphError::invalid_parameter(format!(
            "Param {} {}.",
            error.field, error.problem
        ))),
        Err(SubmitRefusal::Duplicate { name, language }) => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            GraphErrorBody::template_already_exists(&name, &language),
        )),
    }
}

#[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
async fn delete_templates(
    State(state): State<EmulatorState>,
    Path((version, waba_id)): Path<(String, String)>,
    query: Result<Query<Pairs>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<SuccessResponse>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = TemplatesQuery::new(query);
    let token = access_token(&headers, query.get("access_token"));
    authorize_waba(&state.world(), token, &Method::DELETE, &waba_id)?;
    let name = query
        .get("name")
        .ok_or_else(|| GraphError::invalid_parameter("The parameter name is required."))?;
    if !state.delete_templates_named(&waba_id, name, query.get("hsm_id")) {
        return Err(GraphError::invalid_parameter(format!(
            "Message template \"{name}\" was not found in this account."
        )));
    }
    Ok(Json(SuccessResponse {
        success: true,
        extra: Extra::new(),
    }))
}
