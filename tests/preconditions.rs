//! What `learn serve` checks and exports from its first moment, on the real process (tansu +
//! redis-server): every counter an alert reads exists at 0 before any event; a Redis that evicts
//! keys, a catalogue topic that deletes by age and an unauthenticated public address each refuse
//! the start, naming the key; a published model that does not fit the configuration is an alerting
//! state, and `learn model reset` retires its lineage so the trainer publishes a new one above it.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::process::{metrics, refused, sample, workload};
use learn_stream::config::Config;
use learn_stream::kafka::create_topics;
use learn_stream::schemas::RejectReason;
use learn_stream::workload::SyntheticOptions;

/// Every `learn_…_total` counter the alert rules read.
fn alerted_counters() -> BTreeSet<String> {
    let rules = include_str!("../config/prometheus/alerts.yml");
    let mut names = BTreeSet::new();
    for (i, _) in rules.match_indices("learn_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.ends_with("_total") {
            names.insert(name);
        }
    }
    names
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn learn serve")
}

/// Whether the process on `addr` answers `/livez` within a minute.
fn serves(addr: &str) -> bool {
    (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        ureq::get(format!("http://{addr}/livez")).call().is_ok()
    })
}

fn stop(mut child: Child) {
    common::signal(&child, "-TERM");
    child.wait().unwrap();
}

/// A config on fresh topics (created, the catalogue compacted), serving on a free address.
fn setup() -> Option<(Config, std::path::PathBuf, tokio::runtime::Runtime)> {
    let (brokers, redis_url, model_dir) =
        (common::kafka()?, common::redis()?, common::model_dir()?);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = common::config(&brokers, &redis_url, &model_dir);
    config.serving.addr = common::free_addr();
    runtime
        .block_on(create_topics(&config.kafka, &common::topics(&config), 2))
        .unwrap();
    Some((config, model_dir, runtime))
}

#[test]
fn every_alerted_counter_is_exported_at_zero_before_any_event() {
    let Some((config, model_dir, _runtime)) = setup() else {
        return;
    };
    let child = spawn(&mut common::serve_command(&config, &model_dir));
    let text = (0..600)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            metrics(&config.serving.addr)
        })
        .expect("/metrics answers");
    stop(child);
    let names = alerted_counters();
    assert!(
        names.contains("learn_dead_letters_total") && names.len() >= 5,
        "{names:?}"
    );
    for name in &names {
        assert!(text.contains(name.as_str()), "{name} missing at start");
    }
    let k = &config.kafka;
    for topic in [&k.actions_topic, &k.items_topic] {
        for reason in RejectReason::ALL {
            let series = format!(
                "learn_dead_letters_total{{topic=\"{topic}\",reason=\"{}\"}}",
                reason.as_str()
            );
            assert_eq!(sample(&text, &series), Some(0.0), "{series}");
        }
    }
    for stage in ["leadership", "step", "checkpoint"] {
        let series = format!("learn_trainer_errors_total{{stage=\"{stage}\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series}");
    }
    assert_eq!(sample(&text, "learn_train_steps_total"), Some(0.0));
    assert_eq!(sample(&text, "learn_model_refused_version"), Some(0.0));
}

#[test]
fn a_redis_that_evicts_keys_refuses_the_start() {
    let Some((config, model_dir, _runtime)) = setup() else {
        return;
    };
    let port = common::free_addr().rsplit_once(':').unwrap().1.to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--maxmemory-policy", "allkeys-lru"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let url = format!("redis://127.0.0.1:{port}");
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .is_ok()
    });
    assert!(up, "redis-server on {port}");
    let stderr = refused(common::serve_command(&config, &model_dir).env("LEARN__REDIS__URL", &url));
    assert!(
        stderr.contains("redis.require_noeviction") && stderr.contains("allkeys-lru"),
        "{stderr}"
    );
    // Overridden: it starts, warned.
    let child = spawn(
        common::serve_command(&config, &model_dir)
            .env("LEARN__REDIS__URL", &url)
            .env("LEARN__REDIS__REQUIRE_NOEVICTION", "false"),
    );
    let started = serves(&config.serving.addr);
    stop(child);
    redis.kill().ok();
    redis.wait().ok();
    assert!(started, "starts with the override");
}

