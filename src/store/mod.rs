//! Owns the service's state: rolling per-user histories (with their watermarks and resend
//! detection), item and user embeddings, shared popularity counts, the published model and the
//! trainer lock, behind the [`Store`] trait, with two implementations: [`RedisStore`] (production,
//! one node or a Redis Cluster through `connection`) and [`MemoryStore`] (the `demo`). For Redis,
//! `keys` builds every key, `fields` writes and reads every record's hash fields, `histories` and
//! `popularity` hold those two records' logic, and the scripts are `*.lua` files here.
//!
//! Replay safety: Kafka delivery is at-least-once, so after a crash the events between the last
//! committed offset and the crash are delivered again. Each store keeps the highest offset already
//! applied and skips anything at or below it, moving it in the same atomic write as the history:
//! Redis per user and partition (the user's slot), the memory store per partition; the partition's
//! resume point follows once the batch is written. See docs/architecture.md, "Idempotent histories".

mod connection;
mod entry;
mod fields;
mod histories;
mod keys;
mod memory;
mod popularity;
mod redis;
mod registry;

pub use entry::{HistoryEntry, ItemKey};
pub use memory::MemoryStore;
pub use redis::RedisStore;

use std::future::Future;

use std::collections::{BTreeMap, HashMap};

use crate::config::HistoryConfig;
use crate::schemas::{EmbeddingSpace, ItemEmbedding, UserAction, UserEmbedding};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("corrupt stored value under {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("redis TLS files: {0}")]
    Tls(String),
}

/// A reply of an unexpected shape is a Redis error of kind `Parse` (deterministic, not retried).
impl From<::redis::ParsingError> for StoreError {
    fn from(err: ::redis::ParsingError) -> Self {
        StoreError::Redis(err.into())
    }
}

impl StoreError {
    /// Whether the same write can succeed later (connection lost, server loading, failover,
    /// cluster resharding, an unknown server error) rather than fail the same way every time
    /// (a script error, `WRONGTYPE`, `CROSSSLOT`, a permission, a corrupt value).
    pub fn is_transient(&self) -> bool {
        use ::redis::{ErrorKind, ServerErrorKind};
        match self {
            StoreError::Corrupt { .. } | StoreError::Tls(_) => false,
            StoreError::Redis(e) => {
                let deterministic = matches!(
                    e.kind(),
                    ErrorKind::Server(
                        ServerErrorKind::ResponseError
                            | ServerErrorKind::CrossSlot
                            | ServerErrorKind::ExecAbort
                            | ServerErrorKind::NoPerm
                    ) | ErrorKind::UnexpectedReturnType
                        | ErrorKind::Parse
                        | ErrorKind::Client
                        | ErrorKind::InvalidClientConfig
                ) || e.code() == Some("WRONGTYPE");
                !deterministic
            }
        }
    }
}

/// What one [`Store::apply_actions`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Indices (into the batch) of the actions appended. An action is appended once however
    /// often it is delivered (a rebalance or a restart redelivers what was not committed), so
    /// whatever counts actions (the shared popularity) counts these.
    pub appended: Vec<usize>,
    /// Actions skipped as already applied (at or below the watermark).
    pub replayed: usize,
    /// Actions skipped because an equal entry (same item, action and millisecond) was among
    /// the user's last `dedupe_window` (a resend).
    pub duplicates: usize,
    /// Indices (into the batch) of actions the store refused for good (their keys hold another
    /// type); nothing was written for them.
    pub refused: Vec<usize>,
}

/// Actions read from one partition, in offset order.
#[derive(Debug, Clone)]
pub struct PartitionBatch {
    pub topic: String,
    pub partition: i32,
    /// `(offset, action)`, offsets strictly increasing.
    pub actions: Vec<(i64, UserAction)>,
    /// Highest offset read from the partition in this batch, dead-lettered messages included:
    /// the watermark moves there.
    pub read_up_to: i64,
}

/// Limits applied to every history write.
#[derive(Debug, Clone, Copy)]
pub struct HistoryPolicy {
    /// Most recent entries kept per user.
    pub cap: usize,
    /// Expiry after the last write, in milliseconds; 0 = never.
    pub ttl_ms: u64,
    /// Entries searched per user for a resend: an action equal to one of the user's last
    /// `dedupe_window` entries (same item, action and millisecond) is skipped. 0 = off.
    pub dedupe_window: usize,
}

impl From<&HistoryConfig> for HistoryPolicy {
    fn from(config: &HistoryConfig) -> Self {
        Self {
            cap: config.cap,
            ttl_ms: config.ttl_secs * 1000,
            dedupe_window: config.dedupe_window,
        }
    }
}

