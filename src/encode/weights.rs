//! Owns what a frozen model's files hold once read ([`ModelFiles`]): f32 tensors under Hugging Face
//! names, the tokenizer and the architecture's hyper-parameters; and the errors that name a file.
//! The readers: `open.rs` (which one a path needs), `safetensors.rs`, `gguf.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::EncodeError;

/// Hyper-parameters of the three families, read from config.json or GGUF metadata.
#[derive(Debug, Clone)]
pub enum Architecture {
    Bert(candle_transformers::models::bert::Config),
    /// NomicBERT (nomic-embed-text-v1.5): BERT's post-norm blocks with rotary positions, a fused
    /// bias-free q|k|v and a SwiGLU feed-forward.
    NomicBert(candle_transformers::models::nomic_bert::Config),
    /// llama (no attention biases) or qwen2 (q/k/v biases); the same forward pass.
    Decoder(DecoderConfig),
}

impl Architecture {
    /// The task prefix the model was trained to expect before a document (`encoder.prefix =
    /// "auto"`): nomic-embed-text's `clustering: ` (item-to-item similarity is its clustering task);
    /// none for the others.
    pub fn default_prefix(&self) -> &'static str {
        match self {
            Architecture::NomicBert(_) => "clustering: ",
            Architecture::Bert(_) | Architecture::Decoder(_) => "",
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct DecoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

/// Everything an encoder needs from disk.
pub struct ModelFiles {
    pub architecture: Architecture,
    /// f32 tensors on the CPU, Hugging Face names without a `bert.` / `nomic_bert.` prefix.
    pub tensors: HashMap<String, Tensor>,
    pub tokenizer: tokenizers::Tokenizer,
}

pub(crate) fn require(dir: &Path, file: &'static str) -> Result<PathBuf, EncodeError> {
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

pub(crate) fn bad_file(path: &Path, reason: impl ToString) -> EncodeError {
    EncodeError::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl ModelFiles {
    pub fn dim(&self) -> usize {
        match &self.architecture {
            Architecture::Bert(c) => c.hidden_size,
            Architecture::NomicBert(c) => c.n_embd,
            Architecture::Decoder(c) => c.hidden_size,
        }
    }

    pub fn max_positions(&self) -> usize {
        match &self.architecture {
            Architecture::Bert(c) => c.max_position_embeddings,
            Architecture::NomicBert(c) => c.n_positions,
            Architecture::Decoder(c) => c.max_position_embeddings,
        }
    }

    /// A tensor's values, row-major, or an error naming the missing tensor.
    pub fn values(&self, name: &str) -> Result<Vec<f32>, EncodeError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| EncodeError::MissingTensor(name.to_string()))?;
        Ok(t.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The bias-free linear layer `{name}.weight` (`outputs` × `inputs`) on the native kernels.
    pub fn plain_linear(
        &self,
        name: &str,
        outputs: usize,
        inputs: usize,
    ) -> Result<learn_kernels::linear::Linear, EncodeError> {
        let weight = self.values(&format!("{name}.weight"))?;
        Ok(learn_kernels::linear::Linear::new(
            &weight, None, outputs, inputs,
        ))
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}
