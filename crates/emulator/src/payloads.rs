//! Meta-shaped JSON: webhook envelopes, inbound messages, Graph error envelopes and the ids in them.
//!
//! Public so wagate's own tests can build the very payloads the emulator sends. Key order follows
//! Meta's examples (serde_json keeps insertion order in this workspace) so bodies read like Meta's.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// The business side of a webhook: which account and number it is about.
#[derive(Debug, Clone, Copy)]
pub struct BusinessNumber<'a> {
    /// WhatsApp Business Account id, the `entry[].id` of every webhook.
    pub waba_id: &'a str,
    pub phone_number_id: &'a str,
    pub display_phone_number: &'a str,
}

/// One inbound message as it appears in `value.messages[]`.
#[derive(Debug, Clone)]
pub struct InboundMessage<'a> {
    pub wamid: &'a str,
    /// Customer's wa_id (digits).
    pub from: &'a str,
    /// Unix seconds; Meta sends them as a string.
    pub timestamp: i64,
    /// `text`, `image`, `interactive`...; the content sits under a key of the same name.
    pub message_type: &'a str,
    pub content: &'a Value,
    pub context: Option<&'a Value>,
    pub referral: Option<&'a Value>,
}

/// `{"object":"whatsapp_business_account","entry":[{"id":<waba>,"changes":[{"value":..,"field":..}]}]}`.
pub fn webhook_envelope(waba_id: &str, field: &str, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba_id,
            "changes": [{ "value": value, "field": field }],
        }],
    })
}

/// `value.metadata`, present on every `messages` change.
pub fn metadata(number: &BusinessNumber<'_>) -> Value {
    json!({
        "display_phone_number": number.display_phone_number,
        "phone_number_id": number.phone_number_id,
    })
}

/// One `messages[]` item; `context` and `referral` come first as in Meta's examples.
pub fn inbound_message(message: &InboundMessage<'_>) -> Value {
    let mut item = Map::new();
    if let Some(context) = message.context {
        item.insert("context".into(), context.clone());
    }
    if let Some(referral) = message.referral {
        item.insert("referral".into(), referral.clone());
    }
    item.insert("from".into(), message.from.into());
    item.insert("id".into(), message.wamid.into());
    item.insert("timestamp".into(), message.timestamp.to_string().into());
    item.insert("type".into(), message.message_type.into());
    item.insert(message.message_type.into(), message.content.clone());
    Value::Object(item)
}

/// A whole webhook carrying one customer message, shaped like `webhook_message_text.json`.
pub fn inbound_message_webhook(
    number: &BusinessNumber<'_>,
    profile_name: &str,
    message: &InboundMessage<'_>,
) -> Value {
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(number),
        "contacts": [{ "profile": { "name": profile_name }, "wa_id": message.from }],
        "messages": [inbound_message(message)],
    });
    webhook_envelope(number.waba_id, "messages", value)
}

/// Meta's Graph error envelope: `{"error":{"message","type","code","error_subcode"?,"error_data"?,"fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphErrorBody {
    pub message: String,
    /// Meta's `type`, e.g. `OAuthException` or `GraphMethodException`.
    pub kind: &'static str,
    pub code: u32,
    pub subcode: Option<u32>,
    /// `error_data.details`, which the Cloud API adds to its own errors.
    pub details: Option<String>,
}

