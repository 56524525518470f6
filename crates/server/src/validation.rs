//! Field-by-field validation that reports every problem of a request at once, each with the field,
//! what to fix and (where one applies) the limit that was crossed; it becomes a 422 whose
//! `details` name the first problem (`field`, `reason`, `limit`) and list them all (`fields`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    reason: String,
    limit: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors {
    /// In the order found, so the first problem reported is the first one met.
    order: Vec<String>,
    fields: BTreeMap<String, Problem>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with a field; the first problem found for a field is the one kept.
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.insert(field.into(), problem.into(), None);
    }

    /// Records a field that crosses a limit (a length, a count), naming the limit.
    pub fn add_limit(&mut self, field: impl Into<String>, problem: impl Into<String>, limit: u64) {
        self.insert(field.into(), problem.into(), Some(limit));
    }

    fn insert(&mut self, field: String, reason: String, limit: Option<u64>) {
        if !self.fields.contains_key(&field) {
            self.order.push(field.clone());
            self.fields.insert(field, Problem { reason, limit });
        }
    }

    /// Records every key of `body` that is not one of `keys`, naming the fields `what` has: a
    /// misspelt field is told, never silently ignored.
    pub fn unknown_keys(&mut self, body: &Map<String, Value>, keys: &[&str], what: &str) {
        for key in body.keys() {
            if !keys.contains(&key.as_str()) {
                self.add(
                    key.clone(),
                    format!("is not a field of {what} (fields: {})", keys.join(", ")),
                );
            }
        }
    }

    /// Takes in another set of problems (a nested check), keeping the first found per field.
    pub fn absorb(&mut self, other: FieldErrors) {
        let mut fields = other.fields;
        for field in other.order {
            if let Some(problem) = fields.remove(&field) {
                self.insert(field, problem.reason, problem.limit);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The same problems with `prefix.` before each field: the checks of a nested object.
    pub fn prefixed(self, prefix: &str) -> Self {
        let mut fields = self.fields;
        let mut out = Self::new();
        for field in self.order {
            if let Some(problem) = fields.remove(&field) {
                out.insert(format!("{prefix}.{field}"), problem.reason, problem.limit);
            }
        }
        out
    }

    /// Whether a problem was recorded for `field`.
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// `Ok(())` when nothing was added, else the errors.
    pub fn finish(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// A sentence naming the first problem and how many more there are.
    pub fn summary(&self) -> String {
        let Some(first) = self.order.first() else {
            return "the request is not valid".to_owned();
        };
        let reason = &self.fields[first].reason;
        match self.fields.len() {
            1 => format!("{first}: {reason}"),
            n => format!("{first}: {reason} (and {} more)", n - 1),
        }
    }

    pub fn to_details(&self) -> Value {
        let mut details = Map::new();
        if let Some(first) = self.order.first() {
            let problem = &self.fields[first];
            details.insert("field".into(), json!(first));
            details.insert("reason".into(), json!(problem.reason));
            if let Some(limit) = problem.limit {
                details.insert("limit".into(), json!(limit));
            }
        }
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(field, problem)| (field.clone(), json!(problem.reason)))
            .collect();
        details.insert("fields".into(), Value::Object(fields));
        let limits: Map<String, Value> = self
            .fields
            .iter()
            .filter_map(|(field, problem)| problem.limit.map(|l| (field.clone(), json!(l))))
            .collect();
        if !limits.is_empty() {
            details.insert("limits".into(), Value::Object(limits));
        }
        Value::Object(details)
    }
}

/// Meta's object ids (phone number, business account) are decimal numbers.
pub fn check_meta_id(errors: &mut FieldErrors, field: &str, value: &str) {
    let ok = !value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        errors.add(
            field,
            "must be Meta's numeric id (digits only), as shown in the WhatsApp Manager",
        );
    }
}

/// A credential pasted from Meta's dashboard: present, one line, no spaces, not absurdly long.
pub fn check_credential(errors: &mut FieldErrors, field: &str, value: &str, max_len: usize) {
    if value.trim().is_empty() {
        errors.add(field, "is required");
    } else if value.len() > max_len {
        errors.add_limit(
            field,
            format!("must be at most {max_len} characters"),
            max_len as u64,
        );
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add(
            field,
            "must not contain spaces or line breaks (check the copy and paste)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut errors = FieldErrors::new();
        check_meta_id(&mut errors, "phone_number_id", "12a");
        check_credential(&mut errors, "access_token", "", 10);
        check_credential(&mut errors, "app_secret", "a b", 10);
        check_credential(&mut errors, "verify_token", "12345678901", 10);
        let details = errors.to_details();
        for field in [
            "phone_number_id",
            "access_token",
            "app_secret",
            "verify_token",
        ] {
            assert!(details["fields"][field].is_string(), "{field}");
        }
        assert_eq!(
            details["field"], "phone_number_id",
            "the first problem met leads"
        );
        assert_eq!(details["limits"]["verify_token"], 10);
        assert!(errors.summary().contains("(and 3 more)"));
        let mut fine = FieldErrors::new();
        check_meta_id(&mut fine, "waba_id", "102290129340398");
        assert!(fine.finish().is_ok());
    }

    #[test]
    fn a_crossed_limit_is_named_in_the_details() {
        let mut errors = FieldErrors::new();
        errors.add_limit("text.body", "must be at most 4096 characters", 4096);
        let details = errors.to_details();
        assert_eq!(details["field"], "text.body");
        assert_eq!(details["limit"], 4096);
    }
}
