//! What a dashboard page answers when it cannot be shown: a plain page that says why.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("This page does not exist, or it belongs to another account.")]
    NotFound,
    #[error("Only owners and admins of this account can do this.")]
    NotAllowed,
    #[error("The form has expired. Reload the page and try again.")]
    FormExpired,
    #[error("The service is temporarily unavailable. Try again shortly.")]
    Unavailable,
    #[error(
        "Something went wrong on our side. Try again; if it persists, tell your administrator."
    )]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        Self::Internal(error.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            Self::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            Self::NotAllowed => (StatusCode::FORBIDDEN, "Not allowed"),
            Self::FormExpired => (StatusCode::FORBIDDEN, "Form expired"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Error")
            }
        };
        let page = ErrorPage {
            title,
            message: self.to_string(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}