/// The current model as the trainer published it, for the processes that do not train.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub version: u64,
    /// The manifest of what is published (`checkpoint::published`: its checksum covers `state`).
    pub manifest: Vec<u8>,
    /// A safetensors file of the weights alone (the optimizer's moments stay in checkpoints).
    pub state: Vec<u8>,
}

/// The leader's fencing token: who holds the trainer lock, and the epoch it was taken in (a
/// counter incremented on every acquisition, so a trainer whose lease lapsed and was taken back
/// carries an older epoch than the lock's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub instance: String,
    pub epoch: u64,
}

/// What a model publication did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    Published,
    /// The published version is this one or later (another trainer got there first).
    Superseded,
    /// The fence no longer holds the lock (the lease lapsed, or another instance or epoch leads).
    NotLeader,
}

/// Where histories and embeddings live. Clones share the same underlying state.
pub trait Store: Clone + Send + Sync + 'static {
    /// Appends the batch's actions to their users' histories, skipping offsets at or below the
    /// partition's watermark and resends of one of the user's last `dedupe_window` entries,
    /// trimming to the cap,
    /// refreshing the TTL and moving the watermark to `read_up_to`, atomically.
    fn apply_actions(
        &self,
        batch: &PartitionBatch,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;

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
    ) -> impl Future<Output = Result<Option<ItemEmbedding>, StoreError>> + Send {
        let ids = [item_id.to_string()];
        async move { Ok(self.item_embeddings(&ids, space).await?.pop().flatten()) }
    }

    /// Many items' embeddings in one round trip (a pipeline), by position of `item_ids`.
    fn item_embeddings(
        &self,
        item_ids: &[String],
        space: EmbeddingSpace,
    ) -> impl Future<Output = Result<Vec<Option<ItemEmbedding>>, StoreError>> + Send;

    /// Deletes the items' content and aligned embeddings.
    fn delete_items(
        &self,
        item_ids: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores (overwrites) user embeddings.
    fn put_user_embeddings(
        &self,
        embeddings: &[UserEmbedding],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn user_embedding(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<UserEmbedding>, StoreError>> + Send;

    /// Partition → highest offset of `topic` handled (applied, replayed or dead-lettered).
    fn watermarks(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<BTreeMap<i32, i64>, StoreError>> + Send;

    /// [`Store::watermarks`], blocking: for the consumer's rebalance callback.
    fn watermarks_blocking(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError>;

    /// Moves `topic`'s watermarks up to `offsets` (never down), for streams whose writes are
    /// not [`Store::apply_actions`] (item uploads).
    fn advance_watermarks(
        &self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes `model` the current one (atomically: version, manifest and state together) if
    /// `fence` still holds the trainer lock and its version is above the published one, so no two
    /// models ever share a version and a deposed leader never publishes.
    fn publish_model(
        &self,
        model: &StoredModel,
        fence: &Fence,
    ) -> impl Future<Output = Result<Publication, StoreError>> + Send;

    /// The current model's version, if any was published (a retired lineage's too).
    fn model_version(&self) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    fn current_model(&self)
        -> impl Future<Output = Result<Option<StoredModel>, StoreError>> + Send;

    /// Retires the published lineage (`learn model reset`): the current model is set aside and only
    /// its version stays, the floor the next lineage's versions continue above. The retired
    /// version, or None when no model was published.
    fn retire_model(&self) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Takes or renews the leader lock for `instance` for `ttl_ms`; the fence while `instance`
    /// holds it (a new epoch on each acquisition), None while another does.
    fn try_lead(
        &self,
        instance: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<Option<Fence>, StoreError>> + Send;

    /// Whether the store answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Each Redis primary's `maxmemory-policy` (none for the in-process store). Errs where the
    /// server refuses `CONFIG` (some managed services do).
    fn eviction_policies(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Number of users with a history (for summaries; may be approximate on large stores).
    fn user_count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Adds `deltas` (item id → actions) to the popularity counts every process shares, decayed
    /// with `half_life_ms` (0 = never) as of `now_ms`.
    fn add_popularity(
        &self,
        deltas: &[(String, f64)],
        now_ms: i64,
        half_life_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every item's shared popularity count, decayed to `now_ms`.
    fn popularity(
        &self,
        now_ms: i64,
        half_life_ms: u64,
    ) -> impl Future<Output = Result<HashMap<String, f64>, StoreError>> + Send;
}
