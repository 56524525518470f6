//! Media as Graph serves it: `POST /{version}/{phone_number_id}/media` uploads (multipart, checked
//! against Meta's types and sizes: 131053), `GET` and `DELETE /{version}/{media_id}` (through
//! [`super::nodes`]), and `GET /media-download/{key}`, the short-lived URL the `GET` hands out,
//! which needs the owner number's token.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use cloudapi::send::SuccessResponse;
use cloudapi::shared::Extra;
use serde_json::{Value, json};

use super::{GraphError, access_token, authorize, check_token, is_api_version};
use crate::calls::MEDIA_DOWNLOAD_PREFIX;
use crate::media::MediaContent;
use crate::media::kinds::{self, MAX_FILE_BYTES};
use crate::state::{Download, EmulatorState};

/// The most an upload request may carry: the largest file Meta takes and room for the multipart
/// framing and the other fields.
pub(crate) const MAX_UPLOAD_BODY: usize = MAX_FILE_BYTES as usize + 1024 * 1024;

pub(super) fn router() -> Router<EmulatorState> {
    Router::new()
        .route(
            "/{version}/{phone_number_id}/media",
            post(upload)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY))
                .fallback(super::unsupported_method),
        )
        .route(&format!("/{MEDIA_DOWNLOAD_PREFIX}/{{key}}"), get(download))
}

/// The fields of an upload, read from the multipart body.
#[derive(Default)]
struct UploadForm {
    messaging_product: Option<String>,
    /// `type`, which wins over the file part's own content type.
    mime_type: Option<String>,
    file: Option<UploadedFile>,
}

struct UploadedFile {
    bytes: Bytes,
    content_type: Option<String>,
    filename: Option<String>,
}

#[tracing::instrument(skip_all, fields(phone_number_id = %phone_number_id))]
async fn upload(
    State(state): State<EmulatorState>,
    Path((version, phone_number_id)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, GraphError> {
    if !is_api_version(&version) {
        return Err(GraphError::unknown_path(uri.path()));
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let token = access_token(&headers, query.get("access_token").map(String::as_str));
    authorize(&state.world(), token, &Method::POST, &phone_number_id)?;

    let multipart = multipart.map_err(|_| {
        GraphError::invalid_parameter(
            "The request body must be multipart/form-data with messaging_product and file.",
        )
    })?;
    let form = read_form(multipart).await?;
    match form.messaging_product.as_deref() {
        Some("whatsapp") => {}
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param messaging_product must be \"whatsapp\", got \"{other}\"."
            )));
        }
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ));
        }
    }
    let file = form
        .file
        .ok_or_else(|| GraphError::invalid_parameter("The parameter file is required."))?;
    let mime_type = form
        .mime_type
        .or(file.content_type)
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            GraphError::invalid_parameter(
                "The parameter type is required: the file's MIME type, e.g. image/jpeg.",
            )
        })?;
    let size = u64::try_from(file.bytes.len()).unwrap_or(u64::MAX);
    if let Some(problem) = kinds::upload_problem(&mime_type, size) {
        return Err(GraphError::media_upload_error(problem));
    }
    // Hashing up to 100 MB is CPU work: off the runtime's threads.
    let bytes = file.bytes;
    let content = tokio::task::spawn_blocking(move || MediaContent::hash(bytes))
        .await
        .map_err(|error| {
            tracing::error!(%error, "hashing an upload failed");
            GraphError::internal()
        })?;
    let id = state
        .upload_media(&phone_number_id, content, mime_type, file.filename)
        .map_err(|error| {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "an upload could not be stored"
            );
            GraphError::internal()
        })?;
    Ok(Json(json!({ "id": id })))
}

async fn read_form(mut multipart: Multipart) -> Result<UploadForm, GraphError> {
    let mut form = UploadForm::default();
    loop {
        let field = multipart.next_field().await.map_err(multipart_error)?;
        let Some(field) = field else {
            return Ok(form);
        };
        match field.name() {
            Some("messaging_product") => {
                form.messaging_product = Some(field.text().await.map_err(multipart_error)?);
            }
            Some("type") => form.mime_type = Some(field.text().await.map_err(multipart_error)?),
            Some("file") => {
                let content_type = field.content_type().map(str::to_owned);
                let filename = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(multipart_error)?;
                form.file = Some(UploadedFile {
                    bytes,
                    content_type,
                    filename,
                });
            }
            // Meta ignores fields it does not know.
            _ => {}
        }
    }
}

