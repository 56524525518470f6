//! `wagate bench crash`: the server is killed with SIGKILL every few seconds and restarted while a
//! resender that behaves like Meta delivers signed webhooks and template sends go out; at the end
//! the database must hold every message exactly once and every send must have ended sent once or
//! failed with a reason.
//!
//! The server is a separate `wagate serve` process (this binary), so it can die the way a crash
//! or an OOM kill leaves it, on a fixed port so the resender and the emulator's status webhooks
//! find it again after each restart. Meta is the project's emulator, in this process. The checks
//! read the database (and the emulator's log of accepted sends), not what the server answered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Args;
use emulator::payloads::{self, InboundMessage};
use emulator::{DeliveryStatus, PhoneNumberRegistration, PhoneNumberUpdate, RetryPolicy};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_util::task::AbortOnDropHandle;
use zeroize::Zeroizing;

use super::{NUMBER, Scratch, count, create_bench_tenant, round};
use crate::config::Settings;
use crate::ids::random_token;
use crate::outbound::CALLBACK_PREFIX;
use crate::store::inbox::STATE_PARKED;
use crate::store::{Store, col};

/// Concurrent webhook deliveries, each retrying its webhook until it gets 200.
const RESENDER_LANES: usize = 16;
/// Concurrent API clients queueing the template sends.
const QUEUE_LANES: usize = 4;
/// Customers the webhooks come from, in turn.
const CUSTOMERS: u64 = 1000;
/// The number's throughput at Meta, which the emulator enforces (Meta's default).
const THROUGHPUT_PER_SECOND: u32 = 80;
/// First wait before a retry; it doubles up to `MAX_BACKOFF`, as Meta's retries grow.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// One delivery attempt may take this long before it counts as failed and is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A restarted server must answer `/healthz` within this.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The resender and the sends must be done within this, kills included.
const RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// How long the last server may take to apply the inbox and settle the sends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How far each interval between kills strays from `--kill-every-ms`, either way.
const KILL_JITTER: f64 = 0.3;

/// What the server processes run with beyond the scratch database: short leases and timeouts, so
/// a restarted process takes over the dead one's jobs within seconds; a grace for unconfirmed
/// sends long enough for the emulator's retried status webhooks to reach the restarted process;
/// and no request rate limits, as one key and one webhook URL carry the whole load here.
const SERVER_TUNING: [(&str, &str); 6] = [
    ("WAGATE_JOB_LEASE_SECS", "3"),
    ("WAGATE_GRAPH_TIMEOUT_SECS", "2"),
    ("WAGATE_SEND_OUTCOME_GRACE_SECS", "10"),
    ("WAGATE_TEMPLATE_SYNC_SECS", "0"),
    ("WAGATE_API_RATE_LIMIT", "0"),
    ("WAGATE_WEBHOOK_RATE_LIMIT", "0"),
];

#[derive(Debug, Args)]
pub struct CrashBenchArgs {
    /// Signed webhooks to deliver, one new customer message each.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub webhooks: u64,

    /// Milliseconds between two SIGKILLs of the server (each interval ±30% at random).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub kill_every_ms: u64,

    /// Template messages queued through the API before and while the kills happen.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub sends: u64,

    /// Webhooks handed out per second across all lanes (0: as fast as the server takes them).
    /// A pace spreads the webhooks over several kills; unpaced, a fast server acknowledges
    /// them all before the first one.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub webhooks_per_second: u64,

    /// Keep the temporary database and the server's log instead of deleting them.
    #[arg(long)]
    pub keep_data: bool,
}

