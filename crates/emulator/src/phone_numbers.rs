//! Business phone numbers the emulator plays Meta for: how they are registered, parsed and shown.
//!
//! Callers hand in plain strings ([`PhoneNumberRegistration`], [`PhoneNumberUpdate`]); they are parsed
//! once into [`PhoneNumber`], so the rest of the emulator never sees an invalid id, URL or token.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::business_profile::BusinessProfile;
use crate::error::InputError;
use crate::limits::{PairLimiter, PairRate, SendCounters, ThroughputWindow};
use crate::media;
use crate::messaging::{MessageStatus, PricingCategory};
use crate::payloads;

/// The longest wait allowed between automatic status webhooks.
const MAX_AUTO_STATUS_DELAY_MS: u64 = 10 * 60 * 1000;
/// Highest throughput a number may be given (Meta's automatic upgrade stops at 1000).
const MAX_THROUGHPUT_PER_SECOND: u32 = 100_000;
/// Highest pair rate: one message per millisecond to the same recipient.
const MAX_PAIR_PER_MINUTE: u32 = 60_000;
const MAX_PAIR_BURST: u32 = 10_000;
/// Most extra copies of each automatic status.
const MAX_DUPLICATE_STATUSES: u32 = 10;

/// What Meta does with a free-form send outside the 24-hour customer service window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowViolation {
    /// As Meta does today: the send is accepted (200 with a wamid) and a `failed` status webhook
    /// with error 131047 follows; no sent, delivered or read status ever comes.
    #[default]
    FailedStatus,
    /// The older, synchronous answer: HTTP 400 with code 131047, and nothing is sent.
    Reject,
}

/// In which order a send's automatic status webhooks are delivered (their timestamps always follow
/// the statuses' real order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusOrder {
    /// In the order `auto_statuses` lists them.
    #[default]
    InOrder,
    /// Last first, e.g. read, delivered, sent.
    Reversed,
    /// A random order, drawn for each send (which may happen to be the listed one).
    Shuffled,
}

