//! Owns the served model slot as the tasks that change it see it (the trainer, the follower): the
//! catalogue, the models scoring it, and how a checkpoint becomes the next served version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::trainer::{serving_model, TrainerError};
use crate::checkpoint::Checkpoint;
use crate::metrics::Event;
use crate::serving::{Catalogue, Models, ServingModel};
use crate::towers::TowerSpec;

#[derive(Clone)]
pub struct LiveModels {
    pub catalogue: Arc<Catalogue>,
    pub models: Arc<Models>,
    /// `[towers]`: a checkpoint must have been trained with it.
    pub towers: TowerSpec,
    /// `training.seed` (the towers' initial weights).
    pub seed: u64,
    /// The frozen encoder's id: a checkpoint must have been trained on its vectors.
    pub encoder_id: String,
    /// The last version refused as not fitting (reported once, not on every poll).
    pub refused: Arc<AtomicU64>,
}

impl LiveModels {
    /// The serving model in `checkpoint`, once it is checked to fit `[towers]` and the encoder.
    /// One that does not fit is an alerting state (`learn_model_refused_version`) until a version
    /// that fits is served: the lineage needs `learn model reset` (docs/operations.md, "Upgrades").
    pub fn load(&self, checkpoint: &Checkpoint) -> Result<ServingModel, TrainerError> {
        let encoder = (self.encoder_id.as_str(), self.catalogue.dim());
        let loaded = serving_model(&self.towers, self.seed, encoder, checkpoint);
        if let Err(TrainerError::Incompatible { version, reason }) = &loaded {
            if self.refused.swap(*version, Ordering::Relaxed) != *version {
                Event::ModelRefused {
                    version: *version,
                    reason,
                }
                .record();
            }
        }
        loaded
    }

    /// Serves `model` from now on if it is newer than the current one, its aligned index built
    /// first on a blocking thread (never on the runtime, never by a request). True when swapped.
    pub async fn serve(&self, model: ServingModel) -> candle_core::Result<bool> {
        let (models, catalogue) = (self.models.clone(), self.catalogue.clone());
        tokio::task::spawn_blocking(move || models.swap(model, &catalogue))
            .await
            .map_err(|e| candle_core::Error::Msg(format!("index build task: {e}")))?
    }
}
