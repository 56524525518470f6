//! The GCRA arithmetic both backends share, on whole microseconds so Rust and the Redis script agree.
//!
//! GCRA keeps one number per key: the theoretical arrival time (TAT) of the next unit. Each unit
//! taken pushes it `interval` further; a unit may be taken while the TAT is at most `tolerance`
//! ahead of now. The Lua scripts in `redis_backend` are a line-for-line copy of these functions.

use std::time::Duration;

use super::Quota;

/// Microseconds between units when a rate makes no sense (zero, negative, NaN): one a day.
const NONSENSE_RATE_INTERVAL_US: u64 = 24 * 60 * 60 * 1_000_000;

/// Longest penalty honoured; Meta never asks for more, and it keeps Lua's doubles exact.
pub(crate) const MAX_PENALTY: Duration = Duration::from_secs(24 * 60 * 60);

/// The emission interval T = 1 / per_second, in microseconds, at least 1.
pub(crate) fn interval_us(quota: Quota) -> u64 {
    let rate = quota.per_second;
    if rate.is_nan() || rate <= 0.0 {
        return NONSENSE_RATE_INTERVAL_US;
    }
    // `as` saturates, so an infinite rate gives 0 and is lifted to 1 µs.
    ((1_000_000.0 / rate).round() as u64).clamp(1, NONSENSE_RATE_INTERVAL_US)
}

/// The tolerance: T * (burst - 1), so exactly `burst` units can be taken at once from an idle key.
pub(crate) fn tolerance_us(quota: Quota) -> u64 {
    interval_us(quota).saturating_mul(u64::from(quota.burst.max(1) - 1))
}

/// How far past now a penalty pushes the TAT: penalty + tolerance, so that nothing at all is
/// admitted until `penalty` has passed (a TAT of only now + penalty would still admit a burst
/// before then, and a penalty shorter than the tolerance would do nothing).
pub(crate) fn hold_us(quota: Quota, penalty: Duration) -> u64 {
    duration_us(penalty.min(MAX_PENALTY)).saturating_add(tolerance_us(quota))
}

/// Takes one unit if it is there: `Ok(new_tat)` to store, or `Err(wait_us)` with nothing taken.
pub(crate) fn take(
    stored_tat: Option<u64>,
    now: u64,
    interval: u64,
    tolerance: u64,
) -> Result<u64, u64> {
    let tat = stored_tat.map_or(now, |tat| tat.max(now));
    let allowed_at = tat.saturating_sub(tolerance);
    if allowed_at <= now {
        Ok(tat.saturating_add(interval))
    } else {
        Err(allowed_at - now)
    }
}

/// What a metered take leaves of a key's budget, in the same whole microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Left {
    /// Units a run of takes at this same instant would still get.
    pub(crate) units: u64,
    /// How long until the TAT is reached, when the key is idle and its whole burst is back.
    pub(crate) full_in: u64,
}

/// [`take`], also answering what is left: `Ok((new_tat, left))` to store, or
/// `Err((wait, full_in))` with nothing taken (and nothing left now).
pub(crate) fn take_metered(
    stored_tat: Option<u64>,
    now: u64,
    interval: u64,
    tolerance: u64,
) -> Result<(u64, Left), (u64, u64)> {
    match take(stored_tat, now, interval, tolerance) {
        Ok(new_tat) => Ok((
            new_tat,
            Left {
                units: units_left(new_tat, now, interval, tolerance),
                full_in: new_tat.saturating_sub(now),
            },
        )),
        Err(wait) => Err((wait, stored_tat.map_or(0, |tat| tat.saturating_sub(now)))),
    }
}

/// How many units a run of takes at `now` gets from TAT `tat`: the k-th more is admitted while
/// `tat + (k - 1) * interval <= now + tolerance`.
pub(crate) fn units_left(tat: u64, now: u64, interval: u64, tolerance: u64) -> u64 {
    let tat = tat.max(now);
    let horizon = now.saturating_add(tolerance);
    if tat > horizon {
        0
    } else {
        (horizon - tat) / interval.max(1) + 1
    }
}

/// Reserves the next unit whether or not it is there yet: `(new_tat, wait_us)`, where `wait_us` is
/// how long until the reserved unit may be used (0 when now). Reservations queue in the order
/// they are made, which keeps sends in order however long the queue.
pub(crate) fn reserve(
    stored_tat: Option<u64>,
    now: u64,
    interval: u64,
    tolerance: u64,
) -> (u64, u64) {
    let tat = stored_tat.map_or(now, |tat| tat.max(now));
    let allowed_at = tat.saturating_sub(tolerance);
    (tat.saturating_add(interval), allowed_at.saturating_sub(now))
}

/// The TAT after a penalty: never earlier than it was.
pub(crate) fn penalized(stored_tat: Option<u64>, now: u64, hold: u64) -> u64 {
    let held_until = now.saturating_add(hold);
    stored_tat.map_or(held_until, |tat| tat.max(held_until))
}

