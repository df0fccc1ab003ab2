//! Owns the bridge from offline training to the stream: a `learn train` run (`<run>/learn.json` +
//! `<run>/learn.safetensors`) checked against the service's configuration and turned into version 1
//! of a new online lineage — the towers and the whitening statistics they were trained with. The
//! optimizer's moments are not carried: offline AdamW ran under another schedule, so the stream's
//! AdamW starts fresh (zero moments, bias correction from step 0).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::{load_checkpoint_meta, CheckpointMeta, ModelKind};
use crate::checkpoint::{Checkpoint, Manifest};
use crate::schemas::now_ms;
use crate::towers::TowerSpec;

#[derive(Debug, thiserror::Error)]
pub enum WarmStartError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// The offline run and this configuration disagree on `key`.
    #[error("{run}: {key} differs: the offline run has {offline}, this configuration {configured}; {remedy}")]
    Mismatch {
        run: PathBuf,
        key: String,
        offline: String,
        configured: String,
        remedy: String,
    },
}

/// What the offline run must agree with: the service's `[towers]`, its encoder and its content width.
pub struct Target<'a> {
    pub towers: &'a TowerSpec,
    /// `encoder.model_id` as resolved (the published embeddings' model id).
    pub model_id: &'a str,
    /// The encoder's resolved task prefix.
    pub prefix: &'a str,
    /// The frozen encoder's output width.
    pub content_dim: usize,
}

/// The `learn train` run in `run` as version 1 of a new lineage (no optimizer moments), once every
/// setting the serving check reads agrees with `target`. `config_hash` is the service's hash of
/// `[towers]` + `[training]`.
pub fn import(
    run: &Path,
    target: &Target,
    config_hash: &str,
) -> Result<Checkpoint, WarmStartError> {
    let meta = load_checkpoint_meta(run, ModelKind::Learn).map_err(|e| WarmStartError::Read {
        path: run.to_path_buf(),
        reason: e.to_string(),
    })?;
    let path = run.join(format!("{}.safetensors", ModelKind::Learn.name()));
    // Sorted by name: the order the trainer's variables and checkpoints have.
    let weights: BTreeMap<String, Tensor> =
        candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
            .map_err(|e| WarmStartError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .into_iter()
            .collect();
    let content_dim = weights
        .get("adapter.weight")
        .and_then(|w| w.dims().get(1).copied())
        .ok_or_else(|| WarmStartError::Read {
            path: path.clone(),
            reason: "no adapter.weight: not a LEARN (content) tower".into(),
        })?;
    check(run, &meta, content_dim, target)?;
    Ok(Checkpoint {
        manifest: Manifest {
            version: 1,
            created_ms: now_ms(),
            step: 0,
            config_hash: config_hash.to_string(),
            model_id: target.model_id.to_string(),
            content_dim,
            towers: target.towers.clone(),
            loss: meta
                .report
                .curve
                .iter()
                .find(|e| e.epoch == meta.report.best_epoch)
                .map(|e| e.loss),
            offsets: BTreeMap::new(),
            state_sha256: None,
        },
        weights: weights.into_iter().collect(),
        optimizer: None,
    })
}

/// The first setting on which the run and the target disagree, as an error naming it.
fn check(
    run: &Path,
    meta: &CheckpointMeta,
    content_dim: usize,
    target: &Target,
) -> Result<(), WarmStartError> {
    let mismatch = |key: &str, offline: String, configured: String, remedy: &str| {
        Err(WarmStartError::Mismatch {
            run: run.to_path_buf(),
            key: key.to_string(),
            offline,
            configured,
            remedy: remedy.to_string(),
        })
    };
    let retrain = "train again with this configuration (learn train --config …) or serve with the run's setting";
    if meta.towers.item_ids {
        return mismatch(
            "towers.item_ids",
            "true".into(),
            "a growing online catalogue (content only)".into(),
            "ID offsets index the offline dataset's items: train with towers.item_ids = false",
        );
    }
    if let Some((key, offline, configured)) = first_difference(&meta.towers, target.towers) {
        return mismatch(&format!("towers.{key}"), offline, configured, retrain);
    }
    let encoder = meta.encoder_model.clone().unwrap_or_default();
    if encoder != target.model_id {
        return mismatch(
            "encoder.model_id",
            format!("{encoder:?}"),
            format!("{:?}", target.model_id),
            "the towers read one encoder's space: serve with the run's encoder (encoder.model_dir / encoder.model_id) or train again with this one",
        );
    }
    if let Some(prefix) = &meta.encoder_prefix {
        if prefix != target.prefix {
            return mismatch(
                "encoder.prefix",
                format!("{prefix:?}"),
                format!("{:?}", target.prefix),
                "a task prefix moves every content vector: use the run's encoder.prefix or train again",
            );
        }
    }
    if target.content_dim != content_dim {
        return mismatch(
            "content dimension",
            content_dim.to_string(),
            target.content_dim.to_string(),
            "the run was trained on another encoder's vectors",
        );
    }
    Ok(())
}

/// The first `[towers]` key whose value differs, with both values (`offline`'s first).
pub fn first_difference(
    offline: &TowerSpec,
    configured: &TowerSpec,
) -> Option<(String, String, String)> {
    let as_map = |spec: &TowerSpec| match serde_json::to_value(spec).expect("serialisable") {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a struct serialises as an object"),
    };
    let (offline, configured) = (as_map(offline), as_map(configured));
    configured.iter().find_map(|(key, value)| {
        let theirs = offline.get(key).cloned().unwrap_or(serde_json::Value::Null);
        (theirs != *value).then(|| (key.clone(), theirs.to_string(), value.to_string()))
    })
}
