//! The application: state, router and background tasks, started together and stopped in one place.
//!
//! `Application::build` binds the listener (port 0 works, for tests) and prepares everything;
//! `run_until_stopped` serves until the shutdown future resolves, then stops taking requests,
//! lets the background tasks finish what they hold, and returns.

pub mod serve;
pub mod state;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderName, Request};
use cloudapi::{GraphClient, GraphConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::inbound::ingest::{Ingest, IngestConfig};
use crate::inbound::keys::ConnectionKeys;
use crate::inbound::processor::{Processor, ProcessorConfig};
use crate::jobs::RunnerConfig;
use crate::realtime::EventBus;
use crate::store::{Backend, PoolSizes, Store};
use crate::vault::Vault;
use state::AppState;

/// Connections whose key and app secret the webhook route keeps open at once (each for 5 s). A
/// platform's numbers all send within seconds of each other; below their count the cache
/// empties itself over and over and every webhook pays a database read and a decryption. An
/// entry is about 200 bytes, so this bound is about 20 MB.
const WEBHOOK_KEY_CACHE_CAPACITY: usize = 100_000;

/// Which parts run in this process.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Serve HTTP (webhooks, API).
    pub http: bool,
    /// Run the inbox processor and the job runner.
    pub workers: bool,
}

/// Tunables that tests and benchmarks change; the defaults are what production runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    pub ingest: Option<IngestConfig>,
    pub processor: Option<ProcessorConfig>,
    pub jobs: Option<RunnerConfig>,
    /// How long a client has to send a request head; `None` is [`serve::HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Option<Duration>,
}

pub struct Application {
    listener: Option<TcpListener>,
    state: AppState,
    roles: Roles,
    tuning: Tuning,
    ingest_tasks: Vec<JoinHandle<()>>,
    /// Stops the relay of live events between processes, last of all.
    relay_stop: CancellationToken,
}

