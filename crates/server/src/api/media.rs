//! `/api/v1/media`: uploading a file to send, downloading a stored one (the owning tenant only),
//! and what is known of it.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::TenantAuth;
use super::error::ApiError;
use super::schema::{ErrorBody, Media};
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::media::staging::{StagedFile, Staging, StagingError};
use crate::media::upload::{MAX_UPLOAD_BYTES, UploadError, UploadFields, check, upload};
use crate::store::media::{MediaRow, STATUS_FAILED, STATUS_STORED};
use crate::views;

/// The upload route takes the largest file Meta takes, plus room for the multipart framing.
const UPLOAD_BODY_LIMIT: usize = MAX_UPLOAD_BYTES as usize + 1024 * 1024;

/// Routes that read large bodies: mounted outside the API's short request timeout.
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(download))
        .routes(routes!(info))
        .routes(routes!(retry_fetch))
}

/// Uploads a file to send; 201 with the media object.
///
/// Multipart: `file`, and optionally `connection_id`, `type` (the MIME type, else the part's
/// own) and `kind`. The answer's `id` is what `POST /api/v1/messages` takes as `image.id` (or
/// `video.id`, ...).
#[utoipa::path(
    post,
    path = "/api/v1/media",
    tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Uploaded to Meta and stored", body = Media),
        (status = 400, description = "The body is not a readable multipart form", body = ErrorBody),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "The connection does not exist", body = ErrorBody),
        (status = 413, description = "The body is larger than the upload limit", body = ErrorBody),
        (status = 422, description = "A field is wrong, the file is too large or of a type Meta does not take, the connection cannot be used, or Meta refused the file", body = ErrorBody),
        (status = 502, description = "Meta could not be reached", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut multipart = multipart.map_err(|rejection| ApiError::BadRequest {
        code: "invalid_multipart",
        message: format!(
            "send the file as multipart/form-data with a part named `file`: {}",
            rejection.body_text()
        ),
    })?;
    let staging = Staging::new(state.media.staging_dir());
    let mut fields = UploadFields::default();
    let mut staged: Option<StagedFile> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if staged.is_some() {
                    return Err(ApiError::validation("file", "give one file per upload"));
                }
                if fields.declared_type.is_none() {
                    fields.declared_type = field.content_type().map(str::to_owned);
                }
                fields.filename = field.file_name().map(str::to_owned);
                staged = Some(stage(&staging, field).await?);
            }
            "connection_id" | "type" | "kind" | "messaging_product" => {
                let value = field.text().await.map_err(multipart_error)?;
                let value = value.trim().to_owned();
                match name.as_str() {
                    "connection_id" => fields.connection_id = Some(value).filter(|v| !v.is_empty()),
                    "type" => fields.declared_type = Some(value).filter(|v| !v.is_empty()),
                    "kind" => fields.kind = Some(value).filter(|v| !v.is_empty()),
                    _ => {}
                }
            }
            other => {
                return Err(ApiError::validation(
                    other,
                    "is not a field of an upload: give `file`, and optionally `connection_id`, `type`, `kind`",
                ));
            }
        }
    }
    let staged = staged.ok_or_else(|| {
        ApiError::validation(
            "file",
            "is required: the file, as a multipart part named `file`",
        )
    })?;
    let checked = check(&staged, &fields).map_err(|errors| ApiError::Validation {
        code: "validation_failed",
        message: errors.summary(),
        details: errors.to_details(),
    })?;
    let connection = crate::outbound::enqueue::resolve_connection(
        &state.store,
        &auth.tenant_id,
        fields.connection_id.as_deref(),
    )
    .await?;
    let row = upload(&state, &connection, staged, checked)
        .await
        .map_err(upload_error)?;
    Ok((StatusCode::CREATED, Json(views::media(&row))))
}

async fn stage(staging: &Staging, mut field: Field<'_>) -> Result<StagedFile, ApiError> {
    let mut writer = staging
        .create(MAX_UPLOAD_BYTES)
        .await
        .map_err(staging_error)?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        writer.write(&chunk).await.map_err(staging_error)?;
    }
    writer.finish().await.map_err(staging_error)
}

fn staging_error(error: StagingError) -> ApiError {
    match error {
        StagingError::TooLarge { limit } => ApiError::Validation {
            code: "validation_failed",
            message: format!(
                "file: is larger than {} MB, the most Meta takes for any media (documents)",
                limit / (1024 * 1024)
            ),
            details: json!({"field": "file", "reason": "larger than Meta takes for any media", "limit": limit}),
        },
        other => ApiError::internal(other),
    }
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge {
            limit_bytes: UPLOAD_BODY_LIMIT,
        };
    }
    ApiError::BadRequest {
        code: "invalid_multipart",
        message: format!(
            "the multipart body could not be read: {}",
            error.body_text()
        ),
    }
}

fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::Invalid(fields) => ApiError::Validation {
            code: "validation_failed",
            message: fields.summary(),
            details: fields.to_details(),
        },
        UploadError::Connection(send) => send.into(),
        UploadError::MetaRejected(ref meta) => ApiError::MetaRejected {
            message: error.to_string(),
            meta: crate::connections::meta_json(meta),
        },
        UploadError::MetaUnreachable(_) => ApiError::Upstream {
            message: error.to_string(),
            meta: None,
        },
        UploadError::Storage(reason) => ApiError::internal(anyhow::anyhow!(reason)),
        UploadError::Store(store) => store.into(),
    }
}

async fn media_of(state: &AppState, auth: &TenantAuth, id: &str) -> Result<MediaRow, ApiError> {
    if !crate::ids::looks_like_id(id) {
        return Err(ApiError::NotFound("media"));
    }
    state
        .store
        .media(&auth.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("media"))
}

