//! Owns the small tensor helpers shared by the frozen encoder, the towers and the offline
//! scorers (a bottom module: it depends on candle only).

use candle_core::{Tensor, D};

/// Scales every row (last dimension) of `xs` to unit L2 norm.
pub fn l2_normalise(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norm = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    xs.broadcast_div(&norm)
}

/// Tests: the largest absolute elementwise difference of two tensors of one shape.
#[cfg(test)]
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
        .expect("same shapes")
}
