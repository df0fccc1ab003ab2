//! Layer normalisation as one candle op with its own backward (forward and gradients of x, the
//! weight and the bias in one pass over the rows each).
//!
//! candle-nn 0.11's `LayerNorm` runs a fused custom op that has no backward pass: gradients stop
//! at it silently (everything below it never trains). Built from ordinary ops instead (mean,
//! subtract, square, mean, sqrt, divide, scale, shift), each application left eight nodes and their
//! gradients' broadcasts and strided reductions in the graph; twelve applications a step.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

use super::fused::{f32_data, output, with_data, ROWS_PER_TASK};

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
    /// Normalises the last dimension of `xs`, then scales by the weight and shifts by the bias.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.contiguous()?.apply_op3(
            &self.weight,
            &self.bias,
            Norm {
                eps: self.eps as f32,
            },
        )
    }
}

struct Norm {
    eps: f32,
}

/// Mean and 1/σ of a row.
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = learn_kernels::sum(row) / n;
    let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for Norm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_data(xs, xl)?, f32_data(ws, wl)?, f32_data(bs, bl)?);
        let d = w.len();
        let mut out = x.to_vec();
        out.par_chunks_mut(d * ROWS_PER_TASK).for_each(|rows| {
            for row in rows.chunks_exact_mut(d) {
                let (mean, rstd) = moments(row, self.eps);
                for ((y, w), b) in row.iter_mut().zip(w).zip(b) {
                    *y = (*y - mean) * rstd * w + b;
                }
            }
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    /// With x̂ = (x − μ)/σ and g the incoming gradient: ∂bias = Σ g, ∂weight = Σ g·x̂ (over rows),
    /// ∂x = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ for ĝ = g·weight.
    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let w = with_data(weight, <[f32]>::to_vec)?;
        let (dx, dw, db) = with_data(grad, |g| with_data(x, |x| backward(x, g, &w, self.eps)))??;
        Ok((
            Some(output(dx, x.shape().clone(), x)?),
            Some(output(dw, weight.shape().clone(), weight)?),
            Some(output(db, bias.shape().clone(), bias)?),
        ))
    }
}

/// (∂x, ∂weight, ∂bias) of the rows of `x` (as wide as `w`) for the incoming gradient `g`.
/// Rows in parallel blocks; the weight and bias sums added in block order (deterministic).
fn backward(x: &[f32], g: &[f32], w: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = w.len();
    let mut dx = vec![0f32; x.len()];
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(d * ROWS_PER_TASK)
        .zip(x.par_chunks(d * ROWS_PER_TASK))
        .zip(g.par_chunks(d * ROWS_PER_TASK))
        .map(|((dxs, xs), gs)| {
            let (mut dw, mut db, mut hat) = (vec![0f32; d], vec![0f32; d], vec![0f32; d]);
            for ((x, g), dx) in xs
                .chunks_exact(d)
                .zip(gs.chunks_exact(d))
                .zip(dxs.chunks_exact_mut(d))
            {
                let (mean, rstd) = moments(x, eps);
                let (mut sum_g, mut sum_gx) = (0f32, 0f32);
                for j in 0..d {
                    hat[j] = (x[j] - mean) * rstd;
                    let gw = g[j] * w[j];
                    sum_g += gw;
                    sum_gx += gw * hat[j];
                    dw[j] += g[j] * hat[j];
                    db[j] += g[j];
                }
                let (mean_g, mean_gx) = (sum_g / d as f32, sum_gx / d as f32);
                for j in 0..d {
                    dx[j] = (g[j] * w[j] - mean_g - hat[j] * mean_gx) * rstd;
                }
            }
            (dw, db)
        })
        .collect();
    let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
    for (bw, bb) in partial {
        dw.iter_mut().zip(&bw).for_each(|(a, v)| *a += v);
        db.iter_mut().zip(&bb).for_each(|(a, v)| *a += v);
    }
    (dx, dw, db)
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

    /// The function as ordinary candle ops, differentiated by candle's autograd.
    fn composed(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Tensor {
        let centred = xs
            .broadcast_sub(&xs.mean_keepdim(candle_core::D::Minus1).unwrap())
            .unwrap();
        let variance = centred
            .sqr()
            .unwrap()
            .mean_keepdim(candle_core::D::Minus1)
            .unwrap();
        let normed = centred
            .broadcast_div(&(variance + eps).unwrap().sqrt().unwrap())
            .unwrap();
        normed
            .broadcast_mul(weight)
            .unwrap()
            .broadcast_add(bias)
            .unwrap()
    }

    #[test]
    fn gradients_match_candle_autograd_of_the_composed_ops() {
        let (rows, d) = (300, 16);
        let var = |n: usize, f: fn(f32) -> f32, shape: &[usize]| {
            Var::from_vec((0..n).map(|i| f(i as f32)).collect(), shape, &Device::Cpu).unwrap()
        };
        let x = var(
            rows * d,
            |i| (i * 0.37).sin() * 3.0 + 1.0,
            &[3, rows / 3, d],
        );
        let w = var(d, |i| 1.0 + (i * 0.5).cos() * 0.3, &[d]);
        let b = var(d, |i| (i * 0.9).sin() * 0.2, &[d]);
        let norm = LayerNorm {
            weight: w.as_tensor().clone(),
            bias: b.as_tensor().clone(),
            eps: 1e-6,
        };
        let weights = x.as_tensor().cos().unwrap();
        let ours = norm.forward(x.as_tensor()).unwrap();
        let theirs = composed(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-6);
        assert!(max_abs_diff(&ours, &theirs) < 1e-5);
        let loss = |y: Tensor| (y * &weights).unwrap().sum_all().unwrap();
        let (a, c) = (
            loss(ours).backward().unwrap(),
            loss(theirs).backward().unwrap(),
        );
        for (name, v) in [("x", &x), ("weight", &w), ("bias", &b)] {
            let diff = max_abs_diff(a.get(v).unwrap(), c.get(v).unwrap());
            assert!(diff < 1e-4, "{name}: gradient off by {diff}");
        }
    }
}
