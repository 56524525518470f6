//! Checks a send's `template` object against the stored template it names: approved, and with
//! the parameters its components need, no more and no fewer. The send's *shape* was checked
//! already (`outbound::validate`); this is what Meta would otherwise refuse later with a 132000
//! family error, told now with the template's own words.

use serde_json::{Map, Value};

use super::placeholders::{self, Kind};
use super::{TemplateSpec, media_name};
use crate::validation::FieldErrors;

/// Why a send does not fit its template.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// The stored template is not APPROVED (status given); it cannot be sent.
    #[error("the template is {status}, and only an APPROVED template can be sent")]
    NotApproved { status: String },
    /// Parameters do not match the components.
    #[error("{}", .0.summary())]
    Parameters(FieldErrors),
}

/// Meta's error for body parameters that hold line breaks, tabs or long runs of spaces.
pub const BODY_PARAMETER_FORMAT_ERROR: u32 = 132018;
/// Spaces in a row that a body parameter may hold.
pub const BODY_PARAMETER_SPACES_MAX: usize = 4;

/// Checks `send`, the `template` object of a send request, against `spec`. A template stored
/// without components (known only from a webhook) is not judged beyond its status: Meta will.
pub fn check_send(spec: &TemplateSpec, send: &Value) -> Result<(), FitError> {
    if !spec.status.trim().eq_ignore_ascii_case("APPROVED") {
        return Err(FitError::NotApproved {
            status: spec.status.clone(),
        });
    }
    if spec.components.is_empty() {
        return Ok(());
    }
    let mut fit = Fit {
        spec,
        errors: FieldErrors::new(),
    };
    fit.components(send);
    fit.errors.finish().map_err(FitError::Parameters)
}

const COMPONENTS: &str = "template.components";

fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

