//! A tenant's own settings: the time zone its days and scheduled times are read in (analytics
//! days, broadcast times), and the opt-out words it adds to the localised defaults.

use serde_json::{Value, json};

use crate::automation::opt_out::DEFAULT_WORDS;
use crate::validation::FieldErrors;

pub const MAX_OPT_OUT_WORDS: usize = 50;
pub const MAX_OPT_OUT_WORD_CHARS: usize = 50;

const KEYS: [&str; 2] = ["time_zone", "opt_out_words"];

/// A tenant's settings as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    /// An IANA time zone name (`Europe/Berlin`), or `UTC`.
    pub time_zone: String,
    /// Words besides [`DEFAULT_WORDS`] that opt a customer out.
    pub opt_out_words: Vec<String>,
}

/// A change to the settings: only the fields given change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SettingsChange {
    pub time_zone: Option<String>,
    pub opt_out_words: Option<Vec<String>>,
}

impl SettingsChange {
    /// Reads `PATCH /api/v1/settings`, telling every problem at once.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(body) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(errors);
        };
        errors.unknown_keys(body, &KEYS, "the settings");
        let mut change = Self::default();
        match body.get("time_zone") {
            None => {}
            Some(Value::String(name)) => match time_zone(name) {
                Ok(name) => change.time_zone = Some(name),
                Err(reason) => errors.add("time_zone", reason),
            },
            Some(_) => errors.add(
                "time_zone",
                "must be an IANA time zone name like \"Europe/Berlin\" or \"UTC\"",
            ),
        }
        match body.get("opt_out_words") {
            None => {}
            Some(Value::Array(words)) => {
                if words.len() > MAX_OPT_OUT_WORDS {
                    errors.add_limit(
                        "opt_out_words",
                        format!("may hold at most {MAX_OPT_OUT_WORDS} words"),
                        MAX_OPT_OUT_WORDS as u64,
                    );
                }
                let mut kept: Vec<String> = Vec::new();
                for (i, word) in words.iter().enumerate() {
                    let field = format!("opt_out_words[{i}]");
                    match word.as_str().map(str::trim) {
                        Some(w) if w.is_empty() || w.chars().count() > MAX_OPT_OUT_WORD_CHARS => {
                            errors.add_limit(
                                field,
                                format!("must be 1 to {MAX_OPT_OUT_WORD_CHARS} characters"),
                                MAX_OPT_OUT_WORD_CHARS as u64,
                            )
                        }
                        Some(w) if crate::assistant::faq::words(w).is_empty() => errors.add(
                            field,
                            "must hold a word (punctuation alone never matches a message)",
                        ),
                        Some(w) => {
                            if !kept.iter().any(|k| k.to_lowercase() == w.to_lowercase()) {
                                kept.push(w.to_owned());
                            }
                        }
                        None => errors.add(field, "must be a string"),
                    }
                }
                change.opt_out_words = Some(kept);
            }
            Some(_) => errors.add(
                "opt_out_words",
                "must be a list of words or phrases, like [\"halt\", \"no more\"]",
            ),
        }
        errors.finish()?;
        Ok(change)
    }

    pub fn apply_to(self, settings: &mut TenantSettings) {
        if let Some(zone) = self.time_zone {
            settings.time_zone = zone;
        }
        if let Some(words) = self.opt_out_words {
            settings.opt_out_words = words;
        }
    }
}

/// Checks an IANA time zone name against the built-in tz database; answers the name as the
/// database spells it.
pub fn time_zone(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("must be an IANA time zone name like \"Europe/Berlin\" or \"UTC\"".into());
    }
    match jiff::tz::db().get(name) {
        Ok(zone) => Ok(zone.iana_name().unwrap_or(name).to_owned()),
        Err(_) => Err(format!(
            "{name:?} is not a time zone this server knows: use an IANA name like \"America/Sao_Paulo\", \"Europe/Berlin\" or \"UTC\""
        )),
    }
}

/// The settings as the API shows them, with the defaults that always apply.
pub fn view(settings: &TenantSettings) -> Value {
    json!({
        "time_zone": settings.time_zone,
        "opt_out_words": settings.opt_out_words,
        "default_opt_out_words": DEFAULT_WORDS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_are_checked_against_the_tz_database() {
        assert_eq!(time_zone("Europe/Berlin").as_deref(), Ok("Europe/Berlin"));
        assert_eq!(time_zone("UTC").as_deref(), Ok("UTC"));
        assert_eq!(
            time_zone(" America/Sao_Paulo ").as_deref(),
            Ok("America/Sao_Paulo")
        );
        assert!(time_zone("Mars/Olympus_Mons").unwrap_err().contains("IANA"));
        assert!(time_zone("").is_err());
    }

    #[test]
    fn a_change_names_every_wrong_field() {
        let errors = SettingsChange::parse(&json!({
            "time_zone": "Somewhere/Else", "opt_out_words": ["ok", "", 3, "!!"], "colour": "red"
        }))
        .unwrap_err();
        for field in [
            "time_zone",
            "opt_out_words[1]",
            "opt_out_words[2]",
            "opt_out_words[3]",
            "colour",
        ] {
            assert!(errors.has(field), "{field}: {}", errors.summary());
        }
        let change =
            SettingsChange::parse(&json!({"opt_out_words": [" Halt ", "halt", "no more"]}))
                .unwrap();
        assert_eq!(
            change.opt_out_words,
            Some(vec!["Halt".to_owned(), "no more".to_owned()])
        );
        assert_eq!(change.time_zone, None, "a field left out is not changed");
    }
}