/// A business phone number to emulate, as the admin API and [`crate::RunningEmulator`] take it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumberRegistration {
    /// Graph id of the number (digits), the `{phone_number_id}` of Graph paths.
    pub phone_number_id: String,
    /// WhatsApp Business Account the number belongs to (digits); webhooks carry it as `entry[].id`.
    pub waba_id: String,
    /// The number as Meta shows it, e.g. `15550783881` or `+1 555-078-3881`.
    pub display_phone_number: String,
    pub verified_name: String,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN` or `NA`; `GREEN` when left out.
    #[serde(default = "default_quality_rating")]
    pub quality_rating: String,
    /// The messaging limit Graph answers as `whatsapp_business_manager_messaging_limit`: `TIER_50`,
    /// `TIER_250`, `TIER_1K`, `TIER_2K`, `TIER_10K`, `TIER_100K` or `TIER_UNLIMITED`; `TIER_1K`
    /// when left out.
    #[serde(default = "default_messaging_limit_tier")]
    pub messaging_limit_tier: String,
    /// The bearer token Graph requests for this number must carry.
    pub access_token: String,
    /// Key of the `X-Hub-Signature-256` HMAC on this number's webhooks.
    pub app_secret: String,
    /// Where this number's webhooks go; until one is set they wait.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Whether a free-form send needs the customer to have written in the last 24 hours, as Meta
    /// requires (else error 131047); `true` when left out.
    #[serde(default = "default_enforce_service_window")]
    pub enforce_service_window: bool,
    /// What a free-form send outside the window gets when the window is enforced:
    /// `"failed_status"` (the default, as Meta does today: accepted, then, `auto_status_delay_ms`
    /// later, a `failed` status with 131047 and no other status) or `"reject"` (HTTP 400 with
    /// 131047 at once).
    #[serde(default)]
    pub window_violation: WindowViolation,
    /// Status webhooks the emulator sends by itself after each accepted send, in this order: any of
    /// `sent`, `delivered`, `read`, `played` (`played` only follows audio messages). None when left
    /// out.
    #[serde(default)]
    pub auto_statuses: Vec<String>,
    /// The wait before each automatic status: the n-th goes n times this long after the send; 50
    /// when left out. With 0 they go out together and may arrive in any order.
    #[serde(default = "default_auto_status_delay_ms")]
    pub auto_status_delay_ms: u64,
    /// The order automatic statuses are delivered in: `"in_order"` (the default), `"reversed"` or
    /// `"shuffled"`.
    #[serde(default)]
    pub status_order: StatusOrder,
    /// Extra copies of each automatic status: each is delivered `duplicate_statuses + 1` times in a
    /// row, as Meta's at-least-once delivery can. 0 (the default) to 10.
    #[serde(default)]
    pub duplicate_statuses: u32,
    /// Whether sends over `throughput_per_second` are refused with 130429; `true` when left out.
    #[serde(default = "yes")]
    pub enforce_throughput: bool,
    /// Sends accepted per sliding one-second window; 80 (Meta's default) when left out.
    #[serde(default = "default_throughput_per_second")]
    pub throughput_per_second: u32,
    /// Whether sends to one recipient over the pair rate are refused with 131056; `true` when left out.
    #[serde(default = "yes")]
    pub enforce_pair_rate: bool,
    /// Sends per minute to one recipient; 10 (one per 6 seconds, as Meta's) when left out.
    #[serde(default = "default_pair_per_minute")]
    pub pair_per_minute: u32,
    /// Sends to one recipient allowed back to back before the pair rate applies; 3 when left out.
    #[serde(default = "default_pair_burst")]
    pub pair_burst: u32,
    /// Pricing category of named templates (`marketing`, `utility` or `authentication`, any case),
    /// for status `pricing`, overriding the template's own category; templates not named here are
    /// priced in the category they are stored with, as Meta prices them.
    #[serde(default)]
    pub template_categories: BTreeMap<String, String>,
    /// How long the download URLs `GET /{media_id}` hands out stay valid; 300000 (Meta's 5
    /// minutes) when left out, at most a day.
    #[serde(default = "default_media_url_ttl_ms")]
    pub media_url_ttl_ms: u64,
}

fn default_quality_rating() -> String {
    "GREEN".into()
}

fn default_messaging_limit_tier() -> String {
    MessagingLimitTier::default().as_str().into()
}

fn default_enforce_service_window() -> bool {
    true
}

fn default_auto_status_delay_ms() -> u64 {
    50
}

fn yes() -> bool {
    true
}

fn default_throughput_per_second() -> u32 {
    80
}

fn default_pair_per_minute() -> u32 {
    10
}

fn default_pair_burst() -> u32 {
    3
}

fn default_media_url_ttl_ms() -> u64 {
    media::DEFAULT_URL_TTL_MS
}

impl Default for PhoneNumberRegistration {
    fn default() -> Self {
        Self {
            phone_number_id: String::new(),
            waba_id: String::new(),
            display_phone_number: String::new(),
            verified_name: String::new(),
            quality_rating: default_quality_rating(),
            messaging_limit_tier: default_messaging_limit_tier(),
            access_token: String::new(),
            app_secret: String::new(),
            webhook_url: None,
            enforce_service_window: default_enforce_service_window(),
            window_violation: WindowViolation::default(),
            auto_statuses: Vec::new(),
            auto_status_delay_ms: default_auto_status_delay_ms(),
            status_order: StatusOrder::default(),
            duplicate_statuses: 0,
            enforce_throughput: yes(),
            throughput_per_second: default_throughput_per_second(),
            enforce_pair_rate: yes(),
            pair_per_minute: default_pair_per_minute(),
            pair_burst: default_pair_burst(),
            template_categories: BTreeMap::new(),
            media_url_ttl_ms: default_media_url_ttl_ms(),
        }
    }
}

// Hand-written so the token and the app secret never reach a log line.
impl fmt::Debug for PhoneNumberRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneNumberRegistration")
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("display_phone_number", &self.display_phone_number)
            .field("verified_name", &self.verified_name)
            .field("quality_rating", &self.quality_rating)
            .field("messaging_limit_tier", &self.messaging_limit_tier)
            .field("access_token", &"[redacted]")
            .field("app_secret", &"[redacted]")
            .field("webhook_url", &self.webhook_url)
            .field("enforce_service_window", &self.enforce_service_window)
            .field("window_violation", &self.window_violation)
            .field("auto_statuses", &self.auto_statuses)
            .field("auto_status_delay_ms", &self.auto_status_delay_ms)
            .field("status_order", &self.status_order)
            .field("duplicate_statuses", &self.duplicate_statuses)
            .field("enforce_throughput", &self.enforce_throughput)
            .field("throughput_per_second", &self.throughput_per_second)
            .field("enforce_pair_rate", &self.enforce_pair_rate)
            .field("pair_per_minute", &self.pair_per_minute)
            .field("pair_burst", &self.pair_burst)
            .field("template_categories", &self.template_categories)
            .field("media_url_ttl_ms", &self.media_url_ttl_ms)
            .finish()
    }
}

/// Changes to a registered number; fields left out stay as they are.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumberUpdate {
    pub waba_id: Option<String>,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    pub messaging_limit_tier: Option<String>,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    /// `Some(Some(url))` sets the URL (and releases waiting deliveries), `Some(None)` (JSON `null`) removes it.
    #[serde(default, deserialize_with = "present_or_null")]
    pub webhook_url: Option<Option<String>>,
    pub enforce_service_window: Option<bool>,
    pub window_violation: Option<WindowViolation>,
    pub auto_statuses: Option<Vec<String>>,
    pub auto_status_delay_ms: Option<u64>,
    pub status_order: Option<StatusOrder>,
    pub duplicate_statuses: Option<u32>,
    pub enforce_throughput: Option<bool>,
    pub throughput_per_second: Option<u32>,
    pub enforce_pair_rate: Option<bool>,
    pub pair_per_minute: Option<u32>,
    pub pair_burst: Option<u32>,
    /// Replaces the whole map.
    pub template_categories: Option<BTreeMap<String, String>>,
    /// `true` makes every Graph call with this number's token answer 190/463 (expired) until it is
    /// set back to `false` or the token is replaced.
    pub token_expired: Option<bool>,
    /// For download URLs issued from now on.
    pub media_url_ttl_ms: Option<u64>,
}

// Hand-written so the token and the app secret never reach a log line.
impl fmt::Debug for PhoneNumberUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "[redacted]");
        f.debug_struct("PhoneNumberUpdate")
            .field("waba_id", &self.waba_id)
            .field("display_phone_number", &self.display_phone_number)
            .field("verified_name", &self.verified_name)
            .field("quality_rating", &self.quality_rating)
            .field("messaging_limit_tier", &self.messaging_limit_tier)
            .field("access_token", &redacted(&self.access_token))
            .field("app_secret", &redacted(&self.app_secret))
            .field("webhook_url", &self.webhook_url)
            .field("enforce_service_window", &self.enforce_service_window)
            .field("window_violation", &self.window_violation)
            .field("auto_statuses", &self.auto_statuses)
            .field("auto_status_delay_ms", &self.auto_status_delay_ms)
            .field("status_order", &self.status_order)
            .field("duplicate_statuses", &self.duplicate_statuses)
            .field("enforce_throughput", &self.enforce_throughput)
            .field("throughput_per_second", &self.throughput_per_second)
            .field("enforce_pair_rate", &self.enforce_pair_rate)
            .field("pair_per_minute", &self.pair_per_minute)
            .field("pair_burst", &self.pair_burst)
            .field("template_categories", &self.template_categories)
            .field("token_expired", &self.token_expired)
            .field("media_url_ttl_ms", &self.media_url_ttl_ms)
            .finish()
    }
}

/// Tells a field set to `null` (`Some(None)`) from one left out (`None`, through `#[serde(default)]`).
fn present_or_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A registered number as the admin API shows it: the registration without its secrets, and how
/// its sends went so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredPhoneNumber {
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_phone_number: String,
    pub verified_name: String,
    pub quality_rating: QualityRating,
    pub messaging_limit_tier: MessagingLimitTier,
    pub webhook_url: Option<String>,
    pub enforce_service_window: bool,
    pub window_violation: WindowViolation,
    pub auto_statuses: Vec<MessageStatus>,
    pub auto_status_delay_ms: u64,
    pub status_order: StatusOrder,
    pub duplicate_statuses: u32,
    pub enforce_throughput: bool,
    pub throughput_per_second: u32,
    pub enforce_pair_rate: bool,
    pub pair_per_minute: u32,
    pub pair_burst: u32,
    pub template_categories: BTreeMap<String, PricingCategory>,
    /// Whether calls with this number's token are being refused as expired.
    pub token_expired: bool,
    pub media_url_ttl_ms: u64,
    /// Shown as top-level fields: `accepted_sends`, `rejected_throughput`, ...
    #[serde(flatten)]
    pub counters: SendCounters,
}

