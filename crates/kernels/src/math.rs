//! Elementwise activations without libm calls, so loops over them vectorise: `exp` by Cody–Waite
//! range reduction and a degree-6 polynomial (relative error < 3e-7), `erf` by the rational
//! approximation Eigen and TensorFlow use (absolute error < 4e-7 in f32), clamped to ±4.

const MAGIC_ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting rounds to nearest.

/// e^x for x in f32 range (clamped to [-87, 88]; below that the result is ~0 anyway).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + MAGIC_ROUND) - MAGIC_ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// erf(x), rational approximation on [-4, 4] (outside it erf is ±1 in f32).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-08;
    let p = p * x2 - 2.101_024e-06;
    let p = p * x2 - 5.692_506_4e-05;
    let p = p * x2 - 7.349_906_3e-04;
    let p = p * x2 - 2.954_600_1e-03;
    let p = p * x2 - 1.609_603_3e-02;
    let q = -1.456_607_2e-05_f32;
    let q = q * x2 - 2.133_740_6e-04;
    let q = q * x2 - 1.682_827e-03;
    let q = q * x2 - 7.373_329e-03;
    let q = q * x2 - 1.426_474e-02;
    x * p / q
}

multiversion! {
    /// GELU with the exact (erf) form BERT uses, in place: x·½·(1 + erf(x/√2)).
    pub fn gelu(xs: &mut [f32]) {
        for x in xs.iter_mut() {
            *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

multiversion! {
    /// GELU's derivative in place: Φ(x) + x·φ(x) = ½·(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π).
    pub fn gelu_grad(xs: &mut [f32]) {
        const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
        for x in xs.iter_mut() {
            let v = *x;
            *x = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2))
                + v * FRAC_1_SQRT_2PI * exp(-0.5 * v * v);
        }
    }
}

multiversion! {
    /// SwiGLU's gate in place: gate ← silu(gate)·up = gate/(1+e^-gate)·up.
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, u) in gate.iter_mut().zip(up) {
            *g = *g / (1.0 + exp(-*g)) * u;
        }
    }
}

multiversion! {
    /// xs ← e^(xs − shift), in place (a softmax row's numerators, `shift` its maximum).
    pub fn exp_minus(xs: &mut [f32], shift: f32) {
        for x in xs.iter_mut() {
            *x = exp(*x - shift);
        }
    }
}

multiversion! {
    /// Softmax of every `width`-long row of `xs`, in place, after scaling by `scale`.
    pub fn softmax_rows(xs: &mut [f32], width: usize, scale: f32) {
        for row in xs.chunks_exact_mut(width) {
            let max = super::max(row);
            for v in row.iter_mut() {
                *v = exp((*v - max) * scale);
            }
            let inv = 1.0 / super::sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;

    fn grid() -> impl Iterator<Item = f32> {
        (-40_000..=40_000).map(|i| i as f32 * 2.5e-4)
    }

    #[test]
    fn exp_matches_std_to_relative_3e7() {
        for x in (-8_700..=8_800).map(|i| i as f32 * 0.01) {
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}): rel error {rel}");
        }
    }

    #[test]
    fn exp_minus_shifts_then_exponentiates() {
        let mut xs: Vec<f32> = (-300..=20).map(|i| i as f32 * 0.25).collect();
        let want: Vec<f32> = xs.iter().map(|&x| (x - 5.0).exp()).collect();
        exp_minus(&mut xs, 5.0);
        for (got, want) in xs.iter().zip(&want) {
            assert!(
                (got - want).abs() <= 3e-7 * want.max(1e-30),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn erf_matches_the_f64_reference() {
        for x in grid() {
            let err = (erf(x) as f64 - erf_f64(x as f64)).abs();
            assert!(err < 4e-7, "erf({x}): error {err}");
        }
    }

    #[test]
    fn gelu_matches_candles_gelu_erf() {
        let xs: Vec<f32> = grid().collect();
        let plain = candle_core::Tensor::new(xs.as_slice(), &candle_core::Device::Cpu)
            .unwrap()
            .gelu_erf()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut fast = xs.clone();
        gelu(&mut fast);
        let worst = fast
            .iter()
            .zip(&plain)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        // Worst near x = -5.6, where 1 + erf cancels: 1.2e-6 absolute on a value of ~0.
        assert!(
            worst < 2e-6,
            "gelu differs from candle's by {worst} (relative)"
        );
    }

    #[test]
    fn gelu_grad_matches_the_f64_derivative() {
        let mut fast: Vec<f32> = grid().collect();
        gelu_grad(&mut fast);
        for (x, got) in grid().zip(fast) {
            let x = x as f64;
            let want = 0.5 * (1.0 + erf_f64(x / std::f64::consts::SQRT_2))
                + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (got as f64 - want).abs() < 2e-6,
                "gelu'({x}): {got} vs {want}"
            );
        }
    }

    #[test]
    fn silu_mul_and_softmax_match_the_formulas() {
        let gate: Vec<f32> = grid().step_by(97).collect();
        let up: Vec<f32> = gate.iter().map(|g| 1.5 - g).collect();
        let mut fast = gate.clone();
        silu_mul(&mut fast, &up);
        for ((f, g), u) in fast.iter().zip(&gate).zip(&up) {
            let want = (*g as f64) / (1.0 + (-*g as f64).exp()) * (*u as f64);
            assert!(
                (*f as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
                "silu {g}"
            );
        }
        let mut rows = vec![1.0f32, 2.0, 3.0, -1e9, 0.5, 0.5, 0.5, 0.5];
        softmax_rows(&mut rows, 4, 2.0);
        let z: f64 = [2.0f64, 4.0, 6.0].iter().map(|v| v.exp()).sum();
        for (i, v) in [2.0f64, 4.0, 6.0].iter().enumerate() {
            assert!((rows[i] as f64 - v.exp() / z).abs() < 1e-6);
        }
        assert!(rows[3] < 1e-30);
        assert!(rows[4..].iter().all(|v| (v - 0.25).abs() < 1e-7));
    }
}
