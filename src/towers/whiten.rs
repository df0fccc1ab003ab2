//! Content whitening (`towers.whiten`): the frozen content vectors, centred and decorrelated, then
//! re-normalised, before the adapter reads them.
//!
//! A sentence encoder's space is anisotropic (MiniLM on Scientific: mean vector norm 0.48, the top
//! covariance eigenvalue 55× the median), so cosines crowd together and a linear adapter learns the
//! thin directions slowly. Whitening (as in BERT-whitening, UniSRec's parametric whitening) fixes
//! the geometry before training: x' = normalise((x − μ) W) with Wᵀ (C + εI) W = I (Cholesky), where
//! ε = tr(C)/d · max(1, d/n) shrinks towards no whitening when the catalogue has few items.
//!
//! The statistics are model state, not trained: three variables (`whiten.mean`, `whiten.matrix`,
//! `whiten.items` = how many items they were fitted on, 0 = not yet, identity) that travel with the
//! weights and get no gradient (the tower reads them detached), fitted once per model lineage —
//! offline on the dataset's catalogue, online on the catalogue at the first training step.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rayon::prelude::*;

use crate::tensor::l2_normalise;

/// Fits use at most this many catalogue rows (evenly spaced): d = 384 needs far fewer, and a
/// million-item catalogue would otherwise cost seconds.
const MAX_FIT_ROWS: usize = 20_000;

/// Rows per parallel block of the covariance.
const COVARIANCE_BLOCK: usize = 512;

#[derive(Clone)]
pub struct Whitening {
    mean: Var,
    matrix: Var,
    items: Var,
}

impl Whitening {
    /// The variables, created in `varmap` under `whiten.` (values set by [`Whitening::reset`] or
    /// [`Whitening::fit`]).
    pub fn new(dim: usize, varmap: &VarMap, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device).pp("whiten");
        let var = |name: &str, shape: &[usize]| -> Result<Var> {
            vb.get(shape, name)?;
            let data = varmap.data().lock().expect("varmap lock");
            Ok(data[&format!("whiten.{name}")].clone())
        };
        Ok(Self {
            mean: var("mean", &[1, dim])?,
            matrix: var("matrix", &[dim, dim])?,
            items: var("items", &[1])?,
        })
    }

    /// Identity: not fitted (x' = normalise(x)).
    pub fn reset(&self) -> Result<()> {
        let dim = self.matrix.dim(0)?;
        let device = self.matrix.device();
        self.mean
            .set(&Tensor::zeros((1, dim), DType::F32, device)?)?;
        self.matrix.set(&Tensor::eye(dim, DType::F32, device)?)?;
        self.items.set(&Tensor::zeros(1, DType::F32, device)?)
    }

    /// Items the statistics were fitted on (0: not fitted).
    pub fn fitted_on(&self) -> Result<usize> {
        Ok(self.items.as_tensor().to_vec1::<f32>()?[0] as usize)
    }

    /// Fits the statistics on `table` (items × dim). Fewer than two items: stays unfitted.
    pub fn fit(&self, table: &Tensor) -> Result<()> {
        let (n, dim) = table.dims2()?;
        if n < 2 {
            return self.reset();
        }
        let stride = n.div_ceil(MAX_FIT_ROWS);
        let rows: Vec<Vec<f32>> = table
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?
            .to_vec2()?
            .into_iter()
            .step_by(stride)
            .collect();
        let Some((mean, matrix)) = statistics(&rows, dim) else {
            candle_core::bail!("content whitening: the covariance is not positive definite");
        };
        let device = self.matrix.device();
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
        self.mean
            .set(&Tensor::from_vec(f32s(mean), (1, dim), device)?)?;
        self.matrix
            .set(&Tensor::from_vec(f32s(matrix), (dim, dim), device)?)?;
        self.items.set(&Tensor::new(&[rows.len() as f32], device)?)
    }

    /// normalise((table − μ) W), read detached (no gradient reaches the statistics).
    pub fn apply(&self, table: &Tensor) -> Result<Tensor> {
        let centred = table.broadcast_sub(&self.mean.as_detached_tensor())?;
        l2_normalise(&centred.matmul(&self.matrix.as_detached_tensor())?)
    }
}

