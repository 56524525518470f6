//! Meta-shaped JSON: webhook envelopes, inbound messages, status updates, template events, Graph
//! error envelopes and the ids in them.
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

/// The `type` of the Cloud API's own errors and of token errors.
const OAUTH_EXCEPTION: &str = "OAuthException";

/// The `href` Meta puts on error objects inside webhooks.
const ERROR_CODES_HREF: &str =
    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/";

/// `error_data.details` of 131047.
pub const REENGAGEMENT_DETAILS: &str = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";

/// Meta's Graph error envelope: `{"error":{"message","type","code","error_data"?,"error_subcode"?,"fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphErrorBody {
    pub message: String,
    /// Meta's `type`, e.g. `OAuthException` or `GraphMethodException`.
    pub kind: String,
    pub code: u32,
    pub subcode: Option<u32>,
    /// `error_data`, which the Cloud API adds to its own errors: `{"messaging_product","details"}`.
    pub error_data: Option<Value>,
    /// `error_user_title` and `error_user_msg`, which Graph adds to errors meant for a person (the
    /// template API's, for one): a title and what to do.
    pub user_message: Option<(String, String)>,
}

impl GraphErrorBody {
    /// The JSON body, with a fresh `fbtrace_id` as every Meta answer has.
    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), self.message.clone().into());
        error.insert("type".into(), self.kind.clone().into());
        error.insert("code".into(), self.code.into());
        if let Some(error_data) = &self.error_data {
            error.insert("error_data".into(), error_data.clone());
        }
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), subcode.into());
        }
        if let Some((title, message)) = &self.user_message {
            error.insert("is_transient".into(), false.into());
            error.insert("error_user_title".into(), title.clone().into());
            error.insert("error_user_msg".into(), message.clone().into());
        }
        error.insert("fbtrace_id".into(), new_fbtrace_id().into());
        json!({ "error": error })
    }

    /// A Cloud API error: `(#code) title`, `OAuthException`, and `error_data.details` when given.
    pub fn cloud_api(code: u32, title: &str, details: Option<&str>) -> Self {
        Self {
            message: format!("(#{code}) {title}"),
            kind: OAUTH_EXCEPTION.into(),
            code,
            subcode: None,
            error_data: details
                .map(|details| json!({ "messaging_product": "whatsapp", "details": details })),
            user_message: None,
        }
    }

    /// Code 100: a parameter is missing or wrong; `details` says which and how.
    pub fn invalid_parameter(details: &str) -> Self {
        Self::cloud_api(100, "Invalid parameter", Some(details))
    }

    /// Code 131009: a parameter has a value Meta does not accept (too many buttons, too long a title).
    pub fn parameter_value_not_valid(details: &str) -> Self {
        Self::cloud_api(131009, "Parameter value is not valid", Some(details))
    }

    /// Code 131047: a free-form message outside the 24-hour customer service window.
    pub fn reengagement_message() -> Self {
        Self::cloud_api(131047, "Re-engagement message", Some(REENGAGEMENT_DETAILS))
    }

    /// Code 130429: the number's throughput was exceeded.
    pub fn rate_limit_hit() -> Self {
        Self::cloud_api(
            130429,
            "Rate limit hit",
            Some("Cloud API message throughput has been reached."),
        )
    }

    /// Code 131056: too many messages to the same recipient.
    pub fn pair_rate_limit_hit() -> Self {
        Self::cloud_api(
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            Some(
                "Message failed to send because there were too many messages sent from this phone \
                 number to the same phone number in a short period of time",
            ),
        )
    }

    /// Code 131053: an upload Meta does not take (type, size) or a media id it does not know.
    pub fn media_upload_error(details: &str) -> Self {
        Self::cloud_api(131053, "Media upload error", Some(details))
    }

    /// Code 132000: a template send's parameters do not match the template's components.
    pub fn template_parameter_count(details: &str) -> Self {
        Self::cloud_api(
            132000,
            "Number of parameters does not match the expected number of params",
            Some(details),
        )
    }

    /// Code 132001: no approved template of that name in that language.
    pub fn template_does_not_exist(details: &str) -> Self {
        Self::cloud_api(
            132001,
            "Template name does not exist in the translation",
            Some(details),
        )
    }

    /// Code 132012: a template parameter of the wrong type for its place.
    pub fn template_parameter_format(details: &str) -> Self {
        Self::cloud_api(
            132012,
            "Parameter format does not match format in the created template",
            Some(details),
        )
    }

    /// Code 132015: the template is paused for low quality.
    pub fn template_paused(details: &str) -> Self {
        Self::cloud_api(132015, "Template is Paused", Some(details))
    }

    /// Code 132016: the template was paused too often and is disabled for good.
    pub fn template_disabled(details: &str) -> Self {
        Self::cloud_api(132016, "Template is Disabled", Some(details))
    }

    /// Code 100, subcode 2388024: the account has a template of this name in this language already.
    pub fn template_already_exists(name: &str, language: &str) -> Self {
        Self {
            message: "Invalid parameter".into(),
            kind: OAUTH_EXCEPTION.into(),
            code: 100,
            subcode: Some(2_388_024),
            error_data: None,
            user_message: Some((
                "Message template already exists".into(),
                format!(
                    "There is already {language} content for the template {name}. You can create a new template and try again."
                ),
            )),
        }
    }

    /// Code 2: Graph is down or overloaded for a moment (Meta answers it with HTTP 503).
    pub fn service_unavailable() -> Self {
        Self {
            message: "An unexpected error has occurred. Please retry your request later.".into(),
            kind: OAUTH_EXCEPTION.into(),
            code: 2,
            subcode: None,
            error_data: None,
            user_message: None,
        }
    }

    /// Code 190 for a token Meta cannot make sense of (wrong, revoked or missing).
    pub fn invalid_access_token() -> Self {
        Self {
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            kind: OAUTH_EXCEPTION.into(),
            code: 190,
            subcode: None,
            error_data: None,
            user_message: None,
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
            kind: OAUTH_EXCEPTION.into(),
            code: 190,
            subcode: Some(463),
            error_data: None,
            user_message: None,
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
            kind: "GraphMethodException".into(),
            code: 100,
            subcode: Some(33),
            error_data: None,
            user_message: None,
        }
    }

    /// Code 2500: a path Graph has no route for.
    pub fn unknown_path(path: &str) -> Self {
        Self {
            message: format!("Unknown path components: {path}"),
            kind: OAUTH_EXCEPTION.into(),
            code: 2500,
            subcode: None,
            error_data: None,
            user_message: None,
        }
    }

    /// The message Meta gives with a code, for errors a test names only by code.
    pub fn default_message(code: u32) -> String {
        match code {
            2 => Self::service_unavailable().message,
            190 => Self::invalid_access_token().message,
            _ => {
                let title = match code {
                    1 => "An unknown error occurred",
                    4 => "Application request limit reached",
                    10 => "Permission denied",
                    100 => "Invalid parameter",
                    368 => "Temporarily blocked for policies violations",
                    80007 => "Rate limit issues",
                    130429 => "Rate limit hit",
                    131000 => "Something went wrong",
                    131009 => "Parameter value is not valid",
                    131026 => "Message undeliverable",
                    131047 => "Re-engagement message",
                    131051 => "Unsupported message type",
                    131052 => "Media download error",
                    131053 => "Media upload error",
                    131056 => "(Business Account, Consumer Account) pair rate limit hit",
                    131057 => "Account in maintenance mode",
                    132000 => "Number of parameters does not match the expected number of params",
                    132001 => "Template name does not exist in the translation",
                    132012 => "Parameter format does not match format in the created template",
                    132015 => "Template is Paused",
                    132016 => "Template is Disabled",
                    _ => "An error occurred",
                };
                format!("(#{code}) {title}")
            }
        }
    }
}

