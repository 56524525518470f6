//! Message templates as wagate checks and shows them: a new definition against Meta's rules
//! (`definition`), a send against the stored template (`fit`), and what the customer will see
//! (`render`), all built on finding a text's variables (`placeholders`).
//!
//! Everything here is pure: it reads JSON and a stored template and never touches the store or
//! the network, so the API, the dashboard and the sender can share it.

use cloudapi::templates::{TemplateButton, TemplateDefinitionComponent};
use serde_json::Value;

pub mod definition;
pub mod fit;
pub mod placeholders;
pub mod render;
pub mod sync;

/// How a template writes its variables: `{{1}}` or `{{first_name}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterFormat {
    Positional,
    Named,
}

impl ParameterFormat {
    /// `named` or `positional`, in any case and with spaces around; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("named") {
            Some(Self::Named)
        } else if text.eq_ignore_ascii_case("positional") {
            Some(Self::Positional)
        } else {
            None
        }
    }

    /// As Meta lists it: `NAMED` or `POSITIONAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positional => "POSITIONAL",
            Self::Named => "NAMED",
        }
    }
}

/// A stored template, as the send check and the preview need it.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: Option<String>,
    /// `Positional` when nothing (or nothing readable) was stored, as Meta defaults.
    pub parameter_format: ParameterFormat,
    pub components: Vec<TemplateDefinitionComponent>,
}

impl TemplateSpec {
    /// From stored columns: components as JSON text (Meta's list form), parameter_format text or None.
    /// Empty text or `null` stands for no components (a template known only from a webhook).
    pub fn from_stored(
        name: &str,
        language: &str,
        status: &str,
        category: Option<&str>,
        parameter_format: Option<&str>,
        components_json: &str,
    ) -> Result<Self, serde_json::Error> {
        let components = if components_json.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str::<Option<Vec<TemplateDefinitionComponent>>>(components_json)?
                .unwrap_or_default()
        };
        Ok(Self {
            name: name.to_owned(),
            language: language.to_owned(),
            status: status.to_owned(),
            category: category.map(str::to_owned),
            parameter_format: parameter_format
                .and_then(ParameterFormat::parse)
                .unwrap_or(ParameterFormat::Positional),
            components,
        })
    }

    /// The first component of a type (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`), in any case.
    pub fn component(&self, kind: &str) -> Option<&TemplateDefinitionComponent> {
        self.components
            .iter()
            .find(|component| component.kind.eq_ignore_ascii_case(kind))
    }

    pub fn header(&self) -> Option<&TemplateDefinitionComponent> {
        self.component("HEADER")
    }

    pub fn body(&self) -> Option<&TemplateDefinitionComponent> {
        self.component("BODY")
    }

    pub fn footer(&self) -> Option<&TemplateDefinitionComponent> {
        self.component("FOOTER")
    }

    /// The buttons in their order; a send names them by this index.
    pub fn buttons(&self) -> &[TemplateButton] {
        self.component("BUTTONS")
            .and_then(|component| component.buttons.as_deref())
            .unwrap_or_default()
    }

    /// The header's format in upper case (`TEXT` when a header gives none).
    pub fn header_format(&self) -> Option<String> {
        self.header().map(|header| {
            header
                .format
                .as_deref()
                .unwrap_or("TEXT")
                .to_ascii_uppercase()
        })
    }

    /// Every input a send of this template needs, in display order (for the dashboard's picker and the preview).
    pub fn inputs(&self) -> Vec<TemplateInput> {
        let mut inputs = Vec::new();
        if let Some(header) = self.header() {
            let format = self.header_format().unwrap_or_default();
            match format.as_str() {
                "TEXT" => {
                    let text = header.text.as_deref().unwrap_or_default();
                    for name in placeholders::distinct_names(text) {
                        inputs.push(TemplateInput {
                            key: format!("header.{name}"),
                            component: "header",
                            label: placeholders::written(&name),
                            example: text_example(header, "header", &name),
                            kind: InputKind::Text,
                        });
                    }
                }
                "IMAGE" | "VIDEO" | "DOCUMENT" => {
                    let media = media_name(&format);
                    let example = header
                        .example
                        .as_ref()
                        .and_then(|example| example.get("header_handle"))
                        .and_then(|handles| handles.get(0))
                        .and_then(Value::as_str)
                        .filter(|handle| handle.starts_with("https://"))
                        .map(str::to_owned);
                    inputs.push(TemplateInput {
                        key: format!("header.{media}"),
                        component: "header",
                        label: format!("Header {media} link"),
                        example,
                        kind: InputKind::MediaLink(media),
                    });
                }
                "LOCATION" => inputs.push(TemplateInput {
                    key: "header.location".to_owned(),
                    component: "header",
                    label: "Header location".to_owned(),
                    example: None,
                    kind: InputKind::Location,
                }),
                _ => {}
            }
        }
        if let Some(body) = self.body() {
            let text = body.text.as_deref().unwrap_or_default();
            for name in placeholders::distinct_names(text) {
                inputs.push(TemplateInput {
                    key: format!("body.{name}"),
                    component: "body",
                    label: placeholders::written(&name),
                    example: text_example(body, "body", &name),
                    kind: InputKind::Text,
                });
            }
        }
        for (index, button) in self.buttons().iter().enumerate() {
            let label_of = |what: &str| match button.text.as_deref().filter(|t| !t.is_empty()) {
                Some(text) => format!("{what} of “{text}”"),
                None => what.to_owned(),
            };
            match button.kind.to_ascii_uppercase().as_str() {
                "URL" | "OTP" => {
                    let url = button.url.as_deref().unwrap_or_default();
                    for placeholder in placeholders::find(url) {
                        inputs.push(TemplateInput {
                            key: format!("button.{index}.{}", placeholder.name),
                            component: "button",
                            label: label_of("URL suffix"),
                            example: url_suffix_example(button, &url[..placeholder.start]),
                            kind: InputKind::UrlSuffix,
                        });
                    }
                }
                "COPY_CODE" => inputs.push(TemplateInput {
                    key: format!("button.{index}.coupon_code"),
                    component: "button",
                    label: label_of("Coupon code"),
                    example: button
                        .extra
                        .get("example")
                        .and_then(first_string)
                        .map(str::to_owned),
                    kind: InputKind::CouponCode,
                }),
                _ => {}
            }
        }
        inputs
    }
}