/// What is known of a file: the media object.
#[utoipa::path(
    get,
    path = "/media/{id}/info",
    tag = "media",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 200, description = "The media object", body = Media),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such media for this tenant", body = ErrorBody),
    )
)]
async fn info(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(views::media(&media_of(&state, &auth, &id).await?)))
}

/// Downloads a stored file's bytes, to the tenant that owns it.
///
/// Browsers keep a copy but must ask again each time (`no-cache` with the content hash as
/// `ETag`), so a copy kept by a shared browser is never shown to someone signed in as another
/// tenant. The `Content-Type` is the file's own; only plain pictures, sound and video are shown
/// inline, anything else is an attachment.
#[utoipa::path(
    get,
    path = "/media/{id}",
    tag = "media",
    params(
        ("id" = String, Path, description = "The media's id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy already held"),
    ),
    responses(
        (status = 200, description = "The file's bytes, with its own MIME type",
            content(("application/octet-stream")),
            headers(
                ("Content-Disposition" = String, description = "`inline` or `attachment`, with the file's name"),
                ("ETag" = String, description = "The SHA-256 of the content, quoted, when known"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 304, description = "The copy held (`If-None-Match`) is current",
            headers(("ETag" = String, description = "The SHA-256 of the content, quoted"))),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such media for this tenant", body = ErrorBody),
        (status = 409, description = "The file is not stored: still being fetched, or the fetch failed (`media_not_stored`)", body = ErrorBody),
    )
)]
async fn download(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    request_headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let media = media_of(&state, &auth, &id).await?;
    let etag = media.sha256.as_ref().map(|hash| format!("\"{hash}\""));
    if let Some(etag) = &etag
        && request_headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|presented| presented.split(',').any(|tag| tag.trim() == etag))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        return Ok(response);
    }
    let key = match (&media.status[..], &media.storage_key) {
        (STATUS_STORED, Some(key)) => key.clone(),
        _ => {
            return Err(ApiError::Conflict {
                code: "media_not_stored",
                message: match &media.failure_reason {
                    Some(reason) if media.status == STATUS_FAILED => {
                        format!("the file could not be fetched from Meta: {reason}")
                    }
                    _ => "the file is still being fetched from Meta; try again shortly".to_owned(),
                },
            });
        }
    };
    let object = state.media.open(&key).await.map_err(ApiError::internal)?;
    let mime_type = media
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut response = Body::from_stream(object.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.length));
    // A customer chooses what they send: only plain pictures, sound and video are shown inline;
    // anything else (HTML, SVG, a PDF with scripts) keeps its type but is a download, with
    // sniffing off and a sandbox, so it can never run on our origin.
    let inline = is_inline_safe(&mime_type);
    if let Ok(value) = HeaderValue::from_str(&mime_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let filename = media
        .filename
        .clone()
        .unwrap_or_else(|| format!("{}-{}", media.kind, media.id));
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        filename.replace(['"', '\\', '\r', '\n'], "_")
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    } else {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Some(value) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

fn is_inline_safe(mime_type: &str) -> bool {
    let essence = crate::media::kinds::essence(mime_type);
    matches!(
        essence.as_str(),
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    ) || essence.starts_with("audio/")
        || essence.starts_with("video/")
}

/// Tries again to fetch from Meta a file whose fetch failed; 202 with the media, pending again.
#[utoipa::path(
    post,
    path = "/media/{id}/retry",
    tag = "media",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 202, description = "The fetch is queued again", body = Media),
        (status = 401, description = "No valid API key or session", body = ErrorBody),
        (status = 404, description = "No such media for this tenant", body = ErrorBody),
        (status = 409, description = "The file's fetch has not failed (`media_not_failed`)", body = ErrorBody),
    )
)]
async fn retry_fetch(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let media = media_of(&state, &auth, &id).await?;
    if media.status != STATUS_FAILED {
        return Err(ApiError::Conflict {
            code: "media_not_failed",
            message: format!(
                "the file is {}; only a failed fetch can be retried",
                media.status
            ),
        });
    }
    let now = now_ms();
    // Back to pending first, so a fetch that fails again at once is not overwritten.
    state.store.reset_media_fetch(&media.id, now).await?;
    let mut tx = state.store.begin().await?;
    state
        .store
        .enqueue_job(
            &mut tx,
            &crate::store::jobs::NewJob {
                kind: crate::media::fetch::FETCH_JOB,
                payload: &json!({ "media_id": media.id }).to_string(),
                tenant_id: Some(&auth.tenant_id),
                unique_key: Some(&format!(
                    "{}:{}:{now}",
                    crate::media::fetch::FETCH_JOB,
                    media.id
                )),
                run_at: now,
                max_attempts: state.settings.media_fetch_attempts,
                now,
            },
        )
        .await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.jobs_wakeup.notify_one();
    let media = media_of(&state, &auth, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(views::media(&media))))
}

// Doc-only, read by the OpenAPI derive.

/// `POST /api/v1/media`, as `multipart/form-data`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The file: one part, with its file name and MIME type.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Which number uploads it; may be left out when the tenant has only one.
    connection_id: Option<String>,
    /// The MIME type, when the file part's own is missing or wrong.
    #[schema(rename = "type", example = "image/jpeg")]
    mime_type: Option<String>,
    /// `image`, `video`, `audio`, `document` or `sticker`; else told by the MIME type.
    kind: Option<String>,
    /// Taken for Cloud API's form (`whatsapp`) and ignored.
    messaging_product: Option<String>,
}
