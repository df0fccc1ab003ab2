//! Owns the running service: the pipelines, the trainer and the HTTP API, started together and
//! stopped together (`tasks`: named tasks under one supervisor).
//!
//! ```text
//!   actions ─► source ─► ActionSink ─► Store: histories ─┐   (users with fresh actions)
//!   items ──► source ─► ItemSink ─► frozen encoder ─► catalogue ─► item tower (current version)
//!                 │                     └─► Store + item-embeddings (content and aligned)
//!   item-embeddings (every process's uploads, a changelog) ─► catalogue (new and edited items)
//!                 └─► dead-letter                                 │
//!   trainer (leader only) ◄───────────────────────────────────────┘ micro-batch AdamW steps
//!      └─► checkpoint ─► Store `model` ─► every process swaps to the new version
//!                    └─► re-publish aligned items and recently active users
//!   item counts (popularity prior) ◄──► Store `pop:*` (decayed, shared by every process)
//!   HTTP: /v1/recommend  /v1/status  /livez (/healthz)  /readyz  /metrics
//! ```

mod actions;
mod active;
mod auth;
mod changelog;
mod follower;
mod health;
mod http;
mod items;
pub mod lag;
mod popularity;
pub mod status;
mod tasks;
mod trainer;

pub use actions::ActionSink;
pub use active::ActiveUsers;
pub use http::{router, Status};
pub use items::ItemSink;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasks::Tasks;

use crate::config::{Config, Role};
use crate::encode::ContentEncoder;
use crate::metrics::{LagBoard, Stats};
use crate::publish::{DeadLetterProducer, EmbeddingPublisher};
use crate::schemas::{Decode, ItemEvent, Limits, UserAction};
use crate::serving::recommend::{Prior, Sources};
use crate::serving::{Catalogue, ItemCounts, Models, ServingModel};
use crate::shutdown::ShutdownTrigger;
use crate::source::{self, Sink, SourceError, SourceSettings, WatermarkReader};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{pipeline} pipeline: {source}")]
    Pipeline {
        pipeline: &'static str,
        source: SourceError,
    },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("trainer: {0}")]
    Trainer(#[from] trainer::TrainerError),
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0} task panicked")]
    Panicked(&'static str),
}

/// What the trainer reports for `/v1/status`.
#[derive(Debug, Default)]
pub struct TrainingState {
    /// This process trains (holds the leader lock, or `role = "trainer"`).
    pub leading: AtomicBool,
    /// When the last checkpoint was written (ms since the epoch; 0 = none yet).
    pub last_checkpoint_ms: AtomicI64,
    pub pending_users: AtomicUsize,
    /// Encoder calls in progress (the trainer waits for none before a step).
    pub embedding: AtomicUsize,
    /// When the newest action the trainer has trained on was ingested (ms since the epoch; set
    /// when this process starts leading, then by every step).
    pub trained_through_ms: AtomicI64,
}

impl TrainingState {
    /// The trainer's lag: while users wait for a step, how long ago the newest action it has
    /// trained on was ingested; 0 when nothing waits or this process does not train.
    pub fn lag_seconds(&self, pending_users: usize, now_ms: i64) -> f64 {
        let through = self.trained_through_ms.load(Ordering::Relaxed);
        if !self.leading.load(Ordering::Relaxed) || pending_users == 0 || through == 0 {
            return 0.0;
        }
        (now_ms - through).max(0) as f64 / 1000.0
    }
}

/// What `/readyz` waits for besides the store: the catalogue caught up with the changelog and the first look at the
/// published model (a process restarted into a running deployment must not answer with an empty
/// catalogue or the untrained towers).
#[derive(Default)]
pub struct Warmup {
    pub catalogue_synced: AtomicBool,
    /// The published model (if any) is served: the follower checked, or the trainer restored it.
    pub model_loaded: AtomicBool,
}

/// Everything the tasks and the HTTP handlers share.
pub struct Shared<S> {
    pub config: Config,
    pub store: S,
    pub encoder: Arc<ContentEncoder>,
    pub catalogue: Catalogue,
    pub models: Models,
    pub stats: Arc<Stats>,
    pub lag: Arc<LagBoard>,
    pub active: ActiveUsers,
    pub item_counts: ItemCounts,
    pub knobs: Arc<lag::Knobs>,
    pub training: TrainingState,
    pub warmup: Warmup,
    /// This process's name in the leader lock.
    pub instance: String,
    pub started: Instant,
}

