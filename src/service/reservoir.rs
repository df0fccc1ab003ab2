//! A bounded uniform sample of the users the stream has brought (reservoir sampling over their
//! actions, each user held once), from which the trainer replays stored histories beside the fresh
//! ones, so the towers keep what older users taught them instead of drifting to the last minutes.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Reservoir {
    users: Vec<String>,
    held: HashSet<String>,
    /// Actions offered so far (Algorithm R's count).
    offered: u64,
    capacity: usize,
    rng: StdRng,
}

impl Reservoir {
    pub fn new(capacity: usize) -> Self {
        Self {
            users: Vec::new(),
            held: HashSet::new(),
            offered: 0,
            capacity: capacity.max(1),
            rng: StdRng::seed_from_u64(0x5eed),
        }
    }

    /// One action of `user`: a held user stays; otherwise it enters with chance capacity / offered
    /// (so users are kept in proportion to their activity), replacing a random one.
    pub fn offer(&mut self, user: &str) {
        self.offered += 1;
        if self.held.contains(user) {
            return;
        }
        if self.users.len() < self.capacity {
            self.users.push(user.to_string());
        } else {
            let slot = self.rng.random_range(0..self.offered);
            let Some(replaced) = self.users.get_mut(slot as usize) else {
                return;
            };
            self.held.remove(replaced);
            *replaced = user.to_string();
        }
        self.held.insert(user.to_string());
    }

    /// Up to `n` distinct held users, uniformly, none of them in `exclude`.
    pub fn sample(&self, n: usize, exclude: &HashSet<&str>, rng: &mut impl Rng) -> Vec<String> {
        let eligible = self.users.len().saturating_sub(exclude.len());
        if n == 0 || eligible == 0 {
            return Vec::new();
        }
        rand::seq::index::sample(
            rng,
            self.users.len(),
            self.users.len().min(n + exclude.len()),
        )
        .into_iter()
        .map(|i| &self.users[i])
        .filter(|u| !exclude.contains(u.as_str()))
        .take(n)
        .cloned()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_each_user_once_within_capacity_and_samples_outside_the_batch() {
        let mut reservoir = Reservoir::new(50);
        for round in 0..20 {
            for u in 0..200 {
                reservoir.offer(&format!("u{}", (u * 7 + round) % 200));
            }
        }
        assert_eq!(reservoir.users.len(), 50);
        assert_eq!(reservoir.held.len(), 50, "no user twice");
        let mut rng = StdRng::seed_from_u64(3);
        let exclude: HashSet<&str> = reservoir.users[..10].iter().map(String::as_str).collect();
        let sample = reservoir.sample(16, &exclude, &mut rng);
        assert_eq!(sample.len(), 16);
        assert!(sample.iter().all(|u| !exclude.contains(u.as_str())));
        let distinct: HashSet<&String> = sample.iter().collect();
        assert_eq!(distinct.len(), 16);
        // Early users are not all replaced by later ones: the sample spans the whole stream.
        let mut late = Reservoir::new(10);
        (0..10_000).for_each(|i| late.offer(&format!("v{i}")));
        assert!(late
            .users
            .iter()
            .any(|u| u[1..].parse::<u32>().unwrap() < 5_000));
    }
}