fn parameters(component: &Map<String, Value>) -> &[Value] {
    component
        .get("parameters")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn kind_of(value: &Value) -> String {
    value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A button component's `index`, sent as a number or as a string of digits.
fn button_index(component: &Map<String, Value>) -> Option<usize> {
    match component.get("index")? {
        Value::Number(number) => number.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The `sub_type` a send uses for a button of this template type; `None` for a button that
/// takes no send component (a phone number).
fn sub_type_for(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "URL" | "OTP" => "url",
        "QUICK_REPLY" => "quick_reply",
        "COPY_CODE" => "copy_code",
        "FLOW" => "flow",
        "CATALOG" => "catalog",
        "MPM" => "mpm",
        "VOICE_CALL" => "voice_call",
        _ => return None,
    })
}

/// `{{1}}, {{2}}` for a list of names.
fn written_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| placeholders::written(name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a body parameter breaks Meta's 132018 rule.
fn breaks_body_format(text: &str) -> bool {
    text.contains(['\n', '\r', '\t']) || text.contains(&" ".repeat(BODY_PARAMETER_SPACES_MAX + 1))
}

/// The walk over one send, collecting problems under the send's field paths.
struct Fit<'a> {
    spec: &'a TemplateSpec,
    errors: FieldErrors,
}

impl Fit<'_> {
    fn problem(&mut self, path: &str, reason: impl Into<String>) {
        self.errors.add(path, reason);
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    /// `button 0 (“Track order”) of order_update`.
    fn button_name(&self, index: usize) -> String {
        let label = self
            .spec
            .buttons()
            .get(index)
            .and_then(|button| button.text.as_deref())
            .filter(|text| !text.is_empty());
        match label {
            Some(label) => format!("button {index} (“{label}”) of {}", self.name()),
            None => format!("button {index} of {}", self.name()),
        }
    }

    fn components(&mut self, send: &Value) {
        let components: &[Value] = send
            .get("components")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut header_at = None;
        let mut body_at = None;
        let mut buttons_seen: Vec<usize> = Vec::new();
        for (index, component) in components.iter().enumerate() {
            let path = item(COMPONENTS, index);
            let Some(object) = component.as_object() else {
                continue;
            };
            match kind_of(component).as_str() {
                "header" if header_at.is_some() => self.problem(
                    &child(&path, "type"),
                    "is a second header component: give the header's parameters once",
                ),
                "header" => {
                    header_at = Some(index);
                    self.header(&path, object);
                }
                "body" if body_at.is_some() => self.problem(
                    &child(&path, "type"),
                    "is a second body component: give the body's parameters once",
                ),
                "body" => {
                    body_at = Some(index);
                    self.body(&path, object);
                }
                "button" => self.button(&path, object, &mut buttons_seen),
                "footer" if !parameters(object).is_empty() => {
                    let reason = format!(
                        "the footer of {} is fixed text and takes no parameters; remove them",
                        self.name()
                    );
                    self.problem(&child(&path, "parameters"), reason);
                }
                // Carousels and limited-time offers are not judged here; Meta will.
                _ => {}
            }
        }
        let mut missing = Vec::new();
        if header_at.is_none()
            && let Some(need) = self.header_need()
        {
            missing.push(need);
        }
        if body_at.is_none() {
            let names = self.body_variables();
            if !names.is_empty() {
                missing.push(format!(
                    "the body of {} takes {} ({}): add a body component with them",
                    self.name(),
                    count_of(names.len()),
                    written_list(&names)
                ));
            }
        }
        for (index, button) in self.spec.buttons().iter().enumerate() {
            if buttons_seen.contains(&index) {
                continue;
            }
            let kind = button.kind.to_ascii_uppercase();
            let url_variable = matches!(kind.as_str(), "URL" | "OTP")
                && !placeholders::find(button.url.as_deref().unwrap_or_default()).is_empty();
            if url_variable {
                missing.push(format!(
                    "{} ends its URL with a variable: add a button component with sub_type url, \
                     index {index} and one text parameter",
                    self.button_name(index)
                ));
            } else if kind == "COPY_CODE" {
                missing.push(format!(
                    "{} copies a code given when sending: add a button component with sub_type \
                     copy_code, index {index} and one coupon_code parameter",
                    self.button_name(index)
                ));
            }
        }
        if !missing.is_empty() {
            self.problem(COMPONENTS, missing.join("; "));
        }
    }

    /// What a send must give for the header, when it must give anything.
    fn header_need(&self) -> Option<String> {
        let header = self.spec.header()?;
        let format = self.spec.header_format().unwrap_or_default();
        match format.as_str() {
            "TEXT" => {
                let names =
                    placeholders::distinct_names(header.text.as_deref().unwrap_or_default());
                (!names.is_empty()).then(|| {
                    format!(
                        "the header of {} takes 1 parameter ({}): add a header component with one \
                         text parameter",
                        self.name(),
                        written_list(&names)
                    )
                })
            }
            "IMAGE" | "VIDEO" | "DOCUMENT" => Some(self.media_need(&format)),
            "LOCATION" => Some(self.location_need()),
            _ => None,
        }
    }

    fn media_need(&self, format: &str) -> String {
        let media = media_name(format);
        format!(
            "the header of {} is an {format}: give one parameter of type {media} with id or link",
            self.name()
        )
    }

    fn location_need(&self) -> String {
        format!(
            "the header of {} is a LOCATION: give one parameter of type location with latitude \
             and longitude",
            self.name()
        )
    }

    fn body_variables(&self) -> Vec<String> {
        self.spec
            .body()
            .and_then(|body| body.text.as_deref())
            .map(placeholders::distinct_names)
            .unwrap_or_default()
    }

    fn header(&mut self, path: &str, component: &Map<String, Value>) {
        let params = parameters(component);
        let params_path = child(path, "parameters");
        let Some(header) = self.spec.header() else {
            let reason = format!("{} has no header; remove this component", self.name());
            self.problem(&child(path, "type"), reason);
            return;
        };
        let format = self.spec.header_format().unwrap_or_default();
        match format.as_str() {
            "TEXT" => {
                let text = header.text.as_deref().unwrap_or_default();
                let found = placeholders::find(text);
                let names = placeholders::distinct_names(text);
                if names.is_empty() {
                    if !params.is_empty() {
                        let reason = format!(
                            "the header of {} has no variables; remove its parameters",
                            self.name()
                        );
                        self.problem(&params_path, reason);
                    }
                    return;
                }
                if params.len() != names.len() {
                    let reason = format!(
                        "the header of {} takes {} ({}); {} given",
                        self.name(),
                        count_of(names.len()),
                        written_list(&names),
                        params.len()
                    );
                    self.errors
                        .add_limit(&params_path, reason, names.len() as u64);
                    return;
                }
                let named = placeholders::classify(&found) == Kind::Named;
                for (index, param) in params.iter().enumerate() {
                    let param_path = item(&params_path, index);
                    if kind_of(param) != "text" {
                        let reason = format!(
                            "the header of {} is text with {}: give one parameter of type text",
                            self.name(),
                            written_list(&names)
                        );
                        self.problem(&child(&param_path, "type"), reason);
                        continue;
                    }
                    if named {
                        self.parameter_name(&param_path, param, &names[index], "header");
                    }
                }
            }
            "IMAGE" | "VIDEO" | "DOCUMENT" => {
                let media = media_name(&format);
                let ok = params.len() == 1
                    && kind_of(&params[0]) == media
                    && params[0]
                        .get(media)
                        .is_some_and(|m| m.get("id").is_some() || m.get("link").is_some());
                if !ok {
                    let reason = self.media_need(&format);
                    self.problem(&params_path, reason);
                }
            }
            "LOCATION" => {
                let ok = params.len() == 1 && kind_of(&params[0]) == "location";
                if !ok {
                    let reason = self.location_need();
                    self.problem(&params_path, reason);
                }
            }
            _ => {}
        }
    }

    /// A named parameter must say which variable it fills, and fill the right one.
    fn parameter_name(&mut self, param_path: &str, param: &Value, name: &str, part: &str) {
        let name_path = child(param_path, "parameter_name");
        match param.get("parameter_name").and_then(Value::as_str) {
            None => {
                let reason = format!(
                    "is required: the {part} of {} uses the named parameter `{name}`",
                    self.name()
                );
                self.problem(&name_path, reason);
            }
            Some(given) if given != name => {
                let reason = format!("`{given}` is not a parameter of the {part} (it has {name})");
                self.problem(&name_path, reason);
            }
            Some(_) => {}
        }
    }

    fn body(&mut self, path: &str, component: &Map<String, Value>) {
        let params = parameters(component);
        let params_path = child(path, "parameters");
        let Some(body) = self.spec.body() else {
            return;
        };
        let text = body.text.as_deref().unwrap_or_default();
        let names = placeholders::distinct_names(text);
        if names.is_empty() {
            if !params.is_empty() {
                let reason = format!(
                    "the body of {} has no variables; remove its parameters",
                    self.name()
                );
                self.problem(&params_path, reason);
            }
            return;
        }
        if placeholders::classify(&placeholders::find(text)) == Kind::Named {
            self.named_body(&params_path, params, &names);
        } else if params.len() != names.len() {
            let reason = format!(
                "the body of {} takes {} ({}); {} given",
                self.name(),
                count_of(names.len()),
                written_list(&names),
                params.len()
            );
            self.errors
                .add_limit(&params_path, reason, names.len() as u64);
        }
        for (index, param) in params.iter().enumerate() {
            let param_path = item(&params_path, index);
            match kind_of(param).as_str() {
                "text" => {
                    let value = param
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if breaks_body_format(value) {
                        self.problem(
                            &child(&param_path, "text"),
                            format!(
                                "must not hold line breaks, tabs or more than \
                                 {BODY_PARAMETER_SPACES_MAX} spaces in a row: Meta refuses such \
                                 body parameters (error {BODY_PARAMETER_FORMAT_ERROR})"
                            ),
                        );
                    }
                }
                "currency" | "date_time" => {}
                other => {
                    let reason = format!(
                        "the body of {} takes text, currency or date_time parameters, not {other}",
                        self.name()
                    );
                    self.problem(&child(&param_path, "type"), reason);
                }
            }
        }
    }

    fn named_body(&mut self, params_path: &str, params: &[Value], names: &[String]) {
        let mut given: Vec<&str> = Vec::new();
        for (index, param) in params.iter().enumerate() {
            let name_path = child(&item(params_path, index), "parameter_name");
            match param.get("parameter_name").and_then(Value::as_str) {
                None => {
                    let reason = format!(
                        "is required: the body of {} uses named parameters ({})",
                        self.name(),
                        names.join(", ")
                    );
                    self.problem(&name_path, reason);
                }
                Some(name) if given.contains(&name) => self.problem(
                    &name_path,
                    format!("`{name}` is given twice; give each parameter once"),
                ),
                Some(name) if !names.iter().any(|known| known == name) => self.problem(
                    &name_path,
                    format!(
                        "`{name}` is not a parameter of the body (it has {})",
                        names.join(", ")
                    ),
                ),
                Some(name) => given.push(name),
            }
        }
        let missing: Vec<String> = names
            .iter()
            .filter(|name| !given.contains(&name.as_str()))
            .map(|name| format!("`{name}`"))
            .collect();
        match missing.len() {
            0 => {}
            1 => self.problem(
                params_path,
                format!("body parameter {} is missing", missing[0]),
            ),
            _ => self.problem(
                params_path,
                format!("body parameters {} are missing", missing.join(", ")),
            ),
        }
    }

    fn button(&mut self, path: &str, component: &Map<String, Value>, seen: &mut Vec<usize>) {
        let Some(index) = button_index(component) else {
            return;
        };
        let index_path = child(path, "index");
        let buttons = self.spec.buttons();
        let Some(button) = buttons.get(index) else {
            let reason = match buttons.len() {
                0 => format!("{} has no buttons; remove this component", self.name()),
                1 => format!(
                    "{} has one button, at index 0; there is no button {index}",
                    self.name()
                ),
                n => format!(
                    "{} has {n} buttons, at index 0 to {}; there is no button {index}",
                    self.name(),
                    n - 1
                ),
            };
            self.problem(&index_path, reason);
            return;
        };
        if seen.contains(&index) {
            self.problem(
                &index_path,
                format!("names button {index} a second time: give each button once"),
            );
            return;
        }
        seen.push(index);
        let kind = button.kind.to_ascii_uppercase();
        let button_name = self.button_name(index);
        let Some(expected) = sub_type_for(&kind) else {
            self.problem(
                path,
                format!(
                    "{button_name} is a {} button, which takes no parameters; remove this component",
                    kind.to_ascii_lowercase().replace('_', " ")
                ),
            );
            return;
        };
        let sub_type = component
            .get("sub_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if sub_type != expected {
            self.problem(
                &child(path, "sub_type"),
                format!("{button_name} is a {kind} button: use sub_type {expected}"),
            );
            return;
        }
        let params = parameters(component);
        let params_path = child(path, "parameters");
        match expected {
            "url" => {
                let url = button.url.as_deref().unwrap_or_default();
                let found = placeholders::find(url);
                let Some(variable) = found.first() else {
                    if !params.is_empty() {
                        self.problem(
                            &params_path,
                            format!("{button_name} has a fixed URL; remove its parameters"),
                        );
                    }
                    return;
                };
                if params.len() != 1 || kind_of(&params[0]) != "text" {
                    self.errors.add_limit(
                        &params_path,
                        format!(
                            "{button_name} ends its URL with {}: give one parameter of type text \
                             with the URL's end",
                            variable.written()
                        ),
                        1,
                    );
                } else if !variable.is_positional() && params[0].get("parameter_name").is_some() {
                    self.parameter_name(&item(&params_path, 0), &params[0], &variable.name, "URL");
                }
            }
            "quick_reply" if params.len() > 1 || params.iter().any(|p| kind_of(p) != "payload") => {
                self.errors.add_limit(
                    &params_path,
                    format!(
                        "{button_name} is a quick reply: give at most one parameter, of type \
                         payload (it comes back when the customer taps)"
                    ),
                    1,
                );
            }
            "copy_code" if params.len() != 1 || kind_of(&params[0]) != "coupon_code" => {
                self.errors.add_limit(
                    &params_path,
                    format!("{button_name} copies a code: give one parameter of type coupon_code"),
                    1,
                );
            }
            "flow" if params.iter().any(|p| kind_of(p) != "action") => {
                self.problem(
                    &params_path,
                    format!("{button_name} opens a Flow: its parameters are of type action"),
                );
            }
            _ => {}
        }
    }
}

/// `1 parameter`, `2 parameters`.
fn count_of(count: usize) -> String {
    if count == 1 {
        "1 parameter".to_owned()
    } else {
        format!("{count} parameters")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::templates::testdata::{listed_spec, meta_example};

    fn spec(status: &str, parameter_format: Option<&str>, components: Value) -> TemplateSpec {
        TemplateSpec::from_stored(
            "order_update",
            "en_US",
            status,
            Some("UTILITY"),
            parameter_format,
            &components.to_string(),
        )
        .unwrap()
    }

    fn problems(spec: &TemplateSpec, send: Value) -> Value {
        match check_send(spec, &send) {
            Ok(()) => panic!("passed: {send}"),
            Err(FitError::NotApproved { status }) => panic!("not approved: {status}"),
            Err(FitError::Parameters(errors)) => errors.to_details(),
        }
    }

    fn reason(details: &Value, field: &str) -> String {
        details["fields"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no problem at {field}: {details}"))
            .to_owned()
    }

    fn send(components: Value) -> Value {
        json!({"name": "order_update", "language": {"code": "en_US"}, "components": components})
    }

    fn text(value: &str) -> Value {
        json!({"type": "text", "text": value})
    }

    fn named(name: &str, value: &str) -> Value {
        json!({"type": "text", "parameter_name": name, "text": value})
    }

    fn positional() -> TemplateSpec {
        spec(
            "APPROVED",
            None,
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}", "example": {"header_text": ["Pablo"]}},
                {"type": "BODY", "text": "Order {{1}} arrives {{2}}.", "example": {"body_text": [["A1", "today"]]}},
                {"type": "FOOTER", "text": "Thanks"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Track order", "url": "https://example.com/t/{{1}}", "example": ["https://example.com/t/A1"]},
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550051310"},
                    {"type": "COPY_CODE", "example": "SAVE10"},
                ]},
            ]),
        )
    }

    fn positional_send() -> Value {
        send(json!([
            {"type": "header", "parameters": [text("Ana")]},
            {"type": "body", "parameters": [text("A1"), text("today")]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [text("A1")]},
            {"type": "button", "sub_type": "copy_code", "index": 3, "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]},
        ]))
    }

    fn named_body() -> TemplateSpec {
        spec(
            "APPROVED",
            Some("NAMED"),
            json!([{"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}} shipped."}]),
        )
    }

    #[test]
    fn metas_named_send_fits_the_listed_reservation_template() {
        let spec = listed_spec("reservation_confirmation");
        let send = meta_example("send_template_named_params_request.json");
        assert_eq!(check_send(&spec, &send["template"]), Ok(()));
    }

    #[test]
    fn removing_a_parameter_from_metas_named_send_names_it() {
        let spec = listed_spec("reservation_confirmation");
        let mut send = meta_example("send_template_named_params_request.json");
        send["template"]["components"][1]["parameters"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        let details = problems(&spec, send["template"].clone());
        assert_eq!(details["field"], "template.components[1].parameters");
        assert_eq!(details["reason"], "body parameter `day` is missing");
    }

    #[test]
    fn a_template_that_is_not_approved_cannot_be_sent() {
        for status in ["PENDING", "REJECTED", "PAUSED"] {
            let spec = spec(status, None, json!([{"type": "BODY", "text": "Hello"}]));
            assert_eq!(
                check_send(&spec, &send(json!([]))),
                Err(FitError::NotApproved {
                    status: status.to_owned()
                })
            );
        }
        let approved = spec("approved", None, json!([{"type": "BODY", "text": "Hello"}]));
        assert_eq!(check_send(&approved, &send(json!([]))), Ok(()));
        let error = check_send(&spec("PAUSED", None, json!([])), &send(json!([]))).unwrap_err();
        assert!(error.to_string().contains("PAUSED"));
    }

    #[test]
    fn a_positional_send_with_every_parameter_fits() {
        assert_eq!(check_send(&positional(), &positional_send()), Ok(()));
    }

    #[test]
    fn a_positional_body_takes_exactly_one_parameter_per_variable() {
        let mut send = positional_send();
        send["components"][1]["parameters"] = json!([text("A1")]);
        let details = problems(&positional(), send);
        let field = "template.components[1].parameters";
        assert_eq!(
            reason(&details, field),
            "the body of order_update takes 2 parameters ({{1}}, {{2}}); 1 given"
        );
        assert_eq!(details["limits"][field], 2);
    }

    #[test]
    fn a_named_body_takes_each_named_parameter_once() {
        let spec = named_body();
        let ok = send(
            json!([{"type": "body", "parameters": [named("order_id", "A1"), named("first_name", "Ana")]}]),
        );
        assert_eq!(check_send(&spec, &ok), Ok(()));
        let details = problems(
            &spec,
            send(json!([{"type": "body", "parameters": [
                named("first_name", "Ana"), named("nickname", "A"), text("x"), named("first_name", "B"),
            ]}])),
        );
        let at = "template.components[0].parameters";
        assert_eq!(
            reason(&details, &format!("{at}[1].parameter_name")),
            "`nickname` is not a parameter of the body (it has first_name, order_id)"
        );
        assert!(reason(&details, &format!("{at}[2].parameter_name")).starts_with("is required"));
        assert!(reason(&details, &format!("{at}[3].parameter_name")).contains("twice"));
        assert_eq!(reason(&details, at), "body parameter `order_id` is missing");
    }

    #[test]
    fn a_body_with_variables_needs_its_component() {
        let details = problems(&named_body(), send(json!([])));
        let reason = reason(&details, "template.components");
        assert!(
            reason.contains("the body of order_update takes 2 parameters"),
            "{reason}"
        );
        assert!(reason.contains("{{first_name}}, {{order_id}}"));
    }

    #[test]
    fn a_component_without_variables_takes_no_parameters() {
        let spec = spec(
            "APPROVED",
            None,
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Welcome"},
                {"type": "BODY", "text": "Your order shipped."},
                {"type": "FOOTER", "text": "Thanks"},
            ]),
        );
        let details = problems(
            &spec,
            send(json!([
                {"type": "header", "parameters": [text("x")]},
                {"type": "body", "parameters": [text("y")]},
                {"type": "footer", "parameters": [text("z")]},
            ])),
        );
        assert!(
            reason(&details, "template.components[0].parameters")
                .contains("header of order_update has no variables")
        );
        assert!(
            reason(&details, "template.components[1].parameters")
                .contains("body of order_update has no variables")
        );
        assert!(reason(&details, "template.components[2].parameters").contains("footer"));
        assert_eq!(check_send(&spec, &send(json!([{"type": "body"}]))), Ok(()));
    }

    #[test]
    fn a_text_header_with_a_variable_needs_one_text_parameter() {
        let mut without = positional_send();
        without["components"].as_array_mut().unwrap().remove(0);
        let details = problems(&positional(), without);
        assert!(
            reason(&details, "template.components")
                .contains("the header of order_update takes 1 parameter ({{1}})")
        );
        let mut two = positional_send();
        two["components"][0]["parameters"] = json!([text("a"), text("b")]);
        let details = problems(&positional(), two);
        assert_eq!(details["limits"]["template.components[0].parameters"], 1);
        let mut image = positional_send();
        image["components"][0]["parameters"] = json!([{"type": "image", "image": {"id": "1"}}]);
        let details = problems(&positional(), image);
        assert!(
            reason(&details, "template.components[0].parameters[0].type").contains("type text")
        );
    }

    #[test]
    fn a_media_header_needs_one_parameter_of_its_type_with_id_or_link() {
        let spec = listed_spec("reservation_confirmation");
        let mut video = meta_example("send_template_named_params_request.json")["template"].clone();
        video["components"][0]["parameters"] = json!([{"type": "video", "video": {"id": "1"}}]);
        let details = problems(&spec, video.clone());
        assert_eq!(
            reason(&details, "template.components[0].parameters"),
            "the header of reservation_confirmation is an IMAGE: give one parameter of type image with id or link"
        );
        video["components"].as_array_mut().unwrap().remove(0);
        let details = problems(&spec, video);
        assert!(reason(&details, "template.components").contains("is an IMAGE"));
    }

    #[test]
    fn a_location_header_needs_a_location_parameter() {
        let spec = spec(
            "APPROVED",
            None,
            json!([{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "On its way."}]),
        );
        let place =
            json!({"type": "location", "location": {"latitude": "37.44", "longitude": "-122.16"}});
        assert_eq!(
            check_send(
                &spec,
                &send(json!([{"type": "header", "parameters": [place]}]))
            ),
            Ok(())
        );
        let details = problems(
            &spec,
            send(json!([{"type": "header", "parameters": [text("here")]}])),
        );
        assert!(reason(&details, "template.components[0].parameters").contains("LOCATION"));
        let details = problems(&spec, send(json!([])));
        assert!(reason(&details, "template.components").contains("type location"));
    }

    #[test]
    fn a_header_the_template_does_not_have_is_refused() {
        let details = problems(
            &named_body(),
            send(json!([
                {"type": "header", "parameters": [text("x")]},
                {"type": "body", "parameters": [named("first_name", "A"), named("order_id", "1")]},
            ])),
        );
        assert!(reason(&details, "template.components[0].type").contains("has no header"));
    }

    #[test]
    fn body_parameters_must_not_hold_line_breaks_tabs_or_long_runs_of_spaces() {
        for value in ["two\nlines", "a\ttab", "five     spaces"] {
            let mut send = positional_send();
            send["components"][1]["parameters"][0] = text(value);
            let details = problems(&positional(), send);
            let reason = reason(&details, "template.components[1].parameters[0].text");
            assert!(reason.contains("132018"), "{value}: {reason}");
        }
        let mut four = positional_send();
        four["components"][1]["parameters"][0] = text("four    spaces");
        assert_eq!(check_send(&positional(), &four), Ok(()));
    }

    #[test]
    fn currency_and_date_time_parameters_count_as_body_values() {
        let mut send = positional_send();
        send["components"][1]["parameters"] = json!([
            {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}},
            {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}},
        ]);
        assert_eq!(check_send(&positional(), &send), Ok(()));
        let mut image = positional_send();
        image["components"][1]["parameters"][1] = json!({"type": "image", "image": {"id": "1"}});
        let details = problems(&positional(), image);
        assert!(
            reason(&details, "template.components[1].parameters[1].type").contains("not image")
        );
    }

    #[test]
    fn a_url_button_with_a_variable_needs_its_component_with_one_text_parameter() {
        let mut without = positional_send();
        without["components"].as_array_mut().unwrap().remove(2);
        let details = problems(&positional(), without);
        assert!(
            reason(&details, "template.components")
                .contains("button 0 (“Track order”) of order_update ends its URL")
        );
        let mut empty = positional_send();
        empty["components"][2]["parameters"] = json!([]);
        let details = problems(&positional(), empty);
        assert!(
            reason(&details, "template.components[2].parameters")
                .contains("one parameter of type text")
        );
    }

    #[test]
    fn a_button_component_must_name_a_button_of_its_type() {
        let mut send = positional_send();
        let components = send["components"].as_array_mut().unwrap();
        components.push(
            json!({"type": "button", "sub_type": "quick_reply", "index": "7", "parameters": []}),
        );
        components
            .push(json!({"type": "button", "sub_type": "url", "index": "1", "parameters": []}));
        components.push(json!({"type": "button", "sub_type": "quick_reply", "index": "2"}));
        let details = problems(&positional(), send);
        assert_eq!(
            reason(&details, "template.components[4].index"),
            "order_update has 4 buttons, at index 0 to 3; there is no button 7"
        );
        assert_eq!(
            reason(&details, "template.components[5].sub_type"),
            "button 1 (“Stop”) of order_update is a QUICK_REPLY button: use sub_type quick_reply"
        );
        assert!(reason(&details, "template.components[6]").contains("phone number button"));
    }

    #[test]
    fn quick_reply_and_copy_code_buttons_take_their_own_parameter_types() {
        let mut send = positional_send();
        send["components"].as_array_mut().unwrap().push(
            json!({"type": "button", "sub_type": "quick_reply", "index": 1, "parameters": [{"type": "payload", "payload": "STOP"}]}),
        );
        assert_eq!(check_send(&positional(), &send), Ok(()));
        send["components"][4]["parameters"] = json!([text("STOP")]);
        send["components"][3]["parameters"] = json!([text("SAVE10")]);
        let details = problems(&positional(), send);
        assert!(reason(&details, "template.components[4].parameters").contains("payload"));
        assert!(reason(&details, "template.components[3].parameters").contains("coupon_code"));
        let mut without = positional_send();
        without["components"].as_array_mut().unwrap().remove(3);
        let details = problems(&positional(), without);
        assert!(reason(&details, "template.components").contains("copy_code"));
    }

    #[test]
    fn a_flow_button_takes_only_action_parameters() {
        let spec = spec(
            "APPROVED",
            None,
            json!([
                {"type": "BODY", "text": "Book a table."},
                {"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Book", "flow_id": "1"}]},
            ]),
        );
        let action = json!({"type": "action", "action": {"flow_token": "t1"}});
        let flow = |parameter: Value| {
            send(
                json!([{"type": "button", "sub_type": "flow", "index": "0", "parameters": [parameter]}]),
            )
        };
        assert_eq!(check_send(&spec, &flow(action)), Ok(()));
        let details = problems(&spec, flow(text("x")));
        assert!(reason(&details, "template.components[0].parameters").contains("type action"));
    }

    #[test]
    fn a_template_stored_without_components_is_left_to_meta() {
        let spec = spec("APPROVED", None, json!([]));
        assert_eq!(
            check_send(
                &spec,
                &send(json!([{"type": "body", "parameters": [text("x")]}]))
            ),
            Ok(())
        );
    }
}
