//! Multi-head attention over packed sequences: each (sequence, head) pair attends over that
//! sequence's real tokens only — no padding is ever computed — with grouped-query heads
//! (several query heads share one key/value head) and an optional causal mask (decoders).

use crate::team::{SharedMut, Team};

/// Head layout of a packed `q | k | v` row.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub query: usize,
    pub key_value: usize,
    pub dim: usize,
}

impl Heads {
    /// Width of one packed `q | k | v` row.
    pub fn qkv_width(&self) -> usize {
        (self.query + 2 * self.key_value) * self.dim
    }

    pub fn context_width(&self) -> usize {
        self.query * self.dim
    }
}

/// `ctx` (tokens × query·dim) ← softmax(q·kᵀ/√dim)·v for every sequence `(start, len)` of the
/// packed `qkv` (tokens × qkv_width); the (sequence, head) pairs are dealt round-robin to `team`.
pub fn attention(
    team: &Team,
    qkv: &[f32],
    ctx: &mut [f32],
    seqs: &[(usize, usize)],
    heads: Heads,
    causal: bool,
) {
    let tasks: Vec<(usize, usize, usize)> = seqs
        .iter()
        .flat_map(|&(start, len)| (0..heads.query).map(move |head| (start, len, head)))
        .collect();
    let longest = seqs.iter().map(|s| s.1).max().unwrap_or(0);
    let width = heads.context_width();
    assert!(ctx.len() >= seqs.iter().map(|s| s.0 + s.1).max().unwrap_or(0) * width);
    let dst = SharedMut(ctx.as_mut_ptr());
    team.run(&|member| {
        let padded = longest.next_multiple_of(16);
        let mut scores = vec![0f32; longest * padded];
        let mut keys_t = vec![0f32; padded * heads.dim];
        let mut out = vec![0f32; longest * heads.dim];
        for &(start, len, head) in tasks.iter().skip(member).step_by(team.size()) {
            one_head(
                qkv,
                start,
                len,
                head,
                heads.query,
                heads.key_value,
                heads.dim,
                causal,
                &mut scores,
                &mut keys_t,
                &mut out[..len * heads.dim],
            );
            for (i, row) in out[..len * heads.dim].chunks_exact(heads.dim).enumerate() {
                // SAFETY: this head's columns of this sequence's rows belong to this task alone;
                // in bounds by the assert above.
                unsafe {
                    let at = dst.at((start + i) * width + head * heads.dim);
                    std::ptr::copy_nonoverlapping(row.as_ptr(), at, heads.dim);
                }
            }
        }
    });
}