impl GraphErrorBody {
    /// The JSON body, with a fresh `fbtrace_id` as every Meta answer has.
    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), self.message.clone().into());
        error.insert("type".into(), self.kind.into());
        error.insert("code".into(), self.code.into());
        if let Some(details) = &self.details {
            error.insert(
                "error_data".into(),
                json!({ "messaging_product": "whatsapp", "details": details }),
            );
        }
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), subcode.into());
        }
        error.insert("fbtrace_id".into(), new_fbtrace_id().into());
        json!({ "error": error })
    }

    /// Code 190 for a token Meta cannot make sense of (wrong, revoked or missing).
    pub fn invalid_access_token() -> Self {
        Self {
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            kind: "OAuthException",
            code: 190,
            subcode: None,
            details: None,
        }
    }

    /// Code 190, subcode 463: a token that was valid and has expired (unix seconds in, Pacific time out).
    pub fn expired_access_token(expired_at: i64, now: i64) -> Self {
        Self {
            message: format!(
                "Error validating access token: Session has expired on {}. The current time is {}.",
                pacific_time(expired_at),
                pacific_time(now)
            ),
            kind: "OAuthException",
            code: 190,
            subcode: Some(463),
            details: None,
        }
    }

    /// Code 100, subcode 33: the object does not exist or this token may not see it.
    pub fn unknown_object(method: &str, id: &str) -> Self {
        Self {
            message: format!(
                "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to \
                 missing permissions, or does not support this operation. Please read the Graph API \
                 documentation at https://developers.facebook.com/docs/graph-api",
                method.to_ascii_lowercase()
            ),
            kind: "GraphMethodException",
            code: 100,
            subcode: Some(33),
            details: None,
        }
    }

    /// Code 2500: a path Graph has no route for.
    pub fn unknown_path(path: &str) -> Self {
        Self {
            message: format!("Unknown path components: {path}"),
            kind: "OAuthException",
            code: 2500,
            subcode: None,
            details: None,
        }
    }
}

/// A new inbound wamid for a message from `from`, like `wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRB...AA=`.
///
/// Meta's ids are base64 of a small binary record: the sender's digits, then a message key. Inbound
/// keys are 20 characters starting `3A`; the 18 after it are unique within this process.
pub fn new_inbound_wamid(from: &str) -> String {
    wamid(from, 0x12, &format!("3A{}", unique_hex()))
}

/// A new wamid for a message the business sends to `to` (18-character key, as Meta's send answers have).
pub fn new_outbound_wamid(to: &str) -> String {
    wamid(to, 0x11, &unique_hex())
}

fn wamid(wa_id: &str, direction: u8, key: &str) -> String {
    // Lengths are single bytes in Meta's record; wa_ids have at most 15 digits and keys 20 characters.
    let digits = &wa_id.as_bytes()[..wa_id.len().min(255)];
    let key = &key.as_bytes()[..key.len().min(255)];
    let mut record = Vec::with_capacity(12 + digits.len() + key.len());
    record.extend_from_slice(&[0x1c, 0x18, digits.len() as u8]);
    record.extend_from_slice(digits);
    record.extend_from_slice(&[0x15, 0x02, 0x00, direction, 0x18, key.len() as u8]);
    record.extend_from_slice(key);
    record.push(0x00);
    format!("wamid.{}", STANDARD.encode(record))
}

/// 18 uppercase hex digits, never the same twice in a process and random-looking.
///
/// A counter pushed through a bijection on 72 bits (odd multiplications, xor-shifts and a random key),
/// so uniqueness is certain rather than likely.
fn unique_hex() -> String {
    const BITS: u32 = 72;
    const MASK: u128 = (1 << BITS) - 1;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEY: OnceLock<u128> = OnceLock::new();
    let key = *KEY.get_or_init(|| rand::random::<u128>() & MASK);
    let mut x = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835 | 1) & MASK;
    x ^= x >> 37;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9_94D0_49BB_1331_11EB | 1) & MASK;
    x ^= key;
    format!("{x:018X}")
}

/// A fresh `fbtrace_id`: 23 URL-safe base64 characters like `ACEyrTehk6IAd0lm05Ixogh`.
pub fn new_fbtrace_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 17]>())
}

