//! The dashboard: server-rendered pages (askama), small plain scripts and vendored htmx, all
//! embedded in the binary. Pages read through the modules below the API; what they change goes
//! through the REST API with the session cookie, so the rules live in one place.

mod assets;
mod assistant;
mod contacts;
pub mod cookies;
mod error;
mod inbox;
mod pages;
mod session;
mod signin;
mod template_picker;
mod users;
mod webhooks;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::app::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/app") }))
        .route("/login", get(signin::form).post(signin::submit))
        .route("/logout", post(signin::sign_out))
        .route("/app", get(pages::home))
        .route("/app/inbox", get(inbox::page))
        .route("/app/inbox/older", get(inbox::older))
        .route("/app/bell", get(inbox::bell))
        .route("/app/inbox/templates", get(template_picker::list))
        .route("/app/inbox/template", get(template_picker::form))
        .route("/app/inbox/template-preview", get(template_picker::preview))
        .route("/app/integrations", get(pages::integrations))
        .route("/app/assistant", get(assistant::page))
        .route("/app/settings", get(pages::settings))
        .route("/app/settings/api-key", post(pages::regenerate_api_key))
        .route("/app/settings/password", post(users::change_password))
        .route("/app/contacts", get(contacts::list))
        .route("/app/contacts/{id}", get(contacts::show))
        .route("/app/users", get(users::page).post(users::add))
        .route("/app/webhooks", get(webhooks::page))
        .route("/app/users/{id}/remove", post(users::remove))
        .route("/assets/{*path}", get(assets::serve))
}
