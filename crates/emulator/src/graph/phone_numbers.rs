//! `GET /{version}/{phone_number_id}`: a business phone number as Graph describes it.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::phone_numbers::PhoneNumber;

/// Fields Graph returns when the request names none, in Meta's order (`id` is added last).
const DEFAULT_FIELDS: [&str; 6] = [
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
];

/// The number's node with the fields `fields=` asks for (Meta's defaults when it asks none), and `id`.
pub(super) fn describe(number: &PhoneNumber, query: &HashMap<String, String>) -> Value {
    let requested: Vec<&str> = match query.get("fields") {
        Some(fields) => fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    let mut body = Map::new();
    for name in requested {
        // Unknown fields are skipped (Meta would refuse them); wagate only asks for known ones.
        if let Some(value) = field(number, name) {
            body.insert(name.to_owned(), value);
        }
    }
    body.insert("id".into(), number.id.clone().into());
    Value::Object(body)
}

/// One field of the phone number node, or `None` for fields the emulator does not model.
fn field(number: &PhoneNumber, name: &str) -> Option<Value> {
    Some(match name {
        "verified_name" => number.verified_name.clone().into(),
        "display_phone_number" => number.display_phone_number.clone().into(),
        "quality_rating" => number.quality_rating.as_str().into(),
        "whatsapp_business_manager_messaging_limit" => number.messaging_limit_tier.as_str().into(),
        "code_verification_status" => "VERIFIED".into(),
        "platform_type" => "CLOUD_API".into(),
        "throughput" => json!({ "level": "STANDARD" }),
        "status" => "CONNECTED".into(),
        "name_status" => "APPROVED".into(),
        "account_mode" => "LIVE".into(),
        "webhook_configuration" => json!({ "application": number.webhook_url.as_ref()?.as_str() }),
        _ => return None,
    })
}
