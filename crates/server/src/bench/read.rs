//! `wagate bench read`: how fast a 50-message page comes out of a store holding millions of
//! messages, through the real read path (`Store::messages`, `Store::conversations`).
//!
//! A throwaway database is migrated and filled with set-based SQL (PostgreSQL: `generate_series`;
//! SQLite: a recursive CTE), one transaction per chunk. The rows follow a formula, so every page
//! read has a known expected answer and is checked against it: at most 50 rows, newest first, all
//! of the tenant asked for, and the exact count and first message the formula says.
//!
//! Message `m` belongs to conversation `m % conversations`, conversation `k` to tenant
//! `k % tenants` and to one of that tenant's two connections; messages are `STEP_MS` apart, so
//! every conversation's messages interleave in time with the others' of its tenant.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Latency, Scratch, create_bench_tenant, per_second};
use crate::config::Settings;
use crate::store::conversations::ConversationQuery;
use crate::store::messages::{MessageQuery, MessageRow};
use crate::store::{Backend, Store};

/// Rows in one page, as the API and the dashboard ask for.
const PAGE: i64 = 50;
/// Messages inserted by one statement (and one transaction).
const MESSAGES_PER_CHUNK: i64 = 1_000_000;
/// Each tenant has this many connections (numbers); its conversations alternate between them.
const CONNECTIONS_PER_TENANT: i64 = 2;
/// Reads of every kind before the measured ones, so caches and prepared statements are warm.
const WARM_UP_READS: u64 = 100;
/// The first message's time (Unix milliseconds) and the gap between consecutive messages.
const FIRST_MESSAGE_AT: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 25;

#[derive(Debug, Args)]
pub struct ReadBenchArgs {
    /// Messages in the store.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(i64).range(1..=1_000_000_000))]
    pub messages: i64,

    /// Tenants the messages are spread over (one of them created the real way, with its owner).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub tenants: i64,

    /// Conversations in total, spread evenly over the tenants; at least one per tenant.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub conversations: i64,

    /// Measured reads of each kind.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub reads: u64,

    /// Keep the temporary database (to look at query plans) instead of deleting it.
    #[arg(long)]
    pub keep_data: bool,
}

