//! The leader lease: with `online.role = "auto"` the Redis lock is renewed by a task of its own
//! every third of its TTL, so a long training step cannot let it lapse unnoticed; the trainer asks
//! [`Lease::held`] each round and once more right before it publishes a model. A pinned trainer
//! (`role = "trainer"`) always holds it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Role;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Share of the TTL after the last successful renewal during which the lease counts as held (the
/// rest is margin for clock drift and the renewal's own round trip).
const VALID_SHARE: f64 = 0.8;

pub struct Lease {
    role: Role,
    ttl: Duration,
    /// When the last successful renewal was sent.
    renewed: Mutex<Option<Instant>>,
}

impl Lease {
    pub fn new(role: Role, ttl_ms: u64) -> Self {
        Self {
            role,
            ttl: Duration::from_millis(ttl_ms),
            renewed: Mutex::new(None),
        }
    }

    pub fn held(&self) -> bool {
        match self.role {
            Role::Trainer => true,
            Role::Follower => false,
            Role::Auto => self
                .lock()
                .is_some_and(|t| t.elapsed() < self.ttl.mul_f64(VALID_SHARE)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, held: bool, sent: Instant) {
        *self.lock() = held.then_some(sent);
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

    #[test]
    fn an_auto_lease_is_held_only_for_most_of_the_ttl_after_a_renewal() {
        let lease = Lease::new(Role::Auto, 1000);
        assert!(!lease.held(), "never renewed");
        lease.record(true, Instant::now());
        assert!(lease.held());
        lease.record(true, Instant::now() - Duration::from_millis(850));
        assert!(!lease.held(), "past 80 % of the TTL: may have lapsed");
        lease.record(false, Instant::now());
        assert!(!lease.held(), "someone else holds it");
        assert!(Lease::new(Role::Trainer, 1000).held());
        assert!(!Lease::new(Role::Follower, 1000).held());
    }
}