/// One status update of a sent message, as it appears in `value.statuses[]`.
#[derive(Debug, Clone)]
pub struct StatusUpdate<'a> {
    pub wamid: &'a str,
    /// `sent`, `delivered`, `read`, `played` or `failed`.
    pub status: &'a str,
    /// Unix seconds; Meta sends them as a string.
    pub timestamp: i64,
    /// The customer's wa_id.
    pub recipient_id: &'a str,
    /// Handed back from the send request, as Meta does.
    pub biz_opaque_callback_data: Option<&'a str>,
    /// Conversation and pricing; failed statuses have none.
    pub pricing: Option<StatusPricing<'a>>,
    /// `errors[]` of a failed status.
    pub errors: Option<&'a Value>,
}

/// What a status says about the conversation the message belongs to and its price.
#[derive(Debug, Clone, Copy)]
pub struct StatusPricing<'a> {
    pub conversation_id: &'a str,
    /// `marketing`, `utility`, `authentication` or `service`; service messages are free.
    pub category: &'a str,
}

/// One `statuses[]` item, keys in the order of `webhook_status_sent.json`.
pub fn status_item(update: &StatusUpdate<'_>) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), update.wamid.into());
    item.insert("status".into(), update.status.into());
    item.insert("timestamp".into(), update.timestamp.to_string().into());
    item.insert("recipient_id".into(), update.recipient_id.into());
    if let Some(data) = update.biz_opaque_callback_data {
        item.insert("biz_opaque_callback_data".into(), data.into());
    }
    if let Some(pricing) = update.pricing {
        let mut conversation = Map::new();
        conversation.insert("id".into(), pricing.conversation_id.into());
        if update.status == "sent" {
            // Only the first status of a conversation says when it ends, 24 hours on.
            let expires = update.timestamp.saturating_add(24 * 60 * 60);
            conversation.insert("expiration_timestamp".into(), expires.to_string().into());
        }
        conversation.insert("origin".into(), json!({ "type": pricing.category }));
        item.insert("conversation".into(), Value::Object(conversation));
        let billable = pricing.category != "service";
        item.insert(
            "pricing".into(),
            json!({
                "billable": billable,
                "pricing_model": "PMP",
                "type": if billable { "regular" } else { "free_customer_service" },
                "category": pricing.category,
            }),
        );
    }
    if let Some(errors) = update.errors {
        item.insert("errors".into(), errors.clone());
    }
    Value::Object(item)
}

