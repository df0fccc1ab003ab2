//! Lag control: the knobs ops teams would otherwise turn by hand. Every statistics interval the
//! controller compares each input stream's consumer lag with `lag.target_messages`:
//!
//! - uploads behind target → the embed micro-batch doubles (up to `lag.embed_batch_max`): bigger
//!   encoder batches carry more items per second; at or under half the target it halves back
//!   (down to `lag.embed_batch_min`), which gives the lowest upload→embedding latency;
//! - either stream behind target, or an upload that took longer than `lag.freshness_target_ms`
//!   from produce to Redis → the training batch halves (down to `online.min_batch_size`), handing
//!   CPU back to ingestion (shorter steps also delay an upload less); when both streams are under
//!   half the target and uploads under half the freshness target it doubles back (up to
//!   `online.batch_size`).
//!
//! Multiplicative steps with a dead band between half the target and the target, so the knobs
//! settle instead of oscillating.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::signals::UploadLatency;
use crate::config::Config;
use crate::metrics::{Event, LagBoard};
use crate::shutdown::Shutdown;

/// The adaptive micro-batch sizes: set by lag control only, read by the uploads source and the
/// trainer.
#[derive(Debug)]
pub struct Knobs {
    pub embed_batch: Arc<AtomicUsize>,
    pub train_batch: AtomicUsize,
}

impl Knobs {
    /// Starts at the latency end for embedding and the full training batch.
    pub fn new(config: &Config) -> Self {
        Self {
            embed_batch: Arc::new(AtomicUsize::new(config.lag.embed_batch_min)),
            train_batch: AtomicUsize::new(config.online.batch_size),
        }
    }
}

/// The bounds and target the controller works within.
#[derive(Debug, Clone)]
pub struct LagPolicy {
    pub target: i64,
    pub freshness_target_ms: u64,
    pub embed: (usize, usize),
    pub train: (usize, usize),
}

impl LagPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            target: config.lag.target_messages,
            freshness_target_ms: config.lag.freshness_target_ms,
            embed: (config.lag.embed_batch_min, config.lag.embed_batch_max),
            train: (config.online.min_batch_size, config.online.batch_size),
        }
    }

    /// New (embed, train) batch sizes given the pressure on the service.
    pub fn adjust(&self, embed: usize, train: usize, pressure: Pressure) -> (usize, usize) {
        let Pressure {
            uploads_lag,
            actions_lag,
            upload_latency_ms,
        } = pressure;
        let (high, low) = (self.target, self.target / 2);
        let embed = if uploads_lag > high {
            (embed * 2).min(self.embed.1)
        } else if uploads_lag <= low {
            (embed / 2).max(self.embed.0)
        } else {
            embed
        };
        let late = upload_latency_ms > self.freshness_target_ms;
        let fresh = upload_latency_ms <= self.freshness_target_ms / 2;
        let train = if uploads_lag.max(actions_lag) > high || late {
            (train / 2).max(self.train.0)
        } else if uploads_lag.max(actions_lag) <= low && fresh {
            (train * 2).min(self.train.1)
        } else {
            train
        };
        (embed, train)
    }
}

/// What the controller reacts to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pressure {
    /// Messages behind on the uploads stream (summed over this process's partitions).
    pub uploads_lag: i64,
    pub actions_lag: i64,
    /// Longest upload produced → aligned embedding in Redis since the last adjustment (0: none).
    pub upload_latency_ms: u64,
}

/// What lag control reads and sets.
pub struct Controller {
    pub policy: LagPolicy,
    /// (uploads, actions) topics.
    pub topics: (String, String),
    pub lag: Arc<LagBoard>,
    pub latency: UploadLatency,
    pub knobs: Arc<Knobs>,
    /// `kafka.statistics_interval_ms`: how often librdkafka reports lag.
    pub interval: Duration,
}

/// Adjusts the knobs from the lag board until shutdown.
pub async fn control(ctx: Controller, mut shutdown: Shutdown) {
    let Controller {
        policy,
        topics: (uploads_topic, actions_topic),
        lag,
        latency,
        knobs,
        interval,
    } = ctx;
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let (uploads, actions) = (
            lag.total(&uploads_topic).unwrap_or(0),
            lag.total(&actions_topic).unwrap_or(0),
        );
        let (embed, train) = (
            knobs.embed_batch.load(Ordering::Relaxed),
            knobs.train_batch.load(Ordering::Relaxed),
        );
        let pressure = Pressure {
            uploads_lag: uploads,
            actions_lag: actions,
            upload_latency_ms: latency.take(),
        };
        let (new_embed, new_train) = policy.adjust(embed, train, pressure);
        if (new_embed, new_train) != (embed, train) {
            tracing::debug!(
                ?pressure,
                embed_batch = new_embed,
                train_batch = new_train,
                "lag control"
            );
        }
        knobs.embed_batch.store(new_embed, Ordering::Relaxed);
        knobs.train_batch.store(new_train, Ordering::Relaxed);
        Event::BatchLimits {
            embed: new_embed,
            train: new_train,
        }
        .record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(uploads_lag: i64, actions_lag: i64) -> Pressure {
        Pressure {
            uploads_lag,
            actions_lag,
            upload_latency_ms: 0,
        }
    }

    #[test]
    fn grows_embedding_and_shrinks_training_under_lag_then_recovers() {
        let policy = LagPolicy {
            target: 100,
            freshness_target_ms: 250,
            embed: (8, 64),
            train: (4, 32),
        };
        let (mut embed, mut train) = (8, 32);
        for _ in 0..5 {
            (embed, train) = policy.adjust(embed, train, lag(500, 0));
        }
        assert_eq!((embed, train), (64, 4), "lag: bounds reached");
        assert_eq!(
            policy.adjust(embed, train, lag(80, 80)),
            (64, 4),
            "dead band holds"
        );
        for _ in 0..5 {
            (embed, train) = policy.adjust(embed, train, lag(10, 10));
        }
        assert_eq!((embed, train), (8, 32), "recovered");
        assert_eq!(
            policy.adjust(8, 32, lag(0, 1000)).1,
            16,
            "action lag alone slows training"
        );
        let latency = |upload_latency_ms| Pressure {
            upload_latency_ms,
            ..lag(0, 0)
        };
        assert_eq!(
            policy.adjust(8, 32, latency(400)),
            (8, 16),
            "late uploads slow training"
        );
        assert_eq!(
            policy.adjust(8, 16, latency(200)),
            (8, 16),
            "within the freshness band"
        );
    }
}
