//! Rate limits: keeps sends within Meta's per-number throughput and per-recipient pair rate.
//!
//! Senders ask [`RateLimiter::try_acquire`] before each call to the Graph API, once with the
//! number's throughput key and quota and once with the pair key, and wait (or reschedule the job)
//! for the duration it answers. When Meta still says "too fast" (130429 for the number, 131056 for
//! the pair), [`RateLimiter::penalize`] holds that key back. One process keeps budgets in memory;
//! several share them through Redis (`WAGATE_REDIS_URL`) so the number's 80/s is 80/s in total,
//! not 80/s per process.
//!
//! The same budgets limit requests made to us: [`RateLimiter::try_acquire_metered`] also answers
//! how many units are left and when the budget is whole again, which `api::rate_limit` and the
//! sign-in form turn into `X-RateLimit-*` headers, with a [`PerMinute`] quota per caller.
//!
//! Both backends run the same GCRA (generic cell rate algorithm), in `gcra`: per key one number,
//! the theoretical arrival time (TAT). With emission interval T = 1/per_second and tolerance
//! T * (burst - 1), a unit may be taken while TAT - tolerance <= now, and taking one stores
//! max(TAT, now) + T. The tolerance is T * (burst - 1) rather than T * burst so that `burst` is
//! exactly how many units an idle key admits at once (governor counts the same way).
//!
//! Local budgets are our own GCRA over a `Mutex<HashMap>` rather than `governor`: a governor
//! limiter has one quota for all its keys, and it offers no way to move a key's TAT, so neither a
//! per-number quota (80 to 1000/s) nor Meta's penalties can be expressed with it.
//!
//! If Redis stops answering, each call falls back to this process's own budgets (quickly: a call
//! waits at most 250 ms, and while degraded only one call a second tries Redis again), warns at
//! most every 30 s, and counts `wagate_rate_limit_fallback_total`. Redis is used again as soon as
//! it answers. While degraded, each process enforces the full quota on its own, so the sum may
//! exceed Meta's limit; Meta's 130429 answers and `penalize` then slow the number down.

mod gcra;
mod local;
mod redis_backend;
mod window;

#[cfg(test)]
mod tests;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use local::{LocalBudgets, MonotonicClock};
use redis_backend::{RedisBudgets, RedisCallError};
use window::{DepartureLogs, LocalDeparture};

/// How long `from_redis_url` waits for Redis to answer at start.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(2);
/// While degraded, how often one call tries Redis again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// At most one fallback warning per this long.
const WARN_INTERVAL: Duration = Duration::from_secs(30);
/// How often each process tells Redis it shares the budgets; a process silent for
/// `HEARTBEAT_TTL` no longer counts.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const HEARTBEAT_TTL: Duration = Duration::from_secs(16);

/// How fast a key may go: `per_second` units per second on average, with up to `burst` at once.
///
/// A `per_second` that is zero, negative or NaN is treated as one unit a day; `burst` 0 as 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: u32,
}

impl Quota {
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// `rate` per second with a burst of a tenth of a second's worth (at least 1): 8 at Meta's
    /// default 80/s, 100 at 1000/s.
    pub fn per_second(rate: f64) -> Self {
        // `as` saturates (NaN gives 0), and `max` lifts it to 1.
        let burst = ((rate / 10.0).floor() as u32).max(1);
        Self::new(rate, burst)
    }

    /// Meta's pair rate, about one message every 6 seconds to one customer, allowing `burst`
    /// messages in quick succession.
    pub fn pair(burst: u32) -> Self {
        Self::new(1.0 / 6.0, burst)
    }

    /// Meta's pair rate with a burst of 3.
    pub fn pair_default() -> Self {
        Self::pair(3)
    }
}

/// A limit on requests: `n` a minute for each caller, all `n` at once from an idle caller, then
/// one more every minute / `n` (GCRA: the budget refills steadily rather than at minute marks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerMinute(NonZeroU32);

