//! Behaviour tests through the real HTTP server, each on SQLite and (when available) PostgreSQL.

#[macro_use]
mod helpers;

mod assistant;
mod browser;
mod connections;
mod contacts;
mod dashboard;
mod ingest;
mod media;
mod openapi;
mod outbound;
mod profile;
mod rate_limit;
mod reads;
mod scheduled;
mod security;
mod sequences;
mod settings;
mod templates;
mod webhook_endpoints;
