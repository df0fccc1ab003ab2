//! Security: the Kafka clients are built with TLS and SASL-SCRAM, Redis speaks TLS (`rediss://`)
//! and verifies the server against a private CA, and `learn serve` runs end to end over TLS to
//! both. `scripts/test-services.sh` makes a throwaway CA and server certificate, starts
//! redis-server with a TLS port, and puts a TLS endpoint in front of a second tansu: tansu 0.6
//! parses `--cert` but its listener never uses it, so socat's OpenSSL listener terminates TLS, as
//! a TLS proxy or load balancer in front of a broker would (the broker advertises that endpoint).

mod common;

use std::process::Stdio;
use std::time::Duration;

use learn_stream::schemas::{Action, EmbeddingSpace, ItemUpload, UserAction};
use learn_stream::store::{HistoryPolicy, RedisStore, Store};
use rdkafka::producer::{BaseProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

/// librdkafka refuses `security.protocol = sasl_ssl` and SCRAM when built without OpenSSL.
#[test]
fn kafka_clients_are_built_with_tls_and_scram() {
    let producer: Result<BaseProducer, _> = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:1")
        .set("security.protocol", "sasl_ssl")
        .set("sasl.mechanisms", "SCRAM-SHA-512")
        .set("sasl.username", "learn")
        .set("sasl.password", "secret")
        .create();
    assert!(producer.is_ok(), "{:?}", producer.err());
}

fn policy() -> HistoryPolicy {
    HistoryPolicy {
        cap: 100,
        ttl_ms: 0,
        dedupe_window: 16,
    }
}

#[tokio::test]
async fn redis_over_tls_verifies_the_server() {
    let Some((_, redis_url, ca)) = common::tls() else {
        return;
    };
    let mut config = learn_stream::config::Config::load(None).unwrap().redis;
    config.url = redis_url.clone();
    config.key_prefix = format!("test:{}:", common::unique("tls"));
    // Without the private CA the server's certificate does not verify.
    assert!(
        RedisStore::open(&config, policy()).await.is_err(),
        "a server signed by an unknown CA must be refused"
    );
    config.tls_ca_file = Some(ca);
    let store = RedisStore::open(&config, policy())
        .await
        .expect("rediss://");
    store.ping().await.expect("PING over TLS");
}

#[test]
fn serve_runs_end_to_end_over_tls() {
    let (Some((brokers, redis_url, ca)), Some(model_dir)) = (common::tls(), common::model_dir())
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = common::config(&brokers, &redis_url, &model_dir);
    config.redis.tls_ca_file = Some(ca.clone());
    let tls = [
        ("security.protocol", "ssl".to_string()),
        ("ssl.ca.location", ca.display().to_string()),
    ];
    config
        .kafka
        .librdkafka
        .extend(tls.iter().map(|(k, v)| (k.to_string(), v.clone())));
    runtime
        .block_on(learn_stream::kafka::create_topics(
            &config.kafka,
            &common::topics(&config),
            1,
        ))
        .expect("create topics over TLS");
    let file = std::env::temp_dir().join(format!("{}.toml", common::unique("tls")));
    let librdkafka: String = tls
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect();
    std::fs::write(&file, format!("[kafka.librdkafka]\n{librdkafka}")).unwrap();
    let mut serve = common::serve_command(&config, &model_dir)
        .env("LEARN_CONFIG", &file)
        .env("LEARN__REDIS__TLS_CA_FILE", &ca)
        .env("LEARN__KAFKA__FETCH_WAIT_MAX_MS", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve");

    let producer = learn_stream::kafka::producer(&config.kafka).expect("TLS producer");
    let upload = ItemUpload {
        item_id: "tls-video".into(),
        title: "Encrypted all the way".into(),
        description: None,
        tags: Vec::new(),
        category: None,
        brand: None,
        author_id: None,
        ts_ms: 1,
    };
    let action = UserAction {
        event_id: "tls-1".into(),
        user_id: "tls-user".into(),
        item_id: "tls-video".into(),
        action: Action::Like,
        ts_ms: 2,
        watch_ms: None,
    };
    let store = runtime
        .block_on(RedisStore::open(&config.redis, policy()))
        .expect("rediss://");
    runtime.block_on(async {
        for (topic, key, payload) in [
            (
                &config.kafka.items_topic,
                "tls-video",
                serde_json::to_vec(&upload).unwrap(),
            ),
            (
                &config.kafka.actions_topic,
                "tls-user",
                serde_json::to_vec(&action).unwrap(),
            ),
        ] {
            producer
                .send(
                    FutureRecord::to(topic).key(key).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce over TLS");
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        common::wait_until(
            "the action and the upload in Redis, over TLS",
            Duration::from_secs(120),
            || async {
                let history = store.history("tls-user", 10).await.unwrap_or_default();
                let item = store
                    .item_embedding("tls-video", EmbeddingSpace::Content)
                    .await
                    .ok()
                    .flatten();
                history.len() == 1 && item.is_some()
            },
        )
        .await;
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(serve.wait().unwrap().success(), "graceful shutdown exits 0");
    let _ = std::fs::remove_file(file);
}
