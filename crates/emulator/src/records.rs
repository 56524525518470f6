//! Bounded in-memory records (sends, read receipts, Graph calls, finished deliveries, wamid indexes),
//! so a long benchmark cannot grow the emulator's memory without limit, and how their times are written.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serializer;

/// How many entries each log and index keeps: the newest ones; older ones are forgotten.
pub const RECORDS_KEPT: usize = 100_000;

/// A log that keeps its newest `capacity` entries, oldest first.
pub(crate) struct BoundedLog<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> BoundedLog<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends an entry, forgetting the oldest one when the log is full.
    pub fn push(&mut self, item: T) {
        if self.items.len() >= self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }
}

impl<T> Default for BoundedLog<T> {
    fn default() -> Self {
        Self::with_capacity(RECORDS_KEPT)
    }
}

/// A map from string keys that keeps the `capacity` keys inserted last.
pub(crate) struct BoundedIndex<V> {
    map: HashMap<String, V>,
    /// Keys in insertion order, for forgetting the oldest.
    order: VecDeque<String>,
    capacity: usize,
}

impl<V> BoundedIndex<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts or replaces; a replaced key keeps its place in the order.
    pub fn insert(&mut self, key: String, value: V) {
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = value;
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.map.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }
}

impl<V> Default for BoundedIndex<V> {
    fn default() -> Self {
        Self::with_capacity(RECORDS_KEPT)
    }
}

pub(crate) fn unix_millis_of(time: &SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Serializes a time as Unix milliseconds, the way every `*_ms` field of the admin API is written.
pub(crate) fn unix_millis<S: Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(unix_millis_of(time))
}

pub(crate) fn optional_unix_millis<S: Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_u64(unix_millis_of(time)),
        None => serializer.serialize_none(),
    }
}

pub(crate) fn millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_forgets_its_oldest_entries() {
        let mut log = BoundedLog::with_capacity(3);
        for n in 0..5 {
            log.push(n);
        }
        assert_eq!(log.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn a_full_index_forgets_the_key_inserted_first() {
        let mut index = BoundedIndex::with_capacity(2);
        index.insert("a".into(), 1);
        index.insert("b".into(), 2);
        index.insert("a".into(), 10);
        index.insert("c".into(), 3);
        assert_eq!(index.get("a"), None);
        assert_eq!(index.get("b"), Some(&2));
        assert_eq!(index.get("c"), Some(&3));
    }
}
