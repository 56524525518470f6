//! The emulator's behaviour through real HTTP: one test binary, each test with its own emulator on
//! port 0 and, where webhooks are involved, its own receiver.

mod admin;
mod business_profile;
mod faults;
mod graph;
mod helpers;
mod lifecycle;
mod limits;
mod media;
mod messages;
mod statuses;
mod templates;
mod webhooks;
mod window;
