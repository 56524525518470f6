//! Fetching a file a customer sent: a job queued in the same transaction as its message.
//!
//! `GET /{media-id}` gives a short-lived URL, the type, size and hash; the URL is downloaded with
//! the bearer token straight to the staging area, hashed on the way, checked against Meta's
//! SHA-256 (the webhook's and the URL answer's), and handed to the storage. An expired URL is
//! asked for again at once. Any other failure is retried with backoff; after the last attempt
//! the file is marked `failed` with the reason. The message was stored before any of this and
//! is never held up or lost by it.

use base64::Engine;
use cloudapi::GraphError;
use cloudapi::error::ErrorClass;
use cloudapi::media::MediaInfo;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::staging::{StagedFile, Staging, StagingError};
use crate::app::state::AppState;
use crate::clock::now_ms;
use crate::jobs::JobFailure;
use crate::realtime::{Event, kind};
use crate::store::connections::{ConnectionRow, STATUS_CONNECTED};
use crate::store::jobs::{Job, NewJob};
use crate::store::media::{MediaRow, STATUS_STORED, StoredFile};
use crate::store::{Conn, Store, StoreError};
use crate::vault::SecretSlot;
use crate::views;

/// The job kind that fetches a file from Meta.
pub const FETCH_JOB: &str = "fetch_media";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    media_id: String,
}

/// Queues the fetch of a file inside the transaction that stores its message.
pub async fn enqueue_fetch(
    store: &Store,
    conn: &mut Conn,
    media: &MediaRow,
    max_attempts: i64,
    now: i64,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(&Payload {
        media_id: media.id.clone(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let unique_key = format!("{FETCH_JOB}:{}", media.id);
    store
        .enqueue_job(
            conn,
            &NewJob {
                kind: FETCH_JOB,
                payload: &payload,
                tenant_id: Some(&media.tenant_id),
                unique_key: Some(&unique_key),
                run_at: now,
                max_attempts: max_attempts.max(1),
                now,
            },
        )
        .await?;
    Ok(())
}

/// Why one attempt did not store the file.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    /// Worth another attempt.
    #[error("{0}")]
    Retry(String),
    /// Will never work (Meta no longer has the file, or it is too large to keep).
    #[error("{0}")]
    Permanent(String),
}

/// Runs one fetch job.
#[tracing::instrument(skip_all, fields(media_id))]
pub async fn run_fetch(state: &AppState, job: &Job) -> Result<(), JobFailure> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobFailure::Permanent(format!("unreadable payload: {e}")))?;
    tracing::Span::current().record("media_id", payload.media_id.as_str());
    let store = &state.store;
    let Some(media) = store.media_by_id(&payload.media_id).await.map_err(retry)? else {
        return Err(JobFailure::Permanent(
            "the media row no longer exists".into(),
        ));
    };
    if media.status == STATUS_STORED {
        return Ok(());
    }
    let outcome = match store
        .connection_by_id(&media.connection_id)
        .await
        .map_err(retry)?
    {
        Some(connection) if connection.status == STATUS_CONNECTED => {
            fetch_once(state, &connection, &media).await
        }
        Some(connection) => Err(FetchError::Permanent(format!(
            "the connection is {}; the file can no longer be fetched with its credentials",
            connection.status.replace('_', " ")
        ))),
        None => Err(FetchError::Permanent(
            "the connection no longer exists".into(),
        )),
    };
    let now = now_ms();
    match outcome {
        Ok(stored) => {
            store
                .mark_media_stored(
                    &media.id,
                    &StoredFile {
                        mime_type: &stored.mime_type,
                        file_size: stored.size as i64,
                        sha256: &stored.sha256,
                        storage_key: &stored.key,
                    },
                    now,
                )
                .await
                .map_err(retry)?;
            metrics::counter!("wagate_media_fetched_total", "outcome" => "stored").increment(1);
            publish_message(state, &media.id).await;
            Ok(())
        }
        Err(error) => {
            let last =
                matches!(error, FetchError::Permanent(_)) || job.attempts >= job.max_attempts;
            let reason = if last {
                format!(
                    "{error} (attempt {} of {}; not retried)",
                    job.attempts, job.max_attempts
                )
            } else {
                format!(
                    "{error} (attempt {} of {}; retrying)",
                    job.attempts, job.max_attempts
                )
            };
            store
                .mark_media_failure(&media.id, &reason, last, now)
                .await
                .map_err(retry)?;
            if last {
                metrics::counter!("wagate_media_fetched_total", "outcome" => "failed").increment(1);
                tracing::warn!(error = %error, "media fetch failed for good; the message is kept");
                publish_message(state, &media.id).await;
                Err(JobFailure::Permanent(reason))
            } else {
                Err(JobFailure::Retry(reason))
            }
        }
    }
}