/// Meta's quality rating of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QualityRating {
    Green,
    Yellow,
    Red,
    Unknown,
    Na,
}

impl QualityRating {
    fn parse(value: &str) -> Result<Self, InputError> {
        match value.trim().to_ascii_uppercase().as_str() {
            "GREEN" => Ok(Self::Green),
            "YELLOW" => Ok(Self::Yellow),
            "RED" => Ok(Self::Red),
            "UNKNOWN" => Ok(Self::Unknown),
            "NA" => Ok(Self::Na),
            _ => Err(InputError::new(
                "quality_rating",
                "must be one of GREEN, YELLOW, RED, UNKNOWN, NA",
            )),
        }
    }

    /// The word Graph answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "GREEN",
            Self::Yellow => "YELLOW",
            Self::Red => "RED",
            Self::Unknown => "UNKNOWN",
            Self::Na => "NA",
        }
    }
}

/// How many customers a number may start conversations with in 24 hours, as Meta tiers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessagingLimitTier {
    #[serde(rename = "TIER_50")]
    Tier50,
    #[serde(rename = "TIER_250")]
    Tier250,
    /// The default: an established number's tier (Meta starts new portfolios at 250).
    #[default]
    #[serde(rename = "TIER_1K")]
    Tier1K,
    #[serde(rename = "TIER_2K")]
    Tier2K,
    #[serde(rename = "TIER_10K")]
    Tier10K,
    #[serde(rename = "TIER_100K")]
    Tier100K,
    #[serde(rename = "TIER_UNLIMITED")]
    TierUnlimited,
}

