//! A bad configuration fails at start-up and the message names the key.

use std::process::Command;

use learn_stream::config::Config;

fn load_toml(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path))
        .expect_err("config must be rejected")
        .to_string()
}

#[test]
fn unknown_key_is_named() {
    let msg = load_toml("[kafka]\nbrokerz = \"x:9092\"\n");
    assert!(msg.contains("brokerz"), "{msg}");
}

#[test]
fn wrong_type_names_the_key() {
    let msg = load_toml("[history]\ncap = \"lots\"\n");
    assert!(msg.contains("history.cap"), "{msg}");
}

#[test]
fn invalid_values_name_the_key() {
    assert!(load_toml("[ingest]\nmax_batch = 0\n").contains("ingest.max_batch"));
    assert!(
        load_toml("[kafka]\nauto_offset_reset = \"middle\"\n").contains("kafka.auto_offset_reset")
    );
    assert!(load_toml("[redis]\nurl = \"localhost:6379\"\n").contains("redis.url"));
    assert!(load_toml("[sasrec]\nheads = 3\n").contains("sasrec.heads"));
    assert!(load_toml("[sasrec]\ninit_std = 0.0\n").contains("sasrec.init_std"));
    assert!(load_toml("[towers]\noutput_head = false\nout_dim = 32\n").contains("towers.out_dim"));
}

#[test]
fn a_cluster_config_is_checked_seed_by_seed_and_its_prefix_has_no_hash_tag() {
    let cluster = "[redis]\ncluster = true\n";
    assert!(load_toml(&format!(
        "{cluster}url = \"redis://127.0.0.1:7001, 127.0.0.1:7002\"\n"
    ))
    .contains("redis.url"));
    assert!(load_toml(&format!(
        "{cluster}url = \"redis://127.0.0.1:7001\"\nkey_prefix = \"{{learn}}:\"\n"
    ))
    .contains("redis.key_prefix"));
}

#[test]
fn missing_file_is_reported() {
    let msg = Config::load(Some(std::path::Path::new("/nonexistent/learn.toml")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/nonexistent/learn.toml"), "{msg}");
}

#[test]
fn defaults_load_and_a_file_overrides_them() {
    let defaults = Config::load(None).unwrap();
    assert_eq!(defaults.history.cap, 800);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, "[history]\ncap = 50\n").unwrap();
    let config = Config::load(Some(&path)).unwrap();
    assert_eq!(
        (config.history.cap, config.kafka.brokers.as_str()),
        (50, "127.0.0.1:9092")
    );
}

/// The binary applies env overrides and fails fast, naming the key, before touching any service.
#[test]
fn bad_env_override_fails_the_binary_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_learn"))
        .args(["embed", "--text", "hello"])
        .env("LEARN__HISTORY__CAP", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // figment names env keys as written, upper case: `HISTORY.CAP` in `LEARN__` environment variable(s).
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("history.cap") && stderr.contains("learn__"),
        "{stderr}"
    );
}

#[test]
fn missing_model_directory_says_how_to_get_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_learn"))
        .args([
            "embed",
            "--model-dir",
            "/nonexistent/model",
            "--text",
            "hello",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/fetch-model.sh"), "{stderr}");
}

#[test]
fn credentials_never_reach_messages() {
    use learn_stream::config::redacted_url;
    assert_eq!(
        redacted_url("redis://:s3cret@cache:6379/0"),
        "redis://***@cache:6379/0"
    );
    assert_eq!(redacted_url("rediss://app:pw@h/1"), "rediss://***@h/1");
    assert_eq!(redacted_url("redis://cache:6379/"), "redis://cache:6379/");
    assert_eq!(redacted_url("redis://cache/a@b"), "redis://cache/a@b");
    let err = load_toml("[redis]\nurl = \"http://user:hunter2@cache\"\n");
    assert!(
        err.contains("redis.url") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn the_pass_through_cannot_undo_the_delivery_guarantees() {
    let msg = load_toml("[kafka.librdkafka]\n\"enable.auto.offset.store\" = \"true\"\n");
    assert!(
        msg.contains("kafka.librdkafka") && msg.contains("enable.auto.offset.store"),
        "{msg}"
    );
}