/// Fills a fresh database of the configured backend, measures the reads and prints the figures.
pub async fn read(settings: Settings, args: ReadBenchArgs) -> anyhow::Result<()> {
    if args.conversations < args.tenants {
        bail!("--conversations must be at least --tenants (every tenant has a conversation)");
    }
    let scratch = Scratch::create(&settings.database_url).await?;
    // Ctrl-C abandons the run but still deletes the scratch data.
    let outcome = tokio::select! {
        outcome = run(&args, &scratch) => outcome,
        () = crate::cli::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    let cleanup = scratch.finish(args.keep_data).await;
    outcome?;
    cleanup
}

async fn run(args: &ReadBenchArgs, scratch: &Scratch) -> anyhow::Result<()> {
    let store = scratch.open_store().await?;
    let outcome = async {
        let first_tenant = create_bench_tenant(&store).await?.tenant_id;
        let layout = Layout {
            messages: args.messages,
            tenants: args.tenants,
            conversations: args.conversations,
            first_tenant,
        };
        println!(
            "wagate bench read ({}): {} messages, {} tenants, {} conversations",
            scratch.backend(),
            layout.messages,
            layout.tenants,
            layout.conversations
        );
        fill(&store, &layout).await?;
        measure(&store, &layout, args.reads).await
    }
    .await;
    store.close().await;
    outcome
}

/// The shape of the generated data; the SQL that writes it and the checks that read it both
/// follow these formulas.
struct Layout {
    messages: i64,
    tenants: i64,
    conversations: i64,
    /// Tenant 0 is the one `create_bench_tenant` made; the others are generated rows.
    first_tenant: String,
}

impl Layout {
    fn tenant_id(&self, t: i64) -> String {
        if t == 0 {
            self.first_tenant.clone()
        } else {
            synthetic_id(kind::TENANT, t)
        }
    }

    fn tenant_of(&self, conversation: i64) -> i64 {
        conversation % self.tenants
    }

    /// Messages in conversation `k`: those `m < messages` with `m % conversations == k`.
    fn conversation_len(&self, k: i64) -> i64 {
        if k < self.messages {
            (self.messages - 1 - k) / self.conversations + 1
        } else {
            0
        }
    }

    /// The `j`-th (oldest first) message of conversation `k`.
    fn message_of(&self, k: i64, j: i64) -> i64 {
        k + self.conversations * j
    }
}

fn message_at(m: i64) -> i64 {
    FIRST_MESSAGE_AT + m * STEP_MS
}

/// Prefixes of the generated ids, one per table; the rest is the row's number in hex, so ids sort
/// by number the way time-ordered UUIDs sort by creation.
mod kind {
    pub const TENANT: &str = "b0000001";
    pub const CONNECTION: &str = "b0000002";
    pub const CONTACT: &str = "b0000003";
    pub const CONVERSATION: &str = "b0000004";
    pub const MESSAGE: &str = "b0000005";
}

fn synthetic_id(kind: &str, n: i64) -> String {
    format!("{kind}-0000-7000-8000-{n:012x}")
}

/// The SQL of one backend for the few places where the two differ.
struct Dialect(Backend);

impl Dialect {
    /// Same text as `synthetic_id(kind, expr)`.
    fn id(&self, kind: &str, expr: &str) -> String {
        match self.0 {
            Backend::Postgres => {
                format!("('{kind}-0000-7000-8000-' || lpad(to_hex({expr}), 12, '0'))")
            }
            Backend::Sqlite => format!("('{kind}-0000-7000-8000-' || printf('%012x', {expr}))"),
        }
    }

    /// The tenant id of tenant number `expr`; `$3` is the first tenant's id.
    fn tenant_id(&self, expr: &str) -> String {
        format!(
            "(CASE WHEN {expr} = 0 THEN $3 ELSE {} END)",
            self.id(kind::TENANT, expr)
        )
    }

    /// `INSERT ... SELECT` over the numbers `$1..=$2`, named `g` in `select`.
    fn insert_series(&self, insert: &str, select: &str) -> String {
        match self.0 {
            Backend::Postgres => {
                format!("{insert} {select} FROM generate_series($1::BIGINT, $2::BIGINT) AS s(g)")
            }
            Backend::Sqlite => format!(
                "WITH RECURSIVE s(g) AS (SELECT $1 UNION ALL SELECT g + 1 FROM s WHERE g < $2)
                 {insert} {select} FROM s"
            ),
        }
    }
}

/// Runs one generated `INSERT` over `first..=last` in its own transaction.
async fn insert_range(
    store: &Store,
    sql: &str,
    first: i64,
    last: i64,
    layout: &Layout,
) -> anyhow::Result<u64> {
    if first > last {
        return Ok(0);
    }
    let mut tx = store.begin_derived().await?;
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(first)
        .bind(last)
        .bind(layout.first_tenant.as_str())
        .bind(layout.conversations)
        .bind(layout.tenants)
        .bind(layout.messages)
        .bind(FIRST_MESSAGE_AT)
        .bind(STEP_MS)
        .execute(&mut *tx)
        .await
        .context("a bulk insert failed")?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

async fn fill(store: &Store, layout: &Layout) -> anyhow::Result<()> {
    let d = Dialect(store.backend());
    let started = Instant::now();
    // Parameters of every statement: $1..=$2 the numbers, $3 the first tenant's id,
    // $4 conversations, $5 tenants, $6 messages, $7 the first message's time, $8 the step.
    let tenants = d.insert_series(
        "INSERT INTO tenants (id, name, created_at)",
        &format!(
            "SELECT {}, 'Bench tenant ' || CAST(g AS TEXT), $7",
            d.id(kind::TENANT, "g")
        ),
    );
    // Connection c belongs to tenant c / CONNECTIONS_PER_TENANT.
    let connections = d.insert_series(
        "INSERT INTO connections (id, tenant_id, phone_number_id, waba_id, display_phone_number,
             verified_name, connection_key, status, created_at, updated_at)",
        &format!(
            "SELECT {}, {}, CAST(900000000000000 + g AS TEXT), CAST(800000000000000 + g AS TEXT),
                 '1555' || CAST(g AS TEXT), 'Bench ' || CAST(g AS TEXT),
                 'bench-' || CAST(g AS TEXT), 'connected', $7, $7",
            d.id(kind::CONNECTION, "g"),
            d.tenant_id(&format!("(g / {CONNECTIONS_PER_TENANT})")),
        ),
    );
    let contacts = d.insert_series(
        "INSERT INTO contacts (id, tenant_id, wa_id, name, created_at, updated_at)",
        &format!(
            "SELECT {}, {}, CAST(491520000000 + g AS TEXT), 'Customer ' || CAST(g AS TEXT), $7, $7",
            d.id(kind::CONTACT, "g"),
            d.tenant_id("(g % $5)"),
        ),
    );
    // Conversation k: tenant k % tenants, its connection (k / tenants) % 2, contact k; its last
    // message is the largest m < messages with m % conversations = k.
    let connection_of =
        format!("((g % $5) * {CONNECTIONS_PER_TENANT} + (g / $5) % {CONNECTIONS_PER_TENANT})");
    let conversations = d.insert_series(
        "INSERT INTO conversations (id, tenant_id, connection_id, contact_id, unread_count,
             last_message_at, last_message_preview, created_at, updated_at)",
        &format!(
            "SELECT {}, {}, {}, {}, 0,
                 CASE WHEN g < $6 THEN $7 + $8 * (g + $4 * (($6 - 1 - g) / $4)) END,
                 'Bench message', $7, $7",
            d.id(kind::CONVERSATION, "g"),
            d.tenant_id("(g % $5)"),
            d.id(kind::CONNECTION, &connection_of),
            d.id(kind::CONTACT, "g"),
        ),
    );
    let message_connection = format!(
        "(((g % $4) % $5) * {CONNECTIONS_PER_TENANT} + ((g % $4) / $5) % {CONNECTIONS_PER_TENANT})"
    );
    // Even messages come in, odd ones go out and were read; payloads are the size of a short text.
    let messages = d.insert_series(
        "INSERT INTO messages (id, tenant_id, connection_id, conversation_id, contact_id,
             direction, wamid, type, payload, status, status_rank, message_at, created_at,
             updated_at)",
        &format!(
            "SELECT {}, {}, {}, {}, {},
                 CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
                 'wamid.HBgLNDkxNTIwMDAwMDAVAgASGBQz' || CAST(g AS TEXT), 'text',
                 '{{\"type\":\"text\",\"text\":{{\"body\":\"Hello, this is bench message number '
                     || CAST(g AS TEXT) || ' about the order you placed last week.\"}}}}',
                 CASE WHEN g % 2 = 0 THEN 'received' ELSE 'read' END,
                 CASE WHEN g % 2 = 0 THEN 0 ELSE 3 END,
                 $7 + $8 * g, $7 + $8 * g, $7 + $8 * g",
            d.id(kind::MESSAGE, "g"),
            d.tenant_id("((g % $4) % $5)"),
            d.id(kind::CONNECTION, &message_connection),
            d.id(kind::CONVERSATION, "(g % $4)"),
            d.id(kind::CONTACT, "(g % $4)"),
        ),
    );

    // Tenant 0 exists already.
    insert_range(store, &tenants, 1, layout.tenants - 1, layout).await?;
    let connection_count = layout.tenants * CONNECTIONS_PER_TENANT;
    insert_range(store, &connections, 0, connection_count - 1, layout).await?;
    insert_range(store, &contacts, 0, layout.conversations - 1, layout).await?;
    insert_range(store, &conversations, 0, layout.conversations - 1, layout).await?;
    let setup = started.elapsed();

    let filling = Instant::now();
    let mut inserted = 0;
    let mut first = 0;
    while first < layout.messages {
        let last = (first + MESSAGES_PER_CHUNK).min(layout.messages) - 1;
        inserted += insert_range(store, &messages, first, last, layout).await?;
        tracing::info!(
            inserted,
            seconds = format!("{:.1}", filling.elapsed().as_secs_f64()),
            "messages inserted"
        );
        first = last + 1;
    }
    let fill_messages = filling.elapsed();

    let analyzing = Instant::now();
    let analyze = match store.backend() {
        // VACUUM too, so autovacuum does not wake up during the reads and index-only scans can
        // use the visibility map, as on a database that has been running for a while.
        Backend::Postgres => {
            "VACUUM (ANALYZE) tenants, connections, contacts, conversations, messages"
        }
        Backend::Sqlite => "ANALYZE",
    };
    sqlx::raw_sql(analyze)
        .execute(store.reader())
        .await
        .context("cannot analyze the benchmark database")?;
    let analyzed = analyzing.elapsed();

    let counted: i64 = crate::store::col(
        &sqlx::query("SELECT COUNT(*) AS n FROM messages")
            .fetch_one(store.reader())
            .await?,
        "n",
    )?;
    ensure!(
        counted == layout.messages && u64::try_from(counted) == Ok(inserted),
        "{counted} messages stored and {inserted} inserted, but {} asked for",
        layout.messages
    );
    let size = database_size(store).await?;
    println!(
        "  fill: {counted} messages in {:.1} s ({:.0} rows/s); tenants, connections, contacts and \
         conversations {:.1} s; {} {:.1} s; total {:.1} s{size}",
        fill_messages.as_secs_f64(),
        per_second(inserted, fill_messages.as_secs_f64()),
        setup.as_secs_f64(),
        if store.backend() == Backend::Postgres {
            "vacuum analyze"
        } else {
            "analyze"
        },
        analyzed.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// `"; database 2.9 GiB"`, or nothing where the size is not at hand.
async fn database_size(store: &Store) -> anyhow::Result<String> {
    let sql = match store.backend() {
        Backend::Postgres => "SELECT pg_database_size(current_database()) AS n",
        Backend::Sqlite => {
            "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
        }
    };
    let row = sqlx::query(sql).fetch_one(store.reader()).await?;
    let bytes: i64 = crate::store::col(&row, "n")?;
    Ok(format!(
        "; database {:.2} GiB",
        bytes as f64 / f64::from(1u32 << 30)
    ))
}

#[derive(Debug, Clone, Copy)]
enum ReadKind {
    /// The newest page of one conversation.
    ConversationNewest,
    /// The page before a random message of one conversation.
    ConversationBefore,
    /// The tenant's newest page across all its conversations.
    TenantNewest,
    /// The tenant's inbox: its conversations with the latest activity first.
    Inbox,
}

impl ReadKind {
    const ALL: [Self; 4] = [
        Self::ConversationNewest,
        Self::ConversationBefore,
        Self::TenantNewest,
        Self::Inbox,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::ConversationNewest => "conversation, newest 50",
            Self::ConversationBefore => "conversation, 50 before",
            Self::TenantNewest => "tenant, newest 50",
            Self::Inbox => "inbox, newest 50 conv.",
        }
    }
}