impl Application {
    pub async fn build(settings: Settings, roles: Roles, tuning: Tuning) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url, PoolSizes::default())
            .await
            .with_context(|| {
                format!(
                    "cannot open the database ({})",
                    redact_url(settings.database_url.as_str())
                )
            })?;
        store
            .migrate()
            .await
            .context("cannot apply database migrations")?;
        let vault = Vault::load(
            settings.master_key.as_ref(),
            settings.previous_master_keys.as_ref(),
            &settings.data_dir,
        )?;
        let graph = GraphClient::new(GraphConfig {
            base_url: settings.graph_api_base.clone(),
            version: settings.graph_api_version.clone(),
            timeout: settings.graph_timeout,
            // Media of up to 100 MB; the job lease covers a fetch that outlives it (a second
            // fetch of the same file is harmless: it is kept by content hash).
            transfer_timeout: Duration::from_secs(10 * 60),
            connect_timeout: Duration::from_secs(5),
            user_agent: concat!("wagate/", env!("CARGO_PKG_VERSION")).to_owned(),
        })
        .context("cannot build the Graph API client")?;

        let listener = if roles.http {
            Some(
                TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", settings.listen))?,
            )
        } else {
            None
        };
        let public_url: Arc<str> = match (&settings.public_url_given, &listener) {
            (false, Some(listener)) => format!("http://{}", listener.local_addr()?).into(),
            _ => settings.public_url.clone().into(),
        };

        let limiter = crate::limits::RateLimiter::from_redis_url(settings.redis_url.as_deref())
            .await
            .context("cannot reach WAGATE_REDIS_URL")?;
        let inbox_wakeup = Arc::new(Notify::new());
        let mut ingest_config = tuning.ingest.unwrap_or_default();
        if tuning.ingest.is_none() && store.backend() == Backend::Postgres {
            ingest_config.committers = 4;
        }
        let (ingest, ingest_tasks) =
            Ingest::start(store.clone(), Arc::clone(&inbox_wakeup), ingest_config);
        let media: Arc<dyn crate::media::MediaStorage> = Arc::new(
            crate::media::LocalDirStorage::new(settings.data_dir.join("media")),
        );
        let hooks = crate::hooks::Hooks::new();
        let relay_stop = CancellationToken::new();
        let mut events = EventBus::new(1024).with_tap(hooks.tap());
        if let Some(redis_url) = settings.redis_url.as_deref() {
            events = events
                .with_relay(redis_url, relay_stop.clone())
                .context("cannot relay live events through WAGATE_REDIS_URL")?;
        }
        let state = AppState {
            settings: Arc::new(settings),
            store,
            vault: Arc::new(vault),
            graph,
            media,
            ingest,
            webhook_keys: Arc::new(ConnectionKeys::new(
                Duration::from_secs(5),
                WEBHOOK_KEY_CACHE_CAPACITY,
            )),
            limiter,
            events,
            hooks,
            inbox_wakeup,
            jobs_wakeup: Arc::new(Notify::new()),
            template_sync_locks: Arc::default(),
            public_url,
            metrics: metrics_handle(),
            model_client: crate::assistant::client::ModelClient::new()
                .context("cannot build the model client")?,
        };
        Ok(Self {
            listener,
            state,
            roles,
            tuning,
            ingest_tasks,
            relay_stop,
        })
    }

    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn router(state: AppState) -> Router {
        let request_id = HeaderName::from_static("x-request-id");
        // Uploads of up to 100 MB may take longer than any other request; they get their own bound.
        let uploads = crate::api::upload_router().layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(15 * 60),
        ));
        Router::new()
            .merge(crate::inbound::routes::router())
            .merge(crate::api::router())
            .merge(crate::ui::router())
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(30),
            ))
            .merge(uploads)
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                state,
                crate::api::rate_limit::limit_requests,
            ))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    // The path is logged without its query, and webhook keys are cut short.
                    let path = request.uri().path();
                    let path = match path.strip_prefix("/webhooks/whatsapp/") {
                        Some(key) => format!("/webhooks/whatsapp/{}…", key.get(..6).unwrap_or("")),
                        None => path.to_owned(),
                    };
                    tracing::info_span!("http", method = %request.method(), path = %path, tenant_id = tracing::field::Empty)
                }),
            )
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
            .layer(SetSensitiveRequestHeadersLayer::new([
                axum::http::header::AUTHORIZATION,
                axum::http::header::COOKIE,
            ]))
    }

    /// Serves until `shutdown` resolves, then stops in order: no new requests, in-flight requests
    /// finish, the ingest queue drains, background tasks end their current batch.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut background = Vec::new();
        // Every process publishes events, so every process records them for the endpoints.
        // It stops after the others, so the events of the work they finish are recorded too.
        let recorder_stop = CancellationToken::new();
        let recorder = tokio::spawn(crate::hooks::recorder::run(
            self.state.hooks.clone(),
            self.state.store.clone(),
            recorder_stop.clone(),
        ));
        if self.roles.workers {
            background.push(tokio::spawn(crate::hooks::deliver::run(
                self.state.store.clone(),
                Arc::clone(&self.state.vault),
                self.state.hooks.clone(),
                self.state.settings.hooks,
                stop.clone(),
            )));
            let processor = Processor::new(
                self.state.store.clone(),
                self.state.events.clone(),
                Arc::clone(&self.state.inbox_wakeup),
                Arc::clone(&self.state.jobs_wakeup),
                ProcessorConfig {
                    media_fetch_attempts: self.state.settings.media_fetch_attempts,
                    ..self.tuning.processor.unwrap_or_default()
                },
            );
            background.push(tokio::spawn(processor.run(stop.clone())));
            let jobs = self.tuning.jobs.unwrap_or(RunnerConfig {
                lease: self.state.settings.job_lease,
                ..RunnerConfig::default()
            });
            background.push(tokio::spawn(crate::jobs::run(
                self.state.clone(),
                jobs,
                stop.clone(),
            )));
            if let Some(interval) = self.state.settings.template_sync_interval {
                background.push(tokio::spawn(crate::templates::sync::run_periodic(
                    self.state.clone(),
                    interval,
                    stop.clone(),
                )));
            }
        }
        let serve_result = match self.listener {
            Some(listener) => {
                let app = Self::router(self.state.clone());
                let header_read_timeout = self
                    .tuning
                    .header_read_timeout
                    .unwrap_or(serve::HEADER_READ_TIMEOUT);
                serve::serve(listener, app, header_read_timeout, shutdown).await;
                Ok::<(), anyhow::Error>(())
            }
            None => {
                shutdown.await;
                Ok(())
            }
        };
        tracing::info!("shutting down");
        stop.cancel();
        let store = self.state.store.clone();
        // Dropping the last ingest handle lets the committers drain the queue and end.
        drop(self.state);
        for task in self.ingest_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        for task in background {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        recorder_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), recorder).await;
        self.relay_stop.cancel();
        store.close().await;
        serve_result
    }
}

/// One Prometheus recorder per process, however many applications a test starts.
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .clone()
}

/// A database URL fit for an error message: the password, if any, is replaced.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}
