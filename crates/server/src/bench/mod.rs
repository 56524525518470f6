//! `wagate bench ingest`: signed webhooks from many keep-alive connections against a real server
//! in this process, on a throwaway database, then a check that every acknowledged message was stored.
//!
//! The server is the production one (`Application::build` with default tuning) and Meta is the
//! project's emulator, which only answers the credential check when the connection is created.
//! Bodies are built and signed before the clock starts, so the load loop only sends and measures.

mod crash;
mod fleet;
mod lag;
mod read;
mod send;

pub use crash::{CrashBenchArgs, crash};
pub use read::{ReadBenchArgs, read};
pub use send::{SendBenchArgs, send};

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Args;
use emulator::RetryPolicy;
use emulator::payloads::{self, BusinessNumber, InboundMessage};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Connection;
use zeroize::Zeroizing;

use crate::config::{DatabaseUrl, Settings};
use crate::embedded::EmbeddedServer;
use crate::ids::random_token;
use crate::store::inbox::STATE_PARKED;
use crate::store::{PoolSizes, Store, col};

/// The business number the webhooks are about (the one in Meta's example payloads).
const NUMBER: BusinessNumber<'static> = BusinessNumber {
    waba_id: "102290129340398",
    phone_number_id: "106540352242922",
    display_phone_number: "15550783881",
};

/// Webhooks per second of load that the pre-built bodies cover; about twice the most a 2-core
/// machine acknowledges, so the load loop seldom has to build a body itself.
const PREBUILT_WEBHOOKS_PER_SECOND: u64 = 10_000;
/// Memory the pre-built bodies may take; beyond it, bodies are built during the load (and counted).
const PREBUILT_BYTES_BUDGET: u64 = 256 * 1024 * 1024;
/// How long the processor may take to apply the backlog once the load stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// One request may take this long before it counts as failed (the server gives up at 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// How long the load runs, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,

    /// Concurrent HTTP/1.1 keep-alive connections, each sending its next webhook as soon as the
    /// previous one is answered.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,

    /// Messages in one webhook (Meta batches several when they arrive together).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub messages_per_webhook: u64,

    /// Distinct customers the messages come from, in turn.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub contacts: u64,

    /// Tenants the numbers belong to (number i to tenant i % tenants), each with its own API key.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub tenants: u64,

    /// Connected numbers the webhooks are spread over in turn, each with its own webhook URL and
    /// app secret; at least `--tenants`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    pub numbers: u64,

    /// Webhooks per second in all, spread over the connections; 0 sends each connection's next
    /// webhook as soon as the previous one is answered. Below what the processor applies, the
    /// ingest-to-queryable lag shows the pipeline's own delay rather than a growing backlog.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Keep the temporary database (SQLite directory or PostgreSQL database) instead of deleting it.
    #[arg(long)]
    pub keep_data: bool,
}