impl<S: Store> Shared<S> {
    /// Builds the shared state; the serving model starts as the initial (untrained) towers and is
    /// replaced by the latest checkpoint as soon as the trainer or the follower finds one.
    pub fn new(
        config: Config,
        store: S,
        encoder: Arc<ContentEncoder>,
        stats: Arc<Stats>,
    ) -> Result<Self, ServiceError> {
        let models = trainer::initial_models(&config, encoder.dim(), encoder.model_id())?;
        Ok(Self {
            catalogue: Catalogue::new(encoder.dim()),
            models,
            active: ActiveUsers::new(config.online.pending_users, config.online.republish_users),
            item_counts: ItemCounts::default(),
            knobs: Arc::new(lag::Knobs::new(&config)),
            lag: Arc::default(),
            training: TrainingState::default(),
            warmup: Warmup::default(),
            instance: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "learn".into()),
                std::process::id()
            ),
            started: Instant::now(),
            config,
            store,
            encoder,
            stats,
        })
    }

    /// What recommendation reads, borrowed from the shared state, with this popularity weight.
    pub fn sources(&self, popularity_weight: f32) -> Sources<'_, S> {
        Sources {
            store: &self.store,
            catalogue: &self.catalogue,
            models: &self.models,
            prior: Some(Prior {
                counts: &self.item_counts,
                weight: popularity_weight,
                logit_scale: self.config.training.logit_scale as f32,
            }),
            history_cap: self.config.history.cap,
        }
    }

    /// Serves `model` from now on if it is newer than the current one, its aligned index built
    /// first on a blocking thread (never on the runtime, never by a request). True when swapped.
    pub async fn serve_model(self: &Arc<Self>, model: ServingModel) -> candle_core::Result<bool> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.models.swap(model, &shared.catalogue))
            .await
            .map_err(|e| candle_core::Error::Msg(format!("index build task: {e}")))?
    }
}

/// A [`WatermarkReader`] over the store's watermarks of `topic`.
fn watermark_reader<S: Store>(store: &S, topic: &str) -> WatermarkReader {
    let (store, topic) = (store.clone(), topic.to_string());
    Box::new(move || {
        store
            .watermarks_blocking(&topic)
            .map_err(|e: StoreError| e.to_string())
    })
}

/// How one input stream is consumed.
struct Stream<'a> {
    /// Names the consumer group (`<group_id>-<name>`) and the task.
    name: &'static str,
    topic: &'a str,
    /// Largest batch, possibly moved by lag control.
    max_batch: Arc<AtomicUsize>,
    max_wait_ms: u64,
}

/// A consumer task reading `stream` into `sink`.
fn spawn_source<T: Decode, K: Sink<T> + 'static, S>(
    tasks: &mut Tasks,
    shared: &Shared<S>,
    stream: Stream<'_>,
    sink: K,
    dead_letters: DeadLetterProducer,
    shutdown: &ShutdownTrigger,
) {
    let config = &shared.config;
    let settings = SourceSettings {
        topic: stream.topic.to_string(),
        group_id: format!("{}-{}", config.kafka.group_id, stream.name),
        max_batch: stream.max_batch,
        max_wait: Duration::from_millis(stream.max_wait_ms),
        limits: Limits {
            max_text_bytes: config.ingest.max_text_bytes,
        },
        lag: shared.lag.clone(),
    };
    let (kafka, stats, stop, name) = (
        config.kafka.clone(),
        shared.stats.clone(),
        shutdown.subscribe(),
        stream.name,
    );
    tasks.spawn(name, async move {
        source::run::<T, K>(&kafka, settings, sink, dead_letters, stats, stop)
            .await
            .map_err(|source| ServiceError::Pipeline {
                pipeline: name,
                source,
            })
    });
}

