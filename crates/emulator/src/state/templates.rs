//! Operations on templates: seeding, Graph's create and delete, reviews by policy or by hand, and
//! the account-level webhooks each change sends to every webhook of the account's numbers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{EmulatorState, World, serialize};
use crate::delivery::DeliveryId;
use crate::error::{EmulatorError, InputError};
use crate::payloads::{self, TemplateRef};
use crate::phone_numbers::parse_graph_id;
use crate::templates::definition::Definition;
use crate::templates::{
    self, QualityScore, ReviewPolicy, Template, TemplateCategory, TemplateQuality, TemplateReview,
    TemplateSeed, TemplateStatus, TemplateView,
};

/// Adds Meta's sample template to an account the first time one of its numbers is registered.
pub(super) fn add_sample_template(world: &mut World, waba_id: &str) {
    if !world.templates.first_sample(waba_id) {
        return;
    }
    let template = Template {
        id: world.new_object_id(),
        waba_id: waba_id.to_owned(),
        name: "hello_world".into(),
        language: "en_US".into(),
        category: TemplateCategory::Utility,
        status: TemplateStatus::Approved,
        parameter_format: templates::ParameterFormat::Positional,
        components: templates::sample_components(),
        quality: TemplateQuality {
            score: QualityScore::Unknown,
            date: payloads::unix_now(),
        },
        rejected_reason: "NONE".into(),
        sub_category: None,
    };
    // An account seeded before its first number may have its own hello_world already; it stays.
    let _ = world.templates.insert(template);
}

/// A template submitted through Graph's create call, which answers with it.
pub(crate) struct Submitted {
    pub id: String,
    pub category: TemplateCategory,
}

/// Why Graph's create call refuses a template.
pub(crate) enum SubmitRefusal {
    Invalid(InputError),
    /// The account has a template of this name and language.
    Duplicate {
        name: String,
        language: String,
    },
}

impl EmulatorState {
    /// Creates a template directly (no review, no webhook).
    pub fn add_template(&self, seed: TemplateSeed) -> Result<TemplateView, EmulatorError> {
        let waba_id = parse_graph_id("waba_id", &seed.waba_id)?;
        let definition = Definition::parse(
            &seed.name,
            &seed.language,
            &seed.category,
            seed.parameter_format.as_deref(),
            seed.components,
        )?;
        let status = TemplateStatus::parse("status", &seed.status)?;
        let score = seed
            .quality_score
            .as_deref()
            .map(|s| QualityScore::parse("quality_score", s))
            .transpose()?
            .unwrap_or(QualityScore::Unknown);
        let rejected_reason = match (status, seed.rejected_reason) {
            (TemplateStatus::Rejected, Some(reason)) => {
                templates::check_reason(&reason)
                    .map_err(|e| InputError::new("rejected_reason", e.problem))?;
                reason
            }
            (TemplateStatus::Rejected, None) => templates::DEFAULT_REJECTION_REASON.to_owned(),
            (_, Some(_)) => {
                return Err(
                    InputError::new("rejected_reason", "only goes with status REJECTED").into(),
                );
            }
            (_, None) => "NONE".to_owned(),
        };
        let mut world = self.world();
        let template = Template {
            id: world.new_object_id(),
            waba_id,
            name: definition.name,
            language: definition.language,
            category: definition.category,
            status,
            parameter_format: definition.parameter_format,
            components: definition.components,
            quality: TemplateQuality {
                score,
                date: payloads::unix_now(),
            },
            rejected_reason,
            sub_category: seed.sub_category.map(|s| s.trim().to_ascii_uppercase()),
        };
        let view = template.view();
        world
            .templates
            .insert(template)
            .map_err(|_| EmulatorError::TemplateAlreadyExists {
                waba_id: view.waba_id.clone(),
                name: view.name.clone(),
                language: view.language.clone(),
            })?;
        Ok(view)
    }

