//! Whether a send's `template` object fits the stored template it names, checked as Meta checks it
//! at send time: the template must exist in that language and be approved (132001, 132015,
//! 132016), and the parameters must match its components in number or names (132000) and in type
//! (132012).

use cloudapi::send::{Parameter, Template as SentTemplate, TemplateComponent};
use serde_json::Value;

use super::definition::variables;
use super::{ParameterFormat, Template, TemplateStatus};

/// Why a template send is refused, before it becomes Meta's error envelope; each holds `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateRefusal {
    /// 132001: no such template in that language, or it is not approved (pending, rejected...).
    DoesNotExist(String),
    /// 132015: paused for low quality.
    Paused(String),
    /// 132016: disabled for good.
    Disabled(String),
    /// 132000: the parameters do not match the components in number or names.
    ParameterCount(String),
    /// 132012: a parameter of the wrong type for its place.
    ParameterFormat(String),
}

/// 132001 for a name or language the account does not have.
pub(crate) fn does_not_exist(name: &str, language: &str) -> TemplateRefusal {
    TemplateRefusal::DoesNotExist(format!(
        "template name ({name}) does not exist in {language}"
    ))
}

/// Checks a send of `template` (the one its name and language found) against it.
pub(crate) fn check(template: &Template, sent: &SentTemplate) -> Result<(), TemplateRefusal> {
    match template.status {
        TemplateStatus::Approved => {}
        TemplateStatus::Paused => {
            return Err(TemplateRefusal::Paused(format!(
                "Template {} is paused due to low quality, so it cannot be sent in a template message.",
                template.name
            )));
        }
        TemplateStatus::Disabled => {
            return Err(TemplateRefusal::Disabled(format!(
                "Template {} has been paused too many times due to low quality and is now permanently disabled.",
                template.name
            )));
        }
        _ => return Err(does_not_exist(&template.name, &template.language)),
    }
    let sent_components = sent.components.as_deref().unwrap_or_default();
    check_header(template, parameters_of(sent_components, "header"))?;
    check_body(template, parameters_of(sent_components, "body"))?;
    check_buttons(template, sent_components)
}

/// The parameters of the send's component of this type; `None` when the send has no such component.
fn parameters_of<'s>(components: &'s [TemplateComponent], kind: &str) -> Option<&'s [Parameter]> {
    components
        .iter()
        .find(|c| c.kind.eq_ignore_ascii_case(kind))
        .map(|c| c.parameters.as_deref().unwrap_or_default())
}

fn count_mismatch(component: &str, given: usize, expected: usize) -> TemplateRefusal {
    TemplateRefusal::ParameterCount(format!(
        "{component}: number of localizable_params ({given}) does not match the expected number of params ({expected})"
    ))
}

fn check_header(template: &Template, sent: Option<&[Parameter]>) -> Result<(), TemplateRefusal> {
    let sent = sent.unwrap_or_default();
    let Some(header) = template.component("HEADER") else {
        return match sent.len() {
            0 => Ok(()),
            given => Err(count_mismatch("header", given, 0)),
        };
    };
    let format = header
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("TEXT");
    match format {
        "TEXT" => {
            let text = header.get("text").and_then(Value::as_str).unwrap_or("");
            check_text_parameters(template, "header", &variables(text), sent)
        }
        "IMAGE" | "VIDEO" | "DOCUMENT" | "LOCATION" => {
            let [parameter] = sent else {
                return Err(count_mismatch("header", sent.len(), 1));
            };
            let expected = format.to_ascii_lowercase();
            if !parameter.kind.eq_ignore_ascii_case(&expected) {
                return Err(TemplateRefusal::ParameterFormat(format!(
                    "header: Format mismatch, expected {format}, received {}",
                    parameter.kind.to_ascii_uppercase()
                )));
            }
            let has_object = match expected.as_str() {
                "image" => parameter.image.is_some(),
                "video" => parameter.video.is_some(),
                "document" => parameter.document.is_some(),
                _ => parameter
                    .extra
                    .get("location")
                    .is_some_and(Value::is_object),
            };
            if !has_object {
                return Err(TemplateRefusal::ParameterCount(format!(
                    "header: the {expected} parameter needs its {expected} object"
                )));
            }
            Ok(())
        }
        // Formats the emulator does not model (products and the like) take what they are given.
        _ => Ok(()),
    }
}

fn check_body(template: &Template, sent: Option<&[Parameter]>) -> Result<(), TemplateRefusal> {
    let text = template
        .component("BODY")
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    check_text_parameters(template, "body", &variables(text), sent.unwrap_or_default())
}

