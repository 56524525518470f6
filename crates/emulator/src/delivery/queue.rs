//! Which delivery goes out next and when: the records, a timetable of due attempts, and deliveries
//! parked until their phone number gets a webhook URL. Pure bookkeeping; the worker does the I/O.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::{AttemptOutcome, DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus};
use crate::config::RetryPolicy;

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

#[derive(Default)]
pub(crate) struct DeliveryQueue {
    /// Every delivery ever made, at index `id - 1`, so records stay inspectable after they are done.
    records: Vec<DeliveryRecord>,
    /// Due times of pending deliveries; a delivery being attempted is not in here.
    timetable: BinaryHeap<Reverse<(Instant, DeliveryId)>>,
    /// Deliveries waiting for a webhook URL, per phone number id, oldest first.
    parked: HashMap<String, Vec<DeliveryId>>,
}

impl DeliveryQueue {
    /// Records a new delivery: due at once when its number has a webhook URL, parked otherwise.
    pub fn push(
        &mut self,
        phone_number_id: &str,
        body: Bytes,
        has_webhook_url: bool,
        now: Instant,
    ) -> DeliveryId {
        let id = DeliveryId(self.records.len() as u64 + 1);
        self.records.push(DeliveryRecord {
            id,
            phone_number_id: phone_number_id.to_owned(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            last_http_status: None,
            created_at: SystemTime::now(),
            delivered_at: None,
            body,
        });
        if has_webhook_url {
            self.timetable.push(Reverse((now, id)));
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
            return;
        }
        let failed = u32::try_from(record.attempts.len()).unwrap_or(u32::MAX);
        match policy.delay_after(failed) {
            Some(delay) => self.timetable.push(Reverse((now + delay, id))),
            None => record.status = DeliveryStatus::Failed,
        }
    }

    pub fn get(&self, id: DeliveryId) -> Option<&DeliveryRecord> {
        let index = usize::try_from(id.0.checked_sub(1)?).ok()?;
        self.records.get(index)
    }

    pub fn all(&self) -> &[DeliveryRecord] {
        &self.records
    }

    fn record_mut(&mut self, id: DeliveryId) -> Option<&mut DeliveryRecord> {
        let index = usize::try_from(id.0.checked_sub(1)?).ok()?;
        self.records.get_mut(index)
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
    fn unknown_ids_are_none() {
        let queue = DeliveryQueue::default();
        assert!(queue.get(DeliveryId(0)).is_none());
        assert!(queue.get(DeliveryId(1)).is_none());
    }
}
