//! A dense layer over packed tokens: `y = x·Wᵀ + b`, optionally added onto `y` (the residual
//! stream). On AVX-512 CPUs the weights are packed once at load into 32-column panels for
//! [`panel::product`](crate::panel::product); elsewhere they are transposed once (`in × out`,
//! row-major) for the `gemm` crate. Few tokens (a single upload) split the output columns across
//! threads, many tokens split the rows: either way no thread waits on another.

use gemm::Parallelism;

use crate::panel;
use crate::team::{share, SharedMut, Team};

enum Weights {
    /// [`panel::pack`]ed: `ceil(outputs/32)` panels of `inputs × 32`.
    Panels(Vec<f32>),
    /// `inputs × outputs`, row-major, for `gemm`.
    Transposed(Vec<f32>),
}

pub struct Linear {
    weights: Weights,
    bias: Option<Vec<f32>>,
    pub inputs: usize,
    pub outputs: usize,
}

/// Rows below this (per thread) are split by output columns instead.
const MIN_ROWS_PER_THREAD: usize = 32;

/// `rows × cols` row-major → `cols × rows` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            t[c * rows + r] = *v;
        }
    }
    t
}

impl Linear {
    /// `weight` is `outputs × inputs`, row-major, as Hugging Face stores it.
    pub fn new(weight: &[f32], bias: Option<Vec<f32>>, outputs: usize, inputs: usize) -> Self {
        if !panel::available() {
            return Self::with_gemm(weight, bias, outputs, inputs);
        }
        assert_eq!(weight.len(), outputs * inputs, "weight shape");
        let weights = Weights::Panels(panel::pack(weight, outputs, inputs));
        Self {
            weights,
            bias,
            inputs,
            outputs,
        }
    }

    /// The plain `gemm` route even where the panel kernel runs (for tests and benchmarks).
    pub fn with_gemm(
        weight: &[f32],
        bias: Option<Vec<f32>>,
        outputs: usize,
        inputs: usize,
    ) -> Self {
        assert_eq!(weight.len(), outputs * inputs, "weight shape");
        let weights = Weights::Transposed(transpose(weight, outputs, inputs));
        Self {
            weights,
            bias,
            inputs,
            outputs,
        }
    }

    /// Output columns per unit of work a thread takes: a panel, or a 16-column strip for gemm.
    fn unit(&self) -> usize {
        match self.weights {
            Weights::Panels(_) => panel::WIDTH,
            Weights::Transposed(_) => 16,
        }
    }

    /// `y` (m × outputs) ← `x`·Wᵀ + b, or `y` + `x`·Wᵀ + b when `accumulate`, on `team`.
    pub fn forward(&self, team: &Team, x: &[f32], m: usize, y: &mut [f32], accumulate: bool) {
        self.forward_then(team, x, m, y, accumulate, |_| {})
    }

    /// As [`forward`](Self::forward), then `after` (an activation) on the finished rows of `y`:
    /// fused into the same fork when the threads split rows, a second one when they split columns.
    pub fn forward_then(
        &self,
        team: &Team,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        accumulate: bool,
        after: impl Fn(&mut [f32]) + Sync,
    ) {
        assert!(x.len() >= m * self.inputs && y.len() >= m * self.outputs);
        if m == 0 {
            return;
        }
        let threads = team.size();
        let dst = SharedMut(y.as_mut_ptr());
        let units = self.outputs.div_ceil(self.unit());
        if threads == 1 {
            self.block(x, dst, 0..m, 0..units, accumulate);
            after(&mut y[..m * self.outputs]);
        } else if m >= threads * MIN_ROWS_PER_THREAD {
            team.run(&|t| {
                let rows = share(m, threads, t);
                self.block(x, dst, rows.clone(), 0..units, accumulate);
                // SAFETY: these rows of `y` are this thread's alone.
                after(unsafe {
                    std::slice::from_raw_parts_mut(
                        dst.at(rows.start * self.outputs),
                        rows.len() * self.outputs,
                    )
                });
            });
        } else {
            team.run(&|t| self.block(x, dst, 0..m, share(units, threads, t), accumulate));
            crate::par_rows(team, &mut y[..m * self.outputs], self.outputs, after);
        }
    }