/// A whole webhook carrying one status update, shaped like `webhook_status_sent.json`.
pub fn status_webhook(number: &BusinessNumber<'_>, update: &StatusUpdate<'_>) -> Value {
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(number),
        "statuses": [status_item(update)],
    });
    webhook_envelope(number.waba_id, "messages", value)
}

/// `errors[]` of a failed status when the caller names none: 131026, undeliverable.
pub fn undeliverable_errors() -> Value {
    json!([{
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": { "details": "Message Undeliverable." },
        "href": ERROR_CODES_HREF,
    }])
}

/// `errors[]` of the `failed` status that follows a free-form send outside the customer service
/// window: 131047, as in Meta's `error_131047_reengagement_error_object.json`.
pub fn reengagement_errors() -> Value {
    json!([{
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": { "details": REENGAGEMENT_DETAILS },
        "href": ERROR_CODES_HREF,
    }])
}

/// The template an event is about, as template webhooks name it.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRef<'a> {
    /// The template's Graph id; webhooks carry it as a number.
    pub id: &'a str,
    pub name: &'a str,
    pub language: &'a str,
}

impl TemplateRef<'_> {
    /// `message_template_id`, `message_template_name` and `message_template_language`, in that order.
    fn fields(&self, value: &mut Map<String, Value>) {
        let id = self
            .id
            .parse::<u64>()
            .map_or_else(|_| Value::from(self.id), Value::from);
        value.insert("message_template_id".into(), id);
        value.insert("message_template_name".into(), self.name.into());
        value.insert("message_template_language".into(), self.language.into());
    }
}

/// An account-level webhook (template events), keys in the order of Meta's template examples:
/// `{"entry":[{"id","time","changes":[{"value","field"}]}],"object"}`.
pub fn account_webhook(waba_id: &str, time: i64, field: &str, value: Value) -> Value {
    json!({
        "entry": [{
            "id": waba_id,
            "time": time,
            "changes": [{ "value": value, "field": field }],
        }],
        "object": "whatsapp_business_account",
    })
}

