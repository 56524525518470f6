//! What can go wrong when a caller drives the emulator in process; the admin API turns these into JSON.

use std::net::SocketAddr;

use crate::delivery::{DeliveryId, DeliveryRecord};
use crate::faults::FaultId;

/// A value a caller gave that the emulator cannot accept, naming the field and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct InputError {
    /// The field at fault, as spelled in the JSON the admin API takes.
    pub field: String,
    /// What is wrong with it and what would be right, e.g. "must be digits only".
    pub problem: String,
}

impl InputError {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Errors of the emulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client used for webhook delivery could not be built.
    #[error("cannot build the webhook delivery client")]
    HttpClient(#[source] reqwest::Error),
    /// The HTTP server stopped with an error.
    #[error("the emulator's HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// A registration, update or message was not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InputError),
    /// No phone number with this id has been registered.
    #[error("no phone number with id {0} is registered")]
    UnknownPhoneNumber(String),
    /// A phone number with this id is registered already; update it instead.
    #[error("a phone number with id {0} is registered already; update it instead")]
    PhoneNumberAlreadyRegistered(String),
    /// No delivery has this id.
    #[error("no delivery has id {0}")]
    UnknownDelivery(DeliveryId),
    /// The number sent no message with this wamid (or it is older than the records kept).
    #[error("phone number {phone_number_id} sent no message with wamid {wamid}")]
    UnknownMessage {
        phone_number_id: String,
        wamid: String,
    },
    /// No template has this id.
    #[error("no template has id {0}")]
    UnknownTemplate(String),
    /// The account has a template of this name in this language already.
    #[error("account {waba_id} has a template {name} in {language} already")]
    TemplateAlreadyExists {
        waba_id: String,
        name: String,
        language: String,
    },
    /// No media object has this id (it may have been deleted).
    #[error("no media has id {0}")]
    UnknownMedia(String),
    /// A media object with this id exists already.
    #[error("a media object with id {0} exists already")]
    MediaAlreadyExists(String),
    /// No active fault has this id; it may have answered its last call already.
    #[error("no active fault has id {0}")]
    UnknownFault(FaultId),
    /// Every attempt allowed by the retry policy failed.
    #[error("delivery {} failed after {} attempts", .0.id, .0.attempts.len())]
    DeliveryFailed(Box<DeliveryRecord>),
    /// The delivery was still not done when the wait ended; the record shows how far it got.
    #[error("delivery {} was not delivered in time ({} attempts so far)", .0.id, .0.attempts.len())]
    WaitTimedOut(Box<DeliveryRecord>),
}
