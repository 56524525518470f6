//! A sliding log of recent departures per key, in this process: at most `cap` sends in any span
//! of `window` *as the receiver counts them*. GCRA spaces sends evenly, but a send can reach Meta
//! later than it left (a stalled task, a busy core), bunching with the ones after it, and Meta
//! counts what arrives in each second.
//!
//! So a send stays in the log at the latest instant it can have arrived: while its call is in
//! flight that is `bound` after it left; once the answer is back, the answer's instant (Meta
//! cannot answer before the request arrived). A new send is admitted only while fewer than `cap`
//! entries lie within `window` before now. Any window of arrivals then holds at most `cap`: take
//! the send admitted last among them; every other one arrived inside that window, so after its
//! admission instant minus `window`, and its logged instant is no earlier than its arrival, so
//! it was in the log when the last one was admitted.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::local::Clock;

/// Above this many keys, the next new key sweeps out the ones with nothing in their window.
const SWEEP_THRESHOLD: usize = 10_000;

pub(crate) struct DepartureLogs {
    clock: Box<dyn Clock>,
    /// Per key, (latest possible arrival in µs, departure id), in order.
    logs: Mutex<HashMap<String, BTreeSet<(u64, u64)>>>,
    next_id: AtomicU64,
}

/// A departure recorded in a local log, to be settled when its answer is back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalDeparture {
    key: String,
    id: u64,
    logged_at_us: u64,
}

