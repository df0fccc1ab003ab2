//! Redis implementation of [`Store`], on one node or a Redis Cluster ([`super::connection`]).
//! Keys (all under `redis.key_prefix`, layout in `keys.rs`):
//! - `h:{user_id}`: list of stored [`HistoryEntry`] (compact 12-byte or older forms, see
//!   `entry.rs`), oldest first, capped and with a TTL; a resend is an entry equal to one of the
//!   user's last `history.dedupe_window`;
//! - `hw:{user_id}` (cluster only): hash partition → highest offset applied to that user (the
//!   replay guard there), in the history's slot and with its TTL;
//! - `ih`: the item registry, item key → id, for compact entries (`registry.rs`);
//! - `wm:{topic}`: hash partition → highest offset handled (the resume point: the consumer resumes
//!   right after it on assignment; on a single node also the replay guard, moved in the batch's
//!   script; on a cluster moved after every slot of the batch is written);
//! - `item:{item_id}` (content) and `aligned:{item_id}` (aligned): hash with `model`, `space`,
//!   `version`, `dim`, `ts_ms` and `vec` (little-endian f32);
//! - `user:{user_id}`: hash with `model`, `version`, `dim`, `history_len`, `ts_ms`, `vec`;
//! - `pop:{0}` … `pop:{15}`: item id → decayed action count `count:ms` (`popularity.rs`);
//! - `{control}:model`: hash with the current towers' `version`, `manifest` and `state`;
//! - `{control}:leader` / `{control}:leader_epoch`: the trainer lock and its fencing token.
//!
//! Histories are written and read in `histories.rs`, popularity in `popularity.rs`.

use std::collections::{BTreeMap, HashMap};

use redis::{AsyncCommands, Cmd, Script};

use super::connection::{Connection, Group};
use super::fields::{
    corrupt, item_from_fields, item_to_fields, model_from_fields, model_to_fields,
    user_from_fields, user_to_fields, Fields, MODEL_VERSION,
};
use super::keys::Keys;
use super::registry::ItemRegistry;
use super::{
    Applied, Fence, HistoryEntry, HistoryPolicy, PartitionBatch, Publication, Store, StoreError,
    StoredModel,
};
use crate::config::RedisConfig;
use crate::schemas::{EmbeddingSpace, ItemEmbedding, UserEmbedding};

#[derive(Clone)]
pub struct RedisStore {
    pub(super) connection: Connection,
    pub(super) keys: Keys,
    pub(super) policy: HistoryPolicy,
    pub(super) registry: ItemRegistry,
    pub(super) apply_script: Script,
    pub(super) batch_script: Script,
    advance_script: Script,
    publish_script: Script,
    lead_script: Script,
    retire_script: Script,
    pub(super) popularity_script: Script,
}

impl RedisStore {
    pub async fn connect(
        url: &str,
        prefix: &str,
        policy: HistoryPolicy,
    ) -> Result<Self, StoreError> {
        let connection = Connection::node(redis::Client::open(url)?).await?;
        Ok(Self::with(connection, prefix, policy))
    }

    /// Connects as `[redis]` says: one node or a cluster (`redis.cluster`, `url` a comma-separated
    /// list of seed nodes), plain or TLS (`rediss://`, with a private CA and a client certificate
    /// when configured).
    pub async fn open(config: &RedisConfig, policy: HistoryPolicy) -> Result<Self, StoreError> {
        let connection = Connection::open(config).await?;
        Ok(Self::with(connection, &config.key_prefix, policy))
    }

    fn with(connection: Connection, prefix: &str, policy: HistoryPolicy) -> Self {
        Self {
            connection,
            keys: Keys::new(prefix),
            registry: ItemRegistry::new(Keys::new(prefix).item_registry()),
            policy,
            apply_script: Script::new(concat!(
                include_str!("history_core.lua"),
                include_str!("apply_actions.lua")
            )),
            batch_script: Script::new(concat!(
                include_str!("history_core.lua"),
                include_str!("apply_batch.lua")
            )),
            advance_script: Script::new(include_str!("advance_watermarks.lua")),
            publish_script: Script::new(include_str!("publish_model.lua")),
            lead_script: Script::new(include_str!("lead.lua")),
            retire_script: Script::new(include_str!("retire_model.lua")),
            popularity_script: Script::new(include_str!("add_popularity.lua")),
        }
    }

    /// `cmd` tagged with the slot of `key`, for [`Connection::query_each`].
    fn on(&self, key: &str, cmd: &Cmd) -> (Group, Cmd) {
        (self.connection.slot(key), cmd.clone())
    }

    /// The hash under `key`, or None when it does not exist.
    async fn read_hash<'a>(&self, key: &'a str) -> Result<Option<Fields<'a>>, StoreError> {
        let mut conn = self.connection.conn();
        let fields: HashMap<String, Vec<u8>> = conn.hgetall(key).await?;
        Ok((!fields.is_empty()).then_some(Fields { key, fields }))
    }
}

impl Store for RedisStore {
    async fn apply_actions(&self, batch: &PartitionBatch) -> Result<Applied, StoreError> {
        self.apply_batch(batch).await
    }

    async fn history(&self, user_id: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read_history(user_id, limit).await
    }

    async fn put_item_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<(), StoreError> {
        let mut cmds = Vec::new();
        for e in embeddings {
            let key = self.keys.item(&e.item_id, e.space);
            let mut hset = redis::cmd("HSET");
            hset.arg(&key).arg(item_to_fields(e));
            cmds.push(self.on(&key, &hset));
        }
        self.connection.query_each(cmds).await?;
        Ok(())
    }

