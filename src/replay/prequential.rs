//! Prequential (test-then-train) evaluation: before an action is produced, each arm is asked for
//! the user's top 10 — the service's online model (with its popularity prior, and by the
//! embeddings alone) and its frozen model, optionally a second service trained from scratch (both
//! ways), and a popularity baseline (counts of everything replayed so far);
//! each scores the rank of the action's item in its list (Recall@10, NDCG@10). No arm has seen
//! the action yet, so every score is out-of-sample.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// The popularity baseline, updated as the replay goes.
#[derive(Default)]
pub struct Popularity {
    counts: HashMap<String, u64>,
    /// Items by count, rebuilt lazily.
    ranked: Vec<(String, u64)>,
    stale: bool,
}

impl Popularity {
    /// Interactions with `item` so far.
    pub fn count(&self, item: &str) -> u64 {
        self.counts.get(item).copied().unwrap_or(0)
    }

    pub fn observe(&mut self, item: &str) {
        *self.counts.entry(item.to_string()).or_default() += 1;
        self.stale = true;
    }

    /// The `k` most popular items the user has not seen.
    pub fn top(&mut self, k: usize, seen: &HashSet<String>) -> Vec<String> {
        if self.stale {
            self.ranked = self.counts.iter().map(|(i, c)| (i.clone(), *c)).collect();
            self.ranked
                .sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            self.stale = false;
        }
        self.ranked
            .iter()
            .filter(|(i, _)| !seen.contains(i))
            .take(k)
            .map(|(i, _)| i.clone())
            .collect()
    }
}

/// One evaluated action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    /// Position of the action in the replay (0-based, actions only).
    pub action_index: usize,
    pub elapsed_secs: f64,
    /// Per arm (in the report's `arms` order): the 0-based rank of the action's item in that
    /// arm's top 10, None when it is not there.
    pub ranks: Vec<Option<u8>>,
    /// The item had fewer than [`COLD_BELOW`] interactions before this action.
    pub cold: bool,
    /// Model version that answered for the online model.
    pub version: u64,
}

/// A sample of the service's state during the replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LagSample {
    pub elapsed_secs: f64,
    pub actions_lag: i64,
    pub uploads_lag: i64,
    pub model_version: u64,
    pub train_steps: u64,
}

/// A target with fewer interactions than this before its probe counts as cold.
pub const COLD_BELOW: u64 = 5;

/// Recall@10 and NDCG@10 of one arm over some probes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub recall_10: f64,
    pub ndcg_10: f64,
    pub probes: usize,
}

/// Scores arm `arm` on `probes`.
pub fn score<'a>(probes: impl IntoIterator<Item = &'a Probe>, arm: usize) -> Score {
    let (mut hits, mut gain, mut n) = (0usize, 0f64, 0usize);
    for probe in probes {
        n += 1;
        if let Some(rank) = probe.ranks.get(arm).copied().flatten() {
            hits += 1;
            gain += 1.0 / (f64::from(rank) + 2.0).log2();
        }
    }
    let per = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
    Score {
        recall_10: per(hits as f64),
        ndcg_10: per(gain),
        probes: n,
    }
}

/// The arms' scores over consecutive windows of `window` probes: (actions replayed at the
/// window's end, one score per arm).
pub fn windows(probes: &[Probe], arms: usize, window: usize) -> Vec<(usize, Vec<Score>)> {
    probes
        .chunks(window.max(1))
        .map(|w| {
            (
                w.last().map_or(0, |p| p.action_index + 1),
                (0..arms).map(|arm| score(w, arm)).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popularity_ranks_by_count_and_skips_seen() {
        let mut pop = Popularity::default();
        for item in ["a", "b", "b", "c", "c", "c"] {
            pop.observe(item);
        }
        assert_eq!(pop.top(2, &HashSet::new()), ["c", "b"]);
        assert_eq!(pop.top(2, &HashSet::from(["c".to_string()])), ["b", "a"]);
    }

    #[test]
    fn windows_score_each_arm() {
        let probe = |i, online: Option<u8>| Probe {
            action_index: i,
            elapsed_secs: 0.0,
            ranks: vec![online, None, Some(0)],
            cold: false,
            version: 0,
        };
        let w = windows(
            &[probe(0, Some(0)), probe(5, None), probe(9, Some(2))],
            3,
            2,
        );
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].0, w[1].0), (6, 10));
        assert_eq!(w[0].1[0].recall_10, 0.5);
        assert_eq!(w[0].1[0].ndcg_10, 0.5, "rank 0 gains 1");
        assert_eq!(w[1].1[0].ndcg_10, 0.5, "rank 2 gains 1/log2(4)");
        assert_eq!((w[0].1[1].recall_10, w[0].1[2].recall_10), (0.0, 1.0));
    }
}
