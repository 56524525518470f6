//! A sequence as the tenant writes it: its name, settings and ordered steps, checked field by
//! field (every problem at once, with its path, like `steps[1].message.text.body`). Each step's
//! message goes through the same checks as `POST /api/v1/messages`, so a sequence never holds a
//! message Meta would refuse for its shape.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::outbound::validate::{ValidatedMessage, validate};
use crate::validation::FieldErrors;

pub const MAX_STEPS: usize = 50;
pub const MAX_NAME_CHARS: usize = 100;
/// A step waits at most this long after the one before it.
pub const MAX_DELAY_SECONDS: i64 = 90 * 24 * 3600;
pub const MAX_OPT_OUT_WORDS: usize = 50;

/// What a step whose message is not a template does when the customer's window is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideWindow {
    /// Wait until the customer writes again (the window reopens), then send it.
    Wait,
    /// Send the step's `fallback_template` instead.
    FallbackTemplate,
    /// Leave the step out and go on with the next.
    Skip,
}

impl OutsideWindow {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "wait" => Some(Self::Wait),
            "fallback_template" => Some(Self::FallbackTemplate),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }
}

/// One step: how long after the step before it (or the enrollment) it runs, and what it sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub delay_seconds: i64,
    /// `{"type": ..., <type>: {...}}`, as in a send request.
    pub message: Value,
    pub outside_window: OutsideWindow,
    /// A template object (`{"name", "language", "components"?}`) for `fallback_template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_template: Option<Value>,
}

impl Step {
    /// The step's message, checked again (it was checked when saved; rules may have tightened).
    pub fn message(&self) -> Result<ValidatedMessage, FieldErrors> {
        let kind = self
            .message
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        validate(kind, self.message.get(kind))
    }

    pub fn fallback(&self) -> Option<Result<ValidatedMessage, FieldErrors>> {
        self.fallback_template
            .as_ref()
            .map(|template| validate("template", Some(template)))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "delay_seconds": self.delay_seconds,
            "message": self.message,
            "outside_window": self.outside_window,
            "fallback_template": self.fallback_template,
        })
    }
}

/// Reads stored steps.
pub fn from_stored(steps: &str) -> Result<Vec<Step>, serde_json::Error> {
    serde_json::from_str(steps)
}

/// A sequence's fields from a POST (all of them) or a PATCH (those given).
#[derive(Debug, Clone, Default)]
pub struct SequenceInput {
    pub name: Option<String>,
    pub connection_id: Option<String>,
    pub steps: Option<Vec<Step>>,
    pub enroll_on_first_message: Option<bool>,
    pub stop_on_reply: Option<bool>,
    pub opt_out_words: Option<Vec<String>>,
}

const KEYS: [&str; 6] = [
    "name",
    "connection_id",
    "steps",
    "enroll_on_first_message",
    "stop_on_reply",
    "opt_out_words",
];

