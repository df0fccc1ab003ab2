//! Sink of the actions pipeline: appends each partition's actions to user histories (moving the
//! partition's watermark over everything the batch read), then tells the trainer which users have
//! fresh actions. Store errors are split by kind: transient ones fail the batch (the source
//! retries it), deterministic ones are isolated to the actions that cause them, which are refused
//! (dead-lettered) while the rest of the batch is written.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::active::ActiveUsers;
use crate::metrics::{Event, Stats};
use crate::schemas::{RejectReason, UserAction};
use crate::serving::ItemCounts;
use crate::source::{Record, Refusal, Sink, SinkError, WatermarkReader};
use crate::store::{Applied, PartitionBatch, Store};

/// What the actions sink touches.
pub struct ActionSink<S> {
    pub store: S,
    /// Told which users have fresh actions.
    pub active: Arc<ActiveUsers>,
    /// Counts each appended action once.
    pub item_counts: Arc<ItemCounts>,
    pub stats: Arc<Stats>,
}

impl<S: Store> ActionSink<S> {
    /// One partition's batch; `indices` maps its actions back to the written records. Returns
    /// what was applied and the actions refused.
    async fn apply(
        &self,
        batch: &PartitionBatch,
        indices: &[usize],
    ) -> Result<(Applied, Vec<Refusal>), SinkError> {
        let store = &self.store;
        match store.apply_actions(batch).await {
            Ok(applied) => {
                let refusals = applied
                    .refused
                    .iter()
                    .map(|&i| refused(indices[i], &err_of_type(&batch.actions[i].1)))
                    .collect();
                Ok((applied, refusals))
            }
            Err(err) if err.is_transient() => Err(SinkError::transient("store", err)),
            Err(err) => {
                tracing::error!(%err, partition = batch.partition, "the store refused a batch; isolating the actions that cause it");
                let (mut total, mut refusals) = (Applied::default(), Vec::new());
                for (i, action) in batch.actions.iter().enumerate() {
                    let alone = PartitionBatch {
                        topic: batch.topic.clone(),
                        partition: batch.partition,
                        actions: vec![action.clone()],
                        read_up_to: action.0,
                    };
                    match store.apply_actions(&alone).await {
                        Ok(a) => {
                            if !a.appended.is_empty() {
                                total.appended.push(i);
                            }
                            total.replayed += a.replayed;
                            total.duplicates += a.duplicates;
                            if !a.refused.is_empty() {
                                refusals.push(refused(indices[i], &err_of_type(&action.1)));
                            }
                        }
                        Err(err) if err.is_transient() => {
                            return Err(SinkError::transient("store", err))
                        }
                        Err(err) => refusals.push(refused(indices[i], &err)),
                    }
                }
                let read_up_to = BTreeMap::from([(batch.partition, batch.read_up_to)]);
                store
                    .advance_watermarks(&batch.topic, &read_up_to)
                    .await
                    .map_err(|e| SinkError::transient("store", e))?;
                Ok((total, refusals))
            }
        }
    }
}

/// One partition's `(offset, action)` pairs and, for each, its index among the written records.
type PartitionRecords = (Vec<(i64, UserAction)>, Vec<usize>);

fn err_of_type(action: &UserAction) -> String {
    format!("history keys of user {} hold another type", action.user_id)
}

fn refused(index: usize, err: &dyn std::fmt::Display) -> Refusal {
    tracing::error!(%err, index, "action refused by the store, dead-lettered");
    Refusal {
        index,
        reason: RejectReason::StoreRejected,
        detail: err.to_string(),
    }
}

impl<S: Store> Sink<UserAction> for ActionSink<S> {
    async fn write(
        &mut self,
        topic: &str,
        records: &[Record<UserAction>],
        read_up_to: &BTreeMap<i32, i64>,
    ) -> Result<Vec<Refusal>, SinkError> {
        // Every partition the batch read, records or not: its watermark moves to `read_up_to`.
        let mut by_partition: BTreeMap<i32, PartitionRecords> = read_up_to
            .keys()
            .map(|&p| (p, Default::default()))
            .collect();
        for (index, r) in records.iter().enumerate() {
            let (actions, indices) = by_partition.entry(r.partition).or_default();
            actions.push((r.offset, r.event.clone()));
            indices.push(index);
        }
        let batches: Vec<(PartitionBatch, Vec<usize>)> = by_partition
            .into_iter()
            .map(|(partition, (actions, indices))| {
                let read_up_to = read_up_to
                    .get(&partition)
                    .copied()
                    .unwrap_or_else(|| actions.last().map_or(-1, |a| a.0));
                let batch = PartitionBatch {
                    topic: topic.to_string(),
                    partition,
                    read_up_to,
                    actions,
                };
                (batch, indices)
            })
            .collect();
        // The partitions' scripts go out together (one connection pipelines them); each is
        // atomic and touches its own watermark field, so their order does not matter.
        let outcomes = futures::future::join_all(
            batches
                .iter()
                .map(|(batch, indices)| self.apply(batch, indices)),
        )
        .await;
        // Partitions written before another one failed are counted now (a retry sees them as
        // replays); the first failure fails the batch.
        let (mut refusals, mut appended) = (Vec::new(), Vec::new());
        let mut failure = None;
        for (outcome, (_, indices)) in outcomes.into_iter().zip(&batches) {
            match outcome {
                Ok((applied, refused)) => {
                    refusals.extend(refused);
                    appended.extend(applied.appended.iter().map(|&i| &records[indices[i]]));
                    self.stats.emit(Event::ActionsApplied {
                        applied: applied.appended.len() as u64,
                        replayed: applied.replayed as u64,
                        duplicates: applied.duplicates as u64,
                    });
                }
                Err(err) => failure = failure.or(Some(err)),
            }
        }
        // Each action counts once in the popularity: only where it was appended, never on a
        // redelivery (a replay) or a resend.
        self.item_counts
            .observe(appended.iter().map(|r| r.event.item_id.as_str()));
        if let Some(err) = failure {
            return Err(err);
        }
        // Replays too wake the trainer: a process that died after writing them never trained on
        // them.
        let refused: HashSet<usize> = refusals.iter().map(|r| r.index).collect();
        self.active.touch(
            records
                .iter()
                .enumerate()
                .filter(|(i, _)| !refused.contains(i))
                .map(|(_, r)| r.event.user_id.as_str()),
        );
        Ok(refusals)
    }

    fn watermarks(&self, topic: &str) -> WatermarkReader {
        super::watermark_reader(&self.store, topic)
    }
}
