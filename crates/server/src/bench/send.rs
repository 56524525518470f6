//! `wagate bench send`: how fast the sender drains its queue against Meta's limits.
//!
//! The production server (in this process, on a throwaway database) sends through the project's
//! emulator, which enforces each number's throughput the way Meta does (130429 over it). Two runs:
//!
//! 1. one number with `--single-number-messages` template messages: sends per second against its
//!    limit (80/s), first accepted call to last;
//! 2. `--numbers` numbers of `--tenants` tenants with `--messages-per-number` each: the aggregate
//!    sends per second, each message queued with its own tenant's API key.
//!
//! Messages are queued through the REST API first; a run measures from the moment every message
//! of it is queued (sends that left while queueing are counted out), so the figure is the
//! sender's and not the queueing client's. When the sender keeps up with queueing (little is left
//! once it ends), that figure says nothing; the run also prints every message over the time from
//! the first queueing request to the last send, which is what the two carry together.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use emulator::{GraphEndpoint, RetryPolicy};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};

use super::fleet::{Fleet, FleetShape, TemplateSeed};
use super::{Scratch, bench_settings};
use crate::config::Settings;
use crate::embedded::EmbeddedServer;
use crate::store::Store;

/// Meta's default throughput per number, which the emulator enforces.
const LIMIT_PER_SECOND: u32 = 80;
/// Concurrent requests queueing messages through the API.
const QUEUE_CONCURRENCY: usize = 32;

#[derive(Debug, Args)]
pub struct SendBenchArgs {
    /// Numbers in the aggregate run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    pub numbers: u64,

    /// Tenants the aggregate run's numbers belong to (number i to tenant i % tenants); at most
    /// `--numbers`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub tenants: u64,

    /// Messages queued for each number of the aggregate run.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub messages_per_number: u64,

    /// Messages of the one-number run (0 skips it).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub single_number_messages: u64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct RunFigures {
    tenants: u64,
    numbers: u64,
    messages: u64,
    seconds: f64,
    sends_per_second: f64,
    sends_per_second_per_number: f64,
    limit_per_number: u32,
    rejected_130429: u64,
    queueing_seconds: f64,
    /// Every message over the time from the first queueing request to the last send: what the
    /// API and the sender carry together while they compete for the machine.
    end_to_end_per_second: f64,
    /// The longest pause between two consecutive accepted sends (one-number run), and how many
    /// sends had left before it: a stall shows here instead of hiding in the average.
    longest_gap_seconds: f64,
    longest_gap_after: usize,
}

#[derive(Debug, Serialize)]
struct SendReport {
    backend: &'static str,
    single_number: Option<RunFigures>,
    many_numbers: RunFigures,
}