impl DepartureLogs {
    pub(crate) fn new(clock: Box<dyn Clock>) -> Self {
        Self {
            clock,
            logs: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Records a departure for `key` now if fewer than `cap` sends are counted in the last
    /// `window`; it counts until `bound` from now unless settled earlier. Otherwise answers how
    /// long until the earliest of them leaves the window (nothing recorded).
    pub(crate) fn admit(
        &self,
        key: &str,
        cap: u32,
        window: Duration,
        bound: Duration,
    ) -> Result<LocalDeparture, Duration> {
        let window_us = super::gcra::duration_us(window);
        let cap = cap.max(1) as usize;
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        if !logs.contains_key(key) && logs.len() > SWEEP_THRESHOLD {
            logs.retain(|_, log| log.last().is_some_and(|&(last, _)| last + window_us > now));
        }
        let log = logs.entry(key.to_owned()).or_default();
        while log.first().is_some_and(|&(at, _)| at + window_us <= now) {
            log.pop_first();
        }
        if log.len() < cap {
            let departure = LocalDeparture {
                key: key.to_owned(),
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                logged_at_us: now + super::gcra::duration_us(bound),
            };
            log.insert((departure.logged_at_us, departure.id));
            return Ok(departure);
        }
        let earliest = log.first().map_or(now, |&(at, _)| at);
        Err(Duration::from_micros((earliest + window_us - now).max(1)))
    }

    /// Records a departure for `key` whatever the log holds: one admitted by the shared log in
    /// Redis, mirrored here so that if Redis goes away this process still knows what it sent in
    /// the last window.
    pub(crate) fn record(&self, key: &str, window: Duration, bound: Duration) -> LocalDeparture {
        let window_us = super::gcra::duration_us(window);
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        if !logs.contains_key(key) && logs.len() > SWEEP_THRESHOLD {
            logs.retain(|_, log| log.last().is_some_and(|&(last, _)| last + window_us > now));
        }
        if let Some(log) = logs.get_mut(key) {
            while log.first().is_some_and(|&(at, _)| at + window_us <= now) {
                log.pop_first();
            }
        }
        let departure = LocalDeparture {
            key: key.to_owned(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            logged_at_us: now + super::gcra::duration_us(bound),
        };
        let log = logs.entry(key.to_owned()).or_default();
        log.insert((departure.logged_at_us, departure.id));
        departure
    }

    /// The departure's answer is back: it counts from now at the latest, if that is earlier than
    /// its bound.
    pub(crate) fn settle(&self, departure: &LocalDeparture) {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        if now >= departure.logged_at_us {
            return;
        }
        if let Some(log) = logs.get_mut(&departure.key)
            && log.remove(&(departure.logged_at_us, departure.id))
        {
            log.insert((now, departure.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Clone, Default)]
    struct FakeClock(Arc<AtomicU64>);

    impl FakeClock {
        fn set_ms(&self, ms: u64) {
            self.0.store(ms * 1_000, Ordering::SeqCst);
        }
    }

    impl Clock for FakeClock {
        fn now_us(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const SECOND: Duration = Duration::from_secs(1);
    const BOUND: Duration = Duration::from_millis(100);

    #[test]
    fn a_bunch_of_late_sends_gets_at_most_the_cap_into_any_window() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        // Ten sends every 100 ms for two seconds, all wanting to leave at once each time; each
        // answer comes back at once.
        let mut admitted: Vec<u64> = Vec::new();
        for step in 0..20u64 {
            clock.set_ms(step * 100);
            for _ in 0..10 {
                if let Ok(departure) = logs.admit("number:1", 78, SECOND, BOUND) {
                    logs.settle(&departure);
                    admitted.push(step * 100_000);
                }
            }
        }
        for &start in &admitted {
            let in_window = admitted
                .iter()
                .filter(|&&t| t >= start && t < start + 1_000_000)
                .count();
            assert!(in_window <= 78, "{in_window} in the second from {start} µs");
        }
        assert_eq!(admitted.len(), 78 * 2, "the cap is used, not less");
    }

    #[test]
    fn a_full_window_answers_when_its_earliest_send_leaves_it() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        let first = logs.admit("k", 2, SECOND, BOUND).unwrap();
        logs.settle(&first);
        clock.set_ms(300);
        let second = logs.admit("k", 2, SECOND, BOUND).unwrap();
        logs.settle(&second);
        clock.set_ms(400);
        assert_eq!(
            logs.admit("k", 2, SECOND, BOUND),
            Err(Duration::from_millis(600))
        );
        assert!(
            logs.admit("other", 2, SECOND, BOUND).is_ok(),
            "keys are independent"
        );
        clock.set_ms(1_000);
        let third = logs.admit("k", 2, SECOND, BOUND).unwrap();
        logs.settle(&third);
        assert_eq!(
            logs.admit("k", 2, SECOND, BOUND),
            Err(Duration::from_millis(300))
        );
    }

    #[test]
    fn a_send_counts_until_its_answer_is_back() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        let slow = logs.admit("k", 1, SECOND, Duration::from_secs(5)).unwrap();
        // Its answer takes 40 ms: it may have reached Meta at 39 ms, so it counts until 1,040 ms.
        clock.set_ms(40);
        logs.settle(&slow);
        clock.set_ms(1_030);
        assert_eq!(
            logs.admit("k", 1, SECOND, BOUND),
            Err(Duration::from_millis(10))
        );
        clock.set_ms(1_040);
        assert!(logs.admit("k", 1, SECOND, BOUND).is_ok());
    }

    #[test]
    fn a_send_whose_answer_never_comes_counts_until_its_bound() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        let _lost = logs.admit("k", 1, SECOND, BOUND).unwrap();
        clock.set_ms(1_099);
        assert_eq!(
            logs.admit("k", 1, SECOND, BOUND),
            Err(Duration::from_millis(1))
        );
        clock.set_ms(1_100);
        assert!(logs.admit("k", 1, SECOND, BOUND).is_ok());
    }

    #[test]
    fn a_late_settle_never_moves_a_send_past_its_bound() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        let departure = logs.admit("k", 1, SECOND, BOUND).unwrap();
        clock.set_ms(500);
        logs.settle(&departure);
        clock.set_ms(1_100);
        assert!(logs.admit("k", 1, SECOND, BOUND).is_ok());
    }
}
