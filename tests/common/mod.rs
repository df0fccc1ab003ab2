//! Shared helpers for the integration tests: where the real services are, unique names, produce
//! and read-back helpers. Services come from env vars set by `scripts/test-services.sh`:
//! `LEARN_TEST_KAFKA` (bootstrap servers), `LEARN_TEST_REDIS` (URL), `LEARN_TEST_REDIS_CLUSTER` (the
//! seed URLs of a three-primary Redis Cluster), `LEARN_TEST_MODEL_DIR`, and the
//! TLS endpoints `LEARN_TEST_KAFKA_TLS`, `LEARN_TEST_REDIS_TLS`, `LEARN_TEST_TLS_CA`, and `LEARN_TEST_PROMTOOL`.
//! Without them a test is skipped, except under CI (`CI` set), where a missing service fails it.
#![allow(dead_code)]

pub mod process;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use learn_stream::config::{Config, RedisConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set under CI: run scripts/test-services.sh")
        }
        _ => {
            eprintln!("skipped: {var} not set (run scripts/test-services.sh)");
            None
        }
    }
}

pub fn kafka() -> Option<String> {
    required("LEARN_TEST_KAFKA")
}

pub fn redis() -> Option<String> {
    required("LEARN_TEST_REDIS")
}

/// Seed URLs (comma-separated) of the local Redis Cluster.
pub fn redis_cluster() -> Option<String> {
    required("LEARN_TEST_REDIS_CLUSTER")
}

/// `[redis]` for each Redis the store tests run on: the single node, then the cluster.
pub fn redis_backends(prefix: &str) -> Vec<RedisConfig> {
    let config = |url: String, cluster| RedisConfig {
        url,
        cluster,
        key_prefix: prefix.to_string(),
        require_noeviction: true,
        tls_ca_file: None,
        tls_cert_file: None,
        tls_key_file: None,
    };
    [
        redis().map(|url| config(url, false)),
        redis_cluster().map(|url| config(url, true)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A raw connection to a node or a cluster, for reading and planting keys behind a store.
pub enum RawConn {
    Node(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl RawConn {
    pub async fn open(config: &RedisConfig) -> Self {
        if config.cluster {
            let seeds: Vec<&str> = config.url.split(',').collect();
            let client = redis::cluster::ClusterClient::new(seeds).unwrap();
            RawConn::Cluster(client.get_async_connection().await.unwrap())
        } else {
            let client = redis::Client::open(config.url.as_str()).unwrap();
            RawConn::Node(client.get_multiplexed_async_connection().await.unwrap())
        }
    }
}

impl redis::aio::ConnectionLike for RawConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RawConn::Node(c) => c.req_packed_command(cmd),
            RawConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RawConn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            RawConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RawConn::Node(c) => c.get_db(),
            RawConn::Cluster(c) => c.get_db(),
        }
    }
}

/// Prometheus's `promtool` (Debian's `prometheus` package), for the alert-rule tests.
pub fn promtool() -> Option<PathBuf> {
    required("LEARN_TEST_PROMTOOL").map(PathBuf::from)
}

pub fn model_dir() -> Option<PathBuf> {
    required("LEARN_TEST_MODEL_DIR").map(PathBuf::from)
}

/// A name no other test run uses.
pub fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), rand::random::<u32>())
}

/// Default config pointed at the test services, with topics, group and key prefix made unique.
pub fn config(brokers: &str, redis_url: &str, model_dir: &std::path::Path) -> Config {
    let mut config = Config::load(None).expect("default config loads");
    let run = unique("t");
    config.kafka.brokers = brokers.to_string();
    config.kafka.group_id = format!("learn-{run}");
    config.kafka.actions_topic = format!("actions-{run}");
    config.kafka.items_topic = format!("items-{run}");
    config.kafka.dead_letter_topic = format!("dead-letter-{run}");
    config.kafka.item_embeddings_topic = format!("item-embeddings-{run}");
    config.kafka.catalogue_topic = format!("item-catalogue-{run}");
    config.kafka.user_embeddings_topic = format!("user-embeddings-{run}");
    config.online.checkpoint_dir = std::env::temp_dir().join(format!("learn-checkpoints-{run}"));
    config.serving.addr = "127.0.0.1:0".into();
    config.redis.url = redis_url.to_string();
    config.redis.key_prefix = format!("test:{run}:");
    config.encoder.model_dir = model_dir.to_path_buf();
    config.ingest.max_wait_ms = 20;
    config
}

pub fn topics(config: &Config) -> [&str; 6] {
    config.kafka.topics()
}

/// Produces `(topic, key, payload)` messages in order and waits for every acknowledgement. All
/// are queued at once (one request in flight per connection keeps each partition in order). An
/// empty payload is sent as a tombstone (no payload at all).
pub async fn produce(brokers: &str, messages: &[(String, String, Vec<u8>)]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("message.max.bytes", "10000000")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let sends = messages.iter().map(|(topic, key, payload)| {
        let producer = &producer;
        async move {
            let mut record = FutureRecord::<str, [u8]>::to(topic).key(key.as_str());
            if !payload.is_empty() {
                record = record.payload(payload.as_slice());
            }
            producer
                .send(record, Duration::from_secs(60))
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
        }
    });
    futures::future::join_all(sends).await;
}

