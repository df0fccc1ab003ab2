//! Sink of the actions pipeline: appends each partition's actions to user histories.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::history::{PartitionBatch, Store};
use crate::metrics::{Event, Stats};
use crate::schemas::UserAction;
use crate::source::{Record, Sink, SinkError};

pub struct ActionSink<S> {
    store: S,
    stats: Arc<Stats>,
}

impl<S: Store> ActionSink<S> {
    pub fn new(store: S, stats: Arc<Stats>) -> Self {
        Self { store, stats }
    }
}

impl<S: Store> Sink<UserAction> for ActionSink<S> {
    async fn write(
        &mut self,
        topic: &str,
        records: &[Record<UserAction>],
    ) -> Result<(), SinkError> {
        let mut by_partition: BTreeMap<i32, Vec<(i64, UserAction)>> = BTreeMap::new();
        for r in records {
            by_partition
                .entry(r.partition)
                .or_default()
                .push((r.offset, r.event.clone()));
        }
        for (partition, actions) in by_partition {
            let total = actions.len() as u64;
            let batch = PartitionBatch {
                topic: topic.to_string(),
                partition,
                actions,
            };
            let applied = self
                .store
                .apply_actions(&batch)
                .await
                .map_err(|e| SinkError::Transient(e.to_string()))? as u64;
            self.stats.emit(Event::ActionsApplied {
                applied,
                replayed: total - applied,
            });
        }
        Ok(())
    }
}
