//! Scale-out end to end: three `learn serve` processes (`online.role = "auto"`) in one consumer
//! group on tansu (six partitions per topic) over a three-primary Redis Cluster, fed by a producer
//! of actions and uploads.
//! 1. Every history is exact (each action once, in order); the shared popularity counts every
//!    action once; every upload is recommendable from every process (the item-embeddings
//!    changelog), within a bound; a tombstone on `items` deletes the item from the store and from
//!    every process; all three serve one version.
//! 2. SIGTERM a follower: its partitions move to the others and nothing is lost.
//! 3. kill -9 the leader: the last process takes the lock within the lease's TTL + a step, and
//!    the published versions keep rising.
//!
//! tansu 0.6.0 never evicts a member that died without leaving, so the SIGKILL comes last: after
//! it only leadership and versions are checked (the dead member's partitions stay assigned to it
//! on tansu; `tests/crash_recovery.rs` covers a SIGKILL's histories on the mock cluster).

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use learn_stream::config::Config;
use learn_stream::schemas::{EmbeddingSpace, ItemUpload};
use learn_stream::serving::recommend::Recommendation;
use learn_stream::store::{HistoryPolicy, RedisStore, Store};
use learn_stream::workload::{synthetic_stream, Outgoing, SyntheticOptions};

const PARTITIONS: i32 = 6;
const TTL_MS: u64 = 3000;

struct Process {
    child: Child,
    addr: String,
}

impl Process {
    fn status(&self) -> Option<learn_stream::service::Status> {
        common::status(&self.addr)
    }

    fn ready(&self) -> bool {
        ureq::get(format!("http://{}/readyz", self.addr))
            .call()
            .is_ok()
    }

    /// The item ids `/v1/recommend` returns to `user` (k = 200, embeddings only).
    fn recommends(&self, user: &str) -> Vec<String> {
        let Ok(mut response) = ureq::get(format!(
            "http://{}/v1/recommend?user_id={user}&k=200&popularity_weight=0",
            self.addr
        ))
        .call() else {
            return Vec::new();
        };
        let rec: Recommendation = response.body_mut().read_json().unwrap();
        rec.items.into_iter().map(|s| s.item_id).collect()
    }
}

/// A process the test did not stop (it failed midway) is killed with it.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Config, model_dir: &std::path::Path, name: &str) -> Process {
    let addr = common::free_addr();
    let mut command = common::serve_command(config, model_dir);
    let child = common::quick_training(&mut command, TTL_MS)
        .env("LEARN__SERVING__ADDR", &addr)
        .env(
            "LEARN__ONLINE__CHECKPOINT_DIR",
            config.online.checkpoint_dir.join(name),
        )
        .env("LEARN__ONLINE__ROLE", "auto")
        // Counts that never decay: the test checks that every action counts exactly once.
        .env("LEARN__SERVING__POPULARITY_HALF_LIFE_SECS", "0")
        // Not SCHED_IDLE: the test's figures are about hand-over, not about yielding the CPU.
        .env("LEARN__ONLINE__TRAINER_PRIORITY", "normal")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve");
    Process { child, addr }
}

/// (topic, key, payload) messages.
type Messages = Vec<(String, String, Vec<u8>)>;

/// A synthetic stream's uploads and actions (event times moved by `seed` days, so that no two
/// streams share an event), and each user's expected history (item ids in produce order) extended.
fn stream(
    config: &Config,
    actions: usize,
    seed: u64,
    expected: &mut BTreeMap<String, Vec<String>>,
) -> (Messages, Messages) {
    let (mut uploads, mut out) = (Vec::new(), Vec::new());
    for m in synthetic_stream(&SyntheticOptions {
        items: 60,
        users: 40,
        actions,
        bad_fraction: 0.0,
        seed,
    }) {
        let topic = m.topic().name(&config.kafka).to_string();
        match m {
            Outgoing::Upload(_) => uploads.push((topic, m.key().to_string(), m.payload())),
            Outgoing::Action(mut action) => {
                action.ts_ms += seed as i64 * 86_400_000;
                expected
                    .entry(action.user_id.clone())
                    .or_default()
                    .push(action.item_id.clone());
                let key = action.user_id.clone();
                out.push((topic, key, serde_json::to_vec(&action).unwrap()));
            }
            Outgoing::Malformed { .. } => unreachable!("bad_fraction is 0"),
        }
    }
    (uploads, out)
}