/// Runs the benchmark on a fresh database of the configured backend and prints the figures.
pub async fn ingest(settings: Settings, args: IngestBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(&settings.database_url).await?;
    // Ctrl-C abandons the run but still deletes the scratch data.
    let outcome = tokio::select! {
        outcome = run(&settings, &args, &scratch) => outcome,
        () = crate::cli::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    let cleanup = scratch.finish(args.keep_data).await;
    let report = outcome?;
    cleanup?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    if !report.problems.is_empty() {
        bail!("the benchmark failed: {}", report.problems.join("; "));
    }
    Ok(())
}

/// Where the benchmark's data lives: a new directory (always, so nothing lands in the user's data
/// dir) and, on PostgreSQL, a new database on the configured server.
struct Scratch {
    dir: PathBuf,
    database_url: DatabaseUrl,
    postgres: Option<ScratchPostgres>,
}

struct ScratchPostgres {
    /// The configured URL, used to create and drop the benchmark database.
    admin_url: String,
    name: String,
}

impl Scratch {
    /// The scratch database, migrated, with the small pools a bench's own queries need (the
    /// server under test opens its own).
    async fn open_store(&self) -> anyhow::Result<Store> {
        let store = Store::connect(
            &self.database_url,
            PoolSizes {
                read: 2,
                write_postgres: 2,
            },
        )
        .await
        .context("cannot open the benchmark database")?;
        store
            .migrate()
            .await
            .context("cannot migrate the benchmark database")?;
        Ok(store)
    }

    async fn create(configured: &DatabaseUrl) -> anyhow::Result<Self> {
        let suffix = format!("{:016x}", rand::random::<u64>());
        let dir = std::env::temp_dir().join(format!("wagate-bench-{suffix}"));
        let (database_url, postgres) = match configured {
            DatabaseUrl::Sqlite(_) => (
                DatabaseUrl::Sqlite(format!("sqlite://{}", dir.join("wagate.db").display())),
                None,
            ),
            DatabaseUrl::Postgres(admin_url) => {
                let name = format!("wagate_bench_{suffix}");
                let mut url =
                    url::Url::parse(admin_url).context("WAGATE_DATABASE_URL is not a valid URL")?;
                url.set_path(&format!("/{name}"));
                create_postgres_database(admin_url, &name).await?;
                tracing::info!(database = %name, "created the benchmark database");
                let postgres = ScratchPostgres {
                    admin_url: admin_url.clone(),
                    name,
                };
                (DatabaseUrl::Postgres(url.to_string()), Some(postgres))
            }
        };
        let scratch = Self {
            dir,
            database_url,
            postgres,
        };
        if let Err(error) = std::fs::create_dir_all(&scratch.dir) {
            let path = scratch.dir.display().to_string();
            let _ = scratch.finish(false).await;
            return Err(error).with_context(|| format!("cannot create the directory {path}"));
        }
        Ok(scratch)
    }

    fn backend(&self) -> &'static str {
        match self.database_url {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }

    /// Deletes everything the benchmark created, or says where it is.
    async fn finish(self, keep: bool) -> anyhow::Result<()> {
        if keep {
            let location = match &self.postgres {
                Some(pg) => {
                    // Nothing is written to the directory when the data is in PostgreSQL.
                    remove_dir(&self.dir);
                    format!("PostgreSQL database {}", pg.name)
                }
                None => self.dir.display().to_string(),
            };
            // The master key lived only in memory, so the stored credentials cannot be opened again.
            eprintln!(
                "benchmark data kept in {location} (its credentials are sealed with a discarded key)"
            );
            return Ok(());
        }
        let dropped = match &self.postgres {
            Some(pg) => drop_postgres_database(&pg.admin_url, &pg.name).await,
            None => Ok(()),
        };
        remove_dir(&self.dir);
        dropped
    }
}

async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL ({})",
                crate::app::redact_url(admin_url)
            )
        })?;
    // The name is made here of a fixed prefix and hex digits, so it needs no escaping.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create the benchmark database {name}"))?;
    conn.close().await.ok();
    Ok(())
}

async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL to drop {name}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("cannot drop the benchmark database {name}; drop it by hand"))?;
    conn.close().await.ok();
    Ok(())
}

fn remove_dir(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), %error, "cannot remove the benchmark directory");
    }
}

/// Starts the emulator and the server against it, measures, and stops both however that went.
async fn run(
    settings: &Settings,
    args: &IngestBenchArgs,
    scratch: &Scratch,
) -> anyhow::Result<Report> {
    crate::embedded::with_emulator(RetryPolicy::fast(), async |meta| {
        let settings = bench_settings(settings, scratch, &meta.base_url())?;
        let server = EmbeddedServer::start(settings).await?;
        let outcome = measure(&server, meta, args, scratch.backend()).await;
        server.stop_logged().await;
        outcome
    })
    .await
}

/// The tenant every benchmark sends and receives as, on its throwaway database.
async fn create_bench_tenant(store: &Store) -> anyhow::Result<crate::tenants::CreatedTenant> {
    crate::tenants::create(
        store,
        crate::tenants::NewTenantInput {
            name: "Bench".into(),
            email: "bench@example.com".into(),
            password: SecretString::from(random_token(18)),
        },
    )
    .await
    .context("cannot create the benchmark tenant")
}

