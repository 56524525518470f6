//! `/api/v1/templates`: the templates known for the tenant's connections.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::ApiQuery;
use crate::app::state::AppState;
use crate::views;

pub fn router() -> Router<AppState> {
    Router::new().route("/templates", get(list))
}

#[derive(Deserialize)]
struct ListQuery {
    connection_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let connection_id = query.connection_id.filter(|c| !c.is_empty());
    if let Some(id) = &connection_id
        && state.store.connection(&auth.tenant_id, id).await?.is_none()
    {
        return Err(ApiError::NotFound("connection"));
    }
    let rows = state
        .store
        .templates(&auth.tenant_id, connection_id.as_deref())
        .await?;
    let data: Vec<Value> = rows.iter().map(views::template).collect();
    Ok(Json(json!({ "data": data })))
}
