//! The batch being filled: decoded records, dead letters, and the offsets to store once written.

use std::collections::BTreeMap;

use rdkafka::message::{BorrowedMessage, Message};
use tokio::time::Instant;

use crate::schemas::{now_ms, DeadLetter, Decode, Limits};

/// A decoded event and where it came from.
#[derive(Debug, Clone)]
pub struct Record<T> {
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp (producer create time), when it has one.
    pub timestamp_ms: Option<i64>,
    pub event: T,
}

pub(super) struct Batch<T> {
    pub records: Vec<Record<T>>,
    pub rejects: Vec<DeadLetter>,
    /// Partition → highest offset read (valid or not).
    pub highest: BTreeMap<i32, i64>,
    /// When the first message of this batch arrived.
    pub started: Option<Instant>,
}

impl<T: Decode> Batch<T> {
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            rejects: Vec::new(),
            highest: BTreeMap::new(),
            started: None,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len() + self.rejects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes `message` into a record or a dead letter.
    pub fn push(&mut self, message: &BorrowedMessage<'_>, limits: &Limits) {
        let (partition, offset) = (message.partition(), message.offset());
        self.started.get_or_insert_with(Instant::now);
        let highest = self.highest.entry(partition).or_insert(offset);
        *highest = (*highest).max(offset);
        match T::decode(message.payload(), limits) {
            Ok(event) => self.records.push(Record {
                partition,
                offset,
                timestamp_ms: message.timestamp().to_millis(),
                event,
            }),
            Err(rejection) => {
                let payload = message.payload().unwrap_or_default();
                let text = std::str::from_utf8(payload).ok();
                self.rejects.push(DeadLetter {
                    source_topic: message.topic().to_string(),
                    partition,
                    offset,
                    reason: rejection.reason,
                    detail: rejection.detail,
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload_text: text.map(str::to_string),
                    payload_base64: match text {
                        Some(_) => None,
                        None => Some(base64::Engine::encode(
                            &base64::engine::general_purpose::STANDARD,
                            payload,
                        )),
                    },
                    ts_ms: now_ms(),
                })
            }
        }
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