/// The settings the benchmark server runs with: the user's, on the scratch database, with a
/// throwaway master key, port 0, the emulator as Meta, no request rate limits and nothing shared
/// with other processes.
fn bench_settings(
    settings: &Settings,
    scratch: &Scratch,
    graph_base: &str,
) -> anyhow::Result<Settings> {
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    let mut bench = settings.clone();
    bench.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    bench.data_dir = scratch.dir.clone();
    bench.database_url = scratch.database_url.clone();
    bench.redis_url = None;
    bench.master_key = Some(SecretString::from(STANDARD.encode(key.as_slice())));
    bench.previous_master_keys = None;
    bench.public_url_given = false;
    bench.graph_api_base =
        url::Url::parse(graph_base).context("the emulator's base URL is not a URL")?;
    bench.meta_app_secret = None;
    bench.meta_verify_token = None;
    // The load comes from one key and one connection, far past any per-caller limit.
    bench.rate_limits = crate::config::RequestLimits::OFF;
    Ok(bench)
}

async fn measure(
    server: &EmbeddedServer,
    meta: &emulator::RunningEmulator,
    args: &IngestBenchArgs,
    backend: &'static str,
) -> anyhow::Result<Report> {
    let store = &server.store;
    let fleet = fleet::Fleet::build(
        store,
        &format!("http://{}", server.addr),
        meta,
        &fleet::FleetShape {
            tenants: args.tenants,
            numbers: args.numbers,
            first_id: 0,
            template: None,
            throughput_per_second: 80,
        },
    )
    .await?;
    let probe_connection = fleet.numbers[0].connection_id.clone();
    let factory = Arc::new(WebhookFactory {
        targets: fleet.numbers.iter().map(WebhookTarget::of).collect(),
        messages_per_webhook: args.messages_per_webhook,
        contacts: args.contacts,
        timestamp: payloads::unix_now(),
    });
    let prepared = Instant::now();
    let pool = Arc::new(WebhookPool::prebuild(Arc::clone(&factory), args.seconds).await?);
    tracing::info!(
        webhooks = pool.prebuilt.len(),
        seconds = format!("{:.1}", prepared.elapsed().as_secs_f64()),
        "webhooks built and signed; starting the load"
    );

    let load_until = Instant::now() + Duration::from_secs(args.seconds);
    let (load, lag) = tokio::join!(
        run_load(args, &pool),
        lag::probe_until(store, &factory, &probe_connection, load_until)
    );
    let load = load?;
    let lag = lag?;
    let backlog_at_load_end = store
        .inbox_pending_count()
        .await
        .context("cannot count the inbox backlog")?;
    tracing::info!(
        backlog = backlog_at_load_end,
        "load finished; waiting for the processor to apply the inbox"
    );

    let mut problems = Vec::new();
    let drained = wait_for_drain(store).await?;
    if drained.is_none() {
        problems.push(format!(
            "the processor did not apply the inbox within {} s",
            DRAIN_TIMEOUT.as_secs()
        ));
    }
    let drained_at = drained.unwrap_or_else(Instant::now);
    // The scratch database holds the benchmark's tenants only.
    let row = sqlx::query("SELECT COUNT(*) AS n FROM messages")
        .fetch_one(store.reader())
        .await
        .context("cannot count the stored messages")?;
    let stored: i64 = col(&row, "n")?;
    let parked = store
        .inbox_count_in_state(STATE_PARKED)
        .await
        .context("cannot count parked inbox rows")?;

    let acknowledged_messages = load.acknowledged * args.messages_per_webhook + lag.acknowledged;
    if lag.unseen > 0 {
        problems.push(format!(
            "{} acknowledged probe messages never became readable",
            lag.unseen
        ));
    }
    let stored = u64::try_from(stored).unwrap_or(0);
    if stored != acknowledged_messages {
        let mut problem = format!(
            "{stored} messages stored but {acknowledged_messages} acknowledged (must be equal)"
        );
        if parked > 0 {
            problem.push_str(&format!("; {parked} inbox rows parked"));
        }
        if load.failed > 0 {
            problem.push_str(&format!(
                "; {} requests failed without an answer and may have been stored",
                load.failed
            ));
        }
        problems.push(problem);
    }
    if load.acknowledged == 0 {
        problems.push("no webhook was acknowledged".to_owned());
    }
    if let Some(error) = &load.first_failure {
        tracing::warn!(error = %error, "a request failed");
    }

    let load_seconds = load.elapsed.as_secs_f64();
    let processing_seconds = drained_at.duration_since(load.started).as_secs_f64();
    let mut latencies = load.latencies_us;
    latencies.sort_unstable();
    Ok(Report {
        backend,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        concurrency: args.concurrency,
        messages_per_webhook: args.messages_per_webhook,
        contacts: args.contacts,
        tenants: args.tenants,
        numbers: args.numbers,
        duration_seconds: round(load_seconds, 3),
        webhooks_sent: load.sent,
        webhooks_acknowledged: load.acknowledged,
        acknowledged_webhooks_per_second: round(per_second(load.acknowledged, load_seconds), 1),
        latency_ms: Latency::of(&latencies),
        rate: (args.rate > 0).then_some(args.rate),
        queryable_lag_ms: Latency::of(&lag.sorted_us()),
        lag_probes: lag.acknowledged,
        messages_acknowledged: acknowledged_messages,
        messages_stored: stored,
        inbox_backlog_at_load_end: u64::try_from(backlog_at_load_end).unwrap_or(0),
        processing_seconds: round(processing_seconds, 3),
        processed_messages_per_second: round(per_second(stored, processing_seconds), 1),
        errors: Errors {
            total: load.refused.values().sum::<u64>() + load.failed,
            refused_by_status: load
                .refused
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
            failed_without_answer: load.failed,
        },
        bodies_built_during_load: pool.built_late(),
        note: format!(
            "the load generator runs in this process on the same machine, competing with the server for its {} cores",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        problems,
    })
}

/// A number webhooks are made for: where they go and what signs them.
struct WebhookTarget {
    phone_number_id: String,
    waba_id: String,
    display_phone_number: String,
    app_secret: Vec<u8>,
    url: Arc<str>,
}

impl WebhookTarget {
    fn of(number: &fleet::FleetNumber) -> Self {
        Self {
            phone_number_id: number.phone_number_id.clone(),
            waba_id: number.waba_id.clone(),
            display_phone_number: number.display_phone_number.clone(),
            app_secret: number.app_secret.clone().into_bytes(),
            url: Arc::clone(&number.webhook_url),
        }
    }

    fn business_number(&self) -> BusinessNumber<'_> {
        BusinessNumber {
            waba_id: &self.waba_id,
            phone_number_id: &self.phone_number_id,
            display_phone_number: &self.display_phone_number,
        }
    }
}