/// Text variables of a header or body: as many parameters as variables (positional), or one per
/// variable name (named), each a value type.
fn check_text_parameters(
    template: &Template,
    component: &str,
    expected: &[&str],
    sent: &[Parameter],
) -> Result<(), TemplateRefusal> {
    match template.parameter_format {
        ParameterFormat::Positional => {
            if sent.len() != expected.len() {
                return Err(count_mismatch(component, sent.len(), expected.len()));
            }
        }
        ParameterFormat::Named => {
            if sent.len() != expected.len() {
                return Err(count_mismatch(component, sent.len(), expected.len()));
            }
            let mut given: Vec<&str> = Vec::with_capacity(sent.len());
            for parameter in sent {
                let Some(name) = parameter.parameter_name.as_deref() else {
                    return Err(TemplateRefusal::ParameterCount(format!(
                        "{component}: every parameter of a named template needs a parameter_name"
                    )));
                };
                if !expected.contains(&name) {
                    return Err(TemplateRefusal::ParameterCount(format!(
                        "{component}: parameter_name {name} is not a parameter of this template (it has {})",
                        expected.join(", ")
                    )));
                }
                if given.contains(&name) {
                    return Err(TemplateRefusal::ParameterCount(format!(
                        "{component}: parameter_name {name} is given twice"
                    )));
                }
                given.push(name);
            }
        }
    }
    for (position, parameter) in (1..).zip(sent) {
        let kind = parameter.kind.to_ascii_lowercase();
        if !matches!(kind.as_str(), "text" | "currency" | "date_time") {
            return Err(TemplateRefusal::ParameterFormat(format!(
                "{component}: parameter {position} has type {kind}, but the {component} takes text"
            )));
        }
    }
    Ok(())
}

