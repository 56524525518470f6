//! What the customer will see when a template is sent with given parameters, for the dashboard's
//! preview and the conversation's copy of the message; and the other way round, the send
//! components built from a form's inputs.
//!
//! Rendering never fails: a variable without a value stays as written (`{{2}}`) and is listed in
//! `missing`, so a half-filled form still previews.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::placeholders;
use super::{TemplateSpec, media_name};

/// A template with its parameters in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub header: Option<RenderedHeader>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<RenderedButton>,
    /// Placeholders that had no value (left as written, e.g. "{{2}}"), as input keys ("body.2").
    /// A media or location header without its parameter is listed too ("header.image").
    pub missing: Vec<String>,
}

/// The top of the message.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderedHeader {
    Text(String),
    Media {
        /// "image", "video" or "document".
        format: String,
        link: Option<String>,
        id: Option<String>,
        filename: Option<String>,
    },
    Location {
        name: Option<String>,
        address: Option<String>,
        latitude: Option<f64>,
        longitude: Option<f64>,
    },
}

/// A button as the customer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedButton {
    /// The template's button type: "QUICK_REPLY", "URL", "PHONE_NUMBER", ...
    pub kind: String,
    pub text: String,
    /// The full address a URL button opens, its suffix in place.
    pub url: Option<String>,
    pub phone_number: Option<String>,
}

impl Rendered {
    pub fn to_json(&self) -> Value {
        let header = match &self.header {
            None => Value::Null,
            Some(RenderedHeader::Text(text)) => json!({"type": "text", "text": text}),
            Some(RenderedHeader::Media {
                format,
                link,
                id,
                filename,
            }) => json!({"type": format, "link": link, "id": id, "filename": filename}),
            Some(RenderedHeader::Location {
                name,
                address,
                latitude,
                longitude,
            }) => json!({
                "type": "location",
                "name": name,
                "address": address,
                "latitude": latitude,
                "longitude": longitude,
            }),
        };
        let buttons: Vec<Value> = self
            .buttons
            .iter()
            .map(|button| {
                json!({
                    "type": button.kind,
                    "text": button.text,
                    "url": button.url,
                    "phone_number": button.phone_number,
                })
            })
            .collect();
        json!({
            "header": header,
            "body": self.body,
            "footer": self.footer,
            "buttons": buttons,
            "missing": self.missing,
        })
    }

    /// The words of the message: a text header, the body and the footer, joined by blank lines.
    pub fn plain_text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if let Some(RenderedHeader::Text(text)) = &self.header
            && !text.is_empty()
        {
            parts.push(text);
        }
        if !self.body.is_empty() {
            parts.push(&self.body);
        }
        if let Some(footer) = self.footer.as_deref().filter(|footer| !footer.is_empty()) {
            parts.push(footer);
        }
        parts.join("\n\n")
    }
}

/// The template as the customer will see it with `send_components` (the send's `components`
/// array; the whole `template` object is taken too). `None` previews the bare template.
pub fn render(spec: &TemplateSpec, send_components: Option<&Value>) -> Rendered {
    let components: &[Value] = match send_components {
        Some(Value::Array(components)) => components,
        Some(Value::Object(template)) => template
            .get("components")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
        _ => &[],
    };
    let mut missing = Vec::new();
    let header = spec.header().and_then(|header| {
        let params = parameters_of(components, "header", None);
        let format = spec.header_format().unwrap_or_default();
        match format.as_str() {
            "TEXT" => {
                let text = header.text.as_deref().unwrap_or_default();
                Some(RenderedHeader::Text(fill(
                    text,
                    params,
                    "header",
                    &mut missing,
                )))
            }
            "IMAGE" | "VIDEO" | "DOCUMENT" => Some(media_header(&format, params, &mut missing)),
            "LOCATION" => Some(location_header(params, &mut missing)),
            _ => None,
        }
    });
    let body = spec
        .body()
        .and_then(|body| body.text.as_deref())
        .map(|text| {
            fill(
                text,
                parameters_of(components, "body", None),
                "body",
                &mut missing,
            )
        })
        .unwrap_or_default();
    let footer = spec.footer().and_then(|footer| {
        footer.text.clone().or_else(|| {
            footer
                .extra
                .get("code_expiration_minutes")
                .and_then(Value::as_u64)
                .map(|minutes| format!("This code expires in {minutes} minutes."))
        })
    });
    let buttons = spec
        .buttons()
        .iter()
        .enumerate()
        .map(|(index, button)| {
            let kind = button.kind.to_ascii_uppercase();
            let text = button
                .text
                .clone()
                .filter(|text| !text.is_empty())
                .unwrap_or_else(|| default_label(&kind).to_owned());
            let url = button.url.as_deref().map(|url| {
                let params = parameters_of(components, "button", Some(index));
                fill(url, params, &format!("button.{index}"), &mut missing)
            });
            RenderedButton {
                kind,
                text,
                url,
                phone_number: button.phone_number.clone(),
            }
        })
        .collect();
    Rendered {
        header,
        body,
        footer,
        buttons,
        missing,
    }
}

