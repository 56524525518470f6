//! The limiter as senders use it: local budgets, budgets shared through a real Redis, and falling
//! back when Redis goes away.
//!
//! Redis tests use `WAGATE_TEST_REDIS_URL`, or `redis://127.0.0.1:6379` when `CI=true`; without
//! either they are skipped. Under CI an unreachable Redis fails them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;

/// How long an unsettled departure counts, in these tests.
const BOUND: Duration = Duration::from_millis(100);

fn test_redis_url() -> Option<String> {
    match std::env::var("WAGATE_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            Some("redis://127.0.0.1:6379".to_owned())
        }
        _ => {
            eprintln!("skipped: set WAGATE_TEST_REDIS_URL (or CI=true) to run the Redis tests");
            None
        }
    }
}

async fn shared_limiter(url: &str) -> RateLimiter {
    let limiter = RateLimiter::from_redis_url(Some(url))
        .await
        .expect("the test Redis answers");
    assert!(limiter.is_shared());
    limiter
}

/// A key no other test (or earlier run) uses.
fn unique_key(name: &str) -> String {
    format!("test:{}:{name}", uuid::Uuid::new_v4())
}

/// Takes as many units as it can for `window`, sleeping for (at most 5 ms of) each wait.
async fn take_greedily(limiter: RateLimiter, key: String, quota: Quota, window: Duration) -> u64 {
    let started = Instant::now();
    let mut admitted = 0;
    while started.elapsed() < window {
        match limiter.try_acquire(&key, quota).await {
            Ok(()) => admitted += 1,
            Err(wait) => tokio::time::sleep(wait.min(Duration::from_millis(5))).await,
        }
    }
    admitted
}

