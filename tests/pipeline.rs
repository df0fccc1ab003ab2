//! End to end against a real Kafka-protocol broker (tansu) and a real redis-server: uploads and
//! actions produced with rdkafka go through `service::run`; Redis then holds every history in order
//! and every item's embedding, which equals `learn embed` for the same text; bad events land in the
//! dead-letter topic with their reasons while the good events around them are processed.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use learn_stream::config::EncoderConfig;
use learn_stream::encode::ContentEncoder;
use learn_stream::metrics::Stats;
use learn_stream::schemas::{
    Action, DeadLetter, EmbeddingSpace, ItemEmbedding, ItemUpload, RejectReason, UserAction,
};
use learn_stream::service::Shared;
use learn_stream::shutdown::ShutdownTrigger;
use learn_stream::store::{HistoryPolicy, RedisStore, Store};

fn upload(i: usize) -> ItemUpload {
    ItemUpload {
        item_id: format!("item{i}"),
        title: format!("Upload number {i}: cooking with cast iron"),
        description: i
            .is_multiple_of(2)
            .then(|| "Seasoning and care.".to_string()),
        tags: vec!["cooking".into()],
        category: Some("Food".into()),
        brand: None,
        author_id: Some(format!("creator{}", i % 3)),
        ts_ms: 1_000 + i as i64,
    }
}