/// Seconds since the Unix epoch, as Meta's `timestamp` fields count them.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `Friday, 26-Apr-24 06:00:00 PDT`: how Meta writes times in token errors (US Pacific).
fn pacific_time(unix_seconds: i64) -> String {
    let Ok(utc) = OffsetDateTime::from_unix_timestamp(unix_seconds) else {
        return unix_seconds.to_string();
    };
    let (hours, zone) = if in_us_daylight_time(utc) {
        (-7, "PDT")
    } else {
        (-8, "PST")
    };
    let offset = UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC);
    let format = format_description!(
        "[weekday], [day]-[month repr:short]-[year repr:last_two] [hour]:[minute]:[second]"
    );
    match utc.to_offset(offset).format(format) {
        Ok(text) => format!("{text} {zone}"),
        Err(_) => unix_seconds.to_string(),
    }
}

/// US daylight time: from the second Sunday of March, 2:00 PST, to the first Sunday of November, 2:00 PDT.
fn in_us_daylight_time(utc: OffsetDateTime) -> bool {
    let year = utc.year();
    let sunday_after = |month, day| {
        Date::from_calendar_date(year, month, day)
            .ok()
            .map(|d| d.next_occurrence(Weekday::Sunday))
    };
    let (Some(start), Some(end)) = (
        sunday_after(Month::March, 7),
        sunday_after(Month::October, 31),
    ) else {
        return false;
    };
    let starts = start.midnight().assume_utc() + time::Duration::hours(10);
    let ends = end.midnight().assume_utc() + time::Duration::hours(9);
    starts <= utc && utc < ends
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn an_inbound_wamid_decodes_like_metas() {
        let wamid = new_inbound_wamid("16503879439");
        let encoded = wamid.strip_prefix("wamid.").unwrap_or_default();
        let record = STANDARD.decode(encoded).unwrap_or_default();
        assert_eq!(&record[..3], &[0x1c, 0x18, 11]);
        assert_eq!(&record[3..14], b"16503879439");
        assert_eq!(&record[14..20], &[0x15, 0x02, 0x00, 0x12, 0x18, 20]);
        assert!(record[20..22] == *b"3A");
        assert!(record[22..40].iter().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(record.last(), Some(&0));
        // Same length and prefix as the wamid in webhook_message_text.json.
        let meta = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
        assert_eq!(wamid.len(), meta.len());
        assert_eq!(wamid[..30], meta[..30]);
    }

    #[test]
    fn wamids_do_not_repeat() {
        let ids: HashSet<String> = (0..100_000)
            .map(|_| new_inbound_wamid("15550001111"))
            .collect();
        assert_eq!(ids.len(), 100_000);
    }

    #[test]
    fn an_fbtrace_id_looks_like_metas() {
        let id = new_fbtrace_id();
        assert_eq!(id.len(), "ACEyrTehk6IAd0lm05Ixogh".len());
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn the_expired_token_message_uses_metas_wording() {
        // The times of error_190_expired_token_inner.json: 26 Apr 2024 13:00 UTC and 28 Apr 2024 10:40:10 UTC.
        let body = GraphErrorBody::expired_access_token(1_714_136_400, 1_714_300_810);
        assert_eq!(
            body.message,
            "Error validating access token: Session has expired on Friday, 26-Apr-24 06:00:00 PDT. \
             The current time is Sunday, 28-Apr-24 03:40:10 PDT."
        );
        assert_eq!((body.code, body.subcode), (190, Some(463)));
        let winter = GraphErrorBody::expired_access_token(1_704_110_400, 1_704_110_400);
        assert!(
            winter.message.contains("Monday, 01-Jan-24 04:00:00 PST"),
            "{}",
            winter.message
        );
    }

    #[test]
    fn an_error_envelope_has_metas_keys() {
        let json = GraphErrorBody::unknown_object("GET", "123").to_json();
        let error = &json["error"];
        assert_eq!(error["type"], "GraphMethodException");
        assert_eq!(error["code"], 100);
        assert_eq!(error["error_subcode"], 33);
        assert!(error["fbtrace_id"].is_string());
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Unsupported get request. Object with ID '123' does not exist")
        );
    }
}
