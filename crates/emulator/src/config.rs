//! How an emulator is started: where it listens and how stubbornly it retries webhook deliveries.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Everything [`crate::start`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port, which [`crate::RunningEmulator::base_url`] then reports.
    pub listen: SocketAddr,
    /// How webhook deliveries that did not get HTTP 200 are retried.
    pub delivery: RetryPolicy,
}

impl EmulatorConfig {
    /// Loopback on a free port with test timings: what tests want almost always.
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            delivery: RetryPolicy::fast(),
        }
    }
}

/// When a failed webhook delivery is tried again.
///
/// Like Meta, the first retry goes out at once; after that the wait starts at `initial_delay` and grows
/// by `factor` per attempt up to `max_delay`, until `max_attempts` attempts have been made.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the second retry (the first one is immediate).
    pub initial_delay: Duration,
    /// Growth of the wait per further attempt; values below 1 (or NaN) count as 1.
    pub factor: f64,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
    /// Attempts in all, the first included; 0 counts as 1.
    pub max_attempts: u32,
    /// How long one POST may take before it counts as failed (Meta wants answers well under a second).
    pub request_timeout: Duration,
}

impl RetryPolicy {
    /// Meta's behaviour: at once, then 1 s, 2 s, 4 s ... capped at 5 minutes, for about seven days.
    pub fn meta_like() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(5 * 60),
            // 2 (at once) + 9 growing waits (511 s) + 2015 waits of 5 minutes is just over 7 days.
            max_attempts: 2_026,
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Short timings so a test that makes a receiver fail a few times still runs in milliseconds.
    pub fn fast() -> Self {
        Self {
            initial_delay: Duration::from_millis(20),
            factor: 2.0,
            max_delay: Duration::from_millis(500),
            max_attempts: 50,
            request_timeout: Duration::from_secs(2),
        }
    }

    /// Attempts in all, never fewer than one.
    pub(crate) fn attempts_allowed(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The wait after `failed_attempts` attempts have failed, or `None` when no attempt is left.
    pub fn delay_after(&self, failed_attempts: u32) -> Option<Duration> {
        if failed_attempts == 0 {
            return Some(Duration::ZERO);
        }
        if failed_attempts >= self.attempts_allowed() {
            return None;
        }
        if failed_attempts == 1 {
            return Some(Duration::ZERO);
        }
        // Computed in floating point and clamped, so huge exponents or odd factors cannot panic.
        let factor = self.factor.max(1.0);
        let exponent = i32::try_from(failed_attempts - 2).unwrap_or(i32::MAX);
        let seconds = self.initial_delay.as_secs_f64() * factor.powi(exponent);
        let max = self.max_delay;
        let delay = Duration::try_from_secs_f64(seconds).unwrap_or(max);
        Some(delay.min(max))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::meta_like()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_retry_is_immediate_and_later_ones_grow_to_the_cap() {
        let policy = RetryPolicy::meta_like();
        let waits: Vec<u64> = (1..=12)
            .map(|n| policy.delay_after(n).map_or(u64::MAX, |d| d.as_secs()))
            .collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn meta_like_retries_for_about_seven_days() {
        let policy = RetryPolicy::meta_like();
        let total: Duration = (1..policy.max_attempts)
            .map(|n| policy.delay_after(n).unwrap_or_default())
            .sum();
        let days = total.as_secs_f64() / 86_400.0;
        assert!((7.0..7.01).contains(&days), "{days} days");
        assert_eq!(policy.delay_after(policy.max_attempts), None);
    }

    #[test]
    fn odd_policies_do_not_panic() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(u64::MAX / 2),
            factor: f64::NAN,
            max_delay: Duration::from_secs(3),
            max_attempts: 0,
            request_timeout: Duration::ZERO,
        };
        assert_eq!(policy.delay_after(1), None);
        let policy = RetryPolicy {
            factor: 1e300,
            max_attempts: u32::MAX,
            ..policy
        };
        assert_eq!(
            policy.delay_after(u32::MAX - 1),
            Some(Duration::from_secs(3))
        );
    }
}
