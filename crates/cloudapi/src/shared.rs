//! Shapes Meta uses in more than one place: locations, reactions and contact cards (webhooks and
//! send requests), Graph API list pages, and values Meta sends sometimes as a number, sometimes as a string.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Keys a typed struct does not name, kept so that nothing Meta sends is lost on the way through.
pub type Extra = Map<String, Value>;

/// A value Meta documents as a number but sends as a string in some places (`"file_size": "303833"`,
/// `"latitude": "37.44"`, `"index": "0"`). Kept in the form it came in, so it re-serializes unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    /// Sent as a JSON number.
    Number(serde_json::Number),
    /// Sent as a JSON string.
    Text(String),
}

impl NumberOrString {
    /// The value as a float, if it is a number or a string holding one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(number) => number.as_f64(),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }

    /// The value as an unsigned integer, if it is one or a string holding one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(number) => number.as_u64(),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
}

impl std::fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => number.fmt(f),
            Self::Text(text) => f.write_str(text),
        }
    }
}

impl From<f64> for NumberOrString {
    /// A non-finite float has no JSON form; it becomes its text so nothing panics.
    fn from(value: f64) -> Self {
        serde_json::Number::from_f64(value)
            .map(Self::Number)
            .unwrap_or_else(|| Self::Text(value.to_string()))
    }
}

impl From<u64> for NumberOrString {
    fn from(value: u64) -> Self {
        Self::Number(value.into())
    }
}

impl From<&str> for NumberOrString {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

/// A place on the map: an inbound `location` message, or the `location` object of a send request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Inbound webhooks carry a number; Meta's send examples use a string.
    pub latitude: NumberOrString,
    pub longitude: NumberOrString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reaction to a message: received from a customer, or sent by the business.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    /// The wamid of the message reacted to.
    pub message_id: String,
    /// Absent on an inbound removal; an empty string removes an outbound reaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One contact card of a `contacts` message, in either direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactCard {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<ContactName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<ContactPhone>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<ContactEmail>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<ContactAddress>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<ContactUrl>>,
    /// `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The name on a contact card; `formatted_name` is the one WhatsApp shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactName {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A phone number on a contact card; `wa_id` is present when the number is on WhatsApp.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactPhone {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An e-mail address on a contact card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactEmail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A postal address on a contact card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The organisation on a contact card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactOrg {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A web address on a contact card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactUrl {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One page of a Graph API list: `{"data": [...], "paging": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl<T> Page<T> {
    /// The cursor of the next page, or `None` on the last page. Meta leaves `next` out on the last
    /// page while `cursors.after` stays, so both must be present.
    pub fn next_cursor(&self) -> Option<&str> {
        let paging = self.paging.as_ref()?;
        paging.next.as_ref()?;
        paging.cursors.as_ref()?.after.as_deref()
    }
}

/// Graph API cursor paging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursors: Option<Cursors>,
    /// The URL of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `paging.cursors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cursors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
