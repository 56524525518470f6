//! The WhatsApp Business Profile Meta keeps for each number: what
//! `GET /{version}/{phone_number_id}/whatsapp_business_profile` shows, and the changes a `POST`
//! makes, checked against Meta's limits so a client that would be refused by Meta is refused here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::InputError;

const MAX_ABOUT_CHARS: usize = 139;
const MAX_ADDRESS_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 512;
const MAX_EMAIL_CHARS: usize = 128;
const MAX_WEBSITES: usize = 2;
const MAX_WEBSITE_CHARS: usize = 256;

/// The business categories Meta takes for `vertical`.
const VERTICALS: [&str; 19] = [
    "UNDEFINED",
    "OTHER",
    "AUTO",
    "BEAUTY",
    "APPAREL",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GROCERY",
    "GOVT",
    "HOTEL",
    "HEALTH",
    "NONPROFIT",
    "PROF_SERVICES",
    "RETAIL",
    "TRAVEL",
    "RESTAURANT",
    "NOT_A_BIZ",
];

/// The fields a `GET` answers, in this order, when `fields=` names none.
const ALL_FIELDS: [&str; 7] = [
    "about",
    "address",
    "description",
    "email",
    "profile_picture_url",
    "websites",
    "vertical",
];

/// The first path segment of the profile picture URLs handed out. Nothing is served there: the
/// URL only has to change when the picture does, as Meta's does.
const PICTURES_PREFIX: &str = "business-profile-pictures";

/// A number's business profile as Meta holds it; fields never set (or cleared) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Set by a `profile_picture_handle`; a URL under the emulator's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    /// At most two; an empty list is shown as no websites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub websites: Vec<String>,
    /// One of Meta's business categories, e.g. `RESTAURANT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<String>,
}

impl BusinessProfile {
    /// The one element of a `GET`'s `data`: the fields `fields=` asks for (every set one when it
    /// asks none), those not set left out, and `messaging_product` as Meta adds it.
    pub(crate) fn graph_element(&self, fields: Option<&str>) -> Value {
        let requested: Vec<&str> = match fields {
            Some(fields) => fields
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect(),
            None => ALL_FIELDS.to_vec(),
        };
        let mut element = Map::new();
        for name in requested {
            // Unknown fields are skipped rather than refused: wagate only asks for known ones.
            if let Some(value) = self.field(name) {
                element.insert(name.to_owned(), value);
            }
        }
        element.insert("messaging_product".into(), "whatsapp".into());
        Value::Object(element)
    }

    fn field(&self, name: &str) -> Option<Value> {
        let text = |value: &Option<String>| value.clone().map(Value::from);
        match name {
            "about" => text(&self.about),
            "address" => text(&self.address),
            "description" => text(&self.description),
            "email" => text(&self.email),
            "profile_picture_url" => text(&self.profile_picture_url),
            "websites" if !self.websites.is_empty() => Some(self.websites.clone().into()),
            "vertical" => text(&self.vertical),
            _ => None,
        }
    }

    /// Applies a checked change: the fields it names change, the others stay.
    pub(crate) fn apply(&mut self, change: ProfileChange) {
        let fields = [
            (&mut self.about, change.about),
            (&mut self.address, change.address),
            (&mut self.description, change.description),
            (&mut self.email, change.email),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(websites) = change.websites {
            self.websites = websites;
        }
        if let Some(vertical) = change.vertical {
            self.vertical = Some(vertical);
        }
        if let Some(url) = change.profile_picture_url {
            self.profile_picture_url = Some(url);
        }
    }
}

/// The URL prefix of one number's profile pictures, under the base URL the caller reached.
pub(crate) fn pictures_at(base_url: &str, phone_number_id: &str) -> String {
    format!("{base_url}/{PICTURES_PREFIX}/{phone_number_id}")
}

/// The changes of a `POST` body, every one within Meta's limits. For the text fields `Some(None)`
/// clears the field (an empty string) and `None` leaves it as it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ProfileChange {
    about: Option<Option<String>>,
    address: Option<Option<String>>,
    description: Option<Option<String>>,
    email: Option<Option<String>>,
    websites: Option<Vec<String>>,
    vertical: Option<String>,
    profile_picture_url: Option<String>,
}

