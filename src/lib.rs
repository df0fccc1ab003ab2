//! learn-stream: Kuaishou's LEARN recommender (arXiv 2405.03988) brought online.
//!
//! A map of the modules, in the order data flows through them:
//!
//! - [`config`]: the typed configuration tree (`config/default.toml`, `--config`, `LEARN__…` env vars);
//!   each section validates itself with [`checks`].
//! - [`schemas`]: the events on every topic (user actions, item uploads, embeddings, dead letters),
//!   the decoder that turns raw Kafka payloads into them or into a reasoned rejection, and the
//!   item text an upload is embedded from.
//! - [`source`]: Kafka consumers. A batching loop with at-least-once offsets, capped dead letters,
//!   revoke handling, assignments resumed after the sink's watermarks and paused polling while a
//!   write retries, generic over the [`source::Sink`] that receives decoded batches (and may refuse
//!   single records for good).
//! - [`encode`]: the frozen content encoder (our CPU kernels, or candle) and its configuration.
//! - [`store`]: the state store: rolling per-user histories and item embeddings, in Redis or in process,
//!   behind one [`store::Store`] trait, with idempotent (replay-safe, resend-safe) writes and
//!   transient/deterministic error classes.
//! - [`publish`]: producers of outputs: the `item-embeddings`, `item-catalogue`, `user-embeddings` and dead-letter topics.
//! - [`service`]: wires the above into the running service: the two pipelines (actions → histories,
//!   uploads → embeddings), the continual trainer (leader only) and model hot-swap, lag control and
//!   the HTTP API (`/v1/recommend`, `/v1/status`, `/livez`, `/readyz`, `/metrics`), until shutdown.
//! - [`serving`]: the catalogue, the models at their versions, top-K recommendation.
//! - [`checkpoint`]: towers + optimizer state on disk, atomically, with a manifest.
//! - [`towers`]: LEARN's preference-alignment towers (candle-nn) and the contrastive losses.
//! - [`train`]: optimisation of the towers (AdamW with saveable state, schedule, clipping, the
//!   offline trainer and the online step).
//! - [`dataset`]: offline datasets (canonical format, RecBole and MovieLens importers, content cache).
//! - [`eval`]: the paper's offline protocol (leave-one-out, full ranking, metrics, baselines).
//! - [`experiment`]: `learn train` / `learn eval` glue: prepared datasets, models, checkpoints, and
//!   the written report (`results.json`, `report.md`, `training.svg`).
//! - [`replay`]: `learn replay`: a timestamped dataset into Kafka in time order, with prequential
//!   (test-then-train) evaluation of a running service and a report.
//! - [`loadgen`]: `learn loadgen`: a steady synthetic load at fixed rates, a bulk catalogue, and
//!   the external freshness probe.
//! - [`workload`]: the input streams the tools produce (synthetic; MovieLens 100K in time order), as
//!   typed events, and their producer.
//! - [`demo`]: everything in one process with no servers: librdkafka's mock cluster, an in-process store
//!   and a workload stream.
//! - [`metrics`]: the typed internal events the pipelines emit, as `metrics` counters and as a snapshot.
//! - [`shutdown`]: the broadcast signal that stops every task gracefully.
//! - [`tensor`]: tensor helpers shared by the encoder, the towers and the scorers.
//!
//! The order above is the data flow. The import stack (no cycles, checked by
//! `tests/architecture.rs`, file by file too), bottom to top: checks/schemas/shutdown/tensor →
//! metrics/publish/towers → encode/checkpoint/eval → dataset/train → config → store/kafka/experiment
//! → workload/serving/source → service → demo/replay/loadgen.

pub mod checkpoint;
pub mod checks;
pub mod config;
pub mod dataset;
pub mod demo;
pub mod encode;
pub mod eval;
pub mod experiment;
pub mod kafka;
pub mod loadgen;
pub mod metrics;
pub mod publish;
pub mod replay;
pub mod schemas;
pub mod service;
pub mod serving;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod tensor;
pub mod towers;
pub mod train;
pub mod workload;
