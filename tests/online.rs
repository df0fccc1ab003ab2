//! The product end to end, against tansu and redis-server: `learn replay` streams a small
//! MovieLens-format dataset (users who each love one topic) into a running service, which learns
//! online. Then: the training loss has fallen across checkpoints, checkpoints were written with
//! their manifests, a restarted service restores the newest one, a new upload's aligned embedding
//! is in Redis and the item is recommended to the users of its topic, and `/metrics` exposes
//! consumer lag.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use learn_stream::checkpoint::{read_manifest, Checkpoint, CheckpointDir, Manifest};
use learn_stream::config::{Config, Role};
use learn_stream::encode::ContentEncoder;
use learn_stream::metrics::Stats;
use learn_stream::replay::{self, ReplayOptions};
use learn_stream::schemas::{EmbeddingSpace, ItemUpload};
use learn_stream::service::Shared;
use learn_stream::serving::recommend::Recommendation;
use learn_stream::shutdown::ShutdownTrigger;
use learn_stream::store::{HistoryPolicy, RedisStore, Store};
use learn_stream::train::online::{OnlineBatch, OnlineTrainer};

const TOPICS: [(&str, [&str; 8]); 4] = [
    (
        "Cooking",
        [
            "Sourdough bread baking",
            "Ramen broth from scratch",
            "Knife skills for onions",
            "Perfect pancakes",
            "Thai green curry",
            "Homemade dumplings",
            "Cast iron steak",
            "Lemon tart pastry",
        ],
    ),
    (
        "Space",
        [
            "Rocket engines explained",
            "Life on the space station",
            "Black holes for beginners",
            "Landing on the Moon",
            "Telescope tour of Jupiter",
            "Mars rover mission",
            "Saturn rings close up",
            "Astronaut training day",
        ],
    ),
    (
        "Music",
        [
            "Jazz piano improvisation",
            "Guitar chords for beginners",
            "Drum groove practice",
            "Violin vibrato lesson",
            "Blues scale on saxophone",
            "Choir harmony warmups",
            "Bass line basics",
            "Orchestra rehearsal",
        ],
    ),
    (
        "Football",
        [
            "Penalty kick technique",
            "Goalkeeper diving saves",
            "Midfield passing drills",
            "Free kick curl",
            "Defending corners",
            "Dribbling past defenders",
            "Champions league final",
            "Offside rule explained",
        ],
    ),
];
const USERS: usize = 40;
const ACTIONS_PER_USER: usize = 16;

/// u.genre, u.item (one genre flag per item) and u.data (each user rates items of one topic).
fn write_dataset(dir: &Path) {
    let genres: String = TOPICS
        .iter()
        .enumerate()
        .map(|(i, (g, _))| format!("{g}|{i}\n"))
        .collect();
    std::fs::write(dir.join("u.genre"), genres).unwrap();
    let mut items = String::new();
    for (g, (_, titles)) in TOPICS.iter().enumerate() {
        for (t, title) in titles.iter().enumerate() {
            let flags: Vec<&str> = (0..TOPICS.len())
                .map(|i| if i == g { "1" } else { "0" })
                .collect();
            items += &format!(
                "{}|{title}|01-Jan-2020||url|{}\n",
                g * 8 + t + 1,
                flags.join("|")
            );
        }
    }
    std::fs::write(dir.join("u.item"), items).unwrap();
    // Each user's next video is drawn at random from their topic (a fixed-seed LCG): the topic is
    // the only signal, so the towers cannot memorise item-to-item transitions instead.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = String::new();
    for n in 0..USERS * ACTIONS_PER_USER {
        let user = n % USERS;
        let topic = user % TOPICS.len();
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let item = topic * 8 + (state >> 33) as usize % 8 + 1;
        data += &format!("{}\t{item}\t5\t{}\n", user + 1, 1_600_000_000 + n);
    }
    std::fs::write(dir.join("u.data"), data).unwrap();
}

