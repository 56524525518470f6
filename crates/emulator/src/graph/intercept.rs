//! Every Graph call passes through here: it is sorted by endpoint and number, answered by a fault
//! when one matches (an error, a bare status, a dropped connection, or the normal answer late), and
//! written to the call log. Admin calls pass straight through.
//!
//! Each call is handled on its own task, so a client that gives up (a timeout) does not stop it:
//! as with Meta, a send the client stopped waiting for may still go out, and the call is still logged.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{GraphError, access_token};
use crate::calls::{CallRecord, GraphEndpoint, GraphPath, parse_graph_path};
use crate::faults::{FaultAction, FaultAnswer, FaultId};
use crate::listener::ConnectionCut;
use crate::state::{EmulatorState, World};

/// When a Graph call's request arrived, before any of the emulator's own work: limits count
/// arrivals, as Meta's edge would, so the emulator's busy moments are not charged to the sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrived(pub Instant);

/// The most a delayed call's body is read ahead: the largest upload Graph takes.
const MAX_BUFFERED_BODY: usize = super::media::MAX_UPLOAD_BODY;

/// How a call ended, for the log and for the connection.
enum Ending {
    Answered(Response),
    /// The connection is to be closed without an answer.
    Cut,
}

pub(crate) async fn intercept(
    State(state): State<EmulatorState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/admin" || path.starts_with("/admin/") {
        return next.run(request).await;
    }
    let started = Instant::now();
    let received_at = SystemTime::now();
    let method = request.method().to_string();
    let path = path.to_owned();
    let query = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .map(|Query(query)| query)
        .unwrap_or_default();
    let token = access_token(
        request.headers(),
        query.get("access_token").map(String::as_str),
    );
    let queried_number = query.get("phone_number_id").map(String::as_str);

    let (endpoint, phone_number_id, fault) = {
        let mut world = state.world();
        let (endpoint, phone_number_id) = classify(&world, &path, token, queried_number);
        let fault = world.faults.take(phone_number_id.as_deref(), endpoint);
        (endpoint, phone_number_id, fault)
    };
    let cut = request
        .extensions()
        .get::<ConnectInfo<ConnectionCut>>()
        .map(|ConnectInfo(cut)| cut.clone());

    let mut request = request;
    request.extensions_mut().insert(Arrived(started));
    let handling = tokio::spawn({
        let state = state.clone();
        async move {
            let fault_id = fault.as_ref().map(|(id, _)| *id);
            let ending = answer(fault, request, next).await;
            state.record_call(CallRecord {
                method,
                path,
                endpoint,
                phone_number_id,
                http_status: match &ending {
                    Ending::Answered(response) => Some(response.status().as_u16()),
                    Ending::Cut => None,
                },
                fault_id,
                received_at,
                duration: started.elapsed(),
            });
            ending
        }
    });
    match handling.await {
        Ok(Ending::Answered(response)) => response,
        Ok(Ending::Cut) => match cut {
            Some(cut) => {
                cut.cut();
                // Never written: the connection fails before hyper can send it.
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONNECTION, "close")],
                )
                    .into_response()
            }
            None => {
                tracing::warn!(
                    "a drop_connection fault matched a call on a connection that cannot be cut"
                );
                StatusCode::BAD_GATEWAY.into_response()
            }
        },
        Err(join_error) => {
            tracing::error!(%join_error, "a Graph call's task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The fault's answer if it has one, else the normal answer (late, if the fault delays).
async fn answer(fault: Option<(FaultId, FaultAnswer)>, request: Request, next: Next) -> Ending {
    let Some((fault_id, fault)) = fault else {
        return Ending::Answered(next.run(request).await);
    };
    tracing::debug!(%fault_id, "a fault answers this Graph call");
    let handles_call = matches!(
        fault.action,
        FaultAction::Proceed | FaultAction::Drop { accept_first: true }
    );
    let request = match fault.delay {
        Some(delay) => {
            // Read while the client is still there: it may give up during the delay, and the call
            // must still be handled in full afterwards, as Meta handles a send whose client timed out.
            let request = if handles_call {
                buffered(request).await
            } else {
                request
            };
            tokio::time::sleep(delay).await;
            request
        }
        None => request,
    };
    match fault.action {
        FaultAction::Proceed => Ending::Answered(next.run(request).await),
        FaultAction::Drop { accept_first } => {
            if accept_first {
                // The call is handled (a send accepted) and its answer lost with the connection.
                drop(next.run(request).await);
            }
            Ending::Cut
        }
        FaultAction::Error { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            Ending::Answered(GraphError::new(status, body).into_response())
        }
        FaultAction::Bare { status } => Ending::Answered(
            StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
        ),
    }
}

/// The request with its body read into memory, so it no longer depends on the connection.
async fn buffered(request: Request) -> Request {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BUFFERED_BODY).await {
        Ok(bytes) => bytes,
        Err(error) => {
            // The handler then sees an empty body and answers as Graph does to one.
            tracing::warn!(%error, "a delayed call's body could not be read");
            Bytes::new()
        }
    };
    Request::from_parts(parts, Body::from(bytes))
}

/// Which endpoint a call went to and which registered number it was about.
fn classify(
    world: &World,
    path: &str,
    token: Option<&str>,
    queried_number: Option<&str>,
) -> (GraphEndpoint, Option<String>) {
    let is_number = |id: &str| world.phone_numbers.contains_key(id);
    let owner_of_media = |id: &str| world.media.get(id).map(|m| m.phone_number_id.as_str());
    let (endpoint, path_number) = match parse_graph_path(path) {
        GraphPath::Node(id) if is_number(id) => (GraphEndpoint::PhoneNumber, Some(id)),
        GraphPath::Node(id) if world.is_waba(id) => (GraphEndpoint::Other, None),
        GraphPath::Node(id) => (GraphEndpoint::Media, owner_of_media(id)),
        GraphPath::Edge { id, endpoint } => (endpoint, Some(id)),
        GraphPath::MediaDownload(key) => (
            GraphEndpoint::MediaDownload,
            world
                .media
                .url(key)
                .and_then(|url| owner_of_media(&url.media_id)),
        ),
        GraphPath::Other => (GraphEndpoint::Other, None),
    };
    let phone_number_id = path_number
        .filter(|id| is_number(id))
        .or_else(|| queried_number.filter(|id| is_number(id)))
        .map(str::to_owned)
        .or_else(|| {
            let token = token?;
            world.numbers_with_token(token).next().map(|n| n.id.clone())
        });
    (endpoint, phone_number_id)
}