/// What the formula says each tenant has, for checking the tenant-wide pages.
struct TenantTotals {
    messages: Vec<i64>,
    active_conversations: Vec<i64>,
}

impl TenantTotals {
    fn of(layout: &Layout) -> anyhow::Result<Self> {
        let tenants = usize::try_from(layout.tenants)?;
        let mut totals = Self {
            messages: vec![0; tenants],
            active_conversations: vec![0; tenants],
        };
        for k in 0..layout.conversations {
            let t = usize::try_from(layout.tenant_of(k))?;
            let len = layout.conversation_len(k);
            totals.messages[t] += len;
            totals.active_conversations[t] += i64::from(len > 0);
        }
        Ok(totals)
    }
}

async fn measure(store: &Store, layout: &Layout, reads: u64) -> anyhow::Result<()> {
    let totals = TenantTotals::of(layout)?;
    let mut rng = StdRng::from_os_rng();
    for _ in 0..WARM_UP_READS {
        for kind in ReadKind::ALL {
            read_once(store, layout, &totals, kind, &mut rng).await?;
        }
    }
    for kind in ReadKind::ALL {
        let mut latencies_us = Vec::with_capacity(usize::try_from(reads)?);
        let mut busy = Duration::ZERO;
        for _ in 0..reads {
            let took = read_once(store, layout, &totals, kind, &mut rng).await?;
            busy += took;
            latencies_us.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
        latencies_us.sort_unstable();
        let latency = Latency::of(&latencies_us);
        println!(
            "  {:<24} {reads:>7} reads  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  {:>8.0} reads/s",
            kind.label(),
            latency.p50,
            latency.p90,
            latency.p99,
            latency.max,
            per_second(reads, busy.as_secs_f64()),
        );
    }
    println!("  (one reader, one read at a time; every page checked against the generated data)");
    Ok(())
}

/// Makes one random read of `kind`, checks its page and returns how long the read took.
async fn read_once(
    store: &Store,
    layout: &Layout,
    totals: &TenantTotals,
    kind: ReadKind,
    rng: &mut StdRng,
) -> anyhow::Result<Duration> {
    // Only conversations that have messages (all of them unless there are fewer messages).
    let k = rng.random_range(0..layout.conversations.min(layout.messages));
    let t = layout.tenant_of(k);
    let tenant_id = layout.tenant_id(t);
    let conversation_id = synthetic_id(kind::CONVERSATION, k);
    let len = layout.conversation_len(k);
    let t_index = usize::try_from(t)?;
    match kind {
        ReadKind::ConversationNewest | ReadKind::ConversationBefore => {
            // Newest: before the (virtual) message after the last one.
            let j = match kind {
                ReadKind::ConversationBefore => rng.random_range(0..len),
                _ => len,
            };
            let before = (j < len).then(|| {
                let m = layout.message_of(k, j);
                (message_at(m), synthetic_id(kind::MESSAGE, m))
            });
            let query = MessageQuery {
                conversation_id: Some(conversation_id.clone()),
                contact_wa_id: None,
                before,
                limit: PAGE,
            };
            let started = Instant::now();
            let page = store.messages(&tenant_id, &query).await?;
            let took = started.elapsed();
            check_messages(&page, &tenant_id, j.min(PAGE))?;
            if let Some(first) = page.first() {
                let expected = synthetic_id(kind::MESSAGE, layout.message_of(k, j - 1));
                ensure!(
                    first.id == expected
                        && page.iter().all(|m| m.conversation_id == conversation_id),
                    "conversation {conversation_id}: the page starts at {} instead of {expected} \
                     or holds other conversations' messages",
                    first.id
                );
            }
            Ok(took)
        }
        ReadKind::TenantNewest => {
            let query = MessageQuery {
                limit: PAGE,
                ..MessageQuery::default()
            };
            let started = Instant::now();
            let page = store.messages(&tenant_id, &query).await?;
            let took = started.elapsed();
            check_messages(&page, &tenant_id, totals.messages[t_index].min(PAGE))?;
            Ok(took)
        }
        ReadKind::Inbox => {
            let query = ConversationQuery {
                limit: PAGE,
                ..ConversationQuery::default()
            };
            let started = Instant::now();
            let page = store.conversations(&tenant_id, &query).await?;
            let took = started.elapsed();
            let expected = totals.active_conversations[t_index].min(PAGE);
            ensure!(
                i64::try_from(page.len()) == Ok(expected),
                "inbox of tenant {tenant_id}: {} conversations instead of {expected}",
                page.len()
            );
            let mut previous: Option<(Option<i64>, &str)> = None;
            for row in &page {
                ensure!(
                    row.tenant_id == tenant_id,
                    "inbox of tenant {tenant_id} holds conversation {} of tenant {}",
                    row.id,
                    row.tenant_id
                );
                let position = (row.last_message_at, row.id.as_str());
                if let Some(previous) = previous {
                    ensure!(
                        position < previous,
                        "inbox of tenant {tenant_id} is not newest first at conversation {}",
                        row.id
                    );
                }
                previous = Some(position);
            }
            Ok(took)
        }
    }
}

/// A message page must hold exactly `expected` rows (never more than a page), newest first,
/// all of the tenant asked for.
fn check_messages(page: &[MessageRow], tenant_id: &str, expected: i64) -> anyhow::Result<()> {
    ensure!(
        page.len() <= 50 && i64::try_from(page.len()) == Ok(expected),
        "a page of tenant {tenant_id} has {} messages instead of {expected}",
        page.len()
    );
    for pair in page.windows(2) {
        ensure!(
            (pair[1].message_at, pair[1].id.as_str()) < (pair[0].message_at, pair[0].id.as_str()),
            "a page of tenant {tenant_id} is not newest first at message {}",
            pair[1].id
        );
    }
    if let Some(stranger) = page.iter().find(|m| m.tenant_id != tenant_id) {
        bail!(
            "a page of tenant {tenant_id} holds message {} of tenant {}",
            stranger.id,
            stranger.tenant_id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(messages: i64, conversations: i64) -> Layout {
        Layout {
            messages,
            tenants: 3,
            conversations,
            first_tenant: "first".into(),
        }
    }

    #[test]
    fn conversation_lengths_add_up_to_the_messages() {
        for (messages, conversations) in [(10, 4), (3, 7), (100, 10)] {
            let layout = layout(messages, conversations);
            let sum: i64 = (0..conversations).map(|k| layout.conversation_len(k)).sum();
            assert_eq!(sum, messages);
        }
    }

    #[test]
    fn synthetic_ids_sort_by_number_and_look_like_uuids() {
        assert!(synthetic_id(kind::MESSAGE, 9) < synthetic_id(kind::MESSAGE, 10));
        assert!(uuid::Uuid::try_parse(&synthetic_id(kind::MESSAGE, 0xabc)).is_ok());
    }
}
