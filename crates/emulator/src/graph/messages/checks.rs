//! The checks Meta makes on a `/messages` body at send time, each failure worded as Meta's error:
//! 100 for a missing or malformed parameter, 131009 for a value over one of the platform's limits.

use std::collections::HashSet;

use cloudapi::send::{
    ContactCard, Header, Interactive, InteractiveKind, Location, Media, OutboundContent, Reaction,
    Template, Text,
};
use serde_json::{Map, Value};

use super::super::GraphError;

/// The `type`s Meta takes, in the order its error lists them.
const KNOWN_TYPES: [&str; 11] = [
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
];

const MAX_TEXT_BODY: usize = 4096;
const MAX_CAPTION: usize = 1024;
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_HEADER_OR_FOOTER: usize = 60;
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_BUTTON_ID: usize = 256;
const MAX_SECTIONS: usize = 10;
const MAX_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_ROW_ID: usize = 200;
const MAX_SECTION_TITLE: usize = 24;
const MAX_CALLBACK_DATA: usize = 512;
/// E.164 numbers have at most 15 digits.
const MAX_PHONE_DIGITS: usize = 15;

/// Why a body was refused, before it becomes Meta's error envelope.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Code 100 "Invalid parameter": missing, of the wrong type, or malformed.
    InvalidParameter(String),
    /// Code 131009 "Parameter value is not valid": over one of Meta's limits.
    ValueNotValid(String),
}

impl From<Refusal> for GraphError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::InvalidParameter(details) => GraphError::invalid_parameter(details),
            Refusal::ValueNotValid(details) => GraphError::parameter_value_not_valid(details),
        }
    }
}

fn invalid(details: impl Into<String>) -> Refusal {
    Refusal::InvalidParameter(details.into())
}

fn not_valid(details: impl Into<String>) -> Refusal {
    Refusal::ValueNotValid(details.into())
}

/// What a send body that passed every check says.
#[derive(Debug, PartialEq)]
pub(super) struct SendBody {
    /// `to` as given.
    pub to: String,
    /// `to` as digits.
    pub wa_id: String,
    pub message_type: String,
    pub biz_opaque_callback_data: Option<String>,
    /// The type's object, typed.
    pub content: OutboundContent,
}

impl SendBody {
    pub fn is_template(&self) -> bool {
        self.message_type == "template"
    }
}

/// `messaging_product`, which sends and mark-as-read both need.
pub(super) fn check_messaging_product(body: &Map<String, Value>) -> Result<(), Refusal> {
    match body.get("messaging_product") {
        None => Err(invalid("The parameter messaging_product is required.")),
        Some(Value::String(product)) if product == "whatsapp" => Ok(()),
        Some(other) => Err(invalid(format!(
            "Param messaging_product must be \"whatsapp\", got {other}."
        ))),
    }
}

/// A mark-as-read body: the wamid, and whether a typing indicator was asked for.
pub(super) fn check_mark_read(body: &Map<String, Value>) -> Result<(String, bool), Refusal> {
    if body.get("status").and_then(Value::as_str) != Some("read") {
        return Err(invalid(
            "Param status must be \"read\" to mark a message as read.",
        ));
    }
    let wamid = match body.get("message_id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(_) => return Err(invalid("Param message_id must be a non-empty string.")),
        None => return Err(invalid("The parameter message_id is required.")),
    };
    let typing = match body.get("typing_indicator") {
        None | Some(Value::Null) => false,
        Some(Value::Object(indicator))
            if indicator.get("type").and_then(Value::as_str) == Some("text") =>
        {
            true
        }
        Some(_) => {
            return Err(invalid(
                "Param typing_indicator must be {\"type\": \"text\"}.",
            ));
        }
    };
    Ok((wamid, typing))
}

