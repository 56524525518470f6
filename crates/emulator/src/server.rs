//! Starting and stopping an emulator: bind, serve the Graph and admin routers, run the delivery
//! worker beside them, and shut both down in one place.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::middleware;
use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::business_profile::BusinessProfile;
use crate::calls::{CallRecord, GraphEndpoint};
use crate::config::{EmulatorConfig, RetryPolicy};
use crate::customers::{CustomerMessage, InboundReceipt};
use crate::delivery::{DeliveryId, DeliveryRecord, worker};
use crate::error::EmulatorError;
use crate::faults::{ActiveFault, FaultId, FaultSpec};
use crate::limits::SendCounters;
use crate::listener::{ConnectionCut, CuttableListener};
use crate::media::{MediaSeed, MediaView};
use crate::messaging::{MessageStatus, ReadReceipt, SentMessage};
use crate::phone_numbers::{PhoneNumberRegistration, PhoneNumberUpdate, RegisteredPhoneNumber};
use crate::state::EmulatorState;
use crate::templates::{
    QualityScore, ReviewPolicy, TemplateCategory, TemplateReview, TemplateSeed, TemplateView,
};
use crate::{admin, graph};

/// How long shutdown waits for open HTTP connections to finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// All routes: the admin API under `/admin`, Graph at the root, Meta's error for anything else; every
/// Graph call (unknown paths too) passes the fault and call-log layer first.
fn router(state: EmulatorState) -> Router {
    Router::new()
        .nest("/admin", admin::router())
        .merge(graph::router())
        .fallback(graph::unknown_path)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            graph::intercept::intercept,
        ))
        .with_state(state)
}

/// Binds `config.listen` and starts serving and delivering in the background.
pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
    start_on(listener, config.delivery)
}

/// Starts on a listener the caller bound already (for callers that must know the port first).
pub fn start_on(
    listener: TcpListener,
    delivery: RetryPolicy,
) -> Result<RunningEmulator, EmulatorError> {
    let local = listener.local_addr().map_err(EmulatorError::Serve)?;
    if !local.ip().is_loopback() {
        tracing::warn!(%local, "the emulator's admin API has no authentication; never expose it to the internet");
    }
    let client = worker::http_client(&delivery)?;
    let (stop, stopped) = watch::channel(false);
    let state = EmulatorState::new(
        delivery,
        base_url_of(local),
        tokio::runtime::Handle::current(),
        stopped.clone(),
    );

    let mut server_stop = stopped.clone();
    let app = router(state.clone()).into_make_service_with_connect_info::<ConnectionCut>();
    let server = tokio::spawn(async move {
        axum::serve(CuttableListener(listener), app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stopped| *stopped).await;
            })
            .await
    });
    let worker = tokio::spawn(worker::run(state.clone(), client, stopped));
    tracing::info!(base_url = %base_url_of(local), "emulator started");
    Ok(RunningEmulator {
        state,
        local,
        stop,
        server: Some(server),
        worker: Some(worker),
    })
}

/// Serves until `shutdown` resolves, for the `wagate emulator` command.
pub async fn run(
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EmulatorError> {
    let mut emulator = start(config).await?;
    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        // The server only ends by itself when it fails.
        result = emulator.server_ended() => result,
    };
    emulator.stop().await;
    outcome
}

