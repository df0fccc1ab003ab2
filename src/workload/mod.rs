//! Owns the input streams the tools produce: a synthetic stream ([`synthetic`]: topical users and
//! items, with a share of malformed events) and a MovieLens 100K replay ([`movielens`]: uploads,
//! then ratings as actions in time order), as typed events, and their producer ([`producer`]:
//! serialised at the send, to the configured topic), and a slice of a stream as an offline
//! dataset ([`export()`]). Used by `learn demo`, `learn replay` and `learn loadgen`.

mod export;
mod movielens;
mod producer;
mod synthetic;

pub use export::{export, Exported};
pub use movielens::movielens_stream;
pub use producer::{EventProducer, ProduceError};
pub use synthetic::{synthetic_stream, SyntheticOptions};

use crate::config::KafkaConfig;
use crate::schemas::{ItemUpload, UserAction};

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("dataset: {0}")]
    Dataset(String),
}

/// One event for an input topic, typed until the producer serialises it ([`Outgoing::payload`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Action(UserAction),
    Upload(ItemUpload),
    /// Bytes that are not a valid event, on purpose (the synthetic stream's share of bad input).
    Malformed {
        topic: Topic,
        key: String,
        payload: Vec<u8>,
        ts_ms: i64,
    },
}

impl Outgoing {
    pub fn topic(&self) -> Topic {
        match self {
            Outgoing::Action(_) => Topic::Actions,
            Outgoing::Upload(_) => Topic::Items,
            Outgoing::Malformed { topic, .. } => *topic,
        }
    }

    /// The message key: the user for an action (a user's actions stay in order on one
    /// partition), the item for an upload.
    pub fn key(&self) -> &str {
        match self {
            Outgoing::Action(a) => &a.user_id,
            Outgoing::Upload(u) => &u.item_id,
            Outgoing::Malformed { key, .. } => key,
        }
    }

    /// When the event happened (ms since the epoch).
    pub fn ts_ms(&self) -> i64 {
        match self {
            Outgoing::Action(a) => a.ts_ms,
            Outgoing::Upload(u) => u.ts_ms,
            Outgoing::Malformed { ts_ms, .. } => *ts_ms,
        }
    }

    /// The message payload (JSON).
    pub fn payload(&self) -> Vec<u8> {
        match self {
            Outgoing::Action(a) => serde_json::to_vec(a).expect("serialisable"),
            Outgoing::Upload(u) => serde_json::to_vec(u).expect("serialisable"),
            Outgoing::Malformed { payload, .. } => payload.clone(),
        }
    }
}

/// Which input topic a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Actions,
    Items,
}

impl Topic {
    /// The configured topic name.
    pub fn name(self, kafka: &KafkaConfig) -> &str {
        match self {
            Topic::Actions => &kafka.actions_topic,
            Topic::Items => &kafka.items_topic,
        }
    }
}
