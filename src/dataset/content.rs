//! A dataset's frozen content embeddings (items × dim), computed once and cached as safetensors
//! under `<cache_dir>/<dataset>.<model id>.<hash of the token limit, task prefix and item texts>.safetensors`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};

use super::Dataset;
use crate::encode::{ContentEncoder, EncodeError};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("encoder: {0}")]
    Encode(#[from] EncodeError),
    #[error("cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

fn cache_path(dataset: &Dataset, encoder: &ContentEncoder, cache_dir: &Path) -> PathBuf {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    // Texts are truncated to it: another limit, other vectors.
    hasher.update(&(encoder.max_tokens() as u64).to_le_bytes());
    if !encoder.prefix().is_empty() {
        hasher.update(encoder.prefix().as_bytes());
        hasher.update(&[0]);
    }
    for item in &dataset.items {
        hasher.update(item.text.as_bytes());
        hasher.update(&[0]);
    }
    cache_dir.join(format!(
        "{}.{}.{:016x}.safetensors",
        dataset.name,
        encoder.model_id(),
        hasher.digest()
    ))
}

/// The content embedding table, from the cache or computed (and cached).
pub fn content_table(
    dataset: &Dataset,
    encoder: &ContentEncoder,
    cache_dir: &Path,
) -> Result<Tensor, ContentError> {
    let path = cache_path(dataset, encoder, cache_dir);
    let cache_error = |reason: String| ContentError::Cache {
        path: path.clone(),
        reason,
    };
    if path.is_file() {
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| cache_error(e.to_string()))?;
        return tensors
            .remove("content")
            .ok_or_else(|| cache_error("no `content` tensor".into()));
    }
    let bar = ProgressBar::new(dataset.items.len() as u64).with_style(
        ProgressStyle::with_template("embedding items {bar:40} {pos}/{len} ({per_sec}, eta {eta})")
            .expect("template"),
    );
    let mut rows = Vec::with_capacity(dataset.items.len() * encoder.dim());
    for chunk in dataset.items.chunks(256) {
        let texts: Vec<String> = chunk
            .iter()
            .map(|i| {
                if i.text.is_empty() {
                    i.id.clone()
                } else {
                    i.text.clone()
                }
            })
            .collect();
        for v in encoder.embed(&texts)? {
            rows.extend(v);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let table = Tensor::from_vec(rows, (dataset.items.len(), encoder.dim()), &Device::Cpu)
        .map_err(|e| cache_error(e.to_string()))?;
    std::fs::create_dir_all(cache_dir).map_err(|e| cache_error(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    table
        .save_safetensors("content", &tmp)
        .map_err(|e| cache_error(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| cache_error(e.to_string()))?;
    Ok(table)
}
