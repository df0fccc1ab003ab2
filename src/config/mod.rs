//! Owns the configuration tree: `config/default.toml` (compiled in), merged with an optional `--config`
//! file, then with `LEARN__SECTION__KEY` environment variables. Every struct denies unknown keys, and
//! [`Config::load`] validates values, so a bad configuration fails at start-up naming the key.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::encode::{EncoderBackend, EncoderConfig, TaskPrefix};
pub use kafka::{AutoOffsetReset, KafkaConfig};
pub use secret::Secret;

mod kafka;
mod secret;
mod validate;

/// `url` with any credentials (`user:password@`) masked, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The defaults, compiled into the binary so it runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Prefix of environment overrides: `LEARN__KAFKA__BROKERS` sets `kafka.brokers`.
pub const ENV_PREFIX: &str = "LEARN__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Parse or type error; figment's message names the key and the file it came from.
    #[error("invalid configuration: {0}")]
    Parse(Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] crate::checks::Invalid),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub history: HistoryConfig,
    pub ingest: IngestConfig,
    pub encoder: EncoderConfig,
    /// Shape of the preference-alignment towers.
    pub towers: crate::towers::TowerSpec,
    /// How the towers are trained.
    pub training: crate::train::TrainingConfig,
    /// The SASRec baseline's own shape and recipe (`learn train --model sasrec`).
    pub sasrec: crate::train::SasrecConfig,
    pub online: OnlineConfig,
    pub serving: ServingConfig,
    pub lag: LagConfig,
}

/// The Redis server that holds histories and embeddings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL, `redis://[user:pass@]host:port[/db]`, or `rediss://…` for TLS; with
    /// `cluster`, a comma-separated list of seed nodes.
    pub url: String,
    /// A Redis Cluster: commands are routed by slot (each atomic write stays in one slot).
    #[serde(default)]
    pub cluster: bool,
    /// Prefix of every key this service writes, so several deployments can share one server.
    pub key_prefix: String,
    /// Refuse to start unless every primary's `maxmemory-policy` is `noeviction` (an evicted
    /// watermark, fencing or popularity key silently breaks exactly-once and fencing); `false` only
    /// warns.
    pub require_noeviction: bool,
    /// TLS (`rediss://`): a PEM file of the CA(s) that signed the server's certificate, when it
    /// is not in the system trust store.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// TLS client certificate and key (PEM), for servers that verify clients (`tls-auth-clients`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

/// Rolling per-user histories.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Most recent actions kept per user (the paper's users watch ~800 videos a week).
    pub cap: usize,
    /// A history expires this long after the user's last action; 0 keeps it forever.
    pub ttl_secs: u64,
    /// Entries searched per user for a resend: an action equal to one of the user's last
    /// `dedupe_window` entries (same item, action and event millisecond — a producer's or
    /// client's resend) is skipped. 0 turns it off (offsets still dedupe replays).
    pub dedupe_window: usize,
}

/// Consumer micro-batching and input limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest number of events written downstream at once.
    pub max_batch: usize,
    /// Longest time the first event of a batch waits for the batch to fill.
    pub max_wait_ms: u64,
    /// Uploads whose item text is longer than this (bytes) are dead-lettered as `oversize_text`.
    pub max_text_bytes: usize,
}

/// Which `learn serve` process of a group trains the towers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Whoever holds the leader lock in Redis trains; the others follow (take over on failure).
    Auto,
    /// A dedicated trainer: takes the same lock, so a second one waits as a standby.
    Trainer,
    /// Never trains: ingests, embeds, serves, and hot-swaps to each new model version.
    Follower,
}

/// Continual training inside `learn serve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineConfig {
    pub role: Role,
    /// Most users per training step (lag control lowers it towards `min_batch_size` under lag).
    pub batch_size: usize,
    pub min_batch_size: usize,
    /// Pause between steps, so training leaves CPU to ingestion.
    pub step_interval_ms: u64,
    /// Every fresh action of a taken user is a target; at least its last `recent_targets` are
    /// (with `dense`/`last` targets: the cut falls within them).
    pub recent_targets: usize,
    /// Users from a reservoir of the whole stream's users whose stored histories each step
    /// replays beside the fresh ones (0: fresh users only).
    pub replay_users: usize,
    /// A fresh optimizer (a new lineage, a warm start, weights restored without their moments)
    /// ramps the learning rate up linearly over this many steps.
    pub warmup_steps: u64,
    /// Refit the content whitening whenever the catalogue has doubled since the last fit, until a
    /// fit has seen this many items (0: fitted once, on the lineage's first step).
    pub whiten_refit_until: usize,
    /// A `learn train` output directory (`learn.json` + `learn.safetensors`) a new lineage starts
    /// from: imported as version 1 when neither the checkpoint directory nor the store has a
    /// model (empty: the initial weights).
    #[serde(default)]
    pub warm_start: Option<std::path::PathBuf>,
    /// With `training.negatives = "all_items"`, a step's softmax runs over the whole catalogue
    /// up to this many items; above, over the batch's targets + `training.negative_samples`
    /// uniform draws, logQ-corrected (`mixed`): a step's cost stops growing with the catalogue.
    pub full_softmax_items: usize,
    /// Users with fresh actions awaiting a step; beyond this the least recent are dropped (the
    /// trainer samples, it does not queue without bound).
    pub pending_users: usize,
    /// Where checkpoints are written (one directory per version).
    pub checkpoint_dir: std::path::PathBuf,
    /// A checkpoint after this many steps ...
    pub checkpoint_every_steps: u64,
    /// ... or this long after the previous one, whichever comes first (if any step was taken).
    pub checkpoint_interval_secs: u64,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Most recently active users whose embeddings are re-published after each checkpoint.
    pub republish_users: usize,
    /// Leader lock lifetime (`auto` and `trainer`); renewed every third of it.
    pub leader_ttl_ms: u64,
    /// How often non-training processes look for a new model version.
    pub model_poll_ms: u64,
    /// CPU priority of the trainer's threads: below `normal`, an upload's encoder pass,
    /// ingestion and serving preempt a running training step (the trainer uses the CPU they
    /// leave), which keeps freshness independent of training.
    pub trainer_priority: TrainerPriority,
}