impl SequenceInput {
    /// `creating` requires a name and steps.
    pub fn parse(body: &Value, creating: bool) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(body) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(errors);
        };
        errors.unknown_keys(body, &KEYS, "a sequence");
        let mut input = Self::default();
        match body.get("name") {
            None | Some(Value::Null) if creating => {
                errors.add("name", "is required: what the sequence is called");
            }
            None => {}
            Some(Value::String(name))
                if !name.trim().is_empty() && name.trim().chars().count() <= MAX_NAME_CHARS =>
            {
                input.name = Some(name.trim().to_owned());
            }
            Some(_) => errors.add_limit(
                "name",
                format!("must be a string of 1 to {MAX_NAME_CHARS} characters"),
                MAX_NAME_CHARS as u64,
            ),
        }
        match body.get("connection_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) if !id.trim().is_empty() => {
                input.connection_id = Some(id.trim().to_owned());
            }
            Some(_) => errors.add("connection_id", "must be a connection id (a string)"),
        }
        match body.get("steps") {
            None | Some(Value::Null) if creating => errors.add(
                "steps",
                "is required: a list of steps, each {\"delay_seconds\", \"message\"}",
            ),
            None => {}
            Some(Value::Array(steps)) if !steps.is_empty() && steps.len() <= MAX_STEPS => {
                let parsed: Vec<Option<Step>> = steps
                    .iter()
                    .enumerate()
                    .map(|(i, step)| parse_step(&mut errors, &format!("steps[{i}]"), step))
                    .collect();
                input.steps = parsed.into_iter().collect();
            }
            Some(_) => errors.add_limit(
                "steps",
                format!("must be a list of 1 to {MAX_STEPS} steps"),
                MAX_STEPS as u64,
            ),
        }
        for (key, slot) in [
            (
                "enroll_on_first_message",
                &mut input.enroll_on_first_message,
            ),
            ("stop_on_reply", &mut input.stop_on_reply),
        ] {
            match body.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(on)) => *slot = Some(*on),
                Some(_) => errors.add(key, "must be true or false"),
            }
        }
        match body.get("opt_out_words") {
            None | Some(Value::Null) => {}
            Some(Value::Array(words)) if words.len() <= MAX_OPT_OUT_WORDS => {
                let mut kept = Vec::new();
                for (i, word) in words.iter().enumerate() {
                    match word.as_str().map(str::trim) {
                        Some(w) if !w.is_empty() && w.chars().count() <= 50 => {
                            kept.push(w.to_owned());
                        }
                        _ => errors.add(
                            format!("opt_out_words[{i}]"),
                            "must be a word or short phrase (1 to 50 characters)",
                        ),
                    }
                }
                input.opt_out_words = Some(kept);
            }
            Some(_) => errors.add_limit(
                "opt_out_words",
                format!("must be a list of at most {MAX_OPT_OUT_WORDS} words"),
                MAX_OPT_OUT_WORDS as u64,
            ),
        }
        errors.finish()?;
        Ok(input)
    }
}

fn parse_step(errors: &mut FieldErrors, at: &str, step: &Value) -> Option<Step> {
    let Some(step) = step.as_object() else {
        errors.add(
            at,
            "must be an object {\"delay_seconds\", \"message\", \"outside_window\"?, \"fallback_template\"?}",
        );
        return None;
    };
    for key in step.keys() {
        if ![
            "delay_seconds",
            "message",
            "outside_window",
            "fallback_template",
        ]
        .contains(&key.as_str())
        {
            errors.add(
                format!("{at}.{key}"),
                "is not a field of a step (delay_seconds, message, outside_window, fallback_template)",
            );
        }
    }
    let delay_seconds = match step.get("delay_seconds").map(Value::as_i64) {
        Some(Some(delay)) if (0..=MAX_DELAY_SECONDS).contains(&delay) => Some(delay),
        None => {
            errors.add(
                format!("{at}.delay_seconds"),
                "is required: seconds to wait after the step before (or after enrolling, for the first)",
            );
            None
        }
        Some(_) => {
            errors.add_limit(
                format!("{at}.delay_seconds"),
                format!(
                    "must be a whole number of seconds from 0 to {MAX_DELAY_SECONDS} (90 days)"
                ),
                MAX_DELAY_SECONDS as u64,
            );
            None
        }
    };
    let message = match step.get("message") {
        Some(Value::Object(message)) => check_message(errors, &format!("{at}.message"), message),
        _ => {
            errors.add(
                format!("{at}.message"),
                "is required: {\"type\": \"text\", \"text\": {\"body\": ...}} or {\"type\": \"template\", \"template\": {...}}",
            );
            None
        }
    };
    let is_template = message
        .as_ref()
        .is_some_and(|m| m.get("type").and_then(Value::as_str) == Some("template"));
    let fallback_template = match step.get("fallback_template") {
        None | Some(Value::Null) => None,
        Some(template) => match validate("template", Some(template)) {
            Ok(_) => Some(template.clone()),
            Err(found) => {
                errors.absorb(found.prefixed(&format!("{at}.fallback_template")));
                None
            }
        },
    };
    let outside_window = match step.get("outside_window") {
        None | Some(Value::Null) if fallback_template.is_some() => OutsideWindow::FallbackTemplate,
        None | Some(Value::Null) => OutsideWindow::Wait,
        Some(Value::String(raw)) => match OutsideWindow::parse(raw) {
            Some(choice) => choice,
            None => {
                errors.add(
                    format!("{at}.outside_window"),
                    "must be \"wait\", \"fallback_template\" or \"skip\"",
                );
                OutsideWindow::Wait
            }
        },
        Some(_) => {
            errors.add(
                format!("{at}.outside_window"),
                "must be \"wait\", \"fallback_template\" or \"skip\"",
            );
            OutsideWindow::Wait
        }
    };
    if outside_window == OutsideWindow::FallbackTemplate
        && fallback_template.is_none()
        && !errors.has(&format!("{at}.fallback_template.name"))
    {
        errors.add(
            format!("{at}.fallback_template"),
            "is required when outside_window is \"fallback_template\": the approved template to send while the window is closed",
        );
    }
    if is_template && step.get("fallback_template").is_some_and(|v| !v.is_null()) {
        errors.add(
            format!("{at}.fallback_template"),
            "is only for free-form messages: a template step is sent whether the window is open or not",
        );
    }
    Some(Step {
        delay_seconds: delay_seconds?,
        message: message?,
        outside_window,
        fallback_template,
    })
}