/// The label Meta shows on a button defined without one.
fn default_label(kind: &str) -> &'static str {
    match kind {
        "COPY_CODE" => "Copy offer code",
        "OTP" => "Copy code",
        "CATALOG" => "View catalog",
        "MPM" => "View items",
        _ => "",
    }
}

/// The parameters of the first send component of a type (and, for buttons, an index).
fn parameters_of<'a>(components: &'a [Value], kind: &str, index: Option<usize>) -> &'a [Value] {
    components
        .iter()
        .find(|component| {
            let same_type = component
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(kind));
            let same_index = index.is_none_or(|index| match component.get("index") {
                Some(Value::Number(n)) => n.as_u64() == Some(index as u64),
                Some(Value::String(s)) => s.trim().parse::<usize>().ok() == Some(index),
                _ => false,
            });
            same_type && same_index
        })
        .and_then(|component| component.get("parameters"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// What a parameter shows: its text, or the fallback of a currency or a date.
fn shown_value(parameter: &Value) -> Option<&str> {
    let kind = parameter
        .get("type")
        .and_then(Value::as_str)?
        .trim()
        .to_ascii_lowercase();
    match kind.as_str() {
        "currency" | "date_time" => parameter.get(&kind)?.get("fallback_value")?.as_str(),
        _ => parameter.get(&kind)?.as_str(),
    }
}

/// `text` with each variable replaced by its parameter's value: a variable takes the parameter
/// of its name when parameters are named, else `{{n}}` takes the n-th parameter and a named
/// variable the one at the place of its first appearance.
fn fill(text: &str, params: &[Value], prefix: &str, missing: &mut Vec<String>) -> String {
    let found = placeholders::find(text);
    let names = placeholders::distinct_names(text);
    let by_name = params.iter().any(|p| p.get("parameter_name").is_some());
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for placeholder in &found {
        out.push_str(&text[from..placeholder.start]);
        from = placeholder.end;
        let named_match = || {
            params.iter().find(|p| {
                p.get("parameter_name").and_then(Value::as_str) == Some(placeholder.name.as_str())
            })
        };
        let at_position = || {
            let position = usize::try_from(placeholder.position()?).ok()?;
            params.get(position.checked_sub(1)?)
        };
        let param = if by_name {
            named_match().or_else(at_position)
        } else if placeholder.is_positional() {
            at_position()
        } else {
            // Named variables sent without names: by the place of their first appearance.
            names
                .iter()
                .position(|name| *name == placeholder.name)
                .and_then(|index| params.get(index))
        };
        match param.and_then(shown_value) {
            Some(value) => out.push_str(value),
            None => {
                out.push_str(&placeholder.written());
                let key = format!("{prefix}.{}", placeholder.name);
                if !missing.contains(&key) {
                    missing.push(key);
                }
            }
        }
    }
    out.push_str(&text[from..]);
    out
}

fn media_header(format: &str, params: &[Value], missing: &mut Vec<String>) -> RenderedHeader {
    let media = media_name(format);
    let object = params
        .iter()
        .find(|p| p.get("type").and_then(Value::as_str) == Some(media))
        .and_then(|p| p.get(media));
    let field = |key: &str| {
        object
            .and_then(|object| object.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if object.is_none() {
        missing.push(format!("header.{media}"));
    }
    RenderedHeader::Media {
        format: media.to_owned(),
        link: field("link"),
        id: field("id"),
        filename: field("filename"),
    }
}

fn location_header(params: &[Value], missing: &mut Vec<String>) -> RenderedHeader {
    let object = params
        .iter()
        .find(|p| p.get("type").and_then(Value::as_str) == Some("location"))
        .and_then(|p| p.get("location"));
    if object.is_none() {
        missing.push("header.location".to_owned());
    }
    let text = |key: &str| {
        object
            .and_then(|object| object.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    // Meta's examples send coordinates as strings; webhooks carry numbers.
    let number = |key: &str| match object.and_then(|object| object.get(key)) {
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse().ok().filter(|n: &f64| n.is_finite()),
        _ => None,
    };
    RenderedHeader::Location {
        name: text("name"),
        address: text("address"),
        latitude: number("latitude"),
        longitude: number("longitude"),
    }
}

/// Builds Cloud API send components from input keys (see TemplateInput::key) to values; blank values are left out.
/// A component none of whose values were given is left out whole. A blank between positional
/// values is left out too, so the send then fails `fit::check_send` on its count, as it should.
pub fn components_from_inputs(spec: &TemplateSpec, inputs: &BTreeMap<String, String>) -> Value {
    let value_of = |key: &str| {
        inputs
            .get(key)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    };
    let text_parameter = |name: &str, value: &str| {
        let mut parameter = Map::new();
        parameter.insert("type".to_owned(), json!("text"));
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            parameter.insert("parameter_name".to_owned(), json!(name));
        }
        parameter.insert("text".to_owned(), json!(value));
        Value::Object(parameter)
    };
    let mut components = Vec::new();
    if let Some(header) = spec.header() {
        let format = spec.header_format().unwrap_or_default();
        let parameters: Vec<Value> = match format.as_str() {
            "TEXT" => placeholders::distinct_names(header.text.as_deref().unwrap_or_default())
                .iter()
                .filter_map(|name| {
                    value_of(&format!("header.{name}")).map(|value| text_parameter(name, value))
                })
                .collect(),
            "IMAGE" | "VIDEO" | "DOCUMENT" => {
                let media = media_name(&format);
                value_of(&format!("header.{media}"))
                    .map(|value| {
                        // Digits alone are an uploaded media id; anything else a link.
                        let source = if value.bytes().all(|b| b.is_ascii_digit()) {
                            json!({"id": value})
                        } else {
                            json!({"link": value})
                        };
                        json!({"type": media, media: source})
                    })
                    .into_iter()
                    .collect()
            }
            "LOCATION" => value_of("header.location")
                .and_then(parse_location)
                .map(|location| json!({"type": "location", "location": location}))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        if !parameters.is_empty() {
            components.push(json!({"type": "header", "parameters": parameters}));
        }
    }
    if let Some(text) = spec.body().and_then(|body| body.text.as_deref()) {
        let parameters: Vec<Value> = placeholders::distinct_names(text)
            .iter()
            .filter_map(|name| {
                value_of(&format!("body.{name}")).map(|value| text_parameter(name, value))
            })
            .collect();
        if !parameters.is_empty() {
            components.push(json!({"type": "body", "parameters": parameters}));
        }
    }
    for (index, button) in spec.buttons().iter().enumerate() {
        let parameter = match button.kind.to_ascii_uppercase().as_str() {
            "URL" | "OTP" => placeholders::find(button.url.as_deref().unwrap_or_default())
                .first()
                .and_then(|variable| {
                    value_of(&format!("button.{index}.{}", variable.name))
                        .map(|value| ("url", text_parameter(&variable.name, value)))
                }),
            "COPY_CODE" => value_of(&format!("button.{index}.coupon_code")).map(|value| {
                (
                    "copy_code",
                    json!({"type": "coupon_code", "coupon_code": value}),
                )
            }),
            _ => None,
        };
        if let Some((sub_type, parameter)) = parameter {
            components.push(json!({
                "type": "button",
                "sub_type": sub_type,
                "index": index.to_string(),
                "parameters": [parameter],
            }));
        }
    }
    Value::Array(components)
}

/// `latitude, longitude[, name[, address]]` as a send's location object; `None` unless both
/// coordinates are numbers on the globe.
fn parse_location(value: &str) -> Option<Value> {
    let mut parts = value.splitn(4, ',').map(str::trim);
    let latitude = parts.next()?;
    let longitude = parts.next()?;
    let on_globe = |text: &str, max: f64| {
        text.parse::<f64>()
            .ok()
            .is_some_and(|n| n.is_finite() && n.abs() <= max)
    };
    if !on_globe(latitude, 90.0) || !on_globe(longitude, 180.0) {
        return None;
    }
    let mut location = Map::new();
    location.insert("latitude".to_owned(), json!(latitude));
    location.insert("longitude".to_owned(), json!(longitude));
    if let Some(name) = parts.next().filter(|name| !name.is_empty()) {
        location.insert("name".to_owned(), json!(name));
    }
    if let Some(address) = parts.next().filter(|address| !address.is_empty()) {
        location.insert("address".to_owned(), json!(address));
    }
    Some(Value::Object(location))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::outbound::validate::validate;
    use crate::templates::fit::check_send;
    use crate::templates::testdata::{listed_spec, meta_example};

    fn spec(parameter_format: Option<&str>, components: Value) -> TemplateSpec {
        TemplateSpec::from_stored(
            "order_update",
            "en_US",
            "APPROVED",
            Some("UTILITY"),
            parameter_format,
            &components.to_string(),
        )
        .unwrap()
    }

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    /// The template object of a send with these components.
    fn template_send(spec: &TemplateSpec, components: Value) -> Value {
        json!({"name": spec.name, "language": {"code": spec.language}, "components": components})
    }

    fn full_positional() -> TemplateSpec {
        spec(
            None,
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"},
                {"type": "BODY", "text": "Order {{1}} costs {{2}}, due {{3}}."},
                {"type": "FOOTER", "text": "Thanks"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Track order", "url": "https://example.com/t/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550051310"},
                    {"type": "COPY_CODE", "example": "SAVE10"},
                ]},
            ]),
        )
    }

    #[test]
    fn a_positional_template_renders_its_values_currencies_dates_and_url() {
        let spec = full_positional();
        let components = json!([
            {"type": "header", "parameters": [{"type": "text", "text": "Ana"}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "A1"},
                {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}},
                {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}},
            ]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A1"}]},
        ]);
        let rendered = render(&spec, Some(&components));
        assert_eq!(
            rendered.header,
            Some(RenderedHeader::Text("Hi Ana".to_owned()))
        );
        assert_eq!(
            rendered.body,
            "Order A1 costs $100.99, due February 25, 1977."
        );
        assert_eq!(rendered.footer.as_deref(), Some("Thanks"));
        assert_eq!(
            rendered.buttons[0].url.as_deref(),
            Some("https://example.com/t/A1")
        );
        assert_eq!(rendered.buttons[1].text, "Stop");
        assert_eq!(
            rendered.buttons[2].phone_number.as_deref(),
            Some("+15550051310")
        );
        assert_eq!(rendered.buttons[3].text, "Copy offer code");
        assert!(rendered.missing.is_empty(), "{:?}", rendered.missing);
        assert_eq!(
            rendered.plain_text(),
            "Hi Ana\n\nOrder A1 costs $100.99, due February 25, 1977.\n\nThanks"
        );
    }

    #[test]
    fn missing_values_stay_as_written_and_are_listed_by_input_key() {
        let spec = full_positional();
        let components = json!([{"type": "body", "parameters": [{"type": "text", "text": "A1"}]}]);
        let rendered = render(&spec, Some(&components));
        assert_eq!(rendered.body, "Order A1 costs {{2}}, due {{3}}.");
        assert_eq!(
            rendered.buttons[0].url.as_deref(),
            Some("https://example.com/t/{{1}}")
        );
        assert_eq!(
            rendered.missing,
            ["header.1", "body.2", "body.3", "button.0.1"]
        );
        let bare = render(&spec, None);
        assert_eq!(bare.missing.len(), 5);
    }

    #[test]
    fn a_named_template_renders_each_value_by_its_name() {
        let spec = listed_spec("reservation_confirmation");
        let send = meta_example("send_template_named_params_request.json");
        let rendered = render(&spec, Some(&send["template"]));
        assert_eq!(
            rendered.header,
            Some(RenderedHeader::Media {
                format: "image".to_owned(),
                link: None,
                id: Some("2871834006348767".to_owned()),
                filename: None,
            })
        );
        assert_eq!(
            rendered.body,
            "*You're all set!*\n\nYour reservation for 4 at Lucky Shrub Eatery on Saturday, \
             August 30th, 2025, at 7:30 pm, is confirmed. See you then!"
        );
        assert!(rendered.missing.is_empty());
        let kinds: Vec<&str> = rendered.buttons.iter().map(|b| b.kind.as_str()).collect();
        assert_eq!(kinds, ["URL", "PHONE_NUMBER", "QUICK_REPLY"]);
        let json = rendered.to_json();
        assert_eq!(json["header"]["type"], "image");
        assert_eq!(
            json["buttons"][0]["url"],
            "https://www.luckyshrubeater.com/reservations"
        );
        assert!(rendered.plain_text().starts_with("*You're all set!*"));
        assert!(
            rendered
                .plain_text()
                .ends_with("\n\nLucky Shrub Eatery: The Luckiest Eatery in Town!")
        );
    }

    #[test]
    fn a_location_header_renders_its_place() {
        let spec = spec(
            None,
            json!([{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Here."}]),
        );
        let components = json!([{"type": "header", "parameters": [{"type": "location", "location":
            {"latitude": "37.44", "longitude": -122.16, "name": "Philz Coffee"}}]}]);
        let rendered = render(&spec, Some(&components));
        assert_eq!(
            rendered.header,
            Some(RenderedHeader::Location {
                name: Some("Philz Coffee".to_owned()),
                address: None,
                latitude: Some(37.44),
                longitude: Some(-122.16),
            })
        );
        assert_eq!(render(&spec, None).missing, ["header.location"]);
    }

    #[test]
    fn an_authentication_footer_without_text_renders_its_expiry() {
        let spec = spec(
            None,
            json!([{"type": "BODY"}, {"type": "FOOTER", "code_expiration_minutes": 5}]),
        );
        let rendered = render(&spec, None);
        assert_eq!(
            rendered.footer.as_deref(),
            Some("This code expires in 5 minutes.")
        );
        assert_eq!(rendered.body, "");
    }

    #[test]
    fn inputs_turned_into_components_fit_the_positional_template() {
        let spec = full_positional();
        let values = inputs(&[
            ("header.1", "Ana"),
            ("body.1", "A1"),
            ("body.2", "$5"),
            ("body.3", "today"),
            ("button.0.1", "A1"),
            ("button.3.coupon_code", "SAVE10"),
        ]);
        let mut keys: Vec<String> = spec.inputs().into_iter().map(|input| input.key).collect();
        keys.sort();
        assert_eq!(
            keys,
            values.keys().cloned().collect::<Vec<_>>(),
            "every input is filled"
        );
        let components = components_from_inputs(&spec, &values);
        let send = template_send(&spec, components.clone());
        assert!(validate("template", Some(&send)).is_ok(), "shape: {send}");
        assert_eq!(check_send(&spec, &send), Ok(()));
        let rendered = render(&spec, Some(&components));
        assert!(rendered.missing.is_empty(), "{:?}", rendered.missing);
        assert_eq!(rendered.body, "Order A1 costs $5, due today.");
    }

    #[test]
    fn inputs_turned_into_components_fit_the_named_template() {
        let spec = listed_spec("reservation_confirmation");
        let values = inputs(&[
            ("header.image", "https://example.com/table.jpg"),
            ("body.number_of_guests", "2"),
            ("body.day", "Friday"),
            ("body.date", "May 1st"),
            ("body.time", "8 pm"),
        ]);
        let components = components_from_inputs(&spec, &values);
        let send = template_send(&spec, components.clone());
        assert!(validate("template", Some(&send)).is_ok(), "shape: {send}");
        assert_eq!(check_send(&spec, &send), Ok(()));
        assert_eq!(
            components[0]["parameters"][0]["image"]["link"],
            "https://example.com/table.jpg"
        );
        assert_eq!(components[1]["parameters"][1]["parameter_name"], "day");
        let rendered = render(&spec, Some(&components));
        assert!(
            rendered
                .body
                .contains("for 2 at Lucky Shrub Eatery on Friday, May 1st, at 8 pm")
        );
    }

    #[test]
    fn blank_inputs_are_left_out_and_the_send_then_names_what_is_missing() {
        let spec = listed_spec("reservation_confirmation");
        let values = inputs(&[
            ("header.image", "2871834006348767"),
            ("body.number_of_guests", "2"),
            ("body.day", "  "),
            ("body.date", "May 1st"),
            ("body.time", "8 pm"),
        ]);
        let components = components_from_inputs(&spec, &values);
        assert_eq!(
            components[0]["parameters"][0]["image"]["id"],
            "2871834006348767"
        );
        assert_eq!(components[1]["parameters"].as_array().unwrap().len(), 3);
        let send = template_send(&spec, components);
        match check_send(&spec, &send) {
            Err(crate::templates::fit::FitError::Parameters(errors)) => {
                assert_eq!(
                    errors.to_details()["reason"],
                    "body parameter `day` is missing"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(components_from_inputs(&spec, &BTreeMap::new()), json!([]));
    }

    #[test]
    fn a_location_input_becomes_a_location_parameter() {
        let spec = spec(
            None,
            json!([{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Here."}]),
        );
        let values = inputs(&[(
            "header.location",
            "37.44, -122.16, Philz Coffee, 101 Forest Ave, Palo Alto",
        )]);
        let components = components_from_inputs(&spec, &values);
        let location = &components[0]["parameters"][0]["location"];
        assert_eq!(location["latitude"], "37.44");
        assert_eq!(location["name"], "Philz Coffee");
        assert_eq!(location["address"], "101 Forest Ave, Palo Alto");
        let send = template_send(&spec, components);
        assert!(validate("template", Some(&send)).is_ok());
        assert_eq!(check_send(&spec, &send), Ok(()));
        let far = inputs(&[("header.location", "91, 0")]);
        assert_eq!(components_from_inputs(&spec, &far), json!([]));
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let words = prop::sample::select(vec![
            "type",
            "header",
            "body",
            "button",
            "text",
            "parameters",
            "parameter_name",
            "index",
            "sub_type",
            "url",
            "currency",
            "date_time",
            "fallback_value",
            "image",
            "location",
            "1",
            "first_name",
            "latitude",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            words.clone().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((words.clone().prop_map(str::to_owned), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn arbitrary_text() -> impl Strategy<Value = String> {
        "(\\PC|\\{\\{|\\}\\}|\\{\\{1\\}\\}|\\{\\{first_name\\}\\}){0,16}"
    }

    proptest! {
        #[test]
        fn render_and_the_checks_never_panic_on_any_input(
            header in arbitrary_text(),
            body in arbitrary_text(),
            url in arbitrary_text(),
            format in prop::sample::select(vec!["TEXT", "IMAGE", "LOCATION", "text", "GIF"]),
            named in any::<bool>(),
            components in arbitrary_json(),
            values in prop::collection::btree_map(arbitrary_text(), arbitrary_text(), 0..6),
        ) {
            let stored = json!([
                {"type": "HEADER", "format": format, "text": header},
                {"type": "BODY", "text": body},
                {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Go", "url": url}, {"type": "COPY_CODE"}]},
            ]);
            let spec = TemplateSpec::from_stored(
                "t", "en", "APPROVED", None, named.then_some("named"), &stored.to_string(),
            ).unwrap();
            let rendered = render(&spec, Some(&components));
            let _ = rendered.to_json();
            let _ = rendered.plain_text();
            let _ = check_send(&spec, &json!({"components": components}));
            let _ = check_send(&spec, &components);
            let _ = spec.inputs();
            let mut all = values;
            for input in spec.inputs() {
                all.entry(input.key).or_insert_with(|| "v".to_owned());
            }
            let built = components_from_inputs(&spec, &all);
            let _ = check_send(&spec, &json!({"components": built}));
        }
    }
}
