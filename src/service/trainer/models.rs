//! Towers ↔ checkpoints: the initial models, a serving model from a checkpoint, the
//! compatibility check, and the newest checkpoint (local directory or store).

use super::TrainerError;
use crate::checkpoint::{self, Checkpoint, CheckpointDir, Manifest};
use std::path::Path;

use crate::config::Config;
use crate::experiment::warm_start::{self, first_difference, Target};
use crate::schemas::now_ms;
use crate::service::ServiceError;
use crate::serving::{Models, ServingModel};
use crate::store::Store;
use crate::towers::TowerSpec;
use crate::train::online::inference_tower;
use crate::train::TrainingConfig;

/// The encoder the towers read, as checkpoints and warm starts are checked against it.
pub struct EncoderIdentity<'a> {
    pub model_id: &'a str,
    /// The resolved task prefix.
    pub prefix: &'a str,
    pub dim: usize,
}

/// The models a process starts with: the initial towers (seeded, version 0) — or, with
/// `online.warm_start`, the imported offline model (version 1) — serve until a newer checkpoint
/// is found; the same weights are kept as the frozen baseline. An offline run that does not fit
/// this configuration fails the start, naming the setting.
pub fn initial_models(config: &Config, encoder: &EncoderIdentity) -> Result<Models, ServiceError> {
    // Read once: the served and the frozen model are built from the same import.
    let imported = match &config.online.warm_start {
        Some(run) => Some(warm_start(run, &config.towers, &config.training, encoder)?),
        None => None,
    };
    let build = || -> Result<ServingModel, TrainerError> {
        if let Some(imported) = &imported {
            return serving_model(
                &config.towers,
                config.training.seed,
                (encoder.model_id, encoder.dim),
                imported,
            );
        }
        Ok(ServingModel {
            version: 0,
            tower: inference_tower(&config.towers, encoder.dim, config.training.seed, None)?,
            created_ms: now_ms(),
        })
    };
    Ok(Models::new(
        build()?,
        build()?,
        format!("learn-towers/{}", encoder.model_id),
    ))
}

/// The `learn train` run in `run` as version 1 of a new lineage for `towers` + `training`.
pub fn warm_start(
    run: &Path,
    towers: &TowerSpec,
    training: &TrainingConfig,
    encoder: &EncoderIdentity,
) -> Result<Checkpoint, TrainerError> {
    let target = Target {
        towers,
        model_id: encoder.model_id,
        prefix: encoder.prefix,
        content_dim: encoder.dim,
    };
    let hash = config_hash(towers, training);
    Ok(warm_start::import(run, &target, &hash)?)
}

/// Hash of the settings the weights depend on.
pub(super) fn config_hash(towers: &TowerSpec, training: &TrainingConfig) -> String {
    let text = serde_json::to_string(&(towers, training)).expect("serialisable");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// A serving model from a checkpoint's weights, once it is checked to fit `towers` and the encoder
/// (`model_id`, `content_dim`).
pub fn serving_model(
    towers: &TowerSpec,
    seed: u64,
    encoder: (&str, usize),
    checkpoint: &Checkpoint,
) -> Result<ServingModel, TrainerError> {
    check_compatible(towers, encoder, &checkpoint.manifest)?;
    Ok(ServingModel {
        version: checkpoint.manifest.version,
        tower: inference_tower(towers, encoder.1, seed, Some(&checkpoint.weights))?,
        created_ms: checkpoint.manifest.created_ms,
    })
}

/// The first setting the checkpoint was trained under that this configuration does not share.
fn check_compatible(
    towers: &TowerSpec,
    (model_id, content_dim): (&str, usize),
    manifest: &Manifest,
) -> Result<(), TrainerError> {
    let incompatible = |reason: String| TrainerError::Incompatible {
        version: manifest.version,
        reason,
    };
    if let Some((key, trained, configured)) = first_difference(&manifest.towers, towers) {
        return Err(incompatible(format!(
            "towers.{key} = {trained} in the checkpoint, {configured} configured"
        )));
    }
    if manifest.model_id != model_id || manifest.content_dim != content_dim {
        return Err(incompatible(format!(
            "trained on the encoder {} ({} wide), this one is {model_id} ({content_dim} wide)",
            manifest.model_id, manifest.content_dim
        )));
    }
    Ok(())
}

/// The newest checkpoint: the local directory's or the store's, whichever is newer, and whether
/// the store lacks it (a local one newer than the store's model: imported by `learn checkpoint
/// import`, or written by a leader that stopped before publishing) — and the store's version, a
/// retired lineage's included (0 with none), which the next version must exceed. After
/// `learn model reset`, local checkpoints up to the retired version belong to the retired lineage
/// and are passed over.
pub(super) async fn newest_checkpoint<S: Store>(
    store: &S,
    dir: &CheckpointDir,
) -> Result<(Option<(Checkpoint, bool)>, u64), TrainerError> {
    let local = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || dir.latest()).await??
    };
    let stored = store.current_model().await?;
    // Only a retired lineage leaves a version without a model.
    let stored_version = match &stored {
        Some(model) => Some(model.version),
        None => store.model_version().await?,
    };
    let local = match (local, stored_version) {
        (Some(l), Some(retired)) if stored.is_none() && l.manifest.version <= retired => {
            tracing::info!(
                version = l.manifest.version,
                retired,
                "local checkpoint passed over: its lineage was retired (learn model reset)"
            );
            None
        }
        (local, _) => local,
    };
    let remote = match stored {
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
    let newest = match remote {
        Some(remote) => Some((remote, false)),
        None => local.map(|l| {
            let unpublished = stored_version.is_none_or(|v| v < l.manifest.version);
            (l, unpublished)
        }),
    };
    Ok((newest, stored_version.unwrap_or(0)))
}
