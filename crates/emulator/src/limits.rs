//! Meta's send limits, per business number: throughput (messages per second from the number) and
//! the pair rate (messages from the number to one recipient), plus the counters that show how often
//! each refused a send.
//!
//! - Throughput is a sliding one-second window: a send is accepted while fewer than
//!   `throughput_per_second` sends were accepted in the second before it, so no one-second span ever
//!   holds more than that many accepted sends, and a burst gets exactly that many through. Over it
//!   Meta answers 130429.
//! - The pair rate is GCRA (a token bucket without a timer): one send per `60 / pair_per_minute`
//!   seconds to the same recipient, with `pair_burst` sends allowed back to back when the recipient
//!   has had none for a while. Over it Meta answers 131056.
//!
//! Only accepted sends use up either limit; a refused one costs nothing, as with Meta.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The span of the throughput window.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(1);

/// The pair table is pruned of recipients whose bucket is full again once it holds this many.
const PAIR_PRUNE_MIN: usize = 4_096;

/// How a number's sends went, as `GET /admin/phone-numbers/{id}` and
/// [`crate::RunningEmulator::send_counters`] show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCounters {
    /// Sends answered with a wamid, including those that then failed with 131047 and those a
    /// `timeout` fault held past the client's patience.
    pub accepted_sends: u64,
    /// Sends answered 130429: over the number's throughput.
    pub rejected_throughput: u64,
    /// Sends answered 131056: over the pair rate for their recipient.
    pub rejected_pair_rate: u64,
    /// Free-form sends outside the window answered 400 / 131047 (`window_violation: "reject"`).
    pub rejected_window: u64,
    /// Free-form sends outside the window that were accepted and then got a `failed` status with
    /// 131047 (`window_violation: "failed_status"`).
    pub failed_window: u64,
}

/// The accepted sends of the last second, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ThroughputWindow {
    accepted: VecDeque<Instant>,
}

impl ThroughputWindow {
    /// Whether one more send may be accepted at `now` under `per_second`.
    pub fn allows(&mut self, now: Instant, per_second: u32) -> bool {
        while self
            .accepted
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= THROUGHPUT_WINDOW)
        {
            self.accepted.pop_front();
        }
        self.accepted.len() < usize::try_from(per_second).unwrap_or(usize::MAX)
    }

    /// Notes an accepted send. Sends are counted at their arrival, and one that arrived a moment
    /// earlier may be accepted a moment later, so the window is kept in arrival order.
    pub fn record(&mut self, at: Instant) {
        let position = self.accepted.partition_point(|&earlier| earlier <= at);
        self.accepted.insert(position, at);
    }
}

/// Per recipient, the theoretical arrival time of GCRA: when its bucket would be full again.
#[derive(Debug)]
pub(crate) struct PairLimiter {
    due: HashMap<String, Instant>,
    prune_at: usize,
}

impl Default for PairLimiter {
    fn default() -> Self {
        Self {
            due: HashMap::new(),
            prune_at: PAIR_PRUNE_MIN,
        }
    }
}

/// The pair limit of a number: `per_minute` sends to one recipient, `burst` of them back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PairRate {
    pub per_minute: u32,
    pub burst: u32,
}

impl PairRate {
    fn interval(self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }

    fn tolerance(self) -> Duration {
        self.interval()
            .saturating_mul(self.burst.max(1).saturating_sub(1))
    }
}

impl PairLimiter {
    /// Whether one more send to `recipient` may be accepted at `now`.
    pub fn allows(&self, recipient: &str, now: Instant, rate: PairRate) -> bool {
        match self.due.get(recipient) {
            Some(&due) if due > now => due.duration_since(now) <= rate.tolerance(),
            _ => true,
        }
    }

    /// Notes an accepted send to `recipient`.
    pub fn record(&mut self, recipient: &str, now: Instant, rate: PairRate) {
        let interval = rate.interval();
        match self.due.get_mut(recipient) {
            Some(due) => *due = (*due).max(now) + interval,
            None => {
                self.due.insert(recipient.to_owned(), now + interval);
            }
        }
        if self.due.len() >= self.prune_at {
            // A recipient whose bucket is full again is the same as one never written to.
            self.due.retain(|_, due| *due > now);
            self.prune_at = (self.due.len() * 2).max(PAIR_PRUNE_MIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_gets_exactly_the_throughput_through_and_the_window_slides() {
        let mut window = ThroughputWindow::default();
        let start = Instant::now();
        let mut accepted = 0;
        for n in 0..100u32 {
            let now = start + Duration::from_millis(u64::from(n));
            if window.allows(now, 20) {
                window.record(now);
                accepted += 1;
            }
        }
        assert_eq!(accepted, 20);
        // The first send (at 0 ms) leaves the window at 1000 ms, making room for exactly one.
        let later = start + Duration::from_millis(1_000);
        assert!(window.allows(later, 20));
        window.record(later);
        assert!(!window.allows(later, 20));
        // Everything has left the window two seconds on.
        let much_later = start + Duration::from_secs(3);
        assert!(window.allows(much_later, 20));
    }

    #[test]
    fn sends_recorded_out_of_arrival_order_still_leave_the_window_on_time() {
        let mut window = ThroughputWindow::default();
        let start = Instant::now();
        // The later arrival is accepted first.
        window.record(start + Duration::from_millis(500));
        window.record(start);
        assert!(!window.allows(start + Duration::from_millis(900), 2));
        // At 1000 ms the first arrival has left, though it was recorded second.
        assert!(window.allows(start + Duration::from_millis(1_000), 2));
    }

    #[test]
    fn the_pair_rate_allows_a_burst_then_one_per_interval() {
        let rate = PairRate {
            per_minute: 10,
            burst: 3,
        };
        let mut pairs = PairLimiter::default();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(pairs.allows("1", start, rate));
            pairs.record("1", start, rate);
        }
        assert!(!pairs.allows("1", start, rate), "the fourth at once");
        assert!(pairs.allows("2", start, rate), "another recipient");
        let almost = start + Duration::from_millis(5_999);
        assert!(!pairs.allows("1", almost, rate));
        let six_seconds = start + Duration::from_secs(6);
        assert!(pairs.allows("1", six_seconds, rate), "one more every 6 s");
        pairs.record("1", six_seconds, rate);
        assert!(!pairs.allows("1", six_seconds, rate));
        let rested = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(pairs.allows("1", rested, rate));
            pairs.record("1", rested, rate);
        }
        assert!(!pairs.allows("1", rested, rate), "a full burst again");
    }

    #[test]
    fn a_burst_of_one_allows_only_one_per_interval() {
        let rate = PairRate {
            per_minute: 60,
            burst: 1,
        };
        let mut pairs = PairLimiter::default();
        let start = Instant::now();
        assert!(pairs.allows("1", start, rate));
        pairs.record("1", start, rate);
        assert!(!pairs.allows("1", start + Duration::from_millis(999), rate));
        assert!(pairs.allows("1", start + Duration::from_secs(1), rate));
    }

    #[test]
    fn recipients_whose_bucket_refilled_are_forgotten() {
        let rate = PairRate {
            per_minute: 60_000,
            burst: 1,
        };
        let mut pairs = PairLimiter::default();
        let start = Instant::now();
        for n in 0..(PAIR_PRUNE_MIN * 3) {
            let now = start + Duration::from_secs(u64::try_from(n).unwrap_or_default());
            pairs.record(&n.to_string(), now, rate);
        }
        assert!(pairs.due.len() < PAIR_PRUNE_MIN, "{}", pairs.due.len());
    }
}
