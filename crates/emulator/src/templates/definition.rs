//! What a template is made of, parsed from what callers submit: the checks Meta makes when a
//! template is created (name, language, category, parameter format, a body among the components)
//! and the normalisation to Meta's list form (upper-case `type`, `format` and button `type`).

use serde_json::{Map, Value};

use super::{ParameterFormat, TemplateCategory};
use crate::error::InputError;

/// Meta's longest template name.
const MAX_NAME: usize = 512;
/// Language codes are like `en`, `en_US`, `zh_HK`, `rw_RW`.
const MAX_LANGUAGE: usize = 15;

/// The parts of a template its author chooses, checked and normalised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Definition {
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    pub parameter_format: ParameterFormat,
    pub components: Vec<Value>,
    pub sub_category: Option<String>,
}

impl Definition {
    pub fn parse(
        name: &str,
        language: &str,
        category: &str,
        parameter_format: Option<&str>,
        components: Vec<Value>,
    ) -> Result<Self, InputError> {
        Ok(Self {
            name: parse_name(name)?,
            language: parse_language(language)?,
            category: TemplateCategory::parse("category", category)?,
            parameter_format: parameter_format
                .map(|f| ParameterFormat::parse("parameter_format", f))
                .transpose()?
                .unwrap_or(ParameterFormat::Positional),
            components: normalise_components(components)?,
            sub_category: None,
        })
    }

    /// A Graph create body: `{name, language, category, parameter_format?, components, ...}`.
    /// Keys Meta takes that the emulator does not model (`allow_category_change`,
    /// `message_send_ttl_seconds`...) are accepted and ignored.
    pub fn from_create_body(body: &Map<String, Value>) -> Result<Self, InputError> {
        let text = |key: &str| -> Result<&str, InputError> {
            match body.get(key) {
                Some(Value::String(text)) => Ok(text),
                Some(_) => Err(InputError::new(key, "must be a string")),
                None => Err(InputError::new(key, "is required")),
            }
        };
        let parameter_format = match body.get("parameter_format") {
            None | Some(Value::Null) => None,
            Some(Value::String(format)) => Some(format.as_str()),
            Some(_) => {
                return Err(InputError::new(
                    "parameter_format",
                    "must be \"named\" or \"positional\"",
                ));
            }
        };
        let components = match body.get("components") {
            Some(Value::Array(components)) => components.clone(),
            Some(_) => {
                return Err(InputError::new(
                    "components",
                    "must be an array of components",
                ));
            }
            None => return Err(InputError::new("components", "is required")),
        };
        if let Some(allow) = body.get("allow_category_change")
            && !allow.is_boolean()
        {
            return Err(InputError::new(
                "allow_category_change",
                "must be a boolean",
            ));
        }
        let mut definition = Self::parse(
            text("name")?,
            text("language")?,
            text("category")?,
            parameter_format,
            components,
        )?;
        definition.sub_category = match body.get("sub_category") {
            None | Some(Value::Null) => None,
            Some(Value::String(sub)) => Some(sub.trim().to_ascii_uppercase()),
            Some(_) => return Err(InputError::new("sub_category", "must be a string")),
        };
        Ok(definition)
    }
}

/// `^[a-z0-9_]{1,512}$`, as Meta requires.
pub(crate) fn parse_name(name: &str) -> Result<String, InputError> {
    let fits = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !fits {
        return Err(InputError::new(
            "name",
            format!(
                "must be 1 to {MAX_NAME} characters of lower-case letters, digits and underscores, e.g. \"order_update\""
            ),
        ));
    }
    Ok(name.to_owned())
}

/// A language code such as `en_US` or `he`: letters with an optional `_` region.
fn parse_language(language: &str) -> Result<String, InputError> {
    let language = language.trim();
    let fits = (2..=MAX_LANGUAGE).contains(&language.len())
        && language
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_');
    if !fits {
        return Err(InputError::new(
            "language",
            "must be a template language code, e.g. \"en_US\" or \"he\"",
        ));
    }
    Ok(language.to_owned())
}

/// Components in Meta's list form, with exactly what Meta requires of their set: objects with a
/// `type`, each type at most once, and a `BODY`.
fn normalise_components(components: Vec<Value>) -> Result<Vec<Value>, InputError> {
    let mut seen: Vec<String> = Vec::new();
    let mut normalised = Vec::with_capacity(components.len());
    for (index, component) in components.into_iter().enumerate() {
        let field = format!("components[{index}]");
        let Value::Object(mut component) = component else {
            return Err(InputError::new(field, "must be an object with a type"));
        };
        let kind = upper_case(&mut component, "type").ok_or_else(|| {
            InputError::new(
                format!("{field}.type"),
                "is required: HEADER, BODY, FOOTER or BUTTONS",
            )
        })?;
        if seen.contains(&kind) {
            return Err(InputError::new(
                format!("{field}.type"),
                format!("{kind} is given twice; a template has at most one of each component"),
            ));
        }
        upper_case(&mut component, "format");
        if let Some(Value::Array(buttons)) = component.get_mut("buttons") {
            for button in buttons.iter_mut() {
                if let Value::Object(button) = button {
                    upper_case(button, "type");
                }
            }
        }
        seen.push(kind);
        normalised.push(Value::Object(component));
    }
    if !seen.iter().any(|kind| kind == "BODY") {
        return Err(InputError::new(
            "components",
            "must include a BODY component with the template's text",
        ));
    }
    Ok(normalised)
}

