//! Every Redis key the store writes, built in one place (all under `redis.key_prefix`).
//!
//! Cluster layout: every atomic write touches one slot. A user's history and its applied-offset
//! watermark share the hash tag `{user_id}`; the trainer lock, its epoch and the model share
//! `{control}`. Other keys are written one at a time.

use crate::schemas::EmbeddingSpace;

#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// `h:{user_id}`: the user's history list (`user_id` is the hash tag: ids never begin with
    /// `}`, so the tag is never empty).
    pub fn history(&self, user_id: &str) -> String {
        format!("{}h:{{{user_id}}}", self.prefix)
    }

    /// `hw:{user_id}`: partition → highest offset applied to this user's history (same slot).
    pub fn history_watermarks(&self, user_id: &str) -> String {
        format!("{}hw:{{{user_id}}}", self.prefix)
    }

    /// Every history key (a `SCAN MATCH` pattern).
    pub fn histories(&self) -> String {
        format!("{}h:{{*", self.prefix)
    }

    /// `item:{item_id}` (content) or `aligned:{item_id}` (aligned): an item embedding hash.
    pub fn item(&self, item_id: &str, space: EmbeddingSpace) -> String {
        let kind = match space {
            EmbeddingSpace::Content => "item",
            EmbeddingSpace::Aligned => "aligned",
        };
        format!("{}{kind}:{item_id}", self.prefix)
    }

    /// `ih`: the item registry (item-id hash → id) of compact history entries.
    pub fn item_registry(&self) -> String {
        format!("{}ih", self.prefix)
    }

    /// `user:{user_id}`: a user embedding hash (in the user's slot).
    pub fn user(&self, user_id: &str) -> String {
        format!("{}user:{{{user_id}}}", self.prefix)
    }

    /// `{control}:model`: the current towers (version, manifest, weights).
    pub fn model(&self) -> String {
        format!("{}{{control}}:model", self.prefix)
    }

    /// `{control}:retired`: the last model lineage `learn model reset` retired (kept for a look or a
    /// restore by hand; nothing reads it).
    pub fn retired_model(&self) -> String {
        format!("{}{{control}}:retired", self.prefix)
    }

    /// `{control}:leader`: the trainer lock.
    pub fn leader(&self) -> String {
        format!("{}{{control}}:leader", self.prefix)
    }

    /// `{control}:leader_epoch`: the fencing token, incremented on every acquisition of the lock.
    pub fn leader_epoch(&self) -> String {
        format!("{}{{control}}:leader_epoch", self.prefix)
    }

    /// `pop:{shard}`: one shard of the decayed popularity counts.
    pub fn popularity(&self, shard: u64) -> String {
        format!("{}pop:{{{shard}}}", self.prefix)
    }

    /// `wm:{topic}`: partition → highest offset handled.
    pub fn watermarks(&self, topic: &str) -> String {
        format!("{}wm:{topic}", self.prefix)
    }
}
