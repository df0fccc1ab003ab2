//! The leader lease: the Redis lock is taken and renewed by a task of its own every third of its
//! TTL, so a long training step cannot let it lapse unnoticed; the trainer asks [`Lease::held`]
//! each round and once more right before it publishes a model, and publishes with the lease's
//! fencing token (the epoch it was taken in). `role = "trainer"` takes the same lock (a second
//! pinned trainer waits as a standby); a follower never does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Role;
use crate::shutdown::Shutdown;
use crate::store::{Fence, Store};

/// Share of the TTL after the last successful renewal during which the lease counts as held (the
/// rest is margin for clock drift and the renewal's own round trip).
const VALID_SHARE: f64 = 0.8;

pub struct Lease {
    role: Role,
    ttl: Duration,
    /// When the last successful renewal was sent, and the fence it confirmed.
    renewed: Mutex<Option<(Instant, Fence)>>,
}

impl Lease {
    pub fn new(role: Role, ttl_ms: u64) -> Self {
        Self {
            role,
            ttl: Duration::from_millis(ttl_ms),
            renewed: Mutex::new(None),
        }
    }

    /// The fence while the lease surely holds (never for a follower).
    pub fn held(&self) -> Option<Fence> {
        if self.role == Role::Follower {
            return None;
        }
        self.lock()
            .as_ref()
            .filter(|(sent, _)| sent.elapsed() < self.ttl.mul_f64(VALID_SHARE))
            .map(|(_, fence)| fence.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Fence)>> {
        self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, held: Option<Fence>, sent: Instant) {
        *self.lock() = held.map(|fence| (sent, fence));
    }
}

/// Takes or renews the lock every third of the TTL until shutdown. A store error leaves the
/// lease to lapse by time (nobody can confirm it meanwhile).
pub async fn renew<S: Store>(store: S, instance: String, lease: Arc<Lease>, mut stop: Shutdown) {
    let ttl_ms = lease.ttl.as_millis() as u64;
    let every = (lease.ttl / 3).max(Duration::from_millis(100));
    loop {
        let sent = Instant::now();
        match store.try_lead(&instance, ttl_ms).await {
            Ok(held) => lease.record(held, sent),
            Err(err) => tracing::warn!(%err, "leader lock unavailable"),
        }
        tokio::select! {
            _ = stop.recv() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(epoch: u64) -> Option<Fence> {
        Some(Fence {
            instance: "a".into(),
            epoch,
        })
    }

    #[test]
    fn a_lease_is_held_only_for_most_of_the_ttl_after_a_renewal() {
        for role in [Role::Auto, Role::Trainer] {
            let lease = Lease::new(role, 1000);
            assert_eq!(lease.held(), None, "never renewed");
            lease.record(fence(3), Instant::now());
            assert_eq!(lease.held(), fence(3));
            lease.record(fence(3), Instant::now() - Duration::from_millis(850));
            assert_eq!(lease.held(), None, "past 80 % of the TTL: may have lapsed");
            lease.record(None, Instant::now());
            assert_eq!(lease.held(), None, "someone else holds it");
        }
        let follower = Lease::new(Role::Follower, 1000);
        follower.record(fence(1), Instant::now());
        assert_eq!(follower.held(), None);
    }
}
