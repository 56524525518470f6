//! Request extractors whose rejections are the contract's JSON errors instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::ApiError;

/// A JSON body. Unreadable JSON is 400; JSON of the wrong shape is 422 naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let req = read_within_limit(req, super::MAX_API_BODY).await?;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation {
                code: "validation_failed",
                message: format!(
                    "the body does not have the expected fields: {}",
                    e.body_text()
                ),
                details: json!({ "reason": e.body_text() }),
            }),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest {
                code: "invalid_json",
                message: format!("the body is not valid JSON: {}", e.body_text()),
            }),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::PayloadTooLarge {
                limit_bytes: super::MAX_API_BODY,
            }),
            Err(other) => Err(ApiError::BadRequest {
                code: "invalid_request",
                message: other.body_text(),
            }),
        }
    }
}

/// How much of a body past the limit is still read (and thrown away) before answering 413, and
/// for how long: a server that answers while the client is still writing, and then closes with
/// the rest unread, makes the kernel reset the connection, and the client loses the 413 with it.
/// Reading on to the end lets every client of a reasonable size see why it was refused.
const DRAIN_AFTER_LIMIT: usize = 8 * 1024 * 1024;
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the body whole when it fits `limit`; answers 413 when it does not, after reading on
/// (within [`DRAIN_AFTER_LIMIT`] and [`DRAIN_FOR`]) so the client is there to hear it.
async fn read_within_limit(req: Request, limit: usize) -> Result<Request, ApiError> {
    use futures::StreamExt;
    let too_large = ApiError::PayloadTooLarge { limit_bytes: limit };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (limit + DRAIN_AFTER_LIMIT) as u64) {
        // Too large to be worth reading: answered at once.
        return Err(too_large);
    }
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut kept = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest {
            code: "invalid_request",
            message: "the body broke off before it was complete".to_owned(),
        })?;
        if kept.len() + chunk.len() > limit {
            let mut seen = kept.len() + chunk.len();
            drop(kept);
            // Errors and the deadline end the draining; the answer is 413 whatever happens.
            let _ = tokio::time::timeout(DRAIN_FOR, async {
                while seen <= limit + DRAIN_AFTER_LIMIT {
                    match stream.next().await {
                        Some(Ok(chunk)) => seen += chunk.len(),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(too_large);
        }
        kept.extend_from_slice(&chunk);
    }
    Ok(Request::from_parts(
        parts,
        axum::body::Body::from(kept.freeze()),
    ))
}

/// A query string. Values of the wrong type are 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::Validation {
                code: "validation_failed",
                message: format!("the query string is not valid: {}", e.body_text()),
                details: json!({ "reason": e.body_text() }),
            }),
            Err(other) => Err(ApiError::BadRequest {
                code: "invalid_request",
                message: other.body_text(),
            }),
        }
    }
}
