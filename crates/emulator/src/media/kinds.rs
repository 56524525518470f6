//! The files Meta takes in an upload: its MIME types and the most bytes each may have.

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;

/// The upload limit of the largest kind (documents), which the upload route's body limit follows.
pub(crate) const MAX_FILE_BYTES: u64 = 100 * MB;

/// One accepted type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaKind {
    pub mime_type: &'static str,
    pub max_bytes: u64,
}

const fn kind(mime_type: &'static str, max_bytes: u64) -> MediaKind {
    MediaKind {
        mime_type,
        max_bytes,
    }
}

/// Meta's supported media, in the order its documentation lists them.
const KINDS: [MediaKind; 18] = [
    kind("audio/aac", 16 * MB),
    kind("audio/amr", 16 * MB),
    kind("audio/mpeg", 16 * MB),
    kind("audio/mp4", 16 * MB),
    kind("audio/ogg", 16 * MB),
    kind("text/plain", 100 * MB),
    kind("application/vnd.ms-excel", 100 * MB),
    kind("application/msword", 100 * MB),
    kind(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        100 * MB,
    ),
    kind(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        100 * MB,
    ),
    kind("application/vnd.ms-powerpoint", 100 * MB),
    kind(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        100 * MB,
    ),
    kind("application/pdf", 100 * MB),
    kind("image/jpeg", 5 * MB),
    kind("image/png", 5 * MB),
    // Stickers.
    kind("image/webp", 500 * KB),
    kind("video/3gpp", 16 * MB),
    kind("video/mp4", 16 * MB),
];

/// The kind of a MIME type, compared without its parameters (`audio/ogg; codecs=opus` is `audio/ogg`).
pub(crate) fn kind_of(mime_type: &str) -> Option<MediaKind> {
    let essence = mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    KINDS.iter().copied().find(|k| k.mime_type == essence)
}

/// `5 MB`, `500 KB`: a limit as Meta's documentation writes it.
fn human(bytes: u64) -> String {
    if bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{} KB", bytes / KB)
    }
}

/// Why an upload is refused, as `error_data.details` of a 131053; `None` when Meta takes the file.
pub(crate) fn upload_problem(mime_type: &str, size: u64) -> Option<String> {
    let Some(kind) = kind_of(mime_type) else {
        let supported: Vec<&str> = KINDS.iter().map(|k| k.mime_type).collect();
        return Some(format!(
            "Param file must be a file with one of the following types: {}. Received file of type '{mime_type}'.",
            supported.join(", ")
        ));
    };
    if size == 0 {
        return Some("The uploaded file is empty.".to_owned());
    }
    if size > kind.max_bytes {
        return Some(format!(
            "File is too large: {} files may be at most {} ({} bytes); this one has {size} bytes.",
            kind.mime_type,
            human(kind.max_bytes),
            kind.max_bytes
        ));
    }
    None
}

/// The details of a 131053 for a body over the largest upload Meta takes.
pub(crate) fn too_large_for_any_kind() -> String {
    format!(
        "File is too large: no file may be larger than {} ({MAX_FILE_BYTES} bytes).",
        human(MAX_FILE_BYTES)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_has_metas_limit() {
        let limits = [
            ("image/jpeg", 5 * MB),
            ("image/png", 5 * MB),
            ("audio/ogg; codecs=opus", 16 * MB),
            ("video/mp4", 16 * MB),
            ("application/pdf", 100 * MB),
            ("image/webp", 500 * KB),
            ("IMAGE/JPEG", 5 * MB),
        ];
        for (mime_type, limit) in limits {
            assert_eq!(
                kind_of(mime_type).map(|k| k.max_bytes),
                Some(limit),
                "{mime_type}"
            );
            assert_eq!(upload_problem(mime_type, limit), None, "{mime_type}");
            assert!(
                upload_problem(mime_type, limit + 1).is_some(),
                "{mime_type}"
            );
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let too_big = upload_problem("image/png", 5 * MB + 1).unwrap_or_default();
        assert!(
            too_big.contains("5 MB") && too_big.contains("5242880"),
            "{too_big}"
        );
        let sticker = upload_problem("image/webp", 600 * KB).unwrap_or_default();
        assert!(sticker.contains("500 KB"), "{sticker}");
        let gif = upload_problem("image/gif", 10).unwrap_or_default();
        assert!(
            gif.contains("image/gif") && gif.contains("image/jpeg"),
            "{gif}"
        );
        assert!(upload_problem("text/plain", 0).is_some());
    }
}
