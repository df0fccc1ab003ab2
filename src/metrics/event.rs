//! The typed internal events: each knows its metrics and its log line, so a call site reports
//! something once and both appear (vector's `internal_events`). High-rate events log at `trace`.

use std::time::Duration;

use crate::schemas::RejectReason;

/// Something worth counting happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Messages read from a topic (valid or not).
    Received { topic: &'a str, count: u64 },
    /// Actions written to histories; `replayed` were already applied before (watermark),
    /// `duplicates` were resends of one of the user's recent entries.
    ActionsApplied {
        applied: u64,
        replayed: u64,
        duplicates: u64,
    },
    /// A forward pass of the frozen encoder.
    ItemsEmbedded { count: u64, seconds: f64 },
    /// Texts the encoder served from its cache, without a forward pass.
    EncoderCacheHits { count: u64 },
    /// One event sent to the dead-letter topic.
    DeadLettered {
        topic: &'a str,
        reason: RejectReason,
    },
    /// A dead letter the broker refused even without its payload copy: dropped, so that the
    /// partition moves on (alert on it: the event is only in the logs).
    DeadLetterUndeliverable { topic: &'a str },
    /// A downstream write failed transiently and is retried after `backoff`.
    SinkRetry {
        topic: &'a str,
        reason: &'a str,
        backoff: Duration,
    },
    /// Unwritten messages of revoked partitions were released to their next owner.
    PendingDroppedOnRevoke { topic: &'a str, count: u64 },
    /// An item's aligned embedding was written, `seconds` after its upload was produced.
    Fresh { seconds: f64 },
    /// One stage of an upload's way to its aligned embedding took `seconds` ([`Stage`]).
    FreshnessStage { stage: Stage, seconds: f64 },
    /// One training step of the towers: `pairs` (anchor, positive) pairs over `users` users,
    /// covering `actions` of the actions ingested since those users were last trained on.
    TrainStep {
        loss: f64,
        seconds: f64,
        users: usize,
        pairs: usize,
        actions: u64,
    },
    /// A training round failed (`stage`: leadership, step or checkpoint); the trainer stepped
    /// down and retries after `backoff` — the rest of the process goes on.
    TrainerSetback {
        stage: TrainerStage,
        error: &'a str,
        backoff: Duration,
    },
    /// A checkpoint was written and published.
    Checkpointed { version: u64, seconds: f64 },
    /// This process serves a new model version.
    ModelServed { version: u64 },
    /// The published model (or a local checkpoint) does not fit this configuration: it is not
    /// served, and nothing newer of its lineage will be.
    ModelRefused { version: u64, reason: &'a str },
    /// Lag control set the micro-batch limits.
    BatchLimits { embed: usize, train: usize },
    /// The service's state at a `/metrics` scrape.
    ServiceState {
        checkpoint_age_seconds: Option<f64>,
        model_version: u64,
        catalogue_items: usize,
        pending_train_users: usize,
        /// Whether this process holds the trainer lock.
        leading: bool,
        /// The trainer: age of the newest action its last step trained on while users wait
        /// (0 when none wait, and on processes that do not train).
        train_lag_seconds: f64,
    },
}

/// Where a training round failed: the `stage` label of `learn_trainer_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainerStage {
    Leadership,
    Step,
    Checkpoint,
}

impl TrainerStage {
    pub const ALL: [TrainerStage; 3] = [
        TrainerStage::Leadership,
        TrainerStage::Step,
        TrainerStage::Checkpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrainerStage::Leadership => "leadership",
            TrainerStage::Step => "step",
            TrainerStage::Checkpoint => "checkpoint",
        }
    }
}

/// Creates every counter an alert watches at 0, for each label value known at start (source
/// `topics`, rejection reasons, trainer stages): `increase()` over a series that first appears at
/// 1 is 0, so the first dead letter or trainer error would otherwise never fire its alert.
pub fn zero_counters(topics: &[&str]) {
    for &topic in topics {
        for reason in RejectReason::ALL {
            metrics::counter!("learn_dead_letters_total", "topic" => topic.to_string(), "reason" => reason.as_str())
                .increment(0);
        }
        metrics::counter!("learn_dead_letters_undeliverable_total", "topic" => topic.to_string())
            .increment(0);
        metrics::counter!("learn_sink_retries_total", "topic" => topic.to_string()).increment(0);
        metrics::counter!("learn_events_received_total", "topic" => topic.to_string()).increment(0);
    }
    for stage in TrainerStage::ALL {
        metrics::counter!("learn_trainer_errors_total", "stage" => stage.as_str()).increment(0);
    }
    for name in [
        "learn_train_steps_total",
        "learn_train_pairs_total",
        "learn_train_actions_total",
        "learn_actions_applied_total",
        "learn_checkpoints_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::gauge!("learn_train_lag_seconds").set(0.0);
    metrics::gauge!("learn_model_refused_version").set(0.0);
}

/// Where an upload's milliseconds go, in order; together they make `learn_freshness_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Produced (the Kafka timestamp) → read by this process's consumer: the producer's linger,
    /// the broker, and the fetch wait.
    Delivery,
    /// Read → handed to the sink: waiting for the micro-batch to fill or its `max_wait_ms`.
    Batching,
    /// Handed to the sink → the encoder starts: a free blocking thread.
    Queue,
    /// The frozen encoder's forward pass over the batch.
    Encode,
    /// The item tower over the batch's new rows.
    ItemTower,
    /// Both vectors written to Redis.
    Store,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Delivery,
        Stage::Batching,
        Stage::Queue,
        Stage::Encode,
        Stage::ItemTower,
        Stage::Store,
    ];

    /// This stage took from `started` until now.
    pub fn since(self, started: std::time::Instant) -> Event<'static> {
        Event::FreshnessStage {
            stage: self,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Delivery => "delivery",
            Stage::Batching => "batching",
            Stage::Queue => "queue",
            Stage::Encode => "encode",
            Stage::ItemTower => "item_tower",
            Stage::Store => "store",
        }
    }
}