/// Produces `messages` in chunks, paced.
async fn produce_paced(brokers: &str, messages: &[(String, String, Vec<u8>)]) {
    for chunk in messages.chunks(200) {
        common::produce(brokers, chunk).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn histories_exact(store: &RedisStore, expected: &BTreeMap<String, Vec<String>>) -> bool {
    for (user, items) in expected {
        let got: Vec<String> = store
            .history(user, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.item_id)
            .collect();
        if &got != items {
            return false;
        }
    }
    true
}

/// Produces a new upload and returns how long until every process in `processes` recommends it.
async fn upload_reach(config: &Config, processes: &[&Process], n: usize) -> Duration {
    let upload = ItemUpload {
        item_id: format!("fresh-{n}"),
        title: format!("Fresh upload {n}: sourdough ramen at midnight"),
        description: None,
        tags: vec!["cooking".into()],
        category: Some("Cooking".into()),
        brand: None,
        author_id: None,
        ts_ms: learn_stream::schemas::now_ms(),
    };
    let produced = Instant::now();
    common::produce(
        &config.kafka.brokers,
        &[(
            config.kafka.items_topic.clone(),
            upload.item_id.clone(),
            serde_json::to_vec(&upload).unwrap(),
        )],
    )
    .await;
    common::wait_until(
        "the upload recommendable everywhere",
        Duration::from_secs(60),
        || {
            let everywhere = processes
                .iter()
                .all(|p| p.recommends("u1").contains(&upload.item_id));
            std::future::ready(everywhere)
        },
    )
    .await;
    produced.elapsed()
}

async fn converged(processes: &[&Process], store: &RedisStore) -> Option<u64> {
    let published = store.model_version().await.unwrap()?;
    processes
        .iter()
        .all(|p| p.status().is_some_and(|s| s.model_version == published))
        .then_some(published)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_over_a_redis_cluster_lose_nothing_and_hand_over() {
    let (Some(brokers), Some(cluster), Some(model_dir)) = (
        common::kafka(),
        common::redis_cluster(),
        common::model_dir(),
    ) else {
        return;
    };
    let mut config = common::config(&brokers, &cluster, &model_dir);
    config.redis.cluster = true;
    learn_stream::kafka::create_topics(&config.kafka, &common::topics(&config), PARTITIONS)
        .await
        .unwrap();
    let store = RedisStore::open(&config.redis, HistoryPolicy::from(&config.history))
        .await
        .unwrap();
    let mut expected = BTreeMap::new();
    let (uploads, first) = stream(&config, 4000, 11, &mut expected);
    // The catalogue first, then the processes.
    common::produce(&brokers, &uploads).await;
    let mut processes: Vec<Process> = ["a", "b", "c"]
        .iter()
        .map(|name| spawn(&config, &model_dir, name))
        .collect();
    common::wait_until("three ready processes", Duration::from_secs(120), || {
        std::future::ready(processes.iter().all(Process::ready))
    })
    .await;
    produce_paced(&brokers, &first).await;

    // 1. Exact histories, uploads everywhere, one version.
    common::wait_until("every history exact", Duration::from_secs(120), || {
        histories_exact(&store, &expected)
    })
    .await;
    let everyone: Vec<&Process> = processes.iter().collect();
    let mut reach = Vec::new();
    for n in 0..5 {
        reach.push(upload_reach(&config, &everyone, n).await);
    }
    // A tombstone on `items` deletes the item everywhere: the store, every process's catalogue.
    common::produce(
        &brokers,
        &[(
            config.kafka.items_topic.clone(),
            "fresh-0".into(),
            Vec::new(),
        )],
    )
    .await;
    let deleting = Instant::now();
    common::wait_until(
        "the deleted item gone everywhere",
        Duration::from_secs(60),
        || {
            let (everyone, store) = (&everyone, &store);
            async move {
                let recommended = everyone.iter().any(|p| {
                    let items = p.recommends("u1");
                    items.is_empty() || items.iter().any(|i| i == "fresh-0")
                });
                let stored = store
                    .item_embeddings(&["fresh-0".into()], EmbeddingSpace::Content)
                    .await
                    .unwrap()[0]
                    .is_some();
                !recommended && !stored
            }
        },
    )
    .await;
    let deletion = deleting.elapsed();
    // One version everywhere; not a particular one: with the stream over, the leader may have
    // published its last version before this point (phase 3 checks that versions keep rising).
    common::wait_until(
        "three processes on one version",
        Duration::from_secs(120),
        || {
            let everyone = &everyone;
            let store = &store;
            async move { converged(everyone, store).await.is_some() }
        },
    )
    .await;
    // Every process added its actions to the shared popularity, each once (the processes'
    // counts never decay here); the startup rebalances redeliver some of them, as replays.
    let last_sum = std::cell::Cell::new(0.0);
    common::wait_until(
        "the shared popularity to count every action once",
        Duration::from_secs(30),
        || {
            let (store, last_sum) = (&store, &last_sum);
            async move {
                let counts = store
                    .popularity(learn_stream::schemas::now_ms(), 0)
                    .await
                    .unwrap();
                let sum = counts.values().sum::<f64>();
                if sum != last_sum.replace(sum) {
                    eprintln!("shared popularity: {sum} of 4000 actions");
                }
                sum == 4000.0
            }
        },
    )
    .await;
    let statuses: Vec<_> = processes.iter().map(|p| p.status().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| s.leading).count(),
        1,
        "exactly one leader: {statuses:?}"
    );
    let leader = statuses.iter().position(|s| s.leading).unwrap();

    // 2. SIGTERM a follower: its partitions move, nothing is lost.
    let follower = (leader + 1) % 3;
    common::signal(&processes[follower].child, "-TERM");
    assert!(processes[follower].child.wait().unwrap().success());
    let (_, second) = stream(&config, 2000, 12, &mut expected);
    produce_paced(&brokers, &second).await;
    let survivors: Vec<&Process> = (0..3)
        .filter(|&i| i != follower)
        .map(|i| &processes[i])
        .collect();
    common::wait_until(
        "every history exact after the SIGTERM",
        Duration::from_secs(120),
        || histories_exact(&store, &expected),
    )
    .await;
    reach.push(upload_reach(&config, &survivors, 5).await);
    common::wait_until(
        "the survivors on one version",
        Duration::from_secs(120),
        || {
            let survivors = &survivors;
            let store = &store;
            async move { converged(survivors, store).await.is_some() }
        },
    )
    .await;

    // 3. kill -9 the leader: the last process takes over and versions keep rising.
    let last = 3 - leader - follower;
    let before = store.model_version().await.unwrap().unwrap();
    common::signal(&processes[leader].child, "-KILL");
    processes[leader].child.wait().unwrap();
    let killed = Instant::now();
    common::wait_until("the last process to lead", Duration::from_secs(60), || {
        std::future::ready(processes[last].status().is_some_and(|s| s.leading))
    })
    .await;
    let takeover = killed.elapsed();
    let (_, third) = stream(&config, 1000, 13, &mut BTreeMap::new());
    produce_paced(&brokers, &third).await;
    common::wait_until(
        "a newer version from the new leader",
        Duration::from_secs(120),
        || {
            let (store, last) = (&store, &processes[last]);
            async move {
                let published = store.model_version().await.unwrap().unwrap_or(0);
                published > before && last.status().is_some_and(|s| s.model_version == published)
            }
        },
    )
    .await;

    eprintln!(
        "scale-out: upload → recommendable from every process {:?}; tombstone → gone everywhere {deletion:?}; leader takeover after kill -9 {takeover:?} (lease {TTL_MS} ms)",
        reach
    );
    assert!(
        takeover <= Duration::from_millis(TTL_MS) + Duration::from_secs(5),
        "takeover {takeover:?}"
    );
    assert!(
        reach.iter().all(|r| *r <= Duration::from_secs(10)),
        "uploads reach every process: {reach:?}"
    );
    common::signal(&processes[last].child, "-TERM");
    assert!(processes[last].child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&config.online.checkpoint_dir);
}
