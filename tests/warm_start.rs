//! Warm start: a `learn train` run becomes version 1 of a new online lineage.
//! - In the library: a run that fits imports with its weights and whitening and no optimizer
//!   moments; every setting the serving check reads (a `[towers]` key, the encoder's id, its
//!   prefix, the content width, ID offsets) refuses it, naming the setting.
//! - On the real processes (tansu + redis-server + MiniLM): `learn train` on a small dataset,
//!   `learn checkpoint import` refused under another `[towers]` and accepted under the run's, a
//!   `learn serve` trainer that restores and publishes version 1, a follower (no warm start of
//!   its own) that restores it from the store, and `online.warm_start` pointing at a run that does
//!   not fit failing the start with the setting's name.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use learn_stream::config::Config;
use learn_stream::experiment::warm_start::{import, Target, WarmStartError};
use learn_stream::experiment::{save_checkpoint, CheckpointMeta, ModelKind};
use learn_stream::towers::{Tower, TowerInput, TowerSpec};
use learn_stream::train::online::OnlineTrainer;
use learn_stream::train::TrainReport;

const DIM: usize = 24;

/// An offline run as `learn train` writes it (weights + meta), over a random 40-item content
/// table; returns its weights sorted by name.
fn offline_run(
    dir: &Path,
    towers: &TowerSpec,
    encoder: &str,
    prefix: &str,
) -> Vec<(String, Tensor)> {
    let config = Config::load(None).unwrap();
    let table = Tensor::randn(0f32, 1.0, (40, DIM), &Device::Cpu).unwrap();
    let varmap = VarMap::new();
    let input = TowerInput::Content {
        table,
        trained: vec![true; 40],
    };
    Tower::new(towers, input, &varmap, 7, &Device::Cpu).unwrap();
    let meta = CheckpointMeta {
        model: ModelKind::Learn,
        dataset: "synthetic".into(),
        encoder_model: Some(encoder.into()),
        encoder_prefix: Some(prefix.into()),
        towers: towers.clone(),
        training: config.training.clone(),
        cold_fraction: 0.0,
        report: TrainReport {
            curve: Vec::new(),
            best_epoch: 0,
            steps: 0,
            seconds: 0.0,
        },
    };
    save_checkpoint(dir, &varmap, &meta).unwrap();
    let mut weights: Vec<(String, Tensor)> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().copy().unwrap()))
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

fn target<'a>(towers: &'a TowerSpec, model_id: &'a str, prefix: &'a str, dim: usize) -> Target<'a> {
    Target {
        towers,
        model_id,
        prefix,
        content_dim: dim,
    }
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    let diff = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
    diff.max(0).unwrap().to_scalar::<f32>().unwrap() == 0.0
}

#[test]
fn an_offline_run_becomes_version_one_with_its_weights_and_whitening() {
    let config = Config::load(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = offline_run(dir.path(), &config.towers, "enc", "");
    let checkpoint = import(dir.path(), &target(&config.towers, "enc", "", DIM), "h").unwrap();
    assert_eq!(checkpoint.manifest.version, 1);
    assert_eq!(checkpoint.manifest.content_dim, DIM);
    assert_eq!(checkpoint.manifest.model_id, "enc");
    assert!(
        checkpoint.optimizer.is_none(),
        "AdamW's moments start fresh"
    );
    assert_eq!(checkpoint.weights.len(), saved.len());
    for ((name, weight), (saved_name, saved_weight)) in checkpoint.weights.iter().zip(&saved) {
        assert_eq!(name, saved_name);
        assert!(same(weight, saved_weight), "{name} imported as trained");
    }
    let fitted = saved.iter().find(|(n, _)| n == "whiten.items").unwrap();
    assert_eq!(fitted.1.to_vec1::<f32>().unwrap(), [40.0], "fitted offline");
    // The online trainer restores it: same names, same order; it keeps the offline whitening.
    let mut trainer = OnlineTrainer::new(&config.towers, DIM, &config.training, 5).unwrap();
    trainer.restore(&checkpoint).unwrap();
    assert_eq!(trainer.steps(), 0);
    for ((name, restored), (_, saved)) in trainer.weights().unwrap().iter().zip(&saved) {
        assert!(same(restored, saved), "{name} restored");
    }
}

#[test]
fn a_run_that_does_not_fit_is_refused_naming_the_setting() {
    let config = Config::load(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    offline_run(dir.path(), &config.towers, "enc", "query: ");
    let refused = |target: Target| match import(dir.path(), &target, "h") {
        Err(WarmStartError::Mismatch { key, .. }) => key,
        other => panic!("expected a mismatch, got {:?}", other.map(|c| c.manifest)),
    };
    let wider = TowerSpec {
        d_model: config.towers.d_model * 2,
        ..config.towers.clone()
    };
    assert_eq!(
        refused(target(&wider, "enc", "query: ", DIM)),
        "towers.d_model"
    );
    let unwhitened = TowerSpec {
        whiten: false,
        ..config.towers.clone()
    };
    assert_eq!(
        refused(target(&unwhitened, "enc", "query: ", DIM)),
        "towers.whiten"
    );
    let towers = &config.towers;
    assert_eq!(
        refused(target(towers, "other", "query: ", DIM)),
        "encoder.model_id"
    );
    assert_eq!(refused(target(towers, "enc", "", DIM)), "encoder.prefix");
    assert_eq!(
        refused(target(towers, "enc", "query: ", 384)),
        "content dimension"
    );
    let message = import(dir.path(), &target(&wider, "enc", "query: ", DIM), "h")
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("the offline run has {}", config.towers.d_model))
            && message.contains("train again"),
        "{message}"
    );
    // ID offsets index the offline dataset's items: never importable.
    let ids = TowerSpec {
        item_ids: true,
        ..config.towers.clone()
    };
    let id_run = tempfile::tempdir().unwrap();
    offline_run(id_run.path(), &ids, "enc", "");
    let err = import(id_run.path(), &target(&ids, "enc", "", DIM), "h").map(drop);
    assert!(
        matches!(err, Err(WarmStartError::Mismatch { ref key, .. }) if key == "towers.item_ids"),
        "{err:?}"
    );
    // Not a run at all.
    let empty = tempfile::tempdir().unwrap();
    let err = import(empty.path(), &target(towers, "enc", "", DIM), "h").map(drop);
    assert!(matches!(err, Err(WarmStartError::Read { .. })), "{err:?}");
}

