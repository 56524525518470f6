//! A contact's fields as the API, the dashboard and a CSV row give them: checked one by one,
//! every problem reported at once, values normalised (the phone number to its `wa_id`, tags
//! trimmed and without duplicates, custom field values to strings).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::phone::PhoneNumber;
use crate::validation::FieldErrors;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NOTES_CHARS: usize = 10_000;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 50;
pub const MAX_CUSTOM_FIELDS: usize = 50;
pub const MAX_FIELD_KEY_CHARS: usize = 64;
pub const MAX_FIELD_VALUE_CHARS: usize = 1_000;

/// Whether a contact may be sent marketing.
pub mod opt_in {
    pub const UNKNOWN: &str = "unknown";
    pub const OPTED_IN: &str = "opted_in";
    pub const OPTED_OUT: &str = "opted_out";
    pub const ALL: [&str; 3] = [UNKNOWN, OPTED_IN, OPTED_OUT];
}

/// Where a contact came from.
pub mod source {
    pub const INBOUND: &str = "inbound";
    pub const OUTBOUND: &str = "outbound";
    pub const API: &str = "api";
    pub const IMPORT: &str = "import";
    pub const DASHBOARD: &str = "dashboard";
}

const KEYS: [&str; 8] = [
    "phone",
    "name",
    "email",
    "tags",
    "custom_fields",
    "notes",
    "opt_in",
    "opt_in_reason",
];

/// A field that may be left alone, cleared, or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Self::Keep)
    }
}

/// A contact's fields from a POST (a phone number required) or a PATCH (those given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactInput {
    pub phone: Option<PhoneNumber>,
    pub name: Change<String>,
    pub email: Change<String>,
    pub tags: Option<Vec<String>>,
    /// Keys set to a value, or to `None` to remove them.
    pub custom_fields: BTreeMap<String, Option<String>>,
    pub notes: Change<String>,
    pub opt_in: Option<String>,
    pub opt_in_reason: Option<String>,
}

impl ContactInput {
    /// `creating` requires the phone number; a PATCH may not change it.
    pub fn parse(body: &Value, creating: bool) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(body) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(errors);
        };
        errors.unknown_keys(body, &KEYS, "a contact");
        let mut input = Self::default();
        match (body.get("phone"), creating) {
            (None | Some(Value::Null), true) => errors.add(
                "phone",
                "is required: the customer's number in international form, e.g. +4915112345678",
            ),
            (None, false) => {}
            (Some(_), false) => errors.add(
                "phone",
                "cannot change: a contact is its number; create a contact for the new number",
            ),
            (Some(Value::String(raw)), true) => match PhoneNumber::parse(raw) {
                Ok(phone) => input.phone = Some(phone),
                Err(e) => errors.add("phone", e.to_string()),
            },
            (Some(Value::Number(n)), true) => match PhoneNumber::parse(&n.to_string()) {
                Ok(phone) => input.phone = Some(phone),
                Err(e) => errors.add("phone", e.to_string()),
            },
            (Some(_), true) => errors.add("phone", "must be a phone number (a string)"),
        }
        input.name = text_change(&mut errors, body, "name", MAX_NAME_CHARS);
        input.email = text_change(&mut errors, body, "email", MAX_EMAIL_CHARS);
        if let Change::Set(email) = &input.email
            && !looks_like_email(email)
        {
            errors.add("email", "must be an email address, like ana@example.com");
        }
        input.notes = text_change(&mut errors, body, "notes", MAX_NOTES_CHARS);
        match body.get("tags") {
            None => {}
            Some(Value::Null) => input.tags = Some(Vec::new()),
            Some(Value::Array(items)) => {
                let raw: Vec<Option<&str>> = items.iter().map(Value::as_str).collect();
                if raw.iter().any(Option::is_none) {
                    errors.add("tags", "must be a list of strings");
                } else {
                    input.tags = tags(&mut errors, raw.into_iter().flatten());
                }
            }
            Some(Value::String(list)) => input.tags = tags(&mut errors, list.split(',')),
            Some(_) => errors.add("tags", "must be a list of strings"),
        }
        match body.get("custom_fields") {
            None | Some(Value::Null) => {}
            Some(Value::Object(fields)) => {
                input.custom_fields = custom_fields(&mut errors, fields);
            }
            Some(_) => errors.add(
                "custom_fields",
                "must be an object of field names to values, e.g. {\"plan\": \"gold\"}",
            ),
        }
        match body.get("opt_in") {
            None | Some(Value::Null) => {}
            Some(Value::String(state)) if opt_in::ALL.contains(&state.trim()) => {
                input.opt_in = Some(state.trim().to_owned());
            }
            Some(Value::Bool(true)) => input.opt_in = Some(opt_in::OPTED_IN.to_owned()),
            Some(Value::Bool(false)) => input.opt_in = Some(opt_in::OPTED_OUT.to_owned()),
            Some(_) => errors.add("opt_in", "must be opted_in, opted_out or unknown"),
        }
        match text_change(&mut errors, body, "opt_in_reason", MAX_NAME_CHARS) {
            Change::Set(reason) if input.opt_in.is_some() => input.opt_in_reason = Some(reason),
            Change::Set(_) => errors.add("opt_in_reason", "goes with opt_in"),
            Change::Keep | Change::Clear => {}
        }
        errors.finish().map(|()| input)
    }
}

