//! Prequential (test-then-train) evaluation: before an action is produced, the service is asked
//! for the user's top 10 under the online model and under the frozen model, and a popularity
//! baseline (counts of everything replayed so far) ranks too; each scores a hit if the action's
//! item is in its list. The service has not seen the action yet, so every score is out-of-sample.

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
    pub online_hit: bool,
    pub frozen_hit: bool,
    pub popularity_hit: bool,
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

/// Recall@10 of the three recommenders over consecutive windows of `window` probes:
/// (actions replayed at the window's end, online, frozen, popularity).
pub fn windows(probes: &[Probe], window: usize) -> Vec<(usize, f64, f64, f64)> {
    probes
        .chunks(window.max(1))
        .map(|w| {
            let rate = |hit: fn(&Probe) -> bool| {
                w.iter().filter(|p| hit(p)).count() as f64 / w.len() as f64
            };
            (
                w.last().map_or(0, |p| p.action_index + 1),
                rate(|p| p.online_hit),
                rate(|p| p.frozen_hit),
                rate(|p| p.popularity_hit),
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
    fn windows_average_hits() {
        let probe = |i, hit| Probe {
            action_index: i,
            elapsed_secs: 0.0,
            online_hit: hit,
            frozen_hit: false,
            popularity_hit: true,
            version: 0,
        };
        let w = windows(&[probe(0, true), probe(5, false), probe(9, true)], 2);
        assert_eq!(w, vec![(6, 0.5, 0.0, 1.0), (10, 1.0, 0.0, 1.0)]);
    }
}
