//! Which candidate items each pair's softmax runs over (`training.negatives`), with the
//! sampling-bias ("logQ") correction of each candidate. Candidates are unique items, so a
//! positive's duplicates are never among its own negatives.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Negatives {
    /// Softmax over the whole catalogue (LEARN's fine-tuning, UniSRec, SASRec+): exact, costs the
    /// item tower over every item once per step.
    AllItems,
    /// Each pair: its positive + `negative_samples` items drawn uniformly for the whole batch.
    Sampled,
    /// The batch's targets (the paper's pre-training); with `logq_correction`, corrected for their
    /// popularity-proportional sampling.
    InBatch,
    /// The batch's targets + `negative_samples` uniform draws (mixed negative sampling), logQ-corrected.
    Mixed,
}

/// The candidates of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateSet {
    /// Candidate items (rows to run the item tower on), each once.
    pub items: Vec<u32>,
    /// Per pair: the column of its positive.
    pub positives: Vec<u32>,
    /// Per column: log of the item's expected count among the candidates, when corrected.
    pub log_q: Option<Vec<f32>>,
    /// (pair, column) entries left out of the pair's softmax.
    pub blocked: Vec<(u32, u32)>,
}

/// A step's view of the catalogue: the items candidates come from, the uniform draws, the
/// targets' popularity.
pub struct Pool<'a> {
    /// The candidate universe: offline, the items that occur in training (items held out as cold
    /// must not be trained down as everybody's negative); online, the catalogue.
    pub items: Universe<'a>,
    /// `negative_samples` uniform draws (with replacement) from `items`.
    pub drawn: &'a [u32],
    /// ln of each item's share of training targets, for the in-batch correction; None = off.
    pub log_share: Option<&'a [f32]>,
}

/// The items candidates and draws come from.
#[derive(Debug, Clone, Copy)]
pub enum Universe<'a> {
    /// These items.
    Items(&'a [u32]),
    /// Rows 0..n (a catalogue: its rows are their own items, nothing to materialise).
    Rows(usize),
}

impl Universe<'_> {
    pub fn len(self) -> usize {
        match self {
            Universe::Items(items) => items.len(),
            Universe::Rows(n) => n,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Every item, in order.
    pub fn for_each(self, mut f: impl FnMut(u32)) {
        match self {
            Universe::Items(items) => items.iter().for_each(|&i| f(i)),
            Universe::Rows(n) => (0..n as u32).for_each(f),
        }
    }
}

/// `count` uniform draws (with replacement) of an index into a universe of `len` items; callers
/// map indices to items (a catalogue's rows are their own indices: nothing to materialise).
pub fn draw_uniform(len: usize, count: usize, rng: &mut impl Rng) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    (0..count).map(|_| rng.random_range(0..len)).collect()
}

impl Negatives {
    /// Whether a step needs [`draw_uniform`] draws.
    pub fn draws(self) -> bool {
        matches!(self, Negatives::Sampled | Negatives::Mixed)
    }

