//! Owns the served model slot as the tasks that change it see it (the trainer, the follower): the
//! catalogue, the models scoring it, and how a checkpoint becomes the next served version.

use std::sync::Arc;

use super::trainer::{serving_model, TrainerError};
use crate::checkpoint::Checkpoint;
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
}

impl LiveModels {
    /// The serving model in `checkpoint`, once it is checked to fit `[towers]` and the encoder.
    pub fn load(&self, checkpoint: &Checkpoint) -> Result<ServingModel, TrainerError> {
        serving_model(&self.towers, self.seed, self.catalogue.dim(), checkpoint)
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
