//! The signed-in user of a dashboard page. A page asked for without a live session redirects to
//! the sign-in page (and back afterwards).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};

use super::cookies;
use super::error::PageError;
use crate::app::state::AppState;
use crate::auth::session;
use crate::clock::now_ms;
use crate::store::sessions::SessionUser;

/// The user behind a page request, with the CSRF token its forms and scripts must send.
pub struct Signed {
    pub user: SessionUser,
    pub csrf: String,
    pub token: SecretString,
}

impl Signed {
    pub fn manages(&self) -> bool {
        crate::auth::role_manages(&self.user.role)
    }

    pub fn csrf_matches(&self, presented: &str) -> bool {
        session::csrf_matches(&self.token, presented)
    }

    /// A form that changes something: it must carry this session's CSRF token.
    pub fn check_form(&self, csrf_token: &str) -> Result<(), PageError> {
        if self.csrf_matches(csrf_token) {
            Ok(())
        } else {
            Err(PageError::FormExpired)
        }
    }

    /// A form only owners and admins may send.
    pub fn check_manager_form(&self, csrf_token: &str) -> Result<(), PageError> {
        self.check_form(csrf_token)?;
        if self.manages() {
            Ok(())
        } else {
            Err(PageError::NotAllowed)
        }
    }
}

pub enum NotSignedIn {
    Redirect(String),
    Failed(PageError),
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            Self::Redirect(to) => Redirect::to(&to).into_response(),
            Self::Failed(error) => error.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = NotSignedIn;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let back = parts
            .uri
            .path_and_query()
            .map_or("/app", |p| p.as_str())
            .to_owned();
        let to_signin = || NotSignedIn::Redirect(format!("/login?next={}", encode(&back)));
        let token = cookies::session_token(&parts.headers).ok_or_else(to_signin)?;
        let user = state
            .store
            .session_user(&session::hash(token.expose_secret()), now_ms())
            .await
            .map_err(|e| NotSignedIn::Failed(e.into()))?
            .ok_or_else(to_signin)?;
        tracing::Span::current().record("tenant_id", user.tenant_id.as_str());
        Ok(Self {
            csrf: session::csrf_token(&token),
            user,
            token,
        })
    }
}

/// The body of a form whose only field is the CSRF token.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf_token: String,
}

/// For pages that look different to a signed-in visitor (the sign-in page sends them on).
impl axum::extract::OptionalFromRequestParts<AppState> for Signed {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(signed) => Ok(Some(signed)),
            Err(NotSignedIn::Redirect(_)) => Ok(None),
            Err(NotSignedIn::Failed(error)) => Err(error),
        }
    }
}

/// Percent-encodes a path for a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What the frame of every signed-in page shows: who is signed in, the CSRF token its forms and
/// scripts send, the section of the menu, and the bell's count.
pub struct Layout {
    pub user: SessionUser,
    pub csrf: String,
    pub section: &'static str,
    pub unread_total: i64,
    /// Whether the user may manage numbers, users and settings.
    pub manages: bool,
}

impl Layout {
    pub async fn of(
        state: &AppState,
        signed: &Signed,
        section: &'static str,
    ) -> Result<Self, PageError> {
        Ok(Self {
            unread_total: state.store.unread_total(&signed.user.tenant_id).await?,
            user: signed.user.clone(),
            csrf: signed.csrf.clone(),
            section,
            manages: signed.manages(),
        })
    }
}
