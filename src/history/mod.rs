//! Owns the service's state: rolling per-user histories and item embeddings, behind the [`Store`]
//! trait, with two implementations: [`RedisStore`] (production) and [`MemoryStore`] (the `demo`).
//!
//! Replay safety: Kafka delivery is at-least-once, so after a crash the events between the last
//! committed offset and the crash are delivered again. Both stores keep, per (topic, partition),
//! the highest offset already applied (a watermark) and skip anything at or below it, updating
//! the watermark in the same atomic write as the histories. See README "Idempotent histories".

mod entry;
mod memory;
mod redis;

pub use entry::HistoryEntry;
pub use memory::MemoryStore;
pub use redis::RedisStore;

use std::future::Future;

use std::collections::BTreeMap;

use crate::schemas::{EmbeddingSpace, ItemEmbedding, UserAction, UserEmbedding};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("corrupt stored value under {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Actions read from one partition, in offset order.
#[derive(Debug, Clone)]
pub struct PartitionBatch {
    pub topic: String,
    pub partition: i32,
    /// `(offset, action)`, offsets strictly increasing.
    pub actions: Vec<(i64, UserAction)>,
}

/// Limits applied to every history write.
#[derive(Debug, Clone, Copy)]
pub struct HistoryPolicy {
    /// Most recent entries kept per user.
    pub cap: usize,
    /// Expiry after the last write, in milliseconds; 0 = never.
    pub ttl_ms: u64,
}

/// The current model as the trainer published it, for the processes that do not train.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub version: u64,
    /// The checkpoint's `manifest.json`.
    pub manifest: Vec<u8>,
    /// The checkpoint's `state.safetensors` (weights and optimizer state).
    pub state: Vec<u8>,
}

/// Where histories and embeddings live. Clones share the same underlying state.
pub trait Store: Clone + Send + Sync + 'static {
    /// Appends the batch's actions to their users' histories, skipping offsets at or below the
    /// partition's watermark, trimming to the cap and refreshing the TTL, atomically.
    /// Returns how many actions were applied (the rest were replays).
    fn apply_actions(
        &self,
        batch: &PartitionBatch,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The user's most recent `limit` entries, oldest first.
    fn history(
        &self,
        user_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;

    /// Stores (overwrites) item embeddings.
    fn put_item_embeddings(
        &self,
        embeddings: &[ItemEmbedding],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn item_embedding(
        &self,
        item_id: &str,
        space: EmbeddingSpace,
    ) -> impl Future<Output = Result<Option<ItemEmbedding>, StoreError>> + Send;

    /// Ids of every item with a content embedding.
    fn item_ids(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Stores (overwrites) user embeddings.
    fn put_user_embeddings(
        &self,
        embeddings: &[UserEmbedding],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn user_embedding(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<UserEmbedding>, StoreError>> + Send;

    /// Partition → highest offset of `topic` applied to histories.
    fn watermarks(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<BTreeMap<i32, i64>, StoreError>> + Send;

    /// Makes `model` the current one (atomically: version, manifest and state together).
    fn publish_model(
        &self,
        model: &StoredModel,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The current model's version, if any was published.
    fn model_version(&self) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    fn current_model(&self)
        -> impl Future<Output = Result<Option<StoredModel>, StoreError>> + Send;

    /// Takes or renews the leader lock for `instance` for `ttl_ms`; true while `instance` holds it.
    fn try_lead(
        &self,
        instance: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Number of users with a history (for summaries; may be approximate on large stores).
    fn user_count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
}