/// Runs both measurements on a fresh database of the configured backend and prints the figures.
pub async fn send(settings: Settings, args: SendBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(&settings.database_url).await?;
    let outcome = tokio::select! {
        outcome = run(&settings, &args, &scratch) => outcome,
        () = crate::cli::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    let cleanup = scratch.finish(false).await;
    let report = outcome?;
    cleanup?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Starts the emulator and the server against it, measures, and stops both however that went.
async fn run(
    settings: &Settings,
    args: &SendBenchArgs,
    scratch: &Scratch,
) -> anyhow::Result<SendReport> {
    crate::embedded::with_emulator(RetryPolicy::fast(), async |meta| {
        let settings = bench_settings(settings, scratch, &meta.base_url())?;
        let server = EmbeddedServer::start(settings).await?;
        let outcome = async {
            let bench = Bench {
                client: reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .context("cannot build an HTTP client")?,
                base: format!("http://{}", server.addr),
                store: &server.store,
                meta,
            };
            let single_number = if args.single_number_messages > 0 {
                Some(bench.measure(0, 1, 1, args.single_number_messages).await?)
            } else {
                None
            };
            let many_numbers = bench
                .measure(1, args.tenants, args.numbers, args.messages_per_number)
                .await?;
            anyhow::Ok(SendReport {
                backend: scratch.backend(),
                single_number,
                many_numbers,
            })
        }
        .await;
        server.stop_logged().await;
        outcome
    })
    .await
}

struct Bench<'a> {
    client: reqwest::Client,
    base: String,
    store: &'a Store,
    meta: &'a emulator::RunningEmulator,
}

impl Bench<'_> {
    /// Connects `count` new numbers (ids from `first`) of `tenants` new tenants, queues
    /// `per_number` messages to each, and measures the sends from the moment all are queued until
    /// Meta has taken every one.
    async fn measure(
        &self,
        first: u64,
        tenants: u64,
        count: u64,
        per_number: u64,
    ) -> anyhow::Result<RunFigures> {
        let fleet = Fleet::build(
            self.store,
            &self.base,
            self.meta,
            &FleetShape {
                tenants,
                numbers: count,
                first_id: first,
                template: Some(TemplateSeed {
                    name: "order_update",
                    body: "Your order is on its way.",
                }),
                throughput_per_second: LIMIT_PER_SECOND,
            },
        )
        .await?;
        let total = count * per_number;
        let queueing = Instant::now();
        // Round by round over the numbers, so every number (and tenant) has sends waiting from
        // the start, as when a platform's tenants all send at once.
        let requests = (0..per_number).flat_map(|i| fleet.numbers.iter().map(move |n| (n, i)));
        let mut queued = futures::stream::iter(requests)
            .map(|(number, i)| {
                self.queue(
                    &fleet.tenants[number.tenant].api_key,
                    &number.connection_id,
                    i,
                )
            })
            .buffer_unordered(QUEUE_CONCURRENCY);
        while let Some(result) = queued.next().await {
            result?;
        }
        let queueing_seconds = queueing.elapsed().as_secs_f64();

        let ids: Vec<&str> = fleet
            .numbers
            .iter()
            .map(|n| n.phone_number_id.as_str())
            .collect();
        // Asking the emulator about every number costs it a lock each; with thousands of
        // numbers, ask less often so the asking does not compete with the sender.
        let poll_every = Duration::from_millis((count / 50).clamp(20, 500));
        let (accepted_at_start, _) = self.counters(&ids);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(total / 10 + 120);
        let (mut accepted, mut rejected);
        loop {
            (accepted, rejected) = self.counters(&ids);
            if accepted >= total {
                break;
            }
            if Instant::now() > deadline {
                bail!("only {accepted} of {total} messages were sent in time");
            }
            tokio::time::sleep(poll_every).await;
        }
        let (seconds, longest_gap_seconds, longest_gap_after) = if count == 1 {
            // One number: first accepted call to last, as Meta would count its pace.
            self.accepted_span(ids[0])
        } else {
            (started.elapsed().as_secs_f64(), 0.0, 0)
        };
        let measured = if count == 1 {
            total.saturating_sub(1)
        } else {
            total - accepted_at_start
        };
        let sends_per_second = measured as f64 / seconds.max(1e-9);
        let end_to_end_per_second = total as f64 / queueing.elapsed().as_secs_f64().max(1e-9);
        Ok(RunFigures {
            tenants,
            numbers: count,
            messages: total,
            seconds,
            sends_per_second,
            sends_per_second_per_number: sends_per_second / count as f64,
            limit_per_number: LIMIT_PER_SECOND,
            rejected_130429: rejected,
            queueing_seconds,
            end_to_end_per_second,
            longest_gap_seconds,
            longest_gap_after,
        })
    }

    async fn queue(
        &self,
        api_key: &SecretString,
        connection_id: &str,
        i: u64,
    ) -> anyhow::Result<()> {
        // A different customer for every message, so only the number's throughput limits the pace.
        let body = json!({
            "connection_id": connection_id,
            "to": format!("49152{i:08}"),
            "type": "template",
            "template": {"name": "order_update", "language": {"code": "en"}},
        });
        self.post(api_key, "/api/v1/messages", &body)
            .await
            .map(|_| ())
    }

    async fn post(
        &self,
        api_key: &SecretString,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(api_key.expose_secret())
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path} failed"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .with_context(|| format!("POST {path} did not answer JSON"))?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Sends Meta accepted and refused with 130429, over the given numbers.
    fn counters(&self, ids: &[&str]) -> (u64, u64) {
        ids.iter()
            .filter_map(|id| self.meta.send_counters(id))
            .fold((0, 0), |(accepted, rejected), c| {
                (
                    accepted + c.accepted_sends,
                    rejected + c.rejected_throughput,
                )
            })
    }

    /// Seconds from the first accepted send of a number to its last, and the longest pause
    /// between two of them (with the number of sends before it).
    fn accepted_span(&self, phone_number_id: &str) -> (f64, f64, usize) {
        let mut times: Vec<std::time::SystemTime> = self
            .meta
            .calls(Some(phone_number_id), Some(GraphEndpoint::Messages))
            .into_iter()
            .filter(|call| call.http_status == Some(200))
            .map(|call| call.received_at)
            .collect();
        times.sort();
        let seconds_between = |a: &std::time::SystemTime, b: &std::time::SystemTime| {
            b.duration_since(*a).unwrap_or_default().as_secs_f64()
        };
        let (gap, after) = times
            .windows(2)
            .enumerate()
            .map(|(i, pair)| (seconds_between(&pair[0], &pair[1]), i + 1))
            .fold(
                (0.0, 0),
                |best, gap| if gap.0 > best.0 { gap } else { best },
            );
        match (times.first(), times.last()) {
            (Some(first), Some(last)) => (seconds_between(first, last), gap, after),
            _ => (0.0, 0.0, 0),
        }
    }
}

fn print_table(report: &SendReport) {
    println!("wagate bench send ({})", report.backend);
    let runs = [
        ("one number", report.single_number.as_ref()),
        ("many numbers", Some(&report.many_numbers)),
    ];
    for (label, run) in runs {
        let Some(run) = run else { continue };
        let detail = if run.numbers == 1 {
            format!(
                "  longest pause {:.2} s after {} sends",
                run.longest_gap_seconds, run.longest_gap_after
            )
        } else {
            format!(
                "  queueing and sending together: {:.1} messages/s",
                run.end_to_end_per_second
            )
        };
        println!(
            "  {label:<13} {:>5} tenants {:>6} numbers  {:>6} messages  {:>7.2} s  {:>8.1} sends/s  {:>5.1} per number (limit {})  130429: {}  (queueing took {:.1} s){detail}",
            run.tenants,
            run.numbers,
            run.messages,
            run.seconds,
            run.sends_per_second,
            run.sends_per_second_per_number,
            run.limit_per_number,
            run.rejected_130429,
            run.queueing_seconds,
        );
    }
}
