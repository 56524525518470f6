//! Which delivery goes out next and when: the records, a timetable of due attempts, and deliveries
//! parked until their phone number gets a webhook URL. Pure bookkeeping; the worker does the I/O.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::{AttemptOutcome, DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus};
use crate::config::RetryPolicy;
use crate::records::RECORDS_KEPT;

/// What the worker should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NextDelivery {
    /// This delivery is due now; it is taken off the timetable until its attempt is recorded.
    Due(DeliveryId),
    /// Nothing is due before this instant.
    At(Instant),
    /// Nothing is scheduled at all.
    Idle,
}

pub(crate) struct DeliveryQueue {
    /// Every unfinished delivery and the newest finished ones, so records stay inspectable after
    /// they are done without growing for ever.
    records: BTreeMap<DeliveryId, DeliveryRecord>,
    /// Finished deliveries in the order they finished, for forgetting the oldest.
    finished: VecDeque<DeliveryId>,
    /// How many finished deliveries are kept.
    finished_kept: usize,
    /// The id the next delivery gets.
    next_id: u64,
    /// Due times of pending deliveries; a delivery being attempted is not in here.
    timetable: BinaryHeap<Reverse<(Instant, DeliveryId)>>,
    /// Deliveries waiting for a webhook URL, per phone number id, oldest first.
    parked: HashMap<String, Vec<DeliveryId>>,
}

impl Default for DeliveryQueue {
    fn default() -> Self {
        Self::keeping_finished(RECORDS_KEPT)
    }
}

impl DeliveryQueue {
    /// A queue that remembers at most `finished_kept` finished deliveries (unfinished ones are all kept).
    pub fn keeping_finished(finished_kept: usize) -> Self {
        Self {
            records: BTreeMap::new(),
            finished: VecDeque::new(),
            finished_kept: finished_kept.max(1),
            next_id: 1,
            timetable: BinaryHeap::new(),
            parked: HashMap::new(),
        }
    }

    /// Records a new delivery: due at `due` when its number has a webhook URL, parked otherwise.
    pub fn push(
        &mut self,
        phone_number_id: &str,
        body: Bytes,
        has_webhook_url: bool,
        due: Instant,
    ) -> DeliveryId {
        let id = DeliveryId(self.next_id);
        self.next_id += 1;
        self.records.insert(
            id,
            DeliveryRecord {
                id,
                phone_number_id: phone_number_id.to_owned(),
                status: DeliveryStatus::Pending,
                attempts: Vec::new(),
                last_http_status: None,
                created_at: SystemTime::now(),
                delivered_at: None,
                body,
            },
        );
        if has_webhook_url {
            self.timetable.push(Reverse((due, id)));
        } else {
            self.park(id);
        }
        id
    }

    /// Takes the earliest due delivery off the timetable, or says when one will be due.
    pub fn next(&mut self, now: Instant) -> NextDelivery {
        match self.timetable.peek() {
            None => NextDelivery::Idle,
            Some(Reverse((due, _))) if *due > now => NextDelivery::At(*due),
            Some(_) => match self.timetable.pop() {
                Some(Reverse((_, id))) => NextDelivery::Due(id),
                None => NextDelivery::Idle,
            },
        }
    }

    /// Sets a delivery aside until its phone number has a webhook URL again.
    pub fn park(&mut self, id: DeliveryId) {
        if let Some(record) = self.record_mut(id) {
            record.status = DeliveryStatus::AwaitingWebhookUrl;
            let phone_number_id = record.phone_number_id.clone();
            self.parked.entry(phone_number_id).or_default().push(id);
        }
    }

    /// Puts every delivery parked for this number back on the timetable, due now; returns how many.
    pub fn release(&mut self, phone_number_id: &str, now: Instant) -> usize {
        let ids = self.parked.remove(phone_number_id).unwrap_or_default();
        for &id in &ids {
            if let Some(record) = self.record_mut(id) {
                record.status = DeliveryStatus::Pending;
            }
            self.timetable.push(Reverse((now, id)));
        }
        ids.len()
    }

    /// Records an attempt's outcome, then marks the delivery delivered, schedules the retry, or gives up.
    pub fn record_attempt(
        &mut self,
        id: DeliveryId,
        attempt: DeliveryAttempt,
        policy: &RetryPolicy,
        now: Instant,
    ) {
        let Some(record) = self.record_mut(id) else {
            return;
        };
        if let AttemptOutcome::Http { status } = attempt.outcome {
            record.last_http_status = Some(status);
        }
        let delivered = attempt.outcome == AttemptOutcome::Http { status: 200 };
        let finished_at = attempt.started_at + attempt.duration;
        record.attempts.push(attempt);
        if delivered {
            record.status = DeliveryStatus::Delivered;
            record.delivered_at = Some(finished_at);
            self.finish(id);
            return;
        }
        let failed = u32::try_from(record.attempts.len()).unwrap_or(u32::MAX);
        match policy.delay_after(failed) {
            Some(delay) => self.timetable.push(Reverse((now + delay, id))),
            None => {
                record.status = DeliveryStatus::Failed;
                self.finish(id);
            }
        }
    }

    pub fn get(&self, id: DeliveryId) -> Option<&DeliveryRecord> {
        self.records.get(&id)
    }

