//! NomicBERT (nomic-embed-text-v1.5) on the native kernels: BERT's packed, padding-free batch
//! and post-norm blocks, with rotary positions (NEOX halves, as the decoders) instead of a
//! position table, a bias-free fused q|k|v and a SwiGLU feed-forward (`fc2(fc11(x) · silu(fc12(x)))`);
//! bidirectional attention over each sequence's own tokens, mean-pooled and L2-normalised.

use super::bert::Norm;
use super::tokens::packed_rows;
use super::weights::ModelFiles;
use super::EncodeError;
use candle_transformers::models::nomic_bert::Config;
use learn_kernels::attention::{attention, Heads};
use learn_kernels::linear::Linear;
use learn_kernels::rope::Rotary;
use learn_kernels::{math, mean_pool_normalised, par_rows2, Team};

struct Layer {
    qkv: Linear,
    output: Linear,
    attention_norm: Norm,
    /// `fc12`, through SiLU.
    gate: Linear,
    /// `fc11`, the value the gate scales.
    up: Linear,
    down: Linear,
    output_norm: Norm,
}

pub struct NativeNomic {
    /// Word embeddings with token type 0's row already added (every text is one segment), so a
    /// token's input is one row copy.
    word: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    rotary: Rotary,
    heads: Heads,
    hidden: usize,
    intermediate: usize,
    eps: f32,
}

impl NativeNomic {
    /// `max_tokens` bounds the rotary table (texts are truncated to it).
    pub fn load(
        files: &ModelFiles,
        config: &Config,
        max_tokens: usize,
    ) -> Result<Self, EncodeError> {
        let (h, i) = (config.n_embd, config.n_inner);
        let plain = |name: &str, outputs, inputs| files.plain_linear(name, outputs, inputs);
        let heads = Heads {
            query: config.n_head,
            key_value: config.n_head,
            dim: h / config.n_head,
        };
        let mut layers = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let p = format!("encoder.layers.{l}");
            layers.push(Layer {
                qkv: plain(&format!("{p}.attn.Wqkv"), 3 * h, h)?,
                output: plain(&format!("{p}.attn.out_proj"), h, h)?,
                attention_norm: Norm::load(files, &format!("{p}.norm1"))?,
                gate: plain(&format!("{p}.mlp.fc12"), i, h)?,
                up: plain(&format!("{p}.mlp.fc11"), i, h)?,
                down: plain(&format!("{p}.mlp.fc2"), h, i)?,
                output_norm: Norm::load(files, &format!("{p}.norm2"))?,
            });
        }
        let mut word = files.values("embeddings.word_embeddings.weight")?;
        let token_type = files.values("embeddings.token_type_embeddings.weight")?;
        for row in word.chunks_exact_mut(h) {
            row.iter_mut()
                .zip(&token_type[..h])
                .for_each(|(w, t)| *w += t);
        }
        Ok(Self {
            word,
            embedding_norm: Norm::load(files, "emb_ln")?,
            layers,
            rotary: Rotary::new(
                heads.dim,
                max_tokens.min(config.n_positions),
                config.rotary_emb_base,
            ),
            heads,
            hidden: h,
            intermediate: i,
            eps: config.layer_norm_epsilon as f32,
        })
    }

    /// Unit-length mean-pooled embeddings of token sequences, computed by `team`.
    pub fn embed(&self, team: &Team, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let h = self.hidden;
        let spans = learn_kernels::spans(sequences);
        let tokens: usize = spans.iter().map(|s| s.1).sum();
        let mut x = packed_rows(&self.word, h, sequences, self.rotary.positions())?;
        let layer_norm = |xs: &mut [f32], n: &Norm| n.apply(team, xs, h, self.eps);
        layer_norm(&mut x, &self.embedding_norm);
        let mut qkv = vec![0f32; tokens * self.heads.qkv_width()];
        let mut context = vec![0f32; tokens * h];
        let mut gate = vec![0f32; tokens * self.intermediate];
        let mut up = vec![0f32; tokens * self.intermediate];
        for layer in &self.layers {
            layer.qkv.forward(team, &x, tokens, &mut qkv, false);
            self.rotary.apply(&mut qkv, &spans, self.heads);
            attention(team, &qkv, &mut context, &spans, self.heads, false);
            layer.output.forward(team, &context, tokens, &mut x, true);
            layer_norm(&mut x, &layer.attention_norm);
            layer.gate.forward(team, &x, tokens, &mut gate, false);
            layer.up.forward(team, &x, tokens, &mut up, false);
            par_rows2(team, &mut gate, &up, self.intermediate, math::silu_mul);
            layer.down.forward(team, &gate, tokens, &mut x, true);
            layer_norm(&mut x, &layer.output_norm);
        }
        Ok(mean_pool_normalised(&x, h, &spans))
    }
}