/// (μ, W) of `rows` (each `dim` long), row-major W (dim × dim) with Wᵀ (C + εI) W = I:
/// W = L⁻ᵀ for the Cholesky factor C + εI = L Lᵀ. None when the factorisation fails.
pub fn statistics(rows: &[Vec<f32>], dim: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let n = rows.len() as f64;
    let mut mean = vec![0f64; dim];
    for row in rows {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    // Covariance, lower triangle: partial sums over blocks of rows in parallel (the first step
    // of a lineage fits on its table), added in block order.
    let partial: Vec<Vec<f64>> = rows
        .par_chunks(COVARIANCE_BLOCK)
        .map(|block| {
            let mut cov = vec![0f64; dim * dim];
            let mut centred = vec![0f64; dim];
            for row in block {
                for ((c, &x), m) in centred.iter_mut().zip(row).zip(&mean) {
                    *c = f64::from(x) - m;
                }
                for i in 0..dim {
                    let ci = centred[i];
                    let out = &mut cov[i * dim..i * dim + i + 1];
                    for (o, &cj) in out.iter_mut().zip(&centred[..=i]) {
                        *o += ci * cj;
                    }
                }
            }
            cov
        })
        .collect();
    let mut cov = vec![0f64; dim * dim];
    for block in partial {
        cov.iter_mut().zip(&block).for_each(|(c, b)| *c += b);
    }
    let trace: f64 = (0..dim).map(|i| cov[i * dim + i] / n).sum();
    let eps = trace / dim as f64 * (dim as f64 / n).max(1.0);
    for i in 0..dim {
        for j in 0..=i {
            cov[i * dim + j] /= n;
        }
        cov[i * dim + i] += eps;
    }
    let lower = cholesky(&cov, dim)?;
    // W = L⁻ᵀ: row j of W is column j of L⁻¹, the solution of L y = e_j (zero above j).
    let mut w = vec![0f64; dim * dim];
    for j in 0..dim {
        let y = &mut w[j * dim..(j + 1) * dim];
        for i in j..dim {
            let rhs = if i == j { 1.0 } else { 0.0 };
            let sum: f64 = (j..i).map(|k| lower[i * dim + k] * y[k]).sum();
            y[i] = (rhs - sum) / lower[i * dim + i];
        }
    }
    Some((mean, w))
}

/// The lower Cholesky factor of the symmetric matrix whose lower triangle is `a`; None unless
/// positive definite.
fn cholesky(a: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * dim + k] * l[j * dim + k]).sum();
            let value = a[i * dim + j] - sum;
            if i == j {
                if value <= 0.0 || !value.is_finite() {
                    return None;
                }
                l[i * dim + i] = value.sqrt();
            } else {
                l[i * dim + j] = value / l[j * dim + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Anisotropic rows: dimension k scaled by 1/(k+1), plus a common offset.
    fn rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|k| 0.5 + rng.random_range(-1.0f32..1.0) / (k + 1) as f32)
                    .collect()
            })
            .collect()
    }

    /// Wᵀ (C + εI) W = I, with C the rows' covariance and ε = tr(C)/d · max(1, d/n).
    fn check_identity(rows: &[Vec<f32>], dim: usize) {
        let (mean, w) = statistics(rows, dim).expect("positive definite");
        let n = rows.len() as f64;
        let mut cov = vec![0f64; dim * dim];
        for row in rows {
            for i in 0..dim {
                for j in 0..dim {
                    cov[i * dim + j] +=
                        (f64::from(row[i]) - mean[i]) * (f64::from(row[j]) - mean[j]) / n;
                }
            }
        }
        let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
        let eps = trace / dim as f64 * (dim as f64 / n).max(1.0);
        (0..dim).for_each(|i| cov[i * dim + i] += eps);
        for a in 0..dim {
            for b in 0..dim {
                let mut value = 0.0;
                for i in 0..dim {
                    for j in 0..dim {
                        value += w[i * dim + a] * cov[i * dim + j] * w[j * dim + b];
                    }
                }
                let expected = if a == b { 1.0 } else { 0.0 };
                assert!((value - expected).abs() < 1e-9, "({a},{b}) = {value}");
            }
        }
    }

    #[test]
    fn whitened_covariance_is_the_identity_and_small_catalogues_shrink() {
        check_identity(&rows(200, 6, 1), 6);
        // Fewer items than dimensions: C is singular; the larger ε keeps it definite.
        check_identity(&rows(4, 6, 2), 6);
    }

    #[test]
    fn unfitted_is_normalisation_and_fitted_rows_are_unit_and_decorrelated() {
        let varmap = VarMap::new();
        let whitening = Whitening::new(4, &varmap, &Device::Cpu).unwrap();
        whitening.reset().unwrap();
        let data = rows(500, 4, 3);
        let table = Tensor::new(data.clone(), &Device::Cpu).unwrap();
        assert_eq!(whitening.fitted_on().unwrap(), 0);
        let plain = whitening.apply(&table).unwrap();
        let expected = l2_normalise(&table).unwrap();
        let diff = (plain - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);

        whitening.fit(&table).unwrap();
        assert_eq!(whitening.fitted_on().unwrap(), 500);
        let white = whitening.apply(&table).unwrap().to_vec2::<f32>().unwrap();
        for row in &white {
            let norm: f32 = row.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        // The raw rows share a mean direction (cosines near 1); whitened they spread around 0.
        let mean_cos = |rows: &[Vec<f32>]| {
            let unit: Vec<Vec<f32>> = rows
                .iter()
                .map(|r| {
                    let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                    r.iter().map(|x| x / n).collect()
                })
                .collect();
            let mut total = 0.0;
            for a in &unit[..50] {
                for b in &unit[50..100] {
                    total += a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
                }
            }
            total / 2500.0
        };
        assert!(mean_cos(&data) > 0.5, "raw {}", mean_cos(&data));
        assert!(
            mean_cos(&white).abs() < 0.1,
            "whitened {}",
            mean_cos(&white)
        );
    }
}
