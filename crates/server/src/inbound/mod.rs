//! Inbound: webhook routes -> durable inbox (group commit) -> processor (parse, route, dedup, apply).

pub mod apply;
pub mod ingest;
pub mod keys;
pub mod processor;
pub mod routes;
