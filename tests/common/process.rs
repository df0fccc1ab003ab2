//! Helpers for tests that start the real `learn` binary: its `/metrics`, its refusals, a topic's
//! records read whole, and a workload as messages.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use learn_stream::config::Config;
use learn_stream::workload::{synthetic_stream, SyntheticOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// `GET /metrics` of the process serving on `addr`, if it answers.
pub fn metrics(addr: &str) -> Option<String> {
    ureq::get(format!("http://{addr}/metrics"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()
}

/// The value of the series `name{labels}` exactly as exposed (`name` alone for no labels).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `command` to its end (at most a minute) and returns its stderr, asserting it failed.
pub fn refused(command: &mut Command) -> String {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn learn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("still running after a minute: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    assert!(!output.status.success(), "it should have refused to start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A record as read back: its partition, key, and payload (None: a tombstone).
pub type Read = (i32, Option<String>, Option<Vec<u8>>);

/// Every record of `topic` (all `partitions`, up to their high watermarks), in offset order.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", super::unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        // A new client may not be connected yet: asked again.
        let high = (0..20)
            .find_map(|_| {
                let asked = consumer.fetch_watermarks(topic, p, Duration::from_secs(5));
                asked
                    .inspect_err(|_| std::thread::sleep(Duration::from_millis(200)))
                    .ok()
            })
            .expect("watermarks")
            .1;
        ends.push(high);
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let (mut out, mut next) = (Vec::new(), vec![0i64; partitions as usize]);
    let started = Instant::now();
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reading {topic}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("message");
        let key = message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        out.push((
            message.partition(),
            key,
            message.payload().map(<[u8]>::to_vec),
        ));
        next[message.partition() as usize] = message.offset() + 1;
    }
    out
}

/// The synthetic workload as `(topic, key, payload)` messages on `config`'s input topics.
pub fn workload(config: &Config, options: &SyntheticOptions) -> Vec<(String, String, Vec<u8>)> {
    synthetic_stream(options)
        .into_iter()
        .map(|m| {
            let topic = m.topic().name(&config.kafka).to_string();
            (topic, m.key().to_string(), m.payload())
        })
        .collect()
}