/// A file that reached the storage.
struct Stored {
    key: String,
    sha256: String,
    size: u64,
    mime_type: String,
}

async fn fetch_once(
    state: &AppState,
    connection: &ConnectionRow,
    media: &MediaRow,
) -> Result<Stored, FetchError> {
    let meta_id = media
        .meta_media_id
        .as_deref()
        .ok_or_else(|| FetchError::Permanent("the message names no media id".into()))?;
    let token = open_token(state, connection)?;
    let max_bytes = state.settings.media_max_bytes;
    let mut info = media_info(state, &token, meta_id).await?;
    if let Some(size) = announced_size(&info)
        && size > max_bytes
    {
        return Err(FetchError::Permanent(format!(
            "the file is {size} bytes, more than the {max_bytes} bytes wagate keeps (WAGATE_MEDIA_MAX_BYTES)"
        )));
    }
    let staging = Staging::new(state.media.staging_dir());
    // The URL lives five minutes; one that has expired (or that Meta no longer honours) is asked
    // for again once within the same attempt.
    let staged = match download(state, &token, &info.url, &staging, max_bytes).await {
        Err(DownloadError::UrlRefused(status)) => {
            tracing::info!(
                http_status = status,
                "media URL refused; asking Meta for a new one"
            );
            metrics::counter!("wagate_media_url_renewed_total").increment(1);
            info = media_info(state, &token, meta_id).await?;
            download(state, &token, &info.url, &staging, max_bytes)
                .await
                .map_err(DownloadError::into_fetch)?
        }
        other => other.map_err(DownloadError::into_fetch)?,
    };
    for announced in [Some(info.sha256.as_str()), media.meta_sha256.as_deref()]
        .into_iter()
        .flatten()
    {
        if !hash_matches(announced, &staged.sha256) {
            return Err(FetchError::Retry(format!(
                "the downloaded file's SHA-256 ({}) does not match the one Meta announced ({announced})",
                staged.sha256
            )));
        }
    }
    let sha256 = staged.sha256.clone();
    let size = staged.size;
    let key = state
        .media
        .put(staged)
        .await
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    Ok(Stored {
        key,
        sha256,
        size,
        mime_type: info.mime_type,
    })
}

async fn media_info(
    state: &AppState,
    token: &SecretString,
    meta_id: &str,
) -> Result<MediaInfo, FetchError> {
    state
        .graph
        .get_media(token, meta_id)
        .await
        .map_err(|error| classify("the request for the file's URL", &error))
}

#[derive(Debug)]
enum DownloadError {
    /// The URL answered 401, 403, 404 or 410: expired, or no longer honoured.
    UrlRefused(u16),
    Other(FetchError),
}

impl DownloadError {
    fn into_fetch(self) -> FetchError {
        match self {
            Self::UrlRefused(status) => FetchError::Retry(format!(
                "Meta's download URL answered HTTP {status} even after it was renewed"
            )),
            Self::Other(error) => error,
        }
    }
}

async fn download(
    state: &AppState,
    token: &SecretString,
    url: &str,
    staging: &Staging,
    max_bytes: u64,
) -> Result<StagedFile, DownloadError> {
    let mut body = match state.graph.open_media_download(token, url).await {
        Ok(body) => body,
        Err(error) => {
            if let Some(status) = http_status(&error)
                && matches!(status, 401 | 403 | 404 | 410)
            {
                return Err(DownloadError::UrlRefused(status));
            }
            return Err(DownloadError::Other(classify("the download", &error)));
        }
    };
    if let Some(length) = body.content_length()
        && length > max_bytes
    {
        return Err(DownloadError::Other(FetchError::Permanent(format!(
            "the file is {length} bytes, more than the {max_bytes} bytes wagate keeps (WAGATE_MEDIA_MAX_BYTES)"
        ))));
    }
    let mut writer = staging
        .create(max_bytes)
        .await
        .map_err(|e| DownloadError::Other(staging_error(e)))?;
    loop {
        match body.chunk().await {
            Ok(Some(chunk)) => writer
                .write(&chunk)
                .await
                .map_err(|e| DownloadError::Other(staging_error(e)))?,
            Ok(None) => break,
            Err(error) => {
                return Err(DownloadError::Other(classify("the download", &error)));
            }
        }
    }
    writer
        .finish()
        .await
        .map_err(|e| DownloadError::Other(staging_error(e)))
}

