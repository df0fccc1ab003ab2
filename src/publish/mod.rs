//! Owns the output topics: [`EmbeddingPublisher`] (`item-embeddings`, `user-embeddings`) and
//! [`DeadLetterProducer`] (`dead-letter`). Both wait for the broker's acknowledgement, so callers store input offsets only
//! after the output is durable.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::schemas::{DeadLetter, ItemEmbedding, UserEmbedding};

const SEND_TIMEOUT: Timeout = Timeout::After(Duration::from_secs(30));

async fn send_json<T: Serialize>(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &T,
) -> Result<(), KafkaError> {
    let payload = serde_json::to_vec(value).expect("output events always serialise");
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(&payload),
            SEND_TIMEOUT,
        )
        .await
        .map(|_| ())
        .map_err(|(err, _)| err)
}

/// An output event and its Kafka key.
pub trait Keyed: Serialize {
    fn key(&self) -> &str;
}

impl Keyed for ItemEmbedding {
    fn key(&self) -> &str {
        &self.item_id
    }
}

impl Keyed for UserEmbedding {
    fn key(&self) -> &str {
        &self.user_id
    }
}

/// Publishes embeddings to one topic, keyed by item or user id.
#[derive(Clone)]
pub struct EmbeddingPublisher {
    producer: FutureProducer,
    topic: String,
}

impl EmbeddingPublisher {
    pub fn new(producer: FutureProducer, topic: String) -> Self {
        Self { producer, topic }
    }

    /// Sends all embeddings and waits until every one is acknowledged.
    pub async fn publish<T: Keyed>(&self, embeddings: &[T]) -> Result<(), KafkaError> {
        try_join_all(
            embeddings
                .iter()
                .map(|e| send_json(&self.producer, &self.topic, e.key(), e)),
        )
        .await?;
        Ok(())
    }
}

/// Sends rejected input events to the dead-letter topic, keyed like the original.
#[derive(Clone)]
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterProducer {
    pub fn new(producer: FutureProducer, topic: String) -> Self {
        Self { producer, topic }
    }

    pub async fn send(&self, letter: &DeadLetter) -> Result<(), KafkaError> {
        let key = letter
            .key
            .clone()
            .unwrap_or_else(|| format!("{}:{}", letter.partition, letter.offset));
        send_json(&self.producer, &self.topic, &key, letter).await
    }
}
