//! Media on Meta's side: the answer to an upload, and the short-lived download URL of a media id.

use serde::{Deserialize, Serialize};

use crate::shared::{Extra, NumberOrString};

/// The answer to `POST /{phone-number-id}/media`: the id to send the media by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadedMedia {
    pub id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The answer to `GET /{media-id}`. The URL needs the bearer token and expires after 5 minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub url: String,
    pub mime_type: String,
    /// The file's SHA-256, to check the download against.
    pub sha256: String,
    /// Meta's reference says a number; its example sends a string.
    pub file_size: NumberOrString,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
