//! Linear warm-up then cosine decay to zero, and global gradient-norm clipping.

use candle_core::backprop::GradStore;
use candle_core::{Result, Var};

/// Learning rate at `step` (0-based) of `total`.
pub fn learning_rate(peak: f64, step: usize, total: usize, warmup_frac: f64) -> f64 {
    let warmup = ((total as f64 * warmup_frac).round() as usize).max(1);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

/// Scales all gradients so their global L2 norm is at most `max_norm`; returns the norm before.
pub fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut squared = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            squared += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = squared.sqrt();
    if norm > max_norm && norm.is_finite() {
        let factor = max_norm / norm;
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * factor)?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        assert!((learning_rate(1.0, 0, 100, 0.1) - 0.1).abs() < 1e-12);
        assert!((learning_rate(1.0, 9, 100, 0.1) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1.0, 10, 100, 0.1) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1.0, 55, 100, 0.1) - 0.5).abs() < 1e-12);
        assert!(learning_rate(1.0, 99, 100, 0.1) < 0.01);
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let var = Var::new(&[3f32, 4.], &candle_core::Device::Cpu).unwrap();
        let loss = (var.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap(); // grad = var = (3, 4)
        let mut grads = loss.backward().unwrap();
        let norm = clip_gradients(&mut grads, std::slice::from_ref(&var), 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let clipped = grads
            .get(var.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((clipped[0] - 0.6).abs() < 1e-6 && (clipped[1] - 0.8).abs() < 1e-6);
    }
}
