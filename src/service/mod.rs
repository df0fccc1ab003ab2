//! Owns the running service: the pipelines, the trainer and the HTTP API, started together and
//! stopped together (`tasks`: named tasks under one supervisor).
//!
//! ```text
//!   actions ─► source ─► ActionSink ─► Store: histories ─┐   (users with fresh actions)
//!   items ──► source ─► ItemSink ─► frozen encoder ─► catalogue ─► item tower (current version)
//!                 │                     └─► Store + item-catalogue (content) + item-embeddings (aligned)
//!   item-catalogue (every process's uploads, a compacted changelog) ─► catalogue (new and edited items)
//!                 └─► dead-letter                                 │
//!   trainer (leader only) ◄───────────────────────────────────────┘ micro-batch AdamW steps
//!      └─► checkpoint ─► Store `model` ─► every process swaps to the new version
//!                    └─► re-publish aligned items and recently active users
//!   item counts (popularity prior) ◄──► Store `pop:*` (decayed, shared by every process)
//!   HTTP: /v1/recommend  /v1/status  /livez (/healthz)  /readyz  /metrics
//! ```

mod actions;
mod active;
mod changelog;
mod follower;
mod http;
mod items;
pub mod lag;
mod live;
mod popularity;
mod preconditions;
mod reservoir;
mod shared;
mod signals;
pub mod status;
mod tasks;
mod trainer;

pub use actions::ActionSink;
pub use active::ActiveUsers;
pub use http::{router, JsonListener, Status};
pub use items::ItemSink;
pub use shared::{Shared, TrainingState, Warmup};
pub use trainer::{serving_model, warm_start, EncoderIdentity};

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use tasks::Tasks;