impl ProfileChange {
    /// Reads a `POST` body as Meta checks it; the first problem found names its field. A new
    /// picture gets a URL under `pictures_at` (see [`pictures_at`]).
    pub(crate) fn parse(body: &Map<String, Value>, pictures_at: &str) -> Result<Self, InputError> {
        match body.get("messaging_product") {
            None => return Err(InputError::new("messaging_product", "is required")),
            Some(Value::String(product)) if product == "whatsapp" => {}
            Some(other) => {
                return Err(InputError::new(
                    "messaging_product",
                    format!("must be \"whatsapp\", got {other}"),
                ));
            }
        }
        let email = text(body, "email", MAX_EMAIL_CHARS)?;
        if let Some(Some(address)) = &email
            && !looks_like_an_email(address)
        {
            return Err(InputError::new(
                "email",
                "must be an email address, e.g. \"contact@example.com\"",
            ));
        }
        Ok(Self {
            about: text(body, "about", MAX_ABOUT_CHARS)?,
            address: text(body, "address", MAX_ADDRESS_CHARS)?,
            description: text(body, "description", MAX_DESCRIPTION_CHARS)?,
            email,
            websites: websites(body)?,
            vertical: vertical(body)?,
            profile_picture_url: picture_url(body, pictures_at)?,
        })
    }
}

/// A text field: absent, cleared (`""`), or set to at most `max` characters.
fn text(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<Option<String>>, InputError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(value)) if value.is_empty() => Ok(Some(None)),
        Some(Value::String(value)) => {
            let length = value.chars().count();
            if length > max {
                return Err(InputError::new(
                    field,
                    format!(
                        "must be from 1 to {max} characters (an empty string clears it), got {length}"
                    ),
                ));
            }
            Ok(Some(Some(value.clone())))
        }
        Some(_) => Err(InputError::new(field, "must be a string")),
    }
}

/// A plain check, as Meta's is: one `@` with text before it, and a dotted domain after it.
fn looks_like_an_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
    !local.is_empty()
        && !domain.contains('@')
        && labels_ok
        && !value.chars().any(char::is_whitespace)
}

