//! The one place errors become the contract's JSON error:
//! `{"error": {"code": "<snake_case>", "message": "<sentence>", "details": {...}}}`.
//!
//! Database and internal errors are logged with their cause chain and never shown to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (not JSON, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid credentials.
    #[error("a valid API key is required: send the header Authorization: Bearer <api key>")]
    Unauthorized,
    /// 403: signed in with the dashboard's cookie, but the request lacks the session's CSRF token.
    #[error(
        "this request needs the session's CSRF token in the X-CSRF-Token header; reload the page and try again"
    )]
    CsrfMissing,
    /// 403: signed in, but this user's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 429: this caller used up its rate limit (`limit` a minute); `retry_after_secs` says
    /// when the next request will be taken. Also sent as `Retry-After`.
    #[error(
        "too many requests: the limit is {limit} a minute; retry in {retry_after_secs} second{}",
        if *retry_after_secs == 1 { "" } else { "s" }
    )]
    RateLimited { retry_after_secs: u64, limit: u32 },
    /// 404: does not exist, or belongs to another tenant (the two are never told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the request conflicts with what exists.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body is larger than this endpoint takes.
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// 415: the body is not JSON.
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: the request is readable but a field is wrong; `details` names it and says why.
    #[error("{message}")]
    Validation {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// 422: Meta refused what was asked; Meta's own error goes in `details.meta`.
    #[error("{message}")]
    MetaRejected { message: String, meta: Value },
    /// 502: Meta could not be reached, or answered something unusable.
    #[error("{message}")]
    Upstream {
        message: String,
        meta: Option<Value>,
    },
    /// 503: the database cannot be reached; try again.
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable,
    /// 500: a fault of ours. Logged in full, shown as a plain sentence.
    #[error("an internal error occurred")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Validation {
            code: "validation_failed",
            details: json!({ "field": field, "reason": message }),
            message,
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::CsrfMissing | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } | Self::MetaRejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Validation { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::CsrfMissing => "csrf_token_missing",
            Self::Forbidden(_) => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MetaRejected { .. } => "meta_rejected",
            Self::Upstream { .. } => "meta_unavailable",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Validation { details, .. } => details.clone(),
            Self::MetaRejected { meta, .. } => json!({ "meta": meta }),
            Self::Upstream {
                meta: Some(meta), ..
            } => json!({ "meta": meta }),
            Self::PayloadTooLarge { limit_bytes } => json!({ "limit_bytes": limit_bytes }),
            Self::RateLimited {
                retry_after_secs,
                limit,
            } => json!({ "retry_after_seconds": retry_after_secs, "limit": limit }),
            _ => json!({}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error")
            }
            Self::Unavailable => tracing::warn!("answered 503: database unavailable"),
            _ => {}
        }
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "details": self.details(),
            }
        });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Self::RateLimited {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(error = %error, "database unavailable");
            Self::Unavailable
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<crate::connections::ConnectionError> for ApiError {
    fn from(error: crate::connections::ConnectionError) -> Self {
        use crate::connections::{ConnectionError as E, meta_json};
        match error {
            E::Invalid(fields) => Self::Validation {
                code: "validation_failed",
                message: fields.summary(),
                details: fields.to_details(),
            },
            E::MetaRejected(meta) => Self::MetaRejected {
                message: E::MetaRejected(meta.clone()).to_string(),
                meta: meta_json(&meta),
            },
            E::MetaUnreachable(graph) => Self::Upstream {
                message: E::MetaUnreachable(graph).to_string(),
                meta: None,
            },
            E::PhoneNumberTaken => Self::Conflict {
                code: "phone_number_already_connected",
                message: "this phone number is already connected; disconnect it first".to_owned(),
            },
            E::NotFound => Self::NotFound("connection"),
            E::Store(store) => store.into(),
            E::Vault(vault) => Self::Internal(vault.into()),
        }
    }
}

/// Every problem of a request's fields, as the contract's 422.
impl From<crate::validation::FieldErrors> for ApiError {
    fn from(fields: crate::validation::FieldErrors) -> Self {
        Self::Validation {
            code: "validation_failed",
            message: fields.summary(),
            details: fields.to_details(),
        }
    }
}

impl From<crate::outbound::cancel::CancelError> for ApiError {
    fn from(error: crate::outbound::cancel::CancelError) -> Self {
        use crate::outbound::cancel::CancelError as E;
        match error {
            E::NotFound => Self::NotFound("message"),
            E::AlreadyLeft { .. } => Self::Conflict {
                code: "message_already_sent",
                message: error.to_string(),
            },
            E::Inbound => Self::Conflict {
                code: "message_not_cancellable",
                message: error.to_string(),
            },
            E::Store(store) => store.into(),
        }
    }
}

impl From<crate::outbound::SendError> for ApiError {
    fn from(error: crate::outbound::SendError) -> Self {
        use crate::outbound::SendError as E;
        match error {
            E::Invalid(fields) => Self::Validation {
                code: "validation_failed",
                message: fields.summary(),
                details: fields.to_details(),
            },
            E::OutsideServiceWindow {
                window_expired_at, ..
            } => Self::Validation {
                code: "outside_service_window",
                message: error.to_string(),
                details: crate::outbound::enqueue::window_details(window_expired_at),
            },
            E::ConnectionAmbiguous(_) => Self::Validation {
                code: "connection_required",
                message: error.to_string(),
                details: serde_json::json!({"field": "connection_id", "reason": error.to_string()}),
            },
            E::NoConnection => Self::Validation {
                code: "no_connection",
                message: error.to_string(),
                details: serde_json::json!({}),
            },
            E::ConnectionNeedsReauth => Self::Validation {
                code: "connection_needs_reauth",
                message: error.to_string(),
                details: serde_json::json!({"field": "connection_id"}),
            },
            E::ReplyTargetNotFound => Self::Validation {
                code: "validation_failed",
                message: error.to_string(),
                details: serde_json::json!({"field": "context.message_id", "reason": error.to_string()}),
            },
            E::ContactOptedOut { .. } => Self::Validation {
                code: "contact_opted_out",
                message: error.to_string(),
                details: serde_json::json!({"field": "to", "reason": error.to_string()}),
            },
            E::ConnectionNotFound => Self::NotFound("connection"),
            E::TemplateNotFound { .. } => Self::Validation {
                code: "template_not_found",
                message: error.to_string(),
                details: serde_json::json!({
                    "field": "template.name",
                    "reason": error.to_string(),
                    "hint": "sync the templates (POST /api/v1/templates/sync) if it was just made in WhatsApp Manager",
                }),
            },
            E::TemplateNotApproved { ref status, .. } => Self::Validation {
                code: "template_not_approved",
                message: error.to_string(),
                details: serde_json::json!({"field": "template.name", "status": status, "reason": error.to_string()}),
            },
            E::TemplateMismatch(ref fields) => Self::Validation {
                code: "template_parameters_mismatch",
                message: error.to_string(),
                details: fields.to_details(),
            },
            E::TemplatesUnavailable(_) => Self::Upstream {
                message: error.to_string(),
                meta: None,
            },
            E::MediaNotFound { ref field } => Self::Validation {
                code: "media_not_found",
                message: error.to_string(),
                details: serde_json::json!({"field": field, "reason": error.to_string()}),
            },
            E::MediaUnusable {
                ref field,
                ref reason,
            } => Self::Validation {
                code: "media_unusable",
                message: error.to_string(),
                details: serde_json::json!({"field": field, "reason": reason}),
            },
            E::Store(store) => store.into(),
        }
    }
}