    async fn item_embeddings(
        &self,
        item_ids: &[String],
        space: EmbeddingSpace,
    ) -> Result<Vec<Option<ItemEmbedding>>, StoreError> {
        let keys: Vec<String> = item_ids
            .iter()
            .map(|id| self.keys.item(id, space))
            .collect();
        let cmds = keys
            .iter()
            .map(|key| self.on(key, redis::cmd("HGETALL").arg(key)))
            .collect();
        let hashes = self.connection.query_each(cmds).await?;
        item_ids
            .iter()
            .zip(&keys)
            .zip(hashes)
            .map(|((id, key), value)| {
                let fields: HashMap<String, Vec<u8>> = redis::from_redis_value(value)?;
                if fields.is_empty() {
                    return Ok(None);
                }
                item_from_fields(id, space, &Fields { key, fields }).map(Some)
            })
            .collect()
    }

    async fn delete_items(&self, item_ids: &[String]) -> Result<(), StoreError> {
        let mut cmds = Vec::new();
        for id in item_ids {
            for space in [EmbeddingSpace::Content, EmbeddingSpace::Aligned] {
                let key = self.keys.item(id, space);
                cmds.push(self.on(&key, redis::cmd("DEL").arg(&key)));
            }
        }
        self.connection.query_each(cmds).await?;
        Ok(())
    }

    async fn put_user_embeddings(&self, embeddings: &[UserEmbedding]) -> Result<(), StoreError> {
        let mut cmds = Vec::new();
        for e in embeddings {
            let key = self.keys.user(&e.user_id);
            cmds.push(self.on(&key, redis::cmd("HSET").arg(&key).arg(user_to_fields(e))));
            if self.policy.ttl_ms > 0 {
                cmds.push(self.on(
                    &key,
                    redis::cmd("PEXPIRE").arg(&key).arg(self.policy.ttl_ms),
                ));
            }
        }
        self.connection.query_each(cmds).await?;
        Ok(())
    }

    async fn user_embedding(&self, user_id: &str) -> Result<Option<UserEmbedding>, StoreError> {
        let key = self.keys.user(user_id);
        let Some(fields) = self.read_hash(&key).await? else {
            return Ok(None);
        };
        user_from_fields(user_id, &fields).map(Some)
    }

    async fn watermarks(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        let mut conn = self.connection.conn();
        Ok(conn.hgetall(self.keys.watermarks(topic)).await?)
    }

    fn watermarks_blocking(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        self.connection
            .hgetall_blocking(&self.keys.watermarks(topic))
    }

    async fn advance_watermarks(
        &self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> Result<(), StoreError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut invocation = self.advance_script.key(self.keys.watermarks(topic));
        for (partition, offset) in offsets {
            invocation.arg(*partition).arg(*offset);
        }
        let mut conn = self.connection.conn();
        invocation.invoke_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn publish_model(
        &self,
        model: &StoredModel,
        fence: &Fence,
    ) -> Result<Publication, StoreError> {
        let mut invocation = self.publish_script.key(self.keys.model());
        invocation
            .key(self.keys.leader())
            .arg(&fence.instance)
            .arg(fence.epoch)
            .arg(model.version);
        for (field, value) in model_to_fields(model) {
            invocation.arg(field).arg(value);
        }
        let mut conn = self.connection.conn();
        let written: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(match written {
            1 => Publication::Published,
            0 => Publication::Superseded,
            _ => Publication::NotLeader,
        })
    }

    async fn model_version(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.connection.conn();
        let version: Option<String> = conn.hget(self.keys.model(), MODEL_VERSION).await?;
        version
            .map(|v| {
                v.parse()
                    .map_err(|_| corrupt(&self.keys.model(), "version is not a number"))
            })
            .transpose()
    }

    async fn current_model(&self) -> Result<Option<StoredModel>, StoreError> {
        let key = self.keys.model();
        let Some(fields) = self.read_hash(&key).await? else {
            return Ok(None);
        };
        if !fields.fields.contains_key("manifest") {
            return Ok(None); // a retired lineage's version alone
        }
        model_from_fields(&fields).map(Some)
    }

    async fn retire_model(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.connection.conn();
        let version: u64 = self
            .retire_script
            .key(self.keys.model())
            .key(self.keys.retired_model())
            .invoke_async(&mut conn)
            .await?;
        Ok((version > 0).then_some(version))
    }

    async fn try_lead(&self, instance: &str, ttl_ms: u64) -> Result<Option<Fence>, StoreError> {
        let mut conn = self.connection.conn();
        let epoch: u64 = self
            .lead_script
            .key(self.keys.leader())
            .key(self.keys.leader_epoch())
            .arg(instance)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok((epoch > 0).then(|| Fence {
            instance: instance.to_string(),
            epoch,
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection.conn();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn eviction_policies(&self) -> Result<Vec<String>, StoreError> {
        let policies = self.connection.config_get("maxmemory-policy").await?;
        Ok(policies.into_iter().flatten().collect())
    }

    async fn user_count(&self) -> Result<usize, StoreError> {
        self.connection.count_keys(&self.keys.histories()).await
    }

    async fn add_popularity(
        &self,
        deltas: &[(String, f64)],
        now_ms: i64,
        half_life_ms: u64,
    ) -> Result<(), StoreError> {
        self.add_popularity_counts(deltas, now_ms, half_life_ms)
            .await
    }

    async fn popularity(
        &self,
        now_ms: i64,
        half_life_ms: u64,
    ) -> Result<HashMap<String, f64>, StoreError> {
        self.popularity_counts(now_ms, half_life_ms).await
    }
}
