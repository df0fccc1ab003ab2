//! Owns `learn demo`: the whole service in one process with no servers. librdkafka's mock cluster
//! is the broker ([`mock`]), a [`MemoryStore`] stands in for Redis, and the stream is a
//! [`crate::workload`] (synthetic, or a MovieLens 100K replay). Once the stream has settled,
//! [`story`] walks through what LEARN does from the service's real state; with `serve` the HTTP
//! API stays up until Ctrl-C.

mod mock;
mod offline;
mod story;

pub use mock::MockBroker;
pub use offline::OfflinePass;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::Config;
use crate::encode::ContentEncoder;
use crate::metrics::{Snapshot, Stats};
use crate::service::Shared;
use crate::shutdown::ShutdownTrigger;
use crate::store::{HistoryPolicy, MemoryStore, Store};
use crate::workload::{Outgoing, Topic};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("mock cluster: {0}")]
    Mock(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("service: {0}")]
    Service(#[from] crate::service::ServiceError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("workload: {0}")]
    Workload(#[from] crate::workload::WorkloadError),
    #[error("offline pass: {0}")]
    Offline(String),
    #[error("walkthrough: {0}")]
    Walkthrough(String),
    #[error("the pipeline settled only {settled} of {total} events within {timeout:?}")]
    Stalled {
        settled: u64,
        total: u64,
        timeout: Duration,
    },
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoSummary {
    pub produced_actions: u64,
    pub produced_uploads: u64,
    pub stats: Snapshot,
    pub users_with_history: usize,
    pub elapsed: Duration,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let total = self.produced_actions + self.produced_uploads;
        writeln!(
            f,
            "events in:         {total} ({} actions, {} uploads)",
            self.produced_actions, self.produced_uploads
        )?;
        writeln!(
            f,
            "actions applied:   {} ({} replays skipped)",
            self.stats.actions_applied, self.stats.actions_replayed
        )?;
        writeln!(f, "items embedded:    {}", self.stats.items_embedded)?;
        writeln!(
            f,
            "towers trained:    {} steps, last loss {}",
            self.stats.train_steps,
            self.stats
                .train_loss
                .map_or("-".to_string(), |l| format!("{l:.3}"))
        )?;
        writeln!(f, "user histories:    {}", self.users_with_history)?;
        writeln!(
            f,
            "dead letters:      {} {:?}",
            self.stats.dead_letter_total(),
            self.stats.dead_letters
        )?;
        writeln!(f, "elapsed:           {secs:.2} s")?;
        writeln!(
            f,
            "throughput:        {:.0} events/s overall",
            total as f64 / secs
        )?;
        write!(
            f,
            "embedding rate:    {:.1} items/s",
            self.stats.items_embedded as f64 / secs
        )
    }
}

/// Produces `stream` into a fresh mock cluster and runs the service over it until every event is
/// settled (written, or dead-lettered), then shuts down gracefully.
fn tempfile_dir() -> Result<std::path::PathBuf, DemoError> {
    let dir = std::env::temp_dir().join(format!("learn-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| DemoError::Mock(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// What the demo does after the stream settles.
pub struct DemoOptions {
    /// Print the walkthrough.
    pub walkthrough: bool,
    /// Keep the HTTP API up on `serving.addr` until Ctrl-C.
    pub serve: bool,
    /// First train the towers offline on the stream's first part and warm-start from them.
    pub offline: bool,
}

pub async fn run(
    mut config: Config,
    stream: Vec<Outgoing>,
    encoder: Arc<ContentEncoder>,
    options: DemoOptions,
    on_offline: impl FnOnce(&OfflinePass),
    report: impl FnOnce(&DemoSummary, Option<&str>),
) -> Result<DemoSummary, DemoError> {
    let broker = MockBroker::start(&topics(&config), 3)?;
    let checkpoints = tempfile_dir()?;
    local(&mut config, &broker, &checkpoints, options.serve);
    let offline = if options.offline {
        let pass = offline::train(&mut config, &stream, encoder.clone(), &checkpoints).await?;
        on_offline(&pass);
        Some(pass)
    } else {
        None
    };
    let store = MemoryStore::new(HistoryPolicy::from(&config.history));
    let stats = Arc::new(Stats::default());
    let shutdown = ShutdownTrigger::default();
    let shared = Arc::new(Shared::new(
        config.clone(),
        store.clone(),
        encoder,
        stats.clone(),
    )?);
    let service = tokio::spawn({
        let (shutdown, shared) = (shutdown.clone(), shared.clone());
        async move { crate::service::run(shared, &shutdown).await }
    });

    let total = stream.len() as u64;
    let produced_actions = stream
        .iter()
        .filter(|o| o.topic() == Topic::Actions)
        .count() as u64;
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} events settled ({per_sec})",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    produce(&config, &stream).await?;
    if let Err(stalled) = settle(&stats, total, &progress, &service).await {
        shutdown.trigger();
        service
            .await
            .map_err(|e| DemoError::Mock(e.to_string()))??;
        return Err(stalled);
    }
    let elapsed = started.elapsed();
    progress.finish();
    let summary = DemoSummary {
        produced_actions,
        produced_uploads: total - produced_actions,
        stats: stats.snapshot(),
        users_with_history: store.user_count().await?,
        elapsed,
    };
    let walkthrough = if options.walkthrough {
        Some(walkthrough(&shared, &stream, offline).await?)
    } else {
        None
    };
    report(&summary, walkthrough.as_deref());
    if options.serve {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.trigger();
    service
        .await
        .map_err(|e| DemoError::Mock(e.to_string()))??;
    let _ = std::fs::remove_dir_all(&checkpoints);
    Ok(summary)
}

/// Every topic the service reads or writes (the mock cluster has no admin API: made up front).
fn topics(config: &Config) -> [String; 6] {
    config.kafka.topics().map(str::to_string)
}

/// `config` for one process with no servers: the mock cluster's brokers (topics made by it: it has
/// no admin API), checkpoints under the work directory `work`, HTTP on a free port unless it `serve`s.
fn local(config: &mut Config, broker: &MockBroker, work: &Path, serve: bool) {
    config.kafka.brokers = broker.bootstrap_servers().to_string();
    config.kafka.create_topics = false;
    // The mock cluster keeps every record and cannot describe topic settings.
    config.kafka.require_compacted_catalogue = false;
    config.online.checkpoint_dir = work.join("checkpoints");
    if !serve {
        config.serving.addr = "127.0.0.1:0".into();
    }
}

/// Waits until all `total` events are settled (applied, embedded or dead-lettered), or fails
/// when the service stopped or ten minutes passed.
async fn settle(
    stats: &Stats,
    total: u64,
    progress: &ProgressBar,
    service: &tokio::task::JoinHandle<Result<(), crate::service::ServiceError>>,
) -> Result<(), DemoError> {
    let (started, timeout) = (Instant::now(), Duration::from_secs(600));
    loop {
        let settled = stats.snapshot().settled();
        progress.set_position(settled);
        if settled >= total {
            return Ok(());
        }
        if started.elapsed() > timeout || service.is_finished() {
            return Err(DemoError::Stalled {
                settled,
                total,
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The walkthrough over the settled service: its users and uploads from `stream`.
async fn walkthrough(
    shared: &Arc<Shared<MemoryStore>>,
    stream: &[Outgoing],
    offline: Option<OfflinePass>,
) -> Result<String, DemoError> {
    let story = story::Story {
        shared,
        offline,
        uploads: uploads(stream),
        users: users(stream),
        producer: crate::kafka::producer(&shared.config.kafka)?,
    };
    story.tell().await
}

/// Item id → upload, from the stream's uploads.
fn uploads(stream: &[Outgoing]) -> std::collections::HashMap<String, crate::schemas::ItemUpload> {
    stream
        .iter()
        .filter_map(|o| match o {
            Outgoing::Upload(upload) => Some((upload.item_id.clone(), upload.clone())),
            _ => None,
        })
        .collect()
}

/// The stream's users (of its well-formed actions), in order of first appearance.
fn users(stream: &[Outgoing]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    stream
        .iter()
        .filter_map(|o| match o {
            Outgoing::Action(action) => Some(action.user_id.clone()),
            _ => None, // a malformed event's key is no user
        })
        .filter(|user| seen.insert(user.clone()))
        .collect()
}

async fn produce(config: &Config, stream: &[Outgoing]) -> Result<(), DemoError> {
    let producer = crate::kafka::producer(&config.kafka)?;
    for chunk in stream.chunks(10_000) {
        try_join_all(chunk.iter().map(|o| send(&producer, config, o))).await?;
    }
    Ok(())
}

/// Sends one message and waits for its acknowledgement.
async fn send(producer: &FutureProducer, config: &Config, o: &Outgoing) -> Result<(), DemoError> {
    let payload = o.payload();
    let record = FutureRecord::to(o.topic().name(&config.kafka))
        .key(o.key())
        .payload(&payload);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(drop)
        .map_err(|(e, _)| e.into())
}
