//! Uploading a file to send: checked against Meta's types and limits for its kind (and against
//! what its first bytes say it is), uploaded to Meta from the staging area, kept in the storage,
//! and recorded, so `POST /api/v1/messages` can send it by the id this answers.

use cloudapi::GraphError;
use secrecy::SecretString;

use super::kinds::{
    ANIMATED_STICKER_MAX, MediaKind, STILL_STICKER_MAX, content_fits, describe, essence,
    human_size, is_animated_webp, sniff,
};
use super::staging::StagedFile;
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::outbound::SendError;
use crate::store::StoreError;
use crate::store::connections::ConnectionRow;
use crate::store::media::{DIRECTION_OUTBOUND, MediaRow, STATUS_STORED};
use crate::validation::FieldErrors;
use crate::vault::SecretSlot;

/// The largest file any kind takes (documents): uploads are staged up to this.
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
const MAX_FILENAME_CHARS: usize = 240;

/// What came with the file.
#[derive(Debug, Default, Clone)]
pub struct UploadFields {
    pub connection_id: Option<String>,
    /// `image`, `audio`, `video`, `document` or `sticker`; from the type when not given.
    pub kind: Option<String>,
    /// The `type` field, else the file part's own content type.
    pub declared_type: Option<String>,
    pub filename: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error(transparent)]
    Connection(SendError),
    #[error("Meta refused the upload: {}", .0.details().unwrap_or("no reason given"))]
    MetaRejected(Box<cloudapi::MetaError>),
    #[error("Meta could not be reached to upload the file: {0}")]
    MetaUnreachable(GraphError),
    #[error("the file could not be kept: {0}")]
    Storage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an upload is, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUpload {
    pub kind: MediaKind,
    pub mime_type: String,
    pub filename: String,
}

/// Checks a staged file against Meta's rules for its kind. Every problem is reported at once.
pub fn check(staged: &StagedFile, fields: &UploadFields) -> Result<CheckedUpload, FieldErrors> {
    let mut errors = FieldErrors::new();
    let sniffed = sniff(&staged.head);
    let declared = fields
        .declared_type
        .as_deref()
        .map(essence)
        .filter(|t| !t.is_empty() && t != "application/octet-stream");
    let filename = fields
        .filename
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(sanitize_filename);
    // No type given: the content's signature says it, else the file name's extension.
    let mime_type = declared
        .clone()
        .or_else(|| sniffed.map(str::to_owned))
        .or_else(|| {
            filename
                .as_deref()
                .and_then(type_of_extension)
                .map(str::to_owned)
        });
    let kind = match fields.kind.as_deref() {
        Some(name) => match MediaKind::parse(name) {
            Some(kind) => Some(kind),
            None => {
                errors.add(
                    "kind",
                    "must be one of image, audio, video, document, sticker",
                );
                None
            }
        },
        None => mime_type.as_deref().and_then(MediaKind::for_mime_type),
    };
    if staged.size == 0 {
        errors.add("file", "is empty: attach the file's content");
    }
    match (&mime_type, kind) {
        (None, _) => errors.add(
            "type",
            "could not be told from the file: give the MIME type in the `type` field (for example image/jpeg)",
        ),
        (Some(mime), None) if fields.kind.is_none() => errors.add(
            "type",
            format!(
                "{mime} is not a type Meta takes; images are image/jpeg or image/png, stickers image/webp, \
                 videos video/mp4 or video/3gpp, audio aac, amr, mpeg, mp4 or ogg, documents pdf, text or Office files"
            ),
        ),
        (Some(mime), Some(kind)) => {
            if !kind.mime_types().contains(&mime.as_str()) {
                errors.add(
                    "type",
                    format!(
                        "{mime} is not a type Meta takes for {} messages; they take {}",
                        kind.as_str(),
                        kind.mime_types().join(", ")
                    ),
                );
            } else if !content_fits(mime, sniffed) {
                let found = sniffed.map(describe).unwrap_or("not recognisable as that type");
                errors.add(
                    "file",
                    format!("the file's content is {found}, not {mime} as its type says"),
                );
            } else {
                let limit = match kind {
                    MediaKind::Sticker if is_animated_webp(&staged.head) => ANIMATED_STICKER_MAX,
                    MediaKind::Sticker => STILL_STICKER_MAX,
                    other => other.max_bytes(),
                };
                if staged.size > limit {
                    let what = match kind {
                        MediaKind::Sticker if limit == STILL_STICKER_MAX => "still stickers",
                        MediaKind::Sticker => "animated stickers",
                        MediaKind::Image => "images",
                        MediaKind::Audio => "audio",
                        MediaKind::Video => "videos",
                        MediaKind::Document => "documents",
                    };
                    errors.add_limit(
                        "file",
                        format!(
                            "is {}; Meta takes {what} of at most {}",
                            human_size(staged.size),
                            human_size(limit)
                        ),
                        limit,
                    );
                }
            }
        }
        (Some(_), None) => {}
    }
    errors.finish()?;
    let (Some(kind), Some(mime_type)) = (kind, mime_type) else {
        let mut errors = FieldErrors::new();
        errors.add("file", "is not a file Meta takes");
        return Err(errors);
    };
    let filename =
        filename.unwrap_or_else(|| format!("{}.{}", kind.as_str(), extension_of(&mime_type)));
    Ok(CheckedUpload {
        kind,
        mime_type,
        filename,
    })
}

