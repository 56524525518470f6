//! Checks an outbound message against Meta's rules before it is queued, reporting every problem at
//! once with its field path (`interactive.action.buttons`) and the limit crossed, so the caller fixes
//! the request now rather than learning of it from a failed send later.
//!
//! The type object is walked as JSON rather than parsed into `cloudapi::send` types: a typed parse
//! stops at the first wrong field, and the caller needs to hear about all of them.

use std::collections::HashSet;

use serde_json::{Map, Value};
use time::macros::format_description;
use url::Url;

use crate::validation::FieldErrors;

/// The message types wagate sends, as Meta spells them in `type`.
pub const SUPPORTED_TYPES: [&str; 11] = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
];

/// `interactive.type` values wagate sends.
pub const INTERACTIVE_TYPES: [&str; 4] = ["button", "list", "cta_url", "flow"];

/// Template component `type`s, compared without regard to case.
pub const TEMPLATE_COMPONENT_TYPES: [&str; 6] = [
    "header",
    "body",
    "button",
    "footer",
    "carousel",
    "limited_time_offer",
];

/// Template parameter `type`s, compared without regard to case.
pub const TEMPLATE_PARAMETER_TYPES: [&str; 12] = [
    "text",
    "currency",
    "date_time",
    "image",
    "video",
    "document",
    "location",
    "payload",
    "action",
    "coupon_code",
    "limited_time_offer",
    "product",
];

/// `text.body`.
pub const TEXT_BODY_MAX_CHARS: usize = 4096;
/// `caption` of an image, video or document.
pub const CAPTION_MAX_CHARS: usize = 1024;
/// `document.filename`.
pub const FILENAME_MAX_CHARS: usize = 240;
/// `location.name` and `location.address`.
pub const LOCATION_TEXT_MAX_CHARS: usize = 1000;
/// Contact cards in one `contacts` message: wagate's own cap, below what Meta takes, because
/// a message of hundreds of cards is a mistake far more often than an intent.
pub const CONTACTS_MAX: usize = 100;
/// `interactive.body.text`.
pub const INTERACTIVE_BODY_MAX_CHARS: usize = 1024;
/// `interactive.header.text`.
pub const HEADER_TEXT_MAX_CHARS: usize = 60;
/// `interactive.footer.text`.
pub const FOOTER_TEXT_MAX_CHARS: usize = 60;
/// Reply buttons in one message.
pub const REPLY_BUTTONS_MAX: usize = 3;
/// `reply.id` of a reply button; it comes back in the webhook when tapped.
pub const REPLY_BUTTON_ID_MAX_CHARS: usize = 256;
/// `reply.title` of a reply button: its label.
pub const REPLY_BUTTON_TITLE_MAX_CHARS: usize = 20;
/// `action.button` of a list: the label of the button that opens it.
pub const LIST_BUTTON_MAX_CHARS: usize = 20;
/// Sections in one list.
pub const LIST_SECTIONS_MAX: usize = 10;
/// Rows in one list, all sections together.
pub const LIST_ROWS_MAX: usize = 10;
/// `title` of a list section.
pub const LIST_SECTION_TITLE_MAX_CHARS: usize = 24;
/// `id` of a list row; it comes back in the webhook when chosen.
pub const LIST_ROW_ID_MAX_CHARS: usize = 200;
/// `title` of a list row.
pub const LIST_ROW_TITLE_MAX_CHARS: usize = 24;
/// `description` of a list row.
pub const LIST_ROW_DESCRIPTION_MAX_CHARS: usize = 72;
/// `display_text` of a call-to-action URL button.
pub const CTA_DISPLAY_TEXT_MAX_CHARS: usize = 20;
/// `flow_cta` of a Flow message: the label of the button that opens the Flow.
pub const FLOW_CTA_MAX_CHARS: usize = 20;
/// `template.name`.
pub const TEMPLATE_NAME_MAX_CHARS: usize = 512;
/// The highest `index` of a template button component: a template has at most 10 buttons.
pub const TEMPLATE_BUTTON_INDEX_MAX: u64 = 9;
/// `reaction.emoji`: one emoji, with room for skin tones and joined sequences.
pub const REACTION_EMOJI_MAX_CHARS: usize = 16;

/// A message body checked against Meta's rules: the `type` and the type object to send under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedMessage {
    pub message_type: String,
    /// Exactly what the caller gave (no silent rewriting), so what Meta receives is what was asked.
    pub type_object: Value,
}

impl ValidatedMessage {
    /// Templates are the only messages Meta delivers outside the 24-hour customer service window.
    pub fn is_template(&self) -> bool {
        self.message_type == "template"
    }

    /// Reactions change an earlier message rather than adding one to the conversation.
    pub fn is_reaction(&self) -> bool {
        self.message_type == "reaction"
    }
}