fn action(n: usize) -> UserAction {
    UserAction {
        event_id: format!("e{n}"),
        user_id: format!("user{}", n % 7),
        item_id: format!("item{}", n % 12),
        action: Action::ALL[n % Action::ALL.len()],
        ts_ms: 10_000 + n as i64,
        watch_ms: Some(1_000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_redis_with_dead_letters() {
    let (Some(brokers), Some(redis_url), Some(model_dir)) =
        (common::kafka(), common::redis(), common::model_dir())
    else {
        return;
    };
    let mut config = common::config(&brokers, &redis_url, &model_dir);
    // Ingestion only: no trainer, so the output topic holds exactly the uploads' embeddings.
    config.online.role = learn_stream::config::Role::Follower;
    learn_stream::kafka::create_topics(&config.kafka, &common::topics(&config), 3)
        .await
        .expect("create topics");

    let k = &config.kafka;
    let mut messages = Vec::new();
    let uploads: Vec<ItemUpload> = (0..12).map(upload).collect();
    for u in &uploads {
        messages.push((
            k.items_topic.clone(),
            u.item_id.clone(),
            serde_json::to_vec(u).unwrap(),
        ));
    }
    let actions: Vec<UserAction> = (0..210).map(action).collect();
    let bad_actions: Vec<(&str, Vec<u8>, RejectReason)> = vec![
        ("user1", b"{\"event_id\": \"truncated".to_vec(), RejectReason::MalformedJson),
        (
            "user2",
            br#"{"event_id":"x","user_id":"user2","item_id":"item1","action":"teleport","ts_ms":1}"#.to_vec(),
            RejectReason::UnknownAction,
        ),
        ("user3", br#"{"event_id":"y","user_id":"user3","action":"view","ts_ms":1}"#.to_vec(), RejectReason::SchemaViolation),
        ("user4", vec![0xff, 0xfe, 0x00, 0x01], RejectReason::MalformedJson),
    ];
    for (n, a) in actions.iter().enumerate() {
        messages.push((
            k.actions_topic.clone(),
            a.user_id.clone(),
            serde_json::to_vec(a).unwrap(),
        ));
        if n % 50 == 25 {
            let (key, payload, _) = &bad_actions[n / 50];
            messages.push((k.actions_topic.clone(), key.to_string(), payload.clone()));
        }
    }
    let oversize = format!(
        r#"{{"item_id":"huge","title":"{}","ts_ms":1}}"#,
        "a".repeat(20_000)
    );
    messages.push((k.items_topic.clone(), "huge".into(), oversize.into_bytes()));
    messages.push((
        k.items_topic.clone(),
        "blank".into(),
        br#"{"item_id":"blank","title":" ","ts_ms":1}"#.to_vec(),
    ));
    let total = messages.len() as u64;
    common::produce(&brokers, &messages).await;

    let encoder = Arc::new(
        ContentEncoder::from_config(&EncoderConfig {
            model_dir: model_dir.clone(),
            max_batch: 8,
            ..config.encoder.clone()
        })
        .expect("model"),
    );
    let policy = HistoryPolicy {
        cap: 25,
        ttl_ms: 3_600_000,
        dedupe_window: 16,
    };
    let store = RedisStore::connect(&redis_url, &config.redis.key_prefix, policy)
        .await
        .expect("redis");
    let stats = Arc::new(Stats::default());
    let shutdown = ShutdownTrigger::default();
    let shared = Arc::new(
        Shared::new(
            config.clone(),
            store.clone(),
            encoder.clone(),
            stats.clone(),
        )
        .expect("state"),
    );
    let service = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { learn_stream::service::run(shared, &shutdown).await }
    });
    common::wait_until("every event settled", Duration::from_secs(180), || {
        let settled = stats.snapshot().settled();
        async move { settled >= total }
    })
    .await;
    shutdown.trigger();
    service.await.unwrap().expect("service stops cleanly");

    // Histories: each user's actions, in produced order, capped at the last 25.
    let mut expected: BTreeMap<String, Vec<(String, Action, i64)>> = BTreeMap::new();
    for a in &actions {
        expected
            .entry(a.user_id.clone())
            .or_default()
            .push((a.item_id.clone(), a.action, a.ts_ms));
    }
    for (user, all) in &expected {
        let want = &all[all.len().saturating_sub(25)..];
        let got: Vec<_> = store
            .history(user, 800)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.item_id, e.action, e.ts_ms))
            .collect();
        assert_eq!(&got, want, "history of {user}");
    }
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.actions_applied, actions.len() as u64);
    assert_eq!(snapshot.actions_replayed, 0);

    // Embeddings: in Redis, right dimension, equal to the encoder (and to `learn embed`) on the item text.
    let texts: Vec<String> = uploads.iter().map(ItemUpload::text).collect();
    let direct = encoder.embed(&texts).unwrap();
    for (u, want) in uploads.iter().zip(&direct) {
        let got = store
            .item_embedding(&u.item_id, EmbeddingSpace::Content)
            .await
            .unwrap()
            .expect("embedding stored");
        assert_eq!(
            (got.dim, got.space, got.version),
            (encoder.dim(), EmbeddingSpace::Content, 0)
        );
        assert_eq!(got.model, "all-MiniLM-L6-v2");
        let max_diff = got
            .vector
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max_diff < 1e-5, "{}: max diff {max_diff}", u.item_id);
    }
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_learn"))
        .args(["embed", "--model-dir"])
        .arg(&model_dir)
        .args(["--text", &texts[3]])
        .output()
        .expect("run learn embed");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&cli.stdout).expect("one JSON line");
    let cli_vector: Vec<f32> = serde_json::from_value(line["vector"].clone()).unwrap();
    let stored = store
        .item_embedding("item3", EmbeddingSpace::Content)
        .await
        .unwrap()
        .unwrap();
    let max_diff = cli_vector
        .iter()
        .zip(&stored.vector)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-5, "learn embed vs stored: {max_diff}");

    // Every item's content vector is on the catalogue changelog, its aligned vector on
    // item-embeddings: one space per topic.
    for (topic, space, dim) in [
        (&k.catalogue_topic, EmbeddingSpace::Content, encoder.dim()),
        (
            &k.item_embeddings_topic,
            EmbeddingSpace::Aligned,
            config.towers.out_dim,
        ),
    ] {
        let published: HashMap<String, ItemEmbedding> =
            common::read_topic(&brokers, topic, 3, uploads.len(), Duration::from_secs(60))
                .iter()
                .map(|p| serde_json::from_slice::<ItemEmbedding>(p).expect("schema"))
                .map(|e| (e.item_id.clone(), e))
                .collect();
        assert_eq!(published.len(), uploads.len(), "{topic}");
        for u in &uploads {
            assert_eq!(published[&u.item_id].space, space, "{topic}");
            assert_eq!(published[&u.item_id].dim, dim, "{topic}");
        }
    }

    // Dead letters: one per bad event, with its reason and the original bytes.
    let letters: Vec<DeadLetter> = common::read_topic(
        &brokers,
        &k.dead_letter_topic,
        3,
        6,
        Duration::from_secs(60),
    )
    .iter()
    .map(|p| serde_json::from_slice(p).expect("dead letter schema"))
    .collect();
    let mut reasons: Vec<RejectReason> = letters.iter().map(|l| l.reason).collect();
    reasons.sort_by_key(|r| r.as_str());
    let mut want: Vec<RejectReason> = bad_actions.iter().map(|(_, _, r)| *r).collect();
    want.extend([RejectReason::OversizeText, RejectReason::EmptyText]);
    want.sort_by_key(|r| r.as_str());
    assert_eq!(reasons, want);
    let binary = letters
        .iter()
        .find(|l| l.key.as_deref() == Some("user4"))
        .expect("binary payload letter");
    assert_eq!(binary.payload_base64.as_deref(), Some("//4AAQ=="));
    let truncated = letters
        .iter()
        .find(|l| l.key.as_deref() == Some("user1"))
        .expect("truncated letter");
    assert_eq!(
        truncated.payload_text.as_deref(),
        Some("{\"event_id\": \"truncated")
    );
    assert_eq!(snapshot.dead_letter_total(), 6);
    assert!(store
        .item_embedding("huge", EmbeddingSpace::Content)
        .await
        .unwrap()
        .is_none());
}
