//! Multi-head self-attention with an additive mask (0 = attend, -inf = blocked) and dropout on the
//! attention weights.

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use super::linear::{linear, Linear};

use super::init::SeededDropout;

#[derive(Clone)]
pub struct SelfAttention {
    qkv: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
    dropout: SeededDropout,
}

impl SelfAttention {
    pub fn new(
        d_model: usize,
        heads: usize,
        dropout: SeededDropout,
        vb: VarBuilder,
    ) -> Result<Self> {
        assert!(
            d_model.is_multiple_of(heads),
            "d_model must be divisible by heads"
        );
        Ok(Self {
            qkv: linear(d_model, 3 * d_model, vb.pp("qkv"))?,
            out: linear(d_model, d_model, vb.pp("out"))?,
            heads,
            head_dim: d_model / heads,
            dropout,
        })
    }

    pub fn reseed_dropout(&self, seed: u64) {
        self.dropout.reseed(seed);
    }

    /// `xs`: (batch, len, d_model); `mask`: (len, len), added to the attention logits.
    pub fn forward(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let (b, l, d) = xs.dims3()?;
        if l == 1 {
            return self.single(xs, train);
        }
        let qkv = self
            .qkv
            .forward(xs)?
            .reshape((b, l, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (
            qkv.get(0)?.contiguous()?,
            qkv.get(1)?.contiguous()?,
            qkv.get(2)?.contiguous()?,
        );
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let logits = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(mask)?;
        let weights = self
            .dropout
            .forward(&candle_nn::ops::softmax(&logits, D::Minus1)?, train)?;
        let context = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        self.out.forward(&context)
    }

    /// The attention outputs at `anchors` only ((P) flat indices row × len + position into
    /// `xs`: (batch, len, d_model)) → (P, d_model). Keys and values come from every position,
    /// queries from the anchors alone; an anchor attends to its own row up to its own position
    /// (the causal mask). The last block of a step whose loss reads a few positions per row.
    pub fn forward_rows(&self, xs: &Tensor, anchors: &[u32], train: bool) -> Result<Tensor> {
        let (b, l, d) = xs.dims3()?;
        let (p, device) = (anchors.len(), xs.device());
        let flat = xs.reshape((b * l, d))?;
        let at = Tensor::new(anchors, device)?;
        let q = self
            .qkv_rows(0, d)?
            .forward(&flat.index_select(&at, 0)?)?
            .reshape((p, 1, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let row_of: Vec<u32> = anchors.iter().map(|&a| a / l as u32).collect();
        let kv = self
            .qkv_rows(d, 2 * d)?
            .forward(&flat)?
            .reshape((b, l * 2 * d))?
            .index_select(&Tensor::new(row_of.as_slice(), device)?, 0)?
            .reshape((p, l, 2, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?;
        let (k, v) = (kv.get(0)?.contiguous()?, kv.get(1)?.contiguous()?);
        let mask: Vec<f32> = anchors
            .iter()
            .flat_map(|&a| {
                let position = a as usize % l;
                (0..l).map(move |j| {
                    if j <= position {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (p, 1, 1, l), device)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let logits = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&mask)?;
        let weights = self
            .dropout
            .forward(&candle_nn::ops::softmax(&logits, D::Minus1)?, train)?;
        let context = weights.matmul(&v)?.reshape((p, d))?;
        self.out.forward(&context)
    }

    /// Rows `from..from + n` of the fused q/k/v projection (0: queries, d_model: keys, 2 ×
    /// d_model: values) as a layer of its own, sharing the variables.
    fn qkv_rows(&self, from: usize, n: usize) -> Result<Linear> {
        let bias = self.qkv.bias().map(|t| t.narrow(0, from, n)).transpose()?;
        Ok(Linear::new(self.qkv.weight().narrow(0, from, n)?, bias))
    }

    /// One position attends to itself with weight exactly 1 (the item tower): the context is the
    /// value projection alone — the query and key rows of `qkv`, the scores and the softmax are
    /// never computed; the dropout on that weight stays (same masks as the general path).
    fn single(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let (b, _, d) = xs.dims3()?;
        let v = self.qkv_rows(2 * d, d)?.forward(xs)?;
        let context = if train && self.dropout.active() {
            let ones = Tensor::ones((b, self.heads, 1, 1), xs.dtype(), xs.device())?;
            let weights = self.dropout.forward(&ones, train)?;
            v.reshape((b, self.heads, 1, self.head_dim))?
                .broadcast_mul(&weights)?
                .reshape((b, 1, d))?
        } else {
            v
        };
        self.out.forward(&context)
    }
}

/// (len, len) additive mask: position i may attend to j ≤ i only.
pub fn causal_mask(len: usize, device: &candle_core::Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..len)
        .flat_map(|i| (0..len).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::from_vec(values, (len, len), device)
}
