//! What a send refers to beyond its own body, checked against what the emulator holds, as Meta
//! checks it at send time: the account's template (132001, 132015, 132016, 132000, 132012) and
//! media sent by id, which must be the sending number's (131053).

use cloudapi::send::{Media, OutboundContent};

use super::super::GraphError;
use crate::payloads::GraphErrorBody;
use crate::state::{SentTemplate, World};
use crate::templates::fit::{self, TemplateRefusal};

impl From<TemplateRefusal> for GraphError {
    fn from(refusal: TemplateRefusal) -> Self {
        let body = match refusal {
            TemplateRefusal::DoesNotExist(details) => {
                GraphErrorBody::template_does_not_exist(&details)
            }
            TemplateRefusal::Paused(details) => GraphErrorBody::template_paused(&details),
            TemplateRefusal::Disabled(details) => GraphErrorBody::template_disabled(&details),
            TemplateRefusal::ParameterCount(details) => {
                GraphErrorBody::template_parameter_count(&details)
            }
            TemplateRefusal::ParameterFormat(details) => {
                GraphErrorBody::template_parameter_format(&details)
            }
        };
        GraphError::new(axum::http::StatusCode::BAD_REQUEST, body)
    }
}

/// Checks the send's references for `phone_number_id`; the stored template a template send uses.
pub(super) fn check_references(
    world: &World,
    phone_number_id: &str,
    content: &OutboundContent,
) -> Result<Option<SentTemplate>, GraphError> {
    let template = match content {
        OutboundContent::Template(sent) => {
            let waba_id = world
                .phone_numbers
                .get(phone_number_id)
                .map(|n| n.waba_id.as_str())
                .unwrap_or_default();
            let stored = world
                .templates
                .find(waba_id, &sent.name, &sent.language.code)
                .ok_or_else(|| fit::does_not_exist(&sent.name, &sent.language.code))?;
            fit::check(stored, sent)?;
            Some(SentTemplate {
                id: stored.id.clone(),
                category: stored.category.pricing(),
            })
        }
        _ => None,
    };
    for (place, id) in media_ids(content) {
        let owned = world
            .media
            .get(id)
            .is_some_and(|m| m.phone_number_id == phone_number_id);
        if !owned {
            return Err(GraphError::media_upload_error(format!(
                "Param {place}['id'] is not a valid media id: {id} is not media of this phone number. Upload the file to this number first."
            )));
        }
    }
    Ok(template)
}

/// The media a send names by id, with where it names it.
fn media_ids(content: &OutboundContent) -> Vec<(String, &str)> {
    fn by_id<'c>(place: &str, media: Option<&'c Media>, found: &mut Vec<(String, &'c str)>) {
        if let Some(id) = media.and_then(|m| m.id.as_deref()) {
            found.push((place.to_owned(), id));
        }
    }
    let mut found = Vec::new();
    match content {
        OutboundContent::Image(media) => by_id("image", Some(media), &mut found),
        OutboundContent::Video(media) => by_id("video", Some(media), &mut found),
        OutboundContent::Audio(media) => by_id("audio", Some(media), &mut found),
        OutboundContent::Document(media) => by_id("document", Some(media), &mut found),
        OutboundContent::Sticker(media) => by_id("sticker", Some(media), &mut found),
        OutboundContent::Interactive(interactive) => {
            if let Some(header) = &interactive.header {
                by_id(
                    "interactive['header']['image']",
                    header.image.as_ref(),
                    &mut found,
                );
                by_id(
                    "interactive['header']['video']",
                    header.video.as_ref(),
                    &mut found,
                );
                by_id(
                    "interactive['header']['document']",
                    header.document.as_ref(),
                    &mut found,
                );
            }
        }
        OutboundContent::Template(template) => {
            for component in template.components.iter().flatten() {
                for parameter in component.parameters.iter().flatten() {
                    let place = format!("template['components'][{}]", component.kind);
                    by_id(
                        &format!("{place}['image']"),
                        parameter.image.as_ref(),
                        &mut found,
                    );
                    by_id(
                        &format!("{place}['video']"),
                        parameter.video.as_ref(),
                        &mut found,
                    );
                    by_id(
                        &format!("{place}['document']"),
                        parameter.document.as_ref(),
                        &mut found,
                    );
                }
            }
        }
        _ => {}
    }
    found
}
