//! Budgets held in this process: GCRA over a map from key to TAT, with idle keys swept away.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::gcra;
use super::{Allowance, Exhausted, Quota};

/// Above this many keys, the next new key sweeps out the idle ones.
const SWEEP_THRESHOLD: usize = 10_000;

/// Where local budgets read the time: microseconds on a clock that never goes back.
pub(crate) trait Clock: Send + Sync + 'static {
    fn now_us(&self) -> u64;
}

/// The real clock: microseconds since the budgets were created.
pub(crate) struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_us(&self) -> u64 {
        gcra::duration_us(self.origin.elapsed())
    }
}

pub(crate) struct LocalBudgets {
    clock: Box<dyn Clock>,
    table: Mutex<Table>,
}

struct Table {
    /// Each key's theoretical arrival time; a key whose TAT has passed is the same as no key.
    tats: HashMap<String, u64>,
    /// Sweep when `tats` grows past this; raised after a sweep that left many live keys, so a
    /// table full of busy keys is not swept on every insert.
    sweep_above: usize,
    /// The lowest `sweep_above` ever goes.
    min_sweep_above: usize,
}

impl LocalBudgets {
    pub(crate) fn new() -> Self {
        Self::with_clock(Box::new(MonotonicClock::new()), SWEEP_THRESHOLD)
    }

    pub(crate) fn with_clock(clock: Box<dyn Clock>, sweep_above: usize) -> Self {
        Self {
            clock,
            table: Mutex::new(Table {
                tats: HashMap::new(),
                sweep_above,
                min_sweep_above: sweep_above,
            }),
        }
    }

    pub(crate) fn try_acquire(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        let (interval, tolerance) = (gcra::interval_us(quota), gcra::tolerance_us(quota));
        // Nothing below can panic, so a poisoned lock still holds consistent numbers.
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        let stored = table.tats.get(key).copied();
        match gcra::take(stored, now, interval, tolerance) {
            Ok(tat) => {
                table.store(key, tat, now);
                Ok(())
            }
            Err(wait) => Err(Duration::from_micros(wait)),
        }
    }

    pub(crate) fn try_acquire_metered(
        &self,
        key: &str,
        quota: Quota,
    ) -> Result<Allowance, Exhausted> {
        let (interval, tolerance) = (gcra::interval_us(quota), gcra::tolerance_us(quota));
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        let stored = table.tats.get(key).copied();
        match gcra::take_metered(stored, now, interval, tolerance) {
            Ok((tat, left)) => {
                table.store(key, tat, now);
                Ok(Allowance::from_left(left))
            }
            Err((wait, full_in)) => Err(Exhausted::from_us(wait, full_in)),
        }
    }

    pub(crate) fn reserve(&self, key: &str, quota: Quota) -> Duration {
        let (interval, tolerance) = (gcra::interval_us(quota), gcra::tolerance_us(quota));
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        let stored = table.tats.get(key).copied();
        let (tat, wait) = gcra::reserve(stored, now, interval, tolerance);
        table.store(key, tat, now);
        Duration::from_micros(wait)
    }

    pub(crate) fn penalize(&self, key: &str, quota: Quota, penalty: Duration) {
        let hold = gcra::hold_us(quota, penalty);
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_us();
        let stored = table.tats.get(key).copied();
        table.store(key, gcra::penalized(stored, now, hold), now);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tats
            .len()
    }
}

