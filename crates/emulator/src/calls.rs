//! The Graph call log: which endpoint each call hit, for which number, how it was answered and
//! whether a fault answered it, so tests can count Graph calls exactly.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::faults::FaultId;
use crate::graph::is_api_version;
use crate::records::{millis, unix_millis};

/// Which Graph endpoint a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphEndpoint {
    /// `POST /{version}/{phone_number_id}/messages`: sends and mark-as-read.
    Messages,
    /// `/{version}/{phone_number_id}` and its `whatsapp_business_profile`.
    PhoneNumber,
    /// `/{version}/{phone_number_id}/media`, and `/{version}/{id}` for an id that is neither a
    /// registered number nor a registered WABA (media ids are the only other nodes wagate reads);
    /// the call is about the media's owner number.
    Media,
    /// `GET /media-download/{key}`: downloads through the URLs `GET /{version}/{media_id}` hands
    /// out; the call is about the media's owner number.
    MediaDownload,
    /// `/{version}/{waba_id}/message_templates`.
    Templates,
    /// Anything else, unknown paths included.
    Other,
}

impl GraphEndpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::PhoneNumber => "phone_number",
            Self::Media => "media",
            Self::MediaDownload => "media_download",
            Self::Templates => "templates",
            Self::Other => "other",
        }
    }

    pub(crate) fn parse(field: &str, value: &str) -> Result<Self, InputError> {
        match value {
            "messages" => Ok(Self::Messages),
            "phone_number" => Ok(Self::PhoneNumber),
            "media" => Ok(Self::Media),
            "media_download" => Ok(Self::MediaDownload),
            "templates" => Ok(Self::Templates),
            "other" => Ok(Self::Other),
            _ => Err(InputError::new(
                field,
                "must be one of messages, phone_number, media, media_download, templates, other",
            )),
        }
    }
}

impl fmt::Display for GraphEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Graph call as the emulator answered it. The emulator keeps the newest [`crate::RECORDS_KEPT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub method: String,
    /// The path without the query, which may hold an access token.
    pub path: String,
    pub endpoint: GraphEndpoint,
    /// The business number the call was about: the registered number in the path, else the one
    /// named by a `phone_number_id` query parameter, else the one whose token the call carried.
    pub phone_number_id: Option<String>,
    /// The HTTP status answered; `None` when a fault dropped the connection instead.
    pub http_status: Option<u16>,
    /// The fault that shaped the answer (an error, a drop, or only a delay), if any.
    pub fault_id: Option<FaultId>,
    #[serde(rename = "received_at_ms", serialize_with = "unix_millis")]
    pub received_at: SystemTime,
    /// From arrival to answer (or drop), any fault delay included.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

/// What a path alone says about a call; which registered objects its id names is decided later.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GraphPath<'a> {
    /// `/{version}/{id}`: a phone number, a WABA or a media object.
    Node(&'a str),
    /// `/{version}/{id}/{edge}` for an edge the emulator knows.
    Edge {
        id: &'a str,
        endpoint: GraphEndpoint,
    },
    /// `/media-download/{key}`: a media download URL.
    MediaDownload(&'a str),
    /// Not a Graph path the emulator knows.
    Other,
}

/// The first path segment of media download URLs.
pub(crate) const MEDIA_DOWNLOAD_PREFIX: &str = "media-download";

pub(crate) fn parse_graph_path(path: &str) -> GraphPath<'_> {
    let mut segments = path.trim_start_matches('/').split('/');
    let (Some(version), Some(id)) = (segments.next(), segments.next()) else {
        return GraphPath::Other;
    };
    if version == MEDIA_DOWNLOAD_PREFIX && !id.is_empty() && segments.next().is_none() {
        return GraphPath::MediaDownload(id);
    }
    if !is_api_version(version) || id.is_empty() {
        return GraphPath::Other;
    }
    let endpoint = match (segments.next(), segments.next()) {
        (None, _) => return GraphPath::Node(id),
        (Some("messages"), None) => GraphEndpoint::Messages,
        (Some("media"), None) => GraphEndpoint::Media,
        (Some("message_templates"), None) => GraphEndpoint::Templates,
        (Some("whatsapp_business_profile"), None) => GraphEndpoint::PhoneNumber,
        _ => return GraphPath::Other,
    };
    GraphPath::Edge { id, endpoint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sorted_into_endpoints() {
        assert_eq!(parse_graph_path("/v24.0/123"), GraphPath::Node("123"));
        assert_eq!(
            parse_graph_path("/v21.0/123/messages"),
            GraphPath::Edge {
                id: "123",
                endpoint: GraphEndpoint::Messages
            }
        );
        assert_eq!(
            parse_graph_path("/v24.0/9/message_templates"),
            GraphPath::Edge {
                id: "9",
                endpoint: GraphEndpoint::Templates
            }
        );
        assert_eq!(
            parse_graph_path("/media-download/abc"),
            GraphPath::MediaDownload("abc")
        );
        for other in [
            "/media-download/",
            "/media-download/abc/more",
            "/",
            "/v24.0",
            "/v24.0/",
            "/nonsense/123",
            "/v24.0/123/messages/extra",
            "/v24.0/123/phone_numbers",
        ] {
            assert_eq!(parse_graph_path(other), GraphPath::Other, "{other}");
        }
    }

    #[test]
    fn endpoint_names_round_trip() {
        for endpoint in [
            GraphEndpoint::Messages,
            GraphEndpoint::PhoneNumber,
            GraphEndpoint::Media,
            GraphEndpoint::MediaDownload,
            GraphEndpoint::Templates,
            GraphEndpoint::Other,
        ] {
            assert_eq!(
                GraphEndpoint::parse("endpoint", endpoint.as_str()),
                Ok(endpoint)
            );
        }
        assert!(GraphEndpoint::parse("endpoint", "any").is_err());
    }
}