/// Makes webhook number `index`: Meta's shape, for the targets in turn, fresh wamids, customers
/// in turn, signed with the target's app secret.
struct WebhookFactory {
    targets: Vec<WebhookTarget>,
    messages_per_webhook: u64,
    contacts: u64,
    /// Unix seconds, the same for every message (Meta's timestamps have one-second resolution).
    timestamp: i64,
}

struct SignedWebhook {
    url: Arc<str>,
    body: Bytes,
    signature: HeaderValue,
}

impl SignedWebhook {
    /// Posts it to its number's webhook URL the way Meta does.
    async fn send(self, client: &reqwest::Client) -> reqwest::Result<reqwest::Response> {
        client
            .post(&*self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(cloudapi::signature::SIGNATURE_HEADER, self.signature)
            .body(self.body)
            .send()
            .await
    }
}

impl WebhookFactory {
    fn build(&self, index: u64) -> anyhow::Result<SignedWebhook> {
        let target = &self.targets[(index % self.targets.len() as u64) as usize];
        let mut contacts = Vec::new();
        let mut seen = HashSet::new();
        let mut messages = Vec::new();
        for n in index * self.messages_per_webhook..(index + 1) * self.messages_per_webhook {
            let customer = n % self.contacts;
            let wa_id = (16_505_550_000u64 + customer).to_string();
            let wamid = payloads::new_inbound_wamid(&wa_id);
            messages.push(self.message(&wa_id, &wamid, &message_text(n)));
            if seen.insert(customer) {
                contacts.push(json!({
                    "profile": { "name": customer_name(customer) },
                    "wa_id": wa_id,
                }));
            }
        }
        self.signed(target, contacts, messages)
    }

