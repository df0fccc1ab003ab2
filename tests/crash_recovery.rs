//! Kill the service five times at random points of a stream (SIGKILL: no flush, no commit, no group
//! leave), restarting it each time: no action is lost and none is duplicated in Redis, because the
//! history write is idempotent (per-partition offset watermarks updated in the same Lua script as
//! the appends) and each restart resumes right after those watermarks.
//!
//! Broker: librdkafka's mock cluster, not tansu. tansu 0.6.0 never evicts a group member that died
//! without leaving, so a restarted consumer would get no partitions there; the mock cluster evicts
//! it after `session.timeout.ms`, as Apache Kafka does. Redis is the real server.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use learn_stream::schemas::{Action, UserAction};
use learn_stream::store::{HistoryPolicy, RedisStore, Store};

const USERS: usize = 5;

fn spawn_serve(config: &learn_stream::config::Config, model_dir: &std::path::Path) -> Child {
    common::serve_command(config, model_dir)
        // Never commit on a timer: everything the first process wrote is replayed after the kill.
        .env("LEARN__KAFKA__AUTO_COMMIT_INTERVAL_MS", "3600000")
        .env("LEARN__INGEST__MAX_BATCH", "20")
        .env("LEARN__HISTORY__CAP", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve")
}

fn actions(range: std::ops::Range<usize>) -> Vec<UserAction> {
    range
        .map(|n| UserAction {
            event_id: format!("e{n}"),
            user_id: format!("u{}", n % USERS),
            item_id: format!("i{n}"),
            action: Action::View,
            ts_ms: n as i64,
            watch_ms: None,
        })
        .collect()
}

/// Entries in all histories (`LLEN` of each: the lists grow to 20,000 at full size).
fn history_len(redis: &redis::Client, prefix: &str) -> usize {
    let mut conn = redis.get_connection().unwrap();
    (0..USERS)
        .map(|u| {
            redis::cmd("LLEN")
                .arg(format!("{prefix}h:{{u{u}}}"))
                .query::<usize>(&mut conn)
                .unwrap()
        })
        .sum()
}

#[test]
fn sigkill_and_restart_loses_nothing_and_duplicates_nothing() {
    let (Some(redis_url), Some(model_dir)) = (common::redis(), common::model_dir()) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = common::config("unused", &redis_url, &model_dir);
    let broker = common::mock_cluster(&mut config, 3);
    let store = runtime
        .block_on(RedisStore::connect(
            &redis_url,
            &config.redis.key_prefix,
            HistoryPolicy {
                cap: 100_000,
                ttl_ms: 0,
                dedupe_window: 16,
            },
        ))
        .expect("redis");
    let encode = |batch: &[UserAction]| -> Vec<(String, String, Vec<u8>)> {
        batch
            .iter()
            .map(|a| {
                (
                    config.kafka.actions_topic.clone(),
                    a.user_id.clone(),
                    serde_json::to_vec(a).unwrap(),
                )
            })
            .collect()
    };

    // The stream, produced up front; `LEARN_FAULTS_ACTIONS` scales it (scripts/chaos.sh: 100,000).
    let total: usize = std::env::var("LEARN_FAULTS_ACTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let all = actions(0..total);
    let (redis, prefix) = (
        redis::Client::open(redis_url.as_str()).unwrap(),
        config.redis.key_prefix.as_str(),
    );
    // A producer paces the stream over ~45 s while the service is killed and restarted.
    let producer = std::thread::spawn({
        let (brokers, messages) = (config.kafka.brokers.clone(), encode(&all));
        move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            for chunk in messages.chunks(messages.len().div_ceil(90)) {
                runtime.block_on(common::produce(&brokers, chunk));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    });
    // Five SIGKILLs, each at a random moment once the process is writing, each followed by a
    // restart (the mock cluster hands the dead member's partitions over after the session timeout).
    let mut kills = Vec::new();
    for _ in 0..5 {
        let before = history_len(&redis, prefix);
        let mut serve = spawn_serve(&config, &model_dir);
        runtime.block_on(common::wait_until(
            "the process to write",
            Duration::from_secs(240),
            || async { history_len(&redis, prefix) > before },
        ));
        std::thread::sleep(Duration::from_millis(rand::random_range(0..1500)));
        serve.kill().expect("SIGKILL");
        serve.wait().unwrap();
        kills.push(history_len(&redis, prefix));
    }
    producer.join().unwrap();
    let mut serve = spawn_serve(&config, &model_dir);
    runtime.block_on(common::wait_until(
        "the last process to catch up",
        Duration::from_secs(240),
        || async { history_len(&redis, prefix) >= total },
    ));
    // Give a wrongly duplicating implementation time to show itself, then stop gracefully.
    std::thread::sleep(Duration::from_secs(2));
    sigterm(&serve);
    assert!(serve.wait().unwrap().success(), "graceful shutdown exits 0");

    for u in 0..USERS {
        let user = format!("u{u}");
        let got: Vec<String> = runtime
            .block_on(store.history(&user, 100_000))
            .unwrap()
            .into_iter()
            .map(|e| e.item_id)
            .collect();
        let want: Vec<String> = all
            .iter()
            .filter(|a| a.user_id == user)
            .map(|a| a.item_id.clone())
            .collect();
        assert_eq!(
            got, want,
            "history of {user} (written at each kill: {kills:?})"
        );
    }
    eprintln!("crash loop: SIGKILL after {kills:?} actions were written");
    eprintln!("chaos|crash loop|5× SIGKILL at random moments, restart each time (mock cluster)|{total} actions|0|0");
    drop(broker);
}

/// Sends SIGTERM (graceful shutdown) through the `kill` command.
fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}