/// Uploads a checked file to Meta for `connection`, keeps it, and records it.
#[tracing::instrument(skip_all, fields(tenant_id = %connection.tenant_id, connection_id = %connection.id))]
pub async fn upload(
    state: &AppState,
    connection: &ConnectionRow,
    staged: StagedFile,
    checked: CheckedUpload,
) -> Result<MediaRow, UploadError> {
    let token = open_token(state, connection)?;
    let file = tokio::fs::File::open(staged.path())
        .await
        .map_err(|e| UploadError::Storage(e.to_string()))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let uploaded = state
        .graph
        .upload_media_body(
            &token,
            &connection.phone_number_id,
            body,
            staged.size,
            &checked.mime_type,
            &checked.filename,
        )
        .await
        .map_err(|error| match error {
            GraphError::Meta { error, .. } => UploadError::MetaRejected(error),
            other => UploadError::MetaUnreachable(other),
        })?;
    let sha256 = staged.sha256.clone();
    let size = staged.size;
    let key = state
        .media
        .put(staged)
        .await
        .map_err(|e| UploadError::Storage(e.to_string()))?;
    let now = now_ms();
    let row = MediaRow {
        id: crate::ids::new_id(),
        tenant_id: connection.tenant_id.clone(),
        connection_id: connection.id.clone(),
        direction: DIRECTION_OUTBOUND.to_owned(),
        kind: checked.kind.as_str().to_owned(),
        meta_media_id: Some(uploaded.id),
        mime_type: Some(checked.mime_type),
        file_size: Some(size as i64),
        sha256: Some(sha256),
        meta_sha256: None,
        filename: Some(checked.filename),
        storage_key: Some(key),
        status: STATUS_STORED.to_owned(),
        failure_reason: None,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_media_now(&row).await?;
    metrics::counter!("wagate_media_uploaded_total", "kind" => row.kind.clone()).increment(1);
    Ok(row)
}

fn open_token(state: &AppState, connection: &ConnectionRow) -> Result<SecretString, UploadError> {
    let sealed = connection
        .access_token
        .as_deref()
        .ok_or_else(|| UploadError::Connection(SendError::ConnectionNotFound))?;
    state
        .vault
        .open(
            SecretSlot::new("connections", "access_token", &connection.id),
            sealed,
        )
        .map_err(|e| UploadError::Storage(e.to_string()))
}

/// A file name fit to show and to hand to Meta: no path, no control characters, not too long.
fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(MAX_FILENAME_CHARS)
        .collect();
    if cleaned.trim().is_empty() {
        "file".to_owned()
    } else {
        cleaned.trim().to_owned()
    }
}

