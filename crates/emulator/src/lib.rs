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
//!   (checked as Meta checks them: 100, 131009, and 131047 outside the 24-hour window) and
//!   mark-as-read. Every Graph call may be answered by a fault and is written to the call log.
//! - Admin (JSON, no authentication, so never expose an emulator to the internet):
//!   `POST|GET /admin/phone-numbers`, `GET|PATCH /admin/phone-numbers/{id}`,
//!   `POST /admin/customers/messages`, `POST /admin/webhooks`, `POST /admin/statuses`,
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
pub use faults::{ActiveFault, FaultError, FaultId, FaultKind, FaultSpec};
pub use messaging::{MessageStatus, ReadReceipt, SERVICE_WINDOW_SECONDS, SentMessage};
pub use phone_numbers::{
    PhoneNumberRegistration, PhoneNumberUpdate, QualityRating, RegisteredPhoneNumber,
};
pub use records::RECORDS_KEPT;
pub use server::{RunningEmulator, run, start, start_on};
