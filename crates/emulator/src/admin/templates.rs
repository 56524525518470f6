//! Templates through the admin API: seed them, list and delete them, review them as Meta's
//! reviewers would (each change sends its webhook), and set how an account's submissions are reviewed.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::{AdminError, AdminJson, List, given, query};
use crate::error::EmulatorError;
use crate::state::EmulatorState;
use crate::templates::{
    QualityScore, ReviewPolicy, TemplateCategory, TemplateReview, TemplateSeed, TemplateView,
};

pub(super) fn router() -> Router<EmulatorState> {
    Router::new()
        .route("/templates", post(add_template).get(list_templates))
        .route(
            "/templates/{id}",
            get(show_template).delete(delete_template),
        )
        .route("/templates/{id}/review", post(review_template))
        .route("/templates/{id}/quality", post(update_quality))
        .route("/templates/{id}/category", post(update_category))
        .route("/wabas/{waba_id}/template-review", put(set_review_policy))
}

#[tracing::instrument(skip_all, fields(waba_id = %seed.waba_id, name = %seed.name))]
async fn add_template(
    State(state): State<EmulatorState>,
    AdminJson(seed): AdminJson<TemplateSeed>,
) -> Result<(StatusCode, AdminJson<TemplateView>), AdminError> {
    Ok((StatusCode::CREATED, AdminJson(state.add_template(seed)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WabaFilter {
    waba_id: Option<String>,
}

/// Templates in creation order, one account's or every account's.
async fn list_templates(
    State(state): State<EmulatorState>,
    filter: Result<Query<WabaFilter>, QueryRejection>,
) -> Result<AdminJson<List<TemplateView>>, AdminError> {
    let filter = query(filter)?;
    Ok(AdminJson(List {
        data: state.templates(given(&filter.waba_id)),
    }))
}

async fn show_template(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<AdminJson<TemplateView>, AdminError> {
    state
        .template(&id)
        .map(AdminJson)
        .ok_or_else(|| EmulatorError::UnknownTemplate(id).into())
}

async fn delete_template(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    state.delete_template(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// 200 with the changed template; 202 with the template as it still is when the review has a delay.
#[tracing::instrument(skip_all, fields(template_id = %id))]
async fn review_template(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
    AdminJson(review): AdminJson<TemplateReview>,
) -> Result<(StatusCode, AdminJson<TemplateView>), AdminError> {
    let status = if review.delay_ms > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, AdminJson(state.review_template(&id, review)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QualityChange {
    score: QualityScore,
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
async fn update_quality(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
    AdminJson(change): AdminJson<QualityChange>,
) -> Result<AdminJson<TemplateView>, AdminError> {
    Ok(AdminJson(state.update_template_quality(&id, change.score)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryChange {
    category: TemplateCategory,
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
async fn update_category(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
    AdminJson(change): AdminJson<CategoryChange>,
) -> Result<AdminJson<TemplateView>, AdminError> {
    Ok(AdminJson(
        state.update_template_category(&id, change.category)?,
    ))
}

/// The policy as set, with its account.
#[derive(Serialize)]
struct AccountPolicy {
    waba_id: String,
    #[serde(flatten)]
    policy: ReviewPolicy,
}

#[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
async fn set_review_policy(
    State(state): State<EmulatorState>,
    Path(waba_id): Path<String>,
    AdminJson(policy): AdminJson<ReviewPolicy>,
) -> Result<AdminJson<AccountPolicy>, AdminError> {
    let policy = state.set_template_review(&waba_id, policy)?;
    Ok(AdminJson(AccountPolicy { waba_id, policy }))
}
