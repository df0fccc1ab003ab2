//! Owns the numbers the pipelines report. Each [`Event`] is emitted once, through [`Stats::emit`],
//! which updates both the `metrics` facade (for whatever recorder the binary installs) and an
//! in-process snapshot that `demo` and tests read.
//!
//! Metric names: `learn_events_received_total{topic}`, `learn_actions_applied_total`,
//! `learn_actions_replayed_total`, `learn_items_embedded_total`, `learn_dead_letters_total{topic,reason}`,
//! `learn_sink_retries_total{topic}`, `learn_pending_dropped_on_revoke_total{topic}`,
//! `learn_encoder_batch_seconds`, `learn_encoder_batch_size`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::schemas::RejectReason;

/// Something worth counting happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Messages read from a topic (valid or not).
    Received { topic: &'a str, count: u64 },
    /// Actions written to histories; `replayed` were already applied before (watermark).
    ActionsApplied { applied: u64, replayed: u64 },
    /// A forward pass of the frozen encoder.
    ItemsEmbedded { count: u64, seconds: f64 },
    /// One event sent to the dead-letter topic.
    DeadLettered {
        topic: &'a str,
        reason: RejectReason,
    },
    /// A downstream write failed transiently and is being retried.
    SinkRetry { topic: &'a str },
    /// Unwritten messages of revoked partitions were released to their next owner.
    PendingDroppedOnRevoke { topic: &'a str, count: u64 },
}

/// Totals since the process started.
#[derive(Default)]
pub struct Stats {
    received: AtomicU64,
    actions_applied: AtomicU64,
    actions_replayed: AtomicU64,
    items_embedded: AtomicU64,
    sink_retries: AtomicU64,
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
            Event::ActionsApplied { applied, replayed } => {
                self.actions_applied.fetch_add(applied, Ordering::Relaxed);
                self.actions_replayed.fetch_add(replayed, Ordering::Relaxed);
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
            Event::SinkRetry { topic } => {
                self.sink_retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("learn_sink_retries_total", "topic" => topic.to_string())
                    .increment(1);
            }
            Event::PendingDroppedOnRevoke { topic, count } => {
                metrics::counter!("learn_pending_dropped_on_revoke_total", "topic" => topic.to_string())
                    .increment(count);
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
            dead_letters: self
                .dead_letters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
