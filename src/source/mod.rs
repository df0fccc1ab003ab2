//! Owns the Kafka input side: a consumer-group member that reads one topic in micro-batches, decodes
//! each message (or dead-letters it with the reason), hands the batch to a [`Sink`], and only then
//! stores the offsets (at-least-once). Composed of small steps, as in arroyo:
//!
//! - [`context`]: the consumer context; on partition revoke it commits what is stored and tells
//!   the loop which partitions left, so their unwritten messages are released, not written late;
//! - [`batch`]: the pending batch (decoded records, rejects, per-partition offsets);
//! - [`consume`]: the loop itself: fill until `max_batch` or `max_wait`, flush, store, repeat;
//!   on shutdown flush, commit synchronously and leave the group.
//!
//! Backpressure is the loop's structure: it does not read the next message while a flush (and its
//! retries) is in progress.

mod batch;
mod consume;
mod context;

pub use batch::Record;
pub use consume::{run, SourceSettings};

use std::future::Future;

/// A failed downstream write.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (a store or broker unreachable): the batch is retried with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help: the source stops with this error.
    #[error("fatal: {0}")]
    Fatal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("downstream write failed on {topic}: {source}")]
    Sink { topic: String, source: SinkError },
}

/// Receives decoded batches. `write` returns `Ok` only once the batch is durable downstream.
pub trait Sink<T>: Send {
    fn write(
        &mut self,
        topic: &str,
        records: &[Record<T>],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}
