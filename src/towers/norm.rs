//! Layer normalisation built from differentiable tensor ops.
//!
//! candle-nn 0.11's `LayerNorm` runs a fused custom op that has no backward pass: gradients stop
//! at it silently (everything below it never trains). This layer computes the same function with
//! ordinary ops so backpropagation reaches the whole tower.

use candle_core::{Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

#[derive(Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

pub fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(size, "weight", Init::Const(1.0))?,
        bias: vb.get_with_hints(size, "bias", Init::Const(0.0))?,
        eps,
    })
}

impl LayerNorm {
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let centred = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::max_abs_diff;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn matches_candle_and_passes_gradients() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let norm = layer_norm(4, 1e-6, vb.pp("n")).unwrap();
        let x = Var::new(&[[1f32, 2., 3., 6.], [0., -1., 5., 2.]], &Device::Cpu).unwrap();
        let ours = norm.forward(x.as_tensor()).unwrap();
        let ones = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        let reference = candle_nn::ops::layer_norm_slow(
            x.as_tensor(),
            &ones,
            &ones.zeros_like().unwrap(),
            1e-6,
        )
        .unwrap();
        let diff = max_abs_diff(&ours, &reference);
        assert!(diff < 1e-5, "{diff}");
        let weighted = (ours
            * Tensor::new(&[[1f32, 0., 0., 0.], [0., 0., 2., 0.]], &Device::Cpu).unwrap())
        .unwrap();
        let grads = weighted.sum_all().unwrap().backward().unwrap();
        assert!(
            grads.get(x.as_tensor()).is_some(),
            "gradient must reach the input"
        );
    }
}
