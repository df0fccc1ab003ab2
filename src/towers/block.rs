//! One transformer block: self-attention and a GELU MLP, each with a residual connection and layer
//! norm, placed before (pre-LN) or after (post-LN, as in BERT) the sublayer.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::linear::{linear, Linear};

use super::norm::{layer_norm, LayerNorm};

use super::attention::SelfAttention;
use super::gelu::gelu;
use super::init::SeededDropout;

#[derive(Clone)]
pub struct Block {
    attention: SelfAttention,
    norm1: LayerNorm,
    up: Linear,
    down: Linear,
    norm2: LayerNorm,
    dropout: SeededDropout,
    pre_ln: bool,
}

impl Block {
    /// `dropout` acts on each sublayer's output (hidden dropout), `attn_dropout` on the attention
    /// weights.
    pub fn new(
        d_model: usize,
        heads: usize,
        dropout: SeededDropout,
        attn_dropout: SeededDropout,
        pre_ln: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            attention: SelfAttention::new(d_model, heads, attn_dropout, vb.pp("attention"))?,
            norm1: layer_norm(d_model, 1e-6, vb.pp("norm1"))?,
            up: linear(d_model, 4 * d_model, vb.pp("up"))?,
            down: linear(4 * d_model, d_model, vb.pp("down"))?,
            norm2: layer_norm(d_model, 1e-6, vb.pp("norm2"))?,
            dropout,
            pre_ln,
        })
    }

    pub fn reseed_dropout(&self, seed: u64) {
        self.dropout.reseed(seed);
        self.attention.reseed_dropout(seed.wrapping_add(500));
    }

    fn mlp(&self, xs: &Tensor) -> Result<Tensor> {
        self.down.forward(&gelu(&self.up.forward(xs)?)?)
    }

    /// The block's outputs at `anchors` only ((P) flat indices row × len + position into `xs`:
    /// (batch, len, d_model)) → (P, d_model): attention reads every position, the rest runs on
    /// the anchors' rows alone.
    pub fn forward_rows(&self, xs: &Tensor, anchors: &[u32], train: bool) -> Result<Tensor> {
        let (b, l, d) = xs.dims3()?;
        let at = Tensor::new(anchors, xs.device())?;
        let own = xs.reshape((b * l, d))?.index_select(&at, 0)?;
        self.sublayers(xs, &own, train, |h| {
            self.attention.forward_rows(h, anchors, train)
        })
    }

    pub fn forward(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        self.sublayers(xs, xs, train, |h| self.attention.forward(h, mask, train))
    }

    /// Attention over `xs` (normalised first when pre-LN) added to `own` (the rows it updates:
    /// `xs` itself, or some of its rows), then the MLP, each with its residual and layer norm.
    fn sublayers(
        &self,
        xs: &Tensor,
        own: &Tensor,
        train: bool,
        attend: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        if self.pre_ln {
            let xs = (own
                + self
                    .dropout
                    .forward(&attend(&self.norm1.forward(xs)?)?, train)?)?;
            &xs + self
                .dropout
                .forward(&self.mlp(&self.norm2.forward(&xs)?)?, train)?
        } else {
            let xs = self
                .norm1
                .forward(&(own + self.dropout.forward(&attend(xs)?, train)?)?)?;
            self.norm2
                .forward(&(&xs + self.dropout.forward(&self.mlp(&xs)?, train)?)?)
        }
    }
}
