//! Meta's WhatsApp Cloud API, and nothing else: typed webhook payloads, send requests, Graph error
//! codes and what each means, `X-Hub-Signature-256` signing and checking, and an async Graph client.
//!
//! No database and no web framework: a library anyone could use.
#![forbid(unsafe_code)]

pub mod signature;
