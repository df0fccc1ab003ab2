//! Users with fresh actions, for the trainer (who to train on next) and for re-publishing (whose
//! embedding changed since the last checkpoint). Both sets are bounded: past their capacity the
//! least recently active user is dropped, so a trainer that falls behind samples the stream
//! instead of queueing it.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::Rng;

/// A bounded set of users ordered by their last action.
struct Recent {
    last_seen: HashMap<String, u64>,
    capacity: usize,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Self {
            last_seen: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn touch(&mut self, user: &str, tick: u64) {
        match self.last_seen.get_mut(user) {
            Some(seen) => *seen = tick,
            None => drop(self.last_seen.insert(user.to_string(), tick)),
        }
        if self.last_seen.len() > self.capacity {
            // Amortised: drop the oldest tenth at once rather than one per insert.
            let mut ticks: Vec<u64> = self.last_seen.values().copied().collect();
            let cut =
                (self.last_seen.len() - self.capacity + self.capacity / 10).min(ticks.len() - 1);
            let (_, &mut threshold, _) = ticks.select_nth_unstable(cut);
            self.last_seen.retain(|_, t| *t > threshold);
        }
    }

    /// Users sorted most recent first.
    fn by_recency(&self) -> Vec<(&String, u64)> {
        let mut users: Vec<(&String, u64)> = self.last_seen.iter().map(|(u, t)| (u, *t)).collect();
        users.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        users
    }
}

struct Inner {
    tick: u64,
    pending: Recent,
    since_checkpoint: Recent,
}

pub struct ActiveUsers {
    inner: Mutex<Inner>,
}

impl ActiveUsers {
    /// `pending`: users awaiting training; `republish`: users remembered for re-publishing.
    pub fn new(pending: usize, republish: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                tick: 0,
                pending: Recent::new(pending),
                since_checkpoint: Recent::new(republish),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn touch<'a>(&self, users: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        for user in users {
            inner.tick += 1;
            let tick = inner.tick;
            inner.pending.touch(user, tick);
            inner.since_checkpoint.touch(user, tick);
        }
    }

    pub fn pending(&self) -> usize {
        self.lock().pending.last_seen.len()
    }

    /// Takes up to `n` pending users, sampled without replacement with weight 1 / (1 + rank / n),
    /// rank 0 being the most recent: fresh activity first, older users still get a chance.
    pub fn take_batch(&self, n: usize, rng: &mut impl Rng) -> Vec<String> {
        let mut inner = self.lock();
        let mut keyed: Vec<(f64, String)> = inner
            .pending
            .by_recency()
            .into_iter()
            .enumerate()
            .map(|(rank, (user, _))| {
                let weight = 1.0 / (1.0 + rank as f64 / n.max(1) as f64);
                // Efraimidis–Spirakis: the n largest u^(1/w) are a weighted sample.
                let key = rng.random::<f64>().powf(1.0 / weight);
                (key, user.clone())
            })
            .collect();
        keyed.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        keyed.truncate(n);
        for (_, user) in &keyed {
            inner.pending.last_seen.remove(user);
        }
        keyed.into_iter().map(|(_, u)| u).collect()
    }

    /// Users active since the last call, most recent first (for re-publishing after a checkpoint).
    pub fn drain_since_checkpoint(&self) -> Vec<String> {
        let mut inner = self.lock();
        let users = inner
            .since_checkpoint
            .by_recency()
            .into_iter()
            .map(|(u, _)| u.clone())
            .collect();
        inner.since_checkpoint.last_seen.clear();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn bounded_and_taken_users_leave_the_pending_set() {
        let active = ActiveUsers::new(100, 10);
        let users: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
        active.touch(users.iter().map(String::as_str));
        assert!(active.pending() <= 100, "pending stays bounded");
        let mut rng = StdRng::seed_from_u64(1);
        let before = active.pending();
        let batch = active.take_batch(20, &mut rng);
        assert_eq!(active.pending(), before - 20);
        assert_eq!(batch.len(), 20);
        assert!(
            batch
                .iter()
                .all(|u| u[1..].parse::<usize>().unwrap() >= 900),
            "only recent users remain"
        );
        let republish = active.drain_since_checkpoint();
        assert!(republish.len() <= 10 && republish[0] == "u999");
        assert!(active.drain_since_checkpoint().is_empty());
    }
}
