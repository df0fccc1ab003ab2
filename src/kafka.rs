//! Owns how Kafka clients are configured: the shared properties, consumers, producers, and topic
//! creation (the catalogue topic compacted, never time-deleted).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
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

/// Topic settings of the catalogue changelog: compaction keeps each item's newest record (its
/// content vector, or a tombstone that goes after `delete.retention.ms`), and with `compact` alone
/// nothing is deleted by age (`retention.ms` applies to `delete` only), so a process that starts
/// later still reads every live item. (`retention.ms=-1` is left out: it would say the same, and
/// tansu 0.6, the test broker, loses its idempotent producers' state on a topic created with it.)
pub const CATALOGUE_TOPIC_CONFIG: [(&str, &str); 1] = [("cleanup.policy", "compact")];

/// Creates the topics that do not exist yet (brokers here do not auto-create them); the catalogue
/// topic (`kafka.catalogue_topic`) with [`CATALOGUE_TOPIC_CONFIG`].
pub async fn create_topics(
    kafka: &KafkaConfig,
    topics: &[&str],
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, &[]).create()?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            let topic = NewTopic::new(
                t,
                partitions,
                TopicReplication::Fixed(kafka.topic_replication),
            );
            match *t == kafka.catalogue_topic {
                true => CATALOGUE_TOPIC_CONFIG
                    .iter()
                    .fold(topic, |topic, (key, value)| topic.set(key, value)),
                false => topic,
            }
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

/// What the broker says of a topic the service relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    pub topic: String,
    /// None: the topic does not exist.
    pub partitions: Option<usize>,
    /// `cleanup.policy`; None: not reported (the broker's default, `delete`).
    pub cleanup_policy: Option<String>,
    /// `retention.ms`; None: not reported (the broker's default, 7 days).
    pub retention_ms: Option<i64>,
}

impl TopicLayout {
    /// Whether every record that is the newest of its key stays: compacted, and never deleted by
    /// age (`compact` alone, or `compact,delete` with `retention.ms=-1`).
    pub fn keeps_every_key(&self) -> bool {
        let policy = self.cleanup_policy.as_deref().unwrap_or("delete");
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        policies.contains(&"compact")
            && (!policies.contains(&"delete") || self.retention_ms == Some(-1))
    }
}

/// The partitions and retention settings of `topics`, as the broker reports them.
pub async fn describe_topics(
    kafka: &KafkaConfig,
    topics: &[&str],
) -> Result<Vec<TopicLayout>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, &[]).create()?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let specifiers: Vec<ResourceSpecifier> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let configs = admin.describe_configs(&specifiers, &options).await?;
    let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    let metadata = tokio::task::spawn_blocking(move || {
        names
            .iter()
            .map(|t| {
                let metadata = admin
                    .inner()
                    .fetch_metadata(Some(t), Duration::from_secs(10))?;
                Ok(metadata
                    .topics()
                    .iter()
                    .find(|m| m.name() == t && m.error().is_none())
                    .map(|m| m.partitions().len()))
            })
            .collect::<Result<Vec<_>, KafkaError>>()
    })
    .await
    .map_err(|_| KafkaError::Canceled)??;
    Ok(topics
        .iter()
        .zip(configs)
        .zip(metadata)
        .map(|((topic, config), partitions)| {
            let value = |key: &str| {
                let config = config.as_ref().ok()?;
                // The effective value (a broker's default included); brokers that report only
                // what was set on the topic leave the rest out.
                config.get(key)?.value.clone()
            };
            TopicLayout {
                topic: topic.to_string(),
                partitions,
                cleanup_policy: value("cleanup.policy"),
                retention_ms: value("retention.ms").and_then(|v| v.parse().ok()),
            }
        })
        .collect())
}

/// Every partition of `topic` and its high watermark (blocking calls); an error when the topic
/// has no partitions (it does not exist).
pub fn high_watermarks<C: Consumer>(
    consumer: &C,
    topic: &str,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let timeout = Duration::from_secs(5);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
    }
    partitions
        .into_iter()
        .map(|p| Ok((p, consumer.fetch_watermarks(topic, p, timeout)?.1)))
        .collect()
}

/// Records ever written to `topic`: the sum of its partitions' high watermarks (blocking).
pub fn records_written(kafka: &KafkaConfig, topic: &str) -> Result<i64, KafkaError> {
    let consumer: BaseConsumer =
        client_config(kafka, &[("group.id", "learn-records".into())]).create()?;
    Ok(high_watermarks(&consumer, topic)?.values().sum())
}

#[cfg(test)]
mod tests {
    use super::TopicLayout;

    fn layout(policy: Option<&str>, retention_ms: Option<i64>) -> TopicLayout {
        TopicLayout {
            topic: "t".into(),
            partitions: Some(3),
            cleanup_policy: policy.map(str::to_string),
            retention_ms,
        }
    }

    #[test]
    fn only_compaction_without_age_deletion_keeps_every_key() {
        assert!(layout(Some("compact"), None).keeps_every_key());
        assert!(layout(Some("compact"), Some(604_800_000)).keeps_every_key());
        assert!(layout(Some("compact,delete"), Some(-1)).keeps_every_key());
        assert!(!layout(Some("compact,delete"), None).keeps_every_key());
        assert!(!layout(Some("delete"), Some(-1)).keeps_every_key());
        assert!(!layout(None, None).keeps_every_key());
    }
}
