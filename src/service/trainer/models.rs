//! Towers ↔ checkpoints: the initial models, a serving model from a checkpoint, the
//! compatibility check, and the newest checkpoint (local directory or store).

use super::TrainerError;
use crate::checkpoint::{self, Checkpoint, CheckpointDir, Manifest};
use crate::config::Config;
use crate::schemas::now_ms;
use crate::service::ServiceError;
use crate::serving::{Models, ServingModel};
use crate::store::Store;
use crate::towers::TowerSpec;
use crate::train::online::inference_tower;
use crate::train::TrainingConfig;

/// The models a process starts with: the initial towers (seeded, version 0) serve until a
/// checkpoint is found; the same weights are kept as the frozen baseline.
pub fn initial_models(
    config: &Config,
    content_dim: usize,
    model_id: &str,
) -> Result<Models, ServiceError> {
    let build = || -> Result<ServingModel, TrainerError> {
        Ok(ServingModel {
            version: 0,
            tower: inference_tower(&config.towers, content_dim, config.training.seed, None)?,
            created_ms: now_ms(),
        })
    };
    Ok(Models::new(
        build()?,
        build()?,
        format!("learn-towers/{model_id}"),
    ))
}

/// Hash of the settings the weights depend on.
pub(super) fn config_hash(towers: &TowerSpec, training: &TrainingConfig) -> String {
    let text = serde_json::to_string(&(towers, training)).expect("serialisable");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// A serving model from a checkpoint's weights.
pub fn serving_model(
    towers: &TowerSpec,
    seed: u64,
    content_dim: usize,
    checkpoint: &Checkpoint,
) -> Result<ServingModel, TrainerError> {
    check_compatible(towers, content_dim, &checkpoint.manifest)?;
    Ok(ServingModel {
        version: checkpoint.manifest.version,
        tower: inference_tower(towers, content_dim, seed, Some(&checkpoint.weights))?,
        created_ms: checkpoint.manifest.created_ms,
    })
}

fn check_compatible(
    towers: &TowerSpec,
    content_dim: usize,
    manifest: &Manifest,
) -> Result<(), TrainerError> {
    let incompatible = |reason: String| TrainerError::Incompatible {
        version: manifest.version,
        reason,
    };
    if manifest.towers != *towers {
        return Err(incompatible(format!(
            "[towers] {:?} vs configured {towers:?}",
            manifest.towers
        )));
    }
    if manifest.content_dim != content_dim {
        return Err(incompatible(format!(
            "content dim {} (encoder {}) vs this encoder's {content_dim}",
            manifest.content_dim, manifest.model_id
        )));
    }
    Ok(())
}

/// The newest checkpoint: the local directory's or the store's, whichever is newer.
pub(super) async fn newest_checkpoint<S: Store>(
    store: &S,
    dir: &CheckpointDir,
) -> Result<Option<Checkpoint>, TrainerError> {
    let local = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || dir.latest()).await??
    };
    let remote = match store.current_model().await? {
        Some(model)
            if local
                .as_ref()
                .is_none_or(|l| l.manifest.version < model.version) =>
        {
            match checkpoint::from_bytes(&model.manifest, &model.state) {
                Ok(checkpoint) => Some(checkpoint),
                Err(err) => {
                    tracing::error!(version = model.version, %err, "the store's model is unreadable; using the newest local checkpoint");
                    None
                }
            }
        }
        _ => None,
    };
    Ok(remote.or(local))
}