    /// A one-message webhook to the first number from a customer of its own (outside the load's
    /// contacts), and the message's wamid, to time it until it can be read.
    fn probe(&self, n: u64) -> anyhow::Result<(SignedWebhook, String)> {
        let wa_id = (19_005_550_000u64 + n).to_string();
        let wamid = payloads::new_inbound_wamid(&wa_id);
        let message = self.message(&wa_id, &wamid, "Is my order on its way?");
        let contacts = vec![json!({"profile": {"name": "Probe"}, "wa_id": wa_id})];
        Ok((
            self.signed(&self.targets[0], contacts, vec![message])?,
            wamid,
        ))
    }

    fn message(&self, wa_id: &str, wamid: &str, text: &str) -> Value {
        payloads::inbound_message(&InboundMessage {
            wamid,
            from: wa_id,
            timestamp: self.timestamp,
            message_type: "text",
            content: &json!({ "body": text }),
            context: None,
            referral: None,
        })
    }

    fn signed(
        &self,
        target: &WebhookTarget,
        contacts: Vec<Value>,
        messages: Vec<Value>,
    ) -> anyhow::Result<SignedWebhook> {
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": payloads::metadata(&target.business_number()),
            "contacts": contacts,
            "messages": messages,
        });
        let body = serde_json::to_vec(&payloads::webhook_envelope(
            &target.waba_id,
            "messages",
            value,
        ))?;
        let signature =
            HeaderValue::from_str(&cloudapi::signature::sign(&target.app_secret, &body))
                .context("a signature is not a valid header value")?;
        Ok(SignedWebhook {
            url: Arc::clone(&target.url),
            body: Bytes::from(body),
            signature,
        })
    }
}

fn customer_name(customer: u64) -> String {
    const FIRST: [&str; 16] = [
        "Sheena", "Marco", "Aisha", "Jonas", "Priya", "Tomás", "Mei", "Kwame", "Olga", "Rafael",
        "Yuki", "Amara", "Lars", "Fatima", "Diego", "Chloé",
    ];
    const LAST: [&str; 16] = [
        "Nelson", "Rossi", "Khan", "Weber", "Sharma", "García", "Chen", "Mensah", "Ivanova",
        "Silva", "Tanaka", "Okafor", "Berg", "Haddad", "López", "Martin",
    ];
    let first = FIRST[(customer % 16) as usize];
    let last = LAST[((customer / 16) % 16) as usize];
    format!("{first} {last}")
}

fn message_text(n: u64) -> String {
    const TEXTS: [&str; 12] = [
        "Does it come in another color?",
        "Hi! Is order #{} ready to pick up today?",
        "Can I change the delivery address for order #{}?",
        "Thanks, the package arrived this morning.",
        "What time do you open on Saturday?",
        "I'd like to return item #{}, it is the wrong size.",
        "Is there a discount if I buy two of them?",
        "Could you send me the invoice for order #{} please?",
        "The link in your last message does not open.",
        "Do you ship to Portugal as well?",
        "Perfect, see you tomorrow at 10.",
        "My tracking number shows no update since Monday.",
    ];
    TEXTS[(n % 12) as usize].replace("{}", &(40_000 + n % 60_000).to_string())
}

/// The bodies the load sends, in order: pre-built ones first, then (should the load outrun the
/// estimate) bodies built on demand, counted so the report can say so.
struct WebhookPool {
    factory: Arc<WebhookFactory>,
    prebuilt: Vec<SignedWebhook>,
    next: AtomicUsize,
}

impl WebhookPool {
    async fn prebuild(factory: Arc<WebhookFactory>, seconds: u64) -> anyhow::Result<Self> {
        let sample_len = factory.build(0)?.body.len() as u64;
        let by_rate = seconds * PREBUILT_WEBHOOKS_PER_SECOND;
        let by_memory = PREBUILT_BYTES_BUDGET / (sample_len + 128);
        let total = by_rate.min(by_memory).max(1);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let builder = Arc::clone(&factory);
        // Signing is CPU work: it runs on blocking threads, split in contiguous ranges.
        let prebuilt = tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let per_thread = total.div_ceil(threads);
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let builder = &builder;
                        let range = (t * per_thread).min(total)..((t + 1) * per_thread).min(total);
                        scope.spawn(move || {
                            range
                                .map(|i| builder.build(i))
                                .collect::<anyhow::Result<Vec<_>>>()
                        })
                    })
                    .collect();
                let mut all = Vec::with_capacity(total as usize);
                for handle in handles {
                    match handle.join() {
                        Ok(part) => all.extend(part?),
                        Err(_) => bail!("building the webhooks panicked"),
                    }
                }
                Ok(all)
            })
        })
        .await
        .context("building the webhooks failed")??;
        Ok(Self {
            factory,
            prebuilt,
            next: AtomicUsize::new(0),
        })
    }

    /// The next webhook to send: a clone of cheap handles when pre-built, otherwise built now.
    fn next(&self) -> anyhow::Result<SignedWebhook> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        match self.prebuilt.get(index) {
            Some(webhook) => Ok(SignedWebhook {
                url: Arc::clone(&webhook.url),
                body: webhook.body.clone(),
                signature: webhook.signature.clone(),
            }),
            None => self.factory.build(index as u64),
        }
    }

    fn built_late(&self) -> u64 {
        (self.next.load(Ordering::Relaxed) as u64).saturating_sub(self.prebuilt.len() as u64)
    }
}