/// A body over the limit is a file too large for Meta; anything else is a malformed body.
fn multipart_error(error: MultipartError) -> GraphError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        GraphError::media_upload_error(kinds::too_large_for_any_kind())
    } else {
        GraphError::invalid_parameter(format!(
            "The multipart body could not be read: {}.",
            error.body_text()
        ))
    }
}

/// The owner number's view of a media object: its info and a fresh download URL. A token of
/// another number (or a `phone_number_id` that is not the owner) gets 100/33.
pub(super) fn describe(
    state: &EmulatorState,
    token: Option<&str>,
    media_id: &str,
    queried_number: Option<&str>,
    base_url: &str,
) -> Result<Value, GraphError> {
    let mut world = state.world();
    let token = check_token(&world, token)?;
    let (owner, ttl) = {
        let media = world
            .media
            .get(media_id)
            .ok_or_else(|| GraphError::unknown_object(&Method::GET, media_id))?;
        let owner = world
            .phone_numbers
            .get(&media.phone_number_id)
            .filter(|n| n.has_access_token(token))
            .filter(|n| queried_number.is_none_or(|q| q == n.id))
            .ok_or_else(|| GraphError::unknown_object(&Method::GET, media_id))?;
        (owner.id.clone(), owner.media_url_ttl)
    };
    let now = Instant::now();
    let key = world.media.issue_url(media_id, ttl, now);
    let media = world
        .media
        .get(media_id)
        .ok_or_else(|| GraphError::unknown_object(&Method::GET, media_id))?;
    let expires = crate::payloads::unix_now()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    tracing::debug!(%owner, "a media download URL was issued");
    Ok(json!({
        "messaging_product": "whatsapp",
        "url": format!("{base_url}/{MEDIA_DOWNLOAD_PREFIX}/{key}?mid={media_id}&ext={expires}"),
        "mime_type": media.mime_type,
        "sha256": media.sha256_hex(),
        "file_size": media.file_size(),
        "id": media.id,
    }))
}

/// Deletes a media object for its owner number.
pub(super) fn delete(
    state: &EmulatorState,
    token: Option<&str>,
    media_id: &str,
    queried_number: Option<&str>,
) -> Result<Response, GraphError> {
    let mut world = state.world();
    let token = check_token(&world, token)?;
    let owns = world.media.get(media_id).is_some_and(|media| {
        world
            .phone_numbers
            .get(&media.phone_number_id)
            .is_some_and(|n| n.has_access_token(token) && queried_number.is_none_or(|q| q == n.id))
    });
    if !owns {
        return Err(GraphError::unknown_object(&Method::DELETE, media_id));
    }
    world.media.remove(media_id);
    let answer = SuccessResponse {
        success: true,
        extra: Extra::new(),
    };
    Ok(Json(answer).into_response())
}

/// `GET /media-download/{key}`: the bytes, for the owner number's token (401 otherwise); 404 for a
/// URL that expired or never existed, as the download host answers.
#[tracing::instrument(skip_all)]
async fn download(
    State(state): State<EmulatorState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let token = access_token(&headers, None);
    let (bytes, mime_type, filename) = match state.download(&key, token)? {
        Download::Ready {
            bytes,
            mime_type,
            filename,
        } => (bytes, mime_type, filename),
        Download::Unknown | Download::Gone => {
            return Ok((StatusCode::NOT_FOUND, "URL not found or expired").into_response());
        }
    };
    let content_type = HeaderValue::from_str(&mime_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = (StatusCode::OK, bytes).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(disposition) = filename
        .map(|name| {
            format!(
                "attachment; filename=\"{}\"",
                name.replace(['"', '\\'], "_")
            )
        })
        .and_then(|value| HeaderValue::from_str(&value).ok())
    {
        response_headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
