//! Media through the admin API: seed a number's files (bytes in base64), look at them and their
//! bytes, and expire the download URLs handed out for them.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{AdminError, AdminJson, List, MAX_FILE_BODY_BYTES, NumberFilter, given, query};
use crate::error::{EmulatorError, InputError};
use crate::media::{MediaSeed, MediaView};
use crate::state::EmulatorState;

pub(super) fn router() -> Router<EmulatorState> {
    Router::new()
        .route(
            "/media",
            post(add_media)
                .layer(DefaultBodyLimit::max(MAX_FILE_BODY_BYTES))
                .get(list_media),
        )
        .route("/media/{id}", get(show_media).delete(delete_media))
        .route("/media/{id}/content", get(media_content))
        .route("/media/{id}/expire-urls", post(expire_urls))
}

/// `{"phone_number_id","data":"<base64>","mime_type","filename"?,"id"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaSeedJson {
    phone_number_id: String,
    data: String,
    mime_type: String,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

#[tracing::instrument(skip_all, fields(phone_number_id = %seed.phone_number_id))]
async fn add_media(
    State(state): State<EmulatorState>,
    AdminJson(seed): AdminJson<MediaSeedJson>,
) -> Result<(StatusCode, AdminJson<MediaView>), AdminError> {
    let bytes = STANDARD.decode(seed.data.as_bytes()).map_err(|e| {
        AdminError::Invalid(InputError::new(
            "data",
            format!("must be the file's bytes in standard base64: {e}"),
        ))
    })?;
    let view = state.add_media(MediaSeed {
        phone_number_id: seed.phone_number_id,
        bytes: Bytes::from(bytes),
        mime_type: seed.mime_type,
        filename: seed.filename,
        id: seed.id,
    })?;
    Ok((StatusCode::CREATED, AdminJson(view)))
}

/// Media in creation order, one number's or every number's.
async fn list_media(
    State(state): State<EmulatorState>,
    filter: Result<Query<NumberFilter>, QueryRejection>,
) -> Result<AdminJson<List<MediaView>>, AdminError> {
    let filter = query(filter)?;
    Ok(AdminJson(List {
        data: state.media_list(given(&filter.phone_number_id)),
    }))
}

async fn show_media(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<AdminJson<MediaView>, AdminError> {
    state
        .media(&id)
        .map(AdminJson)
        .ok_or_else(|| EmulatorError::UnknownMedia(id).into())
}

async fn delete_media(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    state.delete_media(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The bytes, with the media's type.
async fn media_content(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let view = state
        .media(&id)
        .ok_or_else(|| EmulatorError::UnknownMedia(id.clone()))?;
    let bytes = state
        .media_content(&id)
        .ok_or(EmulatorError::UnknownMedia(id))?;
    let content_type = HeaderValue::from_str(&view.mime_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

#[derive(Serialize)]
struct Expired {
    /// URLs that were still valid and are not any more.
    expired: usize,
}

#[tracing::instrument(skip_all, fields(media_id = %id))]
async fn expire_urls(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<AdminJson<Expired>, AdminError> {
    Ok(AdminJson(Expired {
        expired: state.expire_media_urls(&id)?,
    }))
}
