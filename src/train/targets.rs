//! Which (history position → target item) pairs a user's sequence contributes to a training step
//! (`training.loss`). The towers are causal, so the output at position i has seen items 0..=i only
//! and every position can be an anchor at no extra forward cost.

use rand::seq::index::sample;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How a sequence becomes training pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// SASRec-style: the next item at every position (every prefix of the sequence is a training
    /// row, as UniSRec's augmented prefixes are, in one forward pass).
    AllPositions,
    /// The paper: a random cut; up to N_h positions of the history part × up to N_t items of the
    /// target part (dense all-action, PinnerFormer style).
    Dense,
    /// LEARN's released code: a random cut; the history's last position × the next item.
    Last,
}

/// One positive: the tower output at `position` of the history should score `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub position: usize,
    pub target: u32,
}

/// One row of a micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSample {
    /// Input items, oldest first (at most `max_len`).
    pub history: Vec<u32>,
    /// Sorted by position. Pairs that share a position share an anchor: each one's other targets
    /// are left out of its negatives (dense mode).
    pub pairs: Vec<Pair>,
}

/// The shape of the pairs: the mode and, for `dense`, N_h and N_t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetSpec {
    pub targets: Targets,
    pub history_positions: usize,
    pub target_items: usize,
}

impl TargetSpec {
    /// One epoch's rows for a training sequence. `all_positions` covers the whole sequence once
    /// (windows of `max_len + 1` items from the end, each window's first item the previous
    /// window's last target); `dense` and `last` take one random cut. Empty below 2 items.
    pub fn epoch_samples(
        &self,
        sequence: &[u32],
        max_len: usize,
        rng: &mut impl Rng,
    ) -> Vec<UserSample> {
        let n = sequence.len();
        if n < 2 {
            return Vec::new();
        }
        match self.targets {
            Targets::AllPositions => {
                let mut samples = Vec::new();
                let mut end = n;
                loop {
                    let start = end.saturating_sub(max_len + 1);
                    samples.push(next_items(&sequence[start..end], 0));
                    if start == 0 {
                        break samples;
                    }
                    end = start + 1;
                }
            }
            Targets::Dense | Targets::Last => {
                let cut = rng.random_range(1..n);
                vec![self.split_at(sequence, cut, max_len, rng)]
            }
        }
    }

    /// Online, every fresh action supervised: the last `fresh` items of `sequence` are new since
    /// the user was last trained on. `all_positions`: windows of `max_len + 1` items from the end
    /// (as in [`Self::epoch_samples`]) until one reaches the first fresh item, every position of
    /// each window supervised — the fresh actions, and the recent past they follow revisited with
    /// them. `dense` and `last`: one cut within the fresh actions.
    pub fn fresh_samples(
        &self,
        sequence: &[u32],
        max_len: usize,
        fresh: usize,
        rng: &mut impl Rng,
    ) -> Vec<UserSample> {
        let n = sequence.len();
        if n < 2 {
            return Vec::new();
        }
        let first_fresh = n.saturating_sub(fresh.max(1)).max(1);
        if self.targets != Targets::AllPositions {
            let cut = rng.random_range(first_fresh..n);
            return vec![self.split_at(sequence, cut, max_len, rng)];
        }
        let mut samples = Vec::new();
        let mut end = n;
        loop {
            let start = end.saturating_sub(max_len + 1);
            samples.push(next_items(&sequence[start..end], 0));
            // The window's first target is sequence[start + 1]: done once that is not fresh.
            if start < first_fresh {
                break samples;
            }
            end = start + 1;
        }
    }

    /// History = `sequence[..cut]` (its last `max_len`), targets from `cut` on; `1 <= cut < len`.
    fn split_at(
        &self,
        sequence: &[u32],
        cut: usize,
        max_len: usize,
        rng: &mut impl Rng,
    ) -> UserSample {
        let history = sequence[cut.saturating_sub(max_len)..cut].to_vec();
        let last = history.len() - 1;
        let pairs = match self.targets {
            Targets::Dense => {
                // The last position is always an anchor; the others are sampled among the earlier ones.
                let mut anchors: Vec<usize> = sample(
                    rng,
                    last,
                    self.history_positions.saturating_sub(1).min(last),
                )
                .into_vec();
                anchors.push(last);
                anchors.sort_unstable();
                let end = sequence.len().min(cut + self.target_items.max(1));
                anchors
                    .iter()
                    .flat_map(|&position| {
                        sequence[cut..end]
                            .iter()
                            .map(move |&target| Pair { position, target })
                    })
                    .collect()
            }
            _ => vec![Pair {
                position: last,
                target: sequence[cut],
            }],
        };
        UserSample { history, pairs }
    }
}