multiversion! {
    /// One head of one sequence: scores, softmax, weighted sum of values into `out` (len × dim).
    /// Keys are transposed into `keys_t` (dim × len rounded up to 16) first, so scores are
    /// computed 16 keys at a time with no horizontal sums and no scalar tails.
    #[allow(clippy::too_many_arguments)]
    fn one_head(
        qkv: &[f32],
        start: usize,
        len: usize,
        head: usize,
        query_heads: usize,
        kv_heads: usize,
        dim: usize,
        causal: bool,
        scores: &mut [f32],
        keys_t: &mut [f32],
        out: &mut [f32],
    ) {
        let width = (query_heads + 2 * kv_heads) * dim;
        let kv_head = head / (query_heads / kv_heads);
        let q_at = head * dim;
        let k_at = query_heads * dim + kv_head * dim;
        let v_at = (query_heads + kv_heads) * dim + kv_head * dim;
        let row = |t: usize, at: usize| &qkv[(start + t) * width + at..(start + t) * width + at + dim];
        // Rows padded to a multiple of 16 keys (zero keys, masked below) so that every loop over
        // keys runs in whole vectors, without scalar tails.
        let padded = len.next_multiple_of(16);
        keys_t[..dim * padded].fill(0.0);
        for j in 0..len {
            for (d, k) in row(j, k_at).iter().enumerate() {
                keys_t[d * padded + j] = *k;
            }
        }
        // Both products accumulate 16 lanes in registers across the whole inner loop and store
        // once (a slice accumulator was loaded and stored at every step: 36 % of this function).
        for i in 0..len {
            let q = row(i, q_at);
            let visible = if causal { i + 1 } else { len };
            for c in 0..padded / 16 {
                let mut acc = [0f32; 16];
                for (d, qd) in q.iter().enumerate() {
                    let k = &keys_t[d * padded + c * 16..d * padded + c * 16 + 16];
                    for l in 0..16 {
                        acc[l] += qd * k[l];
                    }
                }
                scores[i * padded + c * 16..i * padded + c * 16 + 16].copy_from_slice(&acc);
            }
            scores[i * padded + visible..(i + 1) * padded].fill(f32::NEG_INFINITY);
        }
        super::math::softmax_rows(&mut scores[..len * padded], padded, 1.0 / (dim as f32).sqrt());
        for i in 0..len {
            let visible = if causal { i + 1 } else { len };
            let p = &scores[i * padded..i * padded + visible];
            let full = dim / 16 * 16;
            for c in (0..full).step_by(16) {
                let mut acc = [0f32; 16];
                for (j, pj) in p.iter().enumerate() {
                    let v = &row(j, v_at)[c..c + 16];
                    for l in 0..16 {
                        acc[l] += pj * v[l];
                    }
                }
                out[i * dim + c..i * dim + c + 16].copy_from_slice(&acc);
            }
            for c in full..dim {
                out[i * dim + c] = p.iter().enumerate().map(|(j, pj)| pj * row(j, v_at)[c]).sum();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, D};

    /// The textbook formula in candle ops, one sequence at a time.
    fn plain(qkv: &[f32], seq: (usize, usize), heads: Heads, causal: bool) -> Vec<f32> {
        let dev = Device::Cpu;
        let width = heads.qkv_width();
        let rows = Tensor::from_slice(
            &qkv[seq.0 * width..(seq.0 + seq.1) * width],
            (seq.1, width),
            &dev,
        )
        .unwrap();
        let group = heads.query / heads.key_value;
        let mut outs = Vec::new();
        for h in 0..heads.query {
            let kv = h / group;
            let q = rows.narrow(1, h * heads.dim, heads.dim).unwrap();
            let k = rows
                .narrow(1, (heads.query + kv) * heads.dim, heads.dim)
                .unwrap();
            let v = rows
                .narrow(
                    1,
                    (heads.query + heads.key_value + kv) * heads.dim,
                    heads.dim,
                )
                .unwrap();
            let mut s = (q.matmul(&k.t().unwrap()).unwrap() / (heads.dim as f64).sqrt()).unwrap();
            if causal {
                let mask: Vec<f32> = (0..seq.1)
                    .flat_map(|i| {
                        (0..seq.1).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })
                    })
                    .collect();
                s = (s + Tensor::from_vec(mask, (seq.1, seq.1), &dev).unwrap()).unwrap();
            }
            let p = candle_nn::ops::softmax(&s, D::Minus1).unwrap();
            outs.push(p.matmul(&v).unwrap());
        }
        Tensor::cat(&outs, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn packed_attention_matches_per_sequence_formula() {
        let heads = Heads {
            query: 6,
            key_value: 2,
            dim: 20,
        };
        let seqs = [(0usize, 7usize), (7, 1), (8, 19)];
        let tokens = 27;
        let qkv: Vec<f32> = (0..tokens * heads.qkv_width())
            .map(|i| ((i * 7919 % 211) as f32 - 105.0) * 0.013)
            .collect();
        for causal in [false, true] {
            let mut ctx = vec![f32::NAN; tokens * heads.context_width()];
            attention(&Team::new(2), &qkv, &mut ctx, &seqs, heads, causal);
            for &seq in &seqs {
                let want = plain(&qkv, seq, heads, causal);
                let got =
                    &ctx[seq.0 * heads.context_width()..(seq.0 + seq.1) * heads.context_width()];
                let worst = crate::max_diff(got, &want);
                assert!(worst < 1e-5, "causal {causal} seq {seq:?}: {worst}");
            }
        }
    }
}
