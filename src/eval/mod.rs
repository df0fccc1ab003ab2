//! Owns offline evaluation with the paper's protocol: leave-one-out ([`split`]), full ranking over
//! all items, Recall@10/50, NDCG@10/50 and MRR ([`metrics`]), with and without masking the user's
//! history items; the recommenders compared ([`scorers`]: LEARN and SASRec towers, raw content,
//! popularity); [`fusion`] blends two rankings with a weight chosen on validation; the SVG plot
//! primitive ([`plot`]). The written report is `experiment::report`.

pub mod fusion;
pub mod metrics;
pub mod plot;
pub mod scorers;
pub mod split;

use std::collections::HashSet;

use candle_core::Tensor;
use serde::Serialize;

pub use metrics::{rank_of, Metrics};
pub use scorers::Scorer;
pub use split::{leave_one_out, Case, Split};

/// Metrics of one model on one set of cases.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// History items (other than the target) excluded from the ranking.
    pub masked: Metrics,
    /// Every item ranked, history included.
    pub unmasked: Metrics,
    /// Unmasked metrics on the cases whose target is a cold item (never seen in training), if any.
    pub cold_targets: Option<Metrics>,
    /// Unmasked metrics on the other cases, when cold items exist.
    pub warm_targets: Option<Metrics>,
}

const USERS_PER_CHUNK: usize = 512;

/// Ranks every case's target among all items.
pub fn evaluate(
    scorer: &dyn Scorer,
    cases: &[Case],
    cold: &HashSet<u32>,
) -> candle_core::Result<Evaluation> {
    let (mut masked, mut unmasked, mut is_cold) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in cases.chunks(USERS_PER_CHUNK) {
        let histories: Vec<&[u32]> = chunk.iter().map(|c| c.history.as_slice()).collect();
        let scores: Tensor = scorer.scores(&histories)?;
        let rows = scores.to_vec2::<f32>()?;
        for (case, row) in chunk.iter().zip(&rows) {
            masked.push(rank_of(row, case.target, &case.history));
            unmasked.push(rank_of(row, case.target, &[]));
            is_cold.push(cold.contains(&case.target));
        }
    }
    let subset = |want_cold: bool| -> Vec<usize> {
        unmasked
            .iter()
            .zip(&is_cold)
            .filter(|(_, &c)| c == want_cold)
            .map(|(r, _)| *r)
            .collect()
    };
    let (cold_targets, warm_targets) = if cold.is_empty() {
        (None, None)
    } else {
        (
            Some(Metrics::from_ranks(&subset(true))),
            Some(Metrics::from_ranks(&subset(false))),
        )
    };
    Ok(Evaluation {
        masked: Metrics::from_ranks(&masked),
        unmasked: Metrics::from_ranks(&unmasked),
        cold_targets,
        warm_targets,
    })
}