pub(crate) fn duration_us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reservations_queue_one_interval_apart_after_the_burst() {
        let (interval, tolerance) = (10, 20);
        let mut tat = None;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let (next, wait) = reserve(tat, 1_000, interval, tolerance);
            tat = Some(next);
            waits.push(wait);
        }
        assert_eq!(waits, [0, 0, 0, 10, 20, 30]);
    }

    #[test]
    fn eighty_per_second_is_one_unit_every_12_5_ms_with_a_burst_of_eight() {
        let quota = Quota::per_second(80.0);
        assert_eq!(quota.burst, 8);
        assert_eq!(interval_us(quota), 12_500);
        assert_eq!(tolerance_us(quota), 7 * 12_500);
    }

    #[test]
    fn the_pair_quota_is_one_unit_every_six_seconds() {
        let quota = Quota::pair_default();
        assert_eq!(quota.burst, 3);
        assert_eq!(interval_us(quota), 6_000_000);
        assert_eq!(tolerance_us(quota), 12_000_000);
    }

    #[test]
    fn nonsense_rates_become_one_a_day_and_never_panic() {
        for rate in [0.0, -5.0, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(
                interval_us(Quota::new(rate, 1)),
                NONSENSE_RATE_INTERVAL_US,
                "{rate}"
            );
        }
        assert_eq!(interval_us(Quota::new(f64::INFINITY, 1)), 1);
        assert_eq!(tolerance_us(Quota::new(10.0, 0)), 0, "burst 0 counts as 1");
    }

    #[test]
    fn what_is_left_counts_down_to_zero_and_the_refusal_says_when_the_budget_is_whole() {
        // 100 a minute, all of them at once from an idle key.
        let quota = Quota::new(100.0 / 60.0, 100);
        let (interval, tolerance) = (interval_us(quota), tolerance_us(quota));
        assert_eq!(interval, 600_000);
        let now = 7_000_000;
        let mut tat = None;
        for expected_left in (0..100).rev() {
            let (next, left) =
                take_metered(tat, now, interval, tolerance).expect("within the burst");
            assert_eq!(left.units, expected_left);
            assert_eq!(left.full_in, (100 - expected_left) * interval);
            tat = Some(next);
        }
        let (wait, full_in) = take_metered(tat, now, interval, tolerance).unwrap_err();
        assert_eq!(wait, interval, "one unit comes back every 0.6 s");
        assert_eq!(
            full_in, 60_000_000,
            "the whole minute's budget is back in 60 s"
        );
        // After 0.6 s one unit is back: it is taken and none is left again.
        let later = now + interval;
        let (_, left) = take_metered(tat, later, interval, tolerance).expect("one is back");
        assert_eq!(left.units, 0);
    }

    #[test]
    fn an_idle_key_has_its_whole_burst_left() {
        let quota = Quota::new(10.0, 4);
        let (interval, tolerance) = (interval_us(quota), tolerance_us(quota));
        assert_eq!(units_left(0, 1_000, interval, tolerance), 4);
        assert_eq!(units_left(1_000, 1_000, interval, tolerance), 4);
        let (_, left) = take_metered(Some(0), 1_000, interval, tolerance).unwrap();
        assert_eq!(
            left,
            Left {
                units: 3,
                full_in: interval
            }
        );
    }

    proptest! {
        /// What a metered take says is left is exactly how many more takes succeed at once.
        #[test]
        fn units_left_is_how_many_takes_succeed_now(
            interval in 1u64..100_000,
            burst in 1u32..50,
            steps in prop::collection::vec(0u64..200_000, 1..60),
        ) {
            let tolerance = interval * u64::from(burst - 1);
            let (mut now, mut tat) = (1_000_000u64, None);
            for step in steps {
                now += step;
                if let Ok((next, left)) = take_metered(tat, now, interval, tolerance) {
                    tat = Some(next);
                    let mut probe = tat;
                    let mut admitted = 0;
                    while let Ok(after) = take(probe, now, interval, tolerance) {
                        probe = Some(after);
                        admitted += 1;
                    }
                    prop_assert_eq!(left.units, admitted);
                    prop_assert!(left.units < u64::from(burst));
                }
            }
        }

        /// Over any run of calls, an idle key admits at most `burst + elapsed / T` units.
        #[test]
        fn no_run_of_calls_gets_more_than_burst_plus_rate(
            interval in 1u64..100_000,
            burst in 1u32..20,
            steps in prop::collection::vec(0u64..50_000, 1..300),
        ) {
            let tolerance = interval * u64::from(burst - 1);
            let (mut now, mut tat, mut admitted) = (1_000_000u64, None, 0u64);
            for step in steps {
                now += step;
                if let Ok(next) = take(tat, now, interval, tolerance) {
                    tat = Some(next);
                    admitted += 1;
                }
            }
            prop_assert!(admitted <= u64::from(burst) + (now - 1_000_000) / interval);
        }

        /// A returned wait is exact: one microsecond earlier still fails, at the wait it succeeds.
        #[test]
        fn a_returned_wait_is_exact(
            interval in 1u64..100_000,
            burst in 1u32..20,
            taken in 0u32..40,
        ) {
            let tolerance = interval * u64::from(burst - 1);
            let now = 5_000_000u64;
            let mut tat = None;
            for _ in 0..taken {
                if let Ok(next) = take(tat, now, interval, tolerance) {
                    tat = Some(next);
                }
            }
            if let Err(wait) = take(tat, now, interval, tolerance) {
                prop_assert!(take(tat, now + wait - 1, interval, tolerance).is_err());
                prop_assert!(take(tat, now + wait, interval, tolerance).is_ok());
            } else {
                prop_assert!(taken < burst);
            }
        }
    }
}