/// Upper-cases a string field in place and returns it; `None` when it is missing or not a string.
fn upper_case(object: &mut Map<String, Value>, key: &str) -> Option<String> {
    let Some(Value::String(text)) = object.get_mut(key) else {
        return None;
    };
    *text = text.trim().to_ascii_uppercase();
    Some(text.clone())
}

/// The variables of a text, in order of first appearance, each once: `1`, `2` for `{{1}} {{2}}`,
/// `first_name` for `{{first_name}}`. Braces around anything else are not variables.
pub(crate) fn variables(text: &str) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = after[..end].trim();
        let is_variable = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if is_variable && !found.contains(&name) {
            found.push(name);
        }
        rest = &after[end + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn example(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn metas_create_example_parses_into_the_list_form() {
        let body = example(include_str!(
            "../../tests/api/fixtures/template_create_request.json"
        ));
        let definition = Definition::from_create_body(&body);
        let Ok(definition) = definition else {
            panic!("Meta's example is valid: {definition:?}");
        };
        assert_eq!(definition.name, "reservation_confirmation");
        assert_eq!(definition.category, TemplateCategory::Utility);
        assert_eq!(definition.parameter_format, ParameterFormat::Named);
        let listed = example(include_str!(
            "../../tests/api/fixtures/templates_list_response.json"
        ));
        let types: Vec<&Value> = definition.components.iter().map(|c| &c["type"]).collect();
        assert_eq!(types, ["HEADER", "BODY", "FOOTER", "BUTTONS"]);
        assert_eq!(definition.components[0]["format"], "IMAGE");
        let button_types: Vec<&Value> = definition.components[3]["buttons"]
            .as_array()
            .map(|b| b.iter().map(|b| &b["type"]).collect())
            .unwrap_or_default();
        let listed_button_types: Vec<&Value> = listed["data"][0]["components"][3]["buttons"]
            .as_array()
            .map(|b| b.iter().map(|b| &b["type"]).collect())
            .unwrap_or_default();
        assert_eq!(button_types, listed_button_types);
    }

    #[test]
    fn each_of_metas_checks_names_its_field() {
        let body = |patch: Value| {
            let mut body = json!({
                "name": "order_update", "language": "en_US", "category": "utility",
                "components": [{"type": "body", "text": "Hi {{1}}"}],
            });
            if let (Value::Object(body), Value::Object(patch)) = (&mut body, patch) {
                body.extend(patch);
            }
            match body {
                Value::Object(map) => map,
                _ => Map::new(),
            }
        };
        assert!(Definition::from_create_body(&body(json!({}))).is_ok());
        let cases = [
            (json!({"name": "Order Update"}), "name"),
            (json!({"name": "x".repeat(513)}), "name"),
            (json!({"language": ""}), "language"),
            (json!({"category": "service"}), "category"),
            (json!({"parameter_format": "numbered"}), "parameter_format"),
            (
                json!({"components": [{"type": "header", "format": "text", "text": "Hi"}]}),
                "components",
            ),
            (
                json!({"components": [{"text": "no type"}]}),
                "components[0].type",
            ),
            (
                json!({"components": [{"type": "body", "text": "a"}, {"type": "BODY", "text": "b"}]}),
                "components[1].type",
            ),
            (json!({"components": "body"}), "components"),
            (
                json!({"allow_category_change": "yes"}),
                "allow_category_change",
            ),
        ];
        for (patch, field) in cases {
            let error = Definition::from_create_body(&body(patch.clone())).err();
            assert_eq!(error.map(|e| e.field), Some(field.to_owned()), "{patch}");
        }
    }

    #[test]
    fn variables_are_found_once_each_in_order() {
        assert_eq!(variables("Hi {{1}}, your {{2}} is {{1}}"), ["1", "2"]);
        assert_eq!(
            variables("For {{number_of_guests}} on {{ day }}"),
            ["number_of_guests", "day"]
        );
        assert!(variables("No {{Variables}} {{ }} here {{1").is_empty());
        assert!(variables("").is_empty());
    }
}
