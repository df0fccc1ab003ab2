//! Owns the signals one task gives another, each with one writer: the item pipeline marks the
//! encoder busy while it embeds ([`EncoderBusy`]; the trainer starts no step meanwhile) and records
//! how late uploads reach the store ([`UploadLatency`]; lag control reads and resets it).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Embeddings in progress. The item pipeline holds a [`Busy`] for as long as one runs; the trainer
/// does not start a step while any does, so the two never share the cores and an upload waits for
/// at most one step.
#[derive(Clone, Default)]
pub struct EncoderBusy(Arc<AtomicUsize>);

impl EncoderBusy {
    /// Marks the encoder busy until the returned guard drops.
    pub fn enter(&self) -> Busy {
        self.0.fetch_add(1, Ordering::SeqCst);
        Busy(self.0.clone())
    }

    pub fn is_busy(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// One embedding in progress (see [`EncoderBusy`]).
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The longest upload → store latency (ms) since lag control last looked.
#[derive(Clone, Default)]
pub struct UploadLatency(Arc<AtomicU64>);

impl UploadLatency {
    /// The item pipeline: an upload batch's slowest latency.
    pub fn record(&self, ms: u64) {
        self.0.fetch_max(ms, Ordering::Relaxed);
    }

    /// Lag control: the longest since the last call (0: no upload since).
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_a_guard_lives() {
        let busy = EncoderBusy::default();
        assert!(!busy.is_busy());
        let (a, b) = (busy.enter(), busy.enter());
        drop(a);
        assert!(busy.is_busy());
        drop(b);
        assert!(!busy.is_busy());
    }

    #[test]
    fn latency_is_the_longest_since_the_last_look() {
        let latency = UploadLatency::default();
        latency.record(40);
        latency.record(90);
        latency.record(10);
        assert_eq!((latency.take(), latency.take()), (90, 0));
    }
}