/// A step's message: `{"type", <type>: {...}}` checked as a send would be.
fn check_message(
    errors: &mut FieldErrors,
    at: &str,
    message: &Map<String, Value>,
) -> Option<Value> {
    let Some(kind) = message.get("type").and_then(Value::as_str) else {
        errors.add(
            format!("{at}.type"),
            "is required: text, image, video, audio, document, sticker, location, contacts, interactive or template",
        );
        return None;
    };
    if kind == "reaction" {
        errors.add(
            format!("{at}.type"),
            "cannot be a reaction: a sequence step sends a message of its own",
        );
        return None;
    }
    for key in message.keys() {
        if key != "type" && key != kind {
            errors.add(
                format!("{at}.{key}"),
                format!("is not part of a {kind} message (the object goes under \"{kind}\")"),
            );
        }
    }
    match validate(kind, message.get(kind)) {
        Ok(validated) => Some(json!({
            "type": validated.message_type,
            validated.message_type.clone(): validated.type_object,
        })),
        Err(found) => {
            errors.absorb(found.prefixed(at));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_sequence_reads_with_its_defaults() {
        let input = SequenceInput::parse(
            &json!({
                "name": "Welcome",
                "steps": [
                    {"delay_seconds": 0, "message": {"type": "text", "text": {"body": "Hi"}}},
                    {"delay_seconds": 3600, "message": {"type": "text", "text": {"body": "Still there?"}},
                     "fallback_template": {"name": "follow_up", "language": {"code": "en"}}},
                    {"delay_seconds": 86400, "message": {"type": "template", "template": {"name": "offer", "language": {"code": "en"}}}}
                ]
            }),
            true,
        )
        .unwrap();
        let steps = input.steps.unwrap();
        assert_eq!(steps[0].outside_window, OutsideWindow::Wait);
        assert_eq!(steps[1].outside_window, OutsideWindow::FallbackTemplate);
        assert_eq!(steps[2].message["template"]["name"], "offer");
        let stored = serde_json::to_string(&steps).unwrap();
        assert_eq!(from_stored(&stored).unwrap(), steps);
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let errors = SequenceInput::parse(
            &json!({
                "steps": [
                    {"delay_seconds": -1, "message": {"type": "text", "text": {"body": ""}}},
                    {"delay_seconds": 10, "message": {"type": "text", "text": {"body": "x"}}, "outside_window": "fallback_template"},
                    {"message": {"type": "reaction", "reaction": {}}}
                ],
                "colour": "blue"
            }),
            true,
        )
        .unwrap_err();
        for field in [
            "name",
            "colour",
            "steps[0].delay_seconds",
            "steps[0].message.text.body",
            "steps[1].fallback_template",
            "steps[2].delay_seconds",
            "steps[2].message.type",
        ] {
            assert!(errors.has(field), "{field}: {}", errors.to_details());
        }
    }

    #[test]
    fn a_patch_needs_no_name_or_steps() {
        let input = SequenceInput::parse(&json!({"stop_on_reply": false}), false).unwrap();
        assert_eq!(input.stop_on_reply, Some(false));
        assert!(input.steps.is_none());
    }
}