    /// Every delivery kept, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.records.values()
    }

    fn record_mut(&mut self, id: DeliveryId) -> Option<&mut DeliveryRecord> {
        self.records.get_mut(&id)
    }

    /// Notes that a delivery is done, forgetting the finished delivery that is oldest when too many are kept.
    fn finish(&mut self, id: DeliveryId) {
        self.finished.push_back(id);
        if self.finished.len() > self.finished_kept
            && let Some(oldest) = self.finished.pop_front()
        {
            self.records.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn attempt(number: u32, status: u16) -> DeliveryAttempt {
        DeliveryAttempt {
            number,
            url: "http://127.0.0.1:9/".into(),
            started_at: SystemTime::now(),
            duration: Duration::from_millis(1),
            outcome: AttemptOutcome::Http { status },
        }
    }

    #[test]
    fn deliveries_come_out_in_due_order() {
        let mut queue = DeliveryQueue::default();
        let now = Instant::now();
        let first = queue.push("1", Bytes::from_static(b"{}"), true, now);
        let second = queue.push("1", Bytes::from_static(b"{}"), true, now);
        assert_eq!(queue.next(now), NextDelivery::Due(first));
        assert_eq!(queue.next(now), NextDelivery::Due(second));
        assert_eq!(queue.next(now), NextDelivery::Idle);
    }

    #[test]
    fn a_failed_attempt_is_retried_after_the_policys_delay_and_then_given_up() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::fast()
        };
        let mut queue = DeliveryQueue::default();
        let now = Instant::now();
        let id = queue.push("1", Bytes::from_static(b"{}"), true, now);
        assert_eq!(queue.next(now), NextDelivery::Due(id));
        queue.record_attempt(id, attempt(1, 500), &policy, now);
        assert_eq!(
            queue.next(now),
            NextDelivery::Due(id),
            "the first retry is immediate"
        );
        queue.record_attempt(id, attempt(2, 503), &policy, now);
        assert_eq!(
            queue.next(now),
            NextDelivery::At(now + policy.initial_delay)
        );
        assert_eq!(
            queue.next(now + policy.initial_delay),
            NextDelivery::Due(id)
        );
        queue.record_attempt(id, attempt(3, 500), &policy, now);
        assert_eq!(
            queue.next(now + Duration::from_secs(3600)),
            NextDelivery::Idle
        );
        let record = queue.get(id).cloned();
        assert_eq!(
            record.as_ref().map(|r| r.status),
            Some(DeliveryStatus::Failed)
        );
        assert_eq!(record.and_then(|r| r.last_http_status), Some(500));
    }

    #[test]
    fn a_200_marks_the_delivery_delivered() {
        let mut queue = DeliveryQueue::default();
        let now = Instant::now();
        let id = queue.push("1", Bytes::from_static(b"{}"), true, now);
        let _ = queue.next(now);
        queue.record_attempt(id, attempt(1, 200), &RetryPolicy::fast(), now);
        let record = queue.get(id);
        assert_eq!(record.map(|r| r.status), Some(DeliveryStatus::Delivered));
        assert!(record.is_some_and(|r| r.delivered_at.is_some()));
        assert_eq!(queue.next(now), NextDelivery::Idle);
    }

    #[test]
    fn parked_deliveries_wait_for_their_number_only() {
        let mut queue = DeliveryQueue::default();
        let now = Instant::now();
        let waiting = queue.push("1", Bytes::from_static(b"{}"), false, now);
        let other = queue.push("2", Bytes::from_static(b"{}"), false, now);
        assert_eq!(
            queue.get(waiting).map(|r| r.status),
            Some(DeliveryStatus::AwaitingWebhookUrl)
        );
        assert_eq!(queue.next(now), NextDelivery::Idle);
        assert_eq!(queue.release("1", now), 1);
        assert_eq!(
            queue.get(waiting).map(|r| r.status),
            Some(DeliveryStatus::Pending)
        );
        assert_eq!(queue.next(now), NextDelivery::Due(waiting));
        assert_eq!(queue.next(now), NextDelivery::Idle);
        assert_eq!(
            queue.get(other).map(|r| r.status),
            Some(DeliveryStatus::AwaitingWebhookUrl)
        );
    }

    #[test]
    fn only_the_newest_finished_deliveries_are_kept_and_unfinished_ones_stay() {
        let mut queue = DeliveryQueue::keeping_finished(2);
        let now = Instant::now();
        let unfinished = queue.push("1", Bytes::from_static(b"{}"), false, now);
        let ids: Vec<DeliveryId> = (0..4)
            .map(|_| queue.push("2", Bytes::from_static(b"{}"), true, now))
            .collect();
        for (n, &id) in ids.iter().enumerate() {
            assert_eq!(queue.next(now), NextDelivery::Due(id));
            queue.record_attempt(id, attempt(1, 200), &RetryPolicy::fast(), now);
            assert!(
                queue.get(id).is_some(),
                "delivery {n} is kept right after finishing"
            );
        }
        let kept: Vec<DeliveryId> = queue.all().map(|r| r.id).collect();
        assert_eq!(kept, [unfinished, ids[2], ids[3]]);
    }

    #[test]
    fn unknown_ids_are_none() {
        let queue = DeliveryQueue::default();
        assert!(queue.get(DeliveryId(0)).is_none());
        assert!(queue.get(DeliveryId(1)).is_none());
    }
}
