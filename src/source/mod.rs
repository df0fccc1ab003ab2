//! Owns the Kafka input side: a consumer-group member that reads one topic in micro-batches, decodes
//! each message (or dead-letters it with the reason), hands the batch to a [`Sink`], and only then
//! stores the offsets (at-least-once). Composed of small steps, as in arroyo:
//!
//! - [`context`]: the consumer context; on revoke it commits what is stored and tells the loop
//!   which partitions left, so their unwritten messages are released before the next message is
//!   taken; on assign it starts each partition right after the sink's watermark, so writes the
//!   store lost after Kafka committed them are read again;
//! - [`batch`]: the pending batch (decoded records, rejects, per-partition offsets);
//! - [`consume`]: the loop itself: fill until `max_batch` or `max_wait` (then take what is already queued), flush, store, repeat;
//!   on shutdown flush, commit synchronously and leave the group.
//!
//! Backpressure is the loop's structure: while a flush retries, the assignment is paused and the
//! consumer is still polled (rebalances, statistics, group membership), so an outage downstream
//! neither evicts the member nor freezes the lag metrics; what arrives meanwhile waits as the next
//! batch.

mod batch;
mod consume;
mod context;

pub use batch::Record;
pub use consume::{run, SourceSettings};

use std::collections::BTreeMap;
use std::future::Future;

use crate::schemas::RejectReason;

/// The error a sink's dependency gave.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failed downstream write: what failed (`during`) and the dependency's own error, kept as the
/// source.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (a store or broker unreachable): the batch is retried with backoff.
    #[error("transient: {during}: {source}")]
    Transient {
        during: &'static str,
        #[source]
        source: Cause,
    },
    /// Retrying cannot help: the source stops with this error.
    #[error("fatal: {during}: {source}")]
    Fatal {
        during: &'static str,
        #[source]
        source: Cause,
    },
}

impl SinkError {
    pub fn transient(during: &'static str, source: impl Into<Cause>) -> Self {
        Self::Transient {
            during,
            source: source.into(),
        }
    }

    pub fn fatal(during: &'static str, source: impl Into<Cause>) -> Self {
        Self::Fatal {
            during,
            source: source.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("downstream write failed on {topic}: {source}")]
    Sink { topic: String, source: SinkError },
}

/// Reads, synchronously, the sink's watermarks of one topic: partition → highest offset it holds
/// durably. It runs inside the consumer's rebalance callback, where each new assignment resumes
/// right after it.
pub type WatermarkReader = Box<dyn Fn() -> Result<BTreeMap<i32, i64>, String> + Send + Sync>;

/// A record the sink refused for good: it goes to the dead-letter topic and the stream moves on.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Index into the written records.
    pub index: usize,
    pub reason: RejectReason,
    pub detail: String,
}

/// Receives decoded batches.
pub trait Sink<T>: Send {
    /// Writes `records`; `read_up_to` is, per partition, the highest offset this batch read
    /// (records, or messages already dead-lettered): the sink's watermark may move there. Returns
    /// `Ok` only once the batch is durable downstream, with the records it refused for good.
    fn write(
        &mut self,
        topic: &str,
        records: &[Record<T>],
        read_up_to: &BTreeMap<i32, i64>,
    ) -> impl Future<Output = Result<Vec<Refusal>, SinkError>> + Send;

    /// The reader of this sink's watermarks of `topic`.
    fn watermarks(&self, topic: &str) -> WatermarkReader;
}
