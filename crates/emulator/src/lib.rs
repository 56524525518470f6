//! A faithful stand-in for Meta's WhatsApp Cloud API, over real HTTP: the Graph endpoints wagate
//! calls, signed webhook delivery with Meta's retry behaviour, and simulated customers.
//!
//! wagate's tests, its demo and its benchmarks start one with [`start`] (or `wagate emulator`, which
//! wraps [`run`]), register a business number, make customers write, and point wagate's Graph base
//! URL at [`RunningEmulator::base_url`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), emulator::EmulatorError> {
//! use emulator::{CustomerMessage, EmulatorConfig, PhoneNumberRegistration};
//!
//! let meta = emulator::start(EmulatorConfig::for_tests()).await?;
//! meta.register_phone_number(PhoneNumberRegistration {
//!     phone_number_id: "106540352242922".into(),
//!     waba_id: "102290129340398".into(),
//!     display_phone_number: "15550783881".into(),
//!     verified_name: "Acme".into(),
//!     access_token: "EAAtoken".into(),
//!     app_secret: "app-secret".into(),
//!     webhook_url: Some("http://127.0.0.1:8080/webhooks/whatsapp".into()),
//!     ..Default::default()
//! })?;
//! let receipt = meta
//!     .customer_writes(CustomerMessage::text("106540352242922", "16505551234", "hi"))
//!     .await?;
//! meta.wait_delivered(receipt.delivery_id, std::time::Duration::from_secs(5)).await?;
//! meta.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! HTTP surface:
//! - Graph, with `Authorization: Bearer <token>` and Meta's error envelopes (190 for a bad token,
//!   190/463 for an expired one, 100/33 for an unknown object, 2500 for an unknown path):
//!   `GET /{version}/{phone_number_id}` (with `whatsapp_business_manager_messaging_limit`, the
//!   number's `messaging_limit_tier`, when `fields=` asks for it);
//!   `GET|POST /{version}/{phone_number_id}/whatsapp_business_profile` (the profile is kept per
//!   number, starts empty, and a `POST` is checked against Meta's limits, else 100);
//!   `POST /{version}/{phone_number_id}/messages` for sends and mark-as-read. Sends are checked as Meta checks them: 100 and 131009 for bad bodies;
//!   templates against the account's stored ones (132001 for no approved template of that name and
//!   language, 132015 paused, 132016 disabled, 132000 for parameters that do not match the
//!   components, 132012 for a parameter of the wrong type); media sent by `id` must be the sending
//!   number's (else 131053); 130429 over the number's throughput (`throughput_per_second`, a
//!   sliding one-second window), 131056 over the pair rate to one recipient (`pair_per_minute`,
//!   `pair_burst`), and, outside the 24-hour window, by default accepted and then failed with a
//!   131047 status webhook (`window_violation: "failed_status"`) or answered 400 / 131047
//!   (`"reject"`). Every Graph call may be answered by a fault (by count or by `probability`) and
//!   is written to the call log.
//! - Media: `POST /{version}/{phone_number_id}/media` (multipart `messaging_product`, `file`,
//!   `type`?; Meta's types and sizes, else 131053) answers `{"id"}`; `GET /{version}/{media_id}`
//!   answers its `url`, `mime_type`, `sha256` (hex) and `file_size`, with a fresh URL each time
//!   that expires after the number's `media_url_ttl_ms` (Meta's 5 minutes by default);
//!   `DELETE /{version}/{media_id}`. `GET /media-download/{key}` (the URL handed out) needs the
//!   owner number's bearer token (else 401) and answers 404 once expired; it is the call log's
//!   and the faults' `media_download` endpoint.
//! - Templates, per WhatsApp Business Account (each gets Meta's approved `hello_world` sample when
//!   its first number is registered): `GET /{version}/{waba_id}/message_templates` with `limit`
//!   (25, at most 100), `after` / `before` cursors, `fields` and the filters `name`, `status`,
//!   `category`, `language`, answered with Meta's `paging` (`next` only while more remain);
//!   `POST` stores a template `PENDING` (100 for what Meta refuses, 100/2388024 for a name and
//!   language the account has) and the account's review policy then approves or rejects it, or
//!   it waits for a review through the admin API; `DELETE ?name=&hsm_id=`.
//! - Webhooks: customer messages, status webhooks after a send (`auto_statuses`: sent, delivered,
//!   read, played for audio) carrying `biz_opaque_callback_data` and PMP `pricing` in the
//!   template's stored category, delivered `reversed`, `shuffled` or duplicated (`status_order`,
//!   `duplicate_statuses`); and `message_template_status_update`,
//!   `message_template_quality_update` and `template_category_update`, once to each distinct
//!   webhook (URL and app secret) of the account's numbers.
//! - Admin (JSON, no authentication, so never expose an emulator to the internet):
//!   `POST|GET /admin/phone-numbers`, `GET|PATCH /admin/phone-numbers/{id}` (with the number's send
//!   counters), `POST /admin/customers/messages` (media types may carry the file as base64 `data`
//!   and `mime_type`: it becomes the number's media and the webhook carries its id and base64
//!   `sha256`), `POST /admin/webhooks`, `POST /admin/statuses`, `GET /admin/deliveries`,
//!   `GET /admin/deliveries/{id}`, `GET /admin/sent-messages`, `GET /admin/read-receipts`,
//!   `POST|GET|DELETE /admin/faults`, `DELETE /admin/faults/{id}`, `GET /admin/calls`;
//!   `POST|GET /admin/templates` (`?waba_id=`), `GET|DELETE /admin/templates/{id}`,
//!   `POST /admin/templates/{id}/review` (`{"status","reason"?,"delay_ms"?}`),
//!   `POST /admin/templates/{id}/quality` (`{"score"}`), `POST /admin/templates/{id}/category`
//!   (`{"category"}`), `PUT /admin/wabas/{waba_id}/template-review`
//!   (`{"decision":"manual"|"approve"|"reject","delay_ms"?,"reason"?}`); `POST|GET /admin/media`
//!   (`?phone_number_id=`), `GET|DELETE /admin/media/{id}`, `GET /admin/media/{id}/content`,
//!   `POST /admin/media/{id}/expire-urls`.
//!
//! Logs and indexes keep their newest [`RECORDS_KEPT`] entries, so long benchmarks stay bounded;
//! templates and media are kept until deleted, and download URLs until they expire.
#![forbid(unsafe_code)]

