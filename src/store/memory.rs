//! In-process implementation of [`Store`] for `learn demo`: same semantics as Redis (watermarks,
//! cap), no persistence, no TTL (the process is short-lived).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::popularity::decayed;
use super::{
    Applied, Fence, HistoryEntry, HistoryPolicy, PartitionBatch, Publication, Store, StoreError,
    StoredModel,
};
use crate::schemas::{EmbeddingSpace, ItemEmbedding, UserEmbedding};

#[derive(Default)]
struct State {
    histories: HashMap<String, VecDeque<HistoryEntry>>,
    watermarks: HashMap<(String, i32), i64>,
    items: HashMap<(String, EmbeddingSpace), ItemEmbedding>,
    users: HashMap<String, UserEmbedding>,
    model: Option<StoredModel>,
    leader: Option<String>,
    /// Item → (count, as of ms).
    popularity: HashMap<String, (f64, i64)>,
}

#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    policy: HistoryPolicy,
}

impl MemoryStore {
    pub fn new(policy: HistoryPolicy) -> Self {
        Self {
            state: Arc::default(),
            policy,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    async fn apply_actions(&self, batch: &PartitionBatch) -> Result<Applied, StoreError> {
        let mut state = self.state();
        let wm_key = (batch.topic.clone(), batch.partition);
        let watermark = state.watermarks.get(&wm_key).copied().unwrap_or(-1);
        let mut result = Applied::default();
        for (index, (offset, action)) in batch.actions.iter().enumerate() {
            if *offset <= watermark {
                result.replayed += 1;
                continue;
            }
            let entry = HistoryEntry::from(action);
            let history = state.histories.entry(action.user_id.clone()).or_default();
            let window = history.len().saturating_sub(self.policy.dedupe_window);
            if history.range(window..).any(|e| *e == entry) {
                result.duplicates += 1;
                continue;
            }
            history.push_back(entry);
            while history.len() > self.policy.cap {
                history.pop_front();
            }
            result.appended.push(index);
        }
        if batch.read_up_to > watermark {
            state.watermarks.insert(wm_key, batch.read_up_to);
        }
        Ok(result)
    }

    async fn history(&self, user_id: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let state = self.state();
        let Some(history) = state.histories.get(user_id) else {
            return Ok(Vec::new());
        };
        Ok(history
            .iter()
            .skip(history.len().saturating_sub(limit))
            .cloned()
            .collect())
    }

    async fn put_item_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<(), StoreError> {
        let mut state = self.state();
        for e in embeddings {
            state.items.insert((e.item_id.clone(), e.space), e.clone());
        }
        Ok(())
    }

    async fn item_embeddings(
        &self,
        item_ids: &[String],
        space: EmbeddingSpace,
    ) -> Result<Vec<Option<ItemEmbedding>>, StoreError> {
        let state = self.state();
        Ok(item_ids
            .iter()
            .map(|id| state.items.get(&(id.clone(), space)).cloned())
            .collect())
    }

    async fn delete_items(&self, item_ids: &[String]) -> Result<(), StoreError> {
        let mut state = self.state();
        for id in item_ids {
            for space in [EmbeddingSpace::Content, EmbeddingSpace::Aligned] {
                state.items.remove(&(id.clone(), space));
            }
        }
        Ok(())
    }

    async fn put_user_embeddings(&self, embeddings: &[UserEmbedding]) -> Result<(), StoreError> {
        let mut state = self.state();
        for e in embeddings {
            state.users.insert(e.user_id.clone(), e.clone());
        }
        Ok(())
    }

    async fn user_embedding(&self, user_id: &str) -> Result<Option<UserEmbedding>, StoreError> {
        Ok(self.state().users.get(user_id).cloned())
    }

    async fn watermarks(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        self.watermarks_blocking(topic)
    }

    fn watermarks_blocking(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        Ok(self
            .state()
            .watermarks
            .iter()
            .filter(|((t, _), _)| t == topic)
            .map(|((_, p), o)| (*p, *o))
            .collect())
    }

    async fn advance_watermarks(
        &self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for (&partition, &offset) in offsets {
            let wm = state
                .watermarks
                .entry((topic.to_string(), partition))
                .or_insert(offset);
            *wm = (*wm).max(offset);
        }
        Ok(())
    }

    async fn publish_model(
        &self,
        model: &StoredModel,
        fence: &Fence,
    ) -> Result<Publication, StoreError> {
        let mut state = self.state();
        if state.leader.as_deref() != Some(fence.instance.as_str()) {
            return Ok(Publication::NotLeader);
        }
        if state
            .model
            .as_ref()
            .is_some_and(|m| m.version >= model.version)
        {
            return Ok(Publication::Superseded);
        }
        state.model = Some(model.clone());
        Ok(Publication::Published)
    }

    async fn model_version(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.state().model.as_ref().map(|m| m.version))
    }

    async fn current_model(&self) -> Result<Option<StoredModel>, StoreError> {
        Ok(self
            .state()
            .model
            .clone()
            .filter(|m| !m.manifest.is_empty()))
    }

    async fn retire_model(&self) -> Result<Option<u64>, StoreError> {
        let mut state = self.state();
        let retired = state.model.as_ref().filter(|m| !m.manifest.is_empty());
        let version = retired.map(|m| m.version);
        if let Some(version) = version {
            state.model = Some(StoredModel {
                version,
                manifest: Vec::new(),
                state: Vec::new(),
            });
        }
        Ok(version)
    }

    /// One process: the first instance to ask leads for the process's lifetime (epoch 1).
    async fn try_lead(&self, instance: &str, _ttl_ms: u64) -> Result<Option<Fence>, StoreError> {
        let mut state = self.state();
        Ok(
            (state.leader.get_or_insert_with(|| instance.to_string()) == instance).then(|| Fence {
                instance: instance.to_string(),
                epoch: 1,
            }),
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn eviction_policies(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    async fn user_count(&self) -> Result<usize, StoreError> {
        Ok(self.state().histories.len())
    }

    async fn add_popularity(
        &self,
        deltas: &[(String, f64)],
        now_ms: i64,
        half_life_ms: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for (item, delta) in deltas {
            let (count, at) = state
                .popularity
                .entry(item.clone())
                .or_insert((0.0, now_ms));
            if *at >= now_ms {
                *count += decayed(*delta, now_ms, *at, half_life_ms);
            } else {
                *count = decayed(*count, *at, now_ms, half_life_ms) + delta;
                *at = now_ms;
            }
        }
        Ok(())
    }

    async fn popularity(
        &self,
        now_ms: i64,
        half_life_ms: u64,
    ) -> Result<HashMap<String, f64>, StoreError> {
        Ok(self
            .state()
            .popularity
            .iter()
            .map(|(item, &(count, at))| (item.clone(), decayed(count, at, now_ms, half_life_ms)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{Action, UserAction};

    fn action(user: &str, item: &str, ts: i64) -> UserAction {
        UserAction {
            event_id: format!("{user}-{item}-{ts}"),
            user_id: user.into(),
            item_id: item.into(),
            action: Action::View,
            ts_ms: ts,
            watch_ms: None,
        }
    }

    #[tokio::test]
    async fn replays_are_skipped_and_cap_holds() {
        let store = MemoryStore::new(HistoryPolicy {
            cap: 3,
            ttl_ms: 0,
            dedupe_window: 4,
        });
        let batch = |from: i64, to: i64| PartitionBatch {
            topic: "t".into(),
            partition: 0,
            actions: (from..to)
                .map(|o| (o, action("u", &format!("i{o}"), o)))
                .collect(),
            read_up_to: to - 1,
        };
        assert_eq!(
            store.apply_actions(&batch(0, 2)).await.unwrap().appended,
            [0, 1]
        );
        let again = store.apply_actions(&batch(0, 5)).await.unwrap();
        assert_eq!(
            (again.appended, again.replayed),
            (vec![2, 3, 4], 2),
            "offsets 0 and 1 are replays"
        );
        // A resend (the same event at a new offset) is a duplicate.
        let mut resend = batch(5, 6);
        resend.actions[0].1 = action("u", "i4", 4);
        let dup = store.apply_actions(&resend).await.unwrap();
        assert_eq!((dup.appended.len(), dup.duplicates), (0, 1));
        assert_eq!(store.watermarks_blocking("t").unwrap()[&0], 5);
        let items: Vec<_> = store
            .history("u", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.item_id)
            .collect();
        assert_eq!(items, ["i2", "i3", "i4"]);
    }
}
