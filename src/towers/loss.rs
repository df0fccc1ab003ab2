//! The contrastive loss: softmax cross-entropy of each (anchor, positive) pair over a set of
//! candidate items. Similarity is the cosine (inputs are unit vectors) times `scale` (= 1 /
//! temperature; LEARN's code uses 20). Which candidates a pair sees — the whole catalogue, sampled
//! items, the batch's targets — and their sampling-bias corrections are decided by
//! `train::negatives`.

use candle_core::{DType, Result, Tensor};

/// Logit offset that removes a candidate from a pair's softmax.
const BLOCKED: f32 = -1e9;

/// Logits computed at once (pairs per chunk × candidates): the P × C matrix never exists whole,
/// so memory stays flat in the catalogue and the batch (16 MB of logits at a time).
const CHUNK_LOGITS: usize = 1 << 22;

/// Mean over pairs of `−log softmax(logits)[positive]`, where pair p's logits are
/// `anchors[p] · candidates[c] × scale − log_q[c]` for every candidate c except those `blocked`
/// for it. `anchors`: (P, D); `candidates`: (C, D); `positives[p]`: pair p's column in
/// `candidates`; `log_q` (C): log of each candidate's expected count in the sample (the
/// sampling-bias or "logQ" correction of Yi et al., RecSys 2019; None = no correction);
/// `blocked`: (pair, column) entries left out of that pair's softmax, sorted.
///
/// Fused: one pass over chunks of pairs computes the loss and both gradients (logits, then
/// `G = (softmax − onehot) / P`, `∂anchors = scale · G·C`, `∂candidates = scale · Gᵀ·A`), the
/// way a fused log-softmax + NLL keeps one copy of the logits where the composed ops keep
/// several and their gradients. The gradients reach the graph through a surrogate whose value is
/// zero: `Σ A ⊙ ∂A + Σ C ⊙ ∂C` minus itself detached, plus the loss as a constant.
pub fn softmax_loss(
    anchors: &Tensor,
    candidates: &Tensor,
    positives: &[u32],
    scale: f64,
    log_q: Option<&[f32]>,
    blocked: &[(u32, u32)],
) -> Result<Tensor> {
    chunked(
        anchors,
        candidates,
        positives,
        scale,
        log_q,
        blocked,
        CHUNK_LOGITS,
    )
}

/// [`softmax_loss`] with at most `chunk_logits` logits at a time.
fn chunked(
    anchors: &Tensor,
    candidates: &Tensor,
    positives: &[u32],
    scale: f64,
    log_q: Option<&[f32]>,
    blocked: &[(u32, u32)],
    chunk_logits: usize,
) -> Result<Tensor> {
    let (pairs, columns) = (positives.len(), candidates.dim(0)?);
    if anchors.dim(0)? != pairs {
        candle_core::bail!("{} anchors for {pairs} positives", anchors.dim(0)?);
    }
    if let Some(&bad) = positives.iter().find(|&&c| c as usize >= columns) {
        candle_core::bail!("positive column {bad} of {columns} candidates");
    }
    let (a, c) = (anchors.detach(), candidates.detach());
    let tracked = anchors.track_op() || candidates.track_op();
    let rows_per_chunk = (chunk_logits / columns.max(1)).clamp(1, pairs.max(1));
    debug_assert!(
        blocked.is_sorted(),
        "blocked entries come sorted (Negatives::candidates)"
    );
    let (mut total, mut grad_a, mut grad_c) = (0f64, Vec::new(), None::<Tensor>);
    let mut start = 0;
    while start < pairs {
        let rows = rows_per_chunk.min(pairs - start);
        let a_chunk = a.narrow(0, start, rows)?;
        let mut logits = a_chunk
            .matmul(&c.t()?)?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let first = blocked.partition_point(|&(p, _)| (p as usize) < start);
        let mine = blocked[first..]
            .iter()
            .take_while(|&&(p, _)| (p as usize) < start + rows);
        let mask: Vec<(usize, usize)> = mine
            .map(|&(p, col)| (p as usize - start, col as usize))
            .collect();
        total += softmax_rows(
            &mut logits,
            columns,
            &positives[start..start + rows],
            scale as f32,
            log_q,
            &mask,
            pairs,
        );
        if tracked {
            let g = Tensor::from_vec(logits, (rows, columns), a.device())?.to_dtype(a.dtype())?;
            grad_a.push((g.matmul(&c)? * scale)?);
            let gc = (g.t()?.matmul(&a_chunk)? * scale)?;
            grad_c = Some(match grad_c {
                Some(acc) => (acc + gc)?,
                None => gc,
            });
        }
        start += rows;
    }
    let value =
        Tensor::new((total / pairs.max(1) as f64) as f32, a.device())?.to_dtype(a.dtype())?;
    let (Some(grad_c), false) = (grad_c, grad_a.is_empty()) else {
        return Ok(value);
    };
    let grad_a = Tensor::cat(&grad_a, 0)?;
    let surrogate = ((anchors * grad_a)?.sum_all()? + (candidates * grad_c)?.sum_all()?)?;
    (&surrogate - surrogate.detach())? + value
}

