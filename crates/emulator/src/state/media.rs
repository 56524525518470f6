//! Operations on media: storing uploads and seeds, handing out download URLs, and downloads.

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::EmulatorState;
use crate::error::{EmulatorError, InputError};
use crate::media::{MediaContent, MediaObject, MediaSeed, MediaView};
use crate::phone_numbers::parse_graph_id;

/// What a download URL opens.
pub(crate) enum Download {
    /// No such URL was ever handed out (or it was forgotten long after expiring).
    Unknown,
    /// The URL expired, or its media was deleted.
    Gone,
    /// The bytes, for a caller holding the owner's token.
    Ready {
        bytes: Bytes,
        mime_type: String,
        filename: Option<String>,
    },
}

impl EmulatorState {
    /// Stores a file as a number's media without Meta's upload checks.
    pub fn add_media(&self, seed: MediaSeed) -> Result<MediaView, EmulatorError> {
        let mime_type = seed.mime_type.trim().to_owned();
        if mime_type.is_empty() {
            return Err(InputError::new("mime_type", "is required, e.g. \"image/jpeg\"").into());
        }
        let id = seed
            .id
            .as_deref()
            .map(|id| parse_graph_id("id", id))
            .transpose()?;
        let content = MediaContent::hash(seed.bytes);
        let mut world = self.world();
        if !world.phone_numbers.contains_key(&seed.phone_number_id) {
            return Err(EmulatorError::UnknownPhoneNumber(seed.phone_number_id));
        }
        if let Some(id) = &id
            && (world.phone_numbers.contains_key(id) || world.is_waba(id))
        {
            return Err(InputError::new(
                "id",
                "is a registered phone number or account id; a media id must name nothing else",
            )
            .into());
        }
        let id = id.unwrap_or_else(|| world.new_object_id());
        let object = MediaObject {
            id: id.clone(),
            phone_number_id: seed.phone_number_id,
            content,
            mime_type,
            filename: seed.filename,
            created_at: SystemTime::now(),
        };
        let view = object.view();
        world
            .media
            .insert(object)
            .map_err(|_| EmulatorError::MediaAlreadyExists(id))?;
        Ok(view)
    }

    /// Stores a file uploaded through Graph, already checked and hashed; its new media id.
    pub fn upload_media(
        &self,
        phone_number_id: &str,
        content: MediaContent,
        mime_type: String,
        filename: Option<String>,
    ) -> Result<String, EmulatorError> {
        let mut world = self.world();
        if !world.phone_numbers.contains_key(phone_number_id) {
            return Err(EmulatorError::UnknownPhoneNumber(
                phone_number_id.to_owned(),
            ));
        }
        let id = world.new_object_id();
        let object = MediaObject {
            id: id.clone(),
            phone_number_id: phone_number_id.to_owned(),
            content,
            mime_type,
            filename,
            created_at: SystemTime::now(),
        };
        world
            .media
            .insert(object)
            .map_err(|_| EmulatorError::MediaAlreadyExists(id.clone()))?;
        Ok(id)
    }

    pub fn media(&self, id: &str) -> Option<MediaView> {
        self.world().media.get(id).map(MediaObject::view)
    }

    /// Media in creation order, one number's or every number's.
    pub fn media_list(&self, phone_number_id: Option<&str>) -> Vec<MediaView> {
        self.world().media.list(phone_number_id)
    }

    pub fn media_content(&self, id: &str) -> Option<Bytes> {
        self.world().media.get(id).map(|m| m.content.bytes.clone())
    }

    pub fn delete_media(&self, id: &str) -> Result<MediaView, EmulatorError> {
        self.world()
            .media
            .remove(id)
            .map(|m| m.view())
            .ok_or_else(|| EmulatorError::UnknownMedia(id.to_owned()))
    }

    /// Makes every URL handed out for the media so far expire now; how many were still valid.
    pub fn expire_media_urls(&self, id: &str) -> Result<usize, EmulatorError> {
        let mut world = self.world();
        if !world.media.contains(id) {
            return Err(EmulatorError::UnknownMedia(id.to_owned()));
        }
        Ok(world.media.expire_urls(id, Instant::now()))
    }

    /// What a download URL key opens for a caller with this token: `Err` with the Graph error
    /// (401) when the token is missing or not the owner number's.
    pub fn download(
        &self,
        key: &str,
        token: Option<&str>,
    ) -> Result<Download, crate::graph::GraphError> {
        let world = self.world();
        let Some(url) = world.media.url(key) else {
            return Ok(Download::Unknown);
        };
        let Some(media) = world.media.get(&url.media_id) else {
            return Ok(Download::Gone);
        };
        crate::graph::authorize_owner(&world, token, &media.phone_number_id)?;
        if url.expired(Instant::now()) {
            return Ok(Download::Gone);
        }
        Ok(Download::Ready {
            bytes: media.content.bytes.clone(),
            mime_type: media.mime_type.clone(),
            filename: media.filename.clone(),
        })
    }
}