impl MessagingLimitTier {
    const ALL: [Self; 7] = [
        Self::Tier50,
        Self::Tier250,
        Self::Tier1K,
        Self::Tier2K,
        Self::Tier10K,
        Self::Tier100K,
        Self::TierUnlimited,
    ];

    fn parse(value: &str) -> Result<Self, InputError> {
        let wanted = value.trim().to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|tier| tier.as_str() == wanted)
            .ok_or_else(|| {
                InputError::new(
                    "messaging_limit_tier",
                    "must be one of TIER_50, TIER_250, TIER_1K, TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED",
                )
            })
    }

    /// The word Graph answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tier50 => "TIER_50",
            Self::Tier250 => "TIER_250",
            Self::Tier1K => "TIER_1K",
            Self::Tier2K => "TIER_2K",
            Self::Tier10K => "TIER_10K",
            Self::Tier100K => "TIER_100K",
            Self::TierUnlimited => "TIER_UNLIMITED",
        }
    }
}

/// A registered number, parsed: every field known to be well formed.
pub(crate) struct PhoneNumber {
    pub id: String,
    pub waba_id: String,
    pub display_phone_number: String,
    pub verified_name: String,
    pub quality_rating: QualityRating,
    pub messaging_limit_tier: MessagingLimitTier,
    pub access_token: SecretString,
    pub app_secret: SecretString,
    pub webhook_url: Option<Url>,
    pub enforce_service_window: bool,
    pub window_violation: WindowViolation,
    pub auto_statuses: Vec<MessageStatus>,
    pub auto_status_delay: Duration,
    pub status_order: StatusOrder,
    pub duplicate_statuses: u32,
    pub enforce_throughput: bool,
    pub throughput_per_second: u32,
    pub enforce_pair_rate: bool,
    pub pair_rate: PairRate,
    pub template_categories: BTreeMap<String, PricingCategory>,
    /// Unix seconds at which the token was declared expired; `None` while it is good.
    pub token_expired_at: Option<i64>,
    /// How long its media download URLs stay valid.
    pub media_url_ttl: Duration,
    /// Accepted sends of the last second.
    pub throughput: ThroughputWindow,
    /// Per recipient, when the pair limit lets the next send through.
    pub pairs: PairLimiter,
    pub counters: SendCounters,
    /// What `whatsapp_business_profile` shows; empty until set through Graph or seeded.
    pub business_profile: BusinessProfile,
}

impl PhoneNumber {
    pub fn parse(registration: PhoneNumberRegistration) -> Result<Self, InputError> {
        Ok(Self {
            id: parse_graph_id("phone_number_id", &registration.phone_number_id)?,
            waba_id: parse_graph_id("waba_id", &registration.waba_id)?,
            display_phone_number: parse_display_number(&registration.display_phone_number)?,
            verified_name: parse_verified_name(&registration.verified_name)?,
            quality_rating: QualityRating::parse(&registration.quality_rating)?,
            messaging_limit_tier: MessagingLimitTier::parse(&registration.messaging_limit_tier)?,
            access_token: parse_access_token(registration.access_token)?,
            app_secret: parse_app_secret(registration.app_secret)?,
            webhook_url: registration
                .webhook_url
                .as_deref()
                .map(parse_webhook_url)
                .transpose()?,
            enforce_service_window: registration.enforce_service_window,
            window_violation: registration.window_violation,
            auto_statuses: parse_auto_statuses(&registration.auto_statuses)?,
            auto_status_delay: parse_auto_status_delay(registration.auto_status_delay_ms)?,
            status_order: registration.status_order,
            duplicate_statuses: parse_duplicate_statuses(registration.duplicate_statuses)?,
            enforce_throughput: registration.enforce_throughput,
            throughput_per_second: parse_throughput(registration.throughput_per_second)?,
            enforce_pair_rate: registration.enforce_pair_rate,
            pair_rate: PairRate {
                per_minute: parse_pair_per_minute(registration.pair_per_minute)?,
                burst: parse_pair_burst(registration.pair_burst)?,
            },
            template_categories: parse_template_categories(&registration.template_categories)?,
            token_expired_at: None,
            media_url_ttl: parse_media_url_ttl(registration.media_url_ttl_ms)?,
            throughput: ThroughputWindow::default(),
            pairs: PairLimiter::default(),
            counters: SendCounters::default(),
            business_profile: BusinessProfile::default(),
        })
    }

