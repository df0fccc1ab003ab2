//! `learn demo` as a new user runs it (librdkafka's mock cluster and an in-process store: no
//! servers): the towers are first trained offline on the stream's first part and imported, the
//! stream settles, the walkthrough tells the cold-start story from real state, and
//! with `--serve` the HTTP API stays up for the printed curl lines until Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo(model_dir: &std::path::Path, addr: &str, serve: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_learn"));
    command
        .args([
            "demo",
            "--items",
            "60",
            "--users",
            "30",
            "--actions",
            "3000",
            "--model-dir",
        ])
        .arg(model_dir)
        .env("LEARN__SERVING__ADDR", addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if serve {
        command.arg("--serve");
    }
    command
}

/// The demo process, killed if the test fails before it stops it (it serves until Ctrl-C).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_walkthrough_tells_the_cold_start_story_and_the_api_stays_up() {
    let Some(model_dir) = common::model_dir() else {
        return;
    };
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut child = Running(demo(&model_dir, &addr, true).spawn().expect("learn demo"));
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let started = Instant::now();
    while !text.contains("/openapi.json") {
        assert!(started.elapsed() < Duration::from_secs(240), "{text}");
        let line = lines.next().expect("output").unwrap();
        text.push_str(&line);
        text.push('\n');
    }
    for part in [
        "events in:",
        "full log (each dead letter's reason)",
        "0. Before the stream",
        "trained offline on its history",
        "imported as version 1",
        "1. ",
        "top 5 now",
        "2. A creator uploads",
        "3. ",
        "4. ",
        "curl -s",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    let latency: u64 = text
        .split("recommendable ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no latency in:\n{text}"));
    assert!(
        latency < 5_000,
        "the new upload took {latency} ms to become recommendable"
    );

    // The printed curl lines work while the demo keeps serving.
    let body = ureq::get(format!("http://{addr}/v1/recommend?user_id=u1&k=5"))
        .call()
        .expect("the API stays up")
        .body_mut()
        .read_to_string()
        .unwrap();
    let rec: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rec["items"].as_array().map(Vec::len), Some(5), "{body}");
    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        child.0.wait().unwrap().success(),
        "Ctrl-C ends the demo cleanly"
    );
}