/// CPU priority of the trainer's threads (Linux; elsewhere they keep the process's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerPriority {
    /// The process's own priority: training shares the cores equally.
    Normal,
    /// Niceness 19: anything else at normal priority preempts it (~1.5 % of a busy core left).
    Low,
    /// `SCHED_IDLE`: runs only on CPU nothing else wants.
    Idle,
}

/// The HTTP API (`/v1/recommend`, `/v1/status`, `/livez`, `/readyz`, `/metrics`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// Listen address; loopback by default (put a proxy in front to expose it).
    pub addr: String,
    /// Largest `k` a recommendation request may ask for.
    pub max_k: usize,
    /// Weight of the popularity prior in ranking: score = logit_scale · cos + weight · ln(item's
    /// share of actions). 0 ranks by the embeddings alone. See docs/operations.md, "Ranking".
    pub popularity_weight: f32,
    /// Half-life of the popularity counts (0: they never decay).
    pub popularity_half_life_secs: u64,
    /// How often this process adds its counts to the shared ones in the store and takes everyone's.
    pub popularity_sync_ms: u64,
    /// Longest a `/v1/recommend` request may take before it is answered 503 (`timeout`).
    pub request_timeout_ms: u64,
    /// Requests in flight at once; beyond that a request is shed at once with 503 (`overloaded`)
    /// rather than queued behind the others.
    pub max_concurrent_requests: usize,
    /// Requests scoring the catalogue at once (CPU threads given to serving; the others wait
    /// their turn within `request_timeout_ms`). 0 = half the CPUs, at least 1: ingestion, the
    /// encoder and the trainer keep the rest under any HTTP load.
    pub scoring_threads: usize,
    /// When set, `/v1/*` and `/metrics` need `Authorization: Bearer <token>` (the probes stay
    /// open). Set it through `LEARN__SERVING__AUTH_TOKEN`, not a committed file.
    #[serde(default, skip_serializing)]
    pub auth_token: Option<Secret>,
    /// Serve without `auth_token` on an address beyond loopback (a proxy or the network
    /// authenticates); otherwise such a start is refused.
    pub allow_unauthenticated: bool,
}

impl ServingConfig {
    /// The `Authorization` header value clients of this service send (`serving.auth_token`).
    pub fn authorization(&self) -> Option<String> {
        self.auth_token
            .as_ref()
            .map(|token| format!("Bearer {}", token.expose()))
    }

    /// `scoring_threads` with 0 resolved.
    pub fn scorers(&self) -> usize {
        match self.scoring_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        }
    }
}

/// Lag control: micro-batch sizes adapt to hold consumer lag under a target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LagConfig {
    /// Messages behind (summed over a stream's partitions) that the controller aims to stay under.
    pub target_messages: i64,
    /// Upload produced → aligned embedding in Redis that the controller aims to stay under: when
    /// an upload takes longer, training steps shrink.
    pub freshness_target_ms: u64,
    /// Bounds of the uploads consumer's micro-batch (texts per encoder call).
    pub embed_batch_min: usize,
    pub embed_batch_max: usize,
}

impl Config {
    /// Defaults, then `file` if given, then `LEARN__…` environment variables; then validation.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env =
            Env::prefixed(ENV_PREFIX).filter(|key| librdkafka_property(key.as_str()).is_none());
        figment = figment.merge(env.split("__"));
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        for (name, value) in std::env::vars() {
            let property = name.strip_prefix(ENV_PREFIX).and_then(librdkafka_property);
            if let Some(property) = property {
                config.kafka.librdkafka.insert(property, value);
            }
        }
        config.validate()?;
        Ok(config)
    }
}

/// The librdkafka property an environment override names (after `LEARN__`):
/// `KAFKA__LIBRDKAFKA__SASL__PASSWORD` sets `sasl.password`, each `__` a dot — the properties are
/// dotted, and a dot in a variable name would nest the key instead (a Kubernetes Secret's keys come
/// in as such variables).
fn librdkafka_property(name: &str) -> Option<String> {
    const SECTION: &str = "KAFKA__LIBRDKAFKA__";
    let head = name.get(..SECTION.len())?;
    let rest = &name[SECTION.len()..];
    (head.eq_ignore_ascii_case(SECTION) && !rest.is_empty())
        .then(|| rest.to_ascii_lowercase().replace("__", "."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_properties_come_through_the_environment_dotted() {
        assert_eq!(
            librdkafka_property("KAFKA__LIBRDKAFKA__SASL__PASSWORD").as_deref(),
            Some("sasl.password")
        );
        assert_eq!(
            librdkafka_property("kafka__librdkafka__ssl__ca__location").as_deref(),
            Some("ssl.ca.location")
        );
        assert_eq!(librdkafka_property("KAFKA__BROKERS"), None);
        assert_eq!(librdkafka_property("KAFKA__LIBRDKAFKA__"), None);
    }
}
