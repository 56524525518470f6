//! A sliding log of recent departures per key, in this process: at most `cap` in any span of
//! `window`. GCRA spaces sends evenly, but a send that leaves late bunches with the ones after
//! it, and Meta counts what arrives in each second; this log is the second guard that keeps any
//! one window under the cap however the sends were delayed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::local::Clock;

/// Above this many keys, the next new key sweeps out the ones with nothing in their window.
const SWEEP_THRESHOLD: usize = 10_000;

pub(crate) struct DepartureLogs {
    clock: Box<dyn Clock>,
    logs: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl DepartureLogs {
    pub(crate) fn new(clock: Box<dyn Clock>) -> Self {
        Self {
            clock,
            logs: Mutex::new(HashMap::new()),
        }
    }

    /// Records a departure for `key` now if fewer than `cap` happened in the last `window`;
    /// otherwise answers how long until the oldest of them leaves the window (nothing recorded).
    pub(crate) fn admit(&self, key: &str, cap: u32, window: Duration) -> Result<(), Duration> {
        let window_us = super::gcra::duration_us(window);
        let cap = cap.max(1) as usize;
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        if !logs.contains_key(key) && logs.len() > SWEEP_THRESHOLD {
            logs.retain(|_, log| log.back().is_some_and(|last| last + window_us > now));
        }
        let log = logs.entry(key.to_owned()).or_default();
        while log.front().is_some_and(|first| first + window_us <= now) {
            log.pop_front();
        }
        if log.len() < cap {
            log.push_back(now);
            return Ok(());
        }
        let oldest = log.front().copied().unwrap_or(now);
        Err(Duration::from_micros((oldest + window_us - now).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Clone, Default)]
    struct FakeClock(Arc<AtomicU64>);

    impl Clock for FakeClock {
        fn now_us(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_bunch_of_late_sends_gets_at_most_the_cap_into_any_window() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        // Ten sends every 100 ms for two seconds, all wanting to leave at once each time.
        let mut admitted: Vec<u64> = Vec::new();
        for step in 0..20u64 {
            clock.0.store(step * 100_000, Ordering::SeqCst);
            for _ in 0..10 {
                if logs.admit("number:1", 78, SECOND).is_ok() {
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
    fn a_full_window_answers_when_its_oldest_departure_leaves_it() {
        let clock = FakeClock::default();
        let logs = DepartureLogs::new(Box::new(clock.clone()));
        assert_eq!(logs.admit("k", 2, SECOND), Ok(()));
        clock.0.store(300_000, Ordering::SeqCst);
        assert_eq!(logs.admit("k", 2, SECOND), Ok(()));
        clock.0.store(400_000, Ordering::SeqCst);
        assert_eq!(logs.admit("k", 2, SECOND), Err(Duration::from_millis(600)));
        assert_eq!(
            logs.admit("other", 2, SECOND),
            Ok(()),
            "keys are independent"
        );
        clock.0.store(1_000_000, Ordering::SeqCst);
        assert_eq!(logs.admit("k", 2, SECOND), Ok(()));
        assert_eq!(logs.admit("k", 2, SECOND), Err(Duration::from_millis(300)));
    }
}