/// Checks the type object of a send request. `message_type` is the request's `type`; `object` is the
/// value under the key of that name (None when absent). Every problem is reported at once, each with
/// its field path (like `text.body`, `interactive.action.buttons[3]`,
/// `interactive.action.sections[0].rows[2].title`, `image.caption`) and, where a limit applies, the
/// limit. Unknown keys inside the type object are allowed: Meta adds fields over time.
pub fn validate(
    message_type: &str,
    object: Option<&Value>,
) -> Result<ValidatedMessage, FieldErrors> {
    let mut check = Check::default();
    let Some(kind) = MessageType::parse(message_type) else {
        let reason = if message_type.trim().is_empty() {
            "is required"
        } else {
            "is not a message type wagate sends"
        };
        check.problem(
            "type",
            format!("{reason}; use one of: {}", SUPPORTED_TYPES.join(", ")),
        );
        return Err(check.errors);
    };
    let Some(object) = object.filter(|object| !object.is_null()) else {
        check.problem(
            message_type,
            format!("is required: a `{message_type}` message carries its content under this key"),
        );
        return Err(check.errors);
    };
    match kind {
        MessageType::Text => check.text_message(object),
        MessageType::Media(media) => check.media_message(media, object),
        MessageType::Location => check.location_message(object),
        MessageType::Contacts => check.contacts_message(object),
        MessageType::Interactive => check.interactive_message(object),
        MessageType::Template => check.template_message(object),
        MessageType::Reaction => check.reaction_message(object),
    }
    check.errors.finish()?;
    Ok(ValidatedMessage {
        message_type: message_type.to_owned(),
        type_object: object.clone(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageType {
    Text,
    Media(MediaType),
    Location,
    Contacts,
    Interactive,
    Template,
    Reaction,
}

impl MessageType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "text" => Self::Text,
            "image" => Self::Media(MediaType::Image),
            "video" => Self::Media(MediaType::Video),
            "audio" => Self::Media(MediaType::Audio),
            "document" => Self::Media(MediaType::Document),
            "sticker" => Self::Media(MediaType::Sticker),
            "location" => Self::Location,
            "contacts" => Self::Contacts,
            "interactive" => Self::Interactive,
            "template" => Self::Template,
            "reaction" => Self::Reaction,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaType {
    fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    fn takes_caption(self) -> bool {
        matches!(self, Self::Image | Self::Video | Self::Document)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InteractiveType {
    Button,
    List,
    CtaUrl,
    Flow,
}

impl InteractiveType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "button" => Self::Button,
            "list" => Self::List,
            "cta_url" => Self::CtaUrl,
            "flow" => Self::Flow,
            _ => return None,
        })
    }
}

fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

const WEB_URL_PROBLEM: &str =
    "must be an absolute http or https URL (like https://example.com/file.jpg)";

/// An absolute http or https URL with a host, written without spaces (Meta fetches it as given).
fn is_web_url(text: &str) -> bool {
    if text.chars().any(char::is_whitespace) {
        return false;
    }
    Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// A date on the calendar written `YYYY-MM-DD`, as Meta wants a contact's birthday.
fn is_calendar_date(text: &str) -> bool {
    time::Date::parse(text, format_description!("[year]-[month]-[day]")).is_ok()
}

/// The walk over one type object, collecting problems under their field paths.
#[derive(Default)]
struct Check {
    errors: FieldErrors,
}

impl Check {
    fn problem(&mut self, path: &str, reason: impl Into<String>) {
        self.errors.add(path, reason);
    }

    fn max_chars(&mut self, path: &str, text: &str, max: usize) {
        let count = text.chars().count();
        if count > max {
            self.errors.add_limit(
                path,
                format!("must be at most {max} characters (it has {count})"),
                max as u64,
            );
        }
    }

    /// A string that must be there and hold more than spaces; `None` when it does not.
    fn required_text<'a>(
        &mut self,
        path: &str,
        value: Option<&'a Value>,
        max: Option<usize>,
    ) -> Option<&'a str> {
        match value {
            None | Some(Value::Null) => {
                self.problem(path, "is required");
                None
            }
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.problem(path, "must not be empty");
                None
            }
            Some(Value::String(text)) => {
                if let Some(max) = max {
                    self.max_chars(path, text, max);
                }
                Some(text)
            }
            Some(_) => {
                self.problem(path, "must be a string");
                None
            }
        }
    }

    /// A string that may be left out (or left empty).
    fn optional_text<'a>(
        &mut self,
        path: &str,
        value: Option<&'a Value>,
        max: Option<usize>,
    ) -> Option<&'a str> {
        match value {
            None => None,
            Some(Value::String(text)) => {
                if let Some(max) = max {
                    self.max_chars(path, text, max);
                }
                Some(text)
            }
            Some(_) => {
                self.problem(path, "must be a string, or be left out");
                None
            }
        }
    }

    /// A string that may be left out, but must hold more than spaces when given.
    fn optional_nonblank_text<'a>(
        &mut self,
        path: &str,
        value: Option<&'a Value>,
        max: Option<usize>,
    ) -> Option<&'a str> {
        match value? {
            Value::Null => {
                self.problem(path, "must be a string, or be left out");
                None
            }
            value => self.required_text(path, Some(value), max),
        }
    }

    /// One of a few fixed words, if given.
    fn optional_word(&mut self, path: &str, value: Option<&Value>, words: &[&str]) {
        let Some(value) = value else { return };
        if !value.as_str().is_some_and(|word| words.contains(&word)) {
            self.problem(path, format!("must be one of: {}", words.join(", ")));
        }
    }

    fn optional_bool(&mut self, path: &str, value: Option<&Value>) {
        if value.is_some_and(|value| !value.is_boolean()) {
            self.problem(path, "must be true or false, or be left out");
        }
    }

    /// A value that must be an object.
    fn object<'a>(&mut self, path: &str, value: &'a Value) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(object) => Some(object),
            Value::Null => {
                self.problem(path, "is required");
                None
            }
            _ => {
                self.problem(path, "must be an object");
                None
            }
        }
    }

    fn required_object<'a>(
        &mut self,
        path: &str,
        value: Option<&'a Value>,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            Some(value) => self.object(path, value),
            None => {
                self.problem(path, "is required");
                None
            }
        }
    }

    fn optional_object<'a>(
        &mut self,
        path: &str,
        value: Option<&'a Value>,
    ) -> Option<&'a Map<String, Value>> {
        match value? {
            Value::Object(object) => Some(object),
            _ => {
                self.problem(path, "must be an object, or be left out");
                None
            }
        }
    }

    fn required_array<'a>(&mut self, path: &str, value: Option<&'a Value>) -> Option<&'a [Value]> {
        match value {
            Some(Value::Array(items)) => Some(items),
            None | Some(Value::Null) => {
                self.problem(path, "is required");
                None
            }
            Some(_) => {
                self.problem(path, "must be an array");
                None
            }
        }
    }

    fn optional_array<'a>(&mut self, path: &str, value: Option<&'a Value>) -> Option<&'a [Value]> {
        match value? {
            Value::Array(items) => Some(items),
            _ => {
                self.problem(path, "must be an array, or be left out");
                None
            }
        }
    }

    fn web_url(&mut self, path: &str, value: Option<&Value>) {
        if let Some(url) = self.required_text(path, value, None)
            && !is_web_url(url)
        {
            self.problem(path, WEB_URL_PROBLEM);
        }
    }

    /// Where Meta gets the media: an uploaded media `id` or a public `link`, exactly one of them.
    fn media_source(&mut self, path: &str, media: &Map<String, Value>) {
        let id = media.get("id");
        let link = media.get("link");
        match (id, link) {
            (Some(_), Some(_)) => self.problem(path, "must have `id` or `link`, not both"),
            (None, None) => self.problem(
                path,
                "needs `id` (a media id from an upload) or `link` (an http or https URL)",
            ),
            _ => {}
        }
        self.optional_nonblank_text(&child(path, "id"), id, None);
        if let Some(link) = link {
            let link_path = child(path, "link");
            match link.as_str() {
                Some(url) if is_web_url(url) => {}
                Some(_) => self.problem(&link_path, WEB_URL_PROBLEM),
                None => self.problem(&link_path, "must be a string: an http or https URL"),
            }
        }
    }

    fn text_message(&mut self, object: &Value) {
        let Some(text) = self.object("text", object) else {
            return;
        };
        self.required_text("text.body", text.get("body"), Some(TEXT_BODY_MAX_CHARS));
        self.optional_bool("text.preview_url", text.get("preview_url"));
    }

    fn media_message(&mut self, media_type: MediaType, object: &Value) {
        let path = media_type.name();
        let Some(media) = self.object(path, object) else {
            return;
        };
        self.media_source(path, media);

        let caption = media.get("caption");
        if media_type.takes_caption() {
            self.optional_text(&child(path, "caption"), caption, Some(CAPTION_MAX_CHARS));
        } else if caption.is_some() {
            self.problem(
                &child(path, "caption"),
                format!(
                    "is not allowed on {path} messages; only image, video and document messages have a caption"
                ),
            );
        }

        let filename = media.get("filename");
        if media_type == MediaType::Document {
            self.optional_nonblank_text(
                &child(path, "filename"),
                filename,
                Some(FILENAME_MAX_CHARS),
            );
        } else if filename.is_some() {
            self.problem(
                &child(path, "filename"),
                format!("is not allowed on {path} messages; only documents have a file name"),
            );
        }

        let voice = media.get("voice");
        if media_type == MediaType::Audio {
            self.optional_bool(&child(path, "voice"), voice);
        } else if voice.is_some() {
            self.problem(
                &child(path, "voice"),
                format!("is not allowed on {path} messages; only audio can be a voice note"),
            );
        }
    }

    fn location_message(&mut self, object: &Value) {
        if let Some(location) = self.object("location", object) {
            self.location_fields("location", location);
        }
    }

    fn location_fields(&mut self, path: &str, location: &Map<String, Value>) {
        self.coordinate(&child(path, "latitude"), location.get("latitude"), 90.0);
        self.coordinate(&child(path, "longitude"), location.get("longitude"), 180.0);
        for key in ["name", "address"] {
            self.optional_text(
                &child(path, key),
                location.get(key),
                Some(LOCATION_TEXT_MAX_CHARS),
            );
        }
    }

    /// A number, or a string holding one (Meta's own example sends strings), within ±`bound`.
    fn coordinate(&mut self, path: &str, value: Option<&Value>, bound: f64) {
        let number = match value {
            None | Some(Value::Null) => {
                self.problem(path, "is required");
                return;
            }
            Some(Value::Number(number)) => number.as_f64(),
            Some(Value::String(text)) => text.parse::<f64>().ok(),
            Some(_) => None,
        };
        match number.filter(|number| number.is_finite()) {
            None => self.problem(path, "must be a number (or a string holding one)"),
            Some(number) if !(-bound..=bound).contains(&number) => {
                self.problem(path, format!("must be between -{bound} and {bound}"));
            }
            Some(_) => {}
        }
    }

    fn contacts_message(&mut self, object: &Value) {
        let path = "contacts";
        let Value::Array(cards) = object else {
            self.problem(path, "must be an array of contact cards");
            return;
        };
        if cards.is_empty() {
            self.problem(path, "must hold at least one contact card");
        } else if cards.len() > CONTACTS_MAX {
            self.errors.add_limit(
                path,
                format!(
                    "must hold at most {CONTACTS_MAX} contact cards (it has {})",
                    cards.len()
                ),
                CONTACTS_MAX as u64,
            );
        }
        for (index, card) in cards.iter().enumerate() {
            let card_path = item(path, index);
            if let Some(card) = self.object(&card_path, card) {
                self.contact_card(&card_path, card);
            }
        }
    }

    fn contact_card(&mut self, path: &str, card: &Map<String, Value>) {
        let name_path = child(path, "name");
        if let Some(name) = self.required_object(&name_path, card.get("name")) {
            self.required_text(
                &child(&name_path, "formatted_name"),
                name.get("formatted_name"),
                None,
            );
            for key in ["first_name", "last_name", "middle_name", "suffix", "prefix"] {
                self.optional_text(&child(&name_path, key), name.get(key), None);
            }
        }

        let birthday_path = child(path, "birthday");
        if let Some(birthday) = self.optional_text(&birthday_path, card.get("birthday"), None)
            && !is_calendar_date(birthday)
        {
            self.problem(&birthday_path, "must be a date written YYYY-MM-DD");
        }

        let org_path = child(path, "org");
        if let Some(org) = self.optional_object(&org_path, card.get("org")) {
            for key in ["company", "department", "title"] {
                self.optional_text(&child(&org_path, key), org.get(key), None);
            }
        }

        let entries: [(&str, &[&str]); 4] = [
            (
                "addresses",
                &[
                    "street",
                    "city",
                    "state",
                    "zip",
                    "country",
                    "country_code",
                    "type",
                ],
            ),
            ("emails", &["email", "type"]),
            ("phones", &["phone", "type", "wa_id"]),
            ("urls", &["url", "type"]),
        ];
        for (key, text_fields) in entries {
            let list_path = child(path, key);
            let Some(list) = self.optional_array(&list_path, card.get(key)) else {
                continue;
            };
            for (index, entry) in list.iter().enumerate() {
                let entry_path = item(&list_path, index);
                let Some(entry) = self.object(&entry_path, entry) else {
                    continue;
                };
                for field in text_fields {
                    self.optional_text(&child(&entry_path, field), entry.get(*field), None);
                }
            }
        }
    }

    fn interactive_message(&mut self, object: &Value) {
        let Some(interactive) = self.object("interactive", object) else {
            return;
        };
        let kind = self.interactive_type(interactive.get("type"));

        if let Some(header) = self.optional_object("interactive.header", interactive.get("header"))
        {
            self.interactive_header(header, kind);
        }

        // Every kind wagate sends needs a body; with an unknown kind, still check one that is given.
        let body = if kind.is_some() {
            self.required_object("interactive.body", interactive.get("body"))
        } else {
            self.optional_object("interactive.body", interactive.get("body"))
        };
        if let Some(body) = body {
            self.required_text(
                "interactive.body.text",
                body.get("text"),
                Some(INTERACTIVE_BODY_MAX_CHARS),
            );
        }

        if let Some(footer) = self.optional_object("interactive.footer", interactive.get("footer"))
        {
            self.required_text(
                "interactive.footer.text",
                footer.get("text"),
                Some(FOOTER_TEXT_MAX_CHARS),
            );
        }

        let Some(kind) = kind else {
            return;
        };
        let Some(action) = self.required_object("interactive.action", interactive.get("action"))
        else {
            return;
        };
        match kind {
            InteractiveType::Button => self.reply_buttons(action),
            InteractiveType::List => self.list(action),
            InteractiveType::CtaUrl => self.cta_url(action),
            InteractiveType::Flow => self.flow(action),
        }
    }

    fn interactive_type(&mut self, value: Option<&Value>) -> Option<InteractiveType> {
        let path = "interactive.type";
        let supported = INTERACTIVE_TYPES.join(", ");
        match value {
            None | Some(Value::Null) => {
                self.problem(path, format!("is required; use one of: {supported}"));
                None
            }
            Some(Value::String(name)) => {
                let kind = InteractiveType::parse(name);
                if kind.is_none() {
                    self.problem(
                        path,
                        format!("is not an interactive type wagate sends; use one of: {supported}"),
                    );
                }
                kind
            }
            Some(_) => {
                self.problem(path, format!("must be a string, one of: {supported}"));
                None
            }
        }
    }

    fn interactive_header(&mut self, header: &Map<String, Value>, kind: Option<InteractiveType>) {
        let path = "interactive.header";
        let type_path = "interactive.header.type";
        let Some(header_type) = self.required_text(type_path, header.get("type"), None) else {
            return;
        };
        match header_type {
            "text" => {
                self.required_text(
                    "interactive.header.text",
                    header.get("text"),
                    Some(HEADER_TEXT_MAX_CHARS),
                );
            }
            // Meta shows list messages with a text header only.
            "image" | "video" | "document" if kind == Some(InteractiveType::List) => {
                self.problem(
                    type_path,
                    "must be `text`: list messages take a text header only",
                );
            }
            "image" | "video" | "document" => {
                let media_path = child(path, header_type);
                if let Some(media) = self.required_object(&media_path, header.get(header_type)) {
                    self.media_source(&media_path, media);
                }
            }
            _ => self.problem(type_path, "must be one of: text, image, video, document"),
        }
    }

    fn reply_buttons(&mut self, action: &Map<String, Value>) {
        let path = "interactive.action.buttons";
        let Some(buttons) = self.required_array(path, action.get("buttons")) else {
            return;
        };
        if buttons.is_empty() {
            self.problem(path, "must hold at least one button");
        } else if buttons.len() > REPLY_BUTTONS_MAX {
            self.errors.add_limit(
                path,
                format!(
                    "must hold at most {REPLY_BUTTONS_MAX} buttons (it has {})",
                    buttons.len()
                ),
                REPLY_BUTTONS_MAX as u64,
            );
        }
        let mut ids = HashSet::new();
        let mut titles = HashSet::new();
        for (index, button) in buttons.iter().enumerate() {
            let button_path = item(path, index);
            let Some(button) = self.object(&button_path, button) else {
                continue;
            };
            if button.get("type").and_then(Value::as_str) != Some("reply") {
                self.problem(&child(&button_path, "type"), "must be `reply`");
            }
            let reply_path = child(&button_path, "reply");
            let Some(reply) = self.required_object(&reply_path, button.get("reply")) else {
                continue;
            };
            let id_path = child(&reply_path, "id");
            if let Some(id) =
                self.required_text(&id_path, reply.get("id"), Some(REPLY_BUTTON_ID_MAX_CHARS))
                && !ids.insert(id)
            {
                self.problem(&id_path, "must differ from the other buttons' ids");
            }
            let title_path = child(&reply_path, "title");
            if let Some(title) = self.required_text(
                &title_path,
                reply.get("title"),
                Some(REPLY_BUTTON_TITLE_MAX_CHARS),
            ) && !titles.insert(title)
            {
                self.problem(&title_path, "must differ from the other buttons' titles");
            }
        }
    }

    fn list(&mut self, action: &Map<String, Value>) {
        self.required_text(
            "interactive.action.button",
            action.get("button"),
            Some(LIST_BUTTON_MAX_CHARS),
        );
        let path = "interactive.action.sections";
        let Some(sections) = self.required_array(path, action.get("sections")) else {
            return;
        };
        if sections.is_empty() {
            self.problem(path, "must hold at least one section");
        } else if sections.len() > LIST_SECTIONS_MAX {
            self.errors.add_limit(
                path,
                format!(
                    "must hold at most {LIST_SECTIONS_MAX} sections (it has {})",
                    sections.len()
                ),
                LIST_SECTIONS_MAX as u64,
            );
        }
        let several = sections.len() > 1;
        let mut rows_in_all = 0;
        let mut ids = HashSet::new();
        for (index, section) in sections.iter().enumerate() {
            let section_path = item(path, index);
            let Some(section) = self.object(&section_path, section) else {
                continue;
            };
            let title_path = child(&section_path, "title");
            let title = section.get("title");
            if several && title.is_none_or(Value::is_null) {
                self.problem(
                    &title_path,
                    "is required when the list has more than one section",
                );
            } else if several {
                self.required_text(&title_path, title, Some(LIST_SECTION_TITLE_MAX_CHARS));
            } else {
                self.optional_text(&title_path, title, Some(LIST_SECTION_TITLE_MAX_CHARS));
            }

            let rows_path = child(&section_path, "rows");
            let Some(rows) = self.required_array(&rows_path, section.get("rows")) else {
                continue;
            };
            if rows.is_empty() {
                self.problem(&rows_path, "must hold at least one row");
            }
            rows_in_all += rows.len();
            for (index, row) in rows.iter().enumerate() {
                let row_path = item(&rows_path, index);
                let Some(row) = self.object(&row_path, row) else {
                    continue;
                };
                let id_path = child(&row_path, "id");
                if let Some(id) =
                    self.required_text(&id_path, row.get("id"), Some(LIST_ROW_ID_MAX_CHARS))
                    && !ids.insert(id)
                {
                    self.problem(&id_path, "must differ from the other rows' ids");
                }
                self.required_text(
                    &child(&row_path, "title"),
                    row.get("title"),
                    Some(LIST_ROW_TITLE_MAX_CHARS),
                );
                self.optional_text(
                    &child(&row_path, "description"),
                    row.get("description"),
                    Some(LIST_ROW_DESCRIPTION_MAX_CHARS),
                );
            }
        }
        if rows_in_all > LIST_ROWS_MAX {
            self.errors.add_limit(
                path,
                format!("must hold at most {LIST_ROWS_MAX} rows in all (it has {rows_in_all})"),
                LIST_ROWS_MAX as u64,
            );
        }
    }

    /// `action.name` of the kinds that have one: equal to the interactive type.
    fn action_name(&mut self, action: &Map<String, Value>, expected: &str) {
        if action.get("name").and_then(Value::as_str) != Some(expected) {
            self.problem("interactive.action.name", format!("must be `{expected}`"));
        }
    }

    fn cta_url(&mut self, action: &Map<String, Value>) {
        self.action_name(action, "cta_url");
        let path = "interactive.action.parameters";
        let Some(parameters) = self.required_object(path, action.get("parameters")) else {
            return;
        };
        self.required_text(
            &child(path, "display_text"),
            parameters.get("display_text"),
            Some(CTA_DISPLAY_TEXT_MAX_CHARS),
        );
        self.web_url(&child(path, "url"), parameters.get("url"));
    }

    fn flow(&mut self, action: &Map<String, Value>) {
        self.action_name(action, "flow");
        let path = "interactive.action.parameters";
        let Some(parameters) = self.required_object(path, action.get("parameters")) else {
            return;
        };
        self.required_text(
            &child(path, "flow_message_version"),
            parameters.get("flow_message_version"),
            None,
        );
        self.required_text(
            &child(path, "flow_cta"),
            parameters.get("flow_cta"),
            Some(FLOW_CTA_MAX_CHARS),
        );
        let flow_id = parameters.get("flow_id");
        let flow_name = parameters.get("flow_name");
        match (flow_id, flow_name) {
            (Some(_), Some(_)) => {
                self.problem(path, "must have `flow_id` or `flow_name`, not both")
            }
            (None, None) => self.problem(
                path,
                "needs `flow_id` or `flow_name` to say which Flow to open",
            ),
            _ => {}
        }
        for (key, value) in [("flow_id", flow_id), ("flow_name", flow_name)] {
            self.optional_nonblank_text(&child(path, key), value, None);
        }
        self.optional_text(
            &child(path, "flow_token"),
            parameters.get("flow_token"),
            None,
        );
        self.optional_word(
            &child(path, "flow_action"),
            parameters.get("flow_action"),
            &["navigate", "data_exchange"],
        );
        self.optional_word(
            &child(path, "mode"),
            parameters.get("mode"),
            &["draft", "published"],
        );
        let payload_path = child(path, "flow_action_payload");
        if let Some(payload) =
            self.optional_object(&payload_path, parameters.get("flow_action_payload"))
        {
            self.required_text(&child(&payload_path, "screen"), payload.get("screen"), None);
            self.optional_object(&child(&payload_path, "data"), payload.get("data"));
        }
    }

    fn template_message(&mut self, object: &Value) {
        let Some(template) = self.object("template", object) else {
            return;
        };
        self.template_name(template.get("name"));
        if let Some(language) = self.required_object("template.language", template.get("language"))
        {
            self.required_text("template.language.code", language.get("code"), None);
            self.optional_text("template.language.policy", language.get("policy"), None);
        }
        if let Some(components) =
            self.optional_array("template.components", template.get("components"))
        {
            self.template_components("template.components", components);
        }
    }

    fn template_name(&mut self, value: Option<&Value>) {
        let path = "template.name";
        let Some(name) = self.required_text(path, value, None) else {
            return;
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            self.problem(
                path,
                "must use lowercase letters, digits and underscores only, as Meta names templates",
            );
        } else {
            self.max_chars(path, name, TEMPLATE_NAME_MAX_CHARS);
        }
    }

    fn template_components(&mut self, path: &str, components: &[Value]) {
        for (index, component) in components.iter().enumerate() {
            let component_path = item(path, index);
            let Some(component) = self.object(&component_path, component) else {
                continue;
            };
            let type_path = child(&component_path, "type");
            let kind = self
                .required_text(&type_path, component.get("type"), None)
                .map(str::to_ascii_lowercase);
            match kind.as_deref() {
                None => {}
                Some("button") => self.template_button(&component_path, component),
                Some("carousel") => self.template_carousel(&component_path, component),
                Some(kind) if TEMPLATE_COMPONENT_TYPES.contains(&kind) => {}
                Some(_) => self.problem(
                    &type_path,
                    format!("must be one of: {}", TEMPLATE_COMPONENT_TYPES.join(", ")),
                ),
            }
            let parameters_path = child(&component_path, "parameters");
            if let Some(parameters) =
                self.optional_array(&parameters_path, component.get("parameters"))
            {
                for (index, parameter) in parameters.iter().enumerate() {
                    self.template_parameter(&item(&parameters_path, index), parameter);
                }
            }
        }
    }

    fn template_button(&mut self, path: &str, component: &Map<String, Value>) {
        self.required_text(&child(path, "sub_type"), component.get("sub_type"), None);
        let index_path = child(path, "index");
        // Meta's examples send the index as a string; a number is accepted too.
        let position = match component.get("index") {
            None | Some(Value::Null) => {
                self.problem(
                    &index_path,
                    "is required: the button's position in the template, from 0",
                );
                return;
            }
            Some(Value::Number(number)) => number.as_u64(),
            Some(Value::String(text)) if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse::<u64>().ok()
            }
            Some(_) => None,
        };
        if position.is_none_or(|position| position > TEMPLATE_BUTTON_INDEX_MAX) {
            self.errors.add_limit(
                &index_path,
                format!(
                    "must be the button's position in the template, 0 to {TEMPLATE_BUTTON_INDEX_MAX}"
                ),
                TEMPLATE_BUTTON_INDEX_MAX,
            );
        }
    }

    /// A carousel's cards carry components of their own, checked the same way.
    fn template_carousel(&mut self, path: &str, component: &Map<String, Value>) {
        let cards_path = child(path, "cards");
        let Some(cards) = self.required_array(&cards_path, component.get("cards")) else {
            return;
        };
        for (index, card) in cards.iter().enumerate() {
            let card_path = item(&cards_path, index);
            let Some(card) = self.object(&card_path, card) else {
                continue;
            };
            let components_path = child(&card_path, "components");
            if let Some(components) = self.optional_array(&components_path, card.get("components"))
            {
                self.template_components(&components_path, components);
            }
        }
    }

    fn template_parameter(&mut self, path: &str, value: &Value) {
        let Some(parameter) = self.object(path, value) else {
            return;
        };
        self.optional_nonblank_text(
            &child(path, "parameter_name"),
            parameter.get("parameter_name"),
            None,
        );
        let type_path = child(path, "type");
        let Some(kind) = self.required_text(&type_path, parameter.get("type"), None) else {
            return;
        };
        let kind = kind.to_ascii_lowercase();
        let value_path = child(path, &kind);
        let value = parameter.get(kind.as_str());
        match kind.as_str() {
            "text" | "payload" | "coupon_code" => {
                self.required_text(&value_path, value, None);
            }
            "image" | "video" | "document" => {
                if let Some(media) = self.required_object(&value_path, value) {
                    self.media_source(&value_path, media);
                    if kind == "document" {
                        self.optional_nonblank_text(
                            &child(&value_path, "filename"),
                            media.get("filename"),
                            Some(FILENAME_MAX_CHARS),
                        );
                    }
                }
            }
            "location" => {
                if let Some(location) = self.required_object(&value_path, value) {
                    self.location_fields(&value_path, location);
                }
            }
            "currency" => {
                if let Some(currency) = self.required_object(&value_path, value) {
                    self.required_text(
                        &child(&value_path, "fallback_value"),
                        currency.get("fallback_value"),
                        None,
                    );
                    self.required_text(&child(&value_path, "code"), currency.get("code"), None);
                    if !currency.get("amount_1000").is_some_and(Value::is_i64) {
                        self.problem(
                            &child(&value_path, "amount_1000"),
                            "must be a whole number: the amount times 1000",
                        );
                    }
                }
            }
            "date_time" => {
                if let Some(date_time) = self.required_object(&value_path, value) {
                    self.required_text(
                        &child(&value_path, "fallback_value"),
                        date_time.get("fallback_value"),
                        None,
                    );
                }
            }
            "action" => {
                self.required_object(&value_path, value);
            }
            kind if TEMPLATE_PARAMETER_TYPES.contains(&kind) => {}
            _ => self.problem(
                &type_path,
                format!("must be one of: {}", TEMPLATE_PARAMETER_TYPES.join(", ")),
            ),
        }
    }

    fn reaction_message(&mut self, object: &Value) {
        let Some(reaction) = self.object("reaction", object) else {
            return;
        };
        self.required_text("reaction.message_id", reaction.get("message_id"), None);
        let path = "reaction.emoji";
        match reaction.get("emoji") {
            None | Some(Value::Null) => self.problem(
                path,
                "is required: one emoji, or an empty string to remove the reaction",
            ),
            // An empty emoji removes the reaction.
            Some(Value::String(emoji)) if emoji.is_empty() => {}
            Some(Value::String(emoji)) => {
                let count = emoji.chars().count();
                if count > REACTION_EMOJI_MAX_CHARS {
                    self.errors.add_limit(
                        path,
                        format!(
                            "must be a single emoji (at most {REACTION_EMOJI_MAX_CHARS} characters; it has {count})"
                        ),
                        REACTION_EMOJI_MAX_CHARS as u64,
                    );
                } else if emoji
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c.is_ascii_alphabetic())
                {
                    self.problem(path, "must be a single emoji, without letters or spaces");
                }
            }
            Some(_) => self.problem(
                path,
                "must be a string: one emoji, or an empty string to remove the reaction",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Meta's documented examples whose values are placeholders Meta itself would refuse, with the
    /// only fields that must fail: everything else in them must pass.
    const PLACEHOLDER_FIELDS: [(&str, &[&str]); 2] = [
        // `"link": "http(s)://image-url"` stands for a URL; it is not one.
        ("send_image_by_link_request.json", &["image.link"]),
        // `"name": "template-name"` has a hyphen, which template names cannot hold, and the image
        // parameter links to `http(s)://the-image-url`.
        (
            "send_template_positional_with_quick_reply_payload_request.json",
            &[
                "template.name",
                "template.components[0].parameters[0].image.link",
            ],
        ),
    ];

    /// The details of the problems found; panics if the message passed.
    fn problems(message_type: &str, object: Value) -> Value {
        match validate(message_type, Some(&object)) {
            Ok(_) => panic!("a {message_type} message passed: {object}"),
            Err(errors) => errors.to_details(),
        }
    }

    fn fields_of(details: &Value) -> Vec<String> {
        details["fields"]
            .as_object()
            .map(|fields| fields.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn reply_buttons(count: usize) -> Value {
        let buttons: Vec<Value> = (0..count)
            .map(|n| json!({"type": "reply", "reply": {"id": format!("b{n}"), "title": format!("Choice {n}")}}))
            .collect();
        json!({
            "type": "button",
            "body": {"text": "Pick one"},
            "action": {"buttons": buttons},
        })
    }

    fn list_with_rows(rows_per_section: &[usize]) -> Value {
        let sections: Vec<Value> = rows_per_section
            .iter()
            .enumerate()
            .map(|(section, &rows)| {
                let rows: Vec<Value> = (0..rows)
                    .map(|row| json!({"id": format!("s{section}r{row}"), "title": format!("Row {row}")}))
                    .collect();
                json!({"title": format!("Section {section}"), "rows": rows})
            })
            .collect();
        json!({
            "type": "list",
            "body": {"text": "Choose"},
            "action": {"button": "Options", "sections": sections},
        })
    }

    /// A valid type object for each supported type, for the property tests to break.
    fn valid_objects() -> Vec<(&'static str, Value)> {
        vec![
            ("text", json!({"body": "Hello", "preview_url": false})),
            (
                "image",
                json!({"link": "https://example.com/a.jpg", "caption": "A"}),
            ),
            ("video", json!({"id": "1166846181421424", "caption": "V"})),
            ("audio", json!({"id": "1013859600285441", "voice": true})),
            (
                "document",
                json!({"id": "1", "caption": "C", "filename": "a.pdf"}),
            ),
            ("sticker", json!({"id": "798882015472548"})),
            (
                "location",
                json!({"latitude": 37.4, "longitude": "-122.1", "name": "N", "address": "A"}),
            ),
            (
                "contacts",
                json!([{
                    "name": {"formatted_name": "Barbara J. Johnson", "first_name": "Barbara"},
                    "birthday": "1999-01-23",
                    "org": {"company": "Lucky Shrub"},
                    "phones": [{"phone": "+16505559999", "type": "Landline"}],
                    "emails": [{"email": "b@example.com"}],
                    "urls": [{"url": "https://example.com"}],
                    "addresses": [{"city": "Menlo Park"}],
                }]),
            ),
            ("interactive", reply_buttons(3)),
            ("interactive", list_with_rows(&[2, 3])),
            (
                "interactive",
                json!({
                    "type": "cta_url",
                    "header": {"type": "video", "video": {"link": "https://example.com/v.mp4"}},
                    "body": {"text": "See dates"},
                    "footer": {"text": "Footer"},
                    "action": {"name": "cta_url", "parameters": {"display_text": "See", "url": "https://example.com"}},
                }),
            ),
            (
                "interactive",
                json!({
                    "type": "flow",
                    "header": {"type": "text", "text": "Book"},
                    "body": {"text": "Book a visit"},
                    "action": {"name": "flow", "parameters": {
                        "flow_message_version": "3", "flow_id": "1234", "flow_cta": "Book!",
                        "flow_action": "navigate", "mode": "draft",
                        "flow_action_payload": {"screen": "START", "data": {"a": 1}},
                    }},
                }),
            ),
            (
                "template",
                json!({
                    "name": "order_update_2",
                    "language": {"code": "en_US", "policy": "deterministic"},
                    "components": [
                        {"type": "HEADER", "parameters": [
                            {"type": "location", "location": {"latitude": "1", "longitude": 2, "name": "X"}},
                        ]},
                        {"type": "body", "parameters": [
                            {"type": "text", "parameter_name": "first", "text": "Ann"},
                            {"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}},
                            {"type": "date_time", "date_time": {"fallback_value": "Today"}},
                            {"type": "document", "document": {"id": "9", "filename": "a.pdf"}},
                        ]},
                        {"type": "button", "sub_type": "url", "index": 1, "parameters": [{"type": "text", "text": "abc"}]},
                        {"type": "button", "sub_type": "copy_code", "index": "2", "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]},
                        {"type": "button", "sub_type": "flow", "index": "3", "parameters": [{"type": "action", "action": {"flow_token": "t"}}]},
                        {"type": "carousel", "cards": [{"card_index": 0, "components": [
                            {"type": "header", "parameters": [{"type": "image", "image": {"id": "5"}}]},
                        ]}]},
                    ],
                }),
            ),
            (
                "reaction",
                json!({"message_id": "wamid.X", "emoji": "\u{1F44D}\u{1F3FD}"}),
            ),
            ("reaction", json!({"message_id": "wamid.X", "emoji": ""})),
        ]
    }

    #[test]
    fn every_message_in_metas_send_examples_passes() {
        let directory =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/meta-examples");
        let entries = std::fs::read_dir(&directory)
            .unwrap_or_else(|e| panic!("{} must exist: {e}", directory.display()));
        let mut names: Vec<String> = entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("send_") && name.ends_with("_request.json"))
            .filter(|name| !name.contains("mark_as_read") && !name.contains("typing_indicator"))
            .collect();
        names.sort();
        assert!(
            names.len() >= 18,
            "only {} send examples found: {names:?}",
            names.len()
        );

        for name in &names {
            let raw = std::fs::read_to_string(directory.join(name)).unwrap();
            let request: Value = serde_json::from_str(&raw).unwrap();
            let message_type = request["type"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no type"));
            assert!(
                SUPPORTED_TYPES.contains(&message_type),
                "{name}: {message_type}"
            );
            let object = request.get(message_type);
            let expected_failures = PLACEHOLDER_FIELDS
                .iter()
                .find(|(placeholder, _)| placeholder == name)
                .map(|(_, fields)| *fields);
            match (validate(message_type, object), expected_failures) {
                (Ok(message), None) => {
                    assert_eq!(message.message_type, message_type, "{name}");
                    assert_eq!(Some(&message.type_object), object, "{name}: sent as given");
                }
                (Err(errors), None) => panic!("{name} failed: {}", errors.to_details()),
                (Ok(_), Some(fields)) => {
                    panic!("{name} passed despite its placeholders {fields:?}")
                }
                (Err(errors), Some(fields)) => {
                    let mut found = fields_of(&errors.to_details());
                    found.sort();
                    let mut expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                    expected.sort();
                    assert_eq!(found, expected, "{name}: only its placeholders fail");
                }
            }
        }
    }

    #[test]
    fn the_valid_objects_used_by_the_property_tests_pass() {
        for (message_type, object) in valid_objects() {
            if let Err(errors) = validate(message_type, Some(&object)) {
                panic!("{message_type} failed: {}", errors.to_details());
            }
        }
    }

    #[test]
    fn a_validated_message_says_whether_it_is_a_template_or_a_reaction() {
        let template = json!({"name": "hello_world", "language": {"code": "en_US"}});
        let message = validate("template", Some(&template)).unwrap();
        assert!(message.is_template() && !message.is_reaction());
        let reaction = json!({"message_id": "wamid.X", "emoji": ""});
        let message = validate("reaction", Some(&reaction)).unwrap();
        assert!(message.is_reaction() && !message.is_template());
    }

    #[test]
    fn a_text_body_over_4096_characters_names_the_field_and_the_limit() {
        let details = problems("text", json!({"body": "a".repeat(4097)}));
        assert_eq!(details["field"], "text.body");
        assert_eq!(details["limit"], 4096);
        assert_eq!(fields_of(&details), ["text.body"]);
    }

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        let body = "\u{00e9}".repeat(4096);
        assert!(body.len() > 4096);
        assert!(validate("text", Some(&json!({"body": body}))).is_ok());
    }

    #[test]
    fn a_blank_text_body_and_a_preview_url_that_is_not_a_bool_are_refused() {
        let details = problems("text", json!({"body": "  \n", "preview_url": "yes"}));
        assert_eq!(details["fields"]["text.body"], "must not be empty");
        assert!(details["fields"]["text.preview_url"].is_string());
    }

    #[test]
    fn four_reply_buttons_cross_the_limit_of_three() {
        let details = problems("interactive", reply_buttons(4));
        assert_eq!(details["field"], "interactive.action.buttons");
        assert_eq!(details["limit"], 3);
    }

    #[test]
    fn a_reply_button_title_of_21_characters_is_refused() {
        let mut object = reply_buttons(2);
        object["action"]["buttons"][1]["reply"]["title"] = json!("x".repeat(21));
        let details = problems("interactive", object);
        assert_eq!(
            details["field"],
            "interactive.action.buttons[1].reply.title"
        );
        assert_eq!(details["limit"], 20);
    }

    #[test]
    fn reply_button_ids_and_titles_must_be_unique() {
        let mut object = reply_buttons(3);
        object["action"]["buttons"][2]["reply"] = json!({"id": "b0", "title": "Choice 1"});
        let details = problems("interactive", object);
        let mut fields = fields_of(&details);
        fields.sort();
        assert_eq!(
            fields,
            [
                "interactive.action.buttons[2].reply.id",
                "interactive.action.buttons[2].reply.title"
            ]
        );
    }

    #[test]
    fn eleven_rows_over_two_sections_cross_the_limit_of_ten() {
        let details = problems("interactive", list_with_rows(&[6, 5]));
        assert_eq!(details["field"], "interactive.action.sections");
        assert_eq!(details["limit"], 10);
        assert!(validate("interactive", Some(&list_with_rows(&[6, 4]))).is_ok());
    }

    #[test]
    fn list_rows_sections_and_titles_are_held_to_their_limits() {
        let mut object = list_with_rows(&[1; 11]);
        object["action"]["sections"][0]["rows"][0]["title"] = json!("t".repeat(25));
        object["action"]["sections"][0]["rows"][0]["description"] = json!("d".repeat(73));
        object["action"]["sections"][1]["rows"][0]["id"] = json!("i".repeat(201));
        object["action"]["sections"][2]["rows"][0]["id"] = json!("s0r0");
        object["action"]["sections"][3]
            .as_object_mut()
            .unwrap()
            .remove("title");
        object["action"]["button"] = json!("b".repeat(21));
        object["header"] = json!({"type": "image", "image": {"id": "1"}});
        let details = problems("interactive", object);
        let limits = &details["limits"];
        assert_eq!(limits["interactive.action.sections"], 10);
        assert_eq!(limits["interactive.action.sections[0].rows[0].title"], 24);
        assert_eq!(
            limits["interactive.action.sections[0].rows[0].description"],
            72
        );
        assert_eq!(limits["interactive.action.sections[1].rows[0].id"], 200);
        assert_eq!(limits["interactive.action.button"], 20);
        let fields = &details["fields"];
        assert!(fields["interactive.action.sections[2].rows[0].id"].is_string());
        assert!(fields["interactive.action.sections[3].title"].is_string());
        assert!(fields["interactive.header.type"].is_string());
    }

    #[test]
    fn a_single_section_needs_no_title() {
        let mut object = list_with_rows(&[2]);
        object["action"]["sections"][0]
            .as_object_mut()
            .unwrap()
            .remove("title");
        assert!(validate("interactive", Some(&object)).is_ok());
    }

    #[test]
    fn a_caption_on_audio_is_refused_by_name() {
        let details = problems("audio", json!({"id": "1", "caption": "listen"}));
        assert_eq!(fields_of(&details), ["audio.caption"]);
        let details = problems(
            "sticker",
            json!({"id": "1", "caption": "x", "filename": "a"}),
        );
        assert_eq!(fields_of(&details), ["sticker.caption", "sticker.filename"]);
    }

    #[test]
    fn a_caption_over_1024_characters_and_a_long_file_name_are_refused() {
        let details = problems(
            "document",
            json!({"id": "1", "caption": "c".repeat(1025), "filename": "f".repeat(241)}),
        );
        assert_eq!(details["limits"]["document.caption"], 1024);
        assert_eq!(details["limits"]["document.filename"], 240);
    }

    #[test]
    fn media_with_both_id_and_link_is_refused() {
        let details = problems(
            "image",
            json!({"id": "1", "link": "https://example.com/a.jpg"}),
        );
        assert_eq!(fields_of(&details), ["image"]);
        assert!(details["reason"].as_str().unwrap().contains("not both"));
    }

    #[test]
    fn media_with_neither_id_nor_link_is_refused() {
        let details = problems("video", json!({"caption": "no source"}));
        assert_eq!(fields_of(&details), ["video"]);
    }

    #[test]
    fn a_link_that_is_not_an_http_url_is_refused() {
        for link in [
            "ftp://example.com/a.pdf",
            "example.com/a.pdf",
            "https://",
            "https://exa mple.com",
            "",
        ] {
            let details = problems("document", json!({"link": link}));
            assert_eq!(fields_of(&details), ["document.link"], "{link}");
        }
        let object = json!({
            "type": "cta_url",
            "body": {"text": "Go"},
            "action": {"name": "cta_url", "parameters": {"display_text": "x".repeat(21), "url": "javascript:alert(1)"}},
        });
        let details = problems("interactive", object);
        assert!(details["fields"]["interactive.action.parameters.url"].is_string());
        assert_eq!(
            details["limits"]["interactive.action.parameters.display_text"],
            20
        );
    }

    #[test]
    fn coordinates_out_of_range_or_not_numbers_are_refused() {
        let details = problems(
            "location",
            json!({"latitude": 90.5, "longitude": "east", "name": 3}),
        );
        let mut fields = fields_of(&details);
        fields.sort();
        assert_eq!(
            fields,
            ["location.latitude", "location.longitude", "location.name"]
        );
        let edge = json!({"latitude": "-90", "longitude": 180});
        assert!(validate("location", Some(&edge)).is_ok());
        let details = problems("location", json!({"latitude": "NaN", "longitude": "inf"}));
        assert_eq!(fields_of(&details).len(), 2);
    }

    #[test]
    fn contacts_need_a_formatted_name_and_at_most_a_hundred_cards() {
        let details = problems(
            "contacts",
            json!([{"name": {"first_name": "A"}, "phones": [{"phone": 1}], "birthday": "1999-02-30"}]),
        );
        let mut fields = fields_of(&details);
        fields.sort();
        assert_eq!(
            fields,
            [
                "contacts[0].birthday",
                "contacts[0].name.formatted_name",
                "contacts[0].phones[0].phone"
            ]
        );
        let card = json!({"name": {"formatted_name": "A"}});
        let many = Value::Array(vec![card; 101]);
        let details = problems("contacts", many);
        assert_eq!(details["field"], "contacts");
        assert_eq!(details["limit"], 100);
        assert_eq!(fields_of(&problems("contacts", json!([]))), ["contacts"]);
        assert_eq!(fields_of(&problems("contacts", json!({}))), ["contacts"]);
    }

    #[test]
    fn an_unknown_interactive_type_lists_the_supported_ones() {
        let details = problems(
            "interactive",
            json!({"type": "carousel", "body": {"text": "x"}}),
        );
        assert_eq!(details["field"], "interactive.type");
        let reason = details["reason"].as_str().unwrap();
        for supported in INTERACTIVE_TYPES {
            assert!(reason.contains(supported), "{reason}");
        }
    }

    #[test]
    fn interactive_header_footer_and_body_are_held_to_their_limits() {
        let mut object = reply_buttons(1);
        object["header"] = json!({"type": "text", "text": "h".repeat(61)});
        object["footer"] = json!({"text": "f".repeat(61)});
        object["body"] = json!({"text": "b".repeat(1025)});
        let details = problems("interactive", object);
        assert_eq!(details["limits"]["interactive.header.text"], 60);
        assert_eq!(details["limits"]["interactive.footer.text"], 60);
        assert_eq!(details["limits"]["interactive.body.text"], 1024);
    }

    #[test]
    fn a_flow_needs_its_id_or_its_name_and_a_known_action() {
        let object = json!({
            "type": "flow",
            "body": {"text": "x"},
            "action": {"name": "cta_url", "parameters": {
                "flow_message_version": "3", "flow_cta": "c".repeat(21),
                "flow_action": "jump",
            }},
        });
        let details = problems("interactive", object);
        let mut fields = fields_of(&details);
        fields.sort();
        assert_eq!(
            fields,
            [
                "interactive.action.name",
                "interactive.action.parameters",
                "interactive.action.parameters.flow_action",
                "interactive.action.parameters.flow_cta",
            ]
        );
        assert_eq!(
            details["limits"]["interactive.action.parameters.flow_cta"],
            20
        );
    }

    #[test]
    fn a_template_name_with_capitals_is_refused() {
        let details = problems(
            "template",
            json!({"name": "Order_Update", "language": {"code": "en_US"}}),
        );
        assert_eq!(fields_of(&details), ["template.name"]);
        let long = json!({"name": "a".repeat(513), "language": {"code": "en_US"}});
        assert_eq!(problems("template", long)["limit"], 512);
    }

    #[test]
    fn template_components_and_parameters_are_checked_for_shape() {
        let object = json!({
            "name": "order_update",
            "language": {},
            "components": [
                {"type": "bdy", "parameters": [{"type": "text", "text": ""}]},
                {"type": "button", "parameters": [{"type": "payload"}]},
                {"type": "button", "sub_type": "quick_reply", "index": "10"},
                {"type": "header", "parameters": [{"type": "video", "video": {}}, {"type": "sound"}]},
            ],
        });
        let details = problems("template", object);
        let mut fields = fields_of(&details);
        fields.sort();
        assert_eq!(
            fields,
            [
                "template.components[0].parameters[0].text",
                "template.components[0].type",
                "template.components[1].index",
                "template.components[1].parameters[0].payload",
                "template.components[1].sub_type",
                "template.components[2].index",
                "template.components[3].parameters[0].video",
                "template.components[3].parameters[1].type",
                "template.language.code",
            ]
        );
        assert_eq!(details["limits"]["template.components[2].index"], 9);
    }

    #[test]
    fn a_reaction_is_one_emoji_or_empty_to_remove_it() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
        // A kiss between two people with two skin tones: one emoji of ten characters.
        let kiss =
            "\u{1F9D1}\u{1F3FB}\u{200D}\u{2764}\u{FE0F}\u{200D}\u{1F48B}\u{200D}\u{1F9D1}\u{1F3FF}";
        assert!(validate("reaction", Some(&json!({"message_id": "w", "emoji": kiss}))).is_ok());
        assert!(
            validate(
                "reaction",
                Some(&json!({"message_id": "w", "emoji": family}))
            )
            .is_ok()
        );
        let details = problems(
            "reaction",
            json!({"message_id": "", "emoji": "\u{1F600}".repeat(17)}),
        );
        assert_eq!(details["limits"]["reaction.emoji"], 16);
        assert!(details["fields"]["reaction.message_id"].is_string());
        let details = problems("reaction", json!({"message_id": "w", "emoji": "ok"}));
        assert_eq!(fields_of(&details), ["reaction.emoji"]);
        let details = problems("reaction", json!({"message_id": "w"}));
        assert_eq!(fields_of(&details), ["reaction.emoji"]);
    }

    #[test]
    fn an_unknown_type_is_refused_with_the_supported_types_listed() {
        let error = validate("poll", Some(&json!({}))).unwrap_err();
        let details = error.to_details();
        assert_eq!(details["field"], "type");
        let reason = details["reason"].as_str().unwrap();
        for supported in SUPPORTED_TYPES {
            assert!(reason.contains(supported), "{reason}");
        }
        assert_eq!(
            validate("", None).unwrap_err().to_details()["field"],
            "type"
        );
    }

    #[test]
    fn a_missing_type_object_is_required_under_the_name_of_the_type() {
        let details = validate("text", None).unwrap_err().to_details();
        assert_eq!(details["field"], "text");
        assert!(
            details["reason"]
                .as_str()
                .unwrap()
                .starts_with("is required")
        );
        let details = validate("image", Some(&Value::Null))
            .unwrap_err()
            .to_details();
        assert_eq!(details["field"], "image");
        let details = problems("image", json!("https://example.com/a.jpg"));
        assert_eq!(details["fields"]["image"], "must be an object");
    }

    #[test]
    fn unknown_keys_inside_a_type_object_are_kept_and_allowed() {
        let object = json!({"body": "Hi", "x_new_meta_field": {"anything": [1, 2]}});
        let message = validate("text", Some(&object)).unwrap();
        assert_eq!(message.type_object, object);
    }

    #[test]
    fn several_problems_are_reported_at_once() {
        let object = json!({
            "type": "button",
            "header": {"type": "text", "text": "h".repeat(61)},
            "body": {"text": ""},
            "footer": {"text": "fine"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "same", "title": "One"}},
                {"type": "reply", "reply": {"id": "same", "title": "t".repeat(21)}},
                {"type": "url", "reply": {"id": "c", "title": "Three"}},
                "not a button",
            ]},
        });
        let details = problems("interactive", object);
        let mut fields = fields_of(&details);
        fields.sort();
        assert_eq!(
            fields,
            [
                "interactive.action.buttons",
                "interactive.action.buttons[1].reply.id",
                "interactive.action.buttons[1].reply.title",
                "interactive.action.buttons[2].type",
                "interactive.action.buttons[3]",
                "interactive.body.text",
                "interactive.header.text",
            ]
        );
        assert_eq!(
            details["field"], "interactive.header.text",
            "in the order met"
        );
        assert_eq!(details["limits"]["interactive.action.buttons"], 3);
        assert_eq!(
            details["limits"]["interactive.action.buttons[1].reply.title"],
            20
        );
    }

    /// Field names and values that lead the walk into its deeper branches.
    static WORDS: [&str; 40] = [
        "type",
        "body",
        "text",
        "id",
        "link",
        "caption",
        "filename",
        "voice",
        "header",
        "footer",
        "action",
        "buttons",
        "reply",
        "title",
        "button",
        "list",
        "sections",
        "rows",
        "description",
        "cta_url",
        "flow",
        "name",
        "parameters",
        "url",
        "display_text",
        "flow_id",
        "flow_name",
        "components",
        "language",
        "code",
        "sub_type",
        "index",
        "image",
        "document",
        "currency",
        "date_time",
        "location",
        "latitude",
        "carousel",
        "https://example.com/a",
    ];

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(WORDS.as_slice()).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 96, 8, |inner| {
            let key = prop_oneof![
                prop::sample::select(WORDS.as_slice()).prop_map(str::to_owned),
                ".{0,8}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    /// Every JSON pointer inside `value`, the root included.
    fn pointers(value: &Value, at: String, into: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    pointers(child, format!("{at}/{key}"), into);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{index}"), into);
                }
            }
            _ => {}
        }
        into.push(at);
    }

    proptest! {
        #[test]
        fn validate_never_panics_on_arbitrary_json(value in arbitrary_json()) {
            for message_type in SUPPORTED_TYPES {
                let _ = validate(message_type, Some(&value));
            }
        }

        #[test]
        fn validate_never_panics_on_a_valid_message_with_any_part_replaced(
            which in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            replacement in arbitrary_json(),
        ) {
            let objects = valid_objects();
            let (message_type, mut object) = objects[which.index(objects.len())].clone();
            let mut all = Vec::new();
            pointers(&object, String::new(), &mut all);
            let pointer = &all[at.index(all.len())];
            match object.pointer_mut(pointer) {
                Some(part) => *part = replacement,
                None => prop_assert!(false, "{pointer} not found"),
            }
            let _ = validate(message_type, Some(&object));
        }
    }
}
