//! Consumer context: rebalance handling and lag statistics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Statistics};

use crate::metrics::LagBoard;

pub(super) struct SourceContext {
    revoked: Mutex<Vec<i32>>,
    lag: Arc<LagBoard>,
}

impl SourceContext {
    pub fn new(lag: Arc<LagBoard>) -> Self {
        Self {
            revoked: Mutex::default(),
            lag,
        }
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for SourceContext {
    /// librdkafka statistics (every `statistics.interval.ms`): the lag of each assigned partition,
    /// measured from the offsets stored after successful writes (what a restart would resume from).
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            let partitions: BTreeMap<i32, i64> = t
                .partitions
                .iter()
                .filter(|(&p, part)| p >= 0 && part.consumer_lag >= 0)
                .map(|(&p, part)| {
                    let lag = if part.consumer_lag_stored >= 0 {
                        part.consumer_lag_stored
                    } else {
                        part.consumer_lag
                    };
                    (p, lag)
                })
                .collect();
            self.lag.report(topic, partitions);
        }
    }
}

impl ConsumerContext for SourceContext {
    /// Runs inside `recv`, so no flush is in progress: every written batch has its offsets stored.
    /// Commit them now so the next owner starts right after them, and remember the partitions so
    /// the loop drops their unwritten messages (the next owner reads them again).
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(err) => {
                    tracing::warn!(%err, "commit on revoke failed; the next owner may replay")
                }
            }
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            revoked.extend(partitions.elements().iter().map(|e| e.partition()));
            tracing::info!(partitions = ?*revoked, "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned: Vec<i32> = partitions
                .elements()
                .iter()
                .map(|e| e.partition())
                .collect();
            tracing::info!(?assigned, "partitions assigned");
        }
    }
}
