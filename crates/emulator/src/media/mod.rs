//! Media objects of business numbers: files uploaded through Graph, seeded through the admin API
//! or attached by customers, and the short-lived download URLs Graph hands out for them.
//!
//! The bytes are kept as [`Bytes`], so handing them to a download or a test copies nothing. Media
//! is kept until deleted, as Meta keeps it for 30 days; download URLs are forgotten once expired.
//! [`kinds`] holds Meta's accepted types and sizes.

pub(crate) mod kinds;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::records::unix_millis;

/// Meta's download URLs last 5 minutes.
pub(crate) const DEFAULT_URL_TTL_MS: u64 = 5 * 60 * 1000;

/// The longest a number may make its download URLs last.
pub(crate) const MAX_URL_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// A file to store directly as a number's media, as `POST /admin/media` and
/// [`crate::RunningEmulator::add_media`] take it (the admin API takes the bytes base64 in `data`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaSeed {
    /// The business number that owns it, as if it had uploaded it.
    pub phone_number_id: String,
    pub bytes: Bytes,
    /// Any MIME type; seeding does not apply Meta's upload rules.
    pub mime_type: String,
    pub filename: Option<String>,
    /// The media id to use (digits); a new one when `None`.
    pub id: Option<String>,
}

/// A media object as the admin API and [`crate::RunningEmulator`] show it (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaView {
    /// The media id sends and `GET /{media_id}` use.
    pub id: String,
    pub phone_number_id: String,
    pub mime_type: String,
    /// Lower-case hex of the SHA-256 of the bytes, as `GET /{media_id}` answers it.
    pub sha256: String,
    pub file_size: u64,
    pub filename: Option<String>,
    #[serde(rename = "created_at_ms", serialize_with = "unix_millis")]
    pub created_at: SystemTime,
}

/// The bytes of a media object with their digest, worked out before the world lock is taken.
#[derive(Debug, Clone)]
pub(crate) struct MediaContent {
    pub bytes: Bytes,
    pub sha256: [u8; 32],
}

impl MediaContent {
    pub fn hash(bytes: Bytes) -> Self {
        let sha256 = Sha256::digest(&bytes).into();
        Self { bytes, sha256 }
    }
}

/// One stored media object.
#[derive(Debug, Clone)]
pub(crate) struct MediaObject {
    pub id: String,
    pub phone_number_id: String,
    pub content: MediaContent,
    pub mime_type: String,
    pub filename: Option<String>,
    pub created_at: SystemTime,
}

impl MediaObject {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.content.sha256)
    }

    /// Standard base64 of the digest, as Meta's webhooks carry it.
    pub fn sha256_base64(&self) -> String {
        STANDARD.encode(self.content.sha256)
    }

    pub fn file_size(&self) -> u64 {
        u64::try_from(self.content.bytes.len()).unwrap_or(u64::MAX)
    }

    pub fn view(&self) -> MediaView {
        MediaView {
            id: self.id.clone(),
            phone_number_id: self.phone_number_id.clone(),
            mime_type: self.mime_type.clone(),
            sha256: self.sha256_hex(),
            file_size: self.file_size(),
            filename: self.filename.clone(),
            created_at: self.created_at,
        }
    }
}

/// A download URL handed out by `GET /{media_id}`.
#[derive(Debug, Clone)]
pub(crate) struct IssuedUrl {
    pub media_id: String,
    pub expires_at: Instant,
}

impl IssuedUrl {
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// A media id is taken already.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MediaIdTaken;

/// Every number's media and the download URLs issued for it.
#[derive(Default)]
pub(crate) struct MediaStore {
    objects: HashMap<String, MediaObject>,
    /// Creation sequence number to media id, for lists in creation order.
    order: BTreeMap<u64, String>,
    sequence_of: HashMap<String, u64>,
    next_sequence: u64,
    /// Opaque URL key to what it opens.
    urls: HashMap<String, IssuedUrl>,
    /// URLs kept after the last sweep of expired ones: the next sweep comes when twice as many are
    /// kept, so sweeping costs O(1) per URL however long a benchmark runs.
    urls_after_sweep: usize,
}

impl MediaStore {
    pub fn get(&self, id: &str) -> Option<&MediaObject> {
        self.objects.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.objects.contains_key(id)
    }

