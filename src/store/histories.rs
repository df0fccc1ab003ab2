//! Histories in Redis: a partition batch applied atomically and replay-safe, and a history read
//! back (compact entries resolved through the item registry). On a single node the whole batch is
//! one script (`apply_batch.lua`) that moves the partition's watermark with the appends. On a
//! cluster a batch spans slots, so each slot gets a script of its own (`apply_actions.lua`) that
//! moves its users' own watermarks (`hw:{user}`) with their appends, and the partition's resume
//! point moves once every slot is written. Both scripts begin with the same append core
//! (`history_core.lua`: resend check, append, replay outcome); they differ in where the watermark
//! lives.

use std::collections::{BTreeMap, HashMap};

use futures::future::try_join_all;
use redis::AsyncCommands;

use super::connection::Group;
use super::entry::{ItemKey, StoredEntry};
use super::fields::corrupt;
use super::redis::RedisStore;
use super::{Applied, HistoryEntry, PartitionBatch, Store, StoreError};

impl RedisStore {
    pub(super) async fn apply_batch(&self, batch: &PartitionBatch) -> Result<Applied, StoreError> {
        let mut conn = self.connection.conn();
        // The ids first: an entry is never readable before its item id is.
        let collided = self
            .registry
            .register(
                &mut conn,
                batch.actions.iter().map(|(_, a)| a.item_id.as_str()),
            )
            .await?;
        let entries: Vec<Vec<u8>> = batch
            .actions
            .iter()
            .map(|(_, a)| {
                HistoryEntry::from(a).encode_for_store(!collided.contains(a.item_id.as_str()))
            })
            .collect();
        if self.connection.is_cluster() {
            self.apply_by_slot(batch, entries).await
        } else {
            self.apply_at_once(batch, entries).await
        }
    }

    /// One script for the batch: appends and the partition's watermark move together.
    async fn apply_at_once(
        &self,
        batch: &PartitionBatch,
        entries: Vec<Vec<u8>>,
    ) -> Result<Applied, StoreError> {
        let mut invocation = self.batch_script.prepare_invoke();
        invocation
            .key(self.keys.watermarks(&batch.topic))
            .arg(batch.partition)
            .arg(self.policy.cap)
            .arg(self.policy.ttl_ms)
            .arg(self.policy.dedupe_window)
            .arg(batch.read_up_to);
        for ((offset, action), entry) in batch.actions.iter().zip(entries) {
            invocation
                .key(self.keys.history(&action.user_id))
                .arg(*offset)
                .arg(entry);
        }
        let mut conn = self.connection.conn();
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        let mut applied = Applied::default();
        add_outcomes(&mut applied, 0..batch.actions.len(), &reply)
            .map_err(|why| corrupt(&self.keys.watermarks(&batch.topic), why))?;
        Ok(applied)
    }

    /// A script per slot moving its users' watermarks, then the partition's resume point.
    async fn apply_by_slot(
        &self,
        batch: &PartitionBatch,
        entries: Vec<Vec<u8>>,
    ) -> Result<Applied, StoreError> {
        let mut slots: HashMap<Group, SlotWrite> = HashMap::new();
        for (i, ((offset, action), entry)) in batch.actions.iter().zip(entries).enumerate() {
            let history = self.keys.history(&action.user_id);
            let slot = slots.entry(self.connection.slot(&history)).or_default();
            let next = slot.users.len() + 1;
            let user = *slot
                .users
                .entry(action.user_id.as_str())
                .or_insert_with(|| {
                    slot.keys.push(history);
                    slot.keys
                        .push(self.keys.history_watermarks(&action.user_id));
                    next
                });
            slot.actions.push(i);
            slot.args.push((user, *offset, entry));
        }
        let replies = try_join_all(slots.into_values().map(|slot| {
            let mut conn = self.connection.conn();
            let mut invocation = self.apply_script.prepare_invoke();
            invocation
                .arg(batch.partition)
                .arg(self.policy.cap)
                .arg(self.policy.ttl_ms)
                .arg(self.policy.dedupe_window);
            for key in &slot.keys {
                invocation.key(key);
            }
            for (user, offset, entry) in &slot.args {
                invocation.arg(*user).arg(*offset).arg(entry);
            }
            async move {
                let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
                Ok::<_, StoreError>((slot.actions, reply))
            }
        }))
        .await?;
        let mut applied = Applied::default();
        for (actions, reply) in replies {
            add_outcomes(&mut applied, actions.iter().copied(), &reply)
                .map_err(|why| corrupt(&self.keys.watermarks(&batch.topic), why))?;
        }
        applied.appended.sort_unstable();
        applied.refused.sort_unstable();
        // The resume point moves only once every history of the batch is written.
        self.advance_watermarks(
            &batch.topic,
            &BTreeMap::from([(batch.partition, batch.read_up_to)]),
        )
        .await?;
        Ok(applied)
    }

    pub(super) async fn read_history(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.keys.history(user_id);
        let mut conn = self.connection.conn();
        let raw: Vec<Vec<u8>> = conn
            .lrange(&key, -(limit.min(isize::MAX as usize) as isize), -1)
            .await?;
        let stored = raw
            .iter()
            .map(|b| {
                StoredEntry::decode(b)
                    .ok_or_else(|| corrupt(&key, format!("entry `{}`", String::from_utf8_lossy(b))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<ItemKey> = stored
            .iter()
            .filter_map(|e| match e {
                StoredEntry::Compact { item, .. } => Some(*item),
                StoredEntry::Text(_) => None,
            })
            .collect();
        let ids = self.registry.resolve(&mut conn, &keys).await?;
        Ok(stored
            .into_iter()
            .map(|e| match e {
                StoredEntry::Text(entry) => entry,
                StoredEntry::Compact {
                    ts_ms,
                    action,
                    item,
                } => HistoryEntry {
                    ts_ms,
                    action,
                    item_id: ids[&item].clone(),
                },
            })
            .collect())
    }
}

/// One slot's share of a partition batch: its users' keys (history, watermark) in first-seen
/// order, and its actions as (1-based user, offset, encoded entry) with their batch indices.
#[derive(Default)]
struct SlotWrite<'a> {
    users: HashMap<&'a str, usize>,
    keys: Vec<String>,
    actions: Vec<usize>,
    args: Vec<(usize, i64, Vec<u8>)>,
}

/// Adds an apply script's reply (one outcome per action: 0 appended, 1 a replay, 2 a resend,
/// 3 refused) to `applied`; `actions` yields the batch index of each of the reply's actions.
fn add_outcomes(
    applied: &mut Applied,
    actions: impl ExactSizeIterator<Item = usize>,
    reply: &[i64],
) -> Result<(), &'static str> {
    if reply.len() != actions.len() {
        return Err("script reply of another length than the batch");
    }
    for (index, &outcome) in actions.zip(reply) {
        match outcome {
            0 => applied.appended.push(index),
            1 => applied.replayed += 1,
            2 => applied.duplicates += 1,
            3 => applied.refused.push(index),
            _ => return Err("unknown outcome in the script reply"),
        }
    }
    Ok(())
}
