//! A BERT-family encoder (e.g. all-MiniLM-L6-v2) run by candle.
//!
//! Texts are tokenized one by one, sorted by token length and cut into batches of at most
//! `max_batch`, each padded only to its own longest text (never to the tokenizer file's fixed
//! length). The padding mask goes into attention and into the mean-pool, so a text embedded alone
//! and inside a padded batch gets the same vector.

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{Tokenizer, TruncationParams};

use super::EncodeError;

pub struct ContentEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    model_id: String,
    dim: usize,
    pad_id: u32,
    max_batch: usize,
}

fn require(dir: &Path, file: &'static str) -> Result<std::path::PathBuf, EncodeError> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EncodeError::MissingModel {
            dir: dir.to_path_buf(),
            file,
        })
    }
}

fn bad_file(path: &Path, reason: impl ToString) -> EncodeError {
    EncodeError::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// CUDA when built with the `cuda` feature and a device is present, otherwise CPU.
fn pick_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

impl ContentEncoder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(
        dir: &Path,
        model_id: String,
        max_tokens: usize,
        max_batch: usize,
    ) -> Result<Self, EncodeError> {
        let config_path = require(dir, "config.json")?;
        let tokenizer_path = require(dir, "tokenizer.json")?;
        let weights_path = require(dir, "model.safetensors")?;

        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| bad_file(&config_path, e))?;
        let config: BertConfig =
            serde_json::from_str(&config_text).map_err(|e| bad_file(&config_path, e))?;

        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| bad_file(&tokenizer_path, e))?;
        tokenizer.with_padding(None);
        let max_length = max_tokens.min(config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;

        let device = pick_device();
        // SAFETY: the weights file is memory-mapped read-only and not modified while the model lives.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, &device)? };
        let model = BertModel::load(vb, &config).map_err(|e| bad_file(&weights_path, e))?;
        Ok(Self {
            model,
            tokenizer,
            device,
            model_id,
            dim: config.hidden_size,
            pad_id: config.pad_token_id as u32,
            max_batch: max_batch.max(1),
        })
    }

    /// Loads the encoder described by the `[encoder]` config section.
    pub fn from_config(config: &crate::config::EncoderConfig) -> Result<Self, EncodeError> {
        Self::load(
            &config.model_dir,
            config.resolved_model_id(),
            config.max_tokens,
            config.max_batch,
        )
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds `texts`, returning one unit-length vector per text, in input order.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());

        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.max_batch) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
            let vectors = self.forward_padded(&ids)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One forward pass over token id sequences, padded to the longest of them.
    fn forward_padded(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let batch = sequences.len();
        let len = sequences.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; batch * len];
        let mut mask = vec![0u32; batch * len];
        for (row, seq) in sequences.iter().enumerate() {
            ids[row * len..row * len + seq.len()].copy_from_slice(seq);
            mask[row * len..row * len + seq.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (batch, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch, len), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let pooled = mean_pool_normalised(&hidden, &mask)?;
        Ok(pooled.to_vec2::<f32>()?)
    }
}

/// Mean of `hidden` (batch, len, dim) over the positions where `mask` (batch, len) is 1, then L2-normalised.
pub(crate) fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    super::l2_normalise(&summed.broadcast_div(&counts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_ignores_padding_and_normalises() {
        let hidden = Tensor::new(
            &[[[3f32, 4.], [100., 100.]], [[1., 0.], [3., 0.]]],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(&[[1u32, 0], [1, 1]], &Device::Cpu).unwrap();
        let pooled = mean_pool_normalised(&hidden, &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!((pooled[0][0] - 0.6).abs() < 1e-6 && (pooled[0][1] - 0.8).abs() < 1e-6);
        assert!((pooled[1][0] - 1.0).abs() < 1e-6 && pooled[1][1].abs() < 1e-6);
    }

    #[test]
    fn missing_model_says_how_to_get_one() {
        let err = ContentEncoder::load(Path::new("/nonexistent/model"), "m".into(), 128, 8)
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("config.json") && msg.contains("scripts/fetch-model.sh"),
            "{msg}"
        );
    }
}