/// One value a sender fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInput {
    /// Stable key used by forms and by `render::components_from_inputs`: "header.1", "header.name",
    /// "header.image" (also ".video", ".document", ".location"), "body.1", "body.first_name",
    /// "button.0.1" (URL button suffix at index 0), "button.2.coupon_code".
    pub key: String,
    /// "header" | "body" | "button"
    pub component: &'static str,
    /// "{{1}}" / "{{first_name}}" / "Header image link" / "URL suffix of “Track order”"
    pub label: String,
    /// From the template's example values, when present.
    pub example: Option<String>,
    pub kind: InputKind,
}

/// What an input's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Text put in place of a variable.
    Text,
    /// A public https link (or an uploaded media id) for a media header: "image", "video" or "document".
    MediaLink(&'static str),
    /// A place for a location header, written `latitude, longitude` and optionally
    /// `, name, address` after it (`37.44, -122.16, Philz Coffee, 101 Forest Ave`).
    Location,
    /// The end of a URL button's link, put in place of its variable.
    UrlSuffix,
    /// The code a copy-code button copies.
    CouponCode,
}

/// The lower-case media name of a header format; `image` for anything unknown.
pub(crate) fn media_name(format: &str) -> &'static str {
    match format.to_ascii_uppercase().as_str() {
        "VIDEO" => "video",
        "DOCUMENT" => "document",
        _ => "image",
    }
}

/// A string, or the first string of an array (Meta writes examples both ways).
pub(crate) fn first_string(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) => Some(text),
        Value::Array(items) => items.first().and_then(Value::as_str),
        _ => None,
    }
}

/// The example value of a header or body variable, named or positional.
fn text_example(component: &TemplateDefinitionComponent, part: &str, name: &str) -> Option<String> {
    let example = component.example.as_ref()?;
    let value = match name.parse::<usize>() {
        Ok(position) if position >= 1 => {
            let values = example.get(format!("{part}_text"))?;
            match part {
                // `header_text` is one list; `body_text` is a list holding one list.
                "header" => values.get(position - 1),
                _ => values.get(0).and_then(|row| row.get(position - 1)),
            }
        }
        _ => example
            .get(format!("{part}_text_named_params"))?
            .as_array()?
            .iter()
            .find(|param| param.get("param_name").and_then(Value::as_str) == Some(name))
            .and_then(|param| param.get("example")),
    }?;
    value.as_str().map(str::to_owned)
}

/// The example of a URL button's variable: its full example URL less the fixed start, or the
/// example as given when it does not start that way.
fn url_suffix_example(button: &TemplateButton, prefix: &str) -> Option<String> {
    let example = first_string(button.extra.get("example")?)?;
    Some(example.strip_prefix(prefix).unwrap_or(example).to_owned())
}

