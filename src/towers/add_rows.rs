//! `x + v`, `v` repeated over `x`'s leading rows (a linear layer's bias, the position table over a
//! batch), as a candle op whose backward sums the gradient's rows in one contiguous pass. Candle's
//! `broadcast_add` reduces that gradient with a strided, element-at-a-time sum: a sixth of a
//! training step went there.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fused::{f32_data, output, with_data, ROWS_PER_TASK};

struct AddRows;

impl CustomOp2 for AddRows {
    fn name(&self) -> &'static str {
        "add-rows"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, v) = (f32_data(xs, xl)?, f32_data(vs, vl)?);
        let mut out = x.to_vec();
        out.par_chunks_mut(v.len() * ROWS_PER_TASK)
            .for_each(|rows| {
                for row in rows.chunks_exact_mut(v.len()) {
                    row.iter_mut().zip(v).for_each(|(y, b)| *y += b);
                }
            });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let width = v.elem_count();
        let sums = with_data(grad, |g| column_sums(g, width))?;
        Ok((
            Some(grad.clone()),
            Some(output(sums, v.shape().clone(), v)?),
        ))
    }
}

/// Sums of the `width`-wide rows of `data`, column by column (partial sums per block of rows,
/// added in block order: deterministic).
pub fn column_sums(data: &[f32], width: usize) -> Vec<f32> {
    let partial: Vec<Vec<f32>> = data
        .par_chunks(width * ROWS_PER_TASK)
        .map(|rows| {
            let mut acc = vec![0f32; width];
            for row in rows.chunks_exact(width) {
                acc.iter_mut().zip(row).for_each(|(a, g)| *a += g);
            }
            acc
        })
        .collect();
    let mut sums = vec![0f32; width];
    for block in partial {
        sums.iter_mut().zip(&block).for_each(|(s, b)| *s += b);
    }
    sums
}

/// `xs + v` with `v` (any shape whose element count divides the trailing part of `xs`) repeated
/// over the leading rows; differentiable in both.
pub fn add_rows(xs: &Tensor, v: &Tensor) -> Result<Tensor> {
    let width = v.elem_count();
    if width == 0 || !xs.elem_count().is_multiple_of(width) {
        candle_core::bail!(
            "add-rows: {:?} does not repeat over {:?}",
            v.shape(),
            xs.shape()
        );
    }
    xs.contiguous()?.apply_op2(&v.contiguous()?, AddRows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::max_abs_diff;
    use candle_core::{Device, Var};

    #[test]
    fn matches_broadcast_add_value_and_gradients() {
        let x = Var::from_vec(
            (0..2 * 3 * 4).map(|i| (i as f32 * 0.37).sin()).collect(),
            (2, 3, 4),
            &Device::Cpu,
        )
        .unwrap();
        for v_shape in [vec![4], vec![3, 4]] {
            let n: usize = v_shape.iter().product();
            let v = Var::from_vec(
                (0..n).map(|i| (i as f32 * 0.71).cos()).collect(),
                v_shape.as_slice(),
                &Device::Cpu,
            )
            .unwrap();
            let weights = x.as_tensor().cos().unwrap();
            let ours = add_rows(x.as_tensor(), v.as_tensor()).unwrap();
            let theirs = x.as_tensor().broadcast_add(v.as_tensor()).unwrap();
            assert_eq!(max_abs_diff(&ours, &theirs), 0.0);
            let loss = |y: Tensor| (y * &weights).unwrap().sum_all().unwrap();
            let (a, b) = (
                loss(ours).backward().unwrap(),
                loss(theirs).backward().unwrap(),
            );
            for var in [&x, &v] {
                let diff = max_abs_diff(a.get(var).unwrap(), b.get(var).unwrap());
                assert!(diff < 1e-6, "{v_shape:?}: gradient off by {diff}");
            }
        }
    }
}
