//! Owns the input streams the tools produce: a synthetic stream ([`synthetic`]: topical users and
//! items, with a share of malformed events) and a MovieLens 100K replay ([`movielens`]: uploads,
//! then ratings as actions in time order), as messages ready for Kafka. Used by `learn demo`,
//! `learn replay` and `learn loadgen`.

mod movielens;
mod synthetic;

pub use movielens::movielens_stream;
pub use synthetic::{synthetic_stream, SyntheticOptions};

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("dataset: {0}")]
    Dataset(String),
}

/// One message to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: Topic,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Which input topic a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Actions,
    Items,
}