/// `window[..len-1]` as history, the next item at each position from `from` on as its target.
fn next_items(window: &[u32], from: usize) -> UserSample {
    UserSample {
        history: window[..window.len() - 1].to_vec(),
        pairs: (from..window.len() - 1)
            .map(|position| Pair {
                position,
                target: window[position + 1],
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn spec(targets: Targets) -> TargetSpec {
        TargetSpec {
            targets,
            history_positions: 4,
            target_items: 3,
        }
    }

    /// Every pair's target, checked to be the next item of a history of at most `max_len`.
    fn next_item_targets(samples: &[UserSample], max_len: usize) -> Vec<u32> {
        samples
            .iter()
            .flat_map(|s| {
                assert!(s.history.len() <= max_len);
                s.pairs.iter().map(|p| {
                    assert_eq!(p.target, s.history[p.position] + 1, "next item");
                    p.target
                })
            })
            .collect()
    }

    #[test]
    fn all_positions_supervise_every_next_item_once() {
        let mut rng = StdRng::seed_from_u64(1);
        let seq: Vec<u32> = (100..112).collect();
        let samples = spec(Targets::AllPositions).epoch_samples(&seq, 4, &mut rng);
        let mut targets = next_item_targets(&samples, 4);
        targets.sort_unstable();
        assert_eq!(targets, (101..112).collect::<Vec<_>>());
    }

    #[test]
    fn fresh_samples_supervise_every_fresh_action() {
        let mut rng = StdRng::seed_from_u64(1);
        let seq: Vec<u32> = (100..130).collect();
        for fresh in [1, 3, 4, 5, 9, 29, 40] {
            let samples = spec(Targets::AllPositions).fresh_samples(&seq, 4, fresh, &mut rng);
            let supervised: std::collections::BTreeSet<u32> =
                next_item_targets(&samples, 4).into_iter().collect();
            let first_fresh = 130 - fresh.min(29) as u32;
            assert!(
                (first_fresh..130).all(|t| supervised.contains(&t)),
                "fresh {fresh}: every fresh action is a target"
            );
            // Windows of max_len + 1 items: at most one more than the fresh ones need.
            assert!(samples.len() <= fresh.div_ceil(4).max(1));
        }
        // A short sequence: one window, every next item.
        let s = spec(Targets::AllPositions).fresh_samples(&seq[..3], 4, 1, &mut rng);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].pairs.len(), 2);
        assert!(spec(Targets::Dense)
            .fresh_samples(&seq, 4, 3, &mut rng)
            .iter()
            .all(|s| s.pairs.iter().all(|p| p.target >= 127)));
    }

    #[test]
    fn dense_and_last_cut_once() {
        let mut rng = StdRng::seed_from_u64(1);
        let seq: Vec<u32> = (0..30).collect();
        for _ in 0..50 {
            let s = &spec(Targets::Dense).epoch_samples(&seq, 8, &mut rng)[0];
            let cut = s.history.last().unwrap() + 1;
            let anchors: std::collections::BTreeSet<usize> =
                s.pairs.iter().map(|p| p.position).collect();
            assert!(s.history.len() <= 8 && anchors.len() <= 4);
            assert_eq!(
                s.pairs.len(),
                anchors.len()
                    * s.pairs
                        .iter()
                        .filter(|p| p.position == s.history.len() - 1)
                        .count()
            );
            assert!(s.pairs.iter().all(|p| (cut..cut + 3).contains(&p.target)));
            assert_eq!(*anchors.last().unwrap(), s.history.len() - 1);
            let l = &spec(Targets::Last).epoch_samples(&seq, 8, &mut rng)[0];
            assert_eq!(l.pairs.len(), 1);
            assert_eq!(l.pairs[0].target, l.history.last().unwrap() + 1);
        }
        assert!(spec(Targets::Last)
            .epoch_samples(&[1], 8, &mut rng)
            .is_empty());
    }
}