/// A `message_template_status_update`, shaped like `webhook_template_status_update_approved.json`;
/// a rejection also carries `rejection_info` as `(reason, recommendation)`.
pub fn template_status_webhook(
    waba_id: &str,
    time: i64,
    template: &TemplateRef<'_>,
    event: &str,
    reason: &str,
    category: &str,
    rejection_info: Option<(&str, &str)>,
) -> Value {
    let mut value = Map::new();
    value.insert("event".into(), event.into());
    template.fields(&mut value);
    value.insert("reason".into(), reason.into());
    value.insert("message_template_category".into(), category.into());
    if let Some((reason, recommendation)) = rejection_info {
        value.insert(
            "rejection_info".into(),
            json!({ "reason": reason, "recommendation": recommendation }),
        );
    }
    account_webhook(
        waba_id,
        time,
        "message_template_status_update",
        Value::Object(value),
    )
}

/// A `message_template_quality_update`, shaped like `webhook_template_quality_update.json`.
pub fn template_quality_webhook(
    waba_id: &str,
    time: i64,
    template: &TemplateRef<'_>,
    previous_score: &str,
    new_score: &str,
) -> Value {
    let mut value = Map::new();
    value.insert("previous_quality_score".into(), previous_score.into());
    value.insert("new_quality_score".into(), new_score.into());
    template.fields(&mut value);
    account_webhook(
        waba_id,
        time,
        "message_template_quality_update",
        Value::Object(value),
    )
}

/// A `template_category_update`, shaped like `webhook_template_category_update.json` with the
/// `previous_category` Meta's reference adds.
pub fn template_category_webhook(
    waba_id: &str,
    time: i64,
    template: &TemplateRef<'_>,
    previous_category: &str,
    new_category: &str,
) -> Value {
    let mut value = Map::new();
    template.fields(&mut value);
    value.insert("previous_category".into(), previous_category.into());
    value.insert("new_category".into(), new_category.into());
    account_webhook(
        waba_id,
        time,
        "template_category_update",
        Value::Object(value),
    )
}

/// A new Graph object id for a template or a media object: 16 digits, like `1037543291543636`.
pub fn new_object_id() -> String {
    rand::random_range(1_000_000_000_000_000_u64..10_000_000_000_000_000).to_string()
}

/// A new conversation id: 32 lowercase hex digits like `72b14d6bd5407799e66f64d1b338e567`.
pub fn new_conversation_id() -> String {
    format!("{:032x}", rand::random::<u128>())
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
    fn a_cloud_api_error_reads_like_metas_example() {
        let json =
            GraphErrorBody::invalid_parameter("Message must be a template message.").to_json();
        let mut example: Value = serde_json::from_str(
            r#"{ "error": { "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100, "error_data": { "messaging_product": "whatsapp", "details": "Message must be a template message." }, "fbtrace_id": "Ak6nxJSySLEJz32Ps-QiZ1t" } }"#,
        )
        .unwrap_or_default();
        example["error"]["fbtrace_id"] = json["error"]["fbtrace_id"].clone();
        assert_eq!(json.to_string(), example.to_string());
    }

    #[test]
    fn a_sent_status_has_the_keys_of_metas_example_in_order() {
        let item = status_item(&StatusUpdate {
            wamid: "wamid.x",
            status: "sent",
            timestamp: 1_750_030_073,
            recipient_id: "16505551234",
            biz_opaque_callback_data: None,
            pricing: Some(StatusPricing {
                conversation_id: "72b14d6bd5407799e66f64d1b338e567",
                category: "marketing",
            }),
            errors: None,
        });
        assert_eq!(
            item.to_string(),
            r#"{"id":"wamid.x","status":"sent","timestamp":"1750030073","recipient_id":"16505551234","conversation":{"id":"72b14d6bd5407799e66f64d1b338e567","expiration_timestamp":"1750116473","origin":{"type":"marketing"}},"pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}"#
        );
    }

    #[test]
    fn a_failed_status_has_errors_and_no_pricing() {
        let errors = undeliverable_errors();
        let item = status_item(&StatusUpdate {
            wamid: "wamid.x",
            status: "failed",
            timestamp: 1,
            recipient_id: "16505551234",
            biz_opaque_callback_data: Some("order-7"),
            pricing: None,
            errors: Some(&errors),
        });
        assert_eq!(item["errors"][0]["code"], 131026);
        assert_eq!(item["biz_opaque_callback_data"], "order-7");
        assert!(item.get("pricing").is_none() && item.get("conversation").is_none());
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