/// A string field: absent keeps it, `null` or `""` clears it, a string sets it (trimmed).
fn text_change(
    errors: &mut FieldErrors,
    body: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Change<String> {
    match body.get(key) {
        None => Change::Keep,
        Some(Value::Null) => Change::Clear,
        Some(Value::String(s)) if s.trim().is_empty() => Change::Clear,
        Some(Value::String(s)) if s.trim().chars().count() <= max => {
            Change::Set(s.trim().to_owned())
        }
        Some(Value::String(_)) => {
            errors.add_limit(key, format!("must be at most {max} characters"), max as u64);
            Change::Keep
        }
        Some(_) => {
            errors.add(key, "must be a string");
            Change::Keep
        }
    }
}

fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// Trimmed, without empty entries, each once (the first spelling wins, compared without case).
fn tags<'a>(errors: &mut FieldErrors, raw: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut kept: Vec<String> = Vec::new();
    for tag in raw.map(str::trim).filter(|t| !t.is_empty()) {
        if tag.chars().count() > MAX_TAG_CHARS {
            errors.add_limit(
                "tags",
                format!(
                    "each tag must be at most {MAX_TAG_CHARS} characters (\"{tag}\" is longer)"
                ),
                MAX_TAG_CHARS as u64,
            );
            return None;
        }
        if !kept.iter().any(|k| k.to_lowercase() == tag.to_lowercase()) {
            kept.push(tag.to_owned());
        }
    }
    if kept.len() > MAX_TAGS {
        errors.add_limit(
            "tags",
            format!("a contact has at most {MAX_TAGS} tags"),
            MAX_TAGS as u64,
        );
        return None;
    }
    Some(kept)
}

fn custom_fields(
    errors: &mut FieldErrors,
    fields: &Map<String, Value>,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    if fields.len() > MAX_CUSTOM_FIELDS {
        errors.add_limit(
            "custom_fields",
            format!("a contact has at most {MAX_CUSTOM_FIELDS} custom fields"),
            MAX_CUSTOM_FIELDS as u64,
        );
        return out;
    }
    for (key, value) in fields {
        let field = format!("custom_fields.{key}");
        if !is_field_key(key) {
            errors.add(
                field,
                format!(
                    "a field name is 1 to {MAX_FIELD_KEY_CHARS} letters, digits or underscores"
                ),
            );
            continue;
        }
        let value = match value {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                errors.add(field, "must be a string, a number, true/false or null");
                continue;
            }
        };
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > MAX_FIELD_VALUE_CHARS)
        {
            errors.add_limit(
                field,
                format!("must be at most {MAX_FIELD_VALUE_CHARS} characters"),
                MAX_FIELD_VALUE_CHARS as u64,
            );
            continue;
        }
        out.insert(key.clone(), value.filter(|v| !v.is_empty()));
    }
    out
}

/// Field names a template parameter or a CSV column can name: `plan`, `first_order_2024`.
pub fn is_field_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_FIELD_KEY_CHARS
        && key.chars().all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_new_contact_needs_a_phone_number_and_gets_it_normalised() {
        let errors = ContactInput::parse(&json!({"name": "Ana"}), true).unwrap_err();
        assert!(errors.has("phone"));
        let input = ContactInput::parse(
            &json!({"phone": "+49 (151) 123-4567", "name": "  Ana  ", "tags": ["vip", " VIP ", "lead"]}),
            true,
        )
        .unwrap();
        assert_eq!(input.phone.unwrap().as_str(), "491511234567");
        assert_eq!(input.name, Change::Set("Ana".into()));
        assert_eq!(input.tags, Some(vec!["vip".to_owned(), "lead".to_owned()]));
    }

    #[test]
    fn every_wrong_field_is_reported_at_once() {
        let errors = ContactInput::parse(
            &json!({
                "phone": "12ab", "email": "not an email", "opt_in": "maybe",
                "custom_fields": {"bad key!": "x", "ok": [1]}, "colour": "red"
            }),
            true,
        )
        .unwrap_err();
        for field in [
            "phone",
            "email",
            "opt_in",
            "custom_fields.bad key!",
            "custom_fields.ok",
            "colour",
        ] {
            assert!(errors.has(field), "{field} not reported: {errors:?}");
        }
    }

    #[test]
    fn a_patch_may_clear_fields_and_remove_custom_ones_but_never_change_the_number() {
        let input = ContactInput::parse(
            &json!({"email": null, "notes": "", "custom_fields": {"plan": null, "visits": 3}}),
            false,
        )
        .unwrap();
        assert_eq!(input.email, Change::Clear);
        assert_eq!(input.notes, Change::Clear);
        assert!(input.name.is_keep());
        assert_eq!(input.custom_fields.get("plan"), Some(&None));
        assert_eq!(input.custom_fields.get("visits"), Some(&Some("3".into())));
        let errors = ContactInput::parse(&json!({"phone": "+4915112345678"}), false).unwrap_err();
        assert!(errors.has("phone"));
    }
}