/// Why a per-minute limit could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PerMinuteError {
    #[error("{0:?} is not a whole number of requests a minute (0 turns the limit off)")]
    NotANumber(String),
    #[error("{0} a minute is more than the {max} this limit allows", max = PerMinute::MAX)]
    TooHigh(u64),
}

impl PerMinute {
    /// Higher limits are as good as none; this keeps the interval a whole number of microseconds.
    pub const MAX: u32 = 10_000_000;

    /// `n` a minute; 0 and anything above [`PerMinute::MAX`] are lifted or lowered into range.
    pub const fn new(n: u32) -> Self {
        let n = if n > Self::MAX { Self::MAX } else { n };
        match NonZeroU32::new(n) {
            Some(n) => Self(n),
            None => Self(NonZeroU32::MIN),
        }
    }

    /// A setting's value: a whole number of requests a minute, where 0 means no limit (`None`).
    pub fn parse(raw: &str) -> Result<Option<Self>, PerMinuteError> {
        let n: u64 = raw
            .trim()
            .parse()
            .map_err(|_| PerMinuteError::NotANumber(raw.to_owned()))?;
        match u32::try_from(n) {
            Ok(0) => Ok(None),
            Ok(n) if n <= Self::MAX => Ok(Some(Self::new(n))),
            _ => Err(PerMinuteError::TooHigh(n)),
        }
    }

    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// The GCRA quota: `n / 60` a second with a burst of `n`.
    pub fn quota(self) -> Quota {
        Quota::new(f64::from(self.get()) / 60.0, self.get())
    }
}

/// A metered acquire that succeeded, and what it left of the key's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Units that would still be admitted right now.
    pub remaining: u32,
    /// How long until the key's whole burst is available again.
    pub full_in: Duration,
}

/// A metered acquire that was refused; nothing was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// How long until one unit is there.
    pub retry_after: Duration,
    /// How long until the key's whole burst is available again.
    pub full_in: Duration,
}

impl Allowance {
    fn from_left(left: gcra::Left) -> Self {
        Self {
            remaining: u32::try_from(left.units).unwrap_or(u32::MAX),
            full_in: Duration::from_micros(left.full_in),
        }
    }
}

impl Exhausted {
    fn from_us(wait_us: u64, full_in_us: u64) -> Self {
        Self {
            retry_after: Duration::from_micros(wait_us),
            full_in: Duration::from_micros(full_in_us.max(wait_us)),
        }
    }
}

/// Why shared budgets could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// `WAGATE_REDIS_URL` is not a URL redis-rs can connect with (the URL itself is not repeated:
    /// it may hold a password).
    #[error("WAGATE_REDIS_URL is not a usable Redis URL")]
    InvalidRedisUrl(#[source] redis::RedisError),
    /// Redis refused or failed a PING at start.
    #[error("Redis did not answer at start")]
    RedisUnreachable(#[source] redis::RedisError),
    /// Redis did not answer a PING at start in time.
    #[error("Redis did not answer within {0:?} at start")]
    RedisTimedOut(Duration),
}

impl From<RedisCallError> for LimitError {
    fn from(err: RedisCallError) -> Self {
        match err {
            RedisCallError::TimedOut(after) => Self::RedisTimedOut(after),
            RedisCallError::Failed(err) => Self::RedisUnreachable(err),
        }
    }
}

/// A departure admitted by [`RateLimiter::admit_departure`], in the log it was recorded in.
#[derive(Debug)]
pub struct Departure(LoggedIn);

#[derive(Debug)]
enum LoggedIn {
    Local(LocalDeparture),
    /// Admitted by the shared log, and mirrored in this process's own (see `admit_departure`).
    Shared {
        key: String,
        member: String,
        mirror: LocalDeparture,
    },
}

/// Budgets shared by every sender: in memory for one process, in Redis when several share them.
///
/// Cloning is cheap and clones share the same budgets.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Budgets>,
}

