//! The batch being filled: decoded records, dead letters, and the offsets to store once written.

use std::collections::{BTreeMap, VecDeque};

use rdkafka::message::{BorrowedMessage, Message};
use tokio::time::Instant;

use super::Refusal;
use crate::schemas::{now_ms, DeadLetter, Decode, Limits, Origin};

/// A decoded event and where it came from.
#[derive(Debug, Clone)]
pub struct Record<T> {
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp (producer create time), when it has one.
    pub timestamp_ms: Option<i64>,
    /// When this process read it (Unix ms), for the freshness stages.
    pub received_ms: i64,
    /// The message's key (lossy UTF-8), kept for a dead letter should the sink refuse the record.
    pub key: Option<String>,
    pub event: T,
}

pub(super) struct Batch<T> {
    pub records: Vec<Record<T>>,
    /// Dead letters not sent yet (sent from the front, each removed once acknowledged).
    pub rejects: VecDeque<DeadLetter>,
    /// Partition → highest offset read (valid or not).
    pub highest: BTreeMap<i32, i64>,
    /// When the first message of this batch arrived.
    pub started: Option<Instant>,
    /// Messages pushed and not yet counted as received (counted once per flush, not per message).
    pub uncounted: u64,
}

impl<T: Decode> Batch<T> {
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            rejects: VecDeque::new(),
            highest: BTreeMap::new(),
            started: None,
            uncounted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len() + self.rejects.len()
    }

    /// Nothing read: no records, no dead letters, no offsets to store.
    pub fn is_empty(&self) -> bool {
        self.highest.is_empty()
    }

    /// Decodes `message` into a record or a dead letter.
    pub fn push(&mut self, message: &BorrowedMessage<'_>, limits: &Limits) {
        let (partition, offset) = (message.partition(), message.offset());
        self.started.get_or_insert_with(Instant::now);
        self.uncounted += 1;
        let highest = self.highest.entry(partition).or_insert(offset);
        *highest = (*highest).max(offset);
        match T::decode_keyed(message.key(), message.payload(), limits) {
            Ok(event) => self.records.push(Record {
                partition,
                offset,
                timestamp_ms: message.timestamp().to_millis(),
                received_ms: now_ms(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                event,
            }),
            Err(rejection) => self.rejects.push_back(DeadLetter::new(
                Origin {
                    topic: message.topic(),
                    partition,
                    offset,
                    key: message.key(),
                },
                message.payload(),
                rejection.reason,
                rejection.detail,
            )),
        }
    }

    /// After a write: the records are done; those the sink refused become dead letters (their
    /// payload: the decoded event as JSON).
    pub fn refuse(&mut self, topic: &str, refusals: Vec<Refusal>) {
        for refusal in refusals {
            let Some(record) = self.records.get(refusal.index) else {
                tracing::error!(
                    index = refusal.index,
                    "refusal of a record not in the batch"
                );
                continue;
            };
            let payload = serde_json::to_vec(&record.event).ok();
            self.rejects.push_back(DeadLetter::new(
                Origin {
                    topic,
                    partition: record.partition,
                    offset: record.offset,
                    key: record.key.as_deref().map(str::as_bytes),
                },
                payload.as_deref(),
                refusal.reason,
                refusal.detail,
            ));
        }
        self.records.clear();
    }

    /// Forgets everything read from `partitions` (they were revoked); returns how many messages.
    pub fn release(&mut self, partitions: &[i32]) -> usize {
        let before = self.len();
        self.records.retain(|r| !partitions.contains(&r.partition));
        self.rejects.retain(|r| !partitions.contains(&r.partition));
        self.highest.retain(|p, _| !partitions.contains(p));
        if self.is_empty() {
            self.started = None;
        }
        before - self.len()
    }

    pub fn clear(&mut self) {
        *self = Self::new();
    }
}
