//! Item popularity: how often each item was acted on, decayed with a half-life and shared by every
//! process through the store (`service/popularity.rs` adds this process's new counts and takes
//! everyone's every `serving.popularity_sync_ms`; the counts survive restarts). Two uses: the
//! trainer's optional sampling-bias correction, and the popularity prior of recommendation.
//!
//! Why a prior: the towers are trained with in-batch negatives, which are drawn in proportion to
//! popularity, so their logits learn how much *more* a user likes an item than its popularity
//! predicts (a PMI-like score) — and a content-only item tower could not represent popularity
//! anyway. Ranking by `logit_scale · cos(u, v) + weight · ln q(item)` puts the popularity term
//! back (Yi et al., RecSys 2019, applied at serving). Between two syncs the local view is the last
//! shared one plus this process's own actions since.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Catalogue;

/// How often each item was acted on.
#[derive(Default)]
pub struct ItemCounts {
    inner: Mutex<Counts>,
    by_row: Mutex<Option<Arc<RowPrior>>>,
}

#[derive(Default)]
struct Counts {
    counts: HashMap<String, f64>,
    total: f64,
    /// Observed here and not yet added to the shared counts.
    pending: HashMap<String, f64>,
}

/// ln q(item) by catalogue row; rows added since it was built get `unseen`.
pub struct RowPrior {
    rows: Vec<f32>,
    unseen: f32,
}

impl RowPrior {
    pub fn get(&self, row: usize) -> f32 {
        self.rows.get(row).copied().unwrap_or(self.unseen)
    }
}

impl ItemCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn observe<'a>(&self, items: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        for item in items {
            add(&mut inner.counts, item, 1.0);
            add(&mut inner.pending, item, 1.0);
            inner.total += 1.0;
        }
    }

    /// The counts observed since the last call, to be added to the shared ones.
    pub fn take_pending(&self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.lock().pending)
            .into_iter()
            .collect()
    }

    /// Gives back counts that could not be shared (kept for the next sync).
    pub fn restore_pending(&self, pending: Vec<(String, f64)>) {
        let mut inner = self.lock();
        for (item, count) in pending {
            add(&mut inner.pending, &item, count);
        }
    }

    /// Replaces the local view by the shared counts, plus what was observed here since they were
    /// taken (still pending).
    pub fn replace(&self, shared: HashMap<String, f64>) {
        let mut inner = self.lock();
        let mut counts = shared;
        for (item, count) in &inner.pending {
            add(&mut counts, item, *count);
        }
        inner.total = counts.values().sum();
        inner.counts = counts;
    }

    /// ln of each catalogue row's share ([`Self::log_share`]) as of the last
    /// [`Self::refresh_rows`] (built here only the first time): rebuilding it — a hash lookup and
    /// a logarithm per catalogue item — is for the popularity sync, never for a request.
    pub fn by_row(&self, catalogue: &Catalogue) -> Arc<RowPrior> {
        let cached = self
            .by_row
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        cached.unwrap_or_else(|| self.refresh_rows(catalogue))
    }

    /// Rebuilds the by-row prior from the current counts.
    pub fn refresh_rows(&self, catalogue: &Catalogue) -> Arc<RowPrior> {
        let (rows, unseen) = catalogue.with_ids(|ids| {
            let inner = self.lock();
            let share = log_share_of(&inner);
            let rows: Vec<f32> = ids
                .iter()
                .map(|id| share(inner.counts.get(id).copied().unwrap_or(0.0)))
                .collect();
            (rows, share(0.0))
        });
        let prior = Arc::new(RowPrior { rows, unseen });
        *self.by_row.lock().unwrap_or_else(|p| p.into_inner()) = Some(prior.clone());
        prior
    }

    /// ln of each item's share of all actions (add-one smoothed).
    pub fn log_share<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> Vec<f32> {
        let inner = self.lock();
        let share = log_share_of(&inner);
        items
            .into_iter()
            .map(|i| share(inner.counts.get(i).copied().unwrap_or(0.0)))
            .collect()
    }
}

fn add(counts: &mut HashMap<String, f64>, item: &str, count: f64) {
    match counts.get_mut(item) {
        Some(c) => *c += count,
        None => drop(counts.insert(item.to_string(), count)),
    }
}

/// ln of the add-one smoothed share of an item acted on `count` times.
fn log_share_of(inner: &Counts) -> impl Fn(f64) -> f32 {
    let total = inner.total + inner.counts.len() as f64 + 1.0;
    move |count| ((count + 1.0) / total).ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_counts_replace_the_local_view_and_keep_what_is_pending() {
        let counts = ItemCounts::default();
        counts.observe(["a", "a", "b"]);
        let mut pending = counts.take_pending();
        pending.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(pending, [("a".to_string(), 2.0), ("b".to_string(), 1.0)]);
        assert!(counts.take_pending().is_empty());
        // Observed while the sync ran: kept on top of the shared counts.
        counts.observe(["b"]);
        counts.replace(HashMap::from([
            ("a".to_string(), 10.0),
            ("c".to_string(), 3.0),
        ]));
        let share = |n: f64| ((n + 1.0) / (14.0 + 3.0 + 1.0)).ln() as f32;
        assert_eq!(
            counts.log_share(["a", "b", "c", "d"]),
            [share(10.0), share(1.0), share(3.0), share(0.0)]
        );
        // A failed sync gives its counts back for the next one.
        counts.restore_pending(vec![("a".to_string(), 2.0)]);
        let mut pending = counts.take_pending();
        pending.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(pending, [("a".to_string(), 2.0), ("b".to_string(), 1.0)]);
    }
}
