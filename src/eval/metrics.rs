//! Rank-based metrics. A target's rank is the number of (unmasked) items scored strictly above it:
//! rank 0 is a hit at the top. Recall@K = P(rank < K); NDCG@K = mean of 1/log2(rank + 2) for
//! rank < K (one relevant item, so IDCG = 1); MRR = mean of 1/(rank + 1).

use serde::Serialize;

/// Rank of `target` under `scores`, ignoring the items in `masked` (the target itself never is).
pub fn rank_of(scores: &[f32], target: u32, masked: &[u32]) -> usize {
    let target_score = scores[target as usize];
    let above = scores.iter().filter(|&&s| s > target_score).count();
    let mut seen = Vec::with_capacity(masked.len());
    let masked_above = masked
        .iter()
        .filter(|&&m| m != target && scores[m as usize] > target_score)
        .filter(|&&m| {
            let first = !seen.contains(&m);
            seen.push(m);
            first
        })
        .count();
    above - masked_above
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub cases: usize,
    pub recall_10: f64,
    pub recall_50: f64,
    pub ndcg_10: f64,
    pub ndcg_50: f64,
    pub mrr: f64,
}

impl Metrics {
    pub fn from_ranks(ranks: &[usize]) -> Self {
        let n = ranks.len().max(1) as f64;
        let recall = |k: usize| ranks.iter().filter(|&&r| r < k).count() as f64 / n;
        let ndcg = |k: usize| {
            ranks
                .iter()
                .filter(|&&r| r < k)
                .map(|&r| 1.0 / ((r + 2) as f64).log2())
                .sum::<f64>()
                / n
        };
        Self {
            cases: ranks.len(),
            recall_10: recall(10),
            recall_50: recall(50),
            ndcg_10: ndcg(10),
            ndcg_50: ndcg(50),
            mrr: ranks.iter().map(|&r| 1.0 / (r + 1) as f64).sum::<f64>() / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_count_items_strictly_above_and_skip_masked() {
        let scores = [0.9, 0.1, 0.5, 0.7, 0.5];
        assert_eq!(rank_of(&scores, 0, &[]), 0);
        assert_eq!(
            rank_of(&scores, 2, &[]),
            2,
            "ties do not count against the target"
        );
        assert_eq!(rank_of(&scores, 1, &[]), 4);
        assert_eq!(
            rank_of(&scores, 1, &[0, 3, 3, 1]),
            2,
            "masked 0 and 3 (once), never the target"
        );
    }

    #[test]
    fn hand_computed_metrics() {
        let m = Metrics::from_ranks(&[0, 1, 9, 10, 60]);
        assert_eq!(m.cases, 5);
        assert!((m.recall_10 - 0.6).abs() < 1e-12);
        assert!((m.recall_50 - 0.8).abs() < 1e-12);
        let ndcg10 = (1.0 + 1.0 / 3f64.log2() + 1.0 / 11f64.log2()) / 5.0;
        assert!((m.ndcg_10 - ndcg10).abs() < 1e-12);
        let ndcg50 = ndcg10 + 1.0 / 12f64.log2() / 5.0;
        assert!((m.ndcg_50 - ndcg50).abs() < 1e-12);
        let mrr = (1.0 + 0.5 + 0.1 + 1.0 / 11.0 + 1.0 / 61.0) / 5.0;
        assert!((m.mrr - mrr).abs() < 1e-12);
    }
}