/// Reads `count` messages from all `partitions` of `topic` from the beginning (no group), or panics after `timeout`.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    timeout: Duration,
) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            started.elapsed() < timeout,
            "read {} of {count} messages from {topic}",
            out.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("message");
            out.push(message.payload().unwrap_or_default().to_vec());
        }
    }
    out
}

/// Polls `check` until it returns true, or panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// librdkafka's mock cluster with `config`'s topics (`partitions` each), `config` pointed at it:
/// for the tests tansu cannot serve (it never evicts a member that died or froze).
pub fn mock_cluster(config: &mut Config, partitions: i32) -> learn_stream::demo::MockBroker {
    let topics: Vec<String> = topics(config).iter().map(|t| t.to_string()).collect();
    let broker = learn_stream::demo::MockBroker::start(&topics, partitions).expect("mock cluster");
    config.kafka.brokers = broker.bootstrap_servers().to_string();
    // It cannot describe topic settings (and keeps every record).
    config.kafka.require_compacted_catalogue = false;
    broker
}

/// `learn serve` on `config`'s broker, topics, Redis and checkpoint directory (topics created by
/// the test; a session timeout of 6 s so a killed or stopped member's partitions move on).
pub fn serve_command(config: &Config, model_dir: &std::path::Path) -> std::process::Command {
    let k = &config.kafka;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_learn"));
    command
        .args(["serve", "--model-dir"])
        .arg(model_dir)
        .env("LEARN__KAFKA__BROKERS", &k.brokers)
        .env("LEARN__KAFKA__GROUP_ID", &k.group_id)
        .env("LEARN__KAFKA__ACTIONS_TOPIC", &k.actions_topic)
        .env("LEARN__KAFKA__ITEMS_TOPIC", &k.items_topic)
        .env("LEARN__KAFKA__DEAD_LETTER_TOPIC", &k.dead_letter_topic)
        .env(
            "LEARN__KAFKA__ITEM_EMBEDDINGS_TOPIC",
            &k.item_embeddings_topic,
        )
        .env("LEARN__KAFKA__CATALOGUE_TOPIC", &k.catalogue_topic)
        .env(
            "LEARN__KAFKA__USER_EMBEDDINGS_TOPIC",
            &k.user_embeddings_topic,
        )
        .env(
            "LEARN__ONLINE__CHECKPOINT_DIR",
            &config.online.checkpoint_dir,
        )
        .env("LEARN__SERVING__ADDR", &config.serving.addr)
        .env("LEARN__KAFKA__CREATE_TOPICS", "false")
        .env(
            "LEARN__KAFKA__REQUIRE_COMPACTED_CATALOGUE",
            k.require_compacted_catalogue.to_string(),
        )
        .env("LEARN__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("LEARN__REDIS__URL", &config.redis.url)
        .env("LEARN__REDIS__CLUSTER", config.redis.cluster.to_string())
        .env("LEARN__REDIS__KEY_PREFIX", &config.redis.key_prefix);
    command
}

/// `command` set to train and publish quickly (a checkpoint every 5 steps or second, steps of 2
/// users) with a leader lease of `ttl_ms`, and followers polling every 200 ms.
pub fn quick_training(
    command: &mut std::process::Command,
    ttl_ms: u64,
) -> &mut std::process::Command {
    command
        .env("LEARN__ONLINE__LEADER_TTL_MS", ttl_ms.to_string())
        .env("LEARN__ONLINE__CHECKPOINT_EVERY_STEPS", "5")
        .env("LEARN__ONLINE__CHECKPOINT_INTERVAL_SECS", "1")
        .env("LEARN__ONLINE__MIN_BATCH_SIZE", "2")
        .env("LEARN__ONLINE__MODEL_POLL_MS", "200")
}

/// The TLS services: (Kafka bootstrap servers over TLS, `rediss://` URL, the CA's PEM file).
pub fn tls() -> Option<(String, String, PathBuf)> {
    Some((
        required("LEARN_TEST_KAFKA_TLS")?,
        required("LEARN_TEST_REDIS_TLS")?,
        PathBuf::from(required("LEARN_TEST_TLS_CA")?),
    ))
}

/// A llama/qwen2 GGUF decoder (SmolLM2-135M: `scripts/fetch-model.sh smollm2`).
/// nomic-embed-text-v1.5 as an F16 GGUF (`scripts/fetch-model.sh nomic`).
pub fn nomic_model() -> Option<PathBuf> {
    required("LEARN_TEST_NOMIC_MODEL").map(PathBuf::from)
}

pub fn decoder_model() -> Option<PathBuf> {
    required("LEARN_TEST_DECODER_MODEL").map(PathBuf::from)
}

/// A loopback address nothing listens on yet.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET /v1/status` of the process serving on `addr`, if it answers.
pub fn status(addr: &str) -> Option<learn_stream::service::Status> {
    ureq::get(format!("http://{addr}/v1/status"))
        .call()
        .ok()?
        .body_mut()
        .read_json()
        .ok()
}

/// Sends `signal` (`-TERM`, `-KILL`, `-STOP`, …) to `child`.
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal}");
}