/// Runs the crash test on a fresh database of the configured backend, prints one JSON summary on
/// stdout, and fails when any check failed.
pub async fn crash(settings: Settings, args: CrashBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(&settings.database_url).await?;
    // Ctrl-C abandons the run; the server process dies with it and the scratch data is deleted.
    let outcome = tokio::select! {
        outcome = run(&settings, &args, &scratch) => outcome,
        () = crate::cli::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    let cleanup = scratch.finish(args.keep_data).await;
    let report = outcome?;
    cleanup?;
    println!("{}", serde_json::to_string(&report)?);
    if !report.problems.is_empty() {
        let hint = if args.keep_data {
            ""
        } else {
            " (run with --keep-data to keep the database and the server's log)"
        };
        bail!(
            "the crash test failed: {}{hint}",
            report.problems.join("; ")
        );
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct CrashReport {
    backend: &'static str,
    webhooks: u64,
    /// Webhooks that got 200 in the end (every one must).
    acknowledged: u64,
    /// POSTs in all, the first try of each webhook included.
    attempts: u64,
    retries: u64,
    /// Retried answers other than 200, by status code.
    refused_by_status: BTreeMap<String, u64>,
    /// Retried attempts that got no answer (refused connection, reset, timeout).
    no_answer: u64,
    kills: u64,
    /// The most memory a server process held resident while it ran (its `VmHWM` before each
    /// kill), in MiB: the server's memory under this load, the resender's not included.
    server_peak_rss_mib: Option<f64>,
    /// The longest time from a SIGKILL until the restarted server answered `/healthz`.
    longest_restart_seconds: f64,
    /// Inbound messages in the database.
    stored: u64,
    /// Stored messages beyond the first of their wamid.
    duplicates: u64,
    /// Delivered wamids not in the database.
    missing: u64,
    inbox_pending: u64,
    inbox_parked: u64,
    sends: SendFigures,
    elapsed_seconds: f64,
    /// Why the run counts as failed; empty when it passed.
    problems: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct SendFigures {
    /// Outbound messages in the database.
    queued: u64,
    /// Sent, delivered or read, and taken by Meta exactly once.
    sent_once: u64,
    /// Failed, with an error saying why.
    failed_with_reason: u64,
    /// Of those, the ones Meta had taken although it never confirmed in time (the failure says
    /// the outcome is unknown; the message was not sent again).
    failed_after_meta_took_it: u64,
    /// Taken by Meta more than once: a duplicate the customer received.
    sent_twice: u64,
    failed_without_reason: u64,
    /// Marked sent although Meta's log has no send of it.
    sent_without_meta: u64,
    /// Still queued after the drain.
    unfinished: u64,
    /// Failures by their error title (or code).
    failure_reasons: BTreeMap<String, u64>,
}

/// Starts the emulator, runs the kills against a server process, and checks the database.
async fn run(
    settings: &Settings,
    args: &CrashBenchArgs,
    scratch: &Scratch,
) -> anyhow::Result<CrashReport> {
    crate::embedded::with_emulator(delivery_policy(), async |meta| {
        let started = Instant::now();
        let access_token = format!("EAAcrash{}", random_token(32));
        let app_secret = random_token(24);
        meta.register_phone_number(PhoneNumberRegistration {
            phone_number_id: NUMBER.phone_number_id.into(),
            waba_id: NUMBER.waba_id.into(),
            display_phone_number: NUMBER.display_phone_number.into(),
            verified_name: "Wagate Crash".into(),
            access_token: access_token.clone(),
            app_secret: app_secret.clone(),
            throughput_per_second: THROUGHPUT_PER_SECOND,
            // Statuses come back as webhooks, through the kills: they are what confirms a send
            // whose answer was lost when the server died mid-call.
            auto_statuses: vec!["sent".into(), "delivered".into(), "read".into()],
            auto_status_delay_ms: 20,
            ..Default::default()
        })
        .context("cannot register the phone number with the emulator")?;
        meta.add_template(emulator::TemplateSeed {
            waba_id: NUMBER.waba_id.into(),
            name: "order_update".into(),
            language: "en".into(),
            category: "UTILITY".into(),
            components: vec![json!({"type": "BODY", "text": "Your order is on its way."})],
            ..Default::default()
        })
        .context("cannot add the template to the emulator")?;

        let store = scratch.open_store().await?;
        let outcome = async {
            let tenant = create_bench_tenant(&store).await?;
            let mut server = ServerProcess::new(settings, scratch, &meta.base_url())?;
            server.start().await?;
            let api = Api::new(server.base_url(), tenant.api_key)?;
            let (connection_id, webhook_url) = api.connect(&access_token, &app_secret).await?;
            meta.update_phone_number(
                NUMBER.phone_number_id,
                PhoneNumberUpdate {
                    webhook_url: Some(Some(webhook_url.clone())),
                    ..Default::default()
                },
            )
            .context("cannot point the emulator's webhooks at the server")?;
            let crash = Crash {
                args,
                backend: scratch.backend(),
                store: &store,
                meta,
                tenant_id: &tenant.tenant_id,
                started,
            };
            let outcome = crash
                .run(&mut server, &api, &connection_id, &webhook_url, &app_secret)
                .await;
            server.stop().await;
            outcome
        }
        .await;
        store.close().await;
        outcome
    })
    .await
}

/// Meta's delivery habit (the first retry at once, then growing waits) with waits short enough
/// that a status webhook refused during a restart arrives soon after the server is back.
fn delivery_policy() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(100),
        factor: 2.0,
        max_delay: Duration::from_secs(2),
        max_attempts: 1000,
        request_timeout: Duration::from_secs(5),
    }
}

/// One run: the resender, the sends and the killer, then the drain and the checks.
struct Crash<'a> {
    args: &'a CrashBenchArgs,
    backend: &'static str,
    store: &'a Store,
    meta: &'a emulator::RunningEmulator,
    tenant_id: &'a str,
    started: Instant,
}

/// What the kill loop saw.
struct KillFigures {
    kills: u64,
    longest_restart: Duration,
    /// Times the server died without being killed.
    unexpected_exits: Vec<String>,
}

impl Crash<'_> {
    async fn run(
        &self,
        server: &mut ServerProcess,
        api: &Api,
        connection_id: &str,
        webhook_url: &str,
        app_secret: &str,
    ) -> anyhow::Result<CrashReport> {
        let webhooks = prepare_webhooks(self.args.webhooks, app_secret).await?;
        let expected: HashSet<String> = webhooks.iter().map(|w| w.wamid.clone()).collect();
        eprintln!(
            "crash test: {} webhooks from {RESENDER_LANES} lanes, {} sends, a SIGKILL every {} ms ±{:.0}%",
            self.args.webhooks,
            self.args.sends,
            self.args.kill_every_ms,
            KILL_JITTER * 100.0
        );
        let resender = Arc::new(Resender::new(
            webhook_url,
            webhooks,
            self.args.webhooks_per_second,
        ));
        let lanes: Vec<_> = (0..RESENDER_LANES)
            .map(|_| {
                let resender = Arc::clone(&resender);
                AbortOnDropHandle::new(tokio::spawn(async move { resender.lane().await }))
            })
            .collect();
        let sends = self.args.sends;
        let queue = {
            let api = api.clone();
            let connection_id = connection_id.to_owned();
            AbortOnDropHandle::new(tokio::spawn(async move {
                api.queue_sends(&connection_id, sends).await
            }))
        };

        let kills = self
            .kill_until_done(server, &resender, &lanes, &queue)
            .await?;
        let queued_ids = queue.await.context("the queueing task failed")??;
        for lane in lanes {
            lane.await.context("a resender lane failed")?;
        }
        eprintln!(
            "crash test: {} webhooks acknowledged and {} sends queued after {} kills; the last server drains",
            resender.acknowledged.load(Ordering::Relaxed),
            queued_ids.len(),
            kills.kills
        );
        let mut problems = kills.unexpected_exits.clone();
        problems.extend(self.drain(server).await?);
        // The checks read what is durable: the last server is killed too before they run.
        server.stop().await;

        let inbound = self.check_inbound(&expected).await?;
        let sends = self.check_sends(&queued_ids).await?;
        let attempts = resender.attempts.load(Ordering::Relaxed);
        let acknowledged = resender.acknowledged.load(Ordering::Relaxed);
        let webhooks = self.args.webhooks;
        if kills.kills == 0 {
            problems.push(format!(
                "the run ended before the first kill; use a shorter --kill-every-ms than {}",
                self.args.kill_every_ms
            ));
        }
        if acknowledged != webhooks {
            problems.push(format!(
                "{acknowledged} of {webhooks} webhooks acknowledged"
            ));
        }
        if inbound.stored != webhooks || inbound.missing > 0 || inbound.duplicates > 0 {
            problems.push(format!(
                "{} inbound messages stored for {webhooks} webhooks ({} missing, {} duplicates, {} not sent by the resender)",
                inbound.stored, inbound.missing, inbound.duplicates, inbound.unexpected
            ));
        }
        if inbound.pending > 0 || inbound.parked > 0 {
            problems.push(format!(
                "the inbox still has {} rows pending and {} parked",
                inbound.pending, inbound.parked
            ));
        }
        problems.extend(send_problems(
            &sends,
            send_count_problem(sends.queued, self.args.sends),
        ));
        let (refused_by_status, no_answer) = resender.refusals();
        Ok(CrashReport {
            backend: self.backend,
            webhooks,
            acknowledged,
            attempts,
            retries: attempts.saturating_sub(acknowledged),
            refused_by_status,
            no_answer,
            kills: kills.kills,
            server_peak_rss_mib: server.peak_rss_kib.map(|kib| round(kib as f64 / 1024.0, 1)),
            longest_restart_seconds: round(kills.longest_restart.as_secs_f64(), 3),
            stored: inbound.stored,
            duplicates: inbound.duplicates,
            missing: inbound.missing,
            inbox_pending: inbound.pending,
            inbox_parked: inbound.parked,
            sends,
            elapsed_seconds: round(self.started.elapsed().as_secs_f64(), 1),
            problems,
        })
    }

    /// Kills and restarts the server at jittered intervals until every webhook is acknowledged,
    /// every send is queued and none of them is still waiting for its outcome.
    async fn kill_until_done(
        &self,
        server: &mut ServerProcess,
        resender: &Resender,
        lanes: &[AbortOnDropHandle<()>],
        queue: &AbortOnDropHandle<anyhow::Result<Vec<String>>>,
    ) -> anyhow::Result<KillFigures> {
        let mut figures = KillFigures {
            kills: 0,
            longest_restart: Duration::ZERO,
            unexpected_exits: Vec::new(),
        };
        let give_up = Instant::now() + RUN_TIMEOUT;
        loop {
            let next_kill = Instant::now() + jittered(self.args.kill_every_ms);
            while Instant::now() < next_kill {
                if lanes.iter().all(AbortOnDropHandle::is_finished)
                    && queue.is_finished()
                    && self.sends_waiting().await? == 0
                {
                    return Ok(figures);
                }
                if let Some(status) = server.exited()? {
                    figures
                        .unexpected_exits
                        .push(format!("the server exited by itself ({status})"));
                    eprintln!("crash test: the server exited by itself ({status}); restarting it");
                    server.start().await?;
                }
                let left = next_kill.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
            if Instant::now() > give_up {
                bail!(
                    "the webhooks and sends were not done within {} s",
                    RUN_TIMEOUT.as_secs()
                );
            }
            let killed_at = Instant::now();
            server.kill().await?;
            figures.kills += 1;
            server.start().await?;
            let restart = killed_at.elapsed();
            figures.longest_restart = figures.longest_restart.max(restart);
            eprintln!(
                "crash test: kill {} at {:.1} s, back in {:.2} s; webhooks {}/{} acknowledged ({} attempts); sends waiting {}",
                figures.kills,
                self.started.elapsed().as_secs_f64(),
                restart.as_secs_f64(),
                resender.acknowledged.load(Ordering::Relaxed),
                self.args.webhooks,
                resender.attempts.load(Ordering::Relaxed),
                self.sends_waiting().await?,
            );
        }
    }

    /// Outbound messages with no outcome yet (queued, or taken by Meta and not yet confirmed).
    async fn sends_waiting(&self) -> anyhow::Result<i64> {
        count(
            self.store,
            "SELECT COUNT(*) AS n FROM messages
             WHERE tenant_id = $1 AND direction = 'outbound' AND status = 'queued'",
            self.tenant_id,
        )
        .await
    }

    /// Lets the last server apply the inbox and settle the sends, and waits for the emulator to
    /// have delivered every status webhook; answers what did not happen in time.
    async fn drain(&self, server: &mut ServerProcess) -> anyhow::Result<Vec<String>> {
        let give_up = Instant::now() + DRAIN_TIMEOUT;
        let mut problems = Vec::new();
        loop {
            let pending = self
                .store
                .inbox_pending_count()
                .await
                .context("cannot count the inbox backlog")?;
            let waiting = self.sends_waiting().await?;
            let deliveries = self
                .meta
                .deliveries()
                .iter()
                .filter(|d| {
                    matches!(
                        d.status,
                        DeliveryStatus::Pending | DeliveryStatus::AwaitingWebhookUrl
                    )
                })
                .count();
            if pending == 0 && waiting == 0 && deliveries == 0 {
                return Ok(problems);
            }
            if let Some(status) = server.exited()? {
                problems.push(format!(
                    "the server exited by itself while draining ({status})"
                ));
                server.start().await?;
            }
            if Instant::now() > give_up {
                problems.push(format!(
                    "after {} s of draining, {pending} inbox rows are pending, {waiting} sends have no outcome and {deliveries} status webhooks are undelivered",
                    DRAIN_TIMEOUT.as_secs()
                ));
                return Ok(problems);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn check_inbound(&self, expected: &HashSet<String>) -> anyhow::Result<InboundFigures> {
        let rows = sqlx::query(
            "SELECT wamid FROM messages WHERE tenant_id = $1 AND direction = 'inbound'",
        )
        .bind(self.tenant_id)
        .fetch_all(self.store.reader())
        .await
        .context("cannot read the inbound messages")?;
        let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
        let mut duplicates = 0u64;
        for row in &rows {
            let wamid: Option<String> = col(row, "wamid")?;
            if !seen.insert(wamid.unwrap_or_default()) {
                duplicates += 1;
            }
        }
        let missing = expected.iter().filter(|w| !seen.contains(*w)).count() as u64;
        let unexpected = seen.iter().filter(|w| !expected.contains(*w)).count() as u64;
        let pending = self
            .store
            .inbox_pending_count()
            .await
            .context("cannot count the inbox backlog")?;
        let parked = self
            .store
            .inbox_entries(self.tenant_id, STATE_PARKED, None, 1000)
            .await
            .context("cannot list parked inbox rows")?
            .len();
        Ok(InboundFigures {
            stored: rows.len() as u64,
            duplicates,
            missing,
            unexpected,
            pending: u64::try_from(pending).unwrap_or(0),
            parked: parked as u64,
        })
    }

    /// Every outbound message's final state against the emulator's log of accepted sends.
    async fn check_sends(&self, queued_ids: &[String]) -> anyhow::Result<SendFigures> {
        let mut taken: HashMap<String, u64> = HashMap::new();
        for sent in self.meta.sent_messages(Some(NUMBER.phone_number_id)) {
            if let Some(id) = sent
                .request
                .get("biz_opaque_callback_data")
                .and_then(Value::as_str)
                .and_then(|data| data.strip_prefix(CALLBACK_PREFIX))
            {
                *taken.entry(id.to_owned()).or_default() += 1;
            }
        }
        let rows = sqlx::query(
            "SELECT id, status, error_code, error_title, error_message FROM messages
             WHERE tenant_id = $1 AND direction = 'outbound'",
        )
        .bind(self.tenant_id)
        .fetch_all(self.store.reader())
        .await
        .context("cannot read the outbound messages")?;
        let mut figures = SendFigures {
            queued: rows.len() as u64,
            ..SendFigures::default()
        };
        let queued: HashSet<&str> = queued_ids.iter().map(String::as_str).collect();
        for row in &rows {
            let id: String = col(row, "id")?;
            let status: String = col(row, "status")?;
            let code: Option<i64> = col(row, "error_code")?;
            let title: Option<String> = col(row, "error_title")?;
            let message: Option<String> = col(row, "error_message")?;
            if !queued.contains(id.as_str()) {
                // Counted in `queued`, which then differs from the number the API handed out.
                continue;
            }
            let times = taken.get(&id).copied().unwrap_or(0);
            if times > 1 {
                figures.sent_twice += 1;
                continue;
            }
            match status.as_str() {
                "sent" | "delivered" | "read" if times == 1 => figures.sent_once += 1,
                "sent" | "delivered" | "read" => figures.sent_without_meta += 1,
                "failed" => {
                    let reason = [&title, &message]
                        .into_iter()
                        .flatten()
                        .find(|text| !text.trim().is_empty());
                    match reason {
                        Some(_) => {
                            figures.failed_with_reason += 1;
                            if times == 1 {
                                figures.failed_after_meta_took_it += 1;
                            }
                            let label = title
                                .clone()
                                .or_else(|| code.map(|c| format!("code {c}")))
                                .unwrap_or_else(|| "untitled".to_owned());
                            *figures.failure_reasons.entry(label).or_default() += 1;
                        }
                        None => figures.failed_without_reason += 1,
                    }
                }
                _ => figures.unfinished += 1,
            }
        }
        Ok(figures)
    }
}

struct InboundFigures {
    stored: u64,
    duplicates: u64,
    missing: u64,
    /// Stored wamids the resender never sent (there should be none).
    unexpected: u64,
    pending: u64,
    parked: u64,
}

/// Outbound messages in the database must be exactly the sends queued: a retried request that
/// had got through is answered by its idempotency key, not queued again.
fn send_count_problem(in_database: u64, asked: u64) -> Option<String> {
    (in_database != asked).then(|| {
        format!("{in_database} outbound messages in the database for {asked} queued (idempotency keys must make them equal)")
    })
}

fn send_problems(sends: &SendFigures, count_mismatch: Option<String>) -> Vec<String> {
    let mut problems: Vec<String> = count_mismatch.into_iter().collect();
    if sends.sent_twice > 0 {
        problems.push(format!(
            "{} messages reached Meta more than once",
            sends.sent_twice
        ));
    }
    if sends.failed_without_reason > 0 {
        problems.push(format!(
            "{} messages failed without saying why",
            sends.failed_without_reason
        ));
    }
    if sends.sent_without_meta > 0 {
        problems.push(format!(
            "{} messages are marked sent but Meta never took them",
            sends.sent_without_meta
        ));
    }
    if sends.unfinished > 0 {
        problems.push(format!(
            "{} messages never reached a final state",
            sends.unfinished
        ));
    }
    problems
}

/// A kill interval: `kill_every_ms` moved at random by up to `KILL_JITTER` either way.
fn jittered(kill_every_ms: u64) -> Duration {
    let factor = 1.0 + rand::random_range(-KILL_JITTER..=KILL_JITTER);
    Duration::from_secs_f64(kill_every_ms as f64 * factor / 1000.0)
}

/// The `wagate serve` process under test: this binary, on the scratch database and a fixed port.
struct ServerProcess {
    exe: PathBuf,
    env: Vec<(&'static str, String)>,
    addr: SocketAddr,
    /// Every incarnation's stderr, appended, in the scratch directory.
    log: PathBuf,
    child: Option<Child>,
    client: reqwest::Client,
    /// The most memory any incarnation held resident at its peak (`VmHWM`), in KiB, read just
    /// before it was killed; `None` where `/proc` cannot tell.
    peak_rss_kib: Option<u64>,
}

impl ServerProcess {
    fn new(settings: &Settings, scratch: &Scratch, graph_base: &str) -> anyhow::Result<Self> {
        let exe =
            std::env::current_exe().context("cannot find this program to start the server")?;
        let addr = free_local_port()?;
        let key = Zeroizing::new(rand::random::<[u8; 32]>());
        let master_key = SecretString::from(STANDARD.encode(key.as_slice()));
        let mut env = vec![
            ("WAGATE_DATA_DIR", scratch.dir.display().to_string()),
            (
                "WAGATE_DATABASE_URL",
                scratch.database_url.as_str().to_owned(),
            ),
            ("WAGATE_LISTEN", addr.to_string()),
            ("WAGATE_GRAPH_API_BASE", graph_base.to_owned()),
            (
                "WAGATE_GRAPH_API_VERSION",
                settings.graph_api_version.clone(),
            ),
            ("WAGATE_MASTER_KEY", master_key.expose_secret().to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        env.extend(SERVER_TUNING.map(|(key, value)| (key, value.to_owned())));
        Ok(Self {
            exe,
            env,
            addr,
            log: scratch.dir.join("server.log"),
            child: None,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(1))
                .build()
                .context("cannot build an HTTP client")?,
            peak_rss_kib: None,
        })
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts a server and waits until it answers `/healthz`.
    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        // Only what this run sets: the user's own WAGATE_* variables must not reach the server.
        let child = Command::new(&self.exe)
            .env_clear()
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server process")?;
        self.child = Some(child);
        let url = format!("{}/healthz", self.base_url());
        let give_up = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exited()? {
                bail!(
                    "the server exited while starting ({status}); its log is {}",
                    self.log.display()
                );
            }
            if let Ok(response) = self.client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > give_up {
                bail!(
                    "the server did not answer {url} within {} s",
                    START_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (what `kill` is on unix): no chance to finish or flush anything.
    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(peak) = child.id().and_then(peak_rss_kib) {
                self.peak_rss_kib = Some(self.peak_rss_kib.unwrap_or(0).max(peak));
            }
            child.kill().await.context("cannot kill the server")?;
        }
        Ok(())
    }

    /// Kills the server, if it runs, for the end of the run.
    async fn stop(&mut self) {
        if let Err(error) = self.kill().await {
            tracing::warn!(error = %format!("{error:#}"), "cannot stop the server process");
        }
    }

    /// How the server ended, if it did.
    fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match &mut self.child {
            Some(child) => {
                let status = child
                    .try_wait()
                    .context("cannot check the server process")?;
                if status.is_some() {
                    self.child = None;
                }
                Ok(status)
            }
            None => Ok(None),
        }
    }
}

/// A process's peak resident memory in KiB, from the `VmHWM` line of `/proc/<pid>/status`.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

/// A port nothing listens on now; every incarnation of the server binds it in turn.
fn free_local_port() -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port")?;
    listener.local_addr().context("cannot find a free port")
}

/// One webhook as the resender delivers it, the same bytes on every retry as Meta's are.
struct PreparedWebhook {
    wamid: String,
    body: Bytes,
    signature: HeaderValue,
}

/// Builds and signs every webhook before the run (CPU work, off the runtime).
async fn prepare_webhooks(count: u64, app_secret: &str) -> anyhow::Result<Vec<PreparedWebhook>> {
    let secret = app_secret.as_bytes().to_vec();
    let timestamp = payloads::unix_now();
    tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|n| {
                let from = (16_505_550_000u64 + n % CUSTOMERS).to_string();
                let wamid = payloads::new_inbound_wamid(&from);
                let text = json!({ "body": format!("Crash test message {n}") });
                let webhook = payloads::inbound_message_webhook(
                    &NUMBER,
                    &format!("Customer {}", n % CUSTOMERS),
                    &InboundMessage {
                        wamid: &wamid,
                        from: &from,
                        timestamp,
                        message_type: "text",
                        content: &text,
                        context: None,
                        referral: None,
                    },
                );
                let body = serde_json::to_vec(&webhook)?;
                let signature = HeaderValue::from_str(&cloudapi::signature::sign(&secret, &body))
                    .context("a signature is not a valid header value")?;
                Ok(PreparedWebhook {
                    wamid,
                    body: Bytes::from(body),
                    signature,
                })
            })
            .collect()
    })
    .await
    .context("building the webhooks failed")?
}

/// Delivers the webhooks like Meta: each POSTed until it gets 200, anything else retried.
struct Resender {
    url: String,
    webhooks: Vec<PreparedWebhook>,
    /// When the first webhook is handed out, and how many per second after it (0: no pace).
    started: std::time::Instant,
    per_second: u64,
    next: AtomicUsize,
    attempts: AtomicU64,
    acknowledged: AtomicU64,
    no_answer: AtomicU64,
    /// Answers other than 200, by status code; behind a lock, as they are rare next to 200s.
    refused: std::sync::Mutex<BTreeMap<u16, u64>>,
}

impl Resender {
    fn new(url: &str, webhooks: Vec<PreparedWebhook>, per_second: u64) -> Self {
        Self {
            url: url.to_owned(),
            webhooks,
            started: std::time::Instant::now(),
            per_second,
            next: AtomicUsize::new(0),
            attempts: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            no_answer: AtomicU64::new(0),
            refused: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// One lane: takes the next webhook and delivers it, until none is left.
    async fn lane(&self) {
        let client = match reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(REQUEST_TIMEOUT)
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                // Without a client the lane cannot deliver; the count of acknowledged webhooks
                // then falls short and the run fails saying so.
                tracing::error!(%error, "cannot build an HTTP client for a resender lane");
                return;
            }
        };
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(webhook) = self.webhooks.get(index) else {
                return;
            };
            if self.per_second > 0 {
                let due = Duration::from_secs_f64(index as f64 / self.per_second as f64);
                tokio::time::sleep_until((self.started + due).into()).await;
            }
            let mut backoff = FIRST_BACKOFF;
            loop {
                self.attempts.fetch_add(1, Ordering::Relaxed);
                match self.deliver(&client, webhook).await {
                    Some(StatusCode::OK) => {
                        self.acknowledged.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Some(status) => {
                        if let Ok(mut refused) = self.refused.lock() {
                            *refused.entry(status.as_u16()).or_default() += 1;
                        }
                    }
                    None => {
                        self.no_answer.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let spread = rand::random_range(0.5..1.5);
                tokio::time::sleep(backoff.mul_f64(spread)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// One POST; the status of a complete answer, or `None` when there was none.
    async fn deliver(
        &self,
        client: &reqwest::Client,
        webhook: &PreparedWebhook,
    ) -> Option<StatusCode> {
        let response = client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                cloudapi::signature::SIGNATURE_HEADER,
                webhook.signature.clone(),
            )
            .body(webhook.body.clone())
            .send()
            .await
            .ok()?;
        let status = response.status();
        // A 200 counts only once its whole answer is in, as Meta counts it.
        response.bytes().await.ok()?;
        Some(status)
    }

    fn refusals(&self) -> (BTreeMap<String, u64>, u64) {
        let refused = self
            .refused
            .lock()
            .map(|refused| {
                refused
                    .iter()
                    .map(|(status, n)| (status.to_string(), *n))
                    .collect()
            })
            .unwrap_or_default();
        (refused, self.no_answer.load(Ordering::Relaxed))
    }
}

/// The tenant's REST API on the server's fixed address, retried through restarts.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    api_key: Arc<SecretString>,
}

impl Api {
    fn new(base: String, api_key: SecretString) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(2))
                .timeout(REQUEST_TIMEOUT)
                .build()
                .context("cannot build an HTTP client")?,
            base,
            api_key: Arc::new(api_key),
        })
    }

    /// Connects the number (its templates come along); answers the connection id and webhook URL.
    async fn connect(
        &self,
        access_token: &str,
        app_secret: &str,
    ) -> anyhow::Result<(String, String)> {
        let body = json!({
            "access_token": access_token,
            "phone_number_id": NUMBER.phone_number_id,
            "app_secret": app_secret,
            "waba_id": NUMBER.waba_id,
        });
        super::fleet::post_connection(&self.client, &self.base, &self.api_key, &body).await
    }

    /// Queues `count` template sends, each to its own customer, from a few concurrent clients;
    /// answers their message ids.
    async fn queue_sends(&self, connection_id: &str, count: u64) -> anyhow::Result<Vec<String>> {
        let mut queued = futures::stream::iter(0..count)
            .map(|n| self.queue_send(connection_id, n))
            .buffer_unordered(QUEUE_LANES);
        let mut ids = Vec::new();
        while let Some(id) = queued.next().await {
            ids.push(id?);
        }
        Ok(ids)
    }

    /// One send, retried through refused connections, 5xx and 429 until it is queued: its
    /// idempotency key makes a retry of a request that did get through answer the same message.
    async fn queue_send(&self, connection_id: &str, n: u64) -> anyhow::Result<String> {
        let body = json!({
            "connection_id": connection_id,
            "to": format!("49152{n:08}"),
            "type": "template",
            "template": {"name": "order_update", "language": {"code": "en"}},
            "idempotency_key": format!("crash-{n}"),
        });
        let url = format!("{}/api/v1/messages", self.base);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let answer = self
                .client
                .post(&url)
                .bearer_auth(self.api_key.expose_secret())
                .json(&body)
                .send()
                .await;
            let mut wait = backoff;
            if let Ok(response) = answer {
                let status = response.status();
                if status == StatusCode::TOO_MANY_REQUESTS
                    && let Some(seconds) = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                {
                    wait = Duration::from_secs(seconds.min(60));
                }
                match response.json::<Value>().await {
                    Ok(answer) if status.is_success() => {
                        return answer
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .with_context(|| format!("a queued message has no id: {answer}"));
                    }
                    Ok(answer)
                        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS =>
                    {
                        bail!("POST /api/v1/messages answered {status}: {answer}");
                    }
                    // A 5xx, a 429 or an answer cut off by a kill: try again.
                    _ => {}
                }
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_is_read_from_the_vm_hwm_line() {
        let status =
            "Name:\twagate\nVmPeak:\t  912340 kB\nVmHWM:\t   48212 kB\nVmRSS:\t   40100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(48_212));
        assert_eq!(parse_vm_hwm("Name:\twagate\n"), None);
        if cfg!(target_os = "linux") {
            let own = peak_rss_kib(std::process::id()).expect("this process's VmHWM");
            assert!(
                own > 1024,
                "a running test holds more than 1 MiB: {own} KiB"
            );
        }
    }

    #[test]
    fn kill_intervals_stay_within_thirty_percent() {
        for _ in 0..1000 {
            let ms = jittered(1000).as_millis();
            assert!((700..=1300).contains(&ms), "{ms} ms");
        }
    }

    #[test]
    fn a_send_reaching_meta_twice_or_failing_silently_is_a_problem() {
        let clean = SendFigures {
            queued: 10,
            sent_once: 9,
            failed_with_reason: 1,
            ..SendFigures::default()
        };
        assert!(send_problems(&clean, send_count_problem(10, 10)).is_empty());
        let twice = SendFigures {
            sent_twice: 1,
            ..SendFigures::default()
        };
        assert_eq!(send_problems(&twice, None).len(), 1);
        let silent = SendFigures {
            failed_without_reason: 2,
            unfinished: 1,
            ..SendFigures::default()
        };
        assert_eq!(send_problems(&silent, send_count_problem(11, 10)).len(), 3);
    }

    #[tokio::test]
    async fn prepared_webhooks_carry_one_new_message_each_and_verify() {
        let webhooks = prepare_webhooks(5, "secret").await.unwrap();
        let wamids: HashSet<&str> = webhooks.iter().map(|w| w.wamid.as_str()).collect();
        assert_eq!(wamids.len(), 5);
        for webhook in &webhooks {
            assert!(
                cloudapi::signature::verify(
                    b"secret",
                    &webhook.body,
                    Some(webhook.signature.as_bytes())
                )
                .is_ok()
            );
            let json: Value = serde_json::from_slice(&webhook.body).unwrap();
            let messages = &json["entry"][0]["changes"][0]["value"]["messages"];
            assert_eq!(messages.as_array().unwrap().len(), 1);
            assert_eq!(messages[0]["id"], webhook.wamid.as_str());
        }
    }
}