    /// One thread's block: `rows` × column units `units` of the output. The bias is written (or,
    /// accumulating, added) into the block by the thread that owns it, then the product is added.
    fn block(
        &self,
        x: &[f32],
        dst: SharedMut,
        rows: std::ops::Range<usize>,
        units: std::ops::Range<usize>,
        accumulate: bool,
    ) {
        let cols = units.start * self.unit()..(units.end * self.unit()).min(self.outputs);
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        if let Some(bias) = &self.bias {
            for r in rows.clone() {
                // SAFETY: row `r`, columns `cols` of `y` belong to this block alone.
                let out = unsafe {
                    std::slice::from_raw_parts_mut(
                        dst.at(r * self.outputs + cols.start),
                        cols.len(),
                    )
                };
                let bias = &bias[cols.clone()];
                if accumulate {
                    out.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                } else {
                    out.copy_from_slice(bias);
                }
            }
        }
        let read_dst = accumulate || self.bias.is_some();
        match &self.weights {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: panels exist only where `panel::available()`; shapes checked in `forward`;
            // blocks of different threads do not overlap.
            Weights::Panels(packed) => unsafe {
                panel::product(
                    x.as_ptr(),
                    dst.at(0),
                    packed,
                    self.inputs,
                    self.outputs,
                    rows,
                    units,
                    read_dst,
                )
            },
            #[cfg(not(target_arch = "x86_64"))]
            Weights::Panels(_) => unreachable!("panels are packed on x86_64 only"),
            Weights::Transposed(weight_t) => {
                self.gemm_block(weight_t, x, dst, rows, cols, read_dst)
            }
        }
    }

    /// One single-threaded gemm on the `rows × cols` block of the output.
    fn gemm_block(
        &self,
        weight_t: &[f32],
        x: &[f32],
        dst: SharedMut,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        read_dst: bool,
    ) {
        // SAFETY: the block lies inside `y` (m × outputs, checked in `forward`) and inside `x` and
        // the weights; blocks of different tasks do not overlap.
        unsafe {
            gemm::gemm(
                rows.len(),
                cols.len(),
                self.inputs,
                dst.at(rows.start * self.outputs + cols.start),
                1,
                self.outputs as isize,
                read_dst,
                x.as_ptr().add(rows.start * self.inputs),
                1,
                self.inputs as isize,
                weight_t.as_ptr().add(cols.start),
                1,
                self.outputs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], b: &[f32], m: usize, out: usize, inp: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * out];
        for r in 0..m {
            for o in 0..out {
                let mut acc = b[o] as f64;
                for i in 0..inp {
                    acc += x[r * inp + i] as f64 * w[o * inp + i] as f64;
                }
                y[r * out + o] = acc as f32;
            }
        }
        y
    }

    #[test]
    fn every_split_matches_the_plain_product() {
        let (out, inp) = (70, 48);
        let w: Vec<f32> = (0..out * inp)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) * 0.01)
            .collect();
        let b: Vec<f32> = (0..out).map(|i| i as f32 * 0.1).collect();
        for layer in [
            Linear::new(&w, Some(b.clone()), out, inp),
            Linear::with_gemm(&w, Some(b.clone()), out, inp),
        ] {
            for threads in [1, 2, 3] {
                let team = Team::new(threads);
                for m in [1, 5, 13, 200] {
                    let x: Vec<f32> = (0..m * inp)
                        .map(|i| ((i * 17 % 53) as f32 - 26.0) * 0.02)
                        .collect();
                    let want = naive(&x, &w, &b, m, out, inp);
                    let mut y = vec![f32::NAN; m * out];
                    layer.forward(&team, &x, m, &mut y, false);
                    let worst = crate::max_diff(&y, &want);
                    assert!(worst < 1e-4, "threads {threads} m {m}: {worst}");
                    let mut residual = vec![1f32; m * out];
                    layer.forward(&team, &x, m, &mut residual, true);
                    let worst = residual
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - 1.0 - b).abs())
                        .fold(0f32, f32::max);
                    assert!(worst < 1e-4, "accumulate, threads {threads} m {m}: {worst}");
                }
            }
        }
    }
}