#[cfg(test)]
pub(crate) mod testdata {
    use std::path::PathBuf;

    use serde_json::Value;

    use super::TemplateSpec;

    /// A file of Meta's examples, parsed.
    pub fn meta_example(file: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/meta-examples")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// A template of `templates_list_response.json` as wagate stores it.
    pub fn listed_spec(name: &str) -> TemplateSpec {
        let list = meta_example("templates_list_response.json");
        let template = list["data"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("{name} is not listed"))
            .clone();
        TemplateSpec::from_stored(
            name,
            template["language"].as_str().unwrap(),
            template["status"].as_str().unwrap(),
            template["category"].as_str(),
            template["parameter_format"].as_str(),
            &template["components"].to_string(),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::listed_spec;
    use super::*;

    #[test]
    fn a_parameter_format_is_read_in_any_case_and_written_in_upper_case() {
        assert_eq!(
            ParameterFormat::parse("named"),
            Some(ParameterFormat::Named)
        );
        assert_eq!(
            ParameterFormat::parse(" NAMED "),
            Some(ParameterFormat::Named)
        );
        assert_eq!(
            ParameterFormat::parse("Positional"),
            Some(ParameterFormat::Positional)
        );
        assert_eq!(ParameterFormat::parse("numbered"), None);
        assert_eq!(ParameterFormat::Named.as_str(), "NAMED");
        assert_eq!(ParameterFormat::Positional.as_str(), "POSITIONAL");
    }

    #[test]
    fn a_stored_template_without_a_format_or_components_is_positional_and_empty() {
        for stored in ["", "null", "[]"] {
            let spec = TemplateSpec::from_stored("a", "en", "PENDING", None, None, stored).unwrap();
            assert_eq!(spec.parameter_format, ParameterFormat::Positional);
            assert!(spec.components.is_empty());
            assert!(spec.inputs().is_empty());
        }
        assert!(TemplateSpec::from_stored("a", "en", "PENDING", None, None, "{").is_err());
    }

    #[test]
    fn inputs_of_a_named_template_list_the_header_and_body_variables_with_examples() {
        let spec = listed_spec("reservation_confirmation");
        assert_eq!(spec.parameter_format, ParameterFormat::Named);
        let inputs = spec.inputs();
        let keys: Vec<&str> = inputs.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "header.image",
                "body.number_of_guests",
                "body.day",
                "body.date",
                "body.time"
            ]
        );
        assert_eq!(inputs[0].kind, InputKind::MediaLink("image"));
        assert_eq!(inputs[0].label, "Header image link");
        assert_eq!(inputs[1].label, "{{number_of_guests}}");
        assert_eq!(inputs[1].example.as_deref(), Some("4"));
        assert_eq!(inputs[3].example.as_deref(), Some("August 30th, 2025"));
    }

    #[test]
    fn inputs_of_a_positional_template_follow_the_numbers_and_their_examples() {
        let spec = listed_spec("coupon_expiration_reminder_number_vars");
        let inputs = spec.inputs();
        let keys: Vec<&str> = inputs.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["header.1", "body.1", "body.2"]);
        assert_eq!(inputs[0].example.as_deref(), Some("Pablo"));
        assert_eq!(inputs[2].example.as_deref(), Some("10"));
        assert!(inputs.iter().all(|i| i.kind == InputKind::Text));
    }

    #[test]
    fn url_and_copy_code_buttons_ask_for_their_suffix_and_code() {
        let components = serde_json::json!([
            {"type": "HEADER", "format": "LOCATION"},
            {"type": "BODY", "text": "Hello"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Track order", "url": "https://example.com/t/{{1}}",
                 "example": ["https://example.com/t/A123"]},
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "COPY_CODE", "example": "SAVE10"},
            ]},
        ]);
        let spec =
            TemplateSpec::from_stored("t", "en", "APPROVED", None, None, &components.to_string())
                .unwrap();
        let inputs = spec.inputs();
        let keys: Vec<&str> = inputs.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            ["header.location", "button.0.1", "button.2.coupon_code"]
        );
        assert_eq!(inputs[0].kind, InputKind::Location);
        assert_eq!(inputs[1].label, "URL suffix of “Track order”");
        assert_eq!(inputs[1].example.as_deref(), Some("A123"));
        assert_eq!(inputs[1].kind, InputKind::UrlSuffix);
        assert_eq!(inputs[2].example.as_deref(), Some("SAVE10"));
        assert_eq!(inputs[2].kind, InputKind::CouponCode);
    }
}