fn type_of_extension(filename: &str) -> Option<&'static str> {
    let extension = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "opus" => "audio/ogg",
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => return None,
    })
}

fn extension_of(mime_type: &str) -> &'static str {
    match mime_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/ogg" => "ogg",
        "text/plain" => "txt",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::staging::Staging;

    async fn staged(bytes: &[u8]) -> (tempfile::TempDir, StagedFile) {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Staging::new(dir.path())
            .create(MAX_UPLOAD_BYTES)
            .await
            .unwrap();
        writer.write(bytes).await.unwrap();
        let file = writer.finish().await.unwrap();
        (dir, file)
    }

    fn fields(declared: Option<&str>, filename: Option<&str>) -> UploadFields {
        UploadFields {
            declared_type: declared.map(str::to_owned),
            filename: filename.map(str::to_owned),
            ..UploadFields::default()
        }
    }

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[tokio::test]
    async fn a_jpeg_is_an_image_whatever_the_name_says() {
        let (_dir, file) = staged(JPEG).await;
        let checked = check(&file, &fields(None, Some("../../etc/photo.jpg"))).unwrap();
        assert_eq!(checked.kind, MediaKind::Image);
        assert_eq!(checked.mime_type, "image/jpeg");
        assert_eq!(checked.filename, "photo.jpg", "no path survives");
    }

    #[tokio::test]
    async fn a_png_labelled_jpeg_is_refused_naming_what_it_is() {
        let (_dir, file) = staged(PNG).await;
        let errors = check(&file, &fields(Some("image/jpeg"), None)).unwrap_err();
        let details = errors.to_details();
        assert_eq!(details["field"], "file");
        assert!(
            details["reason"].as_str().unwrap().contains("PNG"),
            "{details}"
        );
    }

    #[tokio::test]
    async fn an_image_over_five_megabytes_is_refused_with_the_limit() {
        let mut big = JPEG.to_vec();
        big.resize(5 * 1024 * 1024 + 1, 0);
        let (_dir, file) = staged(&big).await;
        let details = check(&file, &fields(Some("image/jpeg"), None))
            .unwrap_err()
            .to_details();
        assert_eq!(details["field"], "file");
        assert_eq!(details["limit"], 5 * 1024 * 1024);
        assert!(
            details["reason"].as_str().unwrap().contains("5 MB"),
            "{details}"
        );
    }

    #[tokio::test]
    async fn a_gif_is_not_a_type_meta_takes() {
        let (_dir, file) = staged(b"GIF89a....").await;
        let details = check(&file, &fields(Some("image/gif"), None))
            .unwrap_err()
            .to_details();
        assert_eq!(details["field"], "type");
        assert!(
            details["reason"].as_str().unwrap().contains("image/jpeg"),
            "{details}"
        );
    }

    #[tokio::test]
    async fn a_still_sticker_over_100_kilobytes_is_refused() {
        let mut webp = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
        webp.resize(100 * 1024 + 1, 0);
        let (_dir, file) = staged(&webp).await;
        let details = check(&file, &fields(Some("image/webp"), None))
            .unwrap_err()
            .to_details();
        assert_eq!(details["limit"], 100 * 1024);
    }

    #[tokio::test]
    async fn an_empty_file_and_an_unknown_kind_are_both_reported() {
        let (_dir, file) = staged(b"").await;
        let errors = check(
            &file,
            &UploadFields {
                kind: Some("gif".into()),
                declared_type: Some("text/plain".into()),
                ..UploadFields::default()
            },
        )
        .unwrap_err();
        assert!(
            errors.has("file") && errors.has("kind"),
            "{:?}",
            errors.to_details()
        );
    }
}
