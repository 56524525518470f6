//! wagate: a WhatsApp Cloud API gateway for many businesses.
//!
//! Webhooks are checked and stored durably before Meta gets its 200, then applied to contacts,
//! conversations and messages; a REST API and live events serve each tenant its own data only.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod assistant;
pub mod auth;
pub mod automation;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod contacts;
pub mod demo;
mod embedded;
pub mod hooks;
pub mod ids;
pub mod inbound;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod media;
pub mod outbound;
pub mod phone;
pub mod profile;
pub mod realtime;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod tenant_settings;
pub mod tenants;
pub mod ui;
pub mod validation;
pub mod vault;
pub mod views;
