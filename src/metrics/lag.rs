//! Consumer lag per topic and partition, as the consumers' librdkafka statistics report it.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Consumer lag per topic and partition, as the consumers' librdkafka statistics last reported it.
#[derive(Debug, Default)]
pub struct LagBoard {
    topics: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
}

impl LagBoard {
    /// Replaces `topic`'s partitions (those this process has assigned) and sets the gauges; a
    /// partition no longer assigned here reads 0, so its old lag does not stay on this instance
    /// (the member-stalled alert reads lag per instance).
    pub fn report(&self, topic: &str, partitions: BTreeMap<i32, i64>) {
        let gauge = |partition: i32, lag: i64| {
            metrics::gauge!("learn_consumer_lag", "topic" => topic.to_string(), "partition" => partition.to_string())
                .set(lag as f64);
        };
        for (partition, lag) in &partitions {
            gauge(*partition, *lag);
        }
        let mut topics = self.lock();
        if let Some(before) = topics.get(topic) {
            for partition in before.keys().filter(|p| !partitions.contains_key(p)) {
                gauge(*partition, 0);
            }
        }
        topics.insert(topic.to_string(), partitions);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<i32, i64>>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Topic → partition → messages behind.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<i32, i64>> {
        self.lock().clone()
    }

    /// Messages behind on `topic`, summed over this process's partitions (None before any report).
    pub fn total(&self, topic: &str) -> Option<i64> {
        self.lock().get(topic).map(|p| p.values().sum())
    }
}
