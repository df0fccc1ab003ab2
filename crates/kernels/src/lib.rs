//! learn-stream's native CPU kernels, which the frozen encoders run on: f32 slices in, f32 slices out.
//!
//! Tokens of a whole batch are packed row after row (`tokens × width`, no padding anywhere); each
//! linear layer is one matrix product over all of them (split across a [`Team`]), attention runs
//! per sequence over its real tokens only. Elementwise kernels are written so LLVM vectorises them and are compiled once
//! per instruction set (AVX-512, AVX2+FMA, baseline) and picked at run time ([`simd`]).
//! Every kernel is tested against the plain version (candle's op or the textbook formula).
//! A crate of its own so that it is optimised even in debug and test builds (see the workspace
//! `Cargo.toml`): unoptimised, these loops are 50× slower.
//!
//! - [`math`]: exp, erf-GELU, SiLU, softmax without libm calls, vectorisable.
//! - [`team`]: the threads a forward pass forks and joins on (spin, then park).
//! - [`norm`]: LayerNorm and RMSNorm over rows, in place.
//! - [`linear`]: `y = x·Wᵀ + b (+ residual)`, split across threads.
//! - [`panel`]: the AVX-512 small-batch matrix product on weights packed at load.
//! - [`attention`]: multi-head (grouped-query) attention per packed sequence, bidirectional or causal.
//! - [`rope`]: rotary position embedding on packed query/key heads.

#[macro_use]
mod simd;
pub mod attention;
pub mod linear;
pub mod math;
pub mod norm;
pub mod panel;
pub mod rope;
pub mod team;

pub use team::Team;

/// Dot product with 16 independent accumulators, so the loop vectorises without reassociation.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = a.len() / 16 * 16;
    for (ca, cb) in a[..chunks]
        .chunks_exact(16)
        .zip(b[..chunks].chunks_exact(16))
    {
        for l in 0..16 {
            acc[l] += ca[l] * cb[l];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Sum of a row, vectorisable (16 accumulators).
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = a.len() / 16 * 16;
    for c in a[..chunks].chunks_exact(16) {
        for l in 0..16 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + a[chunks..].iter().sum::<f32>()
}

/// Largest element of a row, vectorisable (16 lanes; `f32::max`'s NaN rule would keep it scalar).
#[inline(always)]
pub fn max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = a.len() / 16 * 16;
    for c in a[..chunks].chunks_exact(16) {
        for l in 0..16 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let tail = a[chunks..]
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

/// Runs `f` on row blocks of `xs` (rows `width` wide), one block per team member; small inputs
/// stay on the calling thread.
pub fn par_rows(team: &Team, xs: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync) {
    par_rows2(team, xs, &[], width, |a, _| f(a))
}

/// As [`par_rows`], with the matching rows of a second, read-only buffer (`other` empty: none).
pub fn par_rows2(
    team: &Team,
    xs: &mut [f32],
    other: &[f32],
    width: usize,
    f: impl Fn(&mut [f32], &[f32]) + Sync,
) {
    let rows = xs.len() / width.max(1);
    if team.size() == 1 || xs.len() < 8 * 1024 {
        return f(xs, other);
    }
    let ptr = team::SharedMut(xs.as_mut_ptr());
    team.run(&|member| {
        let range = team::share(rows, team.size(), member);
        // SAFETY: members get disjoint row ranges of `xs`.
        let mine = unsafe {
            std::slice::from_raw_parts_mut(ptr.at(range.start * width), range.len() * width)
        };
        let theirs = if other.is_empty() {
            other
        } else {
            &other[range.start * width..range.end * width]
        };
        f(mine, theirs)
    });
}

/// Mean of each packed sequence's rows (`spans` of `(start, len)` in `xs`, rows `width` wide),
/// L2-normalised: the sentence embedding.
pub fn mean_pool_normalised(xs: &[f32], width: usize, spans: &[(usize, usize)]) -> Vec<Vec<f32>> {
    spans
        .iter()
        .map(|&(start, len)| {
            let mut acc = vec![0f64; width];
            for row in xs[start * width..(start + len) * width].chunks_exact(width) {
                acc.iter_mut().zip(row).for_each(|(a, v)| *a += *v as f64);
            }
            let norm = acc.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            acc.iter().map(|v| (v / norm) as f32).collect()
        })
        .collect()
}

/// `(start, len)` of each sequence once packed row after row.
pub fn spans(sequences: &[&[u32]]) -> Vec<(usize, usize)> {
    let mut start = 0;
    sequences
        .iter()
        .map(|s| {
            let span = (start, s.len());
            start += s.len();
            span
        })
        .collect()
}

/// Largest absolute difference between two slices (tests compare kernels with plain versions).
#[cfg(test)]
pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}
