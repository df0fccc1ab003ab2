//! Sink of the actions pipeline: appends each partition's actions to user histories, then tells
//! the trainer which users have fresh actions.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Shared;
use crate::history::{PartitionBatch, Store};
use crate::metrics::Event;
use crate::schemas::UserAction;
use crate::source::{Record, Sink, SinkError};

pub struct ActionSink<S> {
    shared: Arc<Shared<S>>,
}

impl<S: Store> ActionSink<S> {
    pub fn new(shared: Arc<Shared<S>>) -> Self {
        Self { shared }
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
                .shared
                .store
                .apply_actions(&batch)
                .await
                .map_err(|e| SinkError::Transient(e.to_string()))? as u64;
            self.shared.stats.emit(Event::ActionsApplied {
                applied,
                replayed: total - applied,
            });
        }
        self.shared
            .active
            .touch(records.iter().map(|r| r.event.user_id.as_str()));
        self.shared
            .item_counts
            .observe(records.iter().map(|r| r.event.item_id.as_str()));
        Ok(())
    }
}
