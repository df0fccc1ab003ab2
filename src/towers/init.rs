//! Deterministic randomness for training: parameters are (re)initialised from a seeded RNG, and
//! dropout masks come from one too, so a fixed seed gives bit-identical training runs.

use std::sync::{Arc, Mutex};

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, RngCore, SeedableRng};

/// Re-initialises every variable of `varmap` in name order: weights uniform in ±1/sqrt(fan_in)
/// (PyTorch's Linear default) and embedding tables uniform ±0.035, or with `normal_std` = σ both
/// N(0, σ²) (RecBole's init); layer-norm weights 1, biases and the item-ID offsets added to
/// content (`towers.item_ids`) 0.
pub fn seeded_init(varmap: &VarMap, seed: u64, normal_std: Option<f32>) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = StdRng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let values: Vec<f32> = if name.ends_with("bias") || name.starts_with("id_offsets") {
            vec![0.0; n]
        } else if name.contains("norm") {
            vec![1.0; n]
        } else if let Some(std) = normal_std {
            (0..n).map(|_| std * standard_normal(&mut rng)).collect()
        } else {
            let bound = if name.ends_with("embeddings") {
                0.035
            } else {
                1.0 / (*shape.dims().last().unwrap_or(&1) as f32).sqrt()
            };
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?)?;
    }
    Ok(())
}

/// One N(0, 1) draw (Box–Muller).
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let v: f64 = rng.random();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// Inverted dropout whose masks come from a seeded RNG (shared by clones of a tower).
/// Masks come from a small fast generator (millions of draws per step); still seeded.
#[derive(Clone)]
pub struct SeededDropout {
    p: f32,
    rng: Arc<Mutex<SmallRng>>,
}

impl SeededDropout {
    pub fn new(p: f32, seed: u64) -> Self {
        Self {
            p,
            rng: Arc::new(Mutex::new(SmallRng::seed_from_u64(seed))),
        }
    }

    /// Restarts the mask sequence from `seed` (online training reseeds every step, so a restored
    /// checkpoint continues with the same masks as an uninterrupted run).
    pub fn reseed(&self, seed: u64) {
        *self.rng.lock().expect("dropout rng") = SmallRng::seed_from_u64(seed);
    }

    /// Whether it drops anything (p > 0).
    pub fn active(&self) -> bool {
        self.p > 0.0
    }

    pub fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p <= 0.0 {
            return Ok(xs.clone());
        }
        let keep = 1.0 - self.p;
        // Keep when a uniform u32 falls below keep × 2^32.
        let threshold = (f64::from(keep) * 4_294_967_296.0) as u64;
        let mut rng = self.rng.lock().expect("dropout rng");
        let mask: Vec<f32> = (0..xs.elem_count())
            .map(|_| {
                if u64::from(rng.next_u32()) < threshold {
                    1.0 / keep
                } else {
                    0.0
                }
            })
            .collect();
        xs.mul(&Tensor::from_vec(mask, xs.shape(), &Device::Cpu)?.to_device(xs.device())?)
    }
}
