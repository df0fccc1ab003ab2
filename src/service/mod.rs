//! Owns the running service: the two pipelines built from [`crate::source`] and their sinks,
//! started together and stopped together.
//!
//! ```text
//!   actions topic ──► source ──► ActionSink ──► Store: histories (idempotent per partition)
//!   items topic ───► source ──► ItemSink ──► frozen encoder ──► Store: item embeddings
//!                       │                                   └─► item-embeddings topic
//!                       └─► dead-letter topic (malformed events, with the reason)
//! ```

mod actions;
mod items;

pub use actions::ActionSink;
pub use items::ItemSink;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::encode::ContentEncoder;
use crate::history::Store;
use crate::metrics::Stats;
use crate::publish::{DeadLetterProducer, EmbeddingPublisher};
use crate::schemas::{ItemUpload, Limits, UserAction};
use crate::shutdown::ShutdownTrigger;
use crate::source::{self, SourceError, SourceSettings};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{pipeline} pipeline: {source}")]
    Pipeline {
        pipeline: &'static str,
        source: SourceError,
    },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{0} pipeline task panicked")]
    Panicked(&'static str),
}

fn settings(config: &Config, topic: &str, stream: &str) -> SourceSettings {
    SourceSettings {
        topic: topic.to_string(),
        group_id: format!("{}-{stream}", config.kafka.group_id),
        max_batch: config.ingest.max_batch,
        max_wait: Duration::from_millis(config.ingest.max_wait_ms),
        limits: Limits {
            max_text_bytes: config.ingest.max_text_bytes,
        },
    }
}

/// Runs both pipelines until `shutdown` is triggered (or one fails, which stops the other).
pub async fn run<S: Store>(
    config: &Config,
    store: S,
    encoder: Arc<ContentEncoder>,
    stats: Arc<Stats>,
    shutdown: &ShutdownTrigger,
) -> Result<(), ServiceError> {
    let producer = crate::kafka::producer(&config.kafka)?;
    let dead_letters =
        DeadLetterProducer::new(producer.clone(), config.kafka.dead_letter_topic.clone());
    let publisher = EmbeddingPublisher::new(producer, config.kafka.item_embeddings_topic.clone());

    let mut actions = tokio::spawn({
        let (kafka, settings) = (
            config.kafka.clone(),
            settings(config, &config.kafka.actions_topic, "actions"),
        );
        let (sink, dead_letters, stats, shutdown) = (
            ActionSink::new(store.clone(), stats.clone()),
            dead_letters.clone(),
            stats.clone(),
            shutdown.subscribe(),
        );
        async move {
            source::run::<UserAction, _>(&kafka, settings, sink, dead_letters, stats, shutdown)
                .await
        }
    });
    let mut items = tokio::spawn({
        let (kafka, settings) = (
            config.kafka.clone(),
            settings(config, &config.kafka.items_topic, "items"),
        );
        let sink = ItemSink::new(encoder, store, publisher, stats.clone());
        let shutdown = shutdown.subscribe();
        async move {
            source::run::<ItemUpload, _>(&kafka, settings, sink, dead_letters, stats, shutdown)
                .await
        }
    });

    let outcome =
        |name: &'static str, joined: Result<Result<(), SourceError>, tokio::task::JoinError>| {
            match joined {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(ServiceError::Pipeline {
                    pipeline: name,
                    source,
                }),
                Err(_) => Err(ServiceError::Panicked(name)),
            }
        };
    // Whichever pipeline ends first (normally because of shutdown) stops the other.
    let (first, second) = tokio::select! {
        joined = &mut actions => {
            shutdown.trigger();
            (outcome("actions", joined), outcome("items", items.await))
        }
        joined = &mut items => {
            shutdown.trigger();
            (outcome("items", joined), outcome("actions", actions.await))
        }
    };
    first.and(second)
}
