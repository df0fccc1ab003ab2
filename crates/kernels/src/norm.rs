//! Row normalisations in place: LayerNorm (BERT) and RMSNorm (llama, qwen2), f32 statistics.

multiversion! {
    /// Each `gamma.len()`-wide row ← (row − mean)/√(var + eps)·gamma + beta.
    pub fn layer_norm(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        for row in xs.chunks_exact_mut(width) {
            let mean = super::sum(row) / width as f32;
            for v in row.iter_mut() {
                *v -= mean;
            }
            let var = super::dot(row, row) / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = *v * inv * g + b;
            }
        }
    }
}

multiversion! {
    /// `out` row ← row/√(mean(row²) + eps)·gamma (`xs` stays: it is the residual stream).
    pub fn rms_norm(xs: &[f32], out: &mut [f32], gamma: &[f32], eps: f32) {
        let width = gamma.len();
        for (row, dst) in xs.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            let inv = 1.0 / (super::dot(row, row) / width as f32 + eps).sqrt();
            for ((d, v), g) in dst.iter_mut().zip(row).zip(gamma) {
                *d = v * inv * g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn data() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let xs = (0..3 * 40)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.07)
            .collect();
        let gamma = (0..40).map(|i| 0.5 + i as f32 * 0.02).collect();
        let beta = (0..40).map(|i| i as f32 * -0.01).collect();
        (xs, gamma, beta)
    }

    #[test]
    fn layer_norm_matches_candle_nn() {
        let (xs, gamma, beta) = data();
        let dev = Device::Cpu;
        let ln = candle_nn::LayerNorm::new(
            Tensor::new(gamma.as_slice(), &dev).unwrap(),
            Tensor::new(beta.as_slice(), &dev).unwrap(),
            1e-12,
        );
        let plain = candle_core::Module::forward(
            &ln,
            &Tensor::from_vec(xs.clone(), (3, 40), &dev).unwrap(),
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        let mut fast = xs;
        layer_norm(&mut fast, &gamma, &beta, 1e-12);
        let worst = crate::max_diff(&fast, &plain);
        assert!(worst < 1e-5, "layer norm differs by {worst}");
    }

    #[test]
    fn rms_norm_matches_candle_nn() {
        let (xs, gamma, _) = data();
        let dev = Device::Cpu;
        let plain = candle_nn::ops::rms_norm(
            &Tensor::from_vec(xs.clone(), (3, 40), &dev).unwrap(),
            &Tensor::new(gamma.as_slice(), &dev).unwrap(),
            1e-5,
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        let mut fast = vec![0f32; xs.len()];
        rms_norm(&xs, &mut fast, &gamma, 1e-5);
        let worst = crate::max_diff(&fast, &plain);
        assert!(worst < 1e-5, "rms norm differs by {worst}");
    }
}
