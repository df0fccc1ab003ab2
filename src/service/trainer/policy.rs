//! When the trainer writes a checkpoint: a pure policy (like `lag::LagPolicy`), unit-tested.

use std::time::Duration;

/// Every `every_steps` steps, or once `interval` has passed since the last checkpoint with at
/// least one step taken since (an idle trainer writes nothing).
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    pub every_steps: u64,
    pub interval: Duration,
}

impl CheckpointPolicy {
    pub fn due(&self, steps_since: u64, since_last: Duration) -> bool {
        steps_since >= self.every_steps || (steps_since > 0 && since_last >= self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CheckpointPolicy = CheckpointPolicy {
        every_steps: 100,
        interval: Duration::from_secs(60),
    };

    #[test]
    fn enough_steps_make_a_checkpoint_due_at_once() {
        assert!(POLICY.due(100, Duration::ZERO));
        assert!(!POLICY.due(99, Duration::from_secs(59)));
    }

    #[test]
    fn time_makes_it_due_only_after_some_training() {
        assert!(POLICY.due(1, Duration::from_secs(60)));
        assert!(
            !POLICY.due(0, Duration::from_secs(3600)),
            "idle: nothing new to save"
        );
    }
}
