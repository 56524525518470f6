//! Time as the store keeps it (Unix milliseconds) and as the API shows it (RFC 3339, UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-11-21T23:38:08.123Z`: what every time in an API answer looks like.
pub fn rfc3339(ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The UTC calendar day of a time, `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01".to_owned())
}

/// Reads an RFC 3339 time with its offset (`2026-12-05T09:00:00+01:00`, `...Z`) as Unix ms.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let time =
        OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

pub const HOUR_MS: i64 = 60 * 60 * 1000;
/// Meta's customer service window: 24 hours from the customer's last message.
pub const SERVICE_WINDOW_MS: i64 = 24 * HOUR_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_749_416_383_000), "2025-06-08T20:59:43.000Z");
        assert_eq!(rfc3339(1_749_416_383_120), "2025-06-08T20:59:43.120Z");
        assert_eq!(utc_day(1_749_416_383_120), "2025-06-08");
    }

    #[test]
    fn rfc3339_times_read_back_with_their_offsets() {
        assert_eq!(
            parse_rfc3339("2025-06-08T20:59:43.120Z"),
            Some(1_749_416_383_120)
        );
        assert_eq!(
            parse_rfc3339("2025-06-08T22:59:43.120+02:00"),
            Some(1_749_416_383_120)
        );
        assert_eq!(
            parse_rfc3339(&rfc3339(1_749_416_383_120)),
            Some(1_749_416_383_120)
        );
        // A time without its offset is ambiguous and refused.
        assert_eq!(parse_rfc3339("2025-06-08T20:59:43"), None);
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }
}