    /// Applies every change or, when one is invalid, none.
    pub fn apply(&mut self, update: PhoneNumberUpdate) -> Result<(), InputError> {
        let waba_id = update
            .waba_id
            .map(|v| parse_graph_id("waba_id", &v))
            .transpose()?;
        let display = update
            .display_phone_number
            .map(|v| parse_display_number(&v))
            .transpose()?;
        let verified_name = update
            .verified_name
            .map(|v| parse_verified_name(&v))
            .transpose()?;
        let quality = update
            .quality_rating
            .map(|v| QualityRating::parse(&v))
            .transpose()?;
        let messaging_limit_tier = update
            .messaging_limit_tier
            .map(|v| MessagingLimitTier::parse(&v))
            .transpose()?;
        let access_token = update.access_token.map(parse_access_token).transpose()?;
        let app_secret = update.app_secret.map(parse_app_secret).transpose()?;
        let webhook_url = update
            .webhook_url
            .map(|url| url.as_deref().map(parse_webhook_url).transpose())
            .transpose()?;
        let auto_statuses = update
            .auto_statuses
            .as_deref()
            .map(parse_auto_statuses)
            .transpose()?;
        let auto_status_delay = update
            .auto_status_delay_ms
            .map(parse_auto_status_delay)
            .transpose()?;
        let duplicate_statuses = update
            .duplicate_statuses
            .map(parse_duplicate_statuses)
            .transpose()?;
        let throughput_per_second = update
            .throughput_per_second
            .map(parse_throughput)
            .transpose()?;
        let pair_per_minute = update
            .pair_per_minute
            .map(parse_pair_per_minute)
            .transpose()?;
        let pair_burst = update.pair_burst.map(parse_pair_burst).transpose()?;
        let template_categories = update
            .template_categories
            .as_ref()
            .map(parse_template_categories)
            .transpose()?;
        let media_url_ttl = update
            .media_url_ttl_ms
            .map(parse_media_url_ttl)
            .transpose()?;

        if let Some(v) = waba_id {
            self.waba_id = v;
        }
        if let Some(v) = display {
            self.display_phone_number = v;
        }
        if let Some(v) = verified_name {
            self.verified_name = v;
        }
        if let Some(v) = quality {
            self.quality_rating = v;
        }
        if let Some(v) = messaging_limit_tier {
            self.messaging_limit_tier = v;
        }
        if let Some(v) = access_token {
            self.access_token = v;
            // A new token is a good token, unless this same update expires it.
            self.token_expired_at = None;
        }
        if let Some(v) = app_secret {
            self.app_secret = v;
        }
        if let Some(v) = webhook_url {
            self.webhook_url = v;
        }
        if let Some(v) = update.enforce_service_window {
            self.enforce_service_window = v;
        }
        if let Some(v) = auto_statuses {
            self.auto_statuses = v;
        }
        if let Some(v) = auto_status_delay {
            self.auto_status_delay = v;
        }
        if let Some(v) = update.window_violation {
            self.window_violation = v;
        }
        if let Some(v) = update.status_order {
            self.status_order = v;
        }
        if let Some(v) = duplicate_statuses {
            self.duplicate_statuses = v;
        }
        if let Some(v) = update.enforce_throughput {
            self.enforce_throughput = v;
        }
        if let Some(v) = throughput_per_second {
            self.throughput_per_second = v;
        }
        if let Some(v) = update.enforce_pair_rate {
            self.enforce_pair_rate = v;
        }
        if let Some(v) = pair_per_minute {
            self.pair_rate.per_minute = v;
        }
        if let Some(v) = pair_burst {
            self.pair_rate.burst = v;
        }
        if let Some(v) = template_categories {
            self.template_categories = v;
        }
        if let Some(v) = media_url_ttl {
            self.media_url_ttl = v;
        }
        match update.token_expired {
            Some(true) => {
                self.token_expired_at.get_or_insert_with(payloads::unix_now);
            }
            Some(false) => self.token_expired_at = None,
            None => {}
        }
        Ok(())
    }

