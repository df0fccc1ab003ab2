//! Owns the numbers the pipelines report. Each [`Event`] is emitted once, through [`Stats::emit`]
//! (or [`Event::record`] where no snapshot is kept), which updates the `metrics` facade (for
//! whatever recorder the binary installs), writes the event's log line, and keeps the in-process
//! snapshot that `demo`, `/v1/status` and tests read — vector's `internal_events` style.
//!
//! Metric names (each written by one [`Event`] variant in `event.rs`):
//! `learn_events_received_total{topic}`, `learn_actions_applied_total`,
//! `learn_actions_replayed_total`, `learn_actions_duplicate_total`, `learn_items_embedded_total`,
//! `learn_encoder_cache_hits_total`, `learn_dead_letters_total{topic,reason}`,
//! `learn_dead_letters_undeliverable_total{topic}`, `learn_sink_retries_total{topic}`,
//! `learn_pending_dropped_on_revoke_total{topic}`, `learn_encoder_batch_seconds`,
//! `learn_encoder_batch_size`, `learn_freshness_seconds` (upload produced → aligned embedding
//! written), `learn_train_steps_total`, `learn_train_loss`, `learn_train_step_seconds`,
//! `learn_train_batch_users`, `learn_checkpoints_total`, `learn_checkpoint_seconds`,
//! `learn_checkpoint_version`, `learn_checkpoint_age_seconds`, `learn_model_version`, `learn_model_refused_version` (a published version that does not fit, 0 when none),
//! `learn_catalogue_items`, `learn_pending_train_users`, `learn_leader` (1 while this process
//! holds the trainer lock), `learn_freshness_stage_seconds{stage}` (where the milliseconds go), `learn_embed_batch_limit`,
//! `learn_train_batch_limit`, `learn_trainer_errors_total{stage}`; and `learn_consumer_lag{topic,partition}` from librdkafka
//! statistics ([`LagBoard`]).
//!
//! [`prometheus`] installs the Prometheus recorder that `/metrics` renders.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

mod event;
pub mod exposition;
mod lag;

pub use event::{zero_counters, Event, Stage, TrainerStage};
pub use lag::LagBoard;

/// Totals since the process started.
#[derive(Default)]
pub struct Stats {
    received: AtomicU64,
    actions_applied: AtomicU64,
    actions_replayed: AtomicU64,
    items_embedded: AtomicU64,
    sink_retries: AtomicU64,
    train_steps: AtomicU64,
    train_pairs: AtomicU64,
    train_actions: AtomicU64,
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
    /// (anchor, positive) pairs trained on.
    pub train_pairs: u64,
    /// Ingested actions trained on (every fresh action of a taken user, up to `history.cap`).
    pub train_actions: u64,
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
    /// Counts `event` in the snapshot, then records it (metrics facade and its log line).
    pub fn emit(&self, event: Event<'_>) {
        match event {
            Event::Received { count, .. } => {
                self.received.fetch_add(count, Ordering::Relaxed);
            }
            Event::ActionsApplied {
                applied,
                replayed,
                duplicates,
            } => {
                self.actions_applied.fetch_add(applied, Ordering::Relaxed);
                self.actions_replayed
                    .fetch_add(replayed + duplicates, Ordering::Relaxed);
            }
            Event::ItemsEmbedded { count, .. } => {
                self.items_embedded.fetch_add(count, Ordering::Relaxed);
            }
            Event::DeadLettered { reason, .. } => {
                let mut by_reason = self.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
                *by_reason.entry(reason.as_str()).or_default() += 1;
            }
            Event::SinkRetry { .. } => {
                self.sink_retries.fetch_add(1, Ordering::Relaxed);
            }
            Event::TrainStep {
                loss,
                pairs,
                actions,
                ..
            } => {
                self.train_steps.fetch_add(1, Ordering::Relaxed);
                self.train_pairs.fetch_add(pairs as u64, Ordering::Relaxed);
                self.train_actions.fetch_add(actions, Ordering::Relaxed);
                self.train_loss.store(loss.to_bits(), Ordering::Relaxed);
            }
            _ => {}
        }
        event.record();
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.received.load(Ordering::Relaxed),
            actions_applied: self.actions_applied.load(Ordering::Relaxed),
            actions_replayed: self.actions_replayed.load(Ordering::Relaxed),
            items_embedded: self.items_embedded.load(Ordering::Relaxed),
            sink_retries: self.sink_retries.load(Ordering::Relaxed),
            train_steps: self.train_steps.load(Ordering::Relaxed),
            train_pairs: self.train_pairs.load(Ordering::Relaxed),
            train_actions: self.train_actions.load(Ordering::Relaxed),
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

/// Bucket bounds (seconds) of the freshness histograms: fine around the 60 ms objective.
pub const FRESHNESS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25,
    0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
];

/// The process-wide Prometheus recorder (installed on first use) whose handle renders `/metrics`.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Freshness as bucketed histograms (not summaries): Prometheus aggregates them across
        // processes and computes SLO burn rates from the bucket at the target (60 ms).
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Prefix("learn_freshness".into()), FRESHNESS_BUCKETS)
            .expect("freshness buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed: /metrics shows only what it records"
            );
        }
        handle
    })
}
