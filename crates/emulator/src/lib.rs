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
//!   `GET /{version}/{phone_number_id}`; `POST /{version}/{phone_number_id}/messages` for sends
//!   and mark-as-read. Sends are checked as Meta checks them: 100 and 131009 for bad bodies, 130429
//!   over the number's throughput (`throughput_per_second`, a sliding one-second window), 131056
//!   over the pair rate to one recipient (`pair_per_minute`, `pair_burst`), and, outside the 24-hour
//!   window, by default accepted and then failed with a 131047 status webhook
//!   (`window_violation: "failed_status"`) or answered 400 / 131047 (`"reject"`). Every Graph call
//!   may be answered by a fault (by count or by `probability`) and is written to the call log.
//! - Status webhooks after a send (`auto_statuses`: sent, delivered, read, played for audio) carry
//!   `biz_opaque_callback_data` and PMP `pricing`, and can be delivered `reversed`, `shuffled` or
//!   duplicated (`status_order`, `duplicate_statuses`).
//! - Admin (JSON, no authentication, so never expose an emulator to the internet):
//!   `POST|GET /admin/phone-numbers`, `GET|PATCH /admin/phone-numbers/{id}` (with the number's send
//!   counters), `POST /admin/customers/messages`, `POST /admin/webhooks`, `POST /admin/statuses`,
//!   `GET /admin/deliveries`, `GET /admin/deliveries/{id}`, `GET /admin/sent-messages`,
//!   `GET /admin/read-receipts`, `POST|GET|DELETE /admin/faults`, `DELETE /admin/faults/{id}`,
//!   `GET /admin/calls`.
//!
//! Logs and indexes keep their newest [`RECORDS_KEPT`] entries, so long benchmarks stay bounded.
#![forbid(unsafe_code)]

mod admin;
mod calls;
mod config;
mod customers;
mod delivery;
mod error;
mod faults;
mod graph;
mod limits;
mod listener;
mod messaging;
pub mod payloads;
mod phone_numbers;
mod records;
mod server;
mod state;

pub use calls::{CallRecord, GraphEndpoint};
pub use config::{EmulatorConfig, RetryPolicy};
pub use customers::{CustomerMessage, InboundReceipt};
pub use delivery::{AttemptOutcome, DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus};
pub use error::{EmulatorError, InputError};
pub use faults::{
    ActiveFault, DEFAULT_TIMEOUT_DELAY_MS, FaultError, FaultId, FaultKind, FaultSpec,
};
pub use limits::SendCounters;
pub use messaging::{
    MessageStatus, PricingCategory, ReadReceipt, SERVICE_WINDOW_SECONDS, SentMessage,
};
pub use phone_numbers::{
    PhoneNumberRegistration, PhoneNumberUpdate, QualityRating, RegisteredPhoneNumber, StatusOrder,
    WindowViolation,
};
pub use records::RECORDS_KEPT;
pub use server::{RunningEmulator, run, start, start_on};
