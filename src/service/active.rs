//! Users with fresh actions, for the trainer (who to train on next) and for re-publishing (whose
//! embedding changed since the last checkpoint). Both sets are bounded: past their capacity the
//! least recently active user is dropped, so a trainer that falls behind samples the stream
//! instead of queueing it. Beside them, a [`Reservoir`] of users seen over the whole stream, whose
//! stored histories a step replays.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::Rng;

use super::reservoir::Reservoir;

/// When a user last acted and how many actions they took since they were last taken.
#[derive(Clone, Copy)]
struct Seen {
    tick: u64,
    actions: u64,
    /// Wall clock of the last action (ms since the epoch).
    at_ms: i64,
}

/// A bounded set of users ordered by their last action.
struct Recent {
    last_seen: HashMap<String, Seen>,
    capacity: usize,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Self {
            last_seen: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn touch(&mut self, user: &str, tick: u64, at_ms: i64) {
        match self.last_seen.get_mut(user) {
            Some(seen) => {
                seen.tick = tick;
                seen.actions += 1;
                seen.at_ms = at_ms;
            }
            None => drop(self.last_seen.insert(
                user.to_string(),
                Seen {
                    tick,
                    actions: 1,
                    at_ms,
                },
            )),
        }
        if self.last_seen.len() > self.capacity {
            // Amortised: drop the oldest tenth at once rather than one per insert.
            let mut ticks: Vec<u64> = self.last_seen.values().map(|s| s.tick).collect();
            let cut =
                (self.last_seen.len() - self.capacity + self.capacity / 10).min(ticks.len() - 1);
            let (_, &mut threshold, _) = ticks.select_nth_unstable(cut);
            self.last_seen.retain(|_, s| s.tick > threshold);
        }
    }

    /// Users sorted most recent first.
    fn by_recency(&self) -> Vec<(&String, u64)> {
        let mut users: Vec<(&String, u64)> =
            self.last_seen.iter().map(|(u, s)| (u, s.tick)).collect();
        users.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        users
    }
}

struct Inner {
    tick: u64,
    pending: Recent,
    since_checkpoint: Recent,
    past: Reservoir,
}

/// Users taken for a training step.
pub struct Taken {
    pub users: Vec<String>,
    /// Per user: their actions since they were last taken, at most `per_user`.
    pub fresh: Vec<u64>,
    /// Users from the reservoir, none of them in `users`, whose stored histories are replayed.
    pub replay: Vec<String>,
    /// When the newest of those actions was ingested (ms since the epoch); None: no users.
    pub newest_ms: Option<i64>,
}

impl Taken {
    /// The fresh actions a step over these users trains on (the sum of `fresh`).
    pub fn actions(&self) -> u64 {
        self.fresh.iter().sum()
    }
}

pub struct ActiveUsers {
    inner: Mutex<Inner>,
}

impl ActiveUsers {
    /// `pending`: users awaiting training (and held in the replay reservoir); `republish`: users
    /// remembered for re-publishing.
    pub fn new(pending: usize, republish: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                tick: 0,
                pending: Recent::new(pending),
                since_checkpoint: Recent::new(republish),
                past: Reservoir::new(pending),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn touch<'a>(&self, users: impl IntoIterator<Item = &'a str>) {
        let now = crate::schemas::now_ms();
        let mut inner = self.lock();
        for user in users {
            inner.tick += 1;
            let tick = inner.tick;
            inner.pending.touch(user, tick, now);
            inner.since_checkpoint.touch(user, tick, now);
            inner.past.offer(user);
        }
    }

    pub fn pending(&self) -> usize {
        self.lock().pending.last_seen.len()
    }

    /// Takes up to `n` pending users, sampled without replacement with weight 1 / (1 + rank / n),
    /// rank 0 being the most recent: fresh activity first, older users still get a chance.
    /// `Taken::fresh` counts their fresh actions, at most `per_user` each (what a step trains on);
    /// `Taken::replay` adds up to `replay` other users from the reservoir.
    pub fn take_batch(&self, n: usize, per_user: u64, replay: usize, rng: &mut impl Rng) -> Taken {
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
        let (mut fresh, mut newest_ms) = (Vec::with_capacity(keyed.len()), None);
        for (_, user) in &keyed {
            let seen = inner.pending.last_seen.remove(user);
            fresh.push(seen.map_or(0, |s| s.actions.min(per_user)));
            newest_ms = newest_ms.max(seen.map(|s| s.at_ms));
        }
        let users: Vec<String> = keyed.into_iter().map(|(_, u)| u).collect();
        let taken: std::collections::HashSet<&str> = users.iter().map(String::as_str).collect();
        let replay = inner.past.sample(replay, &taken, rng);
        Taken {
            fresh,
            replay,
            users,
            newest_ms,
        }
    }

    /// Puts users taken for a step that did not run back among the pending, with their fresh
    /// actions (merged with any that arrived since), so nothing fresh is skipped.
    pub fn untake(&self, taken: &Taken) {
        let mut inner = self.lock();
        let at_ms = taken.newest_ms.unwrap_or_else(crate::schemas::now_ms);
        for (user, &fresh) in taken.users.iter().zip(&taken.fresh) {
            inner.tick += 1;
            let tick = inner.tick;
            let seen = inner.pending.last_seen.entry(user.clone()).or_insert(Seen {
                tick,
                actions: 0,
                at_ms,
            });
            seen.actions += fresh;
        }
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
        let taken = active.take_batch(20, 5, 0, &mut rng);
        let batch = &taken.users;
        assert_eq!(active.pending(), before - 20);
        assert_eq!((batch.len(), taken.actions()), (20, 20), "one action each");
        assert!(
            batch
                .iter()
                .all(|u| u[1..].parse::<usize>().unwrap() >= 900),
            "only recent users remain"
        );
        let republish = active.drain_since_checkpoint();
        assert!(republish.len() <= 10 && republish[0] == "u999");
        assert!(active.drain_since_checkpoint().is_empty());
        active.touch(["x", "y"]);
        let alone = active.take_batch(1000, 5, 0, &mut rng);
        assert_eq!(active.pending(), 0);
        active.untake(&alone);
        assert_eq!(
            active.pending(),
            alone.users.len(),
            "a step that did not run gives them back"
        );
        assert_eq!(
            active.take_batch(1000, 5, 0, &mut rng).actions(),
            alone.actions()
        );
        active.touch(["x"]);
        let replayed = active.take_batch(1, 5, 8, &mut rng);
        assert_eq!(replayed.replay.len(), 8, "replayed from the reservoir");
        assert!(!replayed.replay.contains(&replayed.users[0]));
    }

    #[test]
    fn taken_actions_count_each_users_fresh_actions_up_to_the_cap() {
        let active = ActiveUsers::new(100, 10);
        active.touch(["a", "b", "a", "a", "c", "a", "a", "a", "a"]);
        let mut rng = StdRng::seed_from_u64(1);
        let taken = active.take_batch(10, 5, 0, &mut rng);
        assert_eq!(taken.users.len(), 3);
        assert_eq!(
            taken.actions(),
            5 + 1 + 1,
            "a's 7 actions count as the 5 a step supervises"
        );
        let a = taken.users.iter().position(|u| u == "a").unwrap();
        assert_eq!(taken.fresh[a], 5);
        assert!(taken.replay.is_empty());
        active.touch(["a"]);
        assert_eq!(
            active.take_batch(10, 5, 0, &mut rng).actions(),
            1,
            "counted afresh"
        );
    }
}