/// Button parameters: each names a button of the template by `index`, and a URL button whose URL
/// has a variable needs its one parameter.
fn check_buttons(template: &Template, sent: &[TemplateComponent]) -> Result<(), TemplateRefusal> {
    let buttons: &[Value] = template
        .component("BUTTONS")
        .and_then(|b| b.get("buttons"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let sent_buttons: Vec<&TemplateComponent> = sent
        .iter()
        .filter(|c| c.kind.eq_ignore_ascii_case("button"))
        .collect();
    for component in &sent_buttons {
        let index = component
            .index
            .as_ref()
            .and_then(cloudapi::shared::NumberOrString::as_u64)
            .and_then(|i| usize::try_from(i).ok());
        let Some(button) = index.and_then(|i| buttons.get(i)) else {
            return Err(TemplateRefusal::ParameterCount(format!(
                "button: index {} does not name one of the template's {} buttons",
                component
                    .index
                    .as_ref()
                    .map_or_else(|| "(missing)".to_owned(), ToString::to_string),
                buttons.len()
            )));
        };
        if url_variables(button) > 0 {
            let given = component.parameters.as_deref().map_or(0, <[_]>::len);
            if given != 1 {
                return Err(count_mismatch("button", given, 1));
            }
        }
    }
    for (index, button) in buttons.iter().enumerate() {
        let given = sent_buttons.iter().any(|c| {
            c.index
                .as_ref()
                .and_then(cloudapi::shared::NumberOrString::as_u64)
                == u64::try_from(index).ok()
        });
        if url_variables(button) > 0 && !given {
            return Err(TemplateRefusal::ParameterCount(format!(
                "button: the URL button at index {index} has a variable and needs a button component with its parameter"
            )));
        }
    }
    Ok(())
}

fn url_variables(button: &Value) -> usize {
    if button.get("type").and_then(Value::as_str) != Some("URL") {
        return 0;
    }
    variables(button.get("url").and_then(Value::as_str).unwrap_or("")).len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::definition::Definition;
    use super::super::{QualityScore, TemplateQuality};
    use super::*;

    fn template(format: ParameterFormat, components: Value) -> Template {
        let components = match components {
            Value::Array(components) => components,
            _ => Vec::new(),
        };
        let definition =
            Definition::parse("t", "en_US", "MARKETING", Some(format.as_str()), components);
        let Ok(definition) = definition else {
            panic!("a valid definition: {definition:?}");
        };
        Template {
            id: "1".into(),
            waba_id: "2".into(),
            name: definition.name,
            language: definition.language,
            category: definition.category,
            status: TemplateStatus::Approved,
            parameter_format: definition.parameter_format,
            components: definition.components,
            quality: TemplateQuality {
                score: QualityScore::Unknown,
                date: 0,
            },
            rejected_reason: "NONE".into(),
            sub_category: None,
        }
    }

    fn sent(value: Value) -> SentTemplate {
        let value = json!({"name": "t", "language": {"code": "en_US"}, "components": value});
        match serde_json::from_value(value) {
            Ok(sent) => sent,
            Err(error) => panic!("a send template: {error}"),
        }
    }

    fn positional() -> Template {
        template(
            ParameterFormat::Positional,
            json!([
                {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::a"]}},
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Stop"},
                ]},
            ]),
        )
    }

    fn image_header() -> Value {
        json!({"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/a.png"}}]})
    }

    fn body(texts: &[&str]) -> Value {
        let parameters: Vec<Value> = texts
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        json!({"type": "body", "parameters": parameters})
    }

    fn track_button() -> Value {
        json!({"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A1"}]})
    }

    #[test]
    fn a_send_with_every_parameter_fits() {
        let send = sent(json!([
            image_header(),
            body(&["Ana", "A1"]),
            track_button()
        ]));
        assert_eq!(check(&positional(), &send), Ok(()));
    }

    #[test]
    fn too_few_body_parameters_are_132000() {
        let send = sent(json!([image_header(), body(&["Ana"]), track_button()]));
        assert_eq!(
            check(&positional(), &send),
            Err(TemplateRefusal::ParameterCount(
                "body: number of localizable_params (1) does not match the expected number of params (2)".into()
            ))
        );
    }

    #[test]
    fn a_media_header_without_its_parameter_is_132000_and_of_another_type_132012() {
        let send = sent(json!([body(&["Ana", "A1"]), track_button()]));
        assert!(matches!(
            check(&positional(), &send),
            Err(TemplateRefusal::ParameterCount(_))
        ));
        let text_header = json!({"type": "header", "parameters": [{"type": "text", "text": "Hi"}]});
        let send = sent(json!([text_header, body(&["Ana", "A1"]), track_button()]));
        assert_eq!(
            check(&positional(), &send),
            Err(TemplateRefusal::ParameterFormat(
                "header: Format mismatch, expected IMAGE, received TEXT".into()
            ))
        );
    }

    #[test]
    fn a_url_button_with_a_variable_needs_its_parameter() {
        let send = sent(json!([image_header(), body(&["Ana", "A1"])]));
        assert!(matches!(
            check(&positional(), &send),
            Err(TemplateRefusal::ParameterCount(details)) if details.contains("index 0")
        ));
        let out_of_range =
            json!({"type": "button", "sub_type": "quick_reply", "index": 5, "parameters": []});
        let send = sent(json!([
            image_header(),
            body(&["Ana", "A1"]),
            track_button(),
            out_of_range
        ]));
        assert!(matches!(
            check(&positional(), &send),
            Err(TemplateRefusal::ParameterCount(_))
        ));
    }

    #[test]
    fn metas_named_example_fits_metas_listed_template() {
        let listed: Value = serde_json::from_str(include_str!(
            "../../tests/api/fixtures/templates_list_response.json"
        ))
        .unwrap_or_default();
        let named = template(
            ParameterFormat::Named,
            listed["data"][0]["components"].clone(),
        );
        let request: Value = serde_json::from_str(include_str!(
            "../../tests/api/fixtures/send_template_named_params_request.json"
        ))
        .unwrap_or_default();
        let send = sent(request["template"]["components"].clone());
        assert_eq!(check(&named, &send), Ok(()));

        let mut wrong_name = request["template"]["components"].clone();
        wrong_name[1]["parameters"][0]["parameter_name"] = "guests".into();
        assert!(matches!(
            check(&named, &sent(wrong_name)),
            Err(TemplateRefusal::ParameterCount(details)) if details.contains("guests")
        ));
    }

    #[test]
    fn currency_and_date_time_count_as_body_values() {
        let request: Value = serde_json::from_str(include_str!(
            "../../tests/api/fixtures/send_template_positional_with_quick_reply_payload_request.json"
        ))
        .unwrap_or_default();
        let three = template(
            ParameterFormat::Positional,
            json!([
                {"type": "header", "format": "image"},
                {"type": "body", "text": "{{1}} paid {{2}} on {{3}}."},
                {"type": "buttons", "buttons": [
                    {"type": "quick_reply", "text": "Yes"},
                    {"type": "quick_reply", "text": "No"},
                ]},
            ]),
        );
        assert_eq!(
            check(&three, &sent(request["template"]["components"].clone())),
            Ok(())
        );
    }

    #[test]
    fn only_approved_templates_can_be_sent() {
        let send = sent(json!([
            image_header(),
            body(&["Ana", "A1"]),
            track_button()
        ]));
        let with_status = |status| Template {
            status,
            ..positional()
        };
        assert!(matches!(
            check(&with_status(TemplateStatus::Paused), &send),
            Err(TemplateRefusal::Paused(_))
        ));
        assert!(matches!(
            check(&with_status(TemplateStatus::Disabled), &send),
            Err(TemplateRefusal::Disabled(_))
        ));
        for status in [TemplateStatus::Pending, TemplateStatus::Rejected] {
            assert!(matches!(
                check(&with_status(status), &send),
                Err(TemplateRefusal::DoesNotExist(_))
            ));
        }
    }
}