impl Table {
    fn store(&mut self, key: &str, tat: u64, now: u64) {
        if let Some(stored) = self.tats.get_mut(key) {
            *stored = tat;
            return;
        }
        self.tats.insert(key.to_owned(), tat);
        if self.tats.len() > self.sweep_above {
            self.tats.retain(|_, tat| *tat > now);
            self.sweep_above = self.min_sweep_above.max(self.tats.len().saturating_mul(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock the test moves by hand.
    #[derive(Clone, Default)]
    struct FakeClock(Arc<AtomicU64>);

    impl FakeClock {
        fn advance(&self, by: Duration) {
            self.0.fetch_add(gcra::duration_us(by), Ordering::SeqCst);
        }
    }

    impl Clock for FakeClock {
        fn now_us(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn budgets() -> (LocalBudgets, FakeClock) {
        let clock = FakeClock::default();
        (
            LocalBudgets::with_clock(Box::new(clock.clone()), SWEEP_THRESHOLD),
            clock,
        )
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_idle_key_admits_its_burst_at_once_then_one_unit_per_interval() {
        let (budgets, clock) = budgets();
        let quota = Quota::per_second(80.0);
        for n in 0..8 {
            assert_eq!(
                budgets.try_acquire("tp:1", quota),
                Ok(()),
                "unit {n} of the burst"
            );
        }
        assert_eq!(
            budgets.try_acquire("tp:1", quota),
            Err(Duration::from_micros(12_500))
        );
        clock.advance(Duration::from_micros(12_500));
        assert_eq!(budgets.try_acquire("tp:1", quota), Ok(()));
        assert_eq!(
            budgets.try_acquire("tp:1", quota),
            Err(Duration::from_micros(12_500))
        );
    }

    #[test]
    fn eighty_per_second_admits_the_burst_then_eighty_more_in_the_first_second() {
        let (budgets, clock) = budgets();
        let quota = Quota::per_second(80.0);
        let mut admitted = 0;
        for ms in 0..=1000 {
            if ms > 0 {
                clock.advance(MS);
            }
            while budgets.try_acquire("tp:1", quota).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 8 + 80);
        // The second second gets exactly 80: the burst is spent and does not come back while busy.
        for _ in 0..1000 {
            clock.advance(MS);
            while budgets.try_acquire("tp:1", quota).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 8 + 80 + 80);
    }

    #[test]
    fn waits_returned_are_exact() {
        let (budgets, clock) = budgets();
        let quota = Quota::new(10.0, 2);
        assert!(budgets.try_acquire("k", quota).is_ok());
        assert!(budgets.try_acquire("k", quota).is_ok());
        assert_eq!(budgets.try_acquire("k", quota), Err(100 * MS));
        clock.advance(30 * MS);
        assert_eq!(budgets.try_acquire("k", quota), Err(70 * MS));
        clock.advance(Duration::from_micros(69_999));
        assert_eq!(
            budgets.try_acquire("k", quota),
            Err(Duration::from_micros(1))
        );
        clock.advance(Duration::from_micros(1));
        assert_eq!(budgets.try_acquire("k", quota), Ok(()));
    }

    #[test]
    fn the_pair_quota_allows_three_quick_messages_then_one_every_six_seconds() {
        let (budgets, clock) = budgets();
        let quota = Quota::pair_default();
        for _ in 0..3 {
            assert!(budgets.try_acquire("pair:1:447700900000", quota).is_ok());
        }
        let six_seconds = Duration::from_secs(6);
        assert_eq!(
            budgets.try_acquire("pair:1:447700900000", quota),
            Err(six_seconds)
        );
        clock.advance(six_seconds);
        assert!(budgets.try_acquire("pair:1:447700900000", quota).is_ok());
        assert_eq!(
            budgets.try_acquire("pair:1:447700900000", quota),
            Err(six_seconds)
        );
    }

    #[test]
    fn a_penalty_holds_an_idle_key_back_for_exactly_that_long_then_restarts_slowly() {
        let (budgets, clock) = budgets();
        let quota = Quota::per_second(80.0);
        budgets.penalize("tp:1", quota, Duration::from_secs(1));
        assert_eq!(
            budgets.try_acquire("tp:1", quota),
            Err(Duration::from_secs(1))
        );
        clock.advance(999 * MS);
        assert_eq!(budgets.try_acquire("tp:1", quota), Err(MS));
        clock.advance(MS);
        assert_eq!(budgets.try_acquire("tp:1", quota), Ok(()));
        // No burst straight after a penalty: the next unit waits a whole interval.
        assert_eq!(
            budgets.try_acquire("tp:1", quota),
            Err(Duration::from_micros(12_500))
        );
    }

    #[test]
    fn a_penalty_shorter_than_the_tolerance_still_holds_the_key_back() {
        let (budgets, _clock) = budgets();
        let quota = Quota::pair_default();
        budgets.penalize("pair", quota, Duration::from_secs(2));
        assert_eq!(
            budgets.try_acquire("pair", quota),
            Err(Duration::from_secs(2))
        );
    }

    #[test]
    fn a_penalty_never_shortens_a_wait_already_owed() {
        let (budgets, _clock) = budgets();
        let quota = Quota::new(1.0, 1);
        assert!(budgets.try_acquire("k", quota).is_ok());
        budgets.penalize("k", quota, 10 * MS);
        assert_eq!(budgets.try_acquire("k", quota), Err(Duration::from_secs(1)));
    }

    #[test]
    fn metered_takes_count_down_and_refusals_say_when_to_retry() {
        let (budgets, clock) = budgets();
        // Three a second, all three at once.
        let quota = Quota::new(3.0, 3);
        let third = Duration::from_micros(333_333);
        for remaining in [2, 1, 0] {
            let allowance = budgets.try_acquire_metered("api:key:1", quota).unwrap();
            assert_eq!(allowance.remaining, remaining);
        }
        assert_eq!(
            budgets.try_acquire_metered("api:key:1", quota),
            Err(Exhausted {
                retry_after: third,
                full_in: 3 * third
            })
        );
        clock.advance(third);
        let allowance = budgets.try_acquire_metered("api:key:1", quota).unwrap();
        assert_eq!(
            allowance,
            Allowance {
                remaining: 0,
                full_in: 3 * third
            }
        );
        assert!(
            budgets.try_acquire_metered("api:key:2", quota).is_ok(),
            "another key has its own budget"
        );
        // Metered and plain takes draw on the same budget.
        clock.advance(3 * third);
        assert!(budgets.try_acquire("api:key:1", quota).is_ok());
        assert_eq!(
            budgets
                .try_acquire_metered("api:key:1", quota)
                .unwrap()
                .remaining,
            1
        );
    }

    #[test]
    fn keys_are_independent() {
        let (budgets, _clock) = budgets();
        let quota = Quota::new(1.0, 1);
        assert!(budgets.try_acquire("tp:a", quota).is_ok());
        assert!(budgets.try_acquire("tp:a", quota).is_err());
        assert!(budgets.try_acquire("tp:b", quota).is_ok());
        budgets.penalize("tp:c", quota, Duration::from_secs(5));
        assert!(budgets.try_acquire("tp:d", quota).is_ok());
        assert_eq!(
            budgets.try_acquire("tp:c", quota),
            Err(Duration::from_secs(5))
        );
    }

    #[test]
    fn idle_keys_are_evicted_once_the_table_grows_and_live_ones_kept() {
        let clock = FakeClock::default();
        let budgets = LocalBudgets::with_clock(Box::new(clock.clone()), 4);
        let quota = Quota::new(10.0, 1);
        for key in ["a", "b", "c"] {
            assert!(budgets.try_acquire(key, quota).is_ok());
        }
        budgets.penalize("held", quota, Duration::from_secs(60));
        assert_eq!(budgets.len(), 4);
        clock.advance(Duration::from_secs(1));
        assert!(budgets.try_acquire("new", quota).is_ok());
        assert_eq!(
            budgets.len(),
            2,
            "a, b and c were idle; held and new are not"
        );
        assert!(
            budgets.try_acquire("held", quota).is_err(),
            "the penalty survived the sweep"
        );
        // A table of busy keys grows without sweeping on every insert, then sweeps again.
        for n in 0..100 {
            assert!(budgets.try_acquire(&format!("busy{n}"), quota).is_ok());
        }
        assert!(budgets.len() <= 102);
        clock.advance(Duration::from_secs(120));
        for n in 0..100 {
            assert!(budgets.try_acquire(&format!("later{n}"), quota).is_ok());
        }
        assert!(
            budgets.len() < 200,
            "idle keys went on a later sweep: {}",
            budgets.len()
        );
    }
}