/// Every user's history as one batch over the service's catalogue.
async fn every_history(shared: &Shared<RedisStore>) -> OnlineBatch {
    let mut rows = Vec::new();
    let mut sequences = Vec::new();
    for user in 1..=USERS {
        let history = shared.store.history(&user.to_string(), 100).await.unwrap();
        sequences.push(
            history
                .iter()
                .map(|e| {
                    let row = shared.catalogue.row(&e.item_id).expect("item in catalogue");
                    rows.iter().position(|r| *r == row).unwrap_or_else(|| {
                        rows.push(row);
                        rows.len() - 1
                    }) as u32
                })
                .collect(),
        );
    }
    OnlineBatch {
        table: shared.catalogue.table(&rows).unwrap(),
        sequences,
        fresh: Vec::new(),
        drawn: Vec::new(),
        negatives: shared.config.training.negatives,
        catalogue_items: rows.len(),
        log_share: None,
    }
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap()
}

struct Running {
    shared: Arc<Shared<RedisStore>>,
    shutdown: ShutdownTrigger,
    task: tokio::task::JoinHandle<Result<(), learn_stream::service::ServiceError>>,
}

async fn start(config: &Config, store: &RedisStore, encoder: &Arc<ContentEncoder>) -> Running {
    let shared = Arc::new(
        Shared::new(
            config.clone(),
            store.clone(),
            encoder.clone(),
            Arc::new(Stats::default()),
        )
        .unwrap(),
    );
    let shutdown = ShutdownTrigger::default();
    let task = tokio::spawn({
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        async move { learn_stream::service::run(shared, &shutdown).await }
    });
    Running {
        shared,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().expect("service stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learns_online_checkpoints_restores_and_recommends_new_items() {
    let (Some(brokers), Some(redis_url), Some(model_dir)) =
        (common::kafka(), common::redis(), common::model_dir())
    else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    write_dataset(data.path());
    let mut config = common::config(&brokers, &redis_url, &model_dir);
    config.serving.addr = free_addr();
    config.online.role = Role::Auto;
    config.online.batch_size = 16;
    config.online.min_batch_size = 4;
    config.online.step_interval_ms = 5;
    config.online.checkpoint_every_steps = 15;
    config.online.keep_checkpoints = 100;
    config.training.lr = 3e-3;
    config.towers.max_len = 20;
    let url = format!("http://{}", config.serving.addr);
    let encoder = Arc::new(ContentEncoder::from_config(&config.encoder).expect("model"));
    let policy = HistoryPolicy {
        cap: 100,
        ttl_ms: 3_600_000,
        dedupe_window: 16,
    };
    let store = RedisStore::connect(&redis_url, &config.redis.key_prefix, policy)
        .await
        .unwrap();

    let service = start(&config, &store, &encoder).await;
    common::wait_until("the HTTP API", Duration::from_secs(60), || {
        let url = format!("{url}/healthz");
        async move { ureq::get(&url).call().is_ok() }
    })
    .await;

    let options = ReplayOptions {
        dataset: data.path().to_path_buf(),
        speed: 1e9,
        max_rate: 0.0,
        limit: 0,
        serve_url: Some(url.clone()),
        eval_every: 4,
        window: 50,
        out: data.path().join("report"),
        split: None,
        scratch_url: None,
    };
    let report = tokio::task::spawn_blocking({
        let config = config.clone();
        move || replay::run(&config, &options)
    })
    .await
    .unwrap()
    .expect("replay");
    assert_eq!(report.actions, USERS * ACTIONS_PER_USER);
    assert!(!report.probes.is_empty() && report.unsynced_probes == 0);

    // Keep learning until a few versions exist.
    common::wait_until("three checkpoints", Duration::from_secs(240), || {
        let version = service.shared.models.current().version;
        async move { version >= 3 }
    })
    .await;
    let checkpoints = CheckpointDir::new(&config.online.checkpoint_dir, 100);
    let manifests: Vec<_> = checkpoints
        .list()
        .unwrap()
        .iter()
        .map(|(_, p)| read_manifest(p).unwrap())
        .collect();
    assert!(manifests.len() >= 3);
    let (first, last) = (&manifests[0], manifests.last().unwrap());
    assert!(last.step > first.step && last.offsets.contains_key(&config.kafka.actions_topic));

    // Loss fell: every user's history, scored by the initial weights and by the newest checkpoint.
    let batch = every_history(&service.shared).await;
    let mut trainer = OnlineTrainer::new(
        &config.towers,
        encoder.dim(),
        &config.training,
        config.online.recent_targets,
    )
    .unwrap();
    let initial = trainer.loss(&batch).unwrap().unwrap();
    let newest = checkpoints.latest().unwrap().unwrap();
    let step = newest.manifest.step;
    // Step counter 0 in both cases: the same random cuts and dropout, only the weights differ.
    trainer
        .restore(&Checkpoint {
            manifest: Manifest {
                step: 0,
                ..newest.manifest.clone()
            },
            ..newest
        })
        .unwrap();
    let trained = trainer.loss(&batch).unwrap().unwrap();
    eprintln!("loss on all histories: initial weights {initial:.4}, after {step} online steps {trained:.4}");
    assert!(trained < initial, "loss fell: {initial} → {trained}");

    // /metrics: consumer lag from librdkafka statistics, training and freshness numbers.
    common::wait_until("lag in /metrics", Duration::from_secs(30), || {
        let metrics = get(&format!("{url}/metrics"));
        async move { metrics.contains("learn_consumer_lag{") }
    })
    .await;
    let metrics = get(&format!("{url}/metrics"));
    for name in [
        "learn_train_steps_total",
        "learn_freshness_seconds",
        "learn_model_version",
        "learn_events_received_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // A restarted service (same config) restores the newest checkpoint before training further.
    service.stop().await;
    let newest = checkpoints.list().unwrap().last().unwrap().0;
    let service = start(&config, &store, &encoder).await;
    common::wait_until(
        "restored checkpoint served",
        Duration::from_secs(60),
        || {
            let version = service.shared.models.current().version;
            async move { version >= newest }
        },
    )
    .await;
    assert_eq!(service.shared.models.current().version, newest);

    // A new Space upload: aligned embedding in Redis, recommended to Space fans (embeddings only).
    let upload = ItemUpload {
        item_id: "new-space-video".into(),
        title: "Rocket launch to the Moon and Mars".into(),
        description: Some("Astronauts, telescopes and the space station.".into()),
        tags: vec!["space".into()],
        category: Some("Space".into()),
        brand: None,
        author_id: None,
        ts_ms: learn_stream::schemas::now_ms(),
    };
    let produced = Instant::now();
    common::produce(
        &brokers,
        &[(
            config.kafka.items_topic.clone(),
            upload.item_id.clone(),
            serde_json::to_vec(&upload).unwrap(),
        )],
    )
    .await;
    common::wait_until(
        "aligned embedding of the new item",
        Duration::from_secs(30),
        || {
            let store = store.clone();
            async move {
                store
                    .item_embedding("new-space-video", EmbeddingSpace::Aligned)
                    .await
                    .unwrap()
                    .is_some()
            }
        },
    )
    .await;
    eprintln!(
        "new upload readable in Redis after {:?} (test harness, polled every 100 ms)",
        produced.elapsed()
    );
    let space_fans: Vec<usize> = (0..USERS).filter(|u| u % TOPICS.len() == 1).collect();
    let mut ranks = Vec::new();
    for user in &space_fans {
        let rec: Recommendation = serde_json::from_str(&get(&format!(
            "{url}/v1/recommend?user_id={}&k=5&popularity_weight=0",
            user + 1
        )))
        .unwrap();
        assert!(!rec.cold_user);
        ranks.push(
            rec.items
                .iter()
                .position(|s| s.item_id == "new-space-video"),
        );
    }
    let hits = ranks.iter().filter(|r| r.is_some()).count();
    eprintln!("rank of the new item in each Space fan's top 5: {ranks:?}");
    assert!(
        hits * 2 > space_fans.len(),
        "the new item is in the top 5 of most Space fans: {ranks:?}"
    );
    service.stop().await;
    let _ = std::fs::remove_dir_all(&config.online.checkpoint_dir);
}
