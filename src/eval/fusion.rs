//! Owns score fusion: LEARN's ranking blended with the whitened raw-content ranking,
//! `tower + w · content`, with `w` chosen on the validation split (never on test). The content
//! space ranks an item it has never seen in training as well as one it has, so the blend leans on
//! it where the towers know least (cold items) — UniSRec-style text-only rankers lack this.

use candle_core::{Result, Tensor};

use super::scorers::Scorer;
use super::split::Case;
use super::{rank_of, Metrics};

/// Blend weights tried on validation (0: the towers alone).
pub const WEIGHTS: [f64; 8] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0];

/// `first + weight · second`, both (histories, items) score matrices.
pub struct FusedScorer<'a> {
    pub first: &'a dyn Scorer,
    pub second: &'a dyn Scorer,
    pub weight: f64,
}

impl Scorer for FusedScorer<'_> {
    fn scores(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let first = self.first.scores(histories)?;
        if self.weight == 0.0 {
            return Ok(first);
        }
        first + (self.second.scores(histories)? * self.weight)?
    }
}

/// The weight of [`WEIGHTS`] whose blend has the best unmasked NDCG@10 on `valid`, and each
/// weight's validation NDCG@10. Both score matrices are computed once per chunk of users and
/// blended at every weight (the weights share them).
pub fn select_weight(
    first: &dyn Scorer,
    second: &dyn Scorer,
    valid: &[Case],
) -> Result<(f64, Vec<(f64, f64)>)> {
    let mut ranks = vec![Vec::with_capacity(valid.len()); WEIGHTS.len()];
    for chunk in valid.chunks(super::USERS_PER_CHUNK) {
        let histories: Vec<&[u32]> = chunk.iter().map(|c| c.history.as_slice()).collect();
        let (a, b) = (first.scores(&histories)?, second.scores(&histories)?);
        for (&weight, ranks) in WEIGHTS.iter().zip(&mut ranks) {
            let blended = if weight == 0.0 {
                a.clone()
            } else {
                (&a + (&b * weight)?)?
            };
            for (case, row) in chunk.iter().zip(blended.to_vec2::<f32>()?) {
                ranks.push(rank_of(&row, case.target, &[]));
            }
        }
    }
    let curve: Vec<(f64, f64)> = WEIGHTS
        .iter()
        .zip(&ranks)
        .map(|(&w, r)| (w, Metrics::from_ranks(r).ndcg_10))
        .collect();
    let best = curve
        .iter()
        .copied()
        .fold((0.0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    Ok((best.0, curve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Scores one fixed row for every history.
    struct Fixed(Vec<f32>);

    impl Scorer for Fixed {
        fn scores(&self, histories: &[&[u32]]) -> Result<Tensor> {
            let row = Tensor::new(self.0.as_slice(), &Device::Cpu)?;
            row.unsqueeze(0)?.repeat((histories.len(), 1))
        }
    }

    #[test]
    fn the_blend_adds_weighted_scores_and_validation_picks_the_weight() {
        // Item 2 is the target; the towers rank it third, the content first.
        let towers = Fixed(vec![0.9, 0.8, 0.7, 0.0]);
        let content = Fixed(vec![0.0, 0.0, 1.0, 0.0]);
        let fused = FusedScorer {
            first: &towers,
            second: &content,
            weight: 0.5,
        };
        let scores = fused.scores(&[&[0]]).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(scores[0], vec![0.9, 0.8, 1.2, 0.0]);
        let valid = vec![Case {
            user: 0,
            history: vec![3],
            target: 2,
        }];
        let (weight, curve) = select_weight(&towers, &content, &valid).unwrap();
        assert_eq!(curve.len(), WEIGHTS.len());
        let best = curve.iter().find(|c| c.0 == weight).unwrap().1;
        assert!(weight >= 0.2 && (best - 1.0).abs() < 1e-9, "{curve:?}");
        assert!(
            curve[0].1 < 1.0,
            "the towers alone rank it third: {curve:?}"
        );
    }
}