/// A send body, checked as Meta checks it when the call arrives.
pub(super) fn check_send(body: &Map<String, Value>) -> Result<SendBody, Refusal> {
    match body.get("recipient_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "individual" => {}
        Some(other) => {
            return Err(invalid(format!(
                "Param recipient_type must be \"individual\", got {other}."
            )));
        }
    }
    let to = match body.get("to") {
        Some(Value::String(to)) => to.clone(),
        Some(_) => return Err(invalid("Param to must be a string.")),
        None => return Err(invalid("The parameter to is required.")),
    };
    let wa_id = recipient_digits(&to)?;
    // Meta sends text when `type` is left out.
    let message_type = match body.get("type") {
        None => "text".to_owned(),
        Some(Value::String(kind)) if KNOWN_TYPES.contains(&kind.as_str()) => kind.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "Param type must be one of {{{}}}, got {other}.",
                KNOWN_TYPES.join(", ")
            )));
        }
    };
    let object = body
        .get(&message_type)
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid(format!("The parameter {message_type} is required.")))?;
    let content = OutboundContent::from_parts(message_type.clone(), Some(object.clone()))
        .map_err(|e| invalid(format!("Param {message_type} is invalid: {e}.")))?;
    check_context(body.get("context"))?;
    let biz_opaque_callback_data = match body.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(data)) if data.chars().count() <= MAX_CALLBACK_DATA => {
            Some(data.clone())
        }
        Some(Value::String(_)) => {
            return Err(invalid(format!(
                "Param biz_opaque_callback_data must be at most {MAX_CALLBACK_DATA} characters long."
            )));
        }
        Some(_) => return Err(invalid("Param biz_opaque_callback_data must be a string.")),
    };
    check_content(&content)?;
    Ok(SendBody {
        to,
        wa_id,
        message_type,
        biz_opaque_callback_data,
        content,
    })
}

/// `to` as a wa_id: digits, once a leading `+` is taken off.
fn recipient_digits(to: &str) -> Result<String, Refusal> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    if digits.is_empty()
        || digits.len() > MAX_PHONE_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid(format!(
            "Param to must be a phone number: up to {MAX_PHONE_DIGITS} digits with an optional leading +, got \"{to}\"."
        )));
    }
    Ok(digits.to_owned())
}

fn check_context(context: Option<&Value>) -> Result<(), Refusal> {
    match context {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(context)) => match context.get("message_id") {
            Some(Value::String(id)) if !id.is_empty() => Ok(()),
            _ => Err(invalid(
                "Param context['message_id'] must be the wamid of the message replied to.",
            )),
        },
        Some(_) => Err(invalid("Param context must be an object.")),
    }
}

