//! AdamW with its state in the open: the same update rule as candle-nn's `AdamW` (decoupled weight
//! decay, bias-corrected moments), but the moments and the step counter can be read and restored,
//! so a checkpoint holds the whole optimiser and training resumes bit-exactly after a restart.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

#[derive(Debug, Clone, Copy)]
pub struct AdamWParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWParams {
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }
}

/// One parameter and its two moments.
struct Slot {
    theta: Var,
    m: Var,
    v: Var,
}

pub struct AdamW {
    slots: Vec<Slot>,
    params: AdamWParams,
    step: u64,
}

impl AdamW {
    /// An optimiser over `vars` (keep their order fixed: state is saved and restored by position).
    pub fn new(vars: Vec<Var>, params: AdamWParams) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|theta| {
                let zeros = || Var::zeros(theta.shape(), theta.dtype(), theta.device());
                Ok(Slot {
                    m: zeros()?,
                    v: zeros()?,
                    theta,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            params,
            step: 0,
        })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let AdamWParams {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let scale_m = 1.0 / (1.0 - beta1.powi(self.step as i32));
        let scale_v = 1.0 / (1.0 - beta2.powi(self.step as i32));
        for slot in &self.slots {
            let Some(g) = grads.get(slot.theta.as_tensor()) else {
                continue;
            };
            let m = ((slot.m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((slot.v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let adjusted = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + eps)?)?;
            let theta = ((slot.theta.as_tensor() * (1.0 - lr * weight_decay))? - (adjusted * lr)?)?;
            slot.m.set(&m)?;
            slot.v.set(&v)?;
            slot.theta.set(&theta)?;
        }
        Ok(())
    }

    /// (first moments, second moments), in the order of the vars given to [`AdamW::new`].
    pub fn moments(&self) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let copy = |v: &Var| v.as_tensor().copy();
        Ok((
            self.slots
                .iter()
                .map(|s| copy(&s.m))
                .collect::<Result<_>>()?,
            self.slots
                .iter()
                .map(|s| copy(&s.v))
                .collect::<Result<_>>()?,
        ))
    }

    /// Restores state saved by [`AdamW::moments`] and [`AdamW::steps`].
    pub fn restore(&mut self, m: &[Tensor], v: &[Tensor], step: u64) -> Result<()> {
        if m.len() != self.slots.len() || v.len() != self.slots.len() {
            candle_core::bail!(
                "optimizer state has {} / {} moments for {} parameters",
                m.len(),
                v.len(),
                self.slots.len()
            );
        }
        for ((slot, m), v) in self.slots.iter().zip(m).zip(v) {
            slot.m.set(m)?;
            slot.v.set(v)?;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Optimizer;

    #[test]
    fn matches_candle_adamw() {
        let start = [0.5f32, -1.0, 2.0];
        let (ours, theirs) = (
            Var::new(&start, &Device::Cpu).unwrap(),
            Var::new(&start, &Device::Cpu).unwrap(),
        );
        let mut a = AdamW::new(vec![ours.clone()], AdamWParams::new(0.01, 0.1)).unwrap();
        let mut b = candle_nn::AdamW::new(
            vec![theirs.clone()],
            candle_nn::ParamsAdamW {
                lr: 0.01,
                weight_decay: 0.1,
                ..Default::default()
            },
        )
        .unwrap();
        let grad = |v: &Var| {
            v.as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
        for _ in 0..5 {
            let (ga, gb) = (grad(&ours), grad(&theirs));
            a.step(&ga).unwrap();
            b.step(&gb).unwrap();
        }
        let (x, y) = (
            ours.as_tensor().to_vec1::<f32>().unwrap(),
            theirs.as_tensor().to_vec1::<f32>().unwrap(),
        );
        for (x, y) in x.iter().zip(&y) {
            assert!((x - y).abs() < 1e-7, "{x} vs {y}");
        }
        assert_eq!(a.steps(), 5);
    }
}
