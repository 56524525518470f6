//! A whole wagate (API and workers) running inside this process, with the project's Cloud API
//! emulator playing Meta: what `wagate demo` and the bench commands run.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use emulator::{EmulatorConfig, RetryPolicy, RunningEmulator};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{Application, Roles, Tuning};
use crate::config::Settings;
use crate::store::Store;

/// How long a stopping server may take to finish what it is doing.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the emulator on a free local port, runs `body` with it, and shuts the emulator down
/// however `body` ended.
pub(crate) async fn with_emulator<T>(
    delivery: RetryPolicy,
    body: impl AsyncFnOnce(&RunningEmulator) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let meta = emulator::start(EmulatorConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        delivery,
    })
    .await
    .context("cannot start the Cloud API emulator")?;
    let outcome = body(&meta).await;
    meta.shutdown().await;
    outcome
}

/// The server and its workers, on a task of this process.
pub(crate) struct EmbeddedServer {
    pub addr: SocketAddr,
    pub store: Store,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl EmbeddedServer {
    pub(crate) async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = Application::build(
            settings,
            Roles {
                http: true,
                workers: true,
            },
            Tuning::default(),
        )
        .await?;
        let addr = app
            .local_addr()
            .context("the server did not bind an address")?;
        let store = app.state().store.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            store,
            stop,
            task,
        })
    }

    /// Stops taking requests, lets in-flight work finish (within a bound) and answers how the
    /// server ended.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(anyhow::anyhow!("the server task failed: {join_error}")),
            Err(_) => Err(anyhow::anyhow!(
                "the server did not stop within {SHUTDOWN_TIMEOUT:?}"
            )),
        }
    }

    /// Stops the server; a failure to stop cleanly is logged, not returned, for callers whose own
    /// outcome matters more.
    pub(crate) async fn stop_logged(self) {
        if let Err(error) = self.stop().await {
            tracing::error!(error = %format!("{error:#}"), "the server did not stop cleanly");
        }
    }
}