fn check_content(content: &OutboundContent) -> Result<(), Refusal> {
    match content {
        OutboundContent::Text(text) => check_text(text),
        OutboundContent::Image(media) => check_media("image", media, true),
        OutboundContent::Video(media) => check_media("video", media, true),
        OutboundContent::Document(media) => check_media("document", media, true),
        OutboundContent::Audio(media) => check_media("audio", media, false),
        OutboundContent::Sticker(media) => check_media("sticker", media, false),
        OutboundContent::Location(location) => check_location(location),
        OutboundContent::Contacts(cards) => check_contacts(cards),
        OutboundContent::Interactive(interactive) => check_interactive(interactive),
        OutboundContent::Template(template) => check_template(template),
        OutboundContent::Reaction(reaction) => check_reaction(reaction),
        // `check_send` lets only known types through, and each has its own arm.
        OutboundContent::Other { kind, .. } => Err(invalid(format!(
            "Param type must be one of {{{}}}, got \"{kind}\".",
            KNOWN_TYPES.join(", ")
        ))),
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn check_text(text: &Text) -> Result<(), Refusal> {
    match chars(&text.body) {
        0 => Err(invalid("Param text['body'] must not be empty.")),
        n if n > MAX_TEXT_BODY => Err(invalid(format!(
            "Param text['body'] must be at most {MAX_TEXT_BODY} characters long, got {n}."
        ))),
        _ => Ok(()),
    }
}

fn check_media(kind: &str, media: &Media, takes_caption: bool) -> Result<(), Refusal> {
    check_media_source(kind, media)?;
    if let Some(caption) = &media.caption {
        if !takes_caption {
            return Err(invalid(format!(
                "Param {kind}['caption'] is not allowed: only image, video and document take a caption."
            )));
        }
        if chars(caption) > MAX_CAPTION {
            return Err(invalid(format!(
                "Param {kind}['caption'] must be at most {MAX_CAPTION} characters long."
            )));
        }
    }
    Ok(())
}

/// Media needs exactly one of `id` (uploaded) and `link` (an http or https URL).
fn check_media_source(kind: &str, media: &Media) -> Result<(), Refusal> {
    match (media.id.as_deref(), media.link.as_deref()) {
        (None, None) => Err(invalid(format!(
            "Param {kind} must have either 'id' or 'link'."
        ))),
        (Some(_), Some(_)) => Err(invalid(format!(
            "Param {kind} must have either 'id' or 'link', not both."
        ))),
        (Some(id), None) if id.trim().is_empty() => {
            Err(invalid(format!("Param {kind}['id'] must not be empty.")))
        }
        (None, Some(link)) if !(link.starts_with("http://") || link.starts_with("https://")) => {
            Err(invalid(format!(
                "Param {kind}['link'] must be an http or https URL."
            )))
        }
        _ => Ok(()),
    }
}

fn check_location(location: &Location) -> Result<(), Refusal> {
    let in_range = |value: Option<f64>, limit: f64| value.is_some_and(|v| v.abs() <= limit);
    if !in_range(location.latitude.as_f64(), 90.0) {
        return Err(invalid(
            "Param location['latitude'] must be a number from -90 to 90.",
        ));
    }
    if !in_range(location.longitude.as_f64(), 180.0) {
        return Err(invalid(
            "Param location['longitude'] must be a number from -180 to 180.",
        ));
    }
    Ok(())
}

fn check_contacts(cards: &[ContactCard]) -> Result<(), Refusal> {
    if cards.is_empty() {
        return Err(invalid("Param contacts must hold at least one contact."));
    }
    for (index, card) in cards.iter().enumerate() {
        let named = card
            .name
            .as_ref()
            .and_then(|name| name.formatted_name.as_deref())
            .is_some_and(|name| !name.trim().is_empty());
        if !named {
            return Err(invalid(format!(
                "The parameter contacts[{index}]['name']['formatted_name'] is required."
            )));
        }
    }
    Ok(())
}

fn check_template(template: &Template) -> Result<(), Refusal> {
    if template.name.trim().is_empty() {
        return Err(invalid("Param template['name'] must not be empty."));
    }
    if template.language.code.trim().is_empty() {
        return Err(invalid(
            "Param template['language']['code'] must not be empty.",
        ));
    }
    Ok(())
}

fn check_reaction(reaction: &Reaction) -> Result<(), Refusal> {
    if reaction.message_id.trim().is_empty() {
        return Err(invalid(
            "Param reaction['message_id'] must be the wamid of the message reacted to.",
        ));
    }
    Ok(())
}

fn check_interactive(interactive: &Interactive) -> Result<(), Refusal> {
    let needs_body = matches!(
        interactive.kind,
        InteractiveKind::Button
            | InteractiveKind::List
            | InteractiveKind::CtaUrl
            | InteractiveKind::Flow
    );
    match &interactive.body {
        None if needs_body => {
            return Err(invalid(format!(
                "The parameter interactive['body'] is required for {} messages.",
                interactive.kind
            )));
        }
        Some(body) => {
            length_within("Body text", &body.text, 1, MAX_INTERACTIVE_BODY)?;
        }
        None => {}
    }
    if let Some(header) = &interactive.header {
        check_header(header)?;
    }
    if let Some(footer) = &interactive.footer {
        length_within("Footer text", &footer.text, 1, MAX_HEADER_OR_FOOTER)?;
    }
    match &interactive.kind {
        InteractiveKind::Button => check_reply_buttons(interactive),
        InteractiveKind::List => check_list(interactive),
        InteractiveKind::CtaUrl => check_cta_url(interactive),
        InteractiveKind::Flow => match &interactive.action.parameters {
            Some(_) => Ok(()),
            None => Err(invalid(
                "The parameter interactive['action']['parameters'] is required for flow messages.",
            )),
        },
        // Product messages and newer kinds are passed as they are.
        InteractiveKind::Other(_) => Ok(()),
    }
}

/// 131009 with Meta's wording when `text` is not `min..=max` characters long.
fn length_within(what: &str, text: &str, min: usize, max: usize) -> Result<(), Refusal> {
    let length = chars(text);
    if (min..=max).contains(&length) {
        Ok(())
    } else {
        Err(not_valid(format!(
            "{what} length invalid. Min length: {min}, Max length: {max}"
        )))
    }
}

fn check_header(header: &Header) -> Result<(), Refusal> {
    let media = match header.kind.as_str() {
        "text" => {
            let text = header.text.as_deref().ok_or_else(|| {
                invalid("The parameter interactive['header']['text'] is required.")
            })?;
            return length_within("Header text", text, 1, MAX_HEADER_OR_FOOTER);
        }
        "image" => header.image.as_ref(),
        "video" => header.video.as_ref(),
        "document" => header.document.as_ref(),
        other => {
            return Err(invalid(format!(
                "Param interactive['header']['type'] must be one of text, image, video, document, got \"{other}\"."
            )));
        }
    };
    let kind = header.kind.as_str();
    let media = media.ok_or_else(|| {
        invalid(format!(
            "The parameter interactive['header']['{kind}'] is required."
        ))
    })?;
    check_media_source(&format!("interactive['header']['{kind}']"), media)
}

fn check_reply_buttons(interactive: &Interactive) -> Result<(), Refusal> {
    let buttons =
        interactive.action.buttons.as_deref().ok_or_else(|| {
            invalid("The parameter interactive['action']['buttons'] is required.")
        })?;
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(not_valid(format!(
            "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: {MAX_BUTTONS}"
        )));
    }
    let mut ids = HashSet::new();
    let mut titles = HashSet::new();
    for button in buttons {
        if button.kind != "reply" {
            return Err(invalid(format!(
                "Param interactive['action']['buttons'][]['type'] must be \"reply\", got \"{}\".",
                button.kind
            )));
        }
        length_within("Button title", &button.reply.title, 1, MAX_BUTTON_TITLE)?;
        length_within("Button id", &button.reply.id, 1, MAX_BUTTON_ID)?;
        if !ids.insert(button.reply.id.as_str()) {
            return Err(not_valid("Button ids must be unique."));
        }
        if !titles.insert(button.reply.title.as_str()) {
            return Err(not_valid("Button titles must be unique."));
        }
    }
    Ok(())
}

fn check_list(interactive: &Interactive) -> Result<(), Refusal> {
    let action = &interactive.action;
    let label = action
        .button
        .as_deref()
        .ok_or_else(|| invalid("The parameter interactive['action']['button'] is required."))?;
    length_within("Button label", label, 1, MAX_BUTTON_TITLE)?;
    let sections = action
        .sections
        .as_deref()
        .ok_or_else(|| invalid("The parameter interactive['action']['sections'] is required."))?;
    if sections.is_empty() || sections.len() > MAX_SECTIONS {
        return Err(not_valid(format!(
            "Invalid sections count. Min allowed sections: 1, Max allowed sections: {MAX_SECTIONS}"
        )));
    }
    let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
    if rows > MAX_ROWS {
        return Err(not_valid(format!(
            "Total row count exceed max allowed count: {MAX_ROWS}"
        )));
    }
    let mut ids = HashSet::new();
    for section in sections {
        match &section.title {
            Some(title) => length_within("Section title", title, 1, MAX_SECTION_TITLE)?,
            None if sections.len() > 1 => {
                return Err(invalid(
                    "The parameter interactive['action']['sections'][]['title'] is required when there is more than one section.",
                ));
            }
            None => {}
        }
        if section.rows.is_empty() {
            return Err(not_valid(
                "Invalid rows count. Each section needs at least 1 row.",
            ));
        }
        for row in &section.rows {
            length_within("Row title", &row.title, 1, MAX_ROW_TITLE)?;
            length_within("Row id", &row.id, 1, MAX_ROW_ID)?;
            if let Some(description) = &row.description {
                length_within("Row description", description, 0, MAX_ROW_DESCRIPTION)?;
            }
            if !ids.insert(row.id.as_str()) {
                return Err(not_valid("Row ids must be unique."));
            }
        }
    }
    Ok(())
}

fn check_cta_url(interactive: &Interactive) -> Result<(), Refusal> {
    let parameters = interactive.action.parameters.as_ref().ok_or_else(|| {
        invalid(
            "The parameter interactive['action']['parameters'] is required for cta_url messages.",
        )
    })?;
    let text = parameters.display_text.as_deref().ok_or_else(|| {
        invalid("The parameter interactive['action']['parameters']['display_text'] is required.")
    })?;
    length_within("Display text", text, 1, MAX_BUTTON_TITLE)?;
    match parameters.url.as_deref() {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => Ok(()),
        _ => Err(invalid(
            "Param interactive['action']['parameters']['url'] must be an http or https URL.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn send(value: Value) -> Result<SendBody, Refusal> {
        check_send(&object(value))
    }

    fn example(text: &str) -> Map<String, Value> {
        object(serde_json::from_str(text).unwrap_or(Value::Null))
    }

    #[test]
    fn metas_example_requests_pass() {
        let examples = [
            include_str!("../../../tests/api/fixtures/send_interactive_reply_buttons_request.json"),
            include_str!("../../../tests/api/fixtures/send_interactive_list_request.json"),
            include_str!("../../../tests/api/fixtures/send_interactive_cta_url_request.json"),
            include_str!("../../../tests/api/fixtures/send_template_named_params_request.json"),
            include_str!("../../../tests/api/fixtures/send_contacts_request.json"),
            include_str!("../../../tests/api/fixtures/send_location_request.json"),
            include_str!("../../../tests/api/fixtures/send_reaction_request.json"),
            include_str!("../../../tests/api/fixtures/send_image_by_id_request.json"),
            include_str!("../../../tests/api/fixtures/send_audio_voice_request.json"),
            include_str!("../../../tests/api/fixtures/send_text_reply_context_request.json"),
        ];
        for text in examples {
            let body = example(text);
            assert!(check_messaging_product(&body).is_ok(), "{text}");
            let checked = check_send(&body);
            assert!(checked.is_ok(), "{checked:?}: {text}");
        }
    }

    #[test]
    fn the_recipient_is_digits_after_an_optional_plus() {
        let body = |to: &str| json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hi"}});
        assert_eq!(
            send(body("+16505551234")).map(|s| (s.to, s.wa_id)),
            Ok(("+16505551234".to_owned(), "16505551234".to_owned()))
        );
        for bad in [
            "",
            "+",
            "1650 555",
            "++1650",
            "whatsapp-id",
            "1234567890123456",
        ] {
            assert!(
                matches!(send(body(bad)), Err(Refusal::InvalidParameter(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_missing_type_means_text_and_an_unknown_one_is_refused() {
        let checked =
            send(json!({"messaging_product": "whatsapp", "to": "1", "text": {"body": "hi"}}));
        assert_eq!(checked.map(|s| s.message_type), Ok("text".to_owned()));
        let Err(Refusal::InvalidParameter(details)) =
            send(json!({"messaging_product": "whatsapp", "to": "1", "type": "fax", "fax": {}}))
        else {
            panic!("an unknown type is refused");
        };
        assert!(details.contains("Param type must be one of"), "{details}");
    }

    #[test]
    fn text_bodies_must_be_1_to_4096_characters() {
        let body = |text: String| json!({"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": text}});
        assert!(send(body("é".repeat(4096))).is_ok());
        assert!(matches!(
            send(body("a".repeat(4097))),
            Err(Refusal::InvalidParameter(_))
        ));
        assert!(matches!(
            send(body(String::new())),
            Err(Refusal::InvalidParameter(_))
        ));
    }

    #[test]
    fn media_needs_an_id_or_a_link_but_not_both() {
        let body = |image: Value| json!({"messaging_product": "whatsapp", "to": "1", "type": "image", "image": image});
        assert!(send(body(json!({"link": "https://example.com/a.png"}))).is_ok());
        for bad in [
            json!({}),
            json!({"caption": "x"}),
            json!({"id": "1", "link": "https://example.com/a.png"}),
            json!({"link": "ftp://example.com/a.png"}),
        ] {
            assert!(
                matches!(send(body(bad.clone())), Err(Refusal::InvalidParameter(_))),
                "{bad}"
            );
        }
    }

    fn buttons(count: usize, title: &str) -> Value {
        let buttons: Vec<Value> = (0..count)
            .map(|n| json!({"type": "reply", "reply": {"id": format!("b{n}"), "title": format!("{title}{n}")}}))
            .collect();
        json!({
            "messaging_product": "whatsapp", "to": "1", "type": "interactive",
            "interactive": {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": buttons}},
        })
    }

    #[test]
    fn reply_buttons_over_the_limits_are_not_valid() {
        assert!(send(buttons(3, "Option")).is_ok());
        assert_eq!(
            send(buttons(4, "Option")).err(),
            Some(Refusal::ValueNotValid(
                "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3".into()
            ))
        );
        assert_eq!(
            send(buttons(1, "A title that is far too long")).err(),
            Some(Refusal::ValueNotValid(
                "Button title length invalid. Min length: 1, Max length: 20".into()
            ))
        );
    }

    fn list(sections: usize, rows_each: usize) -> Value {
        let sections: Vec<Value> = (0..sections)
            .map(|s| {
                let rows: Vec<Value> = (0..rows_each)
                    .map(|r| json!({"id": format!("s{s}r{r}"), "title": format!("Row {r}")}))
                    .collect();
                json!({"title": format!("Section {s}"), "rows": rows})
            })
            .collect();
        json!({
            "messaging_product": "whatsapp", "to": "1", "type": "interactive",
            "interactive": {"type": "list", "body": {"text": "Choose"}, "action": {"button": "Options", "sections": sections}},
        })
    }

    #[test]
    fn lists_over_the_limits_are_not_valid() {
        assert!(send(list(2, 5)).is_ok());
        assert!(send(list(10, 1)).is_ok());
        for (sections, rows) in [(11, 0), (2, 6), (1, 11)] {
            assert!(
                matches!(send(list(sections, rows)), Err(Refusal::ValueNotValid(_))),
                "{sections} sections of {rows} rows"
            );
        }
    }

    #[test]
    fn mark_read_needs_status_read_and_a_message_id() {
        let good = object(
            json!({"status": "read", "message_id": "wamid.x", "typing_indicator": {"type": "text"}}),
        );
        assert_eq!(check_mark_read(&good), Ok(("wamid.x".to_owned(), true)));
        for bad in [
            json!({"status": "delivered", "message_id": "wamid.x"}),
            json!({"status": "read"}),
            json!({"status": "read", "message_id": "wamid.x", "typing_indicator": {"type": "audio"}}),
        ] {
            assert!(check_mark_read(&object(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn messaging_product_must_be_whatsapp() {
        assert!(check_messaging_product(&object(json!({"messaging_product": "whatsapp"}))).is_ok());
        assert!(
            check_messaging_product(&object(json!({"messaging_product": "instagram"}))).is_err()
        );
        assert!(check_messaging_product(&object(json!({}))).is_err());
    }
}
