//! Item popularity as this process has seen it: how often each item was acted on. Two uses:
//! the trainer's optional sampling-bias correction, and the popularity prior of recommendation.
//!
//! Why a prior: the towers are trained with in-batch negatives, which are drawn in proportion to
//! popularity, so their logits learn how much *more* a user likes an item than its popularity
//! predicts (a PMI-like score) — and a content-only item tower could not represent popularity
//! anyway. Ranking by `logit_scale · cos(u, v) + weight · ln q(item)` puts the popularity term
//! back (Yi et al., RecSys 2019, applied at serving). Counts cover the actions of this process's
//! partitions; with users spread over partitions that is a uniform sample of the stream.

use std::collections::HashMap;
use std::sync::Mutex;

/// How often each item was acted on.
#[derive(Default)]
pub struct ItemCounts {
    inner: Mutex<(HashMap<String, u64>, u64)>,
}

impl ItemCounts {
    pub fn observe<'a>(&self, items: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for item in items {
            *inner.0.entry(item.to_string()).or_default() += 1;
            inner.1 += 1;
        }
    }

    /// ln of each item's share of all actions (add-one smoothed).
    pub fn log_share<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> Vec<f32> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let total = (inner.1 + inner.0.len() as u64 + 1) as f64;
        items
            .into_iter()
            .map(|i| ((inner.0.get(i).copied().unwrap_or(0) + 1) as f64 / total).ln() as f32)
            .collect()
    }
}