/// What the load loops saw, merged.
struct LoadOutcome {
    started: Instant,
    elapsed: Duration,
    sent: u64,
    acknowledged: u64,
    refused: BTreeMap<u16, u64>,
    failed: u64,
    first_failure: Option<String>,
    /// Send to full response, in microseconds, of every request that got an answer.
    latencies_us: Vec<u32>,
}

#[derive(Default)]
struct ConnectionTally {
    sent: u64,
    acknowledged: u64,
    refused: BTreeMap<u16, u64>,
    failed: u64,
    first_failure: Option<String>,
    latencies_us: Vec<u32>,
}

async fn run_load(args: &IngestBenchArgs, pool: &Arc<WebhookPool>) -> anyhow::Result<LoadOutcome> {
    // Clients first, so building them is not part of the measured time.
    let clients = (0..args.concurrency)
        .map(|_| {
            reqwest::Client::builder()
                .http1_only()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .no_proxy()
                .timeout(REQUEST_TIMEOUT)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot build the HTTP clients")?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    // Each connection's share of `--rate`: one webhook per interval.
    let pace = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.concurrency as f64 / args.rate as f64));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(index, client)| {
            let pool = Arc::clone(pool);
            let pace = pace.map(|interval| {
                // Connections start spread over one interval, so the total rate is even.
                let first = started + interval.mul_f64(index as f64 / args.concurrency as f64);
                (first, interval)
            });
            tokio::spawn(async move { send_until(client, &pool, deadline, pace).await })
        })
        .collect();
    let mut outcome = LoadOutcome {
        started,
        elapsed: Duration::ZERO,
        sent: 0,
        acknowledged: 0,
        refused: BTreeMap::new(),
        failed: 0,
        first_failure: None,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        let tally = task.await.context("a load task failed")?;
        outcome.sent += tally.sent;
        outcome.acknowledged += tally.acknowledged;
        outcome.failed += tally.failed;
        for (status, n) in tally.refused {
            *outcome.refused.entry(status).or_default() += n;
        }
        if outcome.first_failure.is_none() {
            outcome.first_failure = tally.first_failure;
        }
        outcome.latencies_us.extend(tally.latencies_us);
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// One connection's loop: the next webhook as soon as the previous one is answered.
async fn send_until(
    client: reqwest::Client,
    pool: &WebhookPool,
    deadline: Instant,
    pace: Option<(Instant, Duration)>,
) -> ConnectionTally {
    let mut tally = ConnectionTally::default();
    let mut next_at = pace.map(|(first, _)| first);
    while Instant::now() < deadline {
        if let (Some(at), Some((_, interval))) = (next_at.as_mut(), pace) {
            tokio::time::sleep_until((*at).into()).await;
            *at += interval;
            if Instant::now() >= deadline {
                break;
            }
        }
        let webhook = match pool.next() {
            Ok(webhook) => webhook,
            Err(error) => {
                tally.failed += 1;
                tally.first_failure.get_or_insert_with(|| error.to_string());
                continue;
            }
        };
        tally.sent += 1;
        let sent_at = Instant::now();
        let answer = webhook.send(&client).await;
        let status = match answer {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|_| status)
            }
            Err(error) => Err(error),
        };
        match status {
            Ok(status) => {
                let micros = sent_at.elapsed().as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                if status == reqwest::StatusCode::OK {
                    tally.acknowledged += 1;
                } else {
                    *tally.refused.entry(status.as_u16()).or_default() += 1;
                }
            }
            Err(error) => {
                tally.failed += 1;
                tally
                    .first_failure
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    tally
}

/// Polls until no inbox row is pending; `None` if that did not happen in time.
async fn wait_for_drain(store: &Store) -> anyhow::Result<Option<Instant>> {
    let give_up = Instant::now() + DRAIN_TIMEOUT;
    let mut last_log = Instant::now();
    loop {
        let pending = store
            .inbox_pending_count()
            .await
            .context("cannot count the inbox backlog")?;
        if pending == 0 {
            return Ok(Some(Instant::now()));
        }
        if Instant::now() >= give_up {
            return Ok(None);
        }
        if last_log.elapsed() >= Duration::from_secs(5) {
            tracing::info!(pending, "still applying the inbox");
            last_log = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count(store: &Store, sql: &'static str, tenant_id: &str) -> anyhow::Result<i64> {
    let row = sqlx::query(sql)
        .bind(tenant_id)
        .fetch_one(store.reader())
        .await
        .with_context(|| format!("cannot count ({sql})"))?;
    Ok(col(&row, "n")?)
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    cores: usize,
    concurrency: u64,
    messages_per_webhook: u64,
    contacts: u64,
    tenants: u64,
    numbers: u64,
    duration_seconds: f64,
    webhooks_sent: u64,
    webhooks_acknowledged: u64,
    acknowledged_webhooks_per_second: f64,
    latency_ms: Latency,
    /// The paced rate, webhooks per second, when `--rate` was given.
    rate: Option<u64>,
    /// From sending a probe webhook until its message could be read from the store.
    queryable_lag_ms: Latency,
    lag_probes: u64,
    messages_acknowledged: u64,
    messages_stored: u64,
    /// Inbox rows not yet applied when the load stopped: how far the processor lagged behind.
    inbox_backlog_at_load_end: u64,
    /// From the start of the load until the processor had applied everything.
    processing_seconds: f64,
    processed_messages_per_second: f64,
    errors: Errors,
    /// Webhooks the load outran the pre-built set by and had to build and sign while sending.
    bodies_built_during_load: u64,
    note: String,
    /// Why the run counts as failed; empty when it passed.
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    /// Nearest-rank percentiles of sorted microseconds, in milliseconds.
    fn of(sorted_us: &[u32]) -> Self {
        let at = |q: f64| -> f64 {
            if sorted_us.is_empty() {
                return 0.0;
            }
            let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
            round(f64::from(sorted_us[rank - 1]) / 1000.0, 2)
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

#[derive(Debug, Serialize)]
struct Errors {
    total: u64,
    /// Answers other than 200, by status code.
    refused_by_status: BTreeMap<String, u64>,
    /// Requests that got no answer (connection error or timeout).
    failed_without_answer: u64,
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn print_table(r: &Report) {
    let refused = if r.errors.refused_by_status.is_empty() {
        "none".to_owned()
    } else {
        r.errors
            .refused_by_status
            .iter()
            .map(|(status, n)| format!("{n} × {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("wagate bench ingest");
    println!("  backend                 {}", r.backend);
    println!("  tenants / numbers       {} / {}", r.tenants, r.numbers);
    println!(
        "  load                    {} connections, {} message(s) per webhook, {} contacts, {}",
        r.concurrency,
        r.messages_per_webhook,
        r.contacts,
        r.rate.map_or("unpaced".to_owned(), |rate| format!(
            "paced at {rate} webhooks/s"
        ))
    );
    println!("  duration                {:.2} s", r.duration_seconds);
    println!(
        "  webhooks acknowledged   {} of {} sent ({:.1} per second)",
        r.webhooks_acknowledged, r.webhooks_sent, r.acknowledged_webhooks_per_second
    );
    println!(
        "  latency (ms)            p50 {:.2}   p90 {:.2}   p99 {:.2}   max {:.2}",
        r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max
    );
    println!(
        "  ingest to queryable     p50 {:.2}   p90 {:.2}   p99 {:.2}   max {:.2} ms ({} probes)",
        r.queryable_lag_ms.p50,
        r.queryable_lag_ms.p90,
        r.queryable_lag_ms.p99,
        r.queryable_lag_ms.max,
        r.lag_probes
    );
    println!(
        "  messages stored         {} of {} acknowledged",
        r.messages_stored, r.messages_acknowledged
    );
    println!(
        "  processing              {:.1} messages per second ({:.2} s from load start to empty inbox; backlog {} at load end)",
        r.processed_messages_per_second, r.processing_seconds, r.inbox_backlog_at_load_end
    );
    println!(
        "  errors                  {} (refused: {}; no answer: {})",
        r.errors.total, refused, r.errors.failed_without_answer
    );
    if r.bodies_built_during_load > 0 {
        println!(
            "  note                    {} webhooks were built during the load (the pre-built set ran out)",
            r.bodies_built_during_load
        );
    }
    println!("  note                    {}", r.note);
    for problem in &r.problems {
        println!("  FAILED                  {problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(n: u64) -> WebhookTarget {
        WebhookTarget {
            phone_number_id: (NUMBER.phone_number_id.parse::<u64>().unwrap() + n).to_string(),
            waba_id: NUMBER.waba_id.into(),
            display_phone_number: NUMBER.display_phone_number.into(),
            app_secret: format!("secret{n}").into_bytes(),
            url: format!("http://127.0.0.1:1/webhooks/{n}").into(),
        }
    }

    fn factory(messages_per_webhook: u64, contacts: u64) -> WebhookFactory {
        WebhookFactory {
            targets: vec![target(0)],
            messages_per_webhook,
            contacts,
            timestamp: 1_749_416_383,
        }
    }

    #[test]
    fn a_webhook_has_metas_shape_and_a_valid_signature() {
        let webhook = factory(1, 10).build(3).unwrap();
        assert!(
            cloudapi::signature::verify(
                b"secret0",
                &webhook.body,
                Some(webhook.signature.as_bytes())
            )
            .is_ok()
        );
        let json: Value = serde_json::from_slice(&webhook.body).unwrap();
        let value = &json["entry"][0]["changes"][0]["value"];
        assert_eq!(json["object"], "whatsapp_business_account");
        assert_eq!(value["metadata"]["phone_number_id"], NUMBER.phone_number_id);
        assert_eq!(value["messages"][0]["type"], "text");
        assert_eq!(value["messages"][0]["from"], value["contacts"][0]["wa_id"]);
        assert!(cloudapi::webhook::Notification::parse(&webhook.body[..]).is_ok());
    }

    #[test]
    fn webhooks_go_to_the_numbers_in_turn_each_signed_with_its_own_secret() {
        let mut factory = factory(1, 10);
        factory.targets = (0..3).map(target).collect();
        for index in 0..6u64 {
            let webhook = factory.build(index).unwrap();
            let expected = target(index % 3);
            assert_eq!(&*webhook.url, &*expected.url);
            let json: Value = serde_json::from_slice(&webhook.body).unwrap();
            assert_eq!(
                json["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"],
                expected.phone_number_id.as_str()
            );
            let signature = Some(webhook.signature.as_bytes());
            assert!(
                cloudapi::signature::verify(&expected.app_secret, &webhook.body, signature).is_ok()
            );
            let other = target((index + 1) % 3);
            assert!(
                cloudapi::signature::verify(&other.app_secret, &webhook.body, signature).is_err()
            );
        }
    }

    #[test]
    fn batched_webhooks_carry_distinct_wamids_and_cycle_over_the_contacts() {
        let factory = factory(5, 3);
        let mut wamids = HashSet::new();
        let mut senders = HashSet::new();
        for index in 0..4 {
            let json: Value = serde_json::from_slice(&factory.build(index).unwrap().body).unwrap();
            let value = &json["entry"][0]["changes"][0]["value"];
            let messages = value["messages"].as_array().unwrap();
            assert_eq!(messages.len(), 5);
            assert_eq!(value["contacts"].as_array().unwrap().len(), 3);
            for message in messages {
                wamids.insert(message["id"].as_str().unwrap().to_owned());
                senders.insert(message["from"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(wamids.len(), 20);
        assert_eq!(senders.len(), 3);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let latency = Latency::of(&sorted);
        assert_eq!(
            (latency.p50, latency.p90, latency.p99, latency.max),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&[]).max, 0.0);
    }
}
