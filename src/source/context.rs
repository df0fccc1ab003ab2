//! Consumer context: rebalance handling and lag statistics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use super::WatermarkReader;
use crate::metrics::LagBoard;

pub(super) struct SourceContext {
    revoked: Mutex<Vec<i32>>,
    lag: Arc<LagBoard>,
    watermarks: WatermarkReader,
}

impl SourceContext {
    pub fn new(lag: Arc<LagBoard>, watermarks: WatermarkReader) -> Self {
        Self {
            revoked: Mutex::default(),
            lag,
            watermarks,
        }
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Revoke: commit what is stored (every written batch: no flush runs while the consumer is
    /// polled for a rebalance), and remember the partitions so the loop drops their unwritten
    /// messages before it takes the next one (the next owner reads them again).
    fn revoke(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(err) => tracing::warn!(%err, "commit on revoke failed; the next owner may replay"),
        }
        let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        revoked.extend(partitions.elements().iter().map(|e| e.partition()));
        tracing::info!(partitions = ?*revoked, "partitions revoked");
    }

    /// Assign: each partition resumes right after the sink's watermark (the highest offset the
    /// store holds), as Kafka Connect's exactly-once sinks do: when the store lost acknowledged
    /// writes (a crash inside the fsync interval, a failover to a lagging replica) the lost range is
    /// read again instead of being skipped. Partitions the store has no watermark for start from
    /// the committed offset. An unreadable store leaves the committed offsets (logged).
    fn positions(&self, partitions: &mut TopicPartitionList) {
        let watermarks = match (self.watermarks)() {
            Ok(w) => w,
            Err(err) => {
                tracing::error!(%err, "cannot read the store's watermarks; resuming from committed offsets");
                return;
            }
        };
        let mut resumed = BTreeMap::new();
        for (topic, partition) in partitions
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect::<Vec<_>>()
        {
            if let Some(&w) = watermarks.get(&partition) {
                if partitions
                    .set_partition_offset(&topic, partition, Offset::Offset(w + 1))
                    .is_ok()
                {
                    resumed.insert(partition, w + 1);
                }
            }
        }
        tracing::info!(
            ?resumed,
            "partitions assigned (resuming after the store's watermarks)"
        );
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
    /// Replaces rust-rdkafka's default only to set the start offsets of an assignment.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.positions(partitions);
                if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoke(consumer, partitions);
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(code = ?RDKafkaErrorCode::from(other), "rebalance error");
                consumer.unassign()
            }
        };
        if let Err(err) = result {
            tracing::error!(%err, "applying the rebalance failed");
        }
    }
}
