//! Behaviour tests through the real HTTP server, each on SQLite and (when available) PostgreSQL.

#[macro_use]
mod helpers;

mod connections;
mod ingest;
mod outbound;
mod reads;
mod security;
