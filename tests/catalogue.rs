//! The catalogue survives what compaction and retention leave of its topics (tansu + Redis +
//! `learn serve`): the changelog holds one record per upload, edit or deletion however many
//! checkpoints republish the aligned vectors (those go to `item-embeddings`), and a new process
//! started on the newest record per key alone — with every aligned record gone — has every live
//! item in its catalogue before `/readyz` says ready.
//!
//! Compaction is simulated (tansu 0.6 compacts only in its maintenance pass, at start and every ten
//! minutes): the changelog is copied, newest record per key and partition, into a fresh topic, as a
//! compacted log reads.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{read_all, workload};
use learn_stream::kafka::create_topics;
use learn_stream::workload::SyntheticOptions;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

const PARTITIONS: i32 = 3;
const ITEMS: usize = 40;
const EDITED: usize = 8;
const DELETED: usize = 6;

#[test]
fn a_new_process_rebuilds_every_live_item_from_the_compacted_changelog() {
    let (Some(brokers), Some(redis_url), Some(model_dir)) =
        (common::kafka(), common::redis(), common::model_dir())
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = common::config(&brokers, &redis_url, &model_dir);
    let k = &config.kafka;
    runtime
        .block_on(create_topics(k, &common::topics(&config), PARTITIONS))
        .unwrap();

    // One process: uploads and actions, edits (uploads again), deletions; checkpoints republish.
    let addr = common::free_addr();
    let mut first = common::serve_command(&config, &model_dir);
    let mut first = common::quick_training(&mut first, 3_000)
        .env("LEARN__SERVING__ADDR", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve");
    let options = SyntheticOptions {
        items: ITEMS,
        users: 30,
        actions: 3_000,
        bad_fraction: 0.0,
        seed: 5,
    };
    let messages = workload(&config, &options);
    let uploads: Vec<_> = messages
        .iter()
        .filter(|(topic, ..)| *topic == k.items_topic)
        .cloned()
        .collect();
    assert_eq!(uploads.len(), ITEMS);
    runtime.block_on(common::produce(&brokers, &messages));
    runtime.block_on(common::produce(&brokers, &uploads[..EDITED]));
    let deletions: Vec<_> = uploads[ITEMS - DELETED..]
        .iter()
        .map(|(topic, key, _)| (topic.clone(), key.clone(), Vec::new()))
        .collect();
    runtime.block_on(common::produce(&brokers, &deletions));
    let deleted: Vec<&String> = deletions.iter().map(|(_, key, _)| key).collect();
    let tombstones = || {
        read_all(&brokers, &k.catalogue_topic, PARTITIONS)
            .iter()
            .filter(|(_, key, payload)| {
                payload.is_none() && key.as_ref().is_some_and(|k| deleted.contains(&k))
            })
            .count()
    };
    let version = || common::status(&addr).map_or(0, |s| s.model_version);
    runtime.block_on(common::wait_until(
        "every deletion on the changelog (the uploads before them), and a checkpoint",
        Duration::from_secs(180),
        || std::future::ready(tombstones() >= DELETED && version() >= 1),
    ));
    let settled = read_all(&brokers, &k.catalogue_topic, PARTITIONS).len();
    let at = version();
    runtime.block_on(common::wait_until(
        "three more checkpoints",
        Duration::from_secs(120),
        || std::future::ready(version() >= at + 3),
    ));
    common::signal(&first, "-TERM");
    first.wait().unwrap();

    // O(items uploaded, edited or deleted), not O(items × checkpoints): checkpoints republish
    // the aligned vectors to item-embeddings, and add nothing to the changelog. (Of several
    // events of one item in a batch the last counts, so there may be fewer than were sent.)
    let changelog = read_all(&brokers, &k.catalogue_topic, PARTITIONS);
    assert_eq!(
        changelog.len(),
        settled,
        "checkpoints wrote to the changelog"
    );
    assert!(settled <= ITEMS + EDITED + DELETED, "{settled} records");
    let aligned = read_all(&brokers, &k.item_embeddings_topic, PARTITIONS).len();
    assert!(
        aligned > 2 * (ITEMS - DELETED),
        "checkpoints republished aligned vectors ({aligned} records)"
    );

    // What compaction keeps: the newest record of each key, in a fresh topic.
    let mut newest: HashMap<(i32, String), Option<Vec<u8>>> = HashMap::new();
    for (partition, key, payload) in changelog {
        newest.insert((partition, key.expect("keyed by item id")), payload);
    }
    let mut second = common::config(&brokers, &redis_url, &model_dir);
    runtime
        .block_on(create_topics(
            &second.kafka,
            &common::topics(&second),
            PARTITIONS,
        ))
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    runtime.block_on(async {
        for ((partition, key), payload) in &newest {
            let mut record = FutureRecord::<str, [u8]>::to(&second.kafka.catalogue_topic)
                .key(key.as_str())
                .partition(*partition);
            if let Some(payload) = payload {
                record = record.payload(payload.as_slice());
            }
            producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap();
        }
    });

    // A new process on the compacted changelog alone: empty inputs, an item-embeddings topic
    // retention has emptied, a Redis prefix of its own.
    second.serving.addr = common::free_addr();
    let mut process = common::serve_command(&second, &model_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve");
    let started = Instant::now();
    let ready = loop {
        assert!(started.elapsed() < Duration::from_secs(120), "never ready");
        let ready = ureq::get(format!("http://{}/readyz", second.serving.addr))
            .call()
            .is_ok();
        if ready {
            break common::status(&second.serving.addr).expect("status");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        ready.catalogue_items,
        ITEMS - DELETED,
        "every live item, and only those, when /readyz first says ready"
    );
    common::signal(&process, "-TERM");
    process.wait().unwrap();
}