#[tokio::test]
async fn without_a_redis_url_budgets_are_local() {
    let limiter = RateLimiter::from_redis_url(None).await.unwrap();
    assert!(!limiter.is_shared());
    let quota = Quota::new(10.0, 2);
    let key = unique_key("tp");
    assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    let wait = limiter.try_acquire(&key, quota).await.unwrap_err();
    assert!(
        wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_local_limiter_holds_fifty_per_second_over_a_short_window() {
    let limiter = RateLimiter::local();
    let quota = Quota::new(50.0, 5);
    let window = Duration::from_millis(200);
    let admitted = take_greedily(limiter, unique_key("tp"), quota, window).await;
    // 5 at once, then one every 20 ms.
    assert!((10..=16).contains(&admitted), "admitted {admitted}");
}

#[tokio::test]
async fn clones_of_a_limiter_share_its_budgets() {
    let limiter = RateLimiter::local();
    let clone = limiter.clone();
    let quota = Quota::new(1.0, 1);
    assert!(limiter.try_acquire("k", quota).await.is_ok());
    assert!(clone.try_acquire("k", quota).await.is_err());
}

#[tokio::test]
async fn two_processes_sharing_redis_admit_the_combined_rate_not_double() {
    let Some(url) = test_redis_url() else { return };
    let (first, second) = (shared_limiter(&url).await, shared_limiter(&url).await);
    let quota = Quota::new(50.0, 5);
    let key = unique_key("tp");
    let window = Duration::from_millis(200);
    let (a, b) = tokio::join!(
        take_greedily(first.clone(), key.clone(), quota, window),
        take_greedily(second.clone(), key, quota, window),
    );
    // Shared: 5 + 50/s * 0.2 s = 15 in all. Two separate budgets would give about 30.
    assert!((10..=17).contains(&(a + b)), "admitted {a} + {b}");
    assert!(a > 0 && b > 0, "both processes got some: {a} + {b}");
    assert!(first.is_shared() && second.is_shared());
}

#[tokio::test]
async fn redis_answers_the_same_exact_waits_as_local_budgets() {
    let Some(url) = test_redis_url() else { return };
    let limiter = shared_limiter(&url).await;
    let quota = Quota::new(10.0, 3);
    let key = unique_key("tp");
    for _ in 0..3 {
        assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    }
    let wait = limiter.try_acquire(&key, quota).await.unwrap_err();
    assert!(
        wait > Duration::from_millis(80) && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
    tokio::time::sleep(wait).await;
    assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
}

#[tokio::test]
async fn reservations_through_two_processes_queue_one_interval_apart() {
    let Some(url) = test_redis_url() else { return };
    let (first, second) = (shared_limiter(&url).await, shared_limiter(&url).await);
    let quota = Quota::new(100.0, 1);
    let key = unique_key("reserve");
    let mut waits = Vec::new();
    for i in 0..6 {
        let limiter = if i % 2 == 0 { &first } else { &second };
        waits.push(limiter.reserve(&key, quota).await);
    }
    // 10 ms apart whichever process reserved, give or take the time the calls took.
    for (i, wait) in waits.iter().enumerate() {
        let expected = Duration::from_millis(10 * i as u64);
        assert!(
            *wait <= expected && *wait + Duration::from_millis(8) >= expected,
            "reservation {i}: {wait:?}"
        );
    }
}

#[tokio::test]
async fn departures_through_two_processes_share_one_window_cap() {
    let Some(url) = test_redis_url() else { return };
    let (first, second) = (shared_limiter(&url).await, shared_limiter(&url).await);
    let key = unique_key("departures");
    let window = Duration::from_millis(400);
    let mut admitted = 0;
    let mut refused = None;
    for i in 0..12 {
        let limiter = if i % 2 == 0 { &first } else { &second };
        match limiter.admit_departure(&key, 5, window, BOUND).await {
            Ok(departure) => {
                admitted += 1;
                limiter.settle_departure(departure).await;
            }
            Err(wait) => {
                refused.get_or_insert(wait);
            }
        }
    }
    assert_eq!(
        admitted, 5,
        "five departures in the window, from both processes together"
    );
    let wait = refused.expect("the sixth was refused");
    assert!(
        wait > Duration::from_millis(300) && wait <= window,
        "{wait:?}"
    );
    tokio::time::sleep(wait).await;
    assert!(second.admit_departure(&key, 5, window, BOUND).await.is_ok());
}

#[tokio::test]
async fn a_shared_departure_counts_until_its_answer_is_back_and_no_longer_than_its_bound() {
    let Some(url) = test_redis_url() else { return };
    let (first, second) = (shared_limiter(&url).await, shared_limiter(&url).await);
    let key = unique_key("departures-settle");
    let window = Duration::from_millis(300);
    // Unanswered: counts until 400 ms after it left (its 400 ms bound), not 300 ms.
    let unanswered = first
        .admit_departure(&key, 1, window, Duration::from_millis(400))
        .await
        .expect("an empty log admits");
    let wait = second
        .admit_departure(&key, 1, window, BOUND)
        .await
        .expect_err("the window holds one");
    assert!(
        wait > Duration::from_millis(600) && wait <= Duration::from_millis(700),
        "an unanswered send counts until its bound: {wait:?}"
    );
    // Its answer comes back 50 ms after it left: it counts until 350 ms.
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.settle_departure(unanswered).await;
    let wait = second
        .admit_departure(&key, 1, window, BOUND)
        .await
        .expect_err("the window still holds one");
    assert!(
        wait > Duration::from_millis(200) && wait <= Duration::from_millis(300),
        "a settled send counts from its answer: {wait:?}"
    );
    tokio::time::sleep(wait).await;
    assert!(second.admit_departure(&key, 1, window, BOUND).await.is_ok());
}

#[tokio::test]
async fn local_reservations_queue_in_order() {
    let limiter = RateLimiter::local();
    let quota = Quota::new(1000.0, 1);
    let key = unique_key("local-reserve");
    let first = limiter.reserve(&key, quota).await;
    let second = limiter.reserve(&key, quota).await;
    let third = limiter.reserve(&key, quota).await;
    assert_eq!(first, Duration::ZERO);
    assert!(second > Duration::ZERO && second <= Duration::from_millis(1));
    assert!(third > second && third <= Duration::from_millis(2));
}

#[tokio::test]
async fn a_penalty_set_by_one_process_holds_back_the_other() {
    let Some(url) = test_redis_url() else { return };
    let (first, second) = (shared_limiter(&url).await, shared_limiter(&url).await);
    let quota = Quota::per_second(80.0);
    let key = unique_key("tp");
    first
        .penalize(&key, quota, Duration::from_millis(300))
        .await;
    let wait = second.try_acquire(&key, quota).await.unwrap_err();
    assert!(
        wait > Duration::from_millis(250) && wait <= Duration::from_millis(300),
        "{wait:?}"
    );
    tokio::time::sleep(wait).await;
    assert_eq!(second.try_acquire(&key, quota).await, Ok(()));
    assert!(
        first.try_acquire(&key, quota).await.is_err(),
        "no burst right after a penalty"
    );
}

#[tokio::test]
async fn redis_keys_carry_the_prefix_and_expire_once_idle() {
    let Some(url) = test_redis_url() else { return };
    let limiter = shared_limiter(&url).await;
    let key = unique_key("tp");
    assert!(limiter.try_acquire(&key, Quota::new(10.0, 1)).await.is_ok());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("wagate:rl:{key}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (1..=100).contains(&ttl_ms),
        "expires when its TAT passes: {ttl_ms} ms"
    );
}

#[test]
fn per_minute_limits_read_zero_as_off_and_refuse_what_is_not_a_count() {
    assert_eq!(PerMinute::parse("100").unwrap(), Some(PerMinute::new(100)));
    assert_eq!(
        PerMinute::parse(" 12000 ").unwrap().map(PerMinute::get),
        Some(12_000)
    );
    assert_eq!(PerMinute::parse("0").unwrap(), None);
    for bad in ["", "ten", "-1", "1.5", "99999999999999999999"] {
        assert!(PerMinute::parse(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        PerMinute::parse("10000001"),
        Err(PerMinuteError::TooHigh(10_000_001))
    ));
    let quota = PerMinute::new(10).quota();
    assert_eq!(quota.burst, 10);
    assert!((quota.per_second - 10.0 / 60.0).abs() < 1e-12);
}

#[tokio::test]
async fn a_local_limiter_counts_down_what_is_left() {
    let limiter = RateLimiter::local();
    let quota = PerMinute::new(5).quota();
    let key = unique_key("api");
    for remaining in (0..5).rev() {
        let allowance = limiter.try_acquire_metered(&key, quota).await.unwrap();
        assert_eq!(allowance.remaining, remaining);
    }
    let exhausted = limiter.try_acquire_metered(&key, quota).await.unwrap_err();
    assert!(
        exhausted.retry_after > Duration::from_secs(11)
            && exhausted.retry_after <= Duration::from_secs(12),
        "{exhausted:?}"
    );
    assert!(
        exhausted.full_in > Duration::from_secs(59) && exhausted.full_in <= Duration::from_secs(60),
        "{exhausted:?}"
    );
}

#[tokio::test]
async fn redis_counts_what_is_left_like_local_budgets_across_two_processes() {
    let Some(url) = test_redis_url() else { return };
    let (first, second) = (shared_limiter(&url).await, shared_limiter(&url).await);
    let quota = PerMinute::new(6).quota();
    let key = unique_key("api");
    for remaining in (0..6).rev() {
        let limiter = if remaining % 2 == 0 { &first } else { &second };
        let allowance = limiter.try_acquire_metered(&key, quota).await.unwrap();
        assert_eq!(
            allowance.remaining, remaining,
            "both processes count one budget"
        );
        let taken = 6 - u64::from(remaining);
        assert!(
            allowance.full_in <= Duration::from_secs(10 * taken)
                && allowance.full_in + Duration::from_millis(100) > Duration::from_secs(10 * taken),
            "{allowance:?}"
        );
    }
    let exhausted = first.try_acquire_metered(&key, quota).await.unwrap_err();
    assert!(
        exhausted.retry_after > Duration::from_secs(9)
            && exhausted.retry_after <= Duration::from_secs(10),
        "{exhausted:?}"
    );
    assert!(
        exhausted.full_in > Duration::from_secs(59) && exhausted.full_in <= Duration::from_secs(60),
        "{exhausted:?}"
    );
    // Metered and plain takes share the key's budget in Redis too.
    assert!(second.try_acquire(&key, quota).await.is_err());
}

#[tokio::test]
async fn metered_takes_fall_back_to_local_budgets_when_redis_is_unreachable() {
    let limiter = RateLimiter::connect_in_background("redis://127.0.0.1:1").unwrap();
    let quota = PerMinute::new(2).quota();
    let key = unique_key("api");
    assert_eq!(
        limiter
            .try_acquire_metered(&key, quota)
            .await
            .map(|a| a.remaining),
        Ok(1)
    );
    assert_eq!(
        limiter
            .try_acquire_metered(&key, quota)
            .await
            .map(|a| a.remaining),
        Ok(0)
    );
    assert!(limiter.try_acquire_metered(&key, quota).await.is_err());
    assert!(!limiter.is_shared());
}

#[tokio::test]
async fn a_redis_that_does_not_answer_at_start_is_an_error() {
    let result = RateLimiter::from_redis_url(Some("redis://127.0.0.1:1")).await;
    assert!(
        matches!(
            result,
            Err(LimitError::RedisUnreachable(_) | LimitError::RedisTimedOut(_))
        ),
        "{result:?}"
    );
    let result = RateLimiter::from_redis_url(Some("not a url")).await;
    assert!(
        matches!(result, Err(LimitError::InvalidRedisUrl(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn with_redis_unreachable_calls_fall_back_to_local_budgets_within_the_timeout() {
    let limiter = RateLimiter::connect_in_background("redis://127.0.0.1:1").unwrap();
    assert!(!limiter.is_shared());
    let quota = Quota::new(10.0, 2);
    let key = unique_key("tp");
    let started = Instant::now();
    assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(!limiter.is_shared());
    // While degraded, calls do not wait on Redis at all, and local budgets hold the quota.
    let started = Instant::now();
    assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    assert!(limiter.try_acquire(&key, quota).await.is_err());
    limiter.penalize(&key, quota, Duration::from_secs(5)).await;
    let wait = limiter.try_acquire(&key, quota).await.unwrap_err();
    assert!(
        wait > Duration::from_millis(4900),
        "the penalty held locally: {wait:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_one_call_the_timeout_and_the_rest_nothing() {
    // Accepts connections and holds them open without ever answering.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let limiter = RateLimiter::connect_in_background(&format!("redis://{addr}")).unwrap();
    let quota = Quota::new(10.0, 5);
    let key = unique_key("tp");
    let started = Instant::now();
    assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    let first = started.elapsed();
    assert!(
        first < Duration::from_millis(400),
        "bounded by the call timeout: {first:?}"
    );
    assert!(!limiter.is_shared());
    let started = Instant::now();
    for _ in 0..4 {
        assert_eq!(limiter.try_acquire(&key, quota).await, Ok(()));
    }
    assert!(limiter.try_acquire(&key, quota).await.is_err());
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    silent.abort();
}

#[tokio::test]
async fn a_limiter_shares_again_by_itself_once_redis_comes_back() {
    let Some(url) = test_redis_url() else { return };
    let mut via_proxy = url::Url::parse(&url).expect("WAGATE_TEST_REDIS_URL is a URL");
    let redis_addr = tokio::net::lookup_host((
        via_proxy.host_str().unwrap_or("127.0.0.1"),
        via_proxy.port().unwrap_or(6379),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = SwitchableProxy::start(redis_addr).await;
    via_proxy.set_host(Some("127.0.0.1")).unwrap();
    via_proxy.set_port(Some(proxy.addr.port())).unwrap();
    let limiter = RateLimiter::with_redis(via_proxy.as_str(), Duration::from_millis(50)).unwrap();
    let quota = Quota::new(1000.0, 1000);
    let key = unique_key("tp");

    assert!(limiter.try_acquire(&key, quota).await.is_ok());
    assert!(limiter.is_shared());

    proxy.set_up(false);
    let started = Instant::now();
    for _ in 0..20 {
        assert!(limiter.try_acquire(&key, quota).await.is_ok());
    }
    assert!(!limiter.is_shared());
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );

    proxy.set_up(true);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !limiter.is_shared() && Instant::now() < deadline {
        assert!(limiter.try_acquire(&key, quota).await.is_ok());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(limiter.is_shared(), "Redis is used again without a restart");
    assert!(
        proxy.connections.load(Ordering::SeqCst) >= 2,
        "it reconnected"
    );
}

/// A TCP proxy to Redis that can be switched off (dropping every connection) and on again.
struct SwitchableProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    connections: Arc<AtomicU64>,
}

impl SwitchableProxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let connections = Arc::new(AtomicU64::new(0));
        let (up_for_task, counted) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut up = up_for_task.subscribe();
                if !*up.borrow() {
                    continue;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = up.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            connections,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

/// Prints what one `try_acquire` costs; run with `--nocapture` to see the figures.
#[tokio::test]
async fn measure_the_cost_of_one_try_acquire() {
    let quota = Quota::new(1e6, 1_000_000);
    let local = RateLimiter::local();
    let calls = 100_000u32;
    let started = Instant::now();
    for n in 0..calls {
        let key = if n % 2 == 0 {
            "tp:1"
        } else {
            "pair:1:447700900000"
        };
        let _ = local.try_acquire(key, quota).await;
    }
    let per_call = started.elapsed() / calls;
    println!("local try_acquire: {per_call:?} per call ({calls} calls, one task)");

    let Some(url) = test_redis_url() else { return };
    let redis = shared_limiter(&url).await;
    let key = unique_key("tp");
    let calls = 2_000u32;
    let started = Instant::now();
    for _ in 0..calls {
        let _ = redis.try_acquire(&key, quota).await;
    }
    let per_call = started.elapsed() / calls;
    println!("Redis try_acquire: {per_call:?} per call ({calls} sequential calls)");

    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (redis, key) = (redis.clone(), key.clone());
            tokio::spawn(async move {
                for _ in 0..calls / 16 {
                    let _ = redis.try_acquire(&key, quota).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "Redis try_acquire: {:.0} calls/s with 16 tasks on one connection",
        f64::from(calls) / elapsed.as_secs_f64()
    );
    assert!(redis.is_shared());
}
