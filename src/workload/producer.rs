//! Owns producing a workload from a tool (`learn replay`, `learn loadgen`): each [`Outgoing`]
//! event serialised here, sent to its configured topic (waiting while the local queue is full),
//! and every delivery accounted for — a tool fails if the broker lost any message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::Outgoing;
use crate::config::KafkaConfig;

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0} messages were not acknowledged by the broker")]
    Undelivered(u64),
}

/// Counts failed deliveries.
#[derive(Default, Clone)]
struct Deliveries {
    failed: Arc<AtomicU64>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, _)) = result {
            tracing::error!(%err, "workload message not delivered");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct EventProducer {
    producer: ThreadedProducer<Deliveries>,
    deliveries: Deliveries,
    kafka: KafkaConfig,
}

impl EventProducer {
    /// A producer waiting for every replica (`acks=all`), batching for 5 ms.
    pub fn new(kafka: &KafkaConfig) -> Result<Self, ProduceError> {
        let deliveries = Deliveries::default();
        let producer = crate::kafka::client_config(
            kafka,
            &[("acks", "all".into()), ("linger.ms", "5".into())],
        )
        .create_with_context(deliveries.clone())?;
        Ok(Self {
            producer,
            deliveries,
            kafka: kafka.clone(),
        })
    }

    /// Sends one event to its input topic, waiting while the local queue is full.
    pub fn send(&self, event: &Outgoing) -> Result<(), ProduceError> {
        let payload = event.payload();
        let mut record = BaseRecord::to(event.topic().name(&self.kafka))
            .key(event.key())
            .payload(&payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
    }

    /// Waits up to `timeout` for what was sent to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        Ok(self.producer.flush(timeout)?)
    }

    /// Waits for every message to be acknowledged; an error if any was lost.
    pub fn finish(self) -> Result<(), ProduceError> {
        self.producer.flush(Duration::from_secs(60))?;
        match self.deliveries.failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            failed => Err(ProduceError::Undelivered(failed)),
        }
    }
}
