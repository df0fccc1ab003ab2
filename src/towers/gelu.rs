//! GELU (exact erf form, as BERT) as a candle op with its own backward, on the vectorised kernels
//! of `learn-kernels`: candle's tanh-approximation GELU and its autograd graph (tanh, powf,
//! expm1 per element) were a fifth of a training step.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fused::f32_data;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// `f` applied in place to a copy of a contiguous f32 tensor's data, chunks in parallel.
fn map(storage: &CpuStorage, layout: &Layout, f: fn(&mut [f32])) -> Result<(CpuStorage, Shape)> {
    let mut out = f32_data(storage, layout)?.to_vec();
    out.par_chunks_mut(CHUNK).for_each(f);
    Ok((CpuStorage::F32(out), layout.shape().clone()))
}

struct Gelu;
struct GeluGrad;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf-fast"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        map(storage, layout, learn_kernels::math::gelu)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Some(arg.apply_op1_no_bwd(&GeluGrad)?.mul(grad_res)).transpose()
    }
}

impl CustomOp1 for GeluGrad {
    fn name(&self) -> &'static str {
        "gelu-erf-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        map(storage, layout, learn_kernels::math::gelu_grad)
    }
}

/// x·Φ(x), differentiable.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(Gelu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::max_abs_diff;
    use candle_core::{Device, Var};

    #[test]
    fn forward_and_gradient_match_candles_gelu_erf() {
        let values: Vec<f32> = (-3000..3000).map(|i| i as f32 * 2e-3).collect();
        let (ours, reference) = (
            Var::new(values.as_slice(), &Device::Cpu).unwrap(),
            Var::new(values.as_slice(), &Device::Cpu).unwrap(),
        );
        let weights = Tensor::new(values.as_slice(), &Device::Cpu)
            .unwrap()
            .cos()
            .unwrap();
        let a = gelu(ours.as_tensor()).unwrap();
        let b = reference.as_tensor().gelu_erf().unwrap();
        assert!(max_abs_diff(&a, &b) < 2e-6);
        let ga = (a * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = (b * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (ga, gb) = (
            ga.get(ours.as_tensor()).unwrap(),
            gb.get(reference.as_tensor()).unwrap(),
        );
        assert!(
            max_abs_diff(ga, gb) < 1e-5,
            "gradient differs by {}",
            max_abs_diff(ga, gb)
        );
    }
}
