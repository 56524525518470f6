//! A business phone number as the Graph API describes it.

use serde::{Deserialize, Serialize};

use crate::shared::{Extra, Page};

/// The field that carries the messaging limit tier; Meta leaves it out of a read that names no
/// fields.
pub const MESSAGING_LIMIT_FIELD: &str = "whatsapp_business_manager_messaging_limit";

/// `GET /{waba-id}/phone_numbers`: the numbers of a WhatsApp Business Account.
pub type PhoneNumberPage = Page<PhoneNumber>;

/// The answer to `GET /{phone-number-id}`; checking credentials starts here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    /// As WhatsApp shows it, with spaces and punctuation (`+1 555-555-5555`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// The business name Meta approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<String>,
    /// How many customers the number may start conversations with in 24 hours: `TIER_250`,
    /// `TIER_2K`, `TIER_10K`, `TIER_100K`, `TIER_UNLIMITED` (older numbers: `TIER_50`, `TIER_1K`).
    /// Meta sends it only when asked for by name; see [`MESSAGING_LIMIT_FIELD`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_business_manager_messaging_limit: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
