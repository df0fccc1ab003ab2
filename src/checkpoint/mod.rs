//! Owns checkpoints of the online towers. One checkpoint is a directory `v{version:08}/` holding
//! `state.safetensors` (the weights under `weights/…`, AdamW's moments under `adam_m/…` and
//! `adam_v/…`) and `manifest.json` ([`Manifest`]: version, time, optimizer step, config hash,
//! encoder model id, the stream watermarks the model had seen). A checkpoint is written into a
//! hidden temporary directory, fsynced (files, then the directory), renamed into place and the
//! parent fsynced, so neither a reader nor a power loss leaves half of one; the manifest carries a
//! SHA-256 of the state, verified on every read, and [`CheckpointDir::latest`] skips (loudly) a
//! checkpoint that fails it, falling back to the next newest. The last `keep` are kept; temporary
//! directories left by a crash are swept.
//!
//! What the store carries to other processes is lighter: [`published`] gives the weights alone
//! (a third of the state) with a manifest whose SHA-256 covers them; the optimizer's moments stay
//! in the checkpoint directory. A checkpoint read from those bytes has no moments
//! ([`Checkpoint::optimizer`] is None): a trainer restoring it starts a fresh optimizer.

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
    /// SHA-256 of `state.safetensors` (hex), set when written and verified on every read; absent
    /// in checkpoints written before it existed (read unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_sha256: Option<String>,
}

/// A checkpoint: manifest, named weights, and (in a checkpoint directory, not in what the store
/// publishes) the optimizer's moments.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub manifest: Manifest,
    pub weights: Vec<(String, Tensor)>,
    pub optimizer: Option<Moments>,
}

/// AdamW's first and second moments, in the weights' order.
#[derive(Debug, Clone)]
pub struct Moments {
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

const STATE: &str = "state.safetensors";
const MANIFEST: &str = "manifest.json";

/// A checkpoint as written: its directory and the bytes of its two files (what the store
/// publishes, without reading them back).
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub manifest: Vec<u8>,
    pub state: Vec<u8>,
}

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

    /// Writes `checkpoint` atomically and prunes old ones.
    pub fn write(&self, checkpoint: &Checkpoint) -> Result<Written, CheckpointError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let name = format!("v{:08}", checkpoint.manifest.version);
        let tmp = self.dir.join(format!(".tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        candle_core::safetensors::save(&tensors(checkpoint), tmp.join(STATE))?;
        let state = std::fs::read(tmp.join(STATE)).map_err(io(&tmp))?;
        let manifest = manifest_of(checkpoint, &state);
        std::fs::write(tmp.join(MANIFEST), &manifest).map_err(io(&tmp))?;
        for file in [STATE, MANIFEST] {
            sync(&tmp.join(file))?;
        }
        sync(&tmp)?;
        let target = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        sync(&self.dir)?;
        self.prune()?;
        self.sweep_temporaries();
        Ok(Written {
            dir: target,
            manifest,
            state,
        })
    }

    /// Removes temporary directories older than ten minutes (left by a crash mid-write).
    fn sweep_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            let temporary = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".tmp-"));
            let stale = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(600));
            if temporary && stale {
                tracing::info!(path = %path.display(), "removing a stale temporary checkpoint");
                let _ = std::fs::remove_dir_all(&path);
            }
        }
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

    /// The newest checkpoint that reads back whole; unreadable ones are skipped with an error log.
    pub fn latest(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        for (version, path) in self.list()?.into_iter().rev() {
            match read(&path) {
                Ok(checkpoint) => return Ok(Some(checkpoint)),
                Err(err) => {
                    tracing::error!(version, %err, "skipping an unreadable checkpoint; trying the previous one")
                }
            }
        }
        Ok(None)
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

/// Every tensor of `checkpoint` under its `weights/`, `adam_m/` or `adam_v/` name.
fn tensors(checkpoint: &Checkpoint) -> HashMap<String, Tensor> {
    let mut tensors = HashMap::new();
    for (i, (name, weight)) in checkpoint.weights.iter().enumerate() {
        tensors.insert(format!("weights/{name}"), weight.clone());
        if let Some(moments) = &checkpoint.optimizer {
            tensors.insert(format!("adam_m/{name}"), moments.m[i].clone());
            tensors.insert(format!("adam_v/{name}"), moments.v[i].clone());
        }
    }
    tensors
}

/// What the store publishes of `checkpoint`: the bytes of a manifest and of a safetensors file of
/// the weights alone, the manifest's `state_sha256` covering them.
pub fn published(checkpoint: &Checkpoint) -> Result<(Vec<u8>, Vec<u8>), CheckpointError> {
    let weights = checkpoint
        .weights
        .iter()
        .map(|(name, weight)| (format!("weights/{name}"), weight));
    let state = safetensors::serialize(weights, None).map_err(|e| CheckpointError::Invalid {
        path: PathBuf::from("<published>"),
        reason: e.to_string(),
    })?;
    Ok((manifest_of(checkpoint, &state), state))
}

/// The bytes of `checkpoint`'s manifest with the SHA-256 of `state`.
fn manifest_of(checkpoint: &Checkpoint, state: &[u8]) -> Vec<u8> {
    let manifest = Manifest {
        state_sha256: Some(sha256_hex(state)),
        ..checkpoint.manifest.clone()
    };
    serde_json::to_vec_pretty(&manifest).expect("serialisable")
}

/// A checkpoint from the bytes of a `manifest.json` and a `state.safetensors` (a checkpoint
/// directory's, or what the store publishes: then without the optimizer's moments).
pub fn from_bytes(manifest: &[u8], state: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let invalid = |reason: String| CheckpointError::Invalid {
        path: PathBuf::from("<bytes>"),
        reason,
    };
    let manifest: Manifest =
        serde_json::from_slice(manifest).map_err(|e| invalid(format!("manifest: {e}")))?;
    if let Some(expected) = &manifest.state_sha256 {
        let actual = sha256_hex(state);
        if &actual != expected {
            return Err(invalid(format!(
                "state checksum mismatch (manifest {expected}, file {actual}): truncated or corrupt"
            )));
        }
    }
    let mut tensors = candle_core::safetensors::load_buffer(state, &Device::Cpu)?;
    let mut names: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_prefix("weights/").map(str::to_string))
        .collect();
    names.sort();
    let with_moments = tensors.keys().any(|k| k.starts_with("adam_m/"));
    let mut take = |key: String| {
        tensors
            .remove(&key)
            .ok_or_else(|| invalid(format!("missing tensor {key}")))
    };
    let (mut weights, mut m, mut v) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        weights.push((name.clone(), take(format!("weights/{name}"))?));
        if with_moments {
            m.push(take(format!("adam_m/{name}"))?);
            v.push(take(format!("adam_v/{name}"))?);
        }
    }
    Ok(Checkpoint {
        manifest,
        weights,
        optimizer: with_moments.then_some(Moments { m, v }),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// fsync of a file or a directory.
fn sync(path: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}