/// Runs the pipelines, the trainer/follower, lag control and the HTTP API until `shutdown` is
/// triggered (or one of them fails, which stops the others).
pub async fn run<S: Store>(
    shared: Arc<Shared<S>>,
    shutdown: &ShutdownTrigger,
) -> Result<(), ServiceError> {
    let config = shared.config.clone();
    crate::metrics::zero_counters(&[&config.kafka.actions_topic, &config.kafka.items_topic]);
    if config.kafka.create_topics {
        let k = &config.kafka;
        let topics = [
            &k.actions_topic,
            &k.items_topic,
            &k.dead_letter_topic,
            &k.item_embeddings_topic,
            &k.user_embeddings_topic,
        ];
        let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
        crate::kafka::create_topics(k, &topics, k.topic_partitions).await?;
    }
    let producer = crate::kafka::producer(&config.kafka)?;
    let dead_letters =
        DeadLetterProducer::new(producer.clone(), config.kafka.dead_letter_topic.clone());
    let items_out =
        EmbeddingPublisher::new(producer.clone(), config.kafka.item_embeddings_topic.clone());
    let users_out = EmbeddingPublisher::new(producer, config.kafka.user_embeddings_topic.clone());
    let listener = tokio::net::TcpListener::bind(&config.serving.addr)
        .await
        .map_err(|source| ServiceError::Http {
            addr: config.serving.addr.clone(),
            source,
        })?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "HTTP API listening");

    let mut tasks = Tasks::default();
    spawn_source::<UserAction, _, _>(
        &mut tasks,
        &shared,
        Stream {
            name: "actions",
            topic: &config.kafka.actions_topic,
            max_batch: Arc::new(AtomicUsize::new(config.ingest.max_batch)),
            max_wait_ms: config.ingest.max_wait_ms,
        },
        ActionSink::new(shared.clone()),
        dead_letters.clone(),
        shutdown,
    );
    spawn_source::<ItemEvent, _, _>(
        &mut tasks,
        &shared,
        Stream {
            name: "items",
            topic: &config.kafka.items_topic,
            max_batch: shared.knobs.embed_batch.clone(),
            max_wait_ms: config.encoder.max_wait_ms,
        },
        ItemSink::new(shared.clone(), items_out.clone()),
        dead_letters,
        shutdown,
    );
    if config.online.role != Role::Follower {
        let (shared, stop) = (shared.clone(), shutdown.subscribe());
        let publishers = trainer::Publishers {
            items: items_out,
            users: users_out,
        };
        let lease = Arc::new(trainer::Lease::new(
            config.online.role,
            config.online.leader_ttl_ms,
        ));
        {
            let (store, instance, lease, stop) = (
                shared.store.clone(),
                shared.instance.clone(),
                lease.clone(),
                shutdown.subscribe(),
            );
            tasks.spawn("leader lease", async move {
                trainer::renew_lease(store, instance, lease, stop).await;
                Ok(())
            });
        }
        tasks.spawn("trainer", async move {
            Ok(trainer::run(shared, lease, publishers, stop).await?)
        });
    }
    tasks.spawn("catalogue changelog", {
        let (shared, stop) = (shared.clone(), shutdown.subscribe());
        changelog::run(shared, stop)
    });
    tasks.spawn("popularity", {
        let (shared, stop) = (shared.clone(), shutdown.subscribe());
        async move {
            popularity::run(shared, stop).await;
            Ok(())
        }
    });
    tasks.spawn("follower", {
        let (shared, stop) = (shared.clone(), shutdown.subscribe());
        async move {
            follower::run(shared, stop).await;
            Ok(())
        }
    });
    if config.kafka.statistics_interval_ms > 0 {
        let policy = lag::LagPolicy::from_config(&config);
        let topics = (
            config.kafka.items_topic.clone(),
            config.kafka.actions_topic.clone(),
        );
        let (board, knobs, stop) = (
            shared.lag.clone(),
            shared.knobs.clone(),
            shutdown.subscribe(),
        );
        let interval = Duration::from_millis(config.kafka.statistics_interval_ms as u64);
        tasks.spawn("lag control", async move {
            lag::control(policy, topics, board, knobs, interval, stop).await;
            Ok(())
        });
    }
    tasks.spawn("http", {
        let (shared, mut stop) = (shared.clone(), shutdown.subscribe());
        async move {
            let addr = config.serving.addr.clone();
            axum::serve(listener, http::router(shared))
                .with_graceful_shutdown(async move { stop.recv().await })
                .await
                .map_err(|source| ServiceError::Http { addr, source })
        }
    });
    let outcome = tasks.supervise(shutdown).await;
    // The sources' final batches were counted after the popularity task stopped.
    popularity::share_last(&shared).await;
    outcome
}
