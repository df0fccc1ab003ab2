//! `learn bench-ingest`: the service's own ingest cost, isolated from the broker. Pre-loads a
//! topic with N actions (librdkafka's mock cluster, served from this process, or a real broker),
//! then measures in one run, side by side: a bare librdkafka consumer reading the topic, a
//! `learn serve` child process (follower: ingest only) applying it into Redis through the
//! idempotent path (rate from its `/v1/status`, CPU from `/proc`), the histories checked exactly,
//! and `redis-benchmark`'s pipelined LPUSH on the same Redis.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use learn_stream::config::Config;
use learn_stream::demo::MockBroker;
use learn_stream::schemas::{Action, UserAction};
use learn_stream::service::Status;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

mod redis_checks;

#[derive(Args)]
pub struct IngestArgs {
    /// Actions pre-loaded on the topic.
    #[arg(long, default_value_t = 500_000)]
    pub actions: usize,
    /// Distinct users (actions are spread evenly; keyed by user).
    #[arg(long, default_value_t = 20_000)]
    pub users: usize,
    /// Distinct items the actions draw from (11-character ids).
    #[arg(long, default_value_t = 1_000_000)]
    pub items: usize,
    /// Partitions of the topic (default: 3 on a real broker; on the mock cluster, which keeps
    /// only ~5 MB per partition, one per 30,000 actions).
    #[arg(long)]
    pub partitions: Option<i32>,
    /// A real broker (kafka.brokers) instead of the in-process mock cluster.
    #[arg(long)]
    pub real_broker: bool,
}

pub fn bench_ingest(config: Config, args: IngestArgs) -> Result<()> {
    let partitions = args.partitions.unwrap_or(if args.real_broker {
        3
    } else {
        args.actions.div_ceil(MOCK_ACTIONS_PER_PARTITION) as i32
    });
    let tag = format!("bench-ingest-{}", std::process::id());
    let topics: Vec<String> = [
        "actions",
        "items",
        "dead-letter",
        "item-embeddings",
        "item-catalogue",
        "user-embeddings",
    ]
    .iter()
    .map(|t| format!("{tag}-{t}"))
    .collect();
    let mock = (!args.real_broker)
        .then(|| MockBroker::start(&topics, partitions))
        .transpose()?;
    let brokers = match &mock {
        Some(mock) => mock.bootstrap_servers().to_string(),
        None => config.kafka.brokers.clone(),
    };
    let mut kafka = config.kafka.clone();
    kafka.brokers = brokers.clone();
    if mock.is_none() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        tokio::runtime::Runtime::new()?.block_on(learn_stream::kafka::create_topics(
            &kafka, &names, partitions,
        ))?;
    }
    let broker = if mock.is_some() {
        "librdkafka mock cluster (in this process)"
    } else {
        brokers.as_str()
    };
    println!(
        "broker: {broker}; redis: {}; {} actions, {} users, {} partitions",
        config.redis.url, args.actions, args.users, partitions
    );

    let started = Instant::now();
    preload(&kafka, &topics[0], &args)?;
    println!("pre-loaded in {:.1} s", started.elapsed().as_secs_f64());

    let bare = bare_consumer(&kafka, &topics[0], args.actions)?;
    println!("bare librdkafka consumer: {bare:.0} msg/s");

    let service = run_service(&config, &brokers, &tag, &topics, args.actions)?;
    println!(
        "learn serve (ingest only): {:.0} actions/s, {:.2} CPU-s per 100k actions ({:.1} s, {:.1} CPU-s); Redis {:.2} CPU-s per 100k",
        service.rate, service.cpu_per_100k, service.seconds, service.cpu_seconds, service.redis_cpu_per_100k
    );
    redis_checks::check_histories(&config.redis, &tag, &config, &args)?;
    let lpush = redis_checks::redis_benchmark(&config.redis.url)?;
    println!("redis-benchmark LPUSH -P 16: {lpush:.0} requests/s");
    println!(
        "ratios: service / bare consumer = {:.2}, service / redis-benchmark LPUSH = {:.3}",
        service.rate / bare,
        service.rate / lpush
    );
    Ok(())
}

/// librdkafka's mock cluster drops a partition's oldest messages beyond ~5 MB (~35,000 actions).
const MOCK_ACTIONS_PER_PARTITION: usize = 30_000;