    /// Stores a template submitted through Graph as `PENDING` and sets the account's review policy
    /// going on it.
    pub fn submit_template(
        &self,
        waba_id: &str,
        body: &serde_json::Map<String, Value>,
    ) -> Result<Submitted, SubmitRefusal> {
        let definition = Definition::from_create_body(body).map_err(SubmitRefusal::Invalid)?;
        let mut world = self.world();
        let template = Template {
            id: world.new_object_id(),
            waba_id: waba_id.to_owned(),
            name: definition.name,
            language: definition.language,
            category: definition.category,
            status: TemplateStatus::Pending,
            parameter_format: definition.parameter_format,
            components: definition.components,
            quality: TemplateQuality {
                score: QualityScore::Unknown,
                date: payloads::unix_now(),
            },
            rejected_reason: "NONE".into(),
            sub_category: definition.sub_category,
        };
        let submitted = Submitted {
            id: template.id.clone(),
            category: template.category,
        };
        let (name, language) = (template.name.clone(), template.language.clone());
        if world.templates.insert(template).is_err() {
            return Err(SubmitRefusal::Duplicate { name, language });
        }
        let review = world.templates.policy(waba_id).review();
        drop(world);
        if let Some(review) = review {
            // Always later, even without a delay: Meta answers the create call before it reviews.
            let id = submitted.id.clone();
            let delay = Duration::from_millis(review.delay_ms);
            self.after(delay, move |state| {
                if let Err(error) = state.apply_review(&id, &review) {
                    tracing::debug!(%error, "a template was deleted before its review");
                }
            });
        }
        Ok(submitted)
    }

    pub fn template(&self, id: &str) -> Option<TemplateView> {
        self.world().templates.get(id).map(Template::view)
    }

    /// One account's templates, or every account's, in creation order.
    pub fn templates(&self, waba_id: Option<&str>) -> Vec<TemplateView> {
        let world = self.world();
        match waba_id {
            Some(waba_id) => world
                .templates
                .of_waba(waba_id)
                .map(|(_, t)| t.view())
                .collect(),
            None => world
                .templates
                .all()
                .into_iter()
                .map(Template::view)
                .collect(),
        }
    }

    pub fn delete_template(&self, id: &str) -> Result<TemplateView, EmulatorError> {
        self.world()
            .templates
            .remove(id)
            .map(|t| t.view())
            .ok_or_else(|| EmulatorError::UnknownTemplate(id.to_owned()))
    }

    /// Graph's delete: every language of the name, or only the template `hsm_id` when given;
    /// `false` when nothing matched.
    pub fn delete_templates_named(&self, waba_id: &str, name: &str, hsm_id: Option<&str>) -> bool {
        let mut world = self.world();
        let ids: Vec<String> = world
            .templates
            .of_waba(waba_id)
            .map(|(_, t)| t)
            .filter(|t| t.name == name && hsm_id.is_none_or(|id| id == t.id))
            .map(|t| t.id.clone())
            .collect();
        for id in &ids {
            world.templates.remove(id);
        }
        !ids.is_empty()
    }

    pub fn set_template_review(
        &self,
        waba_id: &str,
        policy: ReviewPolicy,
    ) -> Result<ReviewPolicy, EmulatorError> {
        let waba_id = parse_graph_id("waba_id", waba_id)?;
        policy.check()?;
        self.world().templates.set_policy(&waba_id, policy.clone());
        Ok(policy)
    }

    /// Reviews a template now, or after the review's delay; the view is the template as it is now.
    pub fn review_template(
        &self,
        id: &str,
        review: TemplateReview,
    ) -> Result<TemplateView, EmulatorError> {
        review.check()?;
        if review.delay_ms == 0 {
            return self.apply_review(id, &review);
        }
        let view = self
            .template(id)
            .ok_or_else(|| EmulatorError::UnknownTemplate(id.to_owned()))?;
        let id = id.to_owned();
        self.after(Duration::from_millis(review.delay_ms), move |state| {
            if let Err(error) = state.apply_review(&id, &review) {
                tracing::debug!(%error, "a template was deleted before its review");
            }
        });
        Ok(view)
    }