impl Event<'_> {
    /// Updates the `metrics` facade and writes the event's log line.
    pub fn record(&self) {
        match *self {
            Event::Received { topic, count } => {
                metrics::counter!("learn_events_received_total", "topic" => topic.to_string())
                    .increment(count);
                tracing::trace!(%topic, count, "received");
            }
            Event::ActionsApplied {
                applied,
                replayed,
                duplicates,
            } => {
                metrics::counter!("learn_actions_applied_total").increment(applied);
                metrics::counter!("learn_actions_replayed_total").increment(replayed);
                metrics::counter!("learn_actions_duplicate_total").increment(duplicates);
                tracing::trace!(applied, replayed, duplicates, "actions applied");
            }
            Event::ItemsEmbedded { count, seconds } => {
                metrics::counter!("learn_items_embedded_total").increment(count);
                metrics::histogram!("learn_encoder_batch_seconds").record(seconds);
                metrics::histogram!("learn_encoder_batch_size").record(count as f64);
                tracing::debug!(count, seconds, "items embedded");
            }
            Event::EncoderCacheHits { count } => {
                metrics::counter!("learn_encoder_cache_hits_total").increment(count);
                tracing::trace!(count, "encoder cache hits");
            }
            Event::DeadLettered { topic, reason } => {
                metrics::counter!("learn_dead_letters_total", "topic" => topic.to_string(), "reason" => reason.as_str())
                    .increment(1);
                tracing::warn!(%topic, reason = reason.as_str(), "event dead-lettered");
            }
            Event::DeadLetterUndeliverable { topic } => {
                // Logged with its partition and offset by `DeadLetterProducer::deliver`.
                metrics::counter!("learn_dead_letters_undeliverable_total", "topic" => topic.to_string())
                    .increment(1);
            }
            Event::SinkRetry {
                topic,
                reason,
                backoff,
            } => {
                metrics::counter!("learn_sink_retries_total", "topic" => topic.to_string())
                    .increment(1);
                tracing::warn!(%topic, %reason, ?backoff, "write failed, retrying");
            }
            Event::PendingDroppedOnRevoke { topic, count } => {
                metrics::counter!("learn_pending_dropped_on_revoke_total", "topic" => topic.to_string())
                    .increment(count);
                tracing::info!(%topic, count, "unwritten messages of revoked partitions released");
            }
            Event::Fresh { seconds } => {
                metrics::histogram!("learn_freshness_seconds").record(seconds);
                tracing::trace!(seconds, "upload to aligned embedding");
            }
            Event::FreshnessStage { stage, seconds } => {
                metrics::histogram!("learn_freshness_stage_seconds", "stage" => stage.as_str())
                    .record(seconds);
            }
            Event::TrainStep {
                loss,
                seconds,
                users,
                pairs,
                actions,
            } => {
                metrics::counter!("learn_train_steps_total").increment(1);
                metrics::counter!("learn_train_pairs_total").increment(pairs as u64);
                metrics::counter!("learn_train_actions_total").increment(actions);
                metrics::gauge!("learn_train_loss").set(loss);
                metrics::histogram!("learn_train_step_seconds").record(seconds);
                metrics::histogram!("learn_train_batch_users").record(users as f64);
                tracing::debug!(loss, seconds, users, pairs, actions, "train step");
            }
            Event::TrainerSetback {
                stage,
                error,
                backoff,
            } => {
                metrics::counter!("learn_trainer_errors_total", "stage" => stage.as_str())
                    .increment(1);
                tracing::error!(stage = stage.as_str(), %error, ?backoff, "trainer error: stepping down, retrying");
            }
            Event::Checkpointed { version, seconds } => {
                metrics::counter!("learn_checkpoints_total").increment(1);
                metrics::histogram!("learn_checkpoint_seconds").record(seconds);
                metrics::gauge!("learn_checkpoint_version").set(version as f64);
                tracing::info!(version, seconds, "checkpoint written and published");
            }
            Event::ModelServed { version } => {
                metrics::gauge!("learn_model_version").set(version as f64);
                metrics::gauge!("learn_model_refused_version").set(0.0);
                tracing::info!(version, "serving model version");
            }
            Event::ModelRefused { version, reason } => {
                metrics::gauge!("learn_model_refused_version").set(version as f64);
                tracing::error!(version, %reason, "the published model does not fit this configuration: not served; retire its lineage with `learn model reset` (docs/operations.md, \"Upgrades\")");
            }
            Event::BatchLimits { embed, train } => {
                metrics::gauge!("learn_embed_batch_limit").set(embed as f64);
                metrics::gauge!("learn_train_batch_limit").set(train as f64);
                tracing::trace!(embed, train, "batch limits");
            }
            Event::ServiceState {
                checkpoint_age_seconds,
                model_version,
                catalogue_items,
                pending_train_users,
                leading,
                train_lag_seconds,
            } => {
                if let Some(age) = checkpoint_age_seconds {
                    metrics::gauge!("learn_checkpoint_age_seconds").set(age);
                }
                metrics::gauge!("learn_model_version").set(model_version as f64);
                metrics::gauge!("learn_catalogue_items").set(catalogue_items as f64);
                metrics::gauge!("learn_pending_train_users").set(pending_train_users as f64);
                metrics::gauge!("learn_leader").set(if leading { 1.0 } else { 0.0 });
                metrics::gauge!("learn_train_lag_seconds").set(train_lag_seconds);
                tracing::trace!(
                    model_version,
                    catalogue_items,
                    pending_train_users,
                    "service state"
                );
            }
        }
    }
}
