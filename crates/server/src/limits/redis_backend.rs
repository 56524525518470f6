//! Budgets held in Redis, so every process sending for a number draws on the same one.
//!
//! Lua scripts, copies of the functions in `gcra`, run atomically on the server and
//! read its clock (`TIME`), so processes whose own clocks disagree still agree on every budget.
//! TATs are stored as whole microseconds (well inside the 2^53 Lua's doubles hold exactly) and
//! each key expires once its TAT has passed, when it means the same as no key at all.
//! Needs Redis 5 or later (effects replication, so `TIME` may come before a write).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::gcra;
use super::{Allowance, Exhausted, LimitError, Quota};

/// Prepended to every key, so rate-limit budgets never collide with anything else in Redis.
const KEY_PREFIX: &str = "wagate:rl:";

/// How long one rate-limit call may wait for Redis before this process uses its own budgets.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// GCRA take. KEYS[1]: the budget; ARGV[1]: emission interval (µs); ARGV[2]: tolerance (µs).
/// Returns 0 when a unit was taken, else how many µs until one will be there (nothing taken).
const TAKE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed_at = tat - tolerance
if allowed_at > now then
  return allowed_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 0
";

/// GCRA take that also says what is left (`gcra::take_metered`). KEYS[1]: the budget; ARGV[1]:
/// interval (µs); ARGV[2]: tolerance (µs). Returns {wait, left, full_in}: wait 0 when a unit was
/// taken (else µs until one will be there, nothing taken), how many more units fit now, and µs
/// until the key is idle with its whole burst back.
const METERED_TAKE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = stored or now
if tat < now then tat = now end
local allowed_at = tat - tolerance
if allowed_at > now then
  return {allowed_at - now, 0, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
local left = 0
if new_tat <= now + tolerance then
  left = math.floor((now + tolerance - new_tat) / interval) + 1
end
return {0, left, new_tat - now}
";

/// GCRA reserve. KEYS[1]: the budget; ARGV[1]: interval (µs); ARGV[2]: tolerance (µs). Always
/// takes the next unit; returns how many µs until it may be used (0 when now).
const RESERVE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed_at = tat - tolerance
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
if allowed_at > now then
  return allowed_at - now
end
return 0
";

/// Penalty. KEYS[1]: the budget; ARGV[1]: how long past now the TAT must be (µs, at least 1).
/// The TAT only ever moves later.
const PENALIZE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local hold = tonumber(ARGV[1])
local held_until = now + hold
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
if held_until > tat then
  redis.call('SET', KEYS[1], string.format('%.0f', held_until), 'PX', math.ceil(hold / 1000))
end
return 0
";

/// Sliding log of departures (see `window.rs`). KEYS[1]: the log (a sorted set scored by the
/// latest instant each send can have arrived); ARGV[1]: the window (µs); ARGV[2]: the cap;
/// ARGV[3]: a unique member name; ARGV[4]: how long an unanswered send counts (µs). Records the
/// departure and returns 0 when fewer than the cap are in the window, else returns how many µs
/// until the earliest leaves it (nothing recorded).
const DEPART_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local bound = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < cap then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + bound), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + bound) / 1000) + 1)
  return 0
end
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(earliest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
";

/// A departure's answer is back. KEYS[1]: the log; ARGV[1]: the member. Its score becomes now if
/// that is earlier (Meta cannot answer before the request arrived).
const SETTLE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > now then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[1])
end
return 0
";

/// Why a call to Redis did not give an answer; the caller then falls back to local budgets.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisCallError {
    #[error("Redis did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("Redis call failed")]
    Failed(#[source] redis::RedisError),
}

/// Heartbeat. KEYS[1]: the set of processes sharing these budgets (scored by their last beat,
/// in ms); ARGV[1]: this process; ARGV[2]: how long a beat counts (ms). Returns how many
/// processes beat within that time, this one included.
const HEARTBEAT_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
";

pub(crate) struct RedisBudgets {
    client: Client,
    /// Cloned for each call (an `Arc` inside); replaced by a fresh one after a failure, so a
    /// connection that hangs without ever erroring cannot keep this process degraded.
    connection: Mutex<ConnectionManager>,
    take: Script,
    metered_take: Script,
    reserve: Script,
    penalize: Script,
    depart: Script,
    settle: Script,
    heartbeat: Script,
}

impl RedisBudgets {
    /// Prepares a connection without opening it: the first call connects.
    pub(crate) fn new(redis_url: &str) -> Result<Self, LimitError> {
        let client = Client::open(redis_url).map_err(LimitError::InvalidRedisUrl)?;
        let connection = lazy_connection(&client).map_err(LimitError::InvalidRedisUrl)?;
        Ok(Self {
            client,
            connection: Mutex::new(connection),
            take: Script::new(TAKE_SCRIPT),
            metered_take: Script::new(METERED_TAKE_SCRIPT),
            reserve: Script::new(RESERVE_SCRIPT),
            penalize: Script::new(PENALIZE_SCRIPT),
            depart: Script::new(DEPART_SCRIPT),
            settle: Script::new(SETTLE_SCRIPT),
            heartbeat: Script::new(HEARTBEAT_SCRIPT),
        })
    }