    /// The candidates for pairs with these `targets`; `anchors[p]` identifies pair p's anchor
    /// (pairs sharing one are siblings: each one's other targets are blocked from its softmax).
    pub fn candidates(self, targets: &[u32], anchors: &[usize], pool: &Pool) -> CandidateSet {
        let mut columns: HashMap<u32, u32> = HashMap::new();
        let mut items = Vec::new();
        let mut column = |item: u32| {
            *columns.entry(item).or_insert_with(|| {
                items.push(item);
                items.len() as u32 - 1
            })
        };
        let batch = targets.len() as f32;
        let uniform = pool.drawn.len() as f32 / pool.items.len().max(1) as f32;
        let (positives, log_q): (Vec<u32>, _) = match self {
            Negatives::AllItems => {
                pool.items.for_each(|i| {
                    column(i);
                });
                // A target outside the universe (never in training) still gets its own column.
                (targets.iter().map(|&t| column(t)).collect(), None)
            }
            Negatives::InBatch => {
                let positives = targets.iter().map(|&t| column(t)).collect();
                let log_q = pool.log_share.map(|share| {
                    items
                        .iter()
                        .map(|&i| batch.ln() + share[i as usize])
                        .collect()
                });
                (positives, log_q)
            }
            // Uniform draws shift every logit by the same ln(n/N): no correction needed.
            Negatives::Sampled => {
                pool.drawn.iter().for_each(|&i| {
                    column(i);
                });
                (targets.iter().map(|&t| column(t)).collect(), None)
            }
            Negatives::Mixed => {
                let positives = targets.iter().map(|&t| column(t)).collect();
                pool.drawn.iter().for_each(|&i| {
                    column(i);
                });
                let log_q = pool.log_share.map(|share| {
                    items
                        .iter()
                        .map(|&i| (batch * share[i as usize].exp() + uniform).ln())
                        .collect()
                });
                (positives, log_q)
            }
        };
        let blocked = self.blocked(&positives, anchors, &columns, items.len(), pool);
        CandidateSet {
            items,
            positives,
            log_q,
            blocked,
        }
    }

