//! Contrastive losses. Every (anchor, target) pair of the same user is a positive; the negatives
//! are the targets of the other users in the batch (in-batch negatives), except those that are the
//! same item as the positive. Similarity is the cosine (inputs are unit vectors) times `scale`
//! (= 1/temperature; the paper's code uses 20).

use candle_core::{Result, Tensor};
use rand::seq::index::sample;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which pairs a user contributes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossMode {
    /// The paper: up to `history` positions of the history part × up to `targets` items of the
    /// target part (dense all-action, PinnerFormer style).
    Dense { history: usize, targets: usize },
    /// The released code: the history's last position × the next item.
    Last,
}

/// Logit offset that removes a candidate from a pair's softmax.
const BLOCKED: f32 = -1e9;

/// One user's contribution to a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSample {
    /// History part, oldest first (at most `max_len` items).
    pub history: Vec<u32>,
    /// Positions in `history` whose user embedding is an anchor.
    pub anchors: Vec<usize>,
    /// Target part: the items after the cut.
    pub targets: Vec<u32>,
}

/// Splits `sequence` at a random cut into history and target parts. None if shorter than 2.
pub fn sample_user(
    sequence: &[u32],
    mode: LossMode,
    max_len: usize,
    rng: &mut impl Rng,
) -> Option<UserSample> {
    let n = sequence.len();
    if n < 2 {
        return None;
    }
    let cut = rng.random_range(1..n);
    Some(split_at(sequence, cut, mode, max_len, rng))
}

/// Online, recent-weighted: the cut falls within the last `recent` actions, so the targets are
/// what the user did just now and the history is what came before.
pub fn sample_recent(
    sequence: &[u32],
    mode: LossMode,
    max_len: usize,
    recent: usize,
    rng: &mut impl Rng,
) -> Option<UserSample> {
    let n = sequence.len();
    if n < 2 {
        return None;
    }
    let cut = rng.random_range(n.saturating_sub(recent.max(1)).max(1)..n);
    Some(split_at(sequence, cut, mode, max_len, rng))
}

/// History = `sequence[..cut]` (its last `max_len`), targets from `cut` on; `1 <= cut < len`.
fn split_at(
    sequence: &[u32],
    cut: usize,
    mode: LossMode,
    max_len: usize,
    rng: &mut impl Rng,
) -> UserSample {
    let n = sequence.len();
    let history = sequence[cut.saturating_sub(max_len)..cut].to_vec();
    let last = history.len() - 1;
    let (anchors, targets) = match mode {
        LossMode::Last => (vec![last], vec![sequence[cut]]),
        LossMode::Dense {
            history: n_h,
            targets: n_t,
        } => {
            // The last position is always an anchor; the others are sampled among the earlier ones.
            let mut anchors: Vec<usize> =
                sample(rng, last, n_h.saturating_sub(1).min(last)).into_vec();
            anchors.push(last);
            anchors.sort_unstable();
            (anchors, sequence[cut..n.min(cut + n_t.max(1))].to_vec())
        }
    };
    UserSample {
        history,
        anchors,
        targets,
    }
}