/// A started emulator. Dropping it stops the server and the worker too; [`RunningEmulator::shutdown`]
/// also waits for them.
pub struct RunningEmulator {
    state: EmulatorState,
    local: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`: the Graph base URL and the admin API's host.
    pub fn base_url(&self) -> String {
        base_url_of(self.local)
    }

    /// The address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Registers a business number, as `POST /admin/phone-numbers` does.
    pub fn register_phone_number(
        &self,
        registration: PhoneNumberRegistration,
    ) -> Result<RegisteredPhoneNumber, EmulatorError> {
        self.state.register_phone_number(registration)
    }

    /// Changes a registered number, as `PATCH /admin/phone-numbers/{id}` does; setting a webhook URL
    /// sends the deliveries that waited for one.
    pub fn update_phone_number(
        &self,
        phone_number_id: &str,
        update: PhoneNumberUpdate,
    ) -> Result<RegisteredPhoneNumber, EmulatorError> {
        self.state.update_phone_number(phone_number_id, update)
    }

    /// Every registered number, without secrets.
    pub fn phone_numbers(&self) -> Vec<RegisteredPhoneNumber> {
        self.state.phone_numbers()
    }

    /// One registered number with its settings and send counters, as
    /// `GET /admin/phone-numbers/{id}` shows it; `None` when it is not registered.
    pub fn phone_number(&self, phone_number_id: &str) -> Option<RegisteredPhoneNumber> {
        self.state.phone_number(phone_number_id)
    }

    /// The number's WhatsApp Business Profile as Meta holds it (what
    /// `GET /{version}/{phone_number_id}/whatsapp_business_profile` shows); `None` when the number
    /// is not registered.
    pub fn business_profile(&self, phone_number_id: &str) -> Option<BusinessProfile> {
        self.state.business_profile(phone_number_id)
    }

    /// Replaces the number's whole business profile, without Meta's checks, so a test can start
    /// from a profile Meta already holds.
    pub fn set_business_profile(
        &self,
        phone_number_id: &str,
        profile: BusinessProfile,
    ) -> Result<(), EmulatorError> {
        self.state.set_business_profile(phone_number_id, profile)
    }

    /// How the number's sends went so far: accepted, refused by throughput, pair rate or window,
    /// and failed outside the window; `None` when it is not registered.
    pub fn send_counters(&self, phone_number_id: &str) -> Option<SendCounters> {
        self.state.send_counters(phone_number_id)
    }

    /// A customer writes: the webhook is built and queued, and delivered in the background.
    pub async fn customer_writes(
        &self,
        message: CustomerMessage,
    ) -> Result<InboundReceipt, EmulatorError> {
        self.state.customer_writes(message)
    }

    /// Signs and delivers any body as is (batches, statuses, echoes, template updates).
    pub async fn deliver_raw(
        &self,
        phone_number_id: &str,
        body: serde_json::Value,
    ) -> Result<DeliveryId, EmulatorError> {
        self.state.deliver_json(phone_number_id, &body)
    }

    /// Messages the business sent through Graph, oldest first; one number's, or all when `None`.
    pub fn sent_messages(&self, phone_number_id: Option<&str>) -> Vec<SentMessage> {
        self.state.sent_messages(phone_number_id)
    }

    /// Mark-as-read calls accepted, oldest first; one number's, or all when `None`.
    pub fn read_receipts(&self, phone_number_id: Option<&str>) -> Vec<ReadReceipt> {
        self.state.read_receipts(phone_number_id)
    }

    /// Delivers one status webhook about a message the number sent, as `POST /admin/statuses` does.
    /// A `failed` status without `errors` (a JSON array) carries Meta's 131026.
    pub async fn deliver_status(
        &self,
        phone_number_id: &str,
        wamid: &str,
        status: MessageStatus,
        errors: Option<Value>,
    ) -> Result<DeliveryId, EmulatorError> {
        self.state
            .deliver_status(phone_number_id, wamid, status, errors)
    }

    /// Switches a fault on, as `POST /admin/faults` does.
    pub fn add_fault(&self, fault: FaultSpec) -> Result<FaultId, EmulatorError> {
        self.state.add_fault(fault)
    }

    /// The faults still active, oldest first, with the calls each will still answer.
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.state.faults()
    }

    /// Switches one fault off before it has answered all its calls.
    pub fn remove_fault(&self, id: FaultId) -> Result<(), EmulatorError> {
        self.state.remove_fault(id)
    }

    /// Switches every fault off.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Graph calls answered so far (admin calls are not counted), oldest first; optionally only
    /// one number's or one endpoint's.
    pub fn calls(
        &self,
        phone_number_id: Option<&str>,
        endpoint: Option<GraphEndpoint>,
    ) -> Vec<CallRecord> {
        self.state.calls(phone_number_id, endpoint)
    }

    /// Creates a template directly, as `POST /admin/templates` does: no review and no webhook.
    pub fn add_template(&self, seed: TemplateSeed) -> Result<TemplateView, EmulatorError> {
        self.state.add_template(seed)
    }

    /// One account's templates in creation order (Meta's sample `hello_world` first).
    pub fn templates(&self, waba_id: &str) -> Vec<TemplateView> {
        self.state.templates(Some(waba_id))
    }

    /// One template, if it exists.
    pub fn template(&self, id: &str) -> Option<TemplateView> {
        self.state.template(id)
    }

    /// Deletes a template, as `DELETE /admin/templates/{id}` does; its view as it was.
    pub fn delete_template(&self, id: &str) -> Result<TemplateView, EmulatorError> {
        self.state.delete_template(id)
    }

    /// Reviews a template as `POST /admin/templates/{id}/review` does: its status changes (after
    /// `delay_ms`, if given) and a `message_template_status_update` webhook goes to the account's
    /// numbers. The view is the template as it is when this returns.
    pub fn review_template(
        &self,
        id: &str,
        review: TemplateReview,
    ) -> Result<TemplateView, EmulatorError> {
        self.state.review_template(id, review)
    }

    /// Sets how the account's templates created through Graph are reviewed, as
    /// `PUT /admin/wabas/{waba_id}/template-review` does.
    pub fn set_template_review(
        &self,
        waba_id: &str,
        policy: ReviewPolicy,
    ) -> Result<ReviewPolicy, EmulatorError> {
        self.state.set_template_review(waba_id, policy)
    }

    /// Sets a template's quality score and sends `message_template_quality_update`, as
    /// `POST /admin/templates/{id}/quality` does.
    pub fn update_template_quality(
        &self,
        id: &str,
        score: QualityScore,
    ) -> Result<TemplateView, EmulatorError> {
        self.state.update_template_quality(id, score)
    }

    /// Sets a template's category and sends `template_category_update`, as
    /// `POST /admin/templates/{id}/category` does.
    pub fn update_template_category(
        &self,
        id: &str,
        category: TemplateCategory,
    ) -> Result<TemplateView, EmulatorError> {
        self.state.update_template_category(id, category)
    }

    /// Stores a file as a number's media, as `POST /admin/media` does (no upload checks).
    pub fn add_media(&self, seed: MediaSeed) -> Result<MediaView, EmulatorError> {
        self.state.add_media(seed)
    }

    /// One media object without its bytes, if it exists.
    pub fn media(&self, id: &str) -> Option<MediaView> {
        self.state.media(id)
    }

    /// Media in creation order, one number's or every number's.
    pub fn media_list(&self, phone_number_id: Option<&str>) -> Vec<MediaView> {
        self.state.media_list(phone_number_id)
    }

    /// The bytes of a media object, shared rather than copied.
    pub fn media_content(&self, id: &str) -> Option<Bytes> {
        self.state.media_content(id)
    }

    /// Makes every download URL handed out for the media so far expire now, as
    /// `POST /admin/media/{id}/expire-urls` does; how many were still valid.
    pub fn expire_media_urls(&self, id: &str) -> Result<usize, EmulatorError> {
        self.state.expire_media_urls(id)
    }

    /// Every delivery kept (see [`DeliveryRecord`]) with its attempts, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.state.deliveries()
    }

    /// One delivery, if it exists.
    pub fn delivery(&self, id: DeliveryId) -> Option<DeliveryRecord> {
        self.state.delivery(id)
    }

    /// Waits until the delivery got a 200; fails if it failed for good or `timeout` passed first.
    pub async fn wait_delivered(
        &self,
        id: DeliveryId,
        timeout: Duration,
    ) -> Result<DeliveryRecord, EmulatorError> {
        self.state.wait_delivered(id, timeout).await
    }

    /// Stops serving and delivering, and waits for both to end.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        self.stop.send_replace(true);
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::error!(%error, "the emulator's server failed"),
                Ok(Err(join_error)) => {
                    tracing::error!(%join_error, "the emulator's server task failed")
                }
                Err(_) => {
                    tracing::warn!(
                        "open connections outlived the shutdown grace period; closing them"
                    );
                    server.abort();
                }
            }
        }
        if let Some(worker) = self.worker.take()
            && let Err(join_error) = worker.await
        {
            tracing::error!(%join_error, "the delivery worker failed");
        }
    }

    /// Resolves when the server task ends by itself, which it does only on failure.
    async fn server_ended(&mut self) -> Result<(), EmulatorError> {
        let Some(server) = self.server.as_mut() else {
            return std::future::pending().await;
        };
        let result = server.await;
        self.server = None;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(EmulatorError::Serve(error)),
            Err(join_error) => Err(EmulatorError::Serve(std::io::Error::other(join_error))),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        // Tells the tasks to stop even when the owner forgot to call `shutdown`.
        self.stop.send_replace(true);
    }
}

/// A wildcard listen address is reachable on loopback, so that is the URL callers get.
fn base_url_of(local: SocketAddr) -> String {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, local.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_gives_a_loopback_url() {
        assert_eq!(
            base_url_of(
                "0.0.0.0:8080"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0; 4], 0)))
            ),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url_of(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 9))),
            "http://[::1]:9"
        );
        assert_eq!(
            base_url_of(SocketAddr::from((Ipv4Addr::LOCALHOST, 1))),
            "http://127.0.0.1:1"
        );
    }
}