    /// The (pair, column) entries kept out of each pair's softmax: its siblings' targets (pairs
    /// of one anchor), and with `sampled` negatives every target column but its own.
    fn blocked(
        self,
        positives: &[u32],
        anchors: &[usize],
        columns: &HashMap<u32, u32>,
        columns_len: usize,
        pool: &Pool,
    ) -> Vec<(u32, u32)> {
        let mut blocked = Vec::new();
        let mut siblings: HashMap<usize, Vec<u32>> = HashMap::new();
        for (p, &a) in anchors.iter().enumerate() {
            siblings.entry(a).or_default().push(p as u32);
        }
        for group in siblings.values().filter(|g| g.len() > 1) {
            for &p in group {
                for &q in group {
                    let (own, other) = (positives[p as usize], positives[q as usize]);
                    if own != other {
                        blocked.push((p, other));
                    }
                }
            }
        }
        if self == Negatives::Sampled {
            // A pair sees its own positive and the draws, not the other pairs' targets.
            let drawn: std::collections::HashSet<u32> =
                pool.drawn.iter().map(|i| columns[i]).collect();
            let target_only: Vec<u32> = (0..columns_len as u32)
                .filter(|c| !drawn.contains(c))
                .collect();
            for (p, &own) in positives.iter().enumerate() {
                for &c in target_only.iter().filter(|&&c| c != own) {
                    blocked.push((p as u32, c));
                }
            }
        }
        blocked.sort_unstable();
        blocked.dedup();
        blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn pool<'a>(drawn: &'a [u32], log_share: Option<&'a [f32]>) -> Pool<'a> {
        Pool {
            items: Universe::Items(&[0, 1, 2, 3, 4, 5]),
            drawn,
            log_share,
        }
    }

    #[test]
    fn all_items_is_the_catalogue_in_order() {
        let set = Negatives::AllItems.candidates(&[4, 1], &[0, 1], &pool(&[], None));
        assert_eq!(set.items, [0, 1, 2, 3, 4, 5]);
        assert_eq!(set.positives, [4, 1]);
        assert!(set.log_q.is_none() && set.blocked.is_empty());
    }

    #[test]
    fn items_outside_the_universe_are_never_negatives() {
        // Item 3 held out (cold): not a candidate of the catalogue softmax, nor drawn.
        let universe = [0, 1, 2, 4, 5];
        let pool = Pool {
            items: Universe::Items(&universe),
            drawn: &[],
            log_share: None,
        };
        let set = Negatives::AllItems.candidates(&[4], &[0], &pool);
        assert_eq!((set.items, set.positives), (vec![0, 1, 2, 4, 5], vec![3]));
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let drawn = draw_uniform(universe.len(), 500, &mut rng);
        assert!(drawn.iter().map(|&i| universe[i]).all(|i| i != 3));
    }

    #[test]
    fn duplicates_of_the_positive_are_one_column() {
        // Two users with the same target and a draw of that item too: one column, not a negative.
        let set = Negatives::Sampled.candidates(&[3, 3], &[0, 1], &pool(&[3, 5, 5], None));
        assert_eq!(set.items, [3, 5]);
        assert_eq!(set.positives, [0, 0]);
        assert!(set.blocked.is_empty(), "{:?}", set.blocked);
        // In-batch: item 2 twice → one column; the other pair's target is a negative.
        let set = Negatives::InBatch.candidates(&[2, 2, 4], &[0, 1, 2], &pool(&[], None));
        assert_eq!((set.items, set.positives), (vec![2, 4], vec![0, 0, 1]));
    }

    #[test]
    fn sampled_pairs_see_only_their_positive_and_the_draws() {
        let set = Negatives::Sampled.candidates(&[1, 2], &[0, 1], &pool(&[5], None));
        // Columns: 5 (draw), 1, 2. Pair 0 must not see item 2, pair 1 not item 1.
        assert_eq!(set.items, [5, 1, 2]);
        assert_eq!(set.blocked, [(0, 2), (1, 1)]);
    }

    #[test]
    fn sampled_softmax_with_log_q_hand_computed() {
        use crate::towers::loss::softmax_loss;
        use candle_core::{Device, Tensor};
        // Items 0..6 on the unit circle's axes; two pairs (targets 0 and 1), one draw (item 2).
        let share: Vec<f32> = [0.4f32, 0.2, 0.1, 0.1, 0.1, 0.1]
            .iter()
            .map(|s| s.ln())
            .collect();
        let set = Negatives::Mixed.candidates(&[0, 1], &[0, 1], &pool(&[2], Some(&share)));
        assert_eq!(set.items, [0, 1, 2]);
        let vectors = [[1f32, 0.], [0., 1.], [-1., 0.]];
        let candidates: Vec<f32> = set
            .items
            .iter()
            .flat_map(|&i| vectors[i as usize])
            .collect();
        let anchors = Tensor::new(&[[1f32, 0.], [0.6, 0.8]], &Device::Cpu).unwrap();
        let got = softmax_loss(
            &anchors,
            &Tensor::from_vec(candidates, (3, 2), &Device::Cpu).unwrap(),
            &set.positives,
            2.0,
            set.log_q.as_deref(),
            &set.blocked,
        )
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
        // logit = 2·cos − ln(2·p + 1/6) per column; pair 0 (positive column 0), pair 1 (column 1).
        let q = |p: f64| (2.0 * p + 1.0 / 6.0).ln();
        let row = |cos: [f64; 3]| -> Vec<f64> {
            cos.iter()
                .zip([0.4, 0.2, 0.1])
                .map(|(c, p)| 2.0 * c - q(p))
                .collect()
        };
        let nll = |logits: Vec<f64>, pos: usize| {
            let sum: f64 = logits.iter().map(|x| x.exp()).sum();
            -(logits[pos].exp() / sum).ln()
        };
        let want = (nll(row([1., 0., -1.]), 0) + nll(row([0.6, 0.8, -0.6]), 1)) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn dense_siblings_block_each_other_and_mixed_is_log_q_corrected() {
        let share: Vec<f32> = [0.5f32, 0.1, 0.1, 0.1, 0.1, 0.1]
            .iter()
            .map(|s| s.ln())
            .collect();
        // Pairs 0 and 1 share anchor 7 (targets 0 and 1); pair 2 is another user's (target 0).
        let set = Negatives::Mixed.candidates(&[0, 1, 0], &[7, 7, 8], &pool(&[4], Some(&share)));
        assert_eq!(set.items, [0, 1, 4]);
        assert_eq!(set.blocked, [(0, 1), (1, 0)]);
        let q = set.log_q.unwrap();
        let want = |share: f32| (3.0 * share + 1.0 / 6.0).ln();
        for (got, want) in q.iter().zip([want(0.5), want(0.1), want(0.1)]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
