//! `/openapi.json` and the docs page at `/docs`. The document is generated from the handlers'
//! own annotations: a route is added through `utoipa_axum::routes!`, which registers it with axum
//! and describes it in the same step, so no route can be served without being documented.

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::app::state::AppState;

/// Where the document is served, and the page that renders it.
pub const DOCUMENT_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";

/// The security scheme names the handlers' annotations refer to.
pub const API_KEY: &str = "api_key";
pub const SESSION: &str = "session";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wagate",
        description = "WhatsApp Cloud API gateway for many businesses. Authenticate with \
            `Authorization: Bearer <api key>` (the dashboard's Settings page shows the key). \
            Every error is `{\"error\": {\"code\", \"message\", \"details\"}}`.",
    ),
    modifiers(&SecuritySchemes),
    security(("api_key" = []), ("session" = [])),
    tags(
        (name = "connections", description = "A tenant's WhatsApp Business numbers"),
        (name = "contacts", description = "Contacts: details, tags, custom fields and opt-in"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "conversations", description = "Conversations and unread counts"),
        (name = "templates", description = "Message templates, synced with Meta"),
        (name = "media", description = "Files to send and files received"),
        (name = "assistant", description = "AI auto-replies"),
        (name = "sequences", description = "Follow-up sequences"),
        (name = "webhook-endpoints", description = "Events delivered to the tenant's own systems"),
        (name = "inbox", description = "Webhooks as received, and their processing"),
        (name = "usage", description = "Conversations and messages Meta bills"),
        (name = "settings", description = "The tenant's time zone and opt-out words"),
        (name = "realtime", description = "Live events over a WebSocket"),
        (name = "webhooks", description = "The endpoints Meta calls"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
    components(schemas(super::schema::ErrorBody))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The tenant's API key: `Authorization: Bearer wgk_...`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::ui::cookies::SESSION,
                "The dashboard's session cookie; requests that change anything also need the \
                 session's CSRF token in X-CSRF-Token",
            ))),
        );
    }
}

/// The whole document: the API as `routes` describes it (the router built from the same
/// `routes!` calls), uploads and the endpoints Meta calls.
fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document.merge(routes);
    document.merge(super::media::upload_router().into_openapi());
    document.merge(super::contacts::upload_router().into_openapi());
    document.merge(crate::inbound::routes::router().into_openapi());
    document
}

/// `/openapi.json` and the docs page, whose assets are compiled in (never fetched from elsewhere).
pub fn router(routes: utoipa::openapi::OpenApi) -> Router<AppState> {
    SwaggerUi::new(DOCS_PATH)
        .url(DOCUMENT_PATH, document(routes))
        .into()
}