/// InfoNCE over all same-user (anchor, target) pairs.
/// `anchors`: (M, D) with owners `anchor_user`; `targets`: (P, D) with owners `target_user` and
/// item ids `target_items`. Returns the mean loss over pairs.
///
/// `log_q` (by item id), when given, is the log of each item's probability of being sampled as an
/// in-batch target; it is subtracted from that candidate's logit (the sampling-bias or "logQ"
/// correction of Yi et al., RecSys 2019): in-batch negatives are drawn in proportion to
/// popularity, so without it the model learns to push popular items down.
pub fn info_nce(
    anchors: &Tensor,
    anchor_user: &[usize],
    targets: &Tensor,
    target_user: &[usize],
    target_items: &[u32],
    scale: f64,
    log_q: Option<&[f32]>,
) -> Result<Tensor> {
    let p_count = target_user.len();
    let correction = |q: usize| log_q.map_or(0.0, |lq| -lq[target_items[q] as usize]);
    let (mut rows, mut positives, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for (m, &user) in anchor_user.iter().enumerate() {
        for p in (0..p_count).filter(|&p| target_user[p] == user) {
            rows.push(m as u32);
            positives.push(p as u32);
            mask.extend((0..p_count).map(|q| {
                let other_positive = q != p && target_user[q] == user;
                let same_item = q != p && target_items[q] == target_items[p];
                if other_positive || same_item {
                    BLOCKED
                } else {
                    correction(q)
                }
            }));
        }
    }
    pair_nll(anchors, targets, scale, rows, positives, mask)
}

/// Softmax over the whole catalogue (the released code's fine-tuning): each (anchor, target) pair
/// is a classification of the target among all `items` (N, D); the user's other targets are masked.
pub fn full_softmax(
    anchors: &Tensor,
    anchor_user: &[usize],
    items: &Tensor,
    target_user: &[usize],
    target_items: &[u32],
    scale: f64,
) -> Result<Tensor> {
    let n = items.dim(0)?;
    let (mut rows, mut positives, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for (m, &user) in anchor_user.iter().enumerate() {
        let own: Vec<u32> = (0..target_user.len())
            .filter(|&p| target_user[p] == user)
            .map(|p| target_items[p])
            .collect();
        for &positive in &own {
            rows.push(m as u32);
            positives.push(positive);
            let mut row = vec![0f32; n];
            for &other in own.iter().filter(|&&o| o != positive) {
                row[other as usize] = BLOCKED;
            }
            mask.extend(row);
        }
    }
    pair_nll(anchors, items, scale, rows, positives, mask)
}

/// Mean negative log-likelihood of each pair's positive column: row `rows[q]` of
/// `anchors · candidates^T × scale`, plus `mask` row q (0 or BLOCKED), log-softmaxed.
fn pair_nll(
    anchors: &Tensor,
    candidates: &Tensor,
    scale: f64,
    rows: Vec<u32>,
    positives: Vec<u32>,
    mask: Vec<f32>,
) -> Result<Tensor> {
    let (q_count, n) = (rows.len(), candidates.dim(0)?);
    let device = anchors.device();
    let picked = anchors.index_select(&Tensor::from_vec(rows, q_count, device)?, 0)?;
    let logits = (picked.matmul(&candidates.t()?)? * scale)?;
    let masked = (logits + Tensor::from_vec(mask, (q_count, n), device)?)?;
    let log_probs = candle_nn::ops::log_softmax(&masked, 1)?;
    let positive = log_probs.gather(&Tensor::from_vec(positives, (q_count, 1), device)?, 1)?;
    positive.mean_all()?.neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    fn loss(
        anchor_user: &[usize],
        target_user: &[usize],
        items: &[u32],
        a: &[[f32; 2]],
        tg: &[[f32; 2]],
    ) -> f32 {
        info_nce(&t(a), anchor_user, &t(tg), target_user, items, 1.0, None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn hand_computed_two_users() {
        // Each anchor scores 1 with its own target and 0 with the other user's: -log(e/(e+1)).
        let want = (1.0f32 + (-1.0f32).exp()).ln();
        let got = loss(
            &[0, 1],
            &[0, 1],
            &[5, 6],
            &[[1., 0.], [0., 1.]],
            &[[1., 0.], [0., 1.]],
        );
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn same_item_negative_and_own_other_targets_are_masked() {
        // The other user's target is the same item: no negative left, loss 0.
        let got = loss(
            &[0, 1],
            &[0, 1],
            &[5, 5],
            &[[1., 0.], [0., 1.]],
            &[[1., 0.], [0., 1.]],
        );
        assert!(got.abs() < 1e-6, "{got}");
        // User 0 has two targets: each pair's negatives exclude the other own target.
        // Pairs: (a0,t0): logits [1, 0.5(own, masked), 0] → -log(e/(e+1)); (a0,t1): [.., 0.5, 0] → -log(e^.5/(e^.5+1)).
        let got = loss(
            &[0],
            &[0, 0, 1],
            &[1, 2, 3],
            &[[1., 0.]],
            &[[1., 0.], [0.5, 0.], [0., 1.]],
        );
        let want = ((1.0f32 + (-1.0f32).exp()).ln() + (1.0f32 + (-0.5f32).exp()).ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn full_softmax_hand_computed() {
        // Catalogue of 3 items; the anchor scores [1, 0, 0.5]; target item 0; item 2 is another own target (masked).
        let items = t(&[[1., 0.], [0., 1.], [0.5, 0.]]);
        let got = full_softmax(&t(&[[1., 0.]]), &[0], &items, &[0, 0], &[0, 2], 1.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Pair (0): -log(e/(e+1)); pair (2): logits [1 masked, 0, 0.5] → -log(e^.5/(e^.5+1)).
        let want = ((1.0f32 + (-1.0f32).exp()).ln() + (1.0f32 + (-0.5f32).exp()).ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn sampling_respects_the_modes() {
        let mut rng = StdRng::seed_from_u64(1);
        let seq: Vec<u32> = (0..30).collect();
        for _ in 0..50 {
            let s = sample_user(
                &seq,
                LossMode::Dense {
                    history: 4,
                    targets: 3,
                },
                8,
                &mut rng,
            )
            .unwrap();
            let cut = s.history.last().unwrap() + 1;
            assert!(
                s.history.len() <= 8 && s.anchors.len() <= 4 && (1..=3).contains(&s.targets.len())
            );
            assert_eq!(s.targets[0], cut, "targets follow the history");
            assert_eq!(*s.anchors.last().unwrap(), s.history.len() - 1);
            let l = sample_user(&seq, LossMode::Last, 8, &mut rng).unwrap();
            assert_eq!((l.anchors.len(), l.targets.len()), (1, 1));
            assert_eq!(l.targets[0], l.history.last().unwrap() + 1);
        }
        assert!(sample_user(&[1], LossMode::Last, 8, &mut rng).is_none());
    }
}
