//! Checks a new template submitted through `POST /api/v1/templates` against the rules of Meta's
//! that can be checked here, reporting every problem at once with its field path
//! (`components[1].example.body_text`), so a business fixes the template now rather than after a
//! rejection from Meta's review.
//!
//! The request is walked as JSON rather than parsed into `cloudapi` types, for the same reason as
//! the send check: a typed parse stops at the first wrong field.

use cloudapi::templates::{TemplateButton, TemplateCreateRequest, TemplateDefinitionComponent};
use serde_json::{Map, Value};
use url::Url;

use super::ParameterFormat;
use super::placeholders::{self, Kind, Placeholder};
use crate::validation::FieldErrors;

/// `name`: lowercase letters, digits and underscores.
pub const NAME_MAX_CHARS: usize = 512;
/// `text` of a TEXT header.
pub const HEADER_TEXT_MAX_CHARS: usize = 60;
/// Variables in a TEXT header.
pub const HEADER_VARIABLES_MAX: usize = 1;
/// `text` of the body.
pub const BODY_TEXT_MAX_CHARS: usize = 1024;
/// `text` of the footer.
pub const FOOTER_TEXT_MAX_CHARS: usize = 60;
/// Buttons of one template, all types together.
pub const BUTTONS_MAX: usize = 10;
/// Quick reply buttons of one template.
pub const QUICK_REPLY_BUTTONS_MAX: usize = 10;
/// URL buttons of one template.
pub const URL_BUTTONS_MAX: usize = 2;
/// Phone number buttons of one template.
pub const PHONE_NUMBER_BUTTONS_MAX: usize = 1;
/// Copy code buttons of one template.
pub const COPY_CODE_BUTTONS_MAX: usize = 1;
/// `text` of a button: its label.
pub const BUTTON_TEXT_MAX_CHARS: usize = 25;
/// `url` of a URL button.
pub const BUTTON_URL_MAX_CHARS: usize = 2000;
/// Variables in the `url` of a URL button.
pub const BUTTON_URL_VARIABLES_MAX: usize = 1;
/// `phone_number` of a phone number button.
pub const PHONE_NUMBER_MAX_CHARS: usize = 20;
/// `example` of a copy code button: the sample code.
pub const COPY_CODE_EXAMPLE_MAX_CHARS: usize = 15;
/// `code_expiration_minutes` of an authentication template's footer.
pub const CODE_EXPIRATION_MINUTES_MAX: u64 = 90;
/// `supported_apps` of a one-tap or zero-tap OTP button.
pub const SUPPORTED_APPS_MAX: usize = 5;
/// `signature_hash` of a supported app: Android's app signing key hash.
pub const SIGNATURE_HASH_CHARS: usize = 11;

/// `category`, as Meta spells it.
pub const CATEGORIES: [&str; 3] = ["MARKETING", "UTILITY", "AUTHENTICATION"];
/// Component `type`s of a definition.
pub const COMPONENT_TYPES: [&str; 4] = ["HEADER", "BODY", "FOOTER", "BUTTONS"];
/// Header `format`s.
pub const HEADER_FORMATS: [&str; 5] = ["TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION"];
/// Button `type`s.
pub const BUTTON_TYPES: [&str; 9] = [
    "QUICK_REPLY",
    "URL",
    "PHONE_NUMBER",
    "COPY_CODE",
    "FLOW",
    "OTP",
    "CATALOG",
    "MPM",
    "VOICE_CALL",
];
/// `otp_type` of an OTP button.
pub const OTP_TYPES: [&str; 3] = ["COPY_CODE", "ONE_TAP", "ZERO_TAP"];

/// Meta's template language codes. Case matters to Meta: `en_US`, not `en_us`.
pub const LANGUAGES: &[&str] = &[
    "af", "sq", "ar", "ar_AE", "ar_EG", "ar_LB", "ar_MA", "ar_QA", "az", "be_BY", "bn", "bn_IN",
    "bg", "ca", "zh_CN", "zh_HK", "zh_TW", "hr", "cs", "da", "prs_AF", "nl", "nl_BE", "en",
    "en_GB", "en_US", "en_AE", "en_AU", "en_CA", "en_GH", "et", "fil", "fi", "fr", "ka", "de",
    "el", "gu", "ha", "he", "hi", "hu", "id", "ga", "it", "ja", "kn", "kk", "rw_RW", "ko", "ky_KG",
    "lo", "lv", "lt", "mk", "ms", "ml", "mr", "nb", "fa", "pl", "pt_BR", "pt_PT", "pa", "ro", "ru",
    "sr", "sk", "sl", "es", "es_AR", "es_ES", "es_MX", "sw", "sv", "ta", "te", "th", "tr", "uk",
    "ur", "uz", "vi", "zu",
];

/// Top-level keys of the request. `connection_id` is the caller's; `sub_category` is one Meta
/// lists on its templates and sets itself, taken so a listed template can be sent back as is.
const TOP_LEVEL_KEYS: [&str; 8] = [
    "name",
    "language",
    "category",
    "parameter_format",
    "components",
    "allow_category_change",
    "connection_id",
    "sub_category",
];

/// Component keys read here; any other key is kept as it came (Meta adds fields).
const COMPONENT_KEYS: [&str; 5] = ["type", "format", "text", "example", "buttons"];
/// Button keys read into `TemplateButton`'s own fields; the rest go to its `extra`.
const BUTTON_KEYS: [&str; 4] = ["type", "text", "url", "phone_number"];

/// A new template that passed every check, ready to submit to Meta and to store while PENDING.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    /// Upper case: `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    pub parameter_format: ParameterFormat,
    /// Normalised: upper-case `type`, `format`, button `type` and `otp_type`; other keys as given.
    pub components: Vec<TemplateDefinitionComponent>,
    /// Lets Meta move the template to the category its review finds.
    pub allow_category_change: Option<bool>,
}

impl NewTemplate {
    pub fn to_create_request(&self) -> TemplateCreateRequest {
        let mut extra = Map::new();
        if let Some(allow) = self.allow_category_change {
            extra.insert("allow_category_change".to_owned(), Value::Bool(allow));
        }
        TemplateCreateRequest {
            name: self.name.clone(),
            language: self.language.clone(),
            category: self.category.clone(),
            parameter_format: Some(self.parameter_format.as_str().to_ascii_lowercase()),
            components: self.components.clone(),
            extra,
        }
    }

    /// The template as it will be stored while PENDING (for the caller to store).
    pub fn components_json(&self) -> String {
        serde_json::to_string(&self.components).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// `body` is the request object; the key `connection_id` is the caller's and is ignored here.
pub fn check_definition(body: &Value) -> Result<NewTemplate, FieldErrors> {
    let mut walk = Walk::default();
    let Some(object) = body.as_object() else {
        walk.problem(
            "body",
            "must be a JSON object with name, language, category and components",
        );
        return Err(walk.errors);
    };
    let name = walk.name(object.get("name"));
    let language = walk.language(object.get("language"));
    let category = walk.category(object.get("category"));
    walk.auth = category.as_deref() == Some("AUTHENTICATION");
    let parameter_format = walk.parameter_format(object.get("parameter_format"));
    let allow_category_change = match object.get("allow_category_change") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(allow)) => Some(*allow),
        Some(_) => {
            walk.problem(
                "allow_category_change",
                "must be true or false, or be left out",
            );
            None
        }
    };
    let components = walk.components(object.get("components"));
    for key in object.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            walk.problem(
                key,
                "is not a field of a template; use name, language, category, parameter_format, \
                 components and allow_category_change",
            );
        }
    }
    walk.errors.finish()?;
    match (name, language, category) {
        (Some(name), Some(language), Some(category)) => Ok(NewTemplate {
            name,
            language,
            category,
            parameter_format: parameter_format.unwrap_or(ParameterFormat::Positional),
            components,
            allow_category_change,
        }),
        // Each of them records a problem when it is missing, so this is not reached.
        _ => Err(FieldErrors::new()),
    }
}

fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// `{{1}}, {{2}}` for a list of names.
fn written_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| placeholders::written(name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A close form of a wrong name: lower case, other characters as underscores.
fn suggested_name(name: &str) -> String {
    let mut suggestion = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            suggestion.push(c.to_ascii_lowercase());
        } else if !suggestion.ends_with('_') {
            suggestion.push('_');
        }
    }
    suggestion.trim_matches('_').to_owned()
}