fn staging_error(error: StagingError) -> FetchError {
    match error {
        StagingError::TooLarge { limit } => FetchError::Permanent(format!(
            "the file is larger than the {limit} bytes wagate keeps (WAGATE_MEDIA_MAX_BYTES)"
        )),
        other => FetchError::Retry(other.to_string()),
    }
}

fn http_status(error: &GraphError) -> Option<u16> {
    match error {
        GraphError::Meta { http_status, .. }
        | GraphError::UnexpectedResponse { http_status, .. } => Some(*http_status),
        _ => None,
    }
}

/// Meta's refusal of the media id itself is final (it keeps files for 30 days); everything else
/// may pass.
fn classify(doing: &str, error: &GraphError) -> FetchError {
    let text = match error.meta_error() {
        Some(meta) => format!(
            "Meta refused {doing} (code {}): {}",
            meta.code,
            meta.details().unwrap_or("no details")
        ),
        None => {
            let mut chars = doing.chars();
            let capital: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            format!("{capital} failed: {error}")
        }
    };
    match error.class() {
        ErrorClass::Permanent | ErrorClass::CredentialsRejected if error.meta_error().is_some() => {
            FetchError::Permanent(text)
        }
        _ => FetchError::Retry(text),
    }
}

fn announced_size(info: &MediaInfo) -> Option<u64> {
    info.file_size.to_string().trim().parse().ok()
}

/// Whether Meta's announced hash (hex, as `GET /{media-id}` writes it, or base64, as webhooks
/// do) is the hash of the bytes. A hash in neither form cannot be checked and is let pass with a
/// warning, rather than refusing every file should Meta change how it writes them.
pub fn hash_matches(announced: &str, hex_digest: &str) -> bool {
    let announced = announced.trim();
    if announced.is_empty() {
        return true;
    }
    if announced.len() == 64 && announced.bytes().all(|b| b.is_ascii_hexdigit()) {
        return announced.eq_ignore_ascii_case(hex_digest);
    }
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for engine in engines {
        if let Ok(decoded) = engine.decode(announced)
            && decoded.len() == 32
        {
            return decoded == expected;
        }
    }
    tracing::warn!(
        announced,
        "Meta's media hash is in a form wagate does not know; not checked"
    );
    true
}

fn open_token(state: &AppState, connection: &ConnectionRow) -> Result<SecretString, FetchError> {
    let sealed = connection
        .access_token
        .as_deref()
        .ok_or_else(|| FetchError::Permanent("the connection has no access token".into()))?;
    state
        .vault
        .open(
            SecretSlot::new("connections", "access_token", &connection.id),
            sealed,
        )
        .map_err(|e| FetchError::Permanent(e.to_string()))
}

/// Tells the tenant's dashboards that a message's file changed state.
async fn publish_message(state: &AppState, media_id: &str) {
    let Ok(Some(message_id)) = state.store.message_id_of_media(media_id).await else {
        return;
    };
    if let Ok(Some(message)) = state.store.message_by_id(&message_id).await {
        state.events.publish(Event {
            tenant_id: message.tenant_id.clone(),
            kind: kind::MESSAGE_UPDATED,
            data: views::message(&message),
        });
    }
}

fn retry(error: StoreError) -> JobFailure {
    JobFailure::Retry(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn metas_hash_is_read_in_hex_or_base64() {
        let digest = Sha256::digest(b"a photo");
        let hex_digest = hex::encode(digest);
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert!(hash_matches(&hex_digest, &hex_digest));
        assert!(hash_matches(&hex_digest.to_uppercase(), &hex_digest));
        assert!(hash_matches(&b64, &hex_digest));
        assert!(hash_matches(b64.trim_end_matches('='), &hex_digest));
        let other = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"another"));
        assert!(!hash_matches(&other, &hex_digest));
        assert!(!hash_matches(
            &hex::encode(Sha256::digest(b"x")),
            &hex_digest
        ));
        // A placeholder that is no hash at all is let pass, not made a reason to lose the file.
        assert!(hash_matches("<HASH>", &hex_digest));
    }
}