struct Budgets {
    /// Always there: the only budgets without Redis, the fallback with it.
    local: LocalBudgets,
    /// Recent departures per key, for `admit_departure` without Redis (or while it is away).
    departures: DepartureLogs,
    redis: Option<SharedBudgets>,
}

struct SharedBudgets {
    redis: RedisBudgets,
    health: Health,
    /// How many processes shared the budgets at the last heartbeat (at least 1). While Redis is
    /// away each process keeps to its share of every quota, so together they stay within it.
    processes: AtomicU32,
}

/// Whether Redis is answering, and when to try it or warn about it next.
struct Health {
    origin: Instant,
    degraded: AtomicBool,
    /// Milliseconds since `origin` after which, while degraded, the next call tries Redis.
    next_probe_ms: AtomicU64,
    /// Milliseconds since `origin` after which the next failure is logged.
    next_warn_ms: AtomicU64,
    /// Fallbacks since the last warning, so the warning can say how many there were.
    unreported_fallbacks: AtomicU64,
    probe_interval_ms: u64,
}

impl RateLimiter {
    /// Budgets in this process's memory only.
    pub fn local() -> Self {
        Self {
            inner: Arc::new(Budgets {
                local: LocalBudgets::new(),
                departures: DepartureLogs::new(Box::new(MonotonicClock::new())),
                redis: None,
            }),
        }
    }

    /// Connects to Redis (checking it answers); if `redis_url` is None, local.
    pub async fn from_redis_url(redis_url: Option<&str>) -> Result<Self, LimitError> {
        let Some(redis_url) = redis_url else {
            return Ok(Self::local());
        };
        let limiter = Self::with_redis(redis_url, PROBE_INTERVAL)?;
        if let Some(shared) = &limiter.inner.redis {
            shared.redis.ping(STARTUP_TIMEOUT).await?;
            shared.health.succeeded();
        }
        Ok(limiter)
    }

    /// Shares budgets through Redis without waiting for it at start: until Redis first answers,
    /// this process uses its own budgets. Fails only on a malformed URL.
    pub fn connect_in_background(redis_url: &str) -> Result<Self, LimitError> {
        Self::with_redis(redis_url, PROBE_INTERVAL)
    }

