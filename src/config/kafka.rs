//! `[kafka]`: the brokers, the topics the service reads and writes, and the clients' settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Kafka clients: one consumer group per input stream and the producers of the output topics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated (`bootstrap.servers`).
    pub brokers: String,
    /// Consumer group prefix: the actions consumer joins `<group_id>-actions`, the uploads consumer
    /// `<group_id>-items`, so each stream's lag and rebalances are seen and tuned on their own.
    pub group_id: String,
    /// Input: user action events (`schemas/user_action.schema.json`), keyed by user id.
    pub actions_topic: String,
    /// Input: item uploads (`schemas/item_upload.schema.json`), keyed by item id.
    pub items_topic: String,
    /// Output: events that could not be decoded, with the reason (`schemas/dead_letter.schema.json`).
    pub dead_letter_topic: String,
    /// Output: aligned item embeddings, each model version's (`schemas/item_embedding.schema.json`),
    /// keyed by item id; a tombstone when an item is deleted. Ordinary retention.
    pub item_embeddings_topic: String,
    /// Output and changelog: every live item's content vector, keyed by item id (a tombstone when
    /// deleted). Compacted with no time-based deletion: every process rebuilds its catalogue from it.
    pub catalogue_topic: String,
    /// Refuse to start when the catalogue topic may lose items (not `cleanup.policy=compact`, or
    /// time-based deletion on); `false` starts without describing the topics.
    pub require_compacted_catalogue: bool,
    /// Output: aligned user embeddings (`schemas/user_embedding.schema.json`), keyed by user id.
    pub user_embeddings_topic: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `session.timeout.ms`: how long the group waits for a silent member before rebalancing.
    pub session_timeout_ms: u32,
    /// `auto.commit.interval.ms`: how often offsets stored after a successful write are committed.
    pub auto_commit_interval_ms: u32,
    /// `statistics.interval.ms`: how often consumers report lag per partition (0 turns lag metrics
    /// and lag control off).
    pub statistics_interval_ms: u32,
    /// `fetch.wait.max.ms`: longest a fetch waits for data on the broker. A floor on upload →
    /// embedding latency for brokers that do not answer a waiting fetch as soon as data arrives
    /// (tansu 0.6 holds it the whole time; Apache Kafka answers at once).
    pub fetch_wait_max_ms: u32,
    /// `fetch.queue.backoff.ms`: how long a partition's fetching pauses once the local queue is
    /// over librdkafka's thresholds. librdkafka's 1000 ms stalls a consumer that drains the queue
    /// faster than that (docs/results-streaming.md, "Ingest throughput").
    pub fetch_queue_backoff_ms: u32,
    /// Create missing topics at start-up (turn off where topics are provisioned by ops).
    pub create_topics: bool,
    /// Partitions of topics created at start-up (the most processes that can share a stream).
    pub topic_partitions: i32,
    /// Replication factor of topics created at start-up; -1 = the broker's default
    /// (`default.replication.factor`).
    #[serde(default = "broker_default")]
    pub topic_replication: i32,
    /// Extra librdkafka properties for every client (security, tuning), applied last.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Every topic the service reads or writes.
    pub fn topics(&self) -> [&str; 6] {
        [
            &self.actions_topic,
            &self.items_topic,
            &self.dead_letter_topic,
            &self.item_embeddings_topic,
            &self.catalogue_topic,
            &self.user_embeddings_topic,
        ]
    }
}

fn broker_default() -> i32 {
    -1
}

/// Where a consumer group with no committed offset starts (librdkafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
}

impl AutoOffsetReset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
        }
    }
}