    /// Checks that Redis answers, waiting up to `timeout`.
    pub(crate) async fn ping(&self, timeout: Duration) -> Result<(), RedisCallError> {
        let mut connection = self.connection();
        let ping = redis::cmd("PING");
        within(timeout, ping.query_async::<()>(&mut connection)).await
    }

    pub(crate) async fn try_acquire(
        &self,
        key: &str,
        quota: Quota,
    ) -> Result<Result<(), Duration>, RedisCallError> {
        let mut connection = self.connection();
        let mut invocation = self.take.key(redis_key(key));
        invocation
            .arg(gcra::interval_us(quota))
            .arg(gcra::tolerance_us(quota));
        let wait_us: u64 = within(CALL_TIMEOUT, invocation.invoke_async(&mut connection)).await?;
        Ok(match wait_us {
            0 => Ok(()),
            wait_us => Err(Duration::from_micros(wait_us)),
        })
    }

    pub(crate) async fn try_acquire_metered(
        &self,
        key: &str,
        quota: Quota,
    ) -> Result<Result<Allowance, Exhausted>, RedisCallError> {
        let mut connection = self.connection();
        let mut invocation = self.metered_take.key(redis_key(key));
        invocation
            .arg(gcra::interval_us(quota))
            .arg(gcra::tolerance_us(quota));
        let (wait_us, left, full_in_us): (u64, u64, u64) =
            within(CALL_TIMEOUT, invocation.invoke_async(&mut connection)).await?;
        Ok(match wait_us {
            0 => Ok(Allowance::from_left(gcra::Left {
                units: left,
                full_in: full_in_us,
            })),
            wait_us => Err(Exhausted::from_us(wait_us, full_in_us)),
        })
    }

    pub(crate) async fn reserve(
        &self,
        key: &str,
        quota: Quota,
    ) -> Result<Duration, RedisCallError> {
        let mut connection = self.connection();
        let mut invocation = self.reserve.key(redis_key(key));
        invocation
            .arg(gcra::interval_us(quota))
            .arg(gcra::tolerance_us(quota));
        let wait_us: u64 = within(CALL_TIMEOUT, invocation.invoke_async(&mut connection)).await?;
        Ok(Duration::from_micros(wait_us))
    }

    pub(crate) async fn penalize(
        &self,
        key: &str,
        quota: Quota,
        penalty: Duration,
    ) -> Result<(), RedisCallError> {
        let hold = gcra::hold_us(quota, penalty);
        if hold == 0 {
            return Ok(());
        }
        let mut connection = self.connection();
        let mut invocation = self.penalize.key(redis_key(key));
        invocation.arg(hold);
        within(CALL_TIMEOUT, invocation.invoke_async::<()>(&mut connection)).await
    }

    /// Answers the member name the departure was logged under, to settle it with.
    pub(crate) async fn admit_departure(
        &self,
        key: &str,
        cap: u32,
        window: Duration,
        bound: Duration,
    ) -> Result<Result<String, Duration>, RedisCallError> {
        let mut connection = self.connection();
        let member = uuid::Uuid::now_v7().to_string();
        let mut invocation = self.depart.key(departures_key(key));
        invocation
            .arg(gcra::duration_us(window))
            .arg(cap.max(1))
            .arg(&member)
            .arg(gcra::duration_us(bound));
        let wait_us: u64 = within(CALL_TIMEOUT, invocation.invoke_async(&mut connection)).await?;
        Ok(match wait_us {
            0 => Ok(member),
            wait_us => Err(Duration::from_micros(wait_us)),
        })
    }

    pub(crate) async fn settle_departure(
        &self,
        key: &str,
        member: &str,
    ) -> Result<(), RedisCallError> {
        let mut connection = self.connection();
        let mut invocation = self.settle.key(departures_key(key));
        invocation.arg(member);
        within(CALL_TIMEOUT, invocation.invoke_async::<()>(&mut connection)).await
    }

    /// Says this process (`origin`) shares the budgets, and answers how many processes said so
    /// within `ttl`.
    pub(crate) async fn heartbeat(
        &self,
        origin: &str,
        ttl: Duration,
    ) -> Result<u32, RedisCallError> {
        let mut connection = self.connection();
        let mut invocation = self.heartbeat.key(redis_key("processes"));
        invocation
            .arg(origin)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        let count: u32 = within(CALL_TIMEOUT, invocation.invoke_async(&mut connection)).await?;
        Ok(count.max(1))
    }

    /// Drops the current connection; the next call opens a new one.
    pub(crate) fn renew_connection(&self) {
        // Only fails on a client config error, which `new` has already ruled out.
        if let Ok(fresh) = lazy_connection(&self.client) {
            *self
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = fresh;
        }
    }

    fn connection(&self) -> ConnectionManager {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn redis_key(key: &str) -> String {
    let mut full = String::with_capacity(KEY_PREFIX.len() + key.len());
    full.push_str(KEY_PREFIX);
    full.push_str(key);
    full
}

fn departures_key(key: &str) -> String {
    redis_key(&format!("{key}:departures"))
}

fn lazy_connection(client: &Client) -> redis::RedisResult<ConnectionManager> {
    // Few, quick reconnection attempts: while they fail the caller is already using local budgets.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisCallError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(RedisCallError::Failed(err)),
        Err(_) => Err(RedisCallError::TimedOut(timeout)),
    }
}