    pub fn insert(&mut self, object: MediaObject) -> Result<(), MediaIdTaken> {
        if self.objects.contains_key(&object.id) {
            return Err(MediaIdTaken);
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.insert(sequence, object.id.clone());
        self.sequence_of.insert(object.id.clone(), sequence);
        self.objects.insert(object.id.clone(), object);
        Ok(())
    }

    /// Removes a media object; its URLs then open nothing.
    pub fn remove(&mut self, id: &str) -> Option<MediaObject> {
        let object = self.objects.remove(id)?;
        if let Some(sequence) = self.sequence_of.remove(id) {
            self.order.remove(&sequence);
        }
        Some(object)
    }

    /// Media in creation order, optionally only one number's.
    pub fn list(&self, phone_number_id: Option<&str>) -> Vec<MediaView> {
        self.order
            .values()
            .filter_map(|id| self.objects.get(id))
            .filter(|m| phone_number_id.is_none_or(|p| p == m.phone_number_id))
            .map(MediaObject::view)
            .collect()
    }

    /// A new download URL key for a media object, valid for `ttl` from `now`.
    pub fn issue_url(&mut self, media_id: &str, ttl: Duration, now: Instant) -> String {
        if self.urls.len() >= self.urls_after_sweep.saturating_mul(2).max(64) {
            self.urls.retain(|_, url| !url.expired(now));
            self.urls_after_sweep = self.urls.len();
        }
        let key = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
        self.urls.insert(
            key.clone(),
            IssuedUrl {
                media_id: media_id.to_owned(),
                expires_at: now + ttl,
            },
        );
        key
    }

    pub fn url(&self, key: &str) -> Option<&IssuedUrl> {
        self.urls.get(key)
    }

    /// Makes every URL issued for the media so far expire at `now`; how many were still open.
    pub fn expire_urls(&mut self, media_id: &str, now: Instant) -> usize {
        let mut expired = 0;
        for url in self.urls.values_mut() {
            if url.media_id == media_id && !url.expired(now) {
                url.expires_at = now;
                expired += 1;
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(id: &str, phone_number_id: &str) -> MediaObject {
        MediaObject {
            id: id.into(),
            phone_number_id: phone_number_id.into(),
            content: MediaContent::hash(Bytes::from_static(b"abc")),
            mime_type: "text/plain".into(),
            filename: None,
            created_at: SystemTime::now(),
        }
    }

    #[test]
    fn the_digest_is_shown_in_hex_and_in_base64() {
        let object = object("1", "9");
        assert_eq!(
            object.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            object.sha256_base64(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(object.file_size(), 3);
    }

    #[test]
    fn media_is_listed_in_creation_order_and_ids_are_unique() {
        let mut store = MediaStore::default();
        assert_eq!(store.insert(object("3", "9")), Ok(()));
        assert_eq!(store.insert(object("1", "8")), Ok(()));
        assert_eq!(store.insert(object("2", "9")), Ok(()));
        assert_eq!(store.insert(object("2", "9")), Err(MediaIdTaken));
        let ids = |list: Vec<MediaView>| list.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list(None)), ["3", "1", "2"]);
        assert_eq!(ids(store.list(Some("9"))), ["3", "2"]);
        assert!(store.remove("3").is_some());
        assert_eq!(ids(store.list(Some("9"))), ["2"]);
    }

    #[test]
    fn urls_expire_after_their_ttl_or_when_told_and_expired_ones_are_swept() {
        let mut store = MediaStore::default();
        let start = Instant::now();
        let ttl = Duration::from_secs(300);
        let first = store.issue_url("1", ttl, start);
        let second = store.issue_url("1", ttl, start);
        assert_ne!(first, second, "each call gets a fresh URL");
        assert!(store.url(&first).is_some_and(|u| !u.expired(start)));
        assert!(store.url(&first).is_some_and(|u| u.expired(start + ttl)));
        assert_eq!(store.expire_urls("1", start), 2);
        assert_eq!(store.expire_urls("1", start), 0);
        assert!(store.url(&second).is_some_and(|u| u.expired(start)));

        for _ in 0..1000 {
            store.issue_url("2", Duration::ZERO, start);
        }
        assert!(store.urls.len() < 200, "{} URLs kept", store.urls.len());
    }
}