    /// Sets the status and announces it with a `message_template_status_update`.
    fn apply_review(
        &self,
        id: &str,
        review: &TemplateReview,
    ) -> Result<TemplateView, EmulatorError> {
        let mut world = self.world();
        let template = world
            .templates
            .get_mut(id)
            .ok_or_else(|| EmulatorError::UnknownTemplate(id.to_owned()))?;
        template.status = review.status;
        template.rejected_reason = review.rejected_reason();
        let view = template.view();
        let rejection = (review.status == TemplateStatus::Rejected)
            .then(|| templates::rejection_info(&view.rejected_reason));
        let body = payloads::template_status_webhook(
            &view.waba_id,
            payloads::unix_now(),
            &template_ref(&view),
            view.status.as_str(),
            &view.rejected_reason,
            view.category.as_str(),
            rejection,
        );
        self.deliver_to_account(world, &view.waba_id, &body)?;
        Ok(view)
    }

    /// Sets the quality score and announces it with a `message_template_quality_update`.
    pub fn update_template_quality(
        &self,
        id: &str,
        score: QualityScore,
    ) -> Result<TemplateView, EmulatorError> {
        let mut world = self.world();
        let template = world
            .templates
            .get_mut(id)
            .ok_or_else(|| EmulatorError::UnknownTemplate(id.to_owned()))?;
        let previous = template.quality.score;
        let now = payloads::unix_now();
        template.quality = TemplateQuality { score, date: now };
        let view = template.view();
        let body = payloads::template_quality_webhook(
            &view.waba_id,
            now,
            &template_ref(&view),
            previous.as_str(),
            score.as_str(),
        );
        self.deliver_to_account(world, &view.waba_id, &body)?;
        Ok(view)
    }

    /// Sets the category and announces it with a `template_category_update`.
    pub fn update_template_category(
        &self,
        id: &str,
        category: TemplateCategory,
    ) -> Result<TemplateView, EmulatorError> {
        let mut world = self.world();
        let template = world
            .templates
            .get_mut(id)
            .ok_or_else(|| EmulatorError::UnknownTemplate(id.to_owned()))?;
        let previous = template.category;
        template.category = category;
        let view = template.view();
        let body = payloads::template_category_webhook(
            &view.waba_id,
            payloads::unix_now(),
            &template_ref(&view),
            previous.as_str(),
            category.as_str(),
        );
        self.deliver_to_account(world, &view.waba_id, &body)?;
        Ok(view)
    }

    /// Queues an account-level webhook once for each distinct webhook of the account's numbers (a
    /// URL and the app secret that signs for it), as Meta sends it once to each subscribed app.
    /// Numbers without a URL share one delivery that waits for one.
    fn deliver_to_account(
        &self,
        mut world: std::sync::MutexGuard<'_, World>,
        waba_id: &str,
        body: &Value,
    ) -> Result<Vec<DeliveryId>, EmulatorError> {
        let body: Bytes = serialize(body)?;
        let mut targets: Vec<(Option<String>, String, String)> = Vec::new();
        for number in world
            .phone_numbers
            .values()
            .filter(|n| n.waba_id == waba_id)
        {
            let url = number.webhook_url.as_ref().map(ToString::to_string);
            let secret = number.app_secret.expose_secret().to_owned();
            if !targets.iter().any(|(u, s, _)| *u == url && *s == secret) {
                targets.push((url, secret, number.id.clone()));
            }
        }
        let now = Instant::now();
        let mut ids = Vec::with_capacity(targets.len());
        for (_, _, phone_number_id) in &targets {
            ids.push(self.enqueue_locked(&mut world, phone_number_id, body.clone(), now)?);
        }
        drop(world);
        if !ids.is_empty() {
            self.after_enqueue();
        }
        Ok(ids)
    }
}

fn template_ref(view: &TemplateView) -> TemplateRef<'_> {
    TemplateRef {
        id: &view.id,
        name: &view.name,
        language: &view.language,
    }
}