    pub fn has_access_token(&self, token: &str) -> bool {
        self.access_token.expose_secret() == token
    }

    pub fn view(&self) -> RegisteredPhoneNumber {
        RegisteredPhoneNumber {
            phone_number_id: self.id.clone(),
            waba_id: self.waba_id.clone(),
            display_phone_number: self.display_phone_number.clone(),
            verified_name: self.verified_name.clone(),
            quality_rating: self.quality_rating,
            messaging_limit_tier: self.messaging_limit_tier,
            webhook_url: self.webhook_url.as_ref().map(Url::to_string),
            enforce_service_window: self.enforce_service_window,
            window_violation: self.window_violation,
            auto_statuses: self.auto_statuses.clone(),
            auto_status_delay_ms: u64::try_from(self.auto_status_delay.as_millis())
                .unwrap_or(u64::MAX),
            status_order: self.status_order,
            duplicate_statuses: self.duplicate_statuses,
            enforce_throughput: self.enforce_throughput,
            throughput_per_second: self.throughput_per_second,
            enforce_pair_rate: self.enforce_pair_rate,
            pair_per_minute: self.pair_rate.per_minute,
            pair_burst: self.pair_rate.burst,
            template_categories: self.template_categories.clone(),
            token_expired: self.token_expired_at.is_some(),
            media_url_ttl_ms: u64::try_from(self.media_url_ttl.as_millis()).unwrap_or(u64::MAX),
            counters: self.counters,
        }
    }

    /// The pricing category this number's registration sets for a template, if it names it.
    pub fn template_category(&self, name: &str) -> Option<PricingCategory> {
        self.template_categories.get(name).copied()
    }
}

/// Graph object ids are decimal digits; anything else could never appear in a Meta path.
pub(crate) fn parse_graph_id(field: &str, value: &str) -> Result<String, InputError> {
    let value = value.trim();
    if value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InputError::new(
            field,
            "must be a Graph id: 1 to 32 digits, e.g. \"106540352242922\"",
        ));
    }
    Ok(value.to_owned())
}

fn parse_display_number(value: &str) -> Result<String, InputError> {
    let value = value.trim();
    let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    if !value.chars().any(|c| c.is_ascii_digit()) || !value.chars().all(allowed) {
        return Err(InputError::new(
            "display_phone_number",
            "must be a phone number: digits, optionally with + - ( ) . and spaces, e.g. \"15550783881\"",
        ));
    }
    Ok(value.to_owned())
}

fn parse_verified_name(value: &str) -> Result<String, InputError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(InputError::new("verified_name", "must not be empty"));
    }
    Ok(value.to_owned())
}

fn parse_access_token(value: String) -> Result<SecretString, InputError> {
    // The token travels in an Authorization header, so it must be one visible-ASCII word.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InputError::new(
            "access_token",
            "must be a non-empty token of visible ASCII characters without spaces",
        ));
    }
    Ok(SecretString::from(value))
}

fn parse_app_secret(value: String) -> Result<SecretString, InputError> {
    if value.is_empty() {
        return Err(InputError::new("app_secret", "must not be empty"));
    }
    Ok(SecretString::from(value))
}

fn parse_auto_statuses(values: &[String]) -> Result<Vec<MessageStatus>, InputError> {
    values
        .iter()
        .map(|value| MessageStatus::parse_automatic("auto_statuses", value))
        .collect()
}

fn parse_auto_status_delay(millis: u64) -> Result<Duration, InputError> {
    if millis > MAX_AUTO_STATUS_DELAY_MS {
        return Err(InputError::new(
            "auto_status_delay_ms",
            format!("must be at most {MAX_AUTO_STATUS_DELAY_MS} (10 minutes)"),
        ));
    }
    Ok(Duration::from_millis(millis))
}

fn parse_media_url_ttl(millis: u64) -> Result<Duration, InputError> {
    if millis > media::MAX_URL_TTL_MS {
        return Err(InputError::new(
            "media_url_ttl_ms",
            format!("must be at most {} (a day)", media::MAX_URL_TTL_MS),
        ));
    }
    Ok(Duration::from_millis(millis))
}

fn within(field: &str, value: u32, min: u32, max: u32, what: &str) -> Result<u32, InputError> {
    if !(min..=max).contains(&value) {
        return Err(InputError::new(
            field,
            format!("must be from {min} to {max}: {what}"),
        ));
    }
    Ok(value)
}

