//! The same three families on candle-transformers' models (`encoder.backend = "candle"`): the
//! route to a CUDA device (`--features cuda`) and the plain version the native kernels are
//! tested against. Batches are padded to their longest text with a mask in attention and pooling.

use std::sync::Mutex;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Activation, VarBuilder};
use candle_transformers::models::{bert, nomic_bert, qwen2};

use super::weights::{Architecture, DecoderConfig, ModelFiles};
use super::EncodeError;

pub enum CandleModel {
    Bert(bert::BertModel),
    Nomic(nomic_bert::NomicBertModel),
    /// qwen2's forward pass serves llama too (zero q/k/v biases); it keeps a KV cache, hence the lock.
    Decoder(Mutex<qwen2::Model>),
}

pub struct CandleEncoder {
    model: CandleModel,
    device: Device,
}

/// Whether this build can run the encoder on a GPU (the `cuda` feature and a CUDA device).
pub fn gpu_present() -> bool {
    pick_device().is_cuda()
}

/// CUDA when built with the `cuda` feature and a device is present, otherwise CPU.
fn pick_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

impl CandleEncoder {
    pub fn load(files: ModelFiles) -> Result<Self, EncodeError> {
        let device = pick_device();
        let mut tensors = files.tensors;
        let model = match &files.architecture {
            Architecture::Bert(config) => {
                let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
                CandleModel::Bert(bert::BertModel::load(vb, config)?)
            }
            Architecture::NomicBert(config) => {
                let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
                CandleModel::Nomic(nomic_bert::NomicBertModel::load(vb, config)?)
            }
            Architecture::Decoder(config) => {
                let head_dim = config.hidden_size / config.num_attention_heads;
                for l in 0..config.num_hidden_layers {
                    for (part, heads) in [
                        ("q_proj", config.num_attention_heads),
                        ("k_proj", config.num_key_value_heads),
                        ("v_proj", config.num_key_value_heads),
                    ] {
                        let name = format!("model.layers.{l}.self_attn.{part}.bias");
                        if let std::collections::hash_map::Entry::Vacant(e) = tensors.entry(name) {
                            e.insert(Tensor::zeros(heads * head_dim, DType::F32, &Device::Cpu)?);
                        }
                    }
                }
                let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
                CandleModel::Decoder(Mutex::new(qwen2::Model::new(&qwen2_config(config), vb)?))
            }
        };
        Ok(Self { model, device })
    }

    pub fn on_gpu(&self) -> bool {
        self.device.is_cuda()
    }

    /// Unit-length mean-pooled embeddings, one padded forward pass.
    pub fn embed(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let batch = sequences.len();
        let len = sequences.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; batch * len];
        let mut mask = vec![0u32; batch * len];
        for (row, seq) in sequences.iter().enumerate() {
            ids[row * len..row * len + seq.len()].copy_from_slice(seq);
            mask[row * len..row * len + seq.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (batch, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch, len), &self.device)?;
        let hidden = match &self.model {
            CandleModel::Bert(model) => model.forward(&ids, &ids.zeros_like()?, Some(&mask))?,
            CandleModel::Nomic(model) => model.forward(&ids, None, Some(&mask))?,
            CandleModel::Decoder(model) => {
                let mut model = model.lock().expect("decoder lock");
                // `None`: causal mask (with `Some`, qwen2 switches to bidirectional); right padding
                // never reaches a real token under it.
                let hidden = model.forward(&ids, 0, None);
                model.clear_kv_cache();
                hidden?
            }
        };
        Ok(mean_pool_normalised(&hidden, &mask)?.to_vec2::<f32>()?)
    }
}

fn qwen2_config(c: &DecoderConfig) -> qwen2::Config {
    qwen2::Config {
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads,
        max_position_embeddings: c.max_position_embeddings,
        sliding_window: c.max_position_embeddings,
        max_window_layers: c.num_hidden_layers,
        tie_word_embeddings: c.tie_word_embeddings,
        rope_theta: c.rope_theta,
        rms_norm_eps: c.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: Activation::Silu,
    }
}

/// Mean of `hidden` (batch, len, dim) over the positions where `mask` (batch, len) is 1, then L2-normalised.
pub(crate) fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    crate::tensor::l2_normalise(&summed.broadcast_div(&counts)?)
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
}