/// The walk over one definition, collecting problems under their field paths.
#[derive(Default)]
struct Walk {
    errors: FieldErrors,
    /// The declared format; `None` when the declared value was not readable, so variables are
    /// then judged on their own.
    format: Option<ParameterFormat>,
    /// Whether the category is AUTHENTICATION, whose components follow their own rules.
    auth: bool,
    /// Whether the category was readable (OTP buttons are refused only in a known other category).
    category_known: bool,
}

/// Which components were seen, to check the template as a whole.
#[derive(Default)]
struct Seen {
    body: bool,
    buttons: bool,
}

impl Walk {
    fn problem(&mut self, path: &str, reason: impl Into<String>) {
        self.errors.add(path, reason);
    }

    fn limit(&mut self, path: &str, reason: impl Into<String>, limit: usize) {
        self.errors.add_limit(path, reason, limit as u64);
    }

    /// A string that must hold more than spaces and fit `max` characters.
    fn text(
        &mut self,
        path: &str,
        value: Option<&Value>,
        max: usize,
        required: &str,
    ) -> Option<String> {
        match value {
            None | Some(Value::Null) => {
                self.problem(path, format!("is required: {required}"));
                None
            }
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.problem(path, format!("must not be empty: {required}"));
                None
            }
            Some(Value::String(text)) => {
                let count = text.chars().count();
                if count > max {
                    self.limit(
                        path,
                        format!("must be at most {max} characters (it has {count})"),
                        max,
                    );
                }
                Some(text.clone())
            }
            Some(_) => {
                self.problem(path, format!("must be a string: {required}"));
                None
            }
        }
    }

    fn name(&mut self, value: Option<&Value>) -> Option<String> {
        let name = self.text(
            "name",
            value,
            NAME_MAX_CHARS,
            "the template's name, in lowercase letters, digits and underscores",
        )?;
        let ok = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            let suggestion = suggested_name(&name);
            let hint = if suggestion.is_empty() {
                "like order_update".to_owned()
            } else {
                format!("like `{suggestion}`")
            };
            self.problem(
                "name",
                format!("must use only lowercase letters a–z, digits and underscores ({hint})"),
            );
        }
        Some(name)
    }

    fn language(&mut self, value: Option<&Value>) -> Option<String> {
        let code = self.text(
            "language",
            value,
            16,
            "a template language code like en_US, es or pt_BR",
        )?;
        if LANGUAGES.contains(&code.as_str()) {
            return Some(code);
        }
        let guess = code.trim().replace('-', "_");
        let close = LANGUAGES
            .iter()
            .find(|known| known.eq_ignore_ascii_case(&guess));
        match close {
            Some(known) => self.problem(
                "language",
                format!(
                    "is not a code Meta knows; use `{known}` (codes are case-sensitive and use an underscore)"
                ),
            ),
            None => self.problem(
                "language",
                "is not a language Meta supports for templates; use a code like en_US, en, es, \
                 pt_BR or ar",
            ),
        }
        Some(code)
    }

    fn category(&mut self, value: Option<&Value>) -> Option<String> {
        let category = self.text(
            "category",
            value,
            32,
            "MARKETING, UTILITY or AUTHENTICATION",
        )?;
        let upper = category.trim().to_ascii_uppercase();
        if CATEGORIES.contains(&upper.as_str()) {
            self.category_known = true;
            Some(upper)
        } else {
            self.problem("category", "must be MARKETING, UTILITY or AUTHENTICATION");
            None
        }
    }

    fn parameter_format(&mut self, value: Option<&Value>) -> Option<ParameterFormat> {
        let parsed = match value {
            None | Some(Value::Null) => Some(ParameterFormat::Positional),
            Some(Value::String(text)) => ParameterFormat::parse(text),
            Some(_) => None,
        };
        if parsed.is_none() {
            self.problem(
                "parameter_format",
                "must be \"named\" ({{first_name}}) or \"positional\" ({{1}}, the default)",
            );
        }
        self.format = parsed;
        parsed
    }

    fn components(&mut self, value: Option<&Value>) -> Vec<TemplateDefinitionComponent> {
        let path = "components";
        let items = match value {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => {
                self.problem(path, "must list the template's components, a BODY at least");
                return Vec::new();
            }
            None | Some(Value::Null) => {
                self.problem(
                    path,
                    "is required: the template's HEADER, BODY, FOOTER and BUTTONS (a BODY at least)",
                );
                return Vec::new();
            }
            Some(_) => {
                self.problem(path, "must be an array of components");
                return Vec::new();
            }
        };
        let mut seen_types: Vec<String> = Vec::new();
        let mut seen = Seen::default();
        let mut components = Vec::new();
        for (index, value) in items.iter().enumerate() {
            let component_path = item(path, index);
            let Some(object) = value.as_object() else {
                self.problem(&component_path, "must be an object with a `type`");
                continue;
            };
            let type_path = child(&component_path, "type");
            let Some(kind) = self.text(
                &type_path,
                object.get("type"),
                32,
                "HEADER, BODY, FOOTER or BUTTONS",
            ) else {
                continue;
            };
            let kind = kind.trim().to_ascii_uppercase();
            if !COMPONENT_TYPES.contains(&kind.as_str()) {
                self.problem(&type_path, "must be HEADER, BODY, FOOTER or BUTTONS");
                continue;
            }
            if seen_types.contains(&kind) {
                self.problem(
                    &type_path,
                    format!("is a second {kind}: a template has at most one of each component"),
                );
                continue;
            }
            seen_types.push(kind.clone());
            let component = match kind.as_str() {
                "HEADER" => self.header(&component_path, object),
                "BODY" => {
                    seen.body = true;
                    self.body(&component_path, object)
                }
                "FOOTER" => self.footer(&component_path, object),
                _ => {
                    seen.buttons = true;
                    self.buttons(&component_path, object)
                }
            };
            components.push(component);
        }
        if !seen.body {
            self.problem(
                path,
                "needs a BODY component: the body is the one part every template has",
            );
        }
        if self.auth && !seen.buttons {
            self.problem(
                path,
                "needs a BUTTONS component with one OTP button: an authentication template \
                 delivers its code through it",
            );
        }
        components
    }

    /// The component as it will be submitted: `type` and `format` upper case, other keys kept.
    fn normalised(
        kind: &str,
        object: &Map<String, Value>,
        buttons: Option<Vec<TemplateButton>>,
    ) -> TemplateDefinitionComponent {
        let extra = object
            .iter()
            .filter(|(key, _)| !COMPONENT_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        TemplateDefinitionComponent {
            kind: kind.to_owned(),
            format: object
                .get("format")
                .and_then(Value::as_str)
                .map(|format| format.trim().to_ascii_uppercase()),
            text: object
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            example: object.get("example").filter(|v| !v.is_null()).cloned(),
            buttons,
            extra,
        }
    }

    /// The variables of a text, with malformed ones, mixed kinds, a kind that is not the declared
    /// format and gaps in the numbering reported at `path`.
    fn variables(&mut self, path: &str, what: &str, text: &str) -> Vec<Placeholder> {
        self.variables_of_format(path, what, text).0
    }

    /// As `variables`, also telling whether their kind agrees with the declared format; examples
    /// of a component whose kind is wrong are not judged, as the format is to be fixed first.
    fn variables_of_format(
        &mut self,
        path: &str,
        what: &str,
        text: &str,
    ) -> (Vec<Placeholder>, bool) {
        let scan = placeholders::scan(text);
        if let Some(malformed) = scan.malformed.first() {
            self.problem(
                path,
                format!(
                    "{what} has a malformed variable `{}`: write {{{{1}}}}, {{{{2}}}}, … or a \
                     lowercase name like {{{{first_name}}}}, each in double braces",
                    malformed.text
                ),
            );
        }
        let found = scan.placeholders;
        let named: Vec<String> = found
            .iter()
            .filter(|p| !p.is_positional())
            .map(Placeholder::written)
            .collect();
        let numbered: Vec<String> = found
            .iter()
            .filter(|p| p.is_positional())
            .map(Placeholder::written)
            .collect();
        let kind = placeholders::classify(&found);
        let agrees = !matches!(
            (kind, self.format),
            (Kind::Mixed, _)
                | (Kind::Named, Some(ParameterFormat::Positional))
                | (Kind::Positional, Some(ParameterFormat::Named))
        );
        match (kind, self.format) {
            (Kind::Mixed, _) => self.problem(
                path,
                format!(
                    "{what} mixes numbered ({}) and named ({}) variables: use one kind only",
                    numbered[0], named[0]
                ),
            ),
            (Kind::Named, Some(ParameterFormat::Positional)) => self.problem(
                path,
                format!(
                    "{what} uses named variables ({}): set parameter_format to \"named\", or \
                     number them {{{{1}}}}, {{{{2}}}}, …",
                    named[0]
                ),
            ),
            (Kind::Positional, Some(ParameterFormat::Named)) => self.problem(
                path,
                format!(
                    "{what} uses numbered variables ({}): set parameter_format to \"positional\" \
                     (or leave it out), or name them like {{{{first_name}}}}",
                    numbered[0]
                ),
            ),
            (Kind::Positional, _) => {
                let mut order: Vec<u32> = Vec::new();
                for position in found.iter().filter_map(Placeholder::position) {
                    if !order.contains(&position) {
                        order.push(position);
                    }
                }
                let in_order = order
                    .iter()
                    .enumerate()
                    .all(|(index, &position)| position as usize == index + 1);
                if !in_order {
                    let names: Vec<String> = order.iter().map(u32::to_string).collect();
                    self.problem(
                        path,
                        format!(
                            "{what} numbers its variables {}: they must run {{{{1}}}}, {{{{2}}}}, \
                             … from 1, in order of appearance, with no gaps",
                            written_list(&names)
                        ),
                    );
                }
            }
            _ => {}
        }
        (found, agrees)
    }

    /// Whether examples of these variables are named ones: by the declared format, else by the
    /// variables themselves.
    fn named_examples(&self, found: &[Placeholder]) -> bool {
        match self.format {
            Some(format) => format == ParameterFormat::Named,
            None => placeholders::classify(found) == Kind::Named,
        }
    }

    fn header(&mut self, path: &str, object: &Map<String, Value>) -> TemplateDefinitionComponent {
        let format_path = child(path, "format");
        let format = self
            .text(
                &format_path,
                object.get("format"),
                16,
                "TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION",
            )
            .map(|format| format.trim().to_ascii_uppercase());
        let text_path = child(path, "text");
        let example_path = child(path, "example");
        match format.as_deref() {
            None => {}
            Some("TEXT") => {
                let text = self.text(
                    &text_path,
                    object.get("text"),
                    HEADER_TEXT_MAX_CHARS,
                    "the header's words",
                );
                if let Some(text) = text {
                    let (found, agrees) = self.variables_of_format(&text_path, "the header", &text);
                    if found.len() > HEADER_VARIABLES_MAX {
                        self.limit(
                            &text_path,
                            format!(
                                "holds {} variables; a header takes at most {HEADER_VARIABLES_MAX}",
                                found.len()
                            ),
                            HEADER_VARIABLES_MAX,
                        );
                    } else if let Some(variable) = found.first().filter(|_| agrees) {
                        self.header_example(path, object.get("example"), variable);
                    }
                }
            }
            Some(media @ ("IMAGE" | "VIDEO" | "DOCUMENT")) => {
                if self.auth {
                    self.problem(
                        &format_path,
                        format!(
                            "is {media}, but an authentication template cannot have a media header"
                        ),
                    );
                }
                if object.contains_key("text") {
                    self.problem(&text_path, "must be left out: only a TEXT header has text");
                }
                self.header_handle(&example_path, object.get("example"), media);
            }
            Some("LOCATION") => {
                if self.auth {
                    self.problem(
                        &format_path,
                        "is LOCATION, but only MARKETING and UTILITY templates can have a location header",
                    );
                }
                if object.contains_key("text") {
                    self.problem(
                        &text_path,
                        "must be left out: a LOCATION header takes no text; the place is given when sending",
                    );
                }
                if object.contains_key("example") {
                    self.problem(
                        &example_path,
                        "must be left out: a LOCATION header takes no example; the place is given when sending",
                    );
                }
            }
            Some(_) => self.problem(
                &format_path,
                "must be TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION",
            ),
        }
        Self::normalised("HEADER", object, None)
    }

    /// The example of a TEXT header's one variable.
    fn header_example(&mut self, path: &str, example: Option<&Value>, variable: &Placeholder) {
        let example_path = child(path, "example");
        let written = variable.written();
        if self.named_examples(std::slice::from_ref(variable)) {
            let params_path = child(&example_path, "header_text_named_params");
            let params = example.and_then(|example| example.get("header_text_named_params"));
            let sample = format!(
                "[{{\"param_name\": \"{}\", \"example\": \"…\"}}]",
                variable.name
            );
            match params.and_then(Value::as_array) {
                Some(params) if params.len() == 1 => {
                    let param_path = item(&params_path, 0);
                    let name = params[0].get("param_name").and_then(Value::as_str);
                    if name != Some(variable.name.as_str()) {
                        self.problem(
                            &child(&param_path, "param_name"),
                            format!("must be `{}`, the header's variable", variable.name),
                        );
                    }
                    self.example_value(&child(&param_path, "example"), params[0].get("example"));
                }
                Some(params) => self.limit(
                    &params_path,
                    format!(
                        "must hold one example, for {written}; it has {}",
                        params.len()
                    ),
                    1,
                ),
                None => self.problem(
                    &params_path,
                    format!(
                        "is required: the header has the variable {written}, so give its example \
                         value: {sample}"
                    ),
                ),
            }
        } else {
            let values_path = child(&example_path, "header_text");
            let values = example.and_then(|example| example.get("header_text"));
            match values.and_then(Value::as_array) {
                Some(values) if values.len() == 1 => {
                    self.example_value(&item(&values_path, 0), values.first());
                }
                Some(values) => self.limit(
                    &values_path,
                    format!(
                        "must hold one example value, for {written}; it has {}",
                        values.len()
                    ),
                    1,
                ),
                None => self.problem(
                    &values_path,
                    format!(
                        "is required: the header has the variable {written}, so give its example \
                         value, like [\"Summer Sale\"]"
                    ),
                ),
            }
        }
    }

    /// A sample value: a string with more than spaces.
    fn example_value(&mut self, path: &str, value: Option<&Value>) {
        match value {
            Some(Value::String(text)) if !text.trim().is_empty() => {}
            _ => self.problem(
                path,
                "must be a sample value (a non-empty string) that Meta's review can read",
            ),
        }
    }

    /// `example.header_handle` of a media header: one uploaded media handle.
    fn header_handle(&mut self, example_path: &str, example: Option<&Value>, media: &str) {
        let path = child(example_path, "header_handle");
        let handles = example.and_then(|example| example.get("header_handle"));
        let ok = handles.and_then(Value::as_array).is_some_and(|handles| {
            handles.len() == 1 && handles[0].as_str().is_some_and(|h| !h.trim().is_empty())
        });
        if !ok {
            let media = media.to_ascii_lowercase();
            self.problem(
                &path,
                format!(
                    "must be [one handle] of a sample {media} uploaded with Meta's resumable \
                     upload API (like [\"4::aW...\"]): Meta reviews the header with it"
                ),
            );
        }
    }

    fn body(&mut self, path: &str, object: &Map<String, Value>) -> TemplateDefinitionComponent {
        let text_path = child(path, "text");
        if self.auth {
            if object.contains_key("text") {
                self.problem(
                    &text_path,
                    "must be left out: Meta writes the body of an authentication template \
                     (\"<code> is your verification code.\"); add_security_recommendation adds its \
                     security line",
                );
            }
            if object
                .get("add_security_recommendation")
                .is_some_and(|value| !value.is_boolean())
            {
                self.problem(
                    &child(path, "add_security_recommendation"),
                    "must be true or false, or be left out",
                );
            }
            return Self::normalised("BODY", object, None);
        }
        let Some(text) = self.text(
            &text_path,
            object.get("text"),
            BODY_TEXT_MAX_CHARS,
            "the message's words",
        ) else {
            return Self::normalised("BODY", object, None);
        };
        let (found, agrees) = self.variables_of_format(&text_path, "the body", &text);
        let trimmed_start = text.len() - text.trim_start().len();
        let trimmed_end = text.trim_end().len();
        let at_start = found.first().filter(|p| p.start == trimmed_start);
        let at_end = found.last().filter(|p| p.end == trimmed_end);
        if let Some(variable) = at_start.or(at_end) {
            let place = if at_start.is_some() { "begin" } else { "end" };
            self.problem(
                &text_path,
                format!(
                    "must not {place} with a variable ({}): Meta refuses it; add words before and \
                     after the variables",
                    variable.written()
                ),
            );
        }
        if !found.is_empty() && agrees {
            let mut names: Vec<String> = Vec::new();
            for placeholder in &found {
                if !names.contains(&placeholder.name) {
                    names.push(placeholder.name.clone());
                }
            }
            if self.named_examples(&found) {
                self.named_body_examples(path, object.get("example"), &names);
            } else {
                self.positional_body_examples(path, object.get("example"), &names);
            }
        }
        Self::normalised("BODY", object, None)
    }

    /// `example.body_text`: one list holding an example per variable, in order.
    fn positional_body_examples(&mut self, path: &str, example: Option<&Value>, names: &[String]) {
        let values_path = child(&child(path, "example"), "body_text");
        let count = names.len();
        let variables = written_list(names);
        let row = example
            .and_then(|example| example.get("body_text"))
            .and_then(|rows| rows.get(0))
            .and_then(Value::as_array);
        match row {
            Some(row) if row.len() == count => {
                let row_path = item(&values_path, 0);
                for (index, value) in row.iter().enumerate() {
                    self.example_value(&item(&row_path, index), Some(value));
                }
            }
            Some(row) => self.limit(
                &values_path,
                format!(
                    "needs one example value per variable of the body, {count} ({variables}); it \
                     has {}",
                    row.len()
                ),
                count,
            ),
            None => self.problem(
                &values_path,
                format!(
                    "is required: the body has the variables {variables}, so give one example \
                     value for each, in one list: [[\"…\", …]]"
                ),
            ),
        }
    }

    /// `example.body_text_named_params`: each variable named once, with its example.
    fn named_body_examples(&mut self, path: &str, example: Option<&Value>, names: &[String]) {
        let params_path = child(&child(path, "example"), "body_text_named_params");
        let params = example
            .and_then(|example| example.get("body_text_named_params"))
            .and_then(Value::as_array);
        let Some(params) = params else {
            self.problem(
                &params_path,
                format!(
                    "is required: the body has the variables {}, so give each one's example: \
                     [{{\"param_name\": \"{}\", \"example\": \"…\"}}, …]",
                    written_list(names),
                    names[0]
                ),
            );
            return;
        };
        let mut named: Vec<&str> = Vec::new();
        for (index, param) in params.iter().enumerate() {
            let param_path = item(&params_path, index);
            let name_path = child(&param_path, "param_name");
            match param.get("param_name").and_then(Value::as_str) {
                None => self.problem(&name_path, "is required: the variable this example is for"),
                Some(name) if named.contains(&name) => self.problem(
                    &name_path,
                    format!("names `{name}` a second time: give each variable's example once"),
                ),
                Some(name) if !names.iter().any(|known| known == name) => self.problem(
                    &name_path,
                    format!(
                        "`{name}` is not a variable of the body (it has {})",
                        names.join(", ")
                    ),
                ),
                Some(name) => named.push(name),
            }
            self.example_value(&child(&param_path, "example"), param.get("example"));
        }
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| !named.contains(&name.as_str()))
            .collect();
        if let Some(first) = missing.first() {
            let list: Vec<&str> = missing.iter().map(|name| name.as_str()).collect();
            self.problem(
                &params_path,
                format!(
                    "has no example for {}: give one for `{first}` too, and for every variable of \
                     the body",
                    list.join(", ")
                ),
            );
        }
    }

    fn footer(&mut self, path: &str, object: &Map<String, Value>) -> TemplateDefinitionComponent {
        let text_path = child(path, "text");
        let expiration_path = child(path, "code_expiration_minutes");
        let expiration = object.get("code_expiration_minutes");
        if let Some(expiration) = expiration {
            if !self.auth {
                self.problem(
                    &expiration_path,
                    "belongs to authentication templates only; give the footer `text` instead",
                );
            } else if !expiration
                .as_u64()
                .is_some_and(|minutes| (1..=CODE_EXPIRATION_MINUTES_MAX).contains(&minutes))
            {
                self.limit(
                    &expiration_path,
                    format!(
                        "must be a whole number of minutes from 1 to {CODE_EXPIRATION_MINUTES_MAX}"
                    ),
                    CODE_EXPIRATION_MINUTES_MAX as usize,
                );
            }
        }
        let text_optional = self.auth && expiration.is_some();
        if !(text_optional && object.get("text").is_none()) {
            let required = if self.auth {
                "the footer's words, or code_expiration_minutes instead"
            } else {
                "the footer's words"
            };
            if let Some(text) = self.text(
                &text_path,
                object.get("text"),
                FOOTER_TEXT_MAX_CHARS,
                required,
            ) {
                let scan = placeholders::scan(&text);
                if let Some(variable) = scan.placeholders.first() {
                    self.problem(
                        &text_path,
                        format!(
                            "must not hold variables ({}): a footer is fixed text; put variables in \
                             the body",
                            variable.written()
                        ),
                    );
                } else if let Some(malformed) = scan.malformed.first() {
                    self.problem(
                        &text_path,
                        format!(
                            "the footer has a malformed variable `{}`, and a footer cannot hold \
                             variables: remove the braces",
                            malformed.text
                        ),
                    );
                }
            }
        }
        Self::normalised("FOOTER", object, None)
    }

    fn buttons(&mut self, path: &str, object: &Map<String, Value>) -> TemplateDefinitionComponent {
        let buttons_path = child(path, "buttons");
        let items = match object.get("buttons") {
            Some(Value::Array(items)) if !items.is_empty() => items.as_slice(),
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                self.problem(
                    &buttons_path,
                    format!(
                        "must list 1 to {BUTTONS_MAX} buttons (or leave the BUTTONS component out)"
                    ),
                );
                &[]
            }
            Some(_) => {
                self.problem(&buttons_path, "must be an array of buttons");
                &[]
            }
        };
        if items.len() > BUTTONS_MAX {
            self.limit(
                &buttons_path,
                format!(
                    "has {} buttons; a template has at most {BUTTONS_MAX}",
                    items.len()
                ),
                BUTTONS_MAX,
            );
        }
        let mut buttons = Vec::new();
        let mut kinds: Vec<String> = Vec::new();
        for (index, value) in items.iter().enumerate() {
            let button_path = item(&buttons_path, index);
            let Some(button) = value.as_object() else {
                self.problem(&button_path, "must be an object with a `type`");
                kinds.push(String::new());
                continue;
            };
            let kind = self.button(&button_path, button);
            kinds.push(kind.clone());
            buttons.push(Self::normalised_button(&kind, button));
        }
        self.button_counts(&buttons_path, &kinds);
        Self::normalised("BUTTONS", object, Some(buttons))
    }

    /// How many buttons of each kind, and where the quick replies sit.
    fn button_counts(&mut self, path: &str, kinds: &[String]) {
        let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
        for (kind, max, name) in [
            ("QUICK_REPLY", QUICK_REPLY_BUTTONS_MAX, "quick reply"),
            ("URL", URL_BUTTONS_MAX, "URL"),
            ("PHONE_NUMBER", PHONE_NUMBER_BUTTONS_MAX, "phone number"),
            ("COPY_CODE", COPY_CODE_BUTTONS_MAX, "copy code"),
        ] {
            let found = count(kind);
            if found > max {
                self.limit(
                    path,
                    format!("has {found} {name} buttons; a template has at most {max}"),
                    max,
                );
            }
        }
        let quick: Vec<usize> = kinds
            .iter()
            .enumerate()
            .filter(|(_, kind)| *kind == "QUICK_REPLY")
            .map(|(index, _)| index)
            .collect();
        if let (Some(first), Some(last)) = (quick.first(), quick.last())
            && last - first + 1 != quick.len()
        {
            let at: Vec<String> = quick.iter().map(usize::to_string).collect();
            self.problem(
                path,
                format!(
                    "has quick reply buttons apart (at {}): put them together, all before or all \
                     after the other buttons, as Meta groups them",
                    at.join(", ")
                ),
            );
        }
        if self.auth && !(kinds.len() == 1 && kinds[0] == "OTP") {
            self.limit(
                path,
                "must hold exactly one button, of type OTP: an authentication template delivers \
                 its code through it",
                1,
            );
        }
    }

    /// Checks one button; returns its type in upper case (empty when unreadable).
    fn button(&mut self, path: &str, button: &Map<String, Value>) -> String {
        let type_path = child(path, "type");
        let Some(kind) = self.text(
            &type_path,
            button.get("type"),
            32,
            "QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, FLOW, OTP, CATALOG, MPM or VOICE_CALL",
        ) else {
            return String::new();
        };
        let kind = kind.trim().to_ascii_uppercase();
        if !BUTTON_TYPES.contains(&kind.as_str()) {
            self.problem(
                &type_path,
                format!("must be one of: {}", BUTTON_TYPES.join(", ")),
            );
            return kind;
        }
        let text_path = child(path, "text");
        // Meta writes the label itself for these when it is left out.
        let label_optional = matches!(kind.as_str(), "OTP" | "CATALOG" | "MPM" | "COPY_CODE");
        if !(label_optional && button.get("text").is_none()) {
            self.text(
                &text_path,
                button.get("text"),
                BUTTON_TEXT_MAX_CHARS,
                "the button's label",
            );
        }
        match kind.as_str() {
            "URL" => self.url_button(path, button),
            "PHONE_NUMBER" => {
                let phone_path = child(path, "phone_number");
                if let Some(phone) = self.text(
                    &phone_path,
                    button.get("phone_number"),
                    PHONE_NUMBER_MAX_CHARS,
                    "the number the button calls, like +15550051310",
                ) {
                    let digits = phone.strip_prefix('+').unwrap_or(&phone);
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        self.problem(
                            &phone_path,
                            "must be digits with an optional leading + and the country code, like \
                             +15550051310 (no spaces or dashes)",
                        );
                    }
                }
            }
            "COPY_CODE" => {
                self.text(
                    &child(path, "example"),
                    button.get("example"),
                    COPY_CODE_EXAMPLE_MAX_CHARS,
                    "a sample of the code the button copies, like \"250FF\"",
                );
            }
            "FLOW" => {
                let given = ["flow_id", "flow_name", "flow_json"].iter().any(|key| {
                    match button.get(*key) {
                        Some(Value::String(text)) => !text.trim().is_empty(),
                        Some(Value::Number(_)) => true,
                        _ => false,
                    }
                });
                if !given {
                    self.problem(
                        path,
                        "needs flow_id, flow_name or flow_json: the Flow the button opens",
                    );
                }
            }
            "OTP" => self.otp_button(path, &type_path, button),
            _ => {}
        }
        kind
    }

    fn url_button(&mut self, path: &str, button: &Map<String, Value>) {
        let url_path = child(path, "url");
        let Some(url) = self.text(
            &url_path,
            button.get("url"),
            BUTTON_URL_MAX_CHARS,
            "the https address the button opens",
        ) else {
            return;
        };
        let found = self.variables(&url_path, "the URL", &url);
        if found.len() > BUTTON_URL_VARIABLES_MAX {
            self.limit(
                &url_path,
                format!(
                    "holds {} variables; a URL takes at most {BUTTON_URL_VARIABLES_MAX}, at its end",
                    found.len()
                ),
                BUTTON_URL_VARIABLES_MAX,
            );
        } else if let Some(variable) = found.first()
            && variable.end != url.len()
        {
            self.problem(
                &url_path,
                format!(
                    "must end with its variable ({}): Meta appends the value to the URL, like \
                     https://example.com/order/{{{{1}}}}",
                    variable.written()
                ),
            );
        }
        let fixed = found.iter().rev().fold(url.clone(), |mut fixed, variable| {
            fixed.replace_range(variable.start..variable.end, "x");
            fixed
        });
        let web = !fixed.chars().any(char::is_whitespace)
            && Url::parse(&fixed).is_ok_and(|parsed| {
                matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some()
            });
        if !web {
            self.problem(
                &url_path,
                "must be an absolute http or https URL, like https://example.com/shop",
            );
        }
        if let Some(variable) = found.first() {
            let example_path = child(path, "example");
            let ok = match button.get("example") {
                Some(Value::Array(values)) => {
                    values.len() == 1 && values[0].as_str().is_some_and(|v| !v.trim().is_empty())
                }
                _ => false,
            };
            if !ok {
                self.problem(
                    &example_path,
                    format!(
                        "is required: the URL has the variable {}, so give [one full example URL], \
                         like [\"{}\"]",
                        variable.written(),
                        url.replace(&variable.written(), "A123")
                    ),
                );
            }
        }
    }

    fn otp_button(&mut self, path: &str, type_path: &str, button: &Map<String, Value>) {
        if self.category_known && !self.auth {
            self.problem(
                type_path,
                "is OTP, which only authentication templates have: set category to \
                 AUTHENTICATION, or use another button type",
            );
            return;
        }
        let otp_path = child(path, "otp_type");
        let Some(otp_type) = self.text(
            &otp_path,
            button.get("otp_type"),
            16,
            "COPY_CODE, ONE_TAP or ZERO_TAP",
        ) else {
            return;
        };
        let otp_type = otp_type.trim().to_ascii_uppercase();
        if !OTP_TYPES.contains(&otp_type.as_str()) {
            self.problem(&otp_path, "must be COPY_CODE, ONE_TAP or ZERO_TAP");
            return;
        }
        if otp_type == "COPY_CODE" {
            return;
        }
        let apps_path = child(path, "supported_apps");
        let apps = match button.get("supported_apps") {
            Some(Value::Array(apps)) if !apps.is_empty() => apps,
            _ => {
                self.problem(
                    &apps_path,
                    format!(
                        "is required for {otp_type}: [{{\"package_name\": \"com.example.app\", \
                         \"signature_hash\": \"K8a/AINcGX7\"}}], the Android apps that receive the code"
                    ),
                );
                return;
            }
        };
        if apps.len() > SUPPORTED_APPS_MAX {
            self.limit(
                &apps_path,
                format!(
                    "lists {} apps; Meta takes at most {SUPPORTED_APPS_MAX}",
                    apps.len()
                ),
                SUPPORTED_APPS_MAX,
            );
        }
        for (index, app) in apps.iter().enumerate() {
            let app_path = item(&apps_path, index);
            self.text(
                &child(&app_path, "package_name"),
                app.get("package_name"),
                224,
                "the Android package name, like com.example.app",
            );
            let hash_path = child(&app_path, "signature_hash");
            if let Some(hash) = self.text(
                &hash_path,
                app.get("signature_hash"),
                SIGNATURE_HASH_CHARS,
                "the app signing key hash (11 characters)",
            ) && hash.chars().count() != SIGNATURE_HASH_CHARS
            {
                self.limit(
                    &hash_path,
                    format!("must be exactly {SIGNATURE_HASH_CHARS} characters, the app signing key hash"),
                    SIGNATURE_HASH_CHARS,
                );
            }
        }
    }

    /// The button as it will be submitted: `type` and `otp_type` upper case, other keys kept.
    fn normalised_button(kind: &str, button: &Map<String, Value>) -> TemplateButton {
        let mut extra: Map<String, Value> = button
            .iter()
            .filter(|(key, _)| !BUTTON_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if let Some(Value::String(otp_type)) = extra.get_mut("otp_type") {
            *otp_type = otp_type.trim().to_ascii_uppercase();
        }
        let text_of = |key: &str| button.get(key).and_then(Value::as_str).map(str::to_owned);
        TemplateButton {
            kind: kind.to_owned(),
            text: text_of("text"),
            url: text_of("url"),
            phone_number: text_of("phone_number"),
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::templates::testdata::meta_example;

    fn problems(body: Value) -> Value {
        match check_definition(&body) {
            Ok(template) => panic!("passed: {template:?}"),
            Err(errors) => errors.to_details(),
        }
    }

    fn reason(details: &Value, field: &str) -> String {
        details["fields"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no problem at {field}: {details}"))
            .to_owned()
    }

    fn fields_of(details: &Value) -> Vec<String> {
        let mut fields: Vec<String> = details["fields"]
            .as_object()
            .map(|fields| fields.keys().cloned().collect())
            .unwrap_or_default();
        fields.sort();
        fields
    }

    /// A valid template with `components` in place of its own.
    fn with_components(components: Value) -> Value {
        json!({"name": "order_update", "language": "en_US", "category": "UTILITY", "components": components})
    }

    fn body(text: &str, example: Value) -> Value {
        json!({"type": "BODY", "text": text, "example": example})
    }

    fn plain_body() -> Value {
        json!({"type": "BODY", "text": "Your order has shipped."})
    }

    fn with_buttons(buttons: Value) -> Value {
        with_components(json!([plain_body(), {"type": "BUTTONS", "buttons": buttons}]))
    }

    fn authentication(components: Value) -> Value {
        json!({"name": "login_code", "language": "en_US", "category": "authentication", "components": components})
    }

    #[test]
    fn metas_example_create_request_passes_and_is_normalised() {
        let template = check_definition(&meta_example("template_create_request.json")).unwrap();
        assert_eq!(template.name, "reservation_confirmation");
        assert_eq!(template.category, "UTILITY");
        assert_eq!(template.parameter_format, ParameterFormat::Named);
        let kinds: Vec<&str> = template
            .components
            .iter()
            .map(|c| c.kind.as_str())
            .collect();
        assert_eq!(kinds, ["HEADER", "BODY", "FOOTER", "BUTTONS"]);
        assert_eq!(template.components[0].format.as_deref(), Some("IMAGE"));
        let buttons = template.components[3].buttons.as_ref().unwrap();
        let types: Vec<&str> = buttons.iter().map(|b| b.kind.as_str()).collect();
        assert_eq!(types, ["URL", "PHONE_NUMBER", "QUICK_REPLY"]);
    }

    #[test]
    fn every_listed_template_fed_back_as_a_definition_passes() {
        let listed = meta_example("templates_list_response.json");
        let full = listed["data"].as_array().unwrap();
        let approved = meta_example("templates_list_approved_response.json");
        let mut fed_back = 0;
        for template in full {
            let mut definition = template.clone();
            let object = definition.as_object_mut().unwrap();
            object.remove("id");
            object.remove("status");
            let lowered = json!({
                "name": object["name"],
                "language": object["language"],
                "category": object["category"].as_str().unwrap().to_lowercase(),
                "parameter_format": object["parameter_format"].as_str().unwrap().to_lowercase(),
                "components": object["components"],
            });
            for definition in [definition.clone(), lowered] {
                if let Err(errors) = check_definition(&definition) {
                    panic!("{}: {:?}", template["name"], errors.to_details());
                }
                fed_back += 1;
            }
        }
        // The approved list names templates without their components; those listed in full pass above.
        for entry in approved["data"].as_array().unwrap() {
            if let Some(template) = full.iter().find(|t| t["name"] == entry["name"]) {
                assert_eq!(template["category"], entry["category"]);
            }
        }
        assert_eq!(fed_back, 4);
        let mut edit = meta_example("template_edit_components_request.json");
        edit["name"] = json!("seasonal_promotion");
        edit["language"] = json!("en_US");
        edit["category"] = json!("MARKETING");
        assert!(check_definition(&edit).is_ok());
    }

    #[test]
    fn the_create_request_carries_the_template_and_the_stored_form_lists_its_components() {
        let mut body = meta_example("template_create_request.json");
        body["allow_category_change"] = json!(true);
        body["connection_id"] = json!("c1");
        let template = check_definition(&body).unwrap();
        assert_eq!(template.allow_category_change, Some(true));
        let request = template.to_create_request();
        let sent = serde_json::to_value(&request).unwrap();
        assert_eq!(sent["parameter_format"], "named");
        assert_eq!(sent["allow_category_change"], true);
        assert_eq!(sent["category"], "UTILITY");
        assert!(sent.get("connection_id").is_none());
        let stored: Value = serde_json::from_str(&template.components_json()).unwrap();
        assert_eq!(stored[1]["type"], "BODY");
        assert_eq!(
            stored[1]["example"]["body_text_named_params"][0]["param_name"],
            "number_of_guests"
        );
    }

    #[test]
    fn a_name_must_be_lowercase_letters_digits_and_underscores_up_to_512() {
        let mut template = with_components(json!([plain_body()]));
        template["name"] = json!("Order Update");
        let details = problems(template.clone());
        assert!(reason(&details, "name").contains("`order_update`"));
        template["name"] = json!("a".repeat(513));
        let details = problems(template.clone());
        assert_eq!(details["limits"]["name"], 512);
        template["name"] = json!("a".repeat(512));
        assert!(check_definition(&template).is_ok());
        template.as_object_mut().unwrap().remove("name");
        assert!(reason(&problems(template), "name").starts_with("is required"));
    }

    #[test]
    fn a_language_must_be_a_meta_code_and_a_wrong_case_is_corrected() {
        let mut template = with_components(json!([plain_body()]));
        template["language"] = json!("en_us");
        assert!(reason(&problems(template.clone()), "language").contains("`en_US`"));
        template["language"] = json!("pt-BR");
        assert!(reason(&problems(template.clone()), "language").contains("`pt_BR`"));
        template["language"] = json!("klingon");
        assert!(reason(&problems(template.clone()), "language").contains("like en_US"));
        for code in ["en", "zh_TW", "rw_RW", "fil", "es_MX"] {
            template["language"] = json!(code);
            assert!(check_definition(&template).is_ok(), "{code}");
        }
    }

    #[test]
    fn a_category_is_read_in_any_case_and_stored_in_upper_case() {
        let mut template = with_components(json!([plain_body()]));
        template["category"] = json!("Marketing");
        assert_eq!(check_definition(&template).unwrap().category, "MARKETING");
        template["category"] = json!("promotion");
        let details = problems(template);
        assert!(reason(&details, "category").contains("MARKETING, UTILITY or AUTHENTICATION"));
    }

    #[test]
    fn a_parameter_format_is_named_or_positional_and_defaults_to_positional() {
        let mut template = with_components(json!([plain_body()]));
        assert_eq!(
            check_definition(&template).unwrap().parameter_format,
            ParameterFormat::Positional
        );
        template["parameter_format"] = json!("NAMED");
        assert_eq!(
            check_definition(&template).unwrap().parameter_format,
            ParameterFormat::Named
        );
        template["parameter_format"] = json!("numbered");
        assert!(reason(&problems(template), "parameter_format").contains("\"named\""));
    }

    #[test]
    fn unknown_top_level_keys_are_named_and_unknown_component_keys_are_kept() {
        let mut template = with_components(json!([
            {"type": "body", "text": "Your order has shipped.", "x_meta_new": {"a": 1}},
        ]));
        let passed = check_definition(&template).unwrap();
        assert_eq!(passed.components[0].extra["x_meta_new"], json!({"a": 1}));
        assert_eq!(passed.components[0].kind, "BODY");
        template["colour"] = json!("blue");
        let details = problems(template);
        assert_eq!(fields_of(&details), ["colour"]);
        assert!(reason(&details, "colour").contains("not a field"));
    }

    #[test]
    fn components_need_exactly_one_body_and_at_most_one_of_each_type() {
        let details = problems(with_components(json!([])));
        assert!(reason(&details, "components").contains("BODY"));
        let details = problems(with_components(
            json!([{"type": "FOOTER", "text": "Thanks"}]),
        ));
        assert!(reason(&details, "components").contains("needs a BODY"));
        let details = problems(with_components(json!([plain_body(), plain_body()])));
        assert!(reason(&details, "components[1].type").contains("at most one"));
        let details = problems(with_components(json!([plain_body(), {"type": "CAROUSEL"}])));
        assert!(reason(&details, "components[1].type").contains("HEADER, BODY, FOOTER or BUTTONS"));
    }

    #[test]
    fn a_text_header_fits_60_characters_and_one_variable_with_its_example() {
        let header = |text: &str, example: Value| {
            with_components(json!([
                {"type": "header", "format": "text", "text": text, "example": example},
                plain_body(),
            ]))
        };
        assert!(
            check_definition(&header(
                "Act fast, {{1}}!",
                json!({"header_text": ["Pablo"]})
            ))
            .is_ok()
        );
        assert!(check_definition(&header("Welcome", Value::Null)).is_ok());
        let details = problems(header(&"h".repeat(61), Value::Null));
        assert_eq!(details["limits"]["components[0].text"], 60);
        let details = problems(header(
            "{{1}} and {{2}}",
            json!({"header_text": ["a", "b"]}),
        ));
        assert_eq!(details["limits"]["components[0].text"], 1);
        let details = problems(header("Act fast, {{1}}!", Value::Null));
        assert!(reason(&details, "components[0].example.header_text").contains("is required"));
        let details = problems(header("Act fast, {{1}}!", json!({"header_text": [""]})));
        assert!(details["fields"]["components[0].example.header_text[0]"].is_string());
    }

    #[test]
    fn a_named_text_header_gives_its_example_by_name() {
        let mut template = with_components(json!([
            {"type": "HEADER", "format": "TEXT", "text": "Sale starts {{sale_start_date}}!",
             "example": {"header_text_named_params": [{"param_name": "sale_start_date", "example": "December 1st"}]}},
            plain_body(),
        ]));
        template["parameter_format"] = json!("named");
        assert!(check_definition(&template).is_ok());
        template["components"][0]["example"]["header_text_named_params"][0]["param_name"] =
            json!("start");
        let details = problems(template);
        assert!(
            reason(
                &details,
                "components[0].example.header_text_named_params[0].param_name"
            )
            .contains("sale_start_date")
        );
    }

    #[test]
    fn a_media_header_needs_one_uploaded_handle_and_a_location_header_takes_nothing() {
        let header = |header: Value| with_components(json!([header, plain_body()]));
        for format in ["IMAGE", "video", "Document"] {
            let ok = header(
                json!({"type": "HEADER", "format": format, "example": {"header_handle": ["4::aW..."]}}),
            );
            assert!(check_definition(&ok).is_ok(), "{format}");
        }
        let details = problems(header(json!({"type": "HEADER", "format": "IMAGE"})));
        assert!(reason(&details, "components[0].example.header_handle").contains("upload"));
        let details = problems(header(
            json!({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["a", "b"]}}),
        ));
        assert!(details["fields"]["components[0].example.header_handle"].is_string());
        assert!(check_definition(&header(json!({"type": "HEADER", "format": "LOCATION"}))).is_ok());
        let details = problems(header(
            json!({"type": "HEADER", "format": "LOCATION", "text": "Here"}),
        ));
        assert!(reason(&details, "components[0].text").contains("takes no text"));
        let details = problems(header(json!({"type": "HEADER", "format": "GIF"})));
        assert!(reason(&details, "components[0].format").contains("TEXT, IMAGE"));
    }

    #[test]
    fn a_body_fits_1024_characters() {
        let details = problems(with_components(
            json!([{"type": "BODY", "text": "b".repeat(1025)}]),
        ));
        assert_eq!(details["limits"]["components[0].text"], 1024);
        assert!(reason(&details, "components[0].text").contains("1024"));
        let details = problems(with_components(json!([{"type": "BODY"}])));
        assert!(reason(&details, "components[0].text").starts_with("is required"));
    }

    #[test]
    fn a_body_must_not_begin_or_end_with_a_variable() {
        let examples = json!({"body_text": [["Pablo"]]});
        for text in [
            "{{1}}, your order shipped.",
            "Your order shipped, {{1}}",
            "  {{1}} hi ",
        ] {
            let details = problems(with_components(json!([body(text, examples.clone())])));
            assert!(
                reason(&details, "components[0].text").contains("Meta refuses"),
                "{text}"
            );
        }
        let ok = with_components(json!([body("Hi {{1}}, your order shipped.", examples)]));
        assert!(check_definition(&ok).is_ok());
    }

    #[test]
    fn positional_body_variables_need_one_example_each_in_one_list() {
        let text = "Hi {{1}}, order {{2}} ships today.";
        let ok = with_components(json!([body(
            text,
            json!({"body_text": [["Pablo", "860198"]]})
        )]));
        assert!(check_definition(&ok).is_ok());
        let details = problems(with_components(json!([body(
            text,
            json!({"body_text": [["Pablo"]]})
        )])));
        let field = "components[0].example.body_text";
        assert_eq!(details["limits"][field], 2);
        assert!(reason(&details, field).contains("{{1}}, {{2}}"));
        let details = problems(with_components(json!([{"type": "BODY", "text": text}])));
        assert!(reason(&details, field).starts_with("is required"));
    }

    #[test]
    fn positional_variables_are_numbered_from_one_without_gaps() {
        let details = problems(with_components(json!([body(
            "Hi {{1}}, order {{3}} ships.",
            json!({"body_text": [["a", "b"]]})
        )])));
        assert!(reason(&details, "components[0].text").contains("from 1"));
        let details = problems(with_components(json!([body(
            "Hi {{2}}, order {{1}} ships.",
            json!({"body_text": [["a", "b"]]})
        )])));
        assert!(reason(&details, "components[0].text").contains("in order"));
    }

    #[test]
    fn named_body_variables_are_each_given_one_example_and_no_more() {
        let text = "Thank you, {{first_name}}! Your order is {{order_number}}.";
        let template = |params: Value| {
            let mut template = with_components(json!([body(
                text,
                json!({"body_text_named_params": params})
            )]));
            template["parameter_format"] = json!("named");
            template
        };
        let good = json!([
            {"param_name": "first_name", "example": "Pablo"},
            {"param_name": "order_number", "example": "860198"},
        ]);
        assert!(check_definition(&template(good)).is_ok());
        let field = "components[0].example.body_text_named_params";
        let details = problems(template(
            json!([{"param_name": "first_name", "example": "Pablo"}]),
        ));
        assert!(reason(&details, field).contains("order_number"));
        let details = problems(template(json!([
            {"param_name": "first_name", "example": "Pablo"},
            {"param_name": "order_number", "example": "1"},
            {"param_name": "nickname", "example": "P"},
        ])));
        assert!(
            reason(&details, &format!("{field}[2].param_name"))
                .contains("first_name, order_number")
        );
        let details = problems(template(json!([
            {"param_name": "first_name", "example": "Pablo"},
            {"param_name": "first_name", "example": "Pablo"},
            {"param_name": "order_number", "example": ""},
        ])));
        assert!(reason(&details, &format!("{field}[1].param_name")).contains("second time"));
        assert!(details["fields"][format!("{field}[2].example")].is_string());
    }

    #[test]
    fn variables_must_match_the_parameter_format_and_never_mix() {
        let named_text = "Hi {{first_name}}, your order shipped.";
        let details = problems(with_components(json!([body(
            named_text,
            json!({"body_text_named_params": [{"param_name": "first_name", "example": "Pablo"}]})
        )])));
        assert_eq!(
            fields_of(&details),
            ["components[0].text"],
            "no example is asked for in the wrong form"
        );
        assert!(
            reason(&details, "components[0].text").contains("set parameter_format to \"named\"")
        );
        let mut positional = with_components(json!([body(
            "Hi {{1}}, your order shipped.",
            json!({"body_text": [["Pablo"]]})
        )]));
        positional["parameter_format"] = json!("named");
        let details = problems(positional);
        assert!(reason(&details, "components[0].text").contains("\"positional\""));
        let details = problems(with_components(json!([body(
            "Hi {{1}} and {{name}} there.",
            json!({"body_text": [["a", "b"]]})
        )])));
        assert!(reason(&details, "components[0].text").contains("mixes"));
    }

    #[test]
    fn malformed_variables_are_refused_naming_the_component() {
        for text in [
            "Hi {{ }} there.",
            "Hi {{1 there.",
            "Hi {{Name}} there.",
            "Hi {{1.5}} there.",
        ] {
            let details = problems(with_components(json!([{"type": "BODY", "text": text}])));
            let reason = reason(&details, "components[0].text");
            assert!(
                reason.contains("the body has a malformed variable"),
                "{text}: {reason}"
            );
        }
    }

    #[test]
    fn a_footer_is_up_to_60_characters_of_fixed_text() {
        let footer =
            |text: &str| with_components(json!([plain_body(), {"type": "FOOTER", "text": text}]));
        assert!(check_definition(&footer("Lucky Shrub")).is_ok());
        let details = problems(footer(&"f".repeat(61)));
        assert_eq!(details["limits"]["components[1].text"], 60);
        let details = problems(footer("Reply {{1}} to stop"));
        assert!(reason(&details, "components[1].text").contains("put variables in the body"));
        let details = problems(with_components(
            json!([plain_body(), {"type": "FOOTER", "code_expiration_minutes": 5}]),
        ));
        assert!(
            reason(&details, "components[1].code_expiration_minutes").contains("authentication")
        );
    }

    #[test]
    fn buttons_are_1_to_10_with_labels_of_at_most_25_characters() {
        let quick = |text: &str| json!({"type": "quick_reply", "text": text});
        assert!(check_definition(&with_buttons(json!([quick("Stop")]))).is_ok());
        let details = problems(with_buttons(json!([])));
        assert!(reason(&details, "components[1].buttons").contains("1 to 10"));
        let eleven: Vec<Value> = (0..11).map(|i| quick(&format!("Choice {i}"))).collect();
        let details = problems(with_buttons(Value::Array(eleven)));
        assert_eq!(details["limits"]["components[1].buttons"], 10);
        let details = problems(with_buttons(json!([quick(&"t".repeat(26))])));
        assert_eq!(details["limits"]["components[1].buttons[0].text"], 25);
        let details = problems(with_buttons(json!([{"type": "quick_reply"}])));
        assert!(reason(&details, "components[1].buttons[0].text").starts_with("is required"));
        let details = problems(with_buttons(json!([{"type": "poll", "text": "Vote"}])));
        assert!(reason(&details, "components[1].buttons[0].type").contains("QUICK_REPLY"));
    }

    #[test]
    fn quick_replies_must_sit_together() {
        let quick = json!({"type": "QUICK_REPLY", "text": "Stop"});
        let url = json!({"type": "URL", "text": "Shop", "url": "https://example.com/shop"});
        let ok = with_buttons(json!([quick.clone(), quick.clone(), url.clone()]));
        assert!(check_definition(&ok).is_ok());
        let details = problems(with_buttons(json!([quick.clone(), url, quick])));
        assert!(reason(&details, "components[1].buttons").contains("together"));
    }

    #[test]
    fn url_buttons_are_at_most_two_with_one_variable_at_the_end_and_its_example() {
        let url = |url: &str, example: Value| {
            let mut button = json!({"type": "URL", "text": "Track", "url": url});
            if !example.is_null() {
                button["example"] = example;
            }
            button
        };
        let ok = url(
            "https://example.com/t/{{1}}",
            json!(["https://example.com/t/A1"]),
        );
        assert!(check_definition(&with_buttons(json!([ok]))).is_ok());
        let details = problems(with_buttons(json!([url(
            "https://example.com/t/{{1}}",
            Value::Null
        )])));
        assert!(reason(&details, "components[1].buttons[0].example").contains("full example URL"));
        let details = problems(with_buttons(json!([url(
            "https://example.com/{{1}}/t",
            json!(["x"])
        )])));
        assert!(reason(&details, "components[1].buttons[0].url").contains("must end with"));
        let details = problems(with_buttons(json!([url(
            "https://example.com/{{1}}{{2}}",
            json!(["x"])
        )])));
        assert_eq!(details["limits"]["components[1].buttons[0].url"], 1);
        let details = problems(with_buttons(json!([url("ftp://example.com", Value::Null)])));
        assert!(reason(&details, "components[1].buttons[0].url").contains("https"));
        let long = format!("https://example.com/{}", "a".repeat(2000));
        let details = problems(with_buttons(json!([url(&long, Value::Null)])));
        assert_eq!(details["limits"]["components[1].buttons[0].url"], 2000);
        let three = json!([
            url("https://example.com/a", Value::Null),
            url("https://example.com/b", Value::Null),
            url("https://example.com/c", Value::Null),
        ]);
        let details = problems(with_buttons(three));
        assert_eq!(details["limits"]["components[1].buttons"], 2);
    }

    #[test]
    fn a_phone_button_holds_one_number_of_digits() {
        let phone = |number: &str| json!({"type": "PHONE_NUMBER", "text": "Call us", "phone_number": number});
        assert!(check_definition(&with_buttons(json!([phone("+15550051310")]))).is_ok());
        let details = problems(with_buttons(json!([phone("+1 555-005")])));
        assert!(reason(&details, "components[1].buttons[0].phone_number").contains("digits"));
        let details = problems(with_buttons(json!([phone(&"1".repeat(21))])));
        assert_eq!(
            details["limits"]["components[1].buttons[0].phone_number"],
            20
        );
        let details = problems(with_buttons(
            json!([{"type": "PHONE_NUMBER", "text": "Call"}]),
        ));
        assert!(
            reason(&details, "components[1].buttons[0].phone_number").starts_with("is required")
        );
        let details = problems(with_buttons(json!([
            phone("+15550051310"),
            phone("+15550051311")
        ])));
        assert_eq!(details["limits"]["components[1].buttons"], 1);
    }

    #[test]
    fn a_copy_code_button_gives_a_sample_code_of_at_most_15_characters() {
        let copy = |code: &str| json!({"type": "COPY_CODE", "example": code});
        assert!(check_definition(&with_buttons(json!([copy("250FF")]))).is_ok());
        let details = problems(with_buttons(json!([copy(&"C".repeat(16))])));
        assert_eq!(details["limits"]["components[1].buttons[0].example"], 15);
        let details = problems(with_buttons(json!([{"type": "COPY_CODE"}])));
        assert!(
            reason(&details, "components[1].buttons[0].example").contains("sample of the code")
        );
        let details = problems(with_buttons(json!([copy("A"), copy("B")])));
        assert_eq!(details["limits"]["components[1].buttons"], 1);
    }

    #[test]
    fn a_flow_button_names_its_flow() {
        let ok = json!([{"type": "FLOW", "text": "Book", "flow_id": "123456"}]);
        assert!(check_definition(&with_buttons(ok)).is_ok());
        let details = problems(with_buttons(json!([{"type": "FLOW", "text": "Book"}])));
        assert!(
            reason(&details, "components[1].buttons[0]")
                .contains("flow_id, flow_name or flow_json")
        );
    }

    #[test]
    fn an_authentication_template_has_metas_body_an_expiry_footer_and_one_otp_button() {
        let template = authentication(json!([
            {"type": "body", "add_security_recommendation": true},
            {"type": "footer", "code_expiration_minutes": 5},
            {"type": "buttons", "buttons": [{"type": "otp", "otp_type": "copy_code", "text": "Copy code"}]},
        ]));
        let passed = check_definition(&template).unwrap();
        assert_eq!(passed.category, "AUTHENTICATION");
        let button = &passed.components[2].buttons.as_ref().unwrap()[0];
        assert_eq!(button.kind, "OTP");
        assert_eq!(button.extra["otp_type"], "COPY_CODE");
        let zero_tap = authentication(json!([
            {"type": "body"},
            {"type": "buttons", "buttons": [{"type": "otp", "otp_type": "zero_tap", "zero_tap_terms_accepted": true,
              "supported_apps": [{"package_name": "com.example.luckyshrub", "signature_hash": "K8a/AINcGX7"}]}]},
        ]));
        assert!(check_definition(&zero_tap).is_ok());
    }

    #[test]
    fn an_authentication_template_refuses_body_text_media_headers_and_other_buttons() {
        let details = problems(authentication(json!([
            {"type": "header", "format": "image", "example": {"header_handle": ["4::a"]}},
            {"type": "body", "text": "Your code is {{1}}"},
            {"type": "footer", "code_expiration_minutes": 91},
            {"type": "buttons", "buttons": [
                {"type": "otp", "otp_type": "one_tap"},
                {"type": "quick_reply", "text": "Stop"},
            ]},
        ])));
        assert!(reason(&details, "components[0].format").contains("media header"));
        assert!(reason(&details, "components[1].text").contains("Meta writes"));
        assert_eq!(
            details["limits"]["components[2].code_expiration_minutes"],
            90
        );
        assert!(reason(&details, "components[3].buttons[0].supported_apps").contains("ONE_TAP"));
        assert!(
            reason(&details, "components[3].buttons").contains("exactly one button, of type OTP")
        );
        let details = problems(authentication(json!([{"type": "body"}])));
        assert!(reason(&details, "components").contains("OTP"));
        let details = problems(authentication(json!([
            {"type": "body"},
            {"type": "buttons", "buttons": [{"type": "otp", "otp_type": "zero_tap",
              "supported_apps": [{"package_name": "com.example", "signature_hash": "short"}]}]},
        ])));
        assert_eq!(
            details["limits"]["components[1].buttons[0].supported_apps[0].signature_hash"],
            11
        );
    }

    #[test]
    fn an_otp_button_is_refused_outside_authentication() {
        let details = problems(with_buttons(
            json!([{"type": "OTP", "otp_type": "COPY_CODE"}]),
        ));
        assert!(reason(&details, "components[1].buttons[0].type").contains("AUTHENTICATION"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let details = problems(json!({
            "name": "Bad Name",
            "language": "en_us",
            "category": "news",
            "components": [{"type": "FOOTER", "text": "f".repeat(61)}],
            "extra": 1,
        }));
        assert_eq!(
            fields_of(&details),
            [
                "category",
                "components",
                "components[0].text",
                "extra",
                "language",
                "name"
            ]
        );
        assert_eq!(details["field"], "name", "the first problem met leads");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let details = problems(json!(["not", "an", "object"]));
        assert_eq!(details["field"], "body");
    }
}
