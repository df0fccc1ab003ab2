//! Owns what can go wrong in a trainer round (each contained: the round is a setback, ingestion
//! and serving go on).

use crate::checkpoint::CheckpointError;
use crate::experiment::warm_start::WarmStartError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("towers: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Boxed: the mismatch's text is large, and every trainer result carries the variant's size.
    #[error("warm start: {0}")]
    WarmStart(Box<WarmStartError>),
    #[error("checkpoint v{version} does not fit this configuration: {reason}")]
    Incompatible { version: u64, reason: String },
    #[error("trainer threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error("training task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("version {version} was published by another trainer first; stepping down")]
    Fenced { version: u64 },
    #[error("the leader lease (epoch {epoch}) may have lapsed: not publishing version {version}")]
    LeaseLapsed { version: u64, epoch: u64 },
}

impl From<WarmStartError> for TrainerError {
    fn from(err: WarmStartError) -> Self {
        TrainerError::WarmStart(Box::new(err))
    }
}
