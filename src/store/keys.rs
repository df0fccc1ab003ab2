//! Every Redis key the store writes, built in one place (all under `redis.key_prefix`).

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

    /// `h:{user_id}`: the user's history list.
    pub fn history(&self, user_id: &str) -> String {
        format!("{}h:{user_id}", self.prefix)
    }

    /// Every history key (a `SCAN MATCH` pattern).
    pub fn histories(&self) -> String {
        format!("{}h:*", self.prefix)
    }

    /// `item:{item_id}` (content) or `aligned:{item_id}` (aligned): an item embedding hash.
    pub fn item(&self, item_id: &str, space: EmbeddingSpace) -> String {
        let kind = match space {
            EmbeddingSpace::Content => "item",
            EmbeddingSpace::Aligned => "aligned",
        };
        format!("{}{kind}:{item_id}", self.prefix)
    }

    /// `items`: the set of ids with a content embedding.
    /// `ih`: the item registry (item-id hash → id) of compact history entries.
    pub fn item_registry(&self) -> String {
        format!("{}ih", self.prefix)
    }

    pub fn items(&self) -> String {
        format!("{}items", self.prefix)
    }

    /// `user:{user_id}`: a user embedding hash.
    pub fn user(&self, user_id: &str) -> String {
        format!("{}user:{user_id}", self.prefix)
    }

    /// `model`: the current towers (version, manifest, state).
    pub fn model(&self) -> String {
        format!("{}model", self.prefix)
    }

    /// `leader`: the trainer lock.
    pub fn leader(&self) -> String {
        format!("{}leader", self.prefix)
    }

    /// `leader_epoch`: the fencing token, incremented on every acquisition of the lock.
    pub fn leader_epoch(&self) -> String {
        format!("{}leader_epoch", self.prefix)
    }

    /// `wm:{topic}`: partition → highest offset handled.
    pub fn watermarks(&self, topic: &str) -> String {
        format!("{}wm:{topic}", self.prefix)
    }
}
