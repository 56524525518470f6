//! Field-by-field validation that reports every problem of a request at once, each with the field
//! and what to fix, and becomes a 422 with `details.fields`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors {
    fields: BTreeMap<String, String>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.fields
            .entry(field.into())
            .or_insert_with(|| problem.into());
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(())` when nothing was added, else the errors.
    pub fn finish(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// A sentence naming the first problem and how many more there are.
    pub fn summary(&self) -> String {
        match self.fields.iter().next() {
            None => "the request is not valid".to_owned(),
            Some((field, problem)) if self.fields.len() == 1 => format!("{field}: {problem}"),
            Some((field, problem)) => {
                format!("{field}: {problem} (and {} more)", self.fields.len() - 1)
            }
        }
    }

    pub fn to_details(&self) -> Value {
        json!({ "fields": self.fields })
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
        errors.add(field, format!("must be at most {max_len} characters"));
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
        assert!(errors.summary().contains("(and 3 more)"));
        let mut fine = FieldErrors::new();
        check_meta_id(&mut fine, "waba_id", "102290129340398");
        assert!(fine.finish().is_ok());
    }
}
