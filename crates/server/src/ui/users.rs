//! The users of a tenant: owners and admins add people (with a temporary password shown once)
//! and remove them; everyone may change their own password on the settings page.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::PageError;
use super::session::{CsrfForm, Layout, Signed};
use crate::app::state::AppState;
use crate::auth::{password, session};
use crate::clock::{now_ms, rfc3339};
use crate::ids::{new_id, random_token};
use crate::store::tenants::{CreateTenantError, NewUser};

pub struct UserItem {
    pub id: String,
    pub email: String,
    pub role: String,
    pub since: String,
    pub removable: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    page: Layout,
    users: Vec<UserItem>,
    notice: Option<String>,
    error: Option<String>,
    /// A new user's email and temporary password, shown once.
    added: Option<(String, String)>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Html<String>, PageError> {
    render(&state, signed, Outcome::default()).await
}

#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    added: Option<(String, String)>,
}

async fn render(
    state: &AppState,
    signed: Signed,
    outcome: Outcome,
) -> Result<Html<String>, PageError> {
    let me = signed.user.user_id.clone();
    let manages = signed.manages();
    let users = state
        .store
        .users(&signed.user.tenant_id)
        .await?
        .into_iter()
        .map(|u| UserItem {
            removable: manages && u.role != "owner" && u.id != me,
            since: rfc3339(u.created_at),
            id: u.id,
            email: u.email,
            role: u.role,
        })
        .collect();
    let page = Layout::of(state, &signed, "users").await?;
    Ok(Html(
        UsersPage {
            page,
            users,
            notice: outcome.notice,
            error: outcome.error,
            added: outcome.added,
        }
        .render()?,
    ))
}

#[derive(Deserialize)]
pub struct AddUserForm {
    csrf_token: String,
    email: String,
    role: String,
}

pub async fn add(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<AddUserForm>,
) -> Result<Response, PageError> {
    signed.check_manager_form(&form.csrf_token)?;
    let email = form.email.trim().to_lowercase();
    let refuse = |message: String| Outcome {
        error: Some(message),
        ..Outcome::default()
    };
    if !crate::tenants::plausible_email(&email) {
        let page = render(
            &state,
            signed,
            refuse(format!("\u{201c}{email}\u{201d} is not an email address.")),
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    if form.role != "admin" && form.role != "agent" {
        let page = render(
            &state,
            signed,
            refuse("Choose the role admin or agent.".into()),
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let temporary = random_token(12);
    let hash = password::hash(SecretString::from(temporary.clone()))
        .await
        .map_err(|e| PageError::Internal(e.into()))?;
    let added = state
        .store
        .add_user(&NewUser {
            user_id: &new_id(),
            tenant_id: &signed.user.tenant_id,
            email: &email,
            password_hash: &hash,
            role: &form.role,
            now: now_ms(),
        })
        .await;
    match added {
        Ok(()) => {
            tracing::info!(tenant_id = %signed.user.tenant_id, role = %form.role, "user added");
            let page = render(
                &state,
                signed,
                Outcome {
                    added: Some((email, temporary)),
                    ..Outcome::default()
                },
            )
            .await?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], page).into_response())
        }
        Err(CreateTenantError::EmailTaken) => {
            let page = render(
                &state,
                signed,
                refuse(format!("{email} already has an account.")),
            )
            .await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(CreateTenantError::Store(e)) => Err(e.into()),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    signed: Signed,
    Path(user_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Html<String>, PageError> {
    signed.check_manager_form(&form.csrf_token)?;
    if user_id == signed.user.user_id {
        return render(
            &state,
            signed,
            Outcome {
                error: Some("You cannot remove yourself.".into()),
                ..Outcome::default()
            },
        )
        .await;
    }
    if !state
        .store
        .remove_user(&signed.user.tenant_id, &user_id)
        .await?
    {
        return Err(PageError::NotFound);
    }
    render(
        &state,
        signed,
        Outcome {
            notice: Some("The user was removed and signed out.".into()),
            ..Outcome::default()
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    current: SecretString,
    new: SecretString,
}

/// Changes the signed-in user's own password; their other sessions end.
pub async fn change_password(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf_token)?;
    let stored = state
        .store
        .password_hash(&signed.user.user_id)
        .await?
        .unwrap_or_default();
    if !password::verify(form.current, stored).await {
        let page = super::pages::settings_with(
            &state,
            signed,
            None,
            Some("The current password is wrong.".into()),
            None,
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let hash = match password::hash(form.new).await {
        Ok(hash) => hash,
        Err(error @ (password::PasswordError::TooShort | password::PasswordError::TooLong)) => {
            let page = super::pages::settings_with(
                &state,
                signed,
                None,
                Some(format!("The new password is not usable: {error}.")),
                None,
            )
            .await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(error) => return Err(PageError::Internal(error.into())),
    };
    state
        .store
        .set_password(
            &signed.user.user_id,
            &hash,
            &session::hash(signed.token.expose_secret()),
        )
        .await?;
    let page = super::pages::settings_with(
        &state,
        signed,
        None,
        None,
        Some("Your password was changed; your other sessions were signed out.".into()),
    )
    .await?;
    Ok(page.into_response())
}