fn learn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_learn"))
}

/// A small dataset in the canonical format: users who each watch one topic's items.
fn write_dataset(dir: &Path) {
    let topics = ["kitten", "piano", "rocket", "sourdough"];
    let mut items = String::new();
    for (t, topic) in topics.iter().enumerate() {
        for i in 0..6 {
            items += &format!("{{\"item_id\":\"{t}-{i}\",\"text\":\"{topic} video part {i}\"}}\n");
        }
    }
    let mut interactions = String::from("user,item,timestamp\n");
    for user in 0..24 {
        for step in 0..8 {
            let item = (user * 5 + step * 7) % 6;
            interactions += &format!("u{user},{}-{item},{}\n", user % 4, 1000 + user * 100 + step);
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("items.jsonl"), items).unwrap();
    std::fs::write(dir.join("interactions.csv"), interactions).unwrap();
}

fn wait_for_version(addr: &str, child: &mut std::process::Child, version: u64) {
    let started = Instant::now();
    loop {
        if common::status(addr).is_some_and(|s| s.model_version >= version) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "{addr} exited");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{addr} never served version {version}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learn_train_imports_serves_as_version_one_and_followers_restore_it() {
    let (Some(brokers), Some(redis_url), Some(model_dir)) =
        (common::kafka(), common::redis(), common::model_dir())
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (data, run) = (work.path().join("data"), work.path().join("run"));
    write_dataset(&data);
    let trained = learn()
        .args(["train", "--dataset"])
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .args(["--epochs", "2"])
        .env("LEARN__ENCODER__MODEL_DIR", &model_dir)
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .status()
        .unwrap();
    assert!(trained.success(), "learn train");

    let config = common::config(&brokers, &redis_url, &model_dir);
    learn_stream::kafka::create_topics(&config.kafka, &common::topics(&config), 2)
        .await
        .unwrap();
    // Under another [towers] the import is refused, naming the key; nothing is written.
    let leader_dir = config.online.checkpoint_dir.join("leader");
    let import = |env: &[(&str, &str)]| {
        let mut command = learn();
        command
            .args(["checkpoint", "import"])
            .arg(&run)
            .arg("--dir")
            .arg(&leader_dir)
            .env("LEARN__ENCODER__MODEL_DIR", &model_dir)
            .envs(env.iter().copied());
        command.output().unwrap()
    };
    let refused = import(&[("LEARN__TOWERS__LAYERS", "3")]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("towers.layers"),
        "{stderr}"
    );
    assert!(!leader_dir.exists());
    let imported = import(&[]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(leader_dir.join("v00000001/manifest.json").is_file());
    assert!(!import(&[]).status.success(), "a lineage is imported once");

    // The trainer restores it and publishes it; a follower with no warm start of its own
    // restores version 1 from the store.
    let spawn = |name: &str, role: &str, extra: &[(&str, &Path)], stderr: Stdio| {
        let addr = common::free_addr();
        let mut command = common::serve_command(&config, &model_dir);
        command
            .env("LEARN__SERVING__ADDR", &addr)
            .env("LEARN__ONLINE__ROLE", role)
            .env("LEARN__ONLINE__MODEL_POLL_MS", "200")
            .env(
                "LEARN__ONLINE__CHECKPOINT_DIR",
                config.online.checkpoint_dir.join(name),
            )
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in extra {
            command.env(key, value);
        }
        (command.spawn().expect("spawn learn serve"), addr)
    };
    let (mut leader, leader_addr) = spawn("leader", "trainer", &[], Stdio::inherit());
    wait_for_version(&leader_addr, &mut leader, 1);
    let (mut follower, follower_addr) = spawn("follower", "follower", &[], Stdio::inherit());
    wait_for_version(&follower_addr, &mut follower, 1);
    assert_eq!(common::status(&follower_addr).unwrap().model_version, 1);
    // online.warm_start under a config it does not fit: the start fails naming the key.
    let (mut misfit, _) = spawn(
        "misfit",
        "auto",
        &[
            ("LEARN__ONLINE__WARM_START", run.as_path()),
            ("LEARN__TOWERS__HEADS", Path::new("2")),
        ],
        Stdio::piped(),
    );
    let started = Instant::now();
    let exited = loop {
        if let Some(status) = misfit.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            misfit.kill().unwrap();
            panic!("learn serve started with a warm start that does not fit");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(misfit.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        !exited.success() && stderr.contains("towers.heads"),
        "{stderr}"
    );
    for mut child in [leader, follower] {
        common::signal(&child, "-TERM");
        child.wait().unwrap();
    }
}
