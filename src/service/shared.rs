//! Owns the process's state: every handle the tasks share, built once ([`Shared::new`]) and split
//! by `service::run` into the narrow context each sink, task and handler takes. Also the state no
//! single task owns: [`TrainingState`] (written by the trainer and the follower, read by the API)
//! and [`Warmup`] (what `/readyz` waits for).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::active::ActiveUsers;
use super::lag::Knobs;
use super::live::LiveModels;
use super::signals::{EncoderBusy, UploadLatency};
use super::trainer::{initial_models, EncoderIdentity};
use super::ServiceError;
use crate::config::Config;
use crate::encode::ContentEncoder;
use crate::metrics::{LagBoard, Stats};
use crate::serving::recommend::Handles;
use crate::serving::{Catalogue, ItemCounts, Models};
use crate::store::Store;

/// What the trainer and the follower report for `/v1/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct TrainingState {
    /// This process trains (holds the leader lock, or `role = "trainer"`).
    pub leading: AtomicBool,
    /// When the last checkpoint was written (ms since the epoch; 0 = none yet).
    pub last_checkpoint_ms: AtomicI64,
    /// When the newest action the trainer has trained on was ingested (ms since the epoch; set
    /// when this process starts leading, then by every step).
    pub trained_through_ms: AtomicI64,
}

impl TrainingState {
    /// The trainer's lag: while users wait for a step, how long ago the newest action it has
    /// trained on was ingested; 0 when nothing waits or this process does not train.
    pub fn lag_seconds(&self, pending_users: usize, now_ms: i64) -> f64 {
        let through = self.trained_through_ms.load(Ordering::Relaxed);
        if !self.leading.load(Ordering::Relaxed) || pending_users == 0 || through == 0 {
            return 0.0;
        }
        (now_ms - through).max(0) as f64 / 1000.0
    }

    /// Seconds since the last checkpoint was written, if any was.
    pub fn checkpoint_age_seconds(&self, now_ms: i64) -> Option<f64> {
        let last = self.last_checkpoint_ms.load(Ordering::Relaxed);
        (last > 0).then(|| (now_ms - last) as f64 / 1000.0)
    }
}

/// What `/readyz` waits for besides the store: the catalogue caught up with the changelog and the
/// first look at the published model (a process restarted into a running deployment must not
/// answer with an empty catalogue or the untrained towers).
#[derive(Default)]
pub struct Warmup {
    pub catalogue_synced: AtomicBool,
    /// The published model (if any) is served: the follower checked, or the trainer restored it.
    pub model_loaded: AtomicBool,
}

/// Every handle of the running process.
pub struct Shared<S> {
    pub config: Config,
    pub store: S,
    pub encoder: Arc<ContentEncoder>,
    pub catalogue: Arc<Catalogue>,
    pub models: Arc<Models>,
    pub stats: Arc<Stats>,
    pub lag: Arc<LagBoard>,
    pub active: Arc<ActiveUsers>,
    pub item_counts: Arc<ItemCounts>,
    /// Batch sizes lag control sets.
    pub knobs: Arc<Knobs>,
    pub encoder_busy: EncoderBusy,
    pub upload_latency: UploadLatency,
    pub training: Arc<TrainingState>,
    pub warmup: Arc<Warmup>,
    /// This process's name in the leader lock.
    pub instance: String,
    pub started: Instant,
}

impl<S: Store> Shared<S> {
    /// Builds the process's state; the serving model starts as the initial (untrained) towers
    /// and is replaced by the latest checkpoint as soon as the trainer or the follower finds one.
    pub fn new(
        config: Config,
        store: S,
        encoder: Arc<ContentEncoder>,
        stats: Arc<Stats>,
    ) -> Result<Self, ServiceError> {
        let identity = EncoderIdentity {
            model_id: encoder.model_id(),
            prefix: encoder.prefix(),
            dim: encoder.dim(),
        };
        let models = initial_models(&config, &identity)?;
        Ok(Self {
            catalogue: Arc::new(Catalogue::new(encoder.dim())),
            models: Arc::new(models),
            active: Arc::new(ActiveUsers::new(
                config.online.pending_users,
                config.online.republish_users,
            )),
            item_counts: Arc::default(),
            knobs: Arc::new(Knobs::new(&config)),
            lag: Arc::default(),
            encoder_busy: EncoderBusy::default(),
            upload_latency: UploadLatency::default(),
            training: Arc::default(),
            warmup: Arc::default(),
            instance: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "learn".into()),
                std::process::id()
            ),
            started: Instant::now(),
            config,
            store,
            encoder,
            stats,
        })
    }

    /// What recommendation reads.
    pub fn recommend_handles(&self) -> Handles<S> {
        Handles {
            store: self.store.clone(),
            catalogue: self.catalogue.clone(),
            models: self.models.clone(),
            item_counts: self.item_counts.clone(),
            logit_scale: self.config.training.logit_scale as f32,
            history_cap: self.config.history.cap,
        }
    }

    /// The served model slot, for the tasks that swap it.
    pub fn live(&self) -> LiveModels {
        LiveModels {
            catalogue: self.catalogue.clone(),
            models: self.models.clone(),
            towers: self.config.towers.clone(),
            seed: self.config.training.seed,
            encoder_id: self.encoder.model_id().to_string(),
            refused: Default::default(),
        }
    }
}
