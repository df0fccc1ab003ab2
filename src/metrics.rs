//! Owns the numbers the pipelines report. Each [`Event`] is emitted once, through [`Stats::emit`],
//! which updates both the `metrics` facade (for whatever recorder the binary installs) and an
//! in-process snapshot that `demo` and tests read.
//!
//! Metric names: `learn_events_received_total{topic}`, `learn_actions_applied_total`,
//! `learn_actions_replayed_total`, `learn_items_embedded_total`, `learn_dead_letters_total{topic,reason}`,
//! `learn_sink_retries_total{topic}`, `learn_pending_dropped_on_revoke_total{topic}`,
//! `learn_encoder_batch_seconds`, `learn_encoder_batch_size`, `learn_freshness_seconds` (upload
//! produced → aligned embedding written), `learn_train_steps_total`, `learn_train_loss`,
//! `learn_train_step_seconds`, `learn_train_batch_users`, `learn_checkpoints_total`,
//! `learn_checkpoint_seconds`, `learn_model_version`, `learn_consumer_lag{topic,partition}` (from
//! librdkafka statistics, see [`LagBoard`]). The encoder counts its own cache hits,
//! `learn_encoder_cache_hits_total` (texts served without a forward pass).
//!
//! [`prometheus`] installs the Prometheus recorder that `/metrics` renders.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::schemas::RejectReason;

