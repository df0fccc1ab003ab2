//! Owns how Kafka clients are configured: the shared properties, consumers, producers, and topic
//! creation for tests and the demo.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// A client configuration: brokers, then `properties`, then the configured librdkafka pass-through
/// (applied last, so operators can override anything).
pub fn client_config(kafka: &KafkaConfig, properties: &[(&str, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (key, value) in properties {
        config.set(*key, value);
    }
    for (key, value) in &kafka.librdkafka {
        config.set(key, value);
    }
    config
}

/// At-least-once consumer: offsets are stored by the pipeline only after the downstream write
/// succeeded (`enable.auto.offset.store=false`), and stored offsets are committed periodically.
pub fn consumer_config(kafka: &KafkaConfig, group_id: &str) -> ClientConfig {
    client_config(
        kafka,
        &[
            ("group.id", group_id.to_string()),
            ("enable.auto.commit", "true".into()),
            ("enable.auto.offset.store", "false".into()),
            (
                "auto.commit.interval.ms",
                kafka.auto_commit_interval_ms.to_string(),
            ),
            ("auto.offset.reset", kafka.auto_offset_reset.as_str().into()),
            ("session.timeout.ms", kafka.session_timeout_ms.to_string()),
            (
                "statistics.interval.ms",
                kafka.statistics_interval_ms.to_string(),
            ),
            ("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string()),
            (
                "fetch.queue.backoff.ms",
                kafka.fetch_queue_backoff_ms.to_string(),
            ),
        ],
    )
}

/// Producer that waits for all in-sync replicas, idempotent (a retried send is written once and
/// in order).
pub fn producer(kafka: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    client_config(
        kafka,
        &[
            ("acks", "all".into()),
            ("enable.idempotence", "true".into()),
            ("linger.ms", "5".into()),
            ("message.timeout.ms", "30000".into()),
        ],
    )
    .create()
}

/// Creates the topics that do not exist yet (brokers here do not auto-create them).
pub async fn create_topics(
    kafka: &KafkaConfig,
    topics: &[&str],
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, &[]).create()?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                partitions,
                TopicReplication::Fixed(kafka.topic_replication),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(%topic, ?code, "cannot create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}
