//! Owns the checks `learn serve` makes before it starts, of what the delivery guarantees rest on
//! and the configuration cannot say: Redis keeps every key (`maxmemory-policy noeviction`), and
//! the catalogue topic keeps every live item (compacted, nothing deleted by age). A failed check
//! refuses the start, naming the key that lets it start anyway; every topic's layout is logged.

use crate::config::Config;
use crate::kafka::{self, TopicLayout};
use crate::store::Store;

/// A precondition that does not hold, and the key that would let the service start anyway.
#[derive(Debug, thiserror::Error)]
#[error("{what} (set {key} = false to start anyway)")]
pub struct Unmet {
    pub key: &'static str,
    pub what: String,
}

/// Runs every check; the first unmet one refuses the start. With `redis.require_noeviction` off
/// an evicting Redis is warned about; with `kafka.require_compacted_catalogue` off the topics are
/// not described at all.
pub async fn check<S: Store>(config: &Config, store: &S) -> Result<(), Unmet> {
    match eviction(store).await {
        Err(unmet) if !config.redis.require_noeviction => {
            tracing::warn!(key = unmet.key, "precondition not met: {}", unmet.what)
        }
        outcome => outcome?,
    }
    topics(config).await
}

const EVICTION_KEY: &str = "redis.require_noeviction";
const CATALOGUE_KEY: &str = "kafka.require_compacted_catalogue";

/// Every Redis primary evicts nothing. A server that refuses `CONFIG` is warned about, not
/// refused: managed services that hide it document their policy elsewhere.
async fn eviction<S: Store>(store: &S) -> Result<(), Unmet> {
    let policies = match store.eviction_policies().await {
        Ok(policies) => policies,
        Err(err) => {
            tracing::warn!(%err, "cannot read Redis's maxmemory-policy: make sure it is noeviction");
            return Ok(());
        }
    };
    match policies.iter().find(|p| *p != "noeviction") {
        Some(policy) => Err(Unmet {
            key: EVICTION_KEY,
            what: format!(
                "Redis evicts keys (maxmemory-policy {policy}): an evicted watermark, fencing \
                 token or popularity key silently breaks exactly-once and fencing; set \
                 `maxmemory-policy noeviction` and size memory (docs/deploying.md, production \
                 checklist)"
            ),
        }),
        None => Ok(()),
    }
}

/// Logs every topic's partitions and retention; the catalogue topic must keep every key. A broker
/// that cannot describe topics (no admin rights) is warned about. Not asked when the check is off
/// (librdkafka's mock cluster cannot answer, and would hold the start for the request's timeout).
async fn topics(config: &Config) -> Result<(), Unmet> {
    let k = &config.kafka;
    if !k.require_compacted_catalogue {
        tracing::info!(topic = %k.catalogue_topic, "catalogue topic settings not checked (kafka.require_compacted_catalogue = false)");
        return Ok(());
    }
    let layouts = match kafka::describe_topics(k, &k.topics()).await {
        Ok(layouts) => layouts,
        Err(err) => {
            tracing::warn!(%err, topic = %k.catalogue_topic, "cannot describe the topics: make sure the catalogue topic is compacted");
            return Ok(());
        }
    };
    for layout in &layouts {
        tracing::info!(
            topic = %layout.topic,
            partitions = ?layout.partitions,
            cleanup_policy = layout.cleanup_policy.as_deref().unwrap_or("(broker default)"),
            retention_ms = ?layout.retention_ms,
            "topic"
        );
    }
    let catalogue = layouts.iter().find(|l| l.topic == k.catalogue_topic);
    match catalogue {
        Some(layout) if layout.partitions.is_some() && !layout.keeps_every_key() => {
            Err(unkept(layout))
        }
        _ => Ok(()),
    }
}

fn unkept(layout: &TopicLayout) -> Unmet {
    Unmet {
        key: CATALOGUE_KEY,
        what: format!(
            "the catalogue topic `{}` may lose items (cleanup.policy {}, retention.ms {}): a \
             process that starts later would rebuild an incomplete catalogue; set \
             cleanup.policy=compact on it (docs/deploying.md, production checklist)",
            layout.topic,
            layout
                .cleanup_policy
                .as_deref()
                .unwrap_or("delete (default)"),
            layout
                .retention_ms
                .map_or("(default)".to_string(), |r| r.to_string()),
        ),
    }
}
