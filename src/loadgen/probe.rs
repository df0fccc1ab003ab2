//! `learn loadgen --probe`: freshness measured from outside the service. Each upload's send time
//! is handed to a watcher thread that polls Redis (pipelined, every millisecond) for the item's
//! aligned embedding, the way a client of the store would see it: produce → readable.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::LoadError;
use crate::config::Config;
use crate::schemas::EmbeddingSpace;
use crate::store::{HistoryPolicy, RedisStore, Store};

/// Upload → aligned embedding readable in Redis, per upload, in seconds.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    pub latencies: Vec<f64>,
    /// Uploads whose aligned embedding never appeared within the probe's timeout.
    pub missing: usize,
}

impl ProbeReport {
    /// The `q`-quantile (nearest rank) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).map(|s| s * 1000.0)
    }
}

pub struct FreshnessProbe {
    sent: Sender<(String, Instant)>,
    watcher: JoinHandle<Result<ProbeReport, LoadError>>,
}

impl FreshnessProbe {
    /// Connects to the service's Redis and starts watching; `timeout` bounds each upload's wait.
    pub fn start(config: &Config, timeout: Duration) -> Self {
        let (sent, received) = channel();
        let (redis, history) = (config.redis.clone(), HistoryPolicy::from(&config.history));
        let watcher = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| LoadError::Probe(e.to_string()))?;
            runtime.block_on(async {
                let store = RedisStore::open(&redis, history)
                    .await
                    .map_err(|e| LoadError::Probe(e.to_string()))?;
                watch(&store, received, timeout).await
            })
        });
        Self { sent, watcher }
    }

    /// Starts the clock for `item_id` (call right before producing it).
    pub fn sent(&self, item_id: &str) {
        // The watcher only stops after the sender is dropped: the channel is open here.
        let _ = self.sent.send((item_id.to_string(), Instant::now()));
    }

    /// Waits for the outstanding uploads (each up to the timeout) and returns the latencies.
    pub fn finish(self) -> Result<ProbeReport, LoadError> {
        drop(self.sent);
        self.watcher
            .join()
            .map_err(|_| LoadError::Probe("the watcher thread panicked".into()))?
    }
}

async fn watch<S: Store>(
    store: &S,
    received: Receiver<(String, Instant)>,
    timeout: Duration,
) -> Result<ProbeReport, LoadError> {
    let mut report = ProbeReport::default();
    let mut pending: Vec<(String, Instant)> = Vec::new();
    let mut open = true;
    while open || !pending.is_empty() {
        loop {
            match received.try_recv() {
                Ok(item) => pending.push(item),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if !pending.is_empty() {
            let ids: Vec<String> = pending.iter().map(|(id, _)| id.clone()).collect();
            let found = store
                .item_embeddings(&ids, EmbeddingSpace::Aligned)
                .await
                .map_err(|e| LoadError::Probe(e.to_string()))?;
            let seen = Instant::now();
            let mut index = 0;
            pending.retain(|(_, sent)| {
                let readable = found[index].is_some();
                index += 1;
                if readable {
                    report.latencies.push((seen - *sent).as_secs_f64());
                } else if seen - *sent > timeout {
                    report.missing += 1;
                    return false;
                }
                !readable
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let report = ProbeReport {
            latencies: (1..=100).rev().map(|ms| ms as f64 / 1000.0).collect(),
            missing: 0,
        };
        assert_eq!(report.quantile_ms(0.5), Some(50.0));
        assert_eq!(report.quantile_ms(0.99), Some(99.0));
        assert_eq!(report.quantile_ms(1.0), Some(100.0));
        assert_eq!(ProbeReport::default().quantile_ms(0.5), None);
    }
}
