//! wagate: a WhatsApp Cloud API gateway for many businesses.
//!
//! Webhooks are checked and stored durably before Meta gets its 200, then applied to contacts,
//! conversations and messages; a REST API and live events serve each tenant its own data only.
#![forbid(unsafe_code)]

pub mod auth;
pub mod clock;
pub mod config;
pub mod ids;
pub mod store;
pub mod vault;
