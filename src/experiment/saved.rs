//! A trained tower on disk as `learn train` leaves it: `<out>/<model>.safetensors` (the weights)
//! and `<out>/<model>.json` ([`CheckpointMeta`]: what they were trained on and with).

use std::path::Path;

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::{ExperimentError, ModelKind};
use crate::towers::TowerSpec;
use crate::train::{TrainReport, TrainingConfig};

/// What is saved beside a tower's weights.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub model: ModelKind,
    pub dataset: String,
    pub encoder_model: Option<String>,
    /// The encoder's resolved task prefix (absent in runs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_prefix: Option<String>,
    pub towers: TowerSpec,
    pub training: TrainingConfig,
    pub cold_fraction: f64,
    pub report: TrainReport,
}

pub(super) fn checkpoint_error(path: &Path, reason: impl ToString) -> ExperimentError {
    ExperimentError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

pub fn save_checkpoint(
    dir: &Path,
    varmap: &VarMap,
    meta: &CheckpointMeta,
) -> Result<(), ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|e| checkpoint_error(dir, e))?;
    let weights = dir.join(format!("{}.safetensors", meta.model.name()));
    varmap.save(&weights)?;
    let path = dir.join(format!("{}.json", meta.model.name()));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(meta).expect("serialisable"),
    )
    .map_err(|e| checkpoint_error(&path, e))
}

pub fn load_checkpoint_meta(
    dir: &Path,
    kind: ModelKind,
) -> Result<CheckpointMeta, ExperimentError> {
    let path = dir.join(format!("{}.json", kind.name()));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        checkpoint_error(
            &path,
            format!("{e} (train it first: learn train --model {})", kind.name()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| checkpoint_error(&path, e))
}

pub fn load_weights(
    dir: &Path,
    kind: ModelKind,
    varmap: &mut VarMap,
) -> Result<(), ExperimentError> {
    Ok(varmap.load(dir.join(format!("{}.safetensors", kind.name())))?)
}