fn parse_duplicate_statuses(value: u32) -> Result<u32, InputError> {
    within(
        "duplicate_statuses",
        value,
        0,
        MAX_DUPLICATE_STATUSES,
        "extra copies of each automatic status",
    )
}

fn parse_throughput(value: u32) -> Result<u32, InputError> {
    within(
        "throughput_per_second",
        value,
        1,
        MAX_THROUGHPUT_PER_SECOND,
        "sends accepted per second",
    )
}

fn parse_pair_per_minute(value: u32) -> Result<u32, InputError> {
    within(
        "pair_per_minute",
        value,
        1,
        MAX_PAIR_PER_MINUTE,
        "sends per minute to one recipient",
    )
}

fn parse_pair_burst(value: u32) -> Result<u32, InputError> {
    within(
        "pair_burst",
        value,
        1,
        MAX_PAIR_BURST,
        "sends to one recipient allowed back to back",
    )
}

fn parse_template_categories(
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, PricingCategory>, InputError> {
    values
        .iter()
        .map(|(name, category)| {
            let field = format!("template_categories.{name}");
            if name.trim().is_empty() {
                return Err(InputError::new(field, "needs a template name as its key"));
            }
            Ok((
                name.clone(),
                PricingCategory::parse_template(&field, category)?,
            ))
        })
        .collect()
}

fn parse_webhook_url(value: &str) -> Result<Url, InputError> {
    let problem = "must be an absolute http:// or https:// URL, e.g. \"http://127.0.0.1:8080/webhooks/whatsapp\"";
    let url = Url::parse(value.trim()).map_err(|_| InputError::new("webhook_url", problem))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(InputError::new("webhook_url", problem));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes one part of a valid value invalid.
    type Spoil<T> = fn(&mut T);

    fn registration() -> PhoneNumberRegistration {
        PhoneNumberRegistration {
            phone_number_id: "106540352242922".into(),
            waba_id: "102290129340398".into(),
            display_phone_number: "15550783881".into(),
            verified_name: "Acme".into(),
            access_token: "EAAtoken".into(),
            app_secret: "secret".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_registration_parses() {
        let number = PhoneNumber::parse(registration());
        assert!(number.is_ok());
        assert_eq!(
            number.map(|n| n.quality_rating).ok(),
            Some(QualityRating::Green)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(&str, Spoil<PhoneNumberRegistration>); 8] = [
            ("phone_number_id", |r| r.phone_number_id = "abc".into()),
            ("waba_id", |r| r.waba_id = String::new()),
            ("display_phone_number", |r| {
                r.display_phone_number = "call me".into()
            }),
            ("verified_name", |r| r.verified_name = " ".into()),
            ("quality_rating", |r| r.quality_rating = "BLUE".into()),
            ("messaging_limit_tier", |r| {
                r.messaging_limit_tier = "TIER_5".into()
            }),
            ("access_token", |r| r.access_token = "two words".into()),
            ("webhook_url", |r| {
                r.webhook_url = Some("ftp://example.com".into())
            }),
        ];
        for (field, spoil) in cases {
            let mut bad = registration();
            spoil(&mut bad);
            let error = PhoneNumber::parse(bad).err();
            assert_eq!(error.map(|e| e.field), Some(field.to_owned()));
        }
    }

    #[test]
    fn an_update_with_one_bad_field_changes_nothing() {
        let Ok(mut number) = PhoneNumber::parse(registration()) else {
            panic!("the registration is valid");
        };
        let update = PhoneNumberUpdate {
            verified_name: Some("New name".into()),
            webhook_url: Some(Some("not a url".into())),
            ..Default::default()
        };
        assert!(number.apply(update).is_err());
        assert_eq!(number.verified_name, "Acme");
    }

    #[test]
    fn the_messaging_limit_tier_changes_by_update_in_any_case() {
        let Ok(mut number) = PhoneNumber::parse(registration()) else {
            panic!("the registration is valid");
        };
        let update = PhoneNumberUpdate {
            messaging_limit_tier: Some("tier_100k".into()),
            ..Default::default()
        };
        assert!(number.apply(update).is_ok());
        assert_eq!(number.messaging_limit_tier.as_str(), "TIER_100K");
        let bad = PhoneNumberUpdate {
            messaging_limit_tier: Some("TIER_3K".into()),
            ..Default::default()
        };
        assert_eq!(
            number.apply(bad).err().map(|e| e.field),
            Some("messaging_limit_tier".to_owned())
        );
        assert_eq!(number.messaging_limit_tier, MessagingLimitTier::Tier100K);
    }

    #[test]
    fn null_removes_the_webhook_url_and_absence_keeps_it() {
        let keep: PhoneNumberUpdate = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(keep.webhook_url, None);
        let remove: Result<PhoneNumberUpdate, _> = serde_json::from_str(r#"{"webhook_url":null}"#);
        assert_eq!(remove.ok().and_then(|u| u.webhook_url), Some(None));
    }

    #[test]
    fn a_token_stays_expired_until_cleared_or_replaced() {
        let Ok(mut number) = PhoneNumber::parse(registration()) else {
            panic!("the registration is valid");
        };
        let expire = PhoneNumberUpdate {
            token_expired: Some(true),
            ..Default::default()
        };
        assert!(number.apply(expire.clone()).is_ok());
        assert!(number.view().token_expired);
        let rename = PhoneNumberUpdate {
            verified_name: Some("Other".into()),
            ..Default::default()
        };
        assert!(number.apply(rename).is_ok());
        assert!(number.view().token_expired, "other changes keep it expired");
        let rotate = PhoneNumberUpdate {
            access_token: Some("EAAnew".into()),
            ..Default::default()
        };
        assert!(number.apply(rotate).is_ok());
        assert!(!number.view().token_expired, "a new token is good");
        assert!(number.apply(expire).is_ok());
        let clear = PhoneNumberUpdate {
            token_expired: Some(false),
            ..Default::default()
        };
        assert!(number.apply(clear).is_ok());
        assert!(!number.view().token_expired);
    }

    #[test]
    fn automatic_statuses_and_their_delay_are_checked() {
        let mut bad = registration();
        bad.auto_statuses = vec!["sent".into(), "failed".into()];
        assert_eq!(
            PhoneNumber::parse(bad).err().map(|e| e.field),
            Some("auto_statuses".to_owned())
        );
        let mut slow = registration();
        slow.auto_status_delay_ms = MAX_AUTO_STATUS_DELAY_MS + 1;
        assert_eq!(
            PhoneNumber::parse(slow).err().map(|e| e.field),
            Some("auto_status_delay_ms".to_owned())
        );
        let mut good = registration();
        good.auto_statuses = vec!["read".into(), "delivered".into()];
        let view = PhoneNumber::parse(good).map(|n| n.view());
        assert_eq!(
            view.map(|v| v.auto_statuses).ok(),
            Some(vec![MessageStatus::Read, MessageStatus::Delivered])
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let text = format!("{:?}", registration());
        assert!(
            !text.contains("EAAtoken") && !text.contains("secret\""),
            "{text}"
        );
    }

    #[test]
    fn limits_duplicates_and_template_categories_are_checked() {
        let cases: [(&str, Spoil<PhoneNumberRegistration>); 6] = [
            ("throughput_per_second", |r| r.throughput_per_second = 0),
            ("pair_per_minute", |r| r.pair_per_minute = 0),
            ("pair_burst", |r| r.pair_burst = 0),
            ("duplicate_statuses", |r| r.duplicate_statuses = 11),
            ("template_categories.promo", |r| {
                r.template_categories
                    .insert("promo".into(), "service".into());
            }),
            ("template_categories.", |r| {
                r.template_categories.insert(" ".into(), "utility".into());
            }),
        ];
        for (field, spoil) in cases {
            let mut bad = registration();
            spoil(&mut bad);
            let error = PhoneNumber::parse(bad).err();
            assert!(
                error.as_ref().is_some_and(|e| e.field.starts_with(field)),
                "{field}: {error:?}"
            );
        }
    }

    #[test]
    fn defaults_are_metas_and_named_templates_take_the_registered_category() {
        let mut registration = registration();
        registration
            .template_categories
            .insert("order_update".into(), "UTILITY".into());
        let Ok(number) = PhoneNumber::parse(registration) else {
            panic!("the registration is valid");
        };
        let view = number.view();
        assert_eq!(view.window_violation, WindowViolation::FailedStatus);
        assert_eq!(view.status_order, StatusOrder::InOrder);
        assert!(view.enforce_throughput && view.enforce_pair_rate);
        assert_eq!(
            (
                view.throughput_per_second,
                view.pair_per_minute,
                view.pair_burst
            ),
            (80, 10, 3)
        );
        assert_eq!(view.media_url_ttl_ms, 300_000, "Meta's 5 minutes");
        assert_eq!(view.messaging_limit_tier, MessagingLimitTier::Tier1K);
        assert_eq!(
            number.template_category("order_update"),
            Some(PricingCategory::Utility)
        );
        assert_eq!(number.template_category("spring_sale"), None);
    }
}
