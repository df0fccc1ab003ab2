//! A decoder LLM (llama or qwen2 architecture, e.g. SmolLM2-135M) as a frozen encoder on the
//! native kernels, as in LEARN: the last layer's hidden states (after the final RMSNorm),
//! mean-pooled over the real tokens. Causal attention over each packed sequence alone is exactly
//! "causal mask with right padding" without computing the padding.

use super::tokens::packed_rows;
use super::weights::{DecoderConfig, ModelFiles};
use super::EncodeError;
use learn_kernels::attention::{attention, Heads};
use learn_kernels::linear::Linear;
use learn_kernels::rope::Rotary;
use learn_kernels::{math, mean_pool_normalised, norm, par_rows2, Team};

struct Layer {
    attention_norm: Vec<f32>,
    /// q | k | v fused; qwen2's biases included, llama has none.
    qkv: Linear,
    output: Linear,
    mlp_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

pub struct NativeDecoder {
    embed: Vec<f32>,
    layers: Vec<Layer>,
    final_norm: Vec<f32>,
    rotary: Rotary,
    heads: Heads,
    hidden: usize,
    intermediate: usize,
    eps: f32,
}

impl NativeDecoder {
    /// `max_tokens` bounds the rotary table (texts are truncated to it).
    pub fn load(
        files: &ModelFiles,
        config: &DecoderConfig,
        max_tokens: usize,
    ) -> Result<Self, EncodeError> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let heads = Heads {
            query: config.num_attention_heads,
            key_value: config.num_key_value_heads,
            dim: h / config.num_attention_heads,
        };
        let plain = |name: &str, outputs, inputs| files.plain_linear(name, outputs, inputs);
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut weight = Vec::with_capacity(heads.qkv_width() * h);
            let mut bias = Vec::with_capacity(heads.qkv_width());
            for part in ["q_proj", "k_proj", "v_proj"] {
                weight.extend(files.values(&format!("{p}.self_attn.{part}.weight"))?);
                let name = format!("{p}.self_attn.{part}.bias");
                if files.has(&name) {
                    bias.extend(files.values(&name)?);
                }
            }
            let bias = (!bias.is_empty()).then_some(bias);
            layers.push(Layer {
                attention_norm: files.values(&format!("{p}.input_layernorm.weight"))?,
                qkv: Linear::new(&weight, bias, heads.qkv_width(), h),
                output: plain(&format!("{p}.self_attn.o_proj"), h, heads.context_width())?,
                mlp_norm: files.values(&format!("{p}.post_attention_layernorm.weight"))?,
                gate: plain(&format!("{p}.mlp.gate_proj"), i, h)?,
                up: plain(&format!("{p}.mlp.up_proj"), i, h)?,
                down: plain(&format!("{p}.mlp.down_proj"), h, i)?,
            });
        }
        Ok(Self {
            embed: files.values("model.embed_tokens.weight")?,
            layers,
            final_norm: files.values("model.norm.weight")?,
            rotary: Rotary::new(
                heads.dim,
                max_tokens.min(config.max_position_embeddings),
                config.rope_theta,
            ),
            heads,
            hidden: h,
            intermediate: i,
            eps: config.rms_norm_eps as f32,
        })
    }

    /// Unit-length mean-pooled embeddings of token sequences, computed by `team`.
    pub fn embed(&self, team: &Team, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let h = self.hidden;
        let spans = learn_kernels::spans(sequences);
        let tokens: usize = spans.iter().map(|s| s.1).sum();
        let mut x = packed_rows(&self.embed, h, sequences, self.rotary.positions())?;
        let mut normed = vec![0f32; tokens * h];
        let mut qkv = vec![0f32; tokens * self.heads.qkv_width()];
        let mut context = vec![0f32; tokens * self.heads.context_width()];
        let mut gate = vec![0f32; tokens * self.intermediate];
        let mut up = vec![0f32; tokens * self.intermediate];
        for layer in &self.layers {
            norm::rms_norm(&x, &mut normed, &layer.attention_norm, self.eps);
            layer.qkv.forward(team, &normed, tokens, &mut qkv, false);
            self.rotary.apply(&mut qkv, &spans, self.heads);
            attention(team, &qkv, &mut context, &spans, self.heads, true);
            layer.output.forward(team, &context, tokens, &mut x, true);
            norm::rms_norm(&x, &mut normed, &layer.mlp_norm, self.eps);
            layer.gate.forward(team, &normed, tokens, &mut gate, false);
            layer.up.forward(team, &normed, tokens, &mut up, false);
            par_rows2(team, &mut gate, &up, self.intermediate, math::silu_mul);
            layer.down.forward(team, &gate, tokens, &mut x, true);
        }
        norm::rms_norm(&x, &mut normed, &self.final_norm, self.eps);
        Ok(mean_pool_normalised(&normed, h, &spans))
    }
}