use crate::config::{KafkaConfig, Role};
use crate::metrics::{LagBoard, Stats};
use crate::publish::{DeadLetterProducer, EmbeddingPublisher, ItemPublisher};
use crate::schemas::{Decode, ItemEvent, Limits, UserAction};
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
    #[error("precondition: {0}")]
    Precondition(#[from] preconditions::Unmet),
    #[error("{0} task panicked")]
    Panicked(&'static str),
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

/// What every consumer task shares.
struct SourceHandles<'a> {
    kafka: &'a KafkaConfig,
    limits: Limits,
    lag: &'a Arc<LagBoard>,
    stats: &'a Arc<Stats>,
    dead_letters: &'a DeadLetterProducer,
    shutdown: &'a ShutdownTrigger,
}

/// A consumer task reading `stream` into `sink`.
fn spawn_source<T: Decode, K: Sink<T> + 'static>(
    tasks: &mut Tasks,
    handles: &SourceHandles<'_>,
    stream: Stream<'_>,
    sink: K,
) {
    let settings = SourceSettings {
        topic: stream.topic.to_string(),
        group_id: format!("{}-{}", handles.kafka.group_id, stream.name),
        max_batch: stream.max_batch,
        max_wait: Duration::from_millis(stream.max_wait_ms),
        limits: handles.limits,
        lag: handles.lag.clone(),
    };
    let (kafka, stats, dead_letters, stop, name) = (
        handles.kafka.clone(),
        handles.stats.clone(),
        handles.dead_letters.clone(),
        handles.shutdown.subscribe(),
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

/// The output topics' producers.
struct Outputs {
    dead_letters: DeadLetterProducer,
    items: ItemPublisher,
    users: EmbeddingPublisher,
}

/// Creates the topics when asked to (`kafka.create_topics`) and the producers of the outputs.
async fn outputs(k: &KafkaConfig) -> Result<Outputs, ServiceError> {
    if k.create_topics {
        crate::kafka::create_topics(k, &k.topics(), k.topic_partitions).await?;
    }
    let producer = crate::kafka::producer(k)?;
    Ok(Outputs {
        dead_letters: DeadLetterProducer::new(producer.clone(), k.dead_letter_topic.clone()),
        items: ItemPublisher {
            catalogue: EmbeddingPublisher::new(producer.clone(), k.catalogue_topic.clone()),
            aligned: EmbeddingPublisher::new(producer.clone(), k.item_embeddings_topic.clone()),
        },
        users: EmbeddingPublisher::new(producer, k.user_embeddings_topic.clone()),
    })
}

/// The two input pipelines: actions → histories, uploads → embeddings.
fn spawn_pipelines<S: Store>(
    tasks: &mut Tasks,
    shared: &Shared<S>,
    outputs: &Outputs,
    shutdown: &ShutdownTrigger,
) {
    let config = &shared.config;
    let handles = SourceHandles {
        kafka: &config.kafka,
        limits: Limits {
            max_text_bytes: config.ingest.max_text_bytes,
        },
        lag: &shared.lag,
        stats: &shared.stats,
        dead_letters: &outputs.dead_letters,
        shutdown,
    };
    let actions = ActionSink {
        store: shared.store.clone(),
        active: shared.active.clone(),
        item_counts: shared.item_counts.clone(),
        stats: shared.stats.clone(),
    };
    let stream = Stream {
        name: "actions",
        topic: &config.kafka.actions_topic,
        max_batch: Arc::new(AtomicUsize::new(config.ingest.max_batch)),
        max_wait_ms: config.ingest.max_wait_ms,
    };
    spawn_source::<UserAction, _>(tasks, &handles, stream, actions);
    let items = ItemSink {
        store: shared.store.clone(),
        encoder: shared.encoder.clone(),
        catalogue: shared.catalogue.clone(),
        models: shared.models.clone(),
        stats: shared.stats.clone(),
        busy: shared.encoder_busy.clone(),
        latency: shared.upload_latency.clone(),
        publisher: outputs.items.clone(),
    };
    let stream = Stream {
        name: "items",
        topic: &config.kafka.items_topic,
        max_batch: shared.knobs.embed_batch.clone(),
        max_wait_ms: config.encoder.max_wait_ms,
    };
    spawn_source::<ItemEvent, _>(tasks, &handles, stream, items);
}

/// The leader lease and the trainer (not on a follower).
fn spawn_training<S: Store>(
    tasks: &mut Tasks,
    shared: &Shared<S>,
    outputs: &Outputs,
    shutdown: &ShutdownTrigger,
) {
    let config = &shared.config;
    let lease = Arc::new(trainer::Lease::new(
        config.online.role,
        config.online.leader_ttl_ms,
    ));
    let (store, instance, renewed, stop) = (
        shared.store.clone(),
        shared.instance.clone(),
        lease.clone(),
        shutdown.subscribe(),
    );
    tasks.spawn("leader lease", async move {
        trainer::renew_lease(store, instance, renewed, stop).await;
        Ok(())
    });
    let context = trainer::Context {
        store: shared.store.clone(),
        live: shared.live(),
        active: shared.active.clone(),
        item_counts: shared.item_counts.clone(),
        stats: shared.stats.clone(),
        training: shared.training.clone(),
        encoder_busy: shared.encoder_busy.clone(),
        knobs: shared.knobs.clone(),
        config: trainer::TrainerConfig {
            training: config.training.clone(),
            online: config.online.clone(),
            actions_topic: config.kafka.actions_topic.clone(),
            model_id: shared.encoder.model_id().to_string(),
            prefix: shared.encoder.prefix().to_string(),
            history_cap: config.history.cap,
        },
        instance: shared.instance.clone(),
    };
    let publishers = trainer::Publishers {
        items: outputs.items.aligned.clone(),
        users: outputs.users.clone(),
    };
    let stop = shutdown.subscribe();
    tasks.spawn("trainer", async move {
        Ok(trainer::run(context, lease, publishers, stop).await?)
    });
}

/// The catalogue changelog, the follower and lag control.
fn spawn_followers<S: Store>(tasks: &mut Tasks, shared: &Shared<S>, shutdown: &ShutdownTrigger) {
    let config = &shared.config;
    let changelog = changelog::Changelog {
        kafka: config.kafka.clone(),
        catalogue: shared.catalogue.clone(),
        models: shared.models.clone(),
        warmup: shared.warmup.clone(),
    };
    tasks.spawn(
        "catalogue changelog",
        changelog::run(changelog, shutdown.subscribe()),
    );
    let follower = follower::Follower {
        store: shared.store.clone(),
        live: shared.live(),
        stats: shared.stats.clone(),
        training: shared.training.clone(),
        warmup: shared.warmup.clone(),
        poll: Duration::from_millis(config.online.model_poll_ms),
    };
    let stop = shutdown.subscribe();
    tasks.spawn("follower", async move {
        follower::run(follower, stop).await;
        Ok(())
    });
    if config.kafka.statistics_interval_ms > 0 {
        let controller = lag::Controller {
            policy: lag::LagPolicy::from_config(config),
            topics: (
                config.kafka.items_topic.clone(),
                config.kafka.actions_topic.clone(),
            ),
            lag: shared.lag.clone(),
            latency: shared.upload_latency.clone(),
            knobs: shared.knobs.clone(),
            interval: Duration::from_millis(config.kafka.statistics_interval_ms as u64),
        };
        let stop = shutdown.subscribe();
        tasks.spawn("lag control", async move {
            lag::control(controller, stop).await;
            Ok(())
        });
    }
}

/// Runs the pipelines, the trainer/follower, lag control and the HTTP API until `shutdown` is
/// triggered (or one of them fails, which stops the others).
pub async fn run<S: Store>(
    shared: Arc<Shared<S>>,
    shutdown: &ShutdownTrigger,
) -> Result<(), ServiceError> {
    let config = &shared.config;
    // The recorder first: zeros recorded before it is installed go nowhere.
    crate::metrics::prometheus();
    crate::metrics::zero_counters(&[&config.kafka.actions_topic, &config.kafka.items_topic]);
    let outputs = outputs(&config.kafka).await?;
    preconditions::check(config, &shared.store).await?;
    let addr = config.serving.addr.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServiceError::Http {
            addr: addr.clone(),
            source,
        })?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "HTTP API listening");

    let mut tasks = Tasks::default();
    spawn_pipelines(&mut tasks, &shared, &outputs, shutdown);
    if config.online.role != Role::Follower {
        spawn_training(&mut tasks, &shared, &outputs, shutdown);
    }
    spawn_followers(&mut tasks, &shared, shutdown);
    let popularity = Arc::new(popularity::Popularity {
        store: shared.store.clone(),
        item_counts: shared.item_counts.clone(),
        catalogue: shared.catalogue.clone(),
        every: Duration::from_millis(config.serving.popularity_sync_ms),
        half_life_ms: config.serving.popularity_half_life_secs * 1000,
    });
    let (sharing, stop) = (popularity.clone(), shutdown.subscribe());
    tasks.spawn("popularity", async move {
        popularity::run(sharing, stop).await;
        Ok(())
    });
    let (api, mut stop) = (http::router(shared.clone()), shutdown.subscribe());
    tasks.spawn("http", async move {
        axum::serve(JsonListener(listener), api)
            .with_graceful_shutdown(async move { stop.recv().await })
            .await
            .map_err(|source| ServiceError::Http { addr, source })
    });
    let outcome = tasks.supervise(shutdown).await;
    // The sources' final batches were counted after the popularity task stopped.
    popularity::share_last(&popularity).await;
    outcome
}