    /// Starts degraded with a probe due at once: the first call finds out whether Redis answers.
    fn with_redis(redis_url: &str, probe_interval: Duration) -> Result<Self, LimitError> {
        let redis = RedisBudgets::new(redis_url)?;
        let limiter = Self {
            inner: Arc::new(Budgets {
                local: LocalBudgets::new(),
                departures: DepartureLogs::new(Box::new(MonotonicClock::new())),
                redis: Some(SharedBudgets {
                    redis,
                    health: Health::new(probe_interval),
                    processes: AtomicU32::new(1),
                }),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(count_processes(Arc::downgrade(&limiter.inner)));
        }
        Ok(limiter)
    }

    /// The quota this process keeps to on its own: all of it without Redis, its share while
    /// Redis (which several processes may share) is away.
    fn own_quota(&self, quota: Quota) -> Quota {
        match self.own_share() {
            1 => quota,
            n => Quota::new(quota.per_second / f64::from(n), (quota.burst / n).max(1)),
        }
    }

    fn own_cap(&self, cap: u32) -> u32 {
        (cap / self.own_share()).max(1)
    }

    fn own_share(&self) -> u32 {
        self.inner
            .redis
            .as_ref()
            .map_or(1, |shared| shared.processes.load(Ordering::Relaxed).max(1))
    }

    /// Takes one unit of `key`'s budget if it is there now; otherwise answers how long until it
    /// will be (nothing is taken).
    pub async fn try_acquire(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        if let Some(shared) = &self.inner.redis {
            if shared.health.should_try_redis() {
                match shared.redis.try_acquire(key, quota).await {
                    Ok(answer) => {
                        shared.health.succeeded();
                        return answer;
                    }
                    Err(err) => shared.failed(&err),
                }
            }
            shared.health.fell_back();
        }
        self.inner.local.try_acquire(key, self.own_quota(quota))
    }

    /// [`RateLimiter::try_acquire`] that also answers what is left of `key`'s budget (for
    /// rate-limit headers), from the same budgets.
    pub async fn try_acquire_metered(
        &self,
        key: &str,
        quota: Quota,
    ) -> Result<Allowance, Exhausted> {
        if let Some(shared) = &self.inner.redis {
            if shared.health.should_try_redis() {
                match shared.redis.try_acquire_metered(key, quota).await {
                    Ok(answer) => {
                        shared.health.succeeded();
                        return answer;
                    }
                    Err(err) => shared.failed(&err),
                }
            }
            shared.health.fell_back();
        }
        self.inner
            .local
            .try_acquire_metered(key, self.own_quota(quota))
    }

    /// Reserves the next unit of `key`'s budget, whether or not it is there yet, and answers how
    /// long until it may be used. Reservations are served in the order they are made, so a
    /// sender that waits out its answer keeps its place (and messages their order).
    pub async fn reserve(&self, key: &str, quota: Quota) -> Duration {
        if let Some(shared) = &self.inner.redis {
            if shared.health.should_try_redis() {
                match shared.redis.reserve(key, quota).await {
                    Ok(wait) => {
                        shared.health.succeeded();
                        return wait;
                    }
                    Err(err) => shared.failed(&err),
                }
            }
            shared.health.fell_back();
        }
        self.inner.local.reserve(key, self.own_quota(quota))
    }

    /// The last check before a call leaves: records a departure for `key` if fewer than `cap`
    /// sends count in the last `window`, else answers how long until one of them drops out of it.
    /// A send counts at the latest instant it can have reached the receiver: `bound` after it
    /// left until [`RateLimiter::settle_departure`] says its answer is back (see `window.rs`).
    /// Reservations space sends evenly; this keeps sends that were delayed on their way, and so
    /// bunched, from ever putting more than `cap` into one window as Meta counts it.
    pub async fn admit_departure(
        &self,
        key: &str,
        cap: u32,
        window: Duration,
        bound: Duration,
    ) -> Result<Departure, Duration> {
        if let Some(shared) = &self.inner.redis {
            if shared.health.should_try_redis() {
                match shared.redis.admit_departure(key, cap, window, bound).await {
                    Ok(answer) => {
                        shared.health.succeeded();
                        return answer.map(|member| {
                            Departure(LoggedIn::Shared {
                                key: key.to_owned(),
                                member,
                                mirror: self.inner.departures.record(key, window, bound),
                            })
                        });
                    }
                    Err(err) => shared.failed(&err),
                }
            }
            shared.health.fell_back();
        }
        self.inner
            .departures
            .admit(key, self.own_cap(cap), window, bound)
            .map(|local| Departure(LoggedIn::Local(local)))
    }

    /// The call of an admitted departure has its answer (or failed): it counts from now at the
    /// latest. A departure never settled counts until its bound.
    pub async fn settle_departure(&self, departure: Departure) {
        match departure.0 {
            LoggedIn::Local(local) => self.inner.departures.settle(&local),
            LoggedIn::Shared {
                key,
                member,
                mirror,
            } => {
                self.inner.departures.settle(&mirror);
                let Some(shared) = &self.inner.redis else {
                    return;
                };
                // Not settling only keeps the send counted a little longer: no fallback needed.
                if let Err(err) = shared.redis.settle_departure(&key, &member).await {
                    shared.failed(&err);
                }
            }
        }
    }

    /// Meta answered "too fast" (130429, 131056): hold `key` back for `penalty` from now, on top
    /// of its quota. Nothing is admitted before `penalty` has passed, then one unit per interval
    /// (no burst). Penalties are capped at a day.
    pub async fn penalize(&self, key: &str, quota: Quota, penalty: Duration) {
        // Also kept locally, so a fall back to local budgets does not forget it.
        self.inner.local.penalize(key, quota, penalty);
        if let Some(shared) = &self.inner.redis {
            if shared.health.should_try_redis() {
                match shared.redis.penalize(key, quota, penalty).await {
                    Ok(()) => {
                        shared.health.succeeded();
                        return;
                    }
                    Err(err) => shared.failed(&err),
                }
            }
            shared.health.fell_back();
        }
    }

    /// Whether budgets are shared across processes right now (false while degraded to local).
    pub fn is_shared(&self) -> bool {
        self.inner
            .redis
            .as_ref()
            .is_some_and(|shared| !shared.health.degraded.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("redis", &self.inner.redis.is_some())
            .field("shared", &self.is_shared())
            .finish()
    }
}

/// Keeps `processes` up to date while the limiter lives: each beat says this process shares the
/// budgets and learns how many do.
async fn count_processes(budgets: std::sync::Weak<Budgets>) {
    let origin = uuid::Uuid::new_v4().to_string();
    loop {
        let Some(budgets) = budgets.upgrade() else {
            return;
        };
        if let Some(shared) = &budgets.redis
            && let Ok(count) = shared.redis.heartbeat(&origin, HEARTBEAT_TTL).await
        {
            shared.processes.store(count, Ordering::Relaxed);
            metrics::gauge!("wagate_rate_limit_processes").set(f64::from(count));
        }
        drop(budgets);
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

impl SharedBudgets {
    fn failed(&self, err: &RedisCallError) {
        let newly_degraded = self.health.failed();
        self.redis.renew_connection();
        if self.health.should_warn() {
            let fallbacks = self.health.unreported_fallbacks.swap(0, Ordering::Relaxed);
            let cause =
                std::error::Error::source(err).map_or_else(String::new, ToString::to_string);
            tracing::warn!(
                error = %err,
                cause = %cause,
                newly_degraded,
                fallbacks_since_last_warning = fallbacks,
                "Redis rate limits unavailable; this process keeps to its share of each quota on its own"
            );
        }
    }
}

impl Health {
    fn new(probe_interval: Duration) -> Self {
        metrics::gauge!("wagate_rate_limit_shared").set(0.0);
        Self {
            origin: Instant::now(),
            degraded: AtomicBool::new(true),
            next_probe_ms: AtomicU64::new(0),
            next_warn_ms: AtomicU64::new(0),
            unreported_fallbacks: AtomicU64::new(0),
            probe_interval_ms: u64::try_from(probe_interval.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Healthy: always. Degraded: only the one call that claims the next due probe.
    fn should_try_redis(&self) -> bool {
        if !self.degraded.load(Ordering::Relaxed) {
            return true;
        }
        let now = self.now_ms();
        let due = self.next_probe_ms.load(Ordering::Relaxed);
        now >= due
            && self
                .next_probe_ms
                .compare_exchange(
                    due,
                    now.saturating_add(self.probe_interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis answers; rate limits are shared across processes");
            metrics::gauge!("wagate_rate_limit_shared").set(1.0);
        }
    }

    /// Marks Redis as not answering; true if it was answering until now.
    fn failed(&self) -> bool {
        self.next_probe_ms.store(
            self.now_ms().saturating_add(self.probe_interval_ms),
            Ordering::Relaxed,
        );
        let newly_degraded = !self.degraded.swap(true, Ordering::Relaxed);
        if newly_degraded {
            metrics::gauge!("wagate_rate_limit_shared").set(0.0);
        }
        newly_degraded
    }

    fn fell_back(&self) {
        self.unreported_fallbacks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("wagate_rate_limit_fallback_total").increment(1);
    }

    fn should_warn(&self) -> bool {
        let now = self.now_ms();
        let due = self.next_warn_ms.load(Ordering::Relaxed);
        let next = now.saturating_add(u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX));
        now >= due
            && self
                .next_warn_ms
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}