fn action(n: usize, users: usize, items: usize) -> (String, Vec<u8>) {
    let user = format!("u{:06}", n % users);
    let event = UserAction {
        event_id: format!("e{n:09}"),
        user_id: user.clone(),
        item_id: format!("i{:010}", (n * 7919) % items.max(1)),
        action: Action::View,
        ts_ms: 1_700_000_000_000 + n as i64,
        watch_ms: None,
    };
    (
        user,
        serde_json::to_vec(&event).expect("an action serialises"),
    )
}

fn preload(
    kafka: &learn_stream::config::KafkaConfig,
    topic: &str,
    args: &IngestArgs,
) -> Result<()> {
    let producer: BaseProducer = learn_stream::kafka::client_config(
        kafka,
        &[
            ("linger.ms", "50".into()),
            ("batch.num.messages", "10000".into()),
            ("queue.buffering.max.messages", "1000000".into()),
        ],
    )
    .create()?;
    for n in 0..args.actions {
        let (key, payload) = action(n, args.users, args.items);
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// Messages per second of a bare consumer (the service's consumer settings, no processing),
/// from its first message to its last.
fn bare_consumer(
    kafka: &learn_stream::config::KafkaConfig,
    topic: &str,
    total: usize,
) -> Result<f64> {
    let consumer: BaseConsumer =
        learn_stream::kafka::consumer_config(kafka, &format!("{topic}-bare")).create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let (mut count, mut first) = (0usize, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while count < total {
        if Instant::now() > deadline {
            bail!("bare consumer read {count} of {total} in 300 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
            first.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    let seconds = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    Ok((total - 1) as f64 / seconds.max(1e-9))
}

struct ServiceRun {
    rate: f64,
    seconds: f64,
    cpu_seconds: f64,
    cpu_per_100k: f64,
    /// Redis's own CPU (`INFO cpu`) over the same window, per 100k actions.
    redis_cpu_per_100k: f64,
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_service(
    config: &Config,
    brokers: &str,
    tag: &str,
    topics: &[String],
    total: usize,
) -> Result<ServiceRun> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(tag);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("config.toml");
    let mut file = std::fs::File::create(&path)?;
    write!(
        file,
        "[kafka]\nbrokers = {brokers:?}\ngroup_id = {tag:?}\nactions_topic = {:?}\nitems_topic = {:?}\n\
         dead_letter_topic = {:?}\nitem_embeddings_topic = {:?}\ncatalogue_topic = {:?}\n\
         user_embeddings_topic = {:?}\ncreate_topics = false\nrequire_compacted_catalogue = false\n[redis]\nkey_prefix = \"{tag}:\"\n[online]\nrole = \"follower\"\n\
         checkpoint_dir = {:?}\n[serving]\naddr = \"127.0.0.1:{port}\"\n",
        topics[0], topics[1], topics[2], topics[3], topics[4], topics[5], dir.join("checkpoints"),
    )?;
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let child = Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env("LEARN__REDIS__URL", &config.redis.url)
        .env("LEARN__KAFKA__BROKERS", brokers) // over an inherited override
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start learn serve")?;
    let serving = Serving(child);
    let pid = serving.0.id();
    let status = |port: u16| -> Option<Status> {
        ureq::get(&format!("http://127.0.0.1:{port}/v1/status"))
            .call()
            .ok()?
            .into_body()
            .read_json()
            .ok()
    };
    let redis_cpu = || redis_checks::redis_cpu_seconds(&config.redis.url);
    let mut first: Option<(Instant, u64, f64, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if Instant::now() > deadline {
            bail!(
                "learn serve did not apply {total} actions in 600 s (log: {})",
                dir.display()
            );
        }
        if let Some(s) = status(port) {
            if s.actions_applied > 0 && first.is_none() {
                first = Some((
                    Instant::now(),
                    s.actions_applied,
                    cpu_seconds(pid)?,
                    redis_cpu()?,
                ));
            }
            if s.actions_applied as usize >= total {
                let (t0, applied0, cpu0, redis0) = first.expect("set above");
                let seconds = t0.elapsed().as_secs_f64();
                let cpu = cpu_seconds(pid)? - cpu0;
                let redis = redis_cpu()? - redis0;
                let applied = (total as u64 - applied0) as f64;
                return Ok(ServiceRun {
                    rate: applied / seconds.max(1e-9),
                    seconds,
                    cpu_seconds: cpu,
                    cpu_per_100k: cpu / applied * 100_000.0,
                    redis_cpu_per_100k: redis / applied * 100_000.0,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// User + system CPU seconds of process `pid` (Linux `/proc`).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc stat")?
        .1
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}
