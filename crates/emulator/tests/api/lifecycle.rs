//! Starting and stopping: `run` for the CLI and `shutdown` for tests.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, ensure};
use emulator::{EmulatorConfig, RetryPolicy};
use tokio::sync::oneshot;

use crate::helpers::*;

#[tokio::test]
async fn run_serves_until_its_shutdown_future_resolves() -> anyhow::Result<()> {
    let port = free_port()?;
    let config = EmulatorConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        delivery: RetryPolicy::fast(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(emulator::run(config, async {
        let _ = stopped.await;
    }));

    let url = format!("http://127.0.0.1:{port}/admin/phone-numbers");
    let answered = async {
        loop {
            if let Ok(response) = http().get(&url).send().await {
                return response.status();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let status = tokio::time::timeout(WAIT, answered)
        .await
        .context("the emulator never answered")?;
    assert_eq!(status, 200);

    let _ = stop.send(());
    tokio::time::timeout(WAIT, serving)
        .await
        .context("run did not return")???;
    ensure!(
        http().get(&url).send().await.is_err(),
        "still serving after shutdown"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_serving() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    let url = format!("{}/admin/phone-numbers", meta.base_url());
    assert_eq!(http().get(&url).send().await?.status(), 200);
    tokio::time::timeout(WAIT, meta.shutdown()).await?;
    ensure!(
        http().get(&url).send().await.is_err(),
        "still serving after shutdown"
    );
    Ok(())
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let config = EmulatorConfig {
        listen: taken.local_addr()?,
        ..EmulatorConfig::for_tests()
    };
    let outcome = emulator::start(config).await;
    ensure!(
        matches!(outcome, Err(emulator::EmulatorError::Bind { .. })),
        "{outcome:?}"
    );
    Ok(())
}