#[test]
fn a_catalogue_topic_that_deletes_by_age_refuses_the_start() {
    let Some((mut config, model_dir, runtime)) = setup() else {
        return;
    };
    // Made by ops with the broker's defaults (cleanup.policy=delete, 7 days).
    let unkept = common::unique("catalogue-defaults");
    let mut plain = config.kafka.clone();
    plain.catalogue_topic = "another".into();
    runtime
        .block_on(create_topics(&plain, &[unkept.as_str()], 2))
        .unwrap();
    config.kafka.catalogue_topic = unkept.clone();
    let stderr = refused(&mut common::serve_command(&config, &model_dir));
    assert!(
        stderr.contains("kafka.require_compacted_catalogue") && stderr.contains(&unkept),
        "{stderr}"
    );
}

#[test]
fn an_unauthenticated_public_address_refuses_the_start() {
    let Some((config, model_dir, _runtime)) = setup() else {
        return;
    };
    let port = config.serving.addr.rsplit_once(':').unwrap().1;
    let public = format!("0.0.0.0:{port}");
    let stderr =
        refused(common::serve_command(&config, &model_dir).env("LEARN__SERVING__ADDR", &public));
    assert!(stderr.contains("serving.auth_token"), "{stderr}");
    let child = spawn(
        common::serve_command(&config, &model_dir)
            .env("LEARN__SERVING__ADDR", &public)
            .env("LEARN__SERVING__AUTH_TOKEN", "a-token-of-sixteen-chars"),
    );
    let started = serves(&config.serving.addr);
    stop(child);
    assert!(started, "serves with a token");
}

fn model_cli(config: &Config, model_dir: &std::path::Path, towers: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_learn"));
    command
        .args(["model", "reset", "--model-dir"])
        .arg(model_dir)
        .env("LEARN__REDIS__URL", &config.redis.url)
        .env("LEARN__REDIS__KEY_PREFIX", &config.redis.key_prefix)
        .envs(towers.iter().copied());
    command
}

#[test]
fn a_published_model_that_does_not_fit_alerts_and_a_reset_starts_a_new_lineage() {
    let Some((config, model_dir, runtime)) = setup() else {
        return;
    };
    let mut conn = redis::Client::open(config.redis.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let model = format!("{}{{control}}:model", config.redis.key_prefix);
    // (published version, whether a model is there rather than a retired lineage's version)
    let mut published = move || -> (u64, bool) {
        let (version, manifest): (Option<u64>, bool) = redis::pipe()
            .hget(&model, "version")
            .hexists(&model, "manifest")
            .query(&mut conn)
            .unwrap();
        (version.unwrap_or(0), manifest)
    };
    let messages = workload(
        &config,
        &SyntheticOptions {
            items: 30,
            users: 30,
            actions: 4_000,
            bad_fraction: 0.0,
            seed: 3,
        },
    );
    let (first, second) = messages.split_at(messages.len() / 2);
    runtime.block_on(common::produce(&config.kafka.brokers, first));

    // The lineage of one tower shape.
    let mut command = common::serve_command(&config, &model_dir);
    let old = spawn(common::quick_training(&mut command, 2_000));
    runtime.block_on(common::wait_until(
        "a published model",
        Duration::from_secs(180),
        || std::future::ready(published().0 >= 1),
    ));
    stop(old);
    let retired = published().0;

    // The configuration changes under it: refused, as an alerting state.
    let changed = [("LEARN__TOWERS__LAYERS", "1")];
    let mut command = common::serve_command(&config, &model_dir);
    let new = spawn(common::quick_training(&mut command, 2_000).envs(changed));
    let addr = &config.serving.addr;
    runtime.block_on(common::wait_until(
        "the refusal exported",
        Duration::from_secs(120),
        || {
            let refused = metrics(addr).and_then(|m| sample(&m, "learn_model_refused_version"));
            std::future::ready(refused == Some(retired as f64))
        },
    ));

    // A reset of a model that fits is refused; of one that does not, done.
    let out = model_cli(&config, &model_dir, &[]).output().unwrap();
    assert!(
        !out.status.success(),
        "the published model fits the default towers"
    );
    let out = model_cli(&config, &model_dir, &changed).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains(&format!("retired version {retired}")),
        "{said}"
    );

    // The trainer starts a new lineage, above the retired version, and serves it.
    runtime.block_on(common::produce(&config.kafka.brokers, second));
    runtime.block_on(common::wait_until(
        "the new lineage published",
        Duration::from_secs(180),
        || {
            let (version, model) = published();
            std::future::ready(model && version > retired)
        },
    ));
    runtime.block_on(common::wait_until(
        "the refusal cleared",
        Duration::from_secs(60),
        || {
            let refused = metrics(addr).and_then(|m| sample(&m, "learn_model_refused_version"));
            std::future::ready(refused == Some(0.0))
        },
    ));
    stop(new);
}
