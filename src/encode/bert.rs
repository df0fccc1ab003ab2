//! A BERT-family encoder (e.g. all-MiniLM-L6-v2) on the native kernels: the whole batch's tokens
//! packed without padding, one gemm per linear layer (q, k and v fused into one), attention per
//! sequence over its real tokens, GELU and LayerNorm vectorised in place.

use super::weights::ModelFiles;
use super::EncodeError;
use candle_transformers::models::bert::Config;
use learn_kernels::attention::{attention, Heads};
use learn_kernels::linear::Linear;
use learn_kernels::{math, mean_pool_normalised, norm, par_rows, Team};

/// A LayerNorm's scale and shift (shared with NomicBERT's post-norm blocks).
pub(super) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl Norm {
    pub fn load(files: &ModelFiles, prefix: &str) -> Result<Self, EncodeError> {
        Ok(Self {
            gamma: files.values(&format!("{prefix}.weight"))?,
            beta: files.values(&format!("{prefix}.bias"))?,
        })
    }

    /// Normalises every `width`-wide row of `xs` in place, rows shared out over `team`.
    pub fn apply(&self, team: &Team, xs: &mut [f32], width: usize, eps: f32) {
        par_rows(team, xs, width, |rows| {
            norm::layer_norm(rows, &self.gamma, &self.beta, eps)
        })
    }
}

struct Layer {
    qkv: Linear,
    output: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    output_norm: Norm,
}

pub struct NativeBert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: Heads,
    hidden: usize,
    intermediate: usize,
    vocab: usize,
    eps: f32,
}

impl NativeBert {
    pub fn load(files: &ModelFiles, config: &Config) -> Result<Self, EncodeError> {
        let norm = |prefix: &str| Norm::load(files, prefix);
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let linear = |prefix: &str, outputs: usize, inputs: usize| -> Result<Linear, EncodeError> {
            Ok(Linear::new(
                &files.values(&format!("{prefix}.weight"))?,
                Some(files.values(&format!("{prefix}.bias"))?),
                outputs,
                inputs,
            ))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let mut weight = Vec::with_capacity(3 * h * h);
            let mut bias = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                weight.extend(files.values(&format!("{p}.attention.self.{part}.weight"))?);
                bias.extend(files.values(&format!("{p}.attention.self.{part}.bias"))?);
            }
            layers.push(Layer {
                qkv: Linear::new(&weight, Some(bias), 3 * h, h),
                output: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: linear(&format!("{p}.intermediate.dense"), i, h)?,
                down: linear(&format!("{p}.output.dense"), h, i)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let heads = config.num_attention_heads;
        Ok(Self {
            word: files.values("embeddings.word_embeddings.weight")?,
            position: files.values("embeddings.position_embeddings.weight")?,
            token_type: files.values("embeddings.token_type_embeddings.weight")?[..h].to_vec(),
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            heads: Heads {
                query: heads,
                key_value: heads,
                dim: h / heads,
            },
            hidden: h,
            intermediate: i,
            vocab: config.vocab_size,
            eps: config.layer_norm_eps as f32,
        })
    }

    /// Unit-length mean-pooled embeddings of token sequences, computed by `team`.
    pub fn embed(&self, team: &Team, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let h = self.hidden;
        let spans = learn_kernels::spans(sequences);
        let tokens: usize = spans.iter().map(|s| s.1).sum();
        let mut x = vec![0f32; tokens * h];
        for (seq, &(start, _)) in sequences.iter().zip(&spans) {
            for (p, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab || (p + 1) * h > self.position.len() {
                    return Err(EncodeError::Tokenizer(format!(
                        "token {id} at position {p} is out of range"
                    )));
                }
                let row = &mut x[(start + p) * h..(start + p + 1) * h];
                let word = &self.word[id * h..(id + 1) * h];
                let position = &self.position[p * h..(p + 1) * h];
                for (((v, w), q), t) in row.iter_mut().zip(word).zip(position).zip(&self.token_type)
                {
                    *v = w + q + t;
                }
            }
        }
        let layer_norm = |xs: &mut [f32], n: &Norm| n.apply(team, xs, h, self.eps);
        layer_norm(&mut x, &self.embedding_norm);
        let mut qkv = vec![0f32; tokens * self.heads.qkv_width()];
        let mut context = vec![0f32; tokens * h];
        let mut inner = vec![0f32; tokens * self.intermediate];
        for layer in &self.layers {
            layer.qkv.forward(team, &x, tokens, &mut qkv, false);
            attention(team, &qkv, &mut context, &spans, self.heads, false);
            layer.output.forward(team, &context, tokens, &mut x, true);
            layer_norm(&mut x, &layer.attention_norm);
            layer
                .up
                .forward_then(team, &x, tokens, &mut inner, false, math::gelu);
            layer.down.forward(team, &inner, tokens, &mut x, true);
            layer_norm(&mut x, &layer.output_norm);
        }
        Ok(mean_pool_normalised(&x, h, &spans))
    }
}