/// Turns each row of `logits` (`columns` wide; the raw products) into its loss gradient
/// `(softmax − onehot) / pairs`, in place, after scaling, the logQ correction and the blocked
/// entries (sorted by row); returns the rows' summed negative log-likelihood.
fn softmax_rows(
    logits: &mut [f32],
    columns: usize,
    positives: &[u32],
    scale: f32,
    log_q: Option<&[f32]>,
    blocked: &[(usize, usize)],
    pairs: usize,
) -> f64 {
    let (mut total, mut blocked) = (0f64, blocked.iter().peekable());
    for (r, row) in logits.chunks_exact_mut(columns).enumerate() {
        match log_q {
            Some(q) => row.iter_mut().zip(q).for_each(|(x, q)| *x = *x * scale - q),
            None => row.iter_mut().for_each(|x| *x *= scale),
        }
        while let Some(&(_, col)) = blocked.next_if(|&&(p, _)| p == r) {
            row[col] += BLOCKED;
        }
        let max = learn_kernels::max(row);
        let positive = positives[r] as usize;
        let target = row[positive];
        learn_kernels::math::exp_minus(row, max);
        let sum = learn_kernels::sum(row);
        total += f64::from(sum.ln() + max - target);
        let norm = 1.0 / (sum * pairs as f32);
        row.iter_mut().for_each(|x| *x *= norm);
        row[positive] -= 1.0 / pairs as f32;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    fn loss(
        anchors: &[[f32; 2]],
        candidates: &[[f32; 2]],
        positives: &[u32],
        log_q: Option<&[f32]>,
        blocked: &[(u32, u32)],
    ) -> f32 {
        softmax_loss(&t(anchors), &t(candidates), positives, 2.0, log_q, blocked)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// −log(e^{x_pos} / Σ e^{x_c}), in f64.
    fn nll(logits: &[f64], positive: usize) -> f64 {
        let sum: f64 = logits.iter().map(|x| x.exp()).sum();
        -(logits[positive].exp() / sum).ln()
    }

    /// The composed ops the fused loss replaces, differentiated by candle's autograd.
    fn composed(
        anchors: &Tensor,
        candidates: &Tensor,
        positives: &[u32],
        scale: f64,
        log_q: Option<&[f32]>,
        blocked: &[(u32, u32)],
    ) -> Tensor {
        let (pairs, columns) = (positives.len(), candidates.dim(0).unwrap());
        let mut logits = (anchors.matmul(&candidates.t().unwrap()).unwrap() * scale).unwrap();
        if let Some(q) = log_q {
            let q = Tensor::from_slice(q, (1, columns), &Device::Cpu).unwrap();
            logits = logits.broadcast_sub(&q).unwrap();
        }
        let mut mask = vec![0f32; pairs * columns];
        for &(p, c) in blocked {
            mask[p as usize * columns + c as usize] = BLOCKED;
        }
        let mask = Tensor::from_vec(mask, (pairs, columns), &Device::Cpu).unwrap();
        let log_probs = candle_nn::ops::log_softmax(&(logits + mask).unwrap(), 1).unwrap();
        let index = Tensor::from_slice(positives, (pairs, 1), &Device::Cpu).unwrap();
        log_probs
            .gather(&index, 1)
            .unwrap()
            .mean_all()
            .unwrap()
            .neg()
            .unwrap()
    }

    #[test]
    fn fused_value_and_gradients_match_candle_autograd_across_chunks() {
        use crate::tensor::max_abs_diff;
        use candle_core::{DType, Var};
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (pairs, columns, dim) = (37, 23, 8);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let a = Var::from_vec(random(pairs * dim), (pairs, dim), &Device::Cpu).unwrap();
        let c = Var::from_vec(random(columns * dim), (columns, dim), &Device::Cpu).unwrap();
        let log_q: Vec<f32> = random(columns);
        let positives: Vec<u32> = (0..pairs as u32)
            .map(|p| (p * 7) % columns as u32)
            .collect();
        let blocked: Vec<(u32, u32)> = (0..pairs as u32)
            .filter(|p| p % 3 == 0)
            .map(|p| (p, (p * 7 + 1) % columns as u32))
            .collect();
        let want = composed(
            a.as_tensor(),
            c.as_tensor(),
            &positives,
            3.0,
            Some(&log_q),
            &blocked,
        );
        let want_grads = want.backward().unwrap();
        // One chunk, a chunk per few pairs, a chunk per pair.
        for chunk in [1 << 20, 5 * columns, 1] {
            let got = chunked(
                a.as_tensor(),
                c.as_tensor(),
                &positives,
                3.0,
                Some(&log_q),
                &blocked,
                chunk,
            )
            .unwrap();
            let diff = (got.to_scalar::<f32>().unwrap() - want.to_scalar::<f32>().unwrap()).abs();
            assert!(diff < 1e-5, "chunk {chunk}: loss off by {diff}");
            let grads = got.backward().unwrap();
            for var in [&a, &c] {
                let (g, w) = (grads.get(var).unwrap(), want_grads.get(var).unwrap());
                let diff = max_abs_diff(g, w);
                assert!(diff < 1e-6, "chunk {chunk}: gradient off by {diff}");
            }
        }
        // Without a tracked input it is the value alone (monitoring), the same value.
        let detached = softmax_loss(
            &a.as_detached_tensor(),
            &c.as_detached_tensor(),
            &positives,
            3.0,
            Some(&log_q),
            &blocked,
        )
        .unwrap();
        assert_eq!(detached.dtype(), DType::F32);
        assert!(
            (detached.to_scalar::<f32>().unwrap() - want.to_scalar::<f32>().unwrap()).abs() < 1e-5
        );
    }

    #[test]
    fn full_softmax_hand_computed() {
        // Scale 2; anchor 0 scores [1, 0, 0.5] → logits [2, 0, 1], positive 0;
        // anchor 1 scores [0, 1, 0] → logits [0, 2, 0], positive 2.
        let got = loss(
            &[[1., 0.], [0., 1.]],
            &[[1., 0.], [0., 1.], [0.5, 0.]],
            &[0, 2],
            None,
            &[],
        );
        let want = (nll(&[2., 0., 1.], 0) + nll(&[0., 2., 0.], 2)) / 2.0;
        assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn log_q_is_subtracted_from_every_column_and_blocked_columns_vanish() {
        let log_q = [0.5f32, -1.0, 2.0];
        let got = loss(
            &[[1., 0.]],
            &[[1., 0.], [0., 1.], [0.5, 0.]],
            &[0],
            Some(&log_q),
            &[],
        );
        let want = nll(&[2. - 0.5, 0. + 1.0, 1. - 2.0], 0);
        assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        // Blocking column 2 leaves a two-way softmax.
        let got = loss(
            &[[1., 0.]],
            &[[1., 0.], [0., 1.], [0.5, 0.]],
            &[0],
            Some(&log_q),
            &[(0, 2)],
        );
        let want = nll(&[2. - 0.5, 0. + 1.0], 0);
        assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
}