/// `websites`: a list of at most two http(s) URLs; an empty list removes them.
fn websites(body: &Map<String, Value>) -> Result<Option<Vec<String>>, InputError> {
    let Some(value) = body.get("websites") else {
        return Ok(None);
    };
    let Value::Array(entries) = value else {
        return Err(InputError::new(
            "websites",
            "must be a list of at most 2 URLs",
        ));
    };
    if entries.len() > MAX_WEBSITES {
        return Err(InputError::new(
            "websites",
            format!(
                "must have at most {MAX_WEBSITES} entries, got {}",
                entries.len()
            ),
        ));
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let field = format!("websites[{index}]");
            let url = entry
                .as_str()
                .ok_or_else(|| InputError::new(&field, "must be a string"))?;
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(InputError::new(
                    &field,
                    "must start with http:// or https://",
                ));
            }
            if url.chars().count() > MAX_WEBSITE_CHARS {
                return Err(InputError::new(
                    &field,
                    format!("must be at most {MAX_WEBSITE_CHARS} characters"),
                ));
            }
            Ok(url.to_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `vertical`: one of Meta's categories, spelled as Meta spells them.
fn vertical(body: &Map<String, Value>) -> Result<Option<String>, InputError> {
    match body.get("vertical") {
        None => Ok(None),
        Some(Value::String(value)) if VERTICALS.contains(&value.as_str()) => {
            Ok(Some(value.clone()))
        }
        Some(_) => Err(InputError::new(
            "vertical",
            format!("must be one of {}", VERTICALS.join(", ")),
        )),
    }
}

/// `profile_picture_handle`: any non-empty handle (the emulator has no resumable upload to check
/// it against), shown as a URL that differs for each handle.
fn picture_url(body: &Map<String, Value>, pictures_at: &str) -> Result<Option<String>, InputError> {
    match body.get("profile_picture_handle") {
        None => Ok(None),
        Some(Value::String(handle)) if !handle.is_empty() => {
            let digest = Sha256::digest(handle.as_bytes());
            Ok(Some(format!(
                "{pictures_at}/{}.jpg",
                hex::encode(&digest[..8])
            )))
        }
        Some(_) => Err(InputError::new(
            "profile_picture_handle",
            "must be a non-empty upload handle",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<ProfileChange, InputError> {
        let Value::Object(fields) = body else {
            panic!("the test body is an object");
        };
        ProfileChange::parse(&fields, "http://127.0.0.1:1/pictures/1")
    }

    #[test]
    fn only_the_given_fields_change_and_an_empty_string_clears() {
        let mut profile = BusinessProfile {
            about: Some("Hello".into()),
            address: Some("1 Main St".into()),
            websites: vec!["https://example.com".into()],
            ..Default::default()
        };
        let change =
            parse(json!({"messaging_product": "whatsapp", "about": "", "email": "a@b.co"}));
        profile.apply(change.unwrap_or_default());
        assert_eq!(profile.about, None);
        assert_eq!(profile.address.as_deref(), Some("1 Main St"));
        assert_eq!(profile.email.as_deref(), Some("a@b.co"));
        assert_eq!(profile.websites, vec!["https://example.com".to_owned()]);
    }

    #[test]
    fn each_limit_names_its_field() {
        let cases = [
            ("messaging_product", json!({})),
            ("messaging_product", json!({"messaging_product": "sms"})),
            ("about", json!({"about": "a".repeat(140)})),
            ("address", json!({"address": "a".repeat(257)})),
            ("description", json!({"description": "a".repeat(513)})),
            (
                "email",
                json!({"email": format!("{}@b.co", "a".repeat(124))}),
            ),
            ("email", json!({"email": "not an email"})),
            ("email", json!({"email": "a@localhost"})),
            (
                "websites",
                json!({"websites": ["http://a", "http://b", "http://c"]}),
            ),
            ("websites[0]", json!({"websites": ["ftp://a"]})),
            (
                "websites[1]",
                json!({"websites": ["http://a", format!("http://{}", "a".repeat(250))]}),
            ),
            ("vertical", json!({"vertical": "BAKERY"})),
            ("vertical", json!({"vertical": "restaurant"})),
            (
                "profile_picture_handle",
                json!({"profile_picture_handle": ""}),
            ),
            ("about", json!({"about": 7})),
        ];
        for (field, mut body) in cases {
            if field != "messaging_product" {
                body["messaging_product"] = "whatsapp".into();
            }
            let error = parse(body.clone()).err();
            assert_eq!(error.map(|e| e.field), Some(field.to_owned()), "{body}");
        }
    }

    #[test]
    fn values_at_the_limits_are_taken() {
        let change = parse(json!({
            "messaging_product": "whatsapp",
            "about": "é".repeat(139),
            "email": format!("{}@b.co", "a".repeat(123)),
            "websites": ["http://a.example", "HTTPS://b.example"],
            "vertical": "NOT_A_BIZ",
            "websites_extra": "ignored",
        }));
        assert!(change.is_ok(), "{change:?}");
    }

    #[test]
    fn a_picture_handle_becomes_a_url_that_follows_the_handle() {
        let url = |handle: &str| {
            parse(json!({"messaging_product": "whatsapp", "profile_picture_handle": handle}))
                .ok()
                .and_then(|c| c.profile_picture_url)
        };
        let first = url("4:aGFuZGxl");
        assert!(
            first
                .as_deref()
                .is_some_and(|u| u.starts_with("http://127.0.0.1:1/pictures/1/")),
            "{first:?}"
        );
        assert_ne!(first, url("4:b3RoZXI="));
        assert_eq!(first, url("4:aGFuZGxl"));
    }

    #[test]
    fn the_graph_element_has_the_set_fields_asked_for() {
        let profile = BusinessProfile {
            about: Some("Hi".into()),
            vertical: Some("RETAIL".into()),
            ..Default::default()
        };
        assert_eq!(
            profile.graph_element(None),
            json!({"about": "Hi", "vertical": "RETAIL", "messaging_product": "whatsapp"})
        );
        assert_eq!(
            profile.graph_element(Some("vertical,email,nonsense")),
            json!({"vertical": "RETAIL", "messaging_product": "whatsapp"})
        );
    }
}
