//! The command line: `serve`, `worker`, `emulator`, `tenant create`, `migrate`, `keys` and `bench`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::app::{Application, Roles, Tuning};
use crate::config::{Settings, SettingsArgs};
use crate::store::{PoolSizes, Store};

#[derive(Debug, Parser)]
#[command(
    name = "wagate",
    version,
    about = "A WhatsApp Cloud API gateway for many businesses"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The server: public webhooks, REST API, WebSocket, and (unless --no-workers) background workers.
    Serve {
        /// Serve HTTP only; run the inbox processor and jobs in `wagate worker` processes.
        #[arg(long)]
        no_workers: bool,
    },
    /// The background workers only (inbox processing, jobs), for several processes on one database.
    Worker,
    /// Everything a newcomer needs in one process: server, Cloud API emulator and simulated
    /// customers, on the embedded database; prints the dashboard URL, a login and an API key.
    Demo(crate::demo::DemoArgs),
    /// The Cloud API emulator alone: Graph API stand-in and signed webhook delivery.
    Emulator {
        /// Address the emulator binds.
        #[arg(long, env = "WAGATE_EMULATOR_LISTEN", default_value = "127.0.0.1:4010")]
        emulator_listen: SocketAddr,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Master key rotation: stored secrets counted by key, and sealed again under a new one.
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),
    /// Measure wagate on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with an owner user; prints {"tenant_id", "user_id", "api_key"}.
    Create(TenantCreateArgs),
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub email: String,
    #[arg(long, hide_env_values = true)]
    pub password: SecretString,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Signed webhooks from many concurrent connections against a real server; prints throughput and latency.
    Ingest(crate::bench::IngestBenchArgs),
    /// Template messages queued for one number and then for many; prints sends per second per
    /// number against Meta's limit and in aggregate.
    Send(crate::bench::SendBenchArgs),
    /// Signed webhooks resent like Meta and template sends while the server is killed with
    /// SIGKILL every few seconds; checks every message is stored once and every send ends sent
    /// once or failed with a reason; prints one JSON summary.
    Crash(crate::bench::CrashBenchArgs),
    /// Pages of 50 messages read from a store filled with millions of them (a conversation's
    /// newest, a page further back, a tenant's newest, the inbox); prints latency per kind.
    Read(crate::bench::ReadBenchArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings.resolve()?;
    crate::telemetry::init(settings.log_json);
    match cli.command {
        Command::Serve { no_workers } => {
            serve(
                settings,
                Roles {
                    http: true,
                    workers: !no_workers,
                },
            )
            .await
        }
        Command::Worker => {
            serve(
                settings,
                Roles {
                    http: false,
                    workers: true,
                },
            )
            .await
        }
        Command::Demo(args) => crate::demo::run(settings, args).await,
        Command::Emulator { emulator_listen } => run_emulator(emulator_listen).await,
        Command::Tenant(TenantCommand::Create(args)) => create_tenant(settings, args).await,
        Command::Migrate => migrate(settings).await,
        Command::Keys(command) => crate::keys::run(settings, command).await,
        Command::Bench(BenchCommand::Ingest(args)) => crate::bench::ingest(settings, args).await,
        Command::Bench(BenchCommand::Send(args)) => crate::bench::send(settings, args).await,
        Command::Bench(BenchCommand::Crash(args)) => crate::bench::crash(settings, args).await,
        Command::Bench(BenchCommand::Read(args)) => crate::bench::read(settings, args).await,
    }
}

async fn serve(settings: Settings, roles: Roles) -> anyhow::Result<()> {
    let app = Application::build(settings, roles, Tuning::default()).await?;
    if let Some(addr) = app.local_addr() {
        tracing::info!(address = %addr, "wagate is listening");
    } else {
        tracing::info!("wagate worker started");
    }
    app.run_until_stopped(shutdown_signal()).await
}

async fn run_emulator(listen: SocketAddr) -> anyhow::Result<()> {
    let config = emulator::EmulatorConfig {
        listen,
        delivery: emulator::RetryPolicy::meta_like(),
    };
    tracing::info!(address = %listen, "Cloud API emulator starting; never expose it to the internet");
    emulator::run(config, shutdown_signal())
        .await
        .context("the emulator failed")
}

async fn create_tenant(settings: Settings, args: TenantCreateArgs) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let created = crate::tenants::create(
        &store,
        crate::tenants::NewTenantInput {
            name: args.name,
            email: args.email,
            password: args.password,
        },
    )
    .await?;
    println!(
        "{}",
        serde_json::json!({
            "tenant_id": created.tenant_id,
            "user_id": created.user_id,
            "api_key": secrecy::ExposeSecret::expose_secret(&created.api_key),
        })
    );
    store.close().await;
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    store.close().await;
    eprintln!("migrations applied");
    Ok(())
}

pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(
        &settings.database_url,
        PoolSizes {
            read: 2,
            write_postgres: 2,
        },
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the database ({})",
            crate::app::redact_url(settings.database_url.as_str())
        )
    })?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
