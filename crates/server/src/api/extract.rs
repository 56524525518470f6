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
