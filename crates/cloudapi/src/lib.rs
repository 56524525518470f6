//! Meta's WhatsApp Cloud API, and nothing else: typed webhook payloads, send requests, business
//! profiles, Graph error codes and what each means, `X-Hub-Signature-256` signing and checking, and an async Graph client.
//!
//! No database and no web framework: a library anyone could use.
#![forbid(unsafe_code)]

#[macro_use]
mod macros;

pub mod business_profile;
pub mod client;
pub mod error;
pub mod media;
pub mod phone_number;
pub mod send;
pub mod shared;
pub mod signature;
pub mod templates;
pub mod webhook;

pub use client::{GraphClient, GraphConfig, GraphError, MediaDownload};
pub use error::{ErrorClass, MetaError};
pub use webhook::Notification;
