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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Catalogue;

/// How long a request may rank with a prior vector built earlier: rebuilding it (a hash lookup
/// and a logarithm per catalogue item) on every request costs more than the scoring itself.
const PRIOR_MAX_AGE: Duration = Duration::from_secs(1);

/// How often each item was acted on.
#[derive(Default)]
pub struct ItemCounts {
    inner: Mutex<(HashMap<String, u64>, u64)>,
    by_row: Mutex<Option<Arc<RowPrior>>>,
}

/// ln q(item) by catalogue row, as of `built`; rows added since get `unseen`.
pub struct RowPrior {
    built: Instant,
    rows: Vec<f32>,
    unseen: f32,
}

impl RowPrior {
    pub fn get(&self, row: usize) -> f32 {
        self.rows.get(row).copied().unwrap_or(self.unseen)
    }
}

impl ItemCounts {
    pub fn observe<'a>(&self, items: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for item in items {
            match inner.0.get_mut(item) {
                Some(count) => *count += 1,
                None => drop(inner.0.insert(item.to_string(), 1)),
            }
            inner.1 += 1;
        }
    }

    /// ln of each catalogue row's share ([`Self::log_share`]), rebuilt at most every
    /// PRIOR_MAX_AGE (by the request that finds it stale; the others use the previous one).
    pub fn by_row(&self, catalogue: &Catalogue) -> Arc<RowPrior> {
        let cached = self
            .by_row
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(prior) = cached.filter(|p| p.built.elapsed() < PRIOR_MAX_AGE) {
            return prior;
        }
        let (rows, unseen) = catalogue.with_ids(|ids| {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let share = log_share_of(&inner);
            let rows: Vec<f32> = ids
                .iter()
                .map(|id| share(inner.0.get(id).copied().unwrap_or(0)))
                .collect();
            (rows, share(0))
        });
        let prior = Arc::new(RowPrior {
            built: Instant::now(),
            rows,
            unseen,
        });
        *self.by_row.lock().unwrap_or_else(|p| p.into_inner()) = Some(prior.clone());
        prior
    }

    /// ln of each item's share of all actions (add-one smoothed).
    pub fn log_share<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> Vec<f32> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let share = log_share_of(&inner);
        items
            .into_iter()
            .map(|i| share(inner.0.get(i).copied().unwrap_or(0)))
            .collect()
    }
}

/// ln of the add-one smoothed share of an item acted on `count` times.
fn log_share_of(inner: &(HashMap<String, u64>, u64)) -> impl Fn(u64) -> f32 {
    let total = (inner.1 + inner.0.len() as u64 + 1) as f64;
    move |count| ((count + 1) as f64 / total).ln() as f32
}
