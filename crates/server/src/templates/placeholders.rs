//! Finds the variables of a template text, `{{1}}` or `{{first_name}}`, with their byte positions,
//! and the malformed ones (`{{ }}`, `{{1`, `{{Name}}`, `{{1.5}}`) that Meta would refuse.

/// A well-formed variable in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// What stands between the braces: digits (`1`) or a lowercase name (`first_name`).
    pub name: String,
    /// Byte offset of the first `{`.
    pub start: usize,
    /// Byte offset just past the last `}`.
    pub end: usize,
}

impl Placeholder {
    /// The number of a positional variable (`{{2}}` is 2); `None` for a named one.
    pub fn position(&self) -> Option<u32> {
        if is_number(&self.name) {
            self.name.parse().ok()
        } else {
            None
        }
    }

    pub fn is_positional(&self) -> bool {
        is_number(&self.name)
    }

    /// The variable as written: `{{1}}`, `{{first_name}}`.
    pub fn written(&self) -> String {
        written(&self.name)
    }
}

/// Braces that look like a variable but are not one Meta reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The offending text, shortened when it runs on (`{{Name}}`, `{{1`).
    pub text: String,
    /// Byte offset where it starts.
    pub start: usize,
}

/// The variables of a text taken together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No variables at all.
    None,
    /// Only `{{1}}`, `{{2}}`, ...
    Positional,
    /// Only `{{first_name}}`, ...
    Named,
    /// Both kinds at once, which Meta refuses.
    Mixed,
}

/// Everything found in one text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub placeholders: Vec<Placeholder>,
    pub malformed: Vec<Malformed>,
}

/// `{{name}}` for a variable's name.
pub fn written(name: &str) -> String {
    format!("{{{{{name}}}}}")
}

/// The well-formed variables of `text`, in the order they appear.
pub fn find(text: &str) -> Vec<Placeholder> {
    scan(text).placeholders
}

/// The distinct variable names of `text`, in the order of their first appearance.
pub fn distinct_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for placeholder in find(text) {
        if !names.contains(&placeholder.name) {
            names.push(placeholder.name);
        }
    }
    names
}

/// Whether a set of variables is positional, named, both or none.
pub fn classify(placeholders: &[Placeholder]) -> Kind {
    let positional = placeholders.iter().any(Placeholder::is_positional);
    let named = placeholders.iter().any(|p| !p.is_positional());
    match (positional, named) {
        (false, false) => Kind::None,
        (true, false) => Kind::Positional,
        (false, true) => Kind::Named,
        (true, true) => Kind::Mixed,
    }
}

/// Well-formed and malformed variables of `text`. A `{{` opens a variable that must close with
/// `}}` before any other brace or line break; a `}}` that closes nothing is malformed too.
pub fn scan(text: &str) -> Scan {
    let mut found = Scan::default();
    let mut from = 0;
    while let Some(offset) = text[from..].find("{{") {
        let start = from + offset;
        stray_closings(text, from, start, &mut found.malformed);
        let inner_start = start + 2;
        let rest = &text[inner_start..];
        match rest.find(['{', '}', '\n']) {
            Some(stop) if rest[stop..].starts_with("}}") => {
                let end = inner_start + stop + 2;
                let name = &rest[..stop];
                if is_number(name) || is_name(name) {
                    found.placeholders.push(Placeholder {
                        name: name.to_owned(),
                        start,
                        end,
                    });
                } else {
                    found.malformed.push(Malformed {
                        text: shorten(&text[start..end]),
                        start,
                    });
                }
                from = end;
            }
            _ => {
                found.malformed.push(Malformed {
                    text: shorten(&text[start..]),
                    start,
                });
                from = inner_start;
            }
        }
    }
    stray_closings(text, from, text.len(), &mut found.malformed);
    found
}

/// `}}` between `from` and `to` that closes no `{{`.
fn stray_closings(text: &str, from: usize, to: usize, into: &mut Vec<Malformed>) {
    let Some(gap) = text.get(from..to) else {
        return;
    };
    let mut at = 0;
    while let Some(offset) = gap[at..].find("}}") {
        let start = from + at + offset;
        into.push(Malformed {
            text: "}}".to_owned(),
            start,
        });
        at += offset + 2;
    }
}

/// A positional variable: digits without a leading zero.
fn is_number(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('0') && name.bytes().all(|b| b.is_ascii_digit())
}

/// A named variable: `[a-z_][a-z0-9_]*`.
fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// At most 20 characters of a malformed piece, so a reason stays one line.
fn shorten(piece: &str) -> String {
    let piece = piece.split('\n').next().unwrap_or_default();
    let mut short: String = piece.chars().take(20).collect();
    if short.len() < piece.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn positional_and_named_variables_are_found_with_their_positions() {
        let text = "Hi {{1}}, order {{order_id}} ships {{2}}.";
        let found = find(text);
        let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["1", "order_id", "2"]);
        assert_eq!(&text[found[0].start..found[0].end], "{{1}}");
        assert_eq!(&text[found[1].start..found[1].end], "{{order_id}}");
        assert_eq!(found[2].position(), Some(2));
        assert_eq!(found[1].position(), None);
        assert_eq!(classify(&found), Kind::Mixed);
    }

    #[test]
    fn a_set_of_variables_is_classified_as_positional_named_or_none() {
        assert_eq!(classify(&find("{{1}} and {{2}}")), Kind::Positional);
        assert_eq!(classify(&find("{{first_name}} {{_x9}}")), Kind::Named);
        assert_eq!(classify(&find("no variables")), Kind::None);
    }

    #[test]
    fn malformed_braces_are_reported_and_not_taken_as_variables() {
        for text in [
            "Hi {{ }}",
            "Hi {{1",
            "Hi {{Name}}",
            "Hi {{1.5}}",
            "Hi {{first name}}",
            "Hi {{01}}",
            "Hi {{9x}}",
            "Hi {1}}",
            "Hi {{{1}}}",
            "Hi {{1\n}}",
        ] {
            let scan = scan(text);
            assert!(!scan.malformed.is_empty(), "{text}");
            assert!(
                scan.placeholders.is_empty(),
                "{text}: {:?}",
                scan.placeholders
            );
        }
        let scan = scan("Hi {{Name}} and {{1}}");
        assert_eq!(scan.malformed[0].text, "{{Name}}");
        assert_eq!(scan.placeholders.len(), 1);
    }

    #[test]
    fn an_unclosed_variable_does_not_hide_a_later_one() {
        let scan = scan("Hi {{1 and {{2}}");
        assert_eq!(scan.malformed.len(), 1);
        assert_eq!(scan.placeholders[0].name, "2");
    }

    #[test]
    fn distinct_names_keep_the_order_of_first_appearance() {
        assert_eq!(distinct_names("{{2}} {{1}} {{2}}"), ["2", "1"]);
        assert_eq!(written("first_name"), "{{first_name}}");
    }

    proptest! {
        #[test]
        fn find_never_panics_and_positions_fit_the_text(text in "(\\PC|[{}\n]){0,64}") {
            let scan = scan(&text);
            for placeholder in &scan.placeholders {
                prop_assert!(placeholder.end <= text.len());
                prop_assert_eq!(&text[placeholder.start..placeholder.end], placeholder.written());
            }
            for malformed in &scan.malformed {
                prop_assert!(text.is_char_boundary(malformed.start));
            }
        }
    }
}
