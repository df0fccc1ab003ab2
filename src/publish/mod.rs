//! Owns the output topics: [`EmbeddingPublisher`] (`item-embeddings`, `user-embeddings`, and the
//! catalogue changelog `item-catalogue`), [`ItemPublisher`] (an item's vectors, each space to its
//! topic) and [`DeadLetterProducer`] (`dead-letter`). All wait for the broker's acknowledgement, so
//! callers store input offsets only after the output is durable.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::schemas::{DeadLetter, EmbeddingSpace, ItemEmbedding, UserEmbedding};

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

impl<T: Keyed> Keyed for &T {
    fn key(&self) -> &str {
        (*self).key()
    }
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

impl EmbeddingPublisher {
    /// Sends a tombstone (the key, no payload) for each of `keys` and waits for every one: on a
    /// compacted topic the key's earlier records go, and readers of the changelog delete it.
    pub async fn publish_tombstones(&self, keys: &[String]) -> Result<(), KafkaError> {
        try_join_all(keys.iter().map(|key| {
            self.producer.send(
                FutureRecord::<str, [u8]>::to(&self.topic).key(key),
                SEND_TIMEOUT,
            )
        }))
        .await
        .map_err(|(err, _)| err)?;
        Ok(())
    }
}

/// An item's vectors, each space to its own topic: content vectors to the compacted catalogue
/// changelog (one record per live item, whatever the number of model versions), aligned ones to
/// `item-embeddings` (one per item and version).
#[derive(Clone)]
pub struct ItemPublisher {
    pub catalogue: EmbeddingPublisher,
    pub aligned: EmbeddingPublisher,
}

impl ItemPublisher {
    /// Sends every embedding to its space's topic and waits until all are acknowledged.
    pub async fn publish(&self, embeddings: &[ItemEmbedding]) -> Result<(), KafkaError> {
        let (content, aligned): (Vec<&ItemEmbedding>, Vec<&ItemEmbedding>) = embeddings
            .iter()
            .partition(|e| e.space == EmbeddingSpace::Content);
        futures::try_join!(
            self.catalogue.publish(&content),
            self.aligned.publish(&aligned)
        )?;
        Ok(())
    }

    /// Tombstones for `keys` on both topics: the catalogue changelog drops the items, and readers
    /// of `item-embeddings` learn of the deletion.
    pub async fn publish_tombstones(&self, keys: &[String]) -> Result<(), KafkaError> {
        futures::try_join!(
            self.catalogue.publish_tombstones(keys),
            self.aligned.publish_tombstones(keys)
        )?;
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

    async fn send(&self, letter: &DeadLetter) -> Result<(), KafkaError> {
        let key = letter
            .key
            .clone()
            .unwrap_or_else(|| format!("{}:{}", letter.partition, letter.offset));
        send_json(&self.producer, &self.topic, &key, letter).await
    }

    /// Sends `letter` so that it never stalls its partition: a letter the broker refuses for good
    /// (size, invalid record) is sent again without its payload copy, and dropped (logged) if even
    /// that is refused. Errs only when retrying can help (broker unreachable, timeout).
    pub async fn deliver(&self, letter: &mut DeadLetter) -> Result<Delivery, KafkaError> {
        match self.send(letter).await {
            Ok(()) => return Ok(Delivery::Sent),
            Err(err) if !permanent(&err) => return Err(err),
            Err(err) => {
                tracing::error!(%err, partition = letter.partition, offset = letter.offset, "dead letter refused; sending it without the payload copy")
            }
        }
        letter.strip_payload();
        match self.send(letter).await {
            Ok(()) => Ok(Delivery::Sent),
            Err(err) if !permanent(&err) => Err(err),
            Err(err) => {
                tracing::error!(%err, partition = letter.partition, offset = letter.offset, "dead letter undeliverable, dropped");
                Ok(Delivery::Dropped)
            }
        }
    }
}

/// What became of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Refused by the broker even without its payload copy.
    Dropped,
}

/// Producer errors that no retry can fix: the broker refuses this record as it is.
fn permanent(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}
