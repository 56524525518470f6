//! Meta's media kinds and their limits: which MIME types each kind takes, how large a file may be,
//! and what a file's first bytes say it really is, so a mislabelled upload is refused here
//! instead of failing at Meta or on the customer's phone.

/// A kind of media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

const MB: u64 = 1024 * 1024;
const KB: u64 = 1024;

/// Stickers: a still one may be at most this large, an animated one [`ANIMATED_STICKER_MAX`].
pub const STILL_STICKER_MAX: u64 = 100 * KB;
pub const ANIMATED_STICKER_MAX: u64 = 500 * KB;

const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png"];
const AUDIO_TYPES: &[&str] = &[
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
];
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/3gpp"];
const DOCUMENT_TYPES: &[&str] = &[
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];
const STICKER_TYPES: &[&str] = &["image/webp"];

impl MediaKind {
    pub const ALL: [MediaKind; 5] = [
        Self::Image,
        Self::Audio,
        Self::Video,
        Self::Document,
        Self::Sticker,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    /// The MIME types Meta takes for this kind.
    pub fn mime_types(self) -> &'static [&'static str] {
        match self {
            Self::Image => IMAGE_TYPES,
            Self::Audio => AUDIO_TYPES,
            Self::Video => VIDEO_TYPES,
            Self::Document => DOCUMENT_TYPES,
            Self::Sticker => STICKER_TYPES,
        }
    }

    /// The largest file Meta takes for this kind (for stickers, the animated limit).
    pub fn max_bytes(self) -> u64 {
        match self {
            Self::Image => 5 * MB,
            Self::Audio | Self::Video => 16 * MB,
            Self::Document => 100 * MB,
            Self::Sticker => ANIMATED_STICKER_MAX,
        }
    }

    /// The kind a MIME type is sent as when the caller does not say.
    pub fn for_mime_type(mime_type: &str) -> Option<Self> {
        let essence = essence(mime_type);
        Self::ALL
            .into_iter()
            .find(|k| k.mime_types().contains(&essence.as_str()))
    }
}

/// The MIME type without its parameters, lower case: `audio/ogg; codecs=opus` → `audio/ogg`.
pub fn essence(mime_type: &str) -> String {
    mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A human size: `5 MB`, `500 KB`.
pub fn human_size(bytes: u64) -> String {
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= KB {
        format!("{} KB", bytes.div_ceil(KB))
    } else {
        format!("{bytes} bytes")
    }
}

/// What a file's first bytes show it to be, for the types whose files carry a signature.
/// `None` for files that carry none (plain text) or that are not recognised.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if starts(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return Some("image/png");
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some("image/gif");
    }
    if starts(b"%PDF-") {
        return Some("application/pdf");
    }
    if starts(b"OggS") {
        return Some("audio/ogg");
    }
    if starts(b"#!AMR") {
        return Some("audio/amr");
    }
    if starts(b"ID3") {
        return Some("audio/mpeg");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        if brand.starts_with(b"3g") {
            return Some("video/3gpp");
        }
        if brand == b"M4A " || brand == b"M4B " {
            return Some("audio/mp4");
        }
        return Some("video/mp4");
    }
    if head.len() >= 2 && head[0] == 0xFF && (head[1] & 0xF6) == 0xF0 {
        return Some("audio/aac");
    }
    if head.len() >= 2 && head[0] == 0xFF && (head[1] & 0xE0) == 0xE0 {
        return Some("audio/mpeg");
    }
    if starts(b"PK\x03\x04") {
        return Some("application/zip");
    }
    if starts(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Some("application/x-ole-storage");
    }
    if starts(b"<?xml") || starts(b"<svg") || starts(b"<!DOCTYPE") || starts(b"<html") {
        return Some("text/markup");
    }
    None
}

/// Whether a file whose first bytes sniff as `sniffed` can honestly be of `declared` type.
pub fn content_fits(declared: &str, sniffed: Option<&str>) -> bool {
    let Some(sniffed) = sniffed else {
        // Nothing recognisable: only formats without a signature may be unrecognisable.
        return matches!(declared, "text/plain");
    };
    match declared {
        // MP4 and 3GPP share a container; audio in MP4 is labelled either way by phones.
        "video/mp4" | "video/3gpp" | "audio/mp4" => {
            matches!(sniffed, "video/mp4" | "video/3gpp" | "audio/mp4")
        }
        // Office files are zip (new) or OLE (old) containers.
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            sniffed == "application/zip"
        }
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => {
            sniffed == "application/x-ole-storage"
        }
        // Plain text has no signature; one that carries another format's is not plain text.
        "text/plain" => false,
        _ => declared == sniffed,
    }
}

/// Whether a WebP file is animated: its extended header (`VP8X`) has the animation flag.
pub fn is_animated_webp(head: &[u8]) -> bool {
    head.len() >= 21 && &head[12..16] == b"VP8X" && head[20] & 0x02 != 0
}

/// A readable name of a sniffed type, for error messages.
pub fn describe(sniffed: &str) -> &'static str {
    match sniffed {
        "image/jpeg" => "a JPEG image",
        "image/png" => "a PNG image",
        "image/webp" => "a WebP image",
        "image/gif" => "a GIF image",
        "application/pdf" => "a PDF document",
        "audio/ogg" => "an Ogg audio file",
        "audio/amr" => "an AMR audio file",
        "audio/mpeg" => "an MP3 audio file",
        "audio/aac" => "an AAC audio file",
        "audio/mp4" => "an MP4 audio file",
        "video/mp4" => "an MP4 video",
        "video/3gpp" => "a 3GPP video",
        "application/zip" => "a zip archive (or an Office document)",
        "application/x-ole-storage" => "an old-style Office document",
        "text/markup" => "an HTML, XML or SVG file",
        _ => "another kind of file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mime_type_belongs_to_one_kind() {
        for kind in MediaKind::ALL {
            for mime in kind.mime_types() {
                assert_eq!(MediaKind::for_mime_type(mime), Some(kind), "{mime}");
            }
        }
        assert_eq!(
            MediaKind::for_mime_type("Audio/OGG; codecs=opus"),
            Some(MediaKind::Audio)
        );
        assert_eq!(MediaKind::for_mime_type("image/gif"), None);
    }

    #[test]
    fn limits_are_metas() {
        assert_eq!(MediaKind::Image.max_bytes(), 5 * 1024 * 1024);
        assert_eq!(MediaKind::Video.max_bytes(), 16 * 1024 * 1024);
        assert_eq!(MediaKind::Document.max_bytes(), 100 * 1024 * 1024);
        assert_eq!(STILL_STICKER_MAX, 100 * 1024);
        assert_eq!(human_size(5 * 1024 * 1024), "5 MB");
        assert_eq!(human_size(500 * 1024), "500 KB");
    }

    #[test]
    fn signatures_are_recognised_and_contradictions_refused() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"\0\0\0\x18ftyp3gp4"), Some("video/3gpp"));
        assert_eq!(sniff(b"%PDF-1.7"), Some("application/pdf"));
        assert!(content_fits("image/jpeg", Some("image/jpeg")));
        assert!(!content_fits("image/jpeg", Some("image/png")));
        assert!(content_fits("text/plain", None));
        assert!(!content_fits("text/plain", Some("text/markup")));
        assert!(!content_fits("image/png", None));
        assert!(content_fits("audio/mp4", Some("video/mp4")));
    }

    #[test]
    fn an_animated_webp_is_told_from_a_still_one() {
        let mut head = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
        head.push(0x02);
        assert!(is_animated_webp(&head));
        head[20] = 0x10;
        assert!(!is_animated_webp(&head));
    }
}
