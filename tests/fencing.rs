//! Leader fencing across processes. Two `learn serve` processes pinned as `role = "trainer"`
//! share one group and one Redis: only the holder of the leader lock publishes (the other is a
//! standby). The leader is then frozen with SIGSTOP past its lease's TTL: the standby takes the
//! lock in a new epoch and publishes from the newest checkpoint; after SIGCONT the old leader's
//! round in flight is refused (its epoch is stale) and it follows — exactly one model per version,
//! and it serves the new leader's versions.
//!
//! Broker: librdkafka's mock cluster, not tansu. tansu 0.6.0 never evicts a group member that
//! stopped answering, so the frozen process would keep its partitions; the mock cluster evicts it
//! after `session.timeout.ms`, as Apache Kafka does. Redis is the real server.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use learn_stream::workload::{synthetic_stream, SyntheticOptions};

const TTL_MS: u64 = 3000;

struct Process {
    child: Child,
    addr: String,
    checkpoints: std::path::PathBuf,
}

fn spawn(config: &learn_stream::config::Config, model_dir: &Path, name: &str) -> Process {
    let addr = common::free_addr();
    let checkpoints = config.online.checkpoint_dir.join(name);
    let mut command = common::serve_command(config, model_dir);
    let child = common::quick_training(&mut command, TTL_MS)
        .env("LEARN__SERVING__ADDR", &addr)
        .env("LEARN__ONLINE__CHECKPOINT_DIR", &checkpoints)
        .env("LEARN__ONLINE__ROLE", "trainer")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve");
    Process {
        child,
        addr,
        checkpoints,
    }
}

/// The versions a process keeps checkpoints of (`v<version>/` directories).
fn versions(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix('v')?
                .parse()
                .ok()
        })
        .collect()
}

/// (pid, epoch) of the lock's holder (`<host>-<pid>|<epoch>`).
fn leader(conn: &mut redis::Connection, prefix: &str) -> Option<(u32, u64)> {
    let holder: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}{{control}}:leader"))
        .query(conn)
        .unwrap();
    let (instance, epoch) = holder?
        .split_once('|')
        .map(|(i, e)| (i.to_string(), e.to_string()))?;
    Some((
        instance.rsplit('-').next()?.parse().ok()?,
        epoch.parse().ok()?,
    ))
}

/// (version, epoch) of the published model.
fn model(conn: &mut redis::Connection, prefix: &str) -> (u64, u64) {
    let (version, epoch): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
        .arg(format!("{prefix}{{control}}:model"))
        .arg("version")
        .arg("epoch")
        .query(conn)
        .unwrap();
    (version.unwrap_or(0), epoch.unwrap_or(0))
}

#[test]
fn a_frozen_leader_is_fenced_and_exactly_one_model_exists_per_version() {
    let (Some(redis_url), Some(model_dir)) = (common::redis(), common::model_dir()) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = common::config("unused", &redis_url, &model_dir);
    let broker = common::mock_cluster(&mut config, 4);
    let prefix = config.redis.key_prefix.clone();
    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();

    // Uploads first, then actions paced over the whole test so the trainers have work.
    let stream = synthetic_stream(&SyntheticOptions {
        items: 60,
        users: 40,
        actions: 20_000,
        bad_fraction: 0.0,
        seed: 7,
    });
    let messages: Vec<(String, String, Vec<u8>)> = stream
        .into_iter()
        .map(|m| {
            let topic = m.topic().name(&config.kafka).to_string();
            (topic, m.key().to_string(), m.payload())
        })
        .collect();
    let stop_producing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = std::thread::spawn({
        let (brokers, stop) = (config.kafka.brokers.clone(), stop_producing.clone());
        move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            for chunk in messages.chunks(100) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                runtime.block_on(common::produce(&brokers, chunk));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });

    let mut processes = [
        spawn(&config, &model_dir, "a"),
        spawn(&config, &model_dir, "b"),
    ];
    runtime.block_on(common::wait_until(
        "a published model (version 2)",
        Duration::from_secs(180),
        || std::future::ready(model(&mut conn, &prefix).0 >= 2),
    ));
    let (leader_pid, first_epoch) = leader(&mut conn, &prefix).expect("a leader");
    let (leading, standby): (Vec<_>, Vec<_>) = processes
        .iter_mut()
        .partition(|p| p.child.id() == leader_pid);
    let (leading, standby) = (
        leading.into_iter().next().unwrap(),
        standby.into_iter().next().unwrap(),
    );
    assert!(
        versions(&standby.checkpoints).is_empty(),
        "two pinned trainers: only the lock holder checkpoints and publishes"
    );
    assert_eq!(
        model(&mut conn, &prefix).1,
        first_epoch,
        "published in the holder's epoch"
    );

    // Freeze the leader past its TTL: the standby takes over in a new epoch and publishes.
    common::signal(&leading.child, "-STOP");
    let frozen_at = model(&mut conn, &prefix).0;
    runtime.block_on(common::wait_until(
        "the standby to take the lock and publish",
        Duration::from_secs(90),
        || {
            let (version, epoch) = model(&mut conn, &prefix);
            std::future::ready(version > frozen_at && epoch > first_epoch)
        },
    ));
    let (new_pid, new_epoch) = leader(&mut conn, &prefix).expect("a leader");
    assert_eq!(new_pid, standby.child.id(), "the standby leads");
    assert!(new_epoch > first_epoch);

    // Thaw it: whatever round it had in flight is fenced; it follows and serves the new versions.
    common::signal(&leading.child, "-CONT");
    let thawed_at = model(&mut conn, &prefix).0;
    runtime.block_on(common::wait_until(
        "the old leader to serve the new leader's versions",
        Duration::from_secs(60),
        || async {
            common::status(&leading.addr).is_some_and(|s| !s.leading && s.model_version > thawed_at)
        },
    ));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        leader(&mut conn, &prefix).map(|l| l.0),
        Some(standby.child.id()),
        "the lock stays with the new leader"
    );
    assert_eq!(
        model(&mut conn, &prefix).1,
        new_epoch,
        "only the new epoch publishes"
    );
    let (old, new) = (
        versions(&leading.checkpoints),
        versions(&standby.checkpoints),
    );
    assert!(
        old.is_disjoint(&new),
        "exactly one model per version: old leader {old:?}, new leader {new:?}"
    );
    assert!(
        old.iter().all(|&v| v <= frozen_at) && new.iter().all(|&v| v > frozen_at),
        "the old leader's versions end where it was frozen ({frozen_at}), the new one's start after"
    );

    stop_producing.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.join().unwrap();
    for p in &mut processes {
        common::signal(&p.child, "-TERM");
        assert!(
            p.child.wait().unwrap().success(),
            "graceful shutdown exits 0"
        );
    }
    let _ = std::fs::remove_dir_all(&config.online.checkpoint_dir);
    eprintln!("fencing: epochs {first_epoch} → {new_epoch}, frozen at version {frozen_at}, old leader's versions {old:?}, new leader's {new:?}");
    drop(broker);
}
