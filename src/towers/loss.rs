//! The contrastive loss: softmax cross-entropy of each (anchor, positive) pair over a set of
//! candidate items. Similarity is the cosine (inputs are unit vectors) times `scale` (= 1 /
//! temperature; LEARN's code uses 20). Which candidates a pair sees — the whole catalogue, sampled
//! items, the batch's targets — and their sampling-bias corrections are decided by
//! `train::negatives`.

use candle_core::{Result, Tensor};

/// Logit offset that removes a candidate from a pair's softmax.
const BLOCKED: f32 = -1e9;

/// Mean over pairs of `−log softmax(logits)[positive]`, where pair p's logits are
/// `anchors[p] · candidates[c] × scale − log_q[c]` for every candidate c except those `blocked`
/// for it. `anchors`: (P, D); `candidates`: (C, D); `positives[p]`: pair p's column in
/// `candidates`; `log_q` (C): log of each candidate's expected count in the sample (the
/// sampling-bias or "logQ" correction of Yi et al., RecSys 2019; None = no correction);
/// `blocked`: (pair, column) entries left out of that pair's softmax.
pub fn softmax_loss(
    anchors: &Tensor,
    candidates: &Tensor,
    positives: &[u32],
    scale: f64,
    log_q: Option<&[f32]>,
    blocked: &[(u32, u32)],
) -> Result<Tensor> {
    let (pairs, columns) = (positives.len(), candidates.dim(0)?);
    let device = anchors.device();
    let mut logits = (anchors.matmul(&candidates.t()?)? * scale)?;
    if let Some(log_q) = log_q {
        logits = logits.broadcast_sub(&Tensor::from_slice(log_q, (1, columns), device)?)?;
    }
    if !blocked.is_empty() {
        let mut mask = vec![0f32; pairs * columns];
        for &(p, c) in blocked {
            mask[p as usize * columns + c as usize] = BLOCKED;
        }
        logits = (logits + Tensor::from_vec(mask, (pairs, columns), device)?)?;
    }
    let log_probs = candle_nn::ops::log_softmax(&logits, 1)?;
    let positive = log_probs.gather(&Tensor::from_slice(positives, (pairs, 1), device)?, 1)?;
    positive.mean_all()?.neg()
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
