//! A linear layer over the last dimension: the input's rows through one 2-D matrix product, the
//! bias added by [`add_rows`]. candle-nn's `Linear` multiplies a 3-D input by the weight broadcast
//! over the batch — so the weight's gradient is a per-sequence stack summed by a strided
//! reduction — and adds the bias with `broadcast_add` (another one).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::add_rows::add_rows;

#[derive(Clone)]
pub struct Linear {
    /// (out, in), as candle-nn and PyTorch store it.
    weight: Tensor,
    bias: Option<Tensor>,
}

/// A layer with candle-nn's variables (`weight`, `bias` under `vb`).
pub fn linear(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Linear> {
    let layer = candle_nn::linear(inputs, outputs, vb)?;
    Ok(Linear::new(layer.weight().clone(), layer.bias().cloned()))
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// (…, in) → (…, out).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut dims = xs.dims().to_vec();
        let inputs = dims.pop().unwrap_or(1);
        let rows = xs.elem_count() / inputs.max(1);
        let ys = xs.reshape((rows, inputs))?.matmul(&self.weight.t()?)?;
        let ys = match &self.bias {
            Some(bias) => add_rows(&ys, bias)?,
            None => ys,
        };
        dims.push(self.weight.dim(0)?);
        ys.reshape(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::max_abs_diff;
    use candle_core::{DType, Device, Module};
    use candle_nn::VarMap;

    #[test]
    fn matches_candle_nn_linear_value_and_gradients() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ours = linear(6, 5, vb.pp("l")).unwrap();
        let theirs = candle_nn::Linear::new(ours.weight().clone(), ours.bias().cloned());
        let x = candle_core::Var::from_vec(
            (0..2 * 3 * 6).map(|i| (i as f32 * 0.3).sin()).collect(),
            (2, 3, 6),
            &Device::Cpu,
        )
        .unwrap();
        let (a, b) = (
            ours.forward(x.as_tensor()).unwrap(),
            theirs.forward(x.as_tensor()).unwrap(),
        );
        assert!(max_abs_diff(&a, &b) < 1e-6);
        let weights = a.cos().unwrap();
        let loss = |y: Tensor| (y * &weights).unwrap().sum_all().unwrap();
        let (ga, gb) = (loss(a).backward().unwrap(), loss(b).backward().unwrap());
        let vars = varmap.all_vars();
        for t in vars.iter().map(|v| v.as_tensor()).chain([x.as_tensor()]) {
            let diff = max_abs_diff(ga.get(t).unwrap(), gb.get(t).unwrap());
            assert!(diff < 1e-5, "gradient off by {diff}");
        }
    }
}
