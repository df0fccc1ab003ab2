//! Owns checkpoints of the online towers. One checkpoint is a directory `v{version:08}/` holding
//! `state.safetensors` (the weights under `weights/…`, AdamW's moments under `adam_m/…` and
//! `adam_v/…`) and `manifest.json` ([`Manifest`]: version, time, optimizer step, config hash,
//! encoder model id, the stream watermarks the model had seen). A checkpoint is written into a
//! hidden temporary directory and renamed into place, so a reader never sees half of one; the last
//! `keep` are kept.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::towers::TowerSpec;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("tensors: {0}")]
    Tensor(#[from] candle_core::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a checkpoint is, without its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Model version: 1, 2, … (0 is the untrained initial model). Published with every aligned embedding.
    pub version: u64,
    pub created_ms: i64,
    /// Optimizer steps taken in total.
    pub step: u64,
    /// Hash of the `[towers]` and `[training]` config the weights were trained under.
    pub config_hash: String,
    /// The frozen encoder whose content embeddings the towers read.
    pub model_id: String,
    pub content_dim: usize,
    pub towers: TowerSpec,
    /// Mean training loss since the previous checkpoint.
    pub loss: Option<f64>,
    /// Actions topic → partition → highest offset applied to histories when the checkpoint was taken.
    pub offsets: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// A whole checkpoint: manifest, named weights, and the optimizer moments in the weights' order.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub manifest: Manifest,
    pub weights: Vec<(String, Tensor)>,
    pub adam_m: Vec<Tensor>,
    pub adam_v: Vec<Tensor>,
}

const STATE: &str = "state.safetensors";
const MANIFEST: &str = "manifest.json";

/// A directory of checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
    keep: usize,
}

impl CheckpointDir {
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    /// Writes `checkpoint` atomically and prunes old ones; returns its directory.
    pub fn write(&self, checkpoint: &Checkpoint) -> Result<PathBuf, CheckpointError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let name = format!("v{:08}", checkpoint.manifest.version);
        let tmp = self.dir.join(format!(".tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (i, (name, weight)) in checkpoint.weights.iter().enumerate() {
            tensors.insert(format!("weights/{name}"), weight.clone());
            tensors.insert(format!("adam_m/{name}"), checkpoint.adam_m[i].clone());
            tensors.insert(format!("adam_v/{name}"), checkpoint.adam_v[i].clone());
        }
        candle_core::safetensors::save(&tensors, tmp.join(STATE))?;
        let manifest = serde_json::to_vec_pretty(&checkpoint.manifest).expect("serialisable");
        std::fs::write(tmp.join(MANIFEST), manifest).map_err(io(&tmp))?;
        let target = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        self.prune()?;
        Ok(target)
    }

    /// Checkpoint directories, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let version = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(version) = version.filter(|_| path.join(MANIFEST).exists()) {
                found.push((version, path));
            }
        }
        found.sort();
        Ok(found)
    }

    pub fn latest(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        match self.list()?.pop() {
            Some((_, path)) => read(&path).map(Some),
            None => Ok(None),
        }
    }

    fn prune(&self) -> Result<(), CheckpointError> {
        let all = self.list()?;
        for (_, path) in &all[..all.len().saturating_sub(self.keep)] {
            std::fs::remove_dir_all(path).map_err(io(path))?;
        }
        Ok(())
    }
}

/// Whether `dir` is one checkpoint (rather than a directory of them).
pub fn is_checkpoint(dir: &Path) -> bool {
    dir.join(MANIFEST).exists()
}

/// Size of a checkpoint's state file in bytes (0 when unreadable).
pub fn state_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(STATE)).map_or(0, |m| m.len())
}

/// Reads a checkpoint's manifest only.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CheckpointError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&text).map_err(|e| CheckpointError::Invalid {
        path,
        reason: e.to_string(),
    })
}

/// Reads a whole checkpoint directory.
pub fn read(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let manifest = std::fs::read(dir.join(MANIFEST)).map_err(io(dir))?;
    let path = dir.join(STATE);
    let state = std::fs::read(&path).map_err(io(&path))?;
    from_bytes(&manifest, &state).map_err(|e| match e {
        CheckpointError::Invalid { reason, .. } => CheckpointError::Invalid {
            path: dir.to_path_buf(),
            reason,
        },
        other => other,
    })
}

/// A checkpoint from the bytes of its `manifest.json` and `state.safetensors` (as published to the store).
pub fn from_bytes(manifest: &[u8], state: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let invalid = |reason: String| CheckpointError::Invalid {
        path: PathBuf::from("<bytes>"),
        reason,
    };
    let manifest: Manifest =
        serde_json::from_slice(manifest).map_err(|e| invalid(format!("manifest: {e}")))?;
    let mut tensors = candle_core::safetensors::load_buffer(state, &Device::Cpu)?;
    let mut names: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_prefix("weights/").map(str::to_string))
        .collect();
    names.sort();
    let mut take = |key: String| {
        tensors
            .remove(&key)
            .ok_or_else(|| invalid(format!("missing tensor {key}")))
    };
    let (mut weights, mut adam_m, mut adam_v) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        weights.push((name.clone(), take(format!("weights/{name}"))?));
        adam_m.push(take(format!("adam_m/{name}"))?);
        adam_v.push(take(format!("adam_v/{name}"))?);
    }
    Ok(Checkpoint {
        manifest,
        weights,
        adam_m,
        adam_v,
    })
}

/// The weights file of a checkpoint directory, as bytes (what followers load).
pub fn state_bytes(dir: &Path) -> Result<Vec<u8>, CheckpointError> {
    let path = dir.join(STATE);
    std::fs::read(&path).map_err(io(&path))
}
