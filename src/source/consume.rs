//! The consume → batch → write → store loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::sleep_until;

use super::batch::Batch;
use super::context::SourceContext;
use super::{Refusal, Sink, SinkError, SourceError};
use crate::config::KafkaConfig;
use crate::metrics::{Event, LagBoard, Stats};
use crate::publish::{DeadLetterProducer, Delivery};
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
    /// The next batch: what arrived while a flush was writing (read-ahead) or retrying with the
    /// assignment paused.
    next: Batch<T>,
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
    let context = SourceContext::new(settings.lag.clone(), sink.watermarks(&settings.topic));
    let consumer: StreamConsumer<SourceContext> =
        crate::kafka::consumer_config(kafka, &settings.group_id).create_with_context(context)?;
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
        next: Batch::new(),
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
                    self.take_ready();
                    self.flush().await?;
                }
                message = self.consumer.recv() => {
                    let batches = &mut [&mut self.batch, &mut self.next];
                    Self::receive(&self.consumer, batches, &self.stats, &self.settings, message, 0);
                    if self.batch.len() >= self.settings.max_batch.load(Ordering::Relaxed) {
                        self.flush().await?;
                    }
                }
            }
        }
    }

    /// Adds the messages already waiting in the consumer's queue (up to `max_batch`) without
    /// waiting for more: a batch whose `max_wait` has passed takes everything that arrived
    /// meanwhile, so even `max_wait = 0` batches a burst while a lone message goes at once.
    fn take_ready(&mut self) {
        use futures::FutureExt;
        while self.batch.len() < self.settings.max_batch.load(Ordering::Relaxed) {
            let Some(message) = self.consumer.recv().now_or_never() else {
                return;
            };
            let batches = &mut [&mut self.batch, &mut self.next];
            Self::receive(
                &self.consumer,
                batches,
                &self.stats,
                &self.settings,
                message,
                0,
            );
        }
    }

    /// Takes what one `recv()` returned into `batches[into]` (0: the batch being filled, 1: the
    /// next one, while a flush retries). A revoke that this `recv()` ran came before its message,
    /// which belongs to the new assignment: the revoked partitions are released from both batches
    /// first, then the message is kept. Fields, not `self`: the message still borrows the consumer.
    fn receive(
        consumer: &StreamConsumer<SourceContext>,
        batches: &mut [&mut Batch<T>],
        stats: &Stats,
        settings: &SourceSettings,
        message: KafkaResult<BorrowedMessage<'_>>,
        into: usize,
    ) -> Vec<i32> {
        let topic = settings.topic.as_str();
        let revoked = consumer.context().take_revoked();
        if !revoked.is_empty() {
            let count: usize = batches.iter_mut().map(|b| b.release(&revoked)).sum();
            if count > 0 {
                stats.emit(Event::PendingDroppedOnRevoke {
                    topic,
                    count: count as u64,
                });
            }
        }
        match message {
            Ok(message) => batches[into].push(&message, &settings.limits),
            Err(err) => tracing::warn!(%err, %topic, "consumer error"),
        }
        revoked
    }

    /// Dead letters, then the sink, then the dead letters of what the sink refused, then the
    /// offsets. Transient failures are retried with backoff until they succeed or shutdown is
    /// requested (an interrupted batch's offsets are not stored); meanwhile the assignment is
    /// paused and the consumer polled.
    async fn flush(&mut self) -> Result<(), SourceError> {
        let topic = self.settings.topic.clone();
        let count = std::mem::take(&mut self.batch.uncounted);
        if count > 0 {
            self.stats.emit(Event::Received {
                topic: &topic,
                count,
            });
        }
        let mut backoff = FIRST_BACKOFF;
        let mut written = false;
        let mut paused = false;
        let outcome = loop {
            if self.batch.is_empty() {
                break Ok(true);
            }
            match self.attempt(&topic, &mut written).await {
                Ok(()) => break Ok(true),
                Err(err @ SinkError::Fatal { .. }) => {
                    break Err(SourceError::Sink {
                        topic: topic.clone(),
                        source: err,
                    })
                }
                Err(err @ SinkError::Transient { .. }) => {
                    let reason = err.to_string();
                    self.stats.emit(Event::SinkRetry {
                        topic: &topic,
                        reason: &reason,
                        backoff,
                    });
                    paused |= self.pause();
                    if !self.poll_for(backoff).await {
                        tracing::warn!(%topic, "shutdown during retries: batch left uncommitted, it will be redelivered");
                        break Ok(false);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if paused {
            self.resume();
        }
        if outcome? {
            self.store_offsets();
        } else {
            // Abandoned: what arrived behind it must not be written either (its watermark would
            // pass the unwritten batch). Both are read again after the restart.
            self.next.clear();
        }
        self.batch = std::mem::replace(&mut self.next, Batch::new());
        Ok(())
    }

    /// One try of the batch; `written` remembers that the sink write succeeded already.
    async fn attempt(&mut self, topic: &str, written: &mut bool) -> Result<(), SinkError> {
        if !*written {
            self.send_dead_letters(topic).await?;
            let refusals = self.write_and_read_ahead(topic).await?;
            self.batch.refuse(topic, refusals);
            *written = true;
        }
        self.send_dead_letters(topic).await
    }

    /// The sink write, while the consumer keeps reading (and decoding) into the next batch, up to
    /// `max_batch`: the broker side and the sink work at the same time, one batch in flight.
    /// A partition revoked meanwhile is released from the next batch; the batch in flight is still
    /// written — a new owner's copy of those offsets is then a replay the sink skips (the
    /// watermark moves atomically with each write) — but its offsets are not stored here.
    async fn write_and_read_ahead(&mut self, topic: &str) -> Result<Vec<Refusal>, SinkError> {
        let Self {
            consumer,
            settings,
            sink,
            stats,
            batch,
            next,
            ..
        } = self;
        let mut revoked = Vec::new();
        let written = {
            let write = sink.write(topic, &batch.records, &batch.highest);
            tokio::pin!(write);
            loop {
                let room = next.len() < settings.max_batch.load(Ordering::Relaxed);
                tokio::select! {
                    biased;
                    result = &mut write => break result,
                    message = consumer.recv(), if room => {
                        let gone = Self::receive(consumer, &mut [&mut *next], stats, settings, message, 0);
                        revoked.extend(gone);
                    }
                }
            }
        };
        batch.highest.retain(|p, _| !revoked.contains(p));
        written
    }

    /// Sends the batch's dead letters, front first, each removed once delivered (or dropped as
    /// undeliverable: a dead letter never stalls a partition, see [`DeadLetterProducer::deliver`]).
    async fn send_dead_letters(&mut self, topic: &str) -> Result<(), SinkError> {
        while let Some(letter) = self.batch.rejects.front_mut() {
            let delivery = self
                .dead_letters
                .deliver(letter)
                .await
                .map_err(|e| SinkError::transient("dead-letter topic", e))?;
            match delivery {
                Delivery::Sent => self.stats.emit(Event::DeadLettered {
                    topic,
                    reason: letter.reason,
                }),
                Delivery::Dropped => self.stats.emit(Event::DeadLetterUndeliverable { topic }),
            }
            self.batch.rejects.pop_front();
        }
        Ok(())
    }

    /// Pauses the whole assignment (fetching stops; polling goes on). True when paused.
    fn pause(&self) -> bool {
        match self.consumer.assignment() {
            Ok(assignment) => match self.consumer.pause(&assignment) {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(%err, "cannot pause the assignment");
                    false
                }
            },
            Err(err) => {
                tracing::warn!(%err, "cannot read the assignment");
                false
            }
        }
    }

    fn resume(&self) {
        let resumed = self
            .consumer
            .assignment()
            .and_then(|assignment| self.consumer.resume(&assignment));
        if let Err(err) = resumed {
            tracing::warn!(%err, "cannot resume the assignment");
        }
    }

    /// Polls the consumer for `duration` (rebalance callbacks, statistics, membership); messages
    /// that still arrive go to the next batch. False when shutdown was requested.
    async fn poll_for(&mut self, duration: Duration) -> bool {
        let until = tokio::time::Instant::now() + duration;
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.recv() => return false,
                _ = sleep_until(until) => return true,
                message = self.consumer.recv() => {
                    let batches = &mut [&mut self.batch, &mut self.next];
                    Self::receive(&self.consumer, batches, &self.stats, &self.settings, message, 1);
                    // A partition assigned during the outage is not paused yet.
                    if self.next.len() >= self.settings.max_batch.load(Ordering::Relaxed) {
                        self.pause();
                    }
                }
            }
        }
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
            self.next.clear();
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
