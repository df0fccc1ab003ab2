//! The consume → batch → write → store loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::{sleep, sleep_until};

use super::batch::Batch;
use super::context::SourceContext;
use super::{Sink, SinkError, SourceError};
use crate::config::KafkaConfig;
use crate::metrics::{Event, LagBoard, Stats};
use crate::publish::DeadLetterProducer;
use crate::schemas::{Decode, Limits};
use crate::shutdown::Shutdown;

/// What one source reads and how it batches.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub topic: String,
    pub group_id: String,
    /// Largest batch; shared with the lag controller, which may move it while the loop runs.
    pub max_batch: Arc<AtomicUsize>,
    pub max_wait: Duration,
    pub limits: Limits,
    /// Where the consumer's statistics report lag.
    pub lag: Arc<LagBoard>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

struct Loop<T, S> {
    consumer: StreamConsumer<SourceContext>,
    settings: SourceSettings,
    sink: S,
    dead_letters: DeadLetterProducer,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    batch: Batch<T>,
}

/// Consumes `settings.topic` until `shutdown`, writing batches to `sink`.
/// Returns an error only when retrying cannot help (fatal sink error, consumer creation failed).
pub async fn run<T: Decode, S: Sink<T>>(
    kafka: &KafkaConfig,
    settings: SourceSettings,
    sink: S,
    dead_letters: DeadLetterProducer,
    stats: Arc<Stats>,
    shutdown: Shutdown,
) -> Result<(), SourceError> {
    let consumer: StreamConsumer<SourceContext> =
        crate::kafka::consumer_config(kafka, &settings.group_id)
            .create_with_context(SourceContext::new(settings.lag.clone()))?;
    consumer.subscribe(&[&settings.topic])?;
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "consuming");
    let mut state = Loop {
        consumer,
        settings,
        sink,
        dead_letters,
        stats,
        shutdown,
        batch: Batch::new(),
    };
    let result = state.consume().await;
    state.close().await;
    result
}

impl<T: Decode, S: Sink<T>> Loop<T, S> {
    async fn consume(&mut self) -> Result<(), SourceError> {
        loop {
            let deadline = self.batch.started.map(|t| t + self.settings.max_wait);
            tokio::select! {
                biased;
                _ = self.shutdown.recv() => return Ok(()),
                _ = async { sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                    self.flush().await?;
                }
                message = self.consumer.recv() => {
                    match message {
                        Ok(message) => {
                            self.stats.emit(Event::Received { topic: &self.settings.topic, count: 1 });
                            self.batch.push(&message, &self.settings.limits);
                        }
                        Err(err) => tracing::warn!(%err, topic = %self.settings.topic, "consumer error"),
                    }
                    self.release_revoked();
                    if self.batch.len() >= self.settings.max_batch.load(Ordering::Relaxed) {
                        self.flush().await?;
                    }
                }
            }
        }
    }

    fn release_revoked(&mut self) {
        let revoked = self.consumer.context().take_revoked();
        if revoked.is_empty() {
            return;
        }
        let count = self.batch.release(&revoked) as u64;
        if count > 0 {
            self.stats.emit(Event::PendingDroppedOnRevoke {
                topic: &self.settings.topic,
                count,
            });
        }
    }

    /// Dead letters, then the sink, then the offsets. Transient failures are retried with backoff
    /// until they succeed or shutdown is requested; an interrupted batch's offsets are not stored.
    async fn flush(&mut self) -> Result<(), SourceError> {
        if self.batch.is_empty() {
            self.batch.clear();
            return Ok(());
        }
        let topic = self.settings.topic.clone();
        let mut backoff = FIRST_BACKOFF;
        let mut letters_sent = 0;
        loop {
            let attempt = async {
                while letters_sent < self.batch.rejects.len() {
                    let letter = &self.batch.rejects[letters_sent];
                    self.dead_letters
                        .send(letter)
                        .await
                        .map_err(|e| SinkError::Transient(format!("dead-letter topic: {e}")))?;
                    self.stats.emit(Event::DeadLettered {
                        topic: &topic,
                        reason: letter.reason,
                    });
                    letters_sent += 1;
                }
                if self.batch.records.is_empty() {
                    return Ok(());
                }
                self.sink.write(&topic, &self.batch.records).await
            };
            match attempt.await {
                Ok(()) => break,
                Err(SinkError::Fatal(reason)) => {
                    return Err(SourceError::Sink {
                        topic,
                        source: SinkError::Fatal(reason),
                    });
                }
                Err(SinkError::Transient(reason)) => {
                    self.stats.emit(Event::SinkRetry { topic: &topic });
                    tracing::warn!(%topic, %reason, ?backoff, "write failed, retrying");
                    tokio::select! {
                        _ = self.shutdown.recv() => {
                            tracing::warn!(%topic, "shutdown during retries: batch left uncommitted, it will be redelivered");
                            self.batch.clear();
                            return Ok(());
                        }
                        _ = sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.store_offsets();
        self.batch.clear();
        Ok(())
    }

    fn store_offsets(&self) {
        let mut offsets = TopicPartitionList::new();
        for (&partition, &offset) in &self.batch.highest {
            if let Err(err) = offsets.add_partition_offset(
                &self.settings.topic,
                partition,
                Offset::Offset(offset + 1),
            ) {
                tracing::error!(%err, partition, "cannot build offset list");
            }
        }
        if let Err(err) = self.consumer.store_offsets(&offsets) {
            // Only possible for a partition revoked since: its next owner re-reads, the store dedupes.
            tracing::warn!(%err, topic = %self.settings.topic, "cannot store offsets");
        }
    }

    /// Final flush, synchronous commit, leave the group.
    async fn close(&mut self) {
        if !self.shutdown.is_shutdown() {
            // A fatal error: do not write anything more, just leave.
            self.batch.clear();
        }
        if let Err(err) = self.flush().await {
            tracing::error!(%err, "final flush failed");
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(err) => tracing::warn!(%err, topic = %self.settings.topic, "final commit failed"),
        }
        self.consumer.unsubscribe();
        tracing::info!(topic = %self.settings.topic, "consumer closed");
    }
}