/// Something worth counting happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Messages read from a topic (valid or not).
    Received { topic: &'a str, count: u64 },
    /// Actions written to histories; `replayed` were already applied before (watermark),
    /// `duplicates` were resends of a recent `event_id`.
    ActionsApplied {
        applied: u64,
        replayed: u64,
        duplicates: u64,
    },
    /// A forward pass of the frozen encoder.
    ItemsEmbedded { count: u64, seconds: f64 },
    /// One event sent to the dead-letter topic.
    DeadLettered {
        topic: &'a str,
        reason: RejectReason,
    },
    /// A dead letter the broker refused even without its payload copy: dropped, so that the
    /// partition moves on (alert on it: the event is only in the logs).
    DeadLetterUndeliverable { topic: &'a str },
    /// A downstream write failed transiently and is being retried.
    SinkRetry { topic: &'a str },
    /// Unwritten messages of revoked partitions were released to their next owner.
    PendingDroppedOnRevoke { topic: &'a str, count: u64 },
    /// An item's aligned embedding was written, `seconds` after its upload was produced.
    Fresh { seconds: f64 },
    /// One training step of the towers.
    TrainStep {
        loss: f64,
        seconds: f64,
        users: usize,
    },
    /// A checkpoint was written and published.
    Checkpointed { version: u64, seconds: f64 },
    /// This process serves a new model version.
    ModelServed { version: u64 },
}

/// Totals since the process started.
#[derive(Default)]
pub struct Stats {
    received: AtomicU64,
    actions_applied: AtomicU64,
    actions_replayed: AtomicU64,
    items_embedded: AtomicU64,
    sink_retries: AtomicU64,
    train_steps: AtomicU64,
    /// f64 bits of the last training loss.
    train_loss: AtomicU64,
    dead_letters: Mutex<BTreeMap<&'static str, u64>>,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub received: u64,
    pub actions_applied: u64,
    pub actions_replayed: u64,
    pub items_embedded: u64,
    pub sink_retries: u64,
    pub train_steps: u64,
    pub train_loss: Option<f64>,
    /// Dead letters by reason.
    pub dead_letters: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    pub fn dead_letter_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }

    /// Events fully handled: written downstream, skipped as replays, or dead-lettered.
    pub fn settled(&self) -> u64 {
        self.actions_applied
            + self.actions_replayed
            + self.items_embedded
            + self.dead_letter_total()
    }
}

impl Stats {
    pub fn emit(&self, event: Event<'_>) {
        match event {
            Event::Received { topic, count } => {
                self.received.fetch_add(count, Ordering::Relaxed);
                metrics::counter!("learn_events_received_total", "topic" => topic.to_string())
                    .increment(count);
            }
            Event::ActionsApplied {
                applied,
                replayed,
                duplicates,
            } => {
                self.actions_applied.fetch_add(applied, Ordering::Relaxed);
                self.actions_replayed
                    .fetch_add(replayed + duplicates, Ordering::Relaxed);
                metrics::counter!("learn_actions_duplicate_total").increment(duplicates);
                metrics::counter!("learn_actions_applied_total").increment(applied);
                metrics::counter!("learn_actions_replayed_total").increment(replayed);
            }
            Event::ItemsEmbedded { count, seconds } => {
                self.items_embedded.fetch_add(count, Ordering::Relaxed);
                metrics::counter!("learn_items_embedded_total").increment(count);
                metrics::histogram!("learn_encoder_batch_seconds").record(seconds);
                metrics::histogram!("learn_encoder_batch_size").record(count as f64);
            }
            Event::DeadLettered { topic, reason } => {
                let mut by_reason = self.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
                *by_reason.entry(reason.as_str()).or_default() += 1;
                metrics::counter!("learn_dead_letters_total", "topic" => topic.to_string(), "reason" => reason.as_str())
                    .increment(1);
            }
            Event::DeadLetterUndeliverable { topic } => {
                metrics::counter!("learn_dead_letters_undeliverable_total", "topic" => topic.to_string())
                    .increment(1);
            }
            Event::SinkRetry { topic } => {
                self.sink_retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("learn_sink_retries_total", "topic" => topic.to_string())
                    .increment(1);
            }
            Event::PendingDroppedOnRevoke { topic, count } => {
                metrics::counter!("learn_pending_dropped_on_revoke_total", "topic" => topic.to_string())
                    .increment(count);
            }
            Event::Fresh { seconds } => {
                metrics::histogram!("learn_freshness_seconds").record(seconds);
            }
            Event::TrainStep {
                loss,
                seconds,
                users,
            } => {
                self.train_steps.fetch_add(1, Ordering::Relaxed);
                self.train_loss.store(loss.to_bits(), Ordering::Relaxed);
                metrics::counter!("learn_train_steps_total").increment(1);
                metrics::gauge!("learn_train_loss").set(loss);
                metrics::histogram!("learn_train_step_seconds").record(seconds);
                metrics::histogram!("learn_train_batch_users").record(users as f64);
            }
            Event::Checkpointed { version, seconds } => {
                metrics::counter!("learn_checkpoints_total").increment(1);
                metrics::histogram!("learn_checkpoint_seconds").record(seconds);
                metrics::gauge!("learn_checkpoint_version").set(version as f64);
            }
            Event::ModelServed { version } => {
                metrics::gauge!("learn_model_version").set(version as f64);
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.received.load(Ordering::Relaxed),
            actions_applied: self.actions_applied.load(Ordering::Relaxed),
            actions_replayed: self.actions_replayed.load(Ordering::Relaxed),
            items_embedded: self.items_embedded.load(Ordering::Relaxed),
            sink_retries: self.sink_retries.load(Ordering::Relaxed),
            train_steps: self.train_steps.load(Ordering::Relaxed),
            train_loss: (self.train_steps.load(Ordering::Relaxed) > 0)
                .then(|| f64::from_bits(self.train_loss.load(Ordering::Relaxed))),
            dead_letters: self
                .dead_letters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Consumer lag per topic and partition, as the consumers' librdkafka statistics last reported it.
#[derive(Debug, Default)]
pub struct LagBoard {
    topics: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
}

impl LagBoard {
    /// Replaces `topic`'s partitions (those this process has assigned) and sets the gauges.
    pub fn report(&self, topic: &str, partitions: BTreeMap<i32, i64>) {
        for (partition, lag) in &partitions {
            metrics::gauge!("learn_consumer_lag", "topic" => topic.to_string(), "partition" => partition.to_string())
                .set(*lag as f64);
        }
        self.lock().insert(topic.to_string(), partitions);
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

/// The process-wide Prometheus recorder (installed on first use) whose handle renders `/metrics`.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed: /metrics shows only what it records"
            );
        }
        handle
    })
}