mod admin;
mod business_profile;
mod calls;
mod config;
mod customers;
mod delivery;
mod error;
mod faults;
mod graph;
mod limits;
mod listener;
mod media;
mod messaging;
pub mod model;
pub mod payloads;
mod phone_numbers;
mod records;
mod server;
mod state;
mod templates;

pub use business_profile::BusinessProfile;
pub use calls::{CallRecord, GraphEndpoint};
pub use config::{EmulatorConfig, RetryPolicy};
pub use customers::{CustomerMessage, InboundReceipt};
pub use delivery::{AttemptOutcome, DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus};
pub use error::{EmulatorError, InputError};
pub use faults::{
    ActiveFault, DEFAULT_TIMEOUT_DELAY_MS, FaultError, FaultId, FaultKind, FaultSpec,
};
pub use limits::SendCounters;
pub use media::{MediaSeed, MediaView};
pub use messaging::{
    MessageStatus, PricingCategory, ReadReceipt, SERVICE_WINDOW_SECONDS, SentMessage,
};
pub use model::{FakeModel, ModelBehaviour};
pub use phone_numbers::{
    MessagingLimitTier, PhoneNumberRegistration, PhoneNumberUpdate, QualityRating,
    RegisteredPhoneNumber, StatusOrder, WindowViolation,
};
pub use records::RECORDS_KEPT;
pub use server::{RunningEmulator, run, start, start_on};
pub use templates::{
    ParameterFormat, QualityScore, ReviewDecision, ReviewPolicy, TemplateCategory, TemplateQuality,
    TemplateReview, TemplateSeed, TemplateStatus, TemplateView,
};
