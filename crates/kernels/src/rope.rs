//! Rotary position embedding (Hugging Face `rotate_half` form) applied in place to the query and
//! key heads of packed `q | k | v` rows; positions restart at 0 in every sequence.

use super::attention::Heads;

/// cos/sin of `position · θ^(−2i/d)` for every position below `max_positions`.
pub struct Rotary {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
}

impl Rotary {
    pub fn new(head_dim: usize, max_positions: usize, theta: f64) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for i in 0..half {
                let angle = p as f64 * theta.powf(-((2 * i) as f64) / head_dim as f64);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Self { cos, sin, half }
    }

    /// Longest sequence the table covers.
    pub fn positions(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }

    /// Rotates the q and k heads of every token of every sequence `(start, len)` of `qkv`.
    pub fn apply(&self, qkv: &mut [f32], seqs: &[(usize, usize)], heads: Heads) {
        let width = heads.qkv_width();
        let rotated = (heads.query + heads.key_value) * heads.dim;
        for &(start, len) in seqs {
            for p in 0..len {
                let row = &mut qkv[(start + p) * width..(start + p) * width + rotated];
                let cos = &self.cos[p * self.half..(p + 1) * self.half];
                let sin = &self.sin[p * self.half..(p + 1) * self.half];
                for head in row.chunks_exact_mut(heads.dim) {
                    let (a, b) = head.split_at_mut(self.half);
                    for i in 0..self.half {
                        let (x, y) = (a[i], b[i]);
                        a[i] = x * cos[i] - y * sin[i];
                        b[i] = y * cos[i] + x * sin[i];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn matches_candles_rope() {
        let heads = Heads {
            query: 2,
            key_value: 1,
            dim: 8,
        };
        let len = 5;
        let mut qkv: Vec<f32> = (0..len * heads.qkv_width())
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let original = qkv.clone();
        let rotary = Rotary::new(heads.dim, 16, 10_000.0);
        rotary.apply(&mut qkv, &[(0, len)], heads);
        let dev = Device::Cpu;
        let cos = Tensor::from_slice(&rotary.cos[..len * 4], (len, 4), &dev).unwrap();
        let sin = Tensor::from_slice(&rotary.sin[..len * 4], (len, 4), &dev).unwrap();
        let width = heads.qkv_width();
        let rows = Tensor::from_slice(&original, (len, width), &dev).unwrap();
        for h in 0..3 {
            // (batch 1, heads 1, len, dim)
            let x = rows
                .narrow(1, h * 8, 8)
                .unwrap()
                .unsqueeze(0)
                .unwrap()
                .unsqueeze(0)
                .unwrap()
                .contiguous()
                .unwrap();
            let want = candle_nn::rotary_emb::rope(&x, &cos, &sin)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for p in 0..len {
                for d in 0..8 {
                    let got = qkv[p * width + h * 8 + d];
                    assert!(
                        (got - want[p * 8 + d]).abs() < 1e-5,
                        "head {h} pos {p} dim {d}"
                    );
                }
            }
        }
        // v is untouched
        assert_eq!(qkv[3 * 8..4 * 8], original[3 * 8..4 * 8]);
    }
}
