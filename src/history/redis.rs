//! Redis implementation of [`Store`]. Keys (all under `redis.key_prefix`):
//! - `h:{user_id}`: list of encoded [`HistoryEntry`], oldest first, capped and with a TTL;
//! - `e:{user_id}`: list of the user's most recent event ids, newest first (`history.dedupe_window`);
//! - `wm:{topic}`: hash partition → highest offset handled (the replay watermark; the consumer
//!   resumes right after it on assignment);
//! - `item:{item_id}` (content) and `aligned:{item_id}` (aligned): hash with `model`, `space`,
//!   `version`, `dim`, `ts_ms` and `vec` (little-endian f32);
//! - `items`: set of the ids with a content embedding;
//! - `user:{user_id}`: hash with `model`, `version`, `dim`, `history_len`, `ts_ms`, `vec`;
//! - `model`: hash with the current towers' `version`, `manifest` and `state` (checkpoint bytes);
//! - `leader`: the instance holding the trainer lock (with a TTL).
//!
//! History writes run as one Lua script per partition batch, so the appends and the watermark move
//! together. The script touches keys of many users, so it needs a single Redis node (or a
//! primary/replica pair); Redis Cluster would need one hash tag per partition.

use std::collections::{BTreeMap, HashMap};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::{Applied, HistoryEntry, HistoryPolicy, PartitionBatch, Store, StoreError, StoredModel};
use crate::schemas::{EmbeddingSpace, ItemEmbedding, UserEmbedding};

#[derive(Clone)]
pub struct RedisStore {
    /// For the blocking watermark read of the rebalance callback.
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    policy: HistoryPolicy,
    apply_script: Script,
    advance_script: Script,
    lead_script: Script,
}

impl RedisStore {
    pub async fn connect(
        url: &str,
        prefix: &str,
        policy: HistoryPolicy,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client.clone()).await?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_string(),
            policy,
            apply_script: Script::new(include_str!("apply_actions.lua")),
            advance_script: Script::new(include_str!("advance_watermarks.lua")),
            lead_script: Script::new(include_str!("lead.lua")),
        })
    }

    fn history_key(&self, user_id: &str) -> String {
        format!("{}h:{}", self.prefix, user_id)
    }

    fn event_ids_key(&self, user_id: &str) -> String {
        format!("{}e:{}", self.prefix, user_id)
    }

    fn item_key(&self, item_id: &str, space: EmbeddingSpace) -> String {
        let kind = match space {
            EmbeddingSpace::Content => "item",
            EmbeddingSpace::Aligned => "aligned",
        };
        format!("{}{kind}:{item_id}", self.prefix)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}user:{user_id}", self.prefix)
    }

    /// The hash under `key`, or None when it does not exist.
    async fn read_hash<'a>(&self, key: &'a str) -> Result<Option<Fields<'a>>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, Vec<u8>> = conn.hgetall(key).await?;
        Ok((!fields.is_empty()).then_some(Fields { key, fields }))
    }

    fn watermark_key(&self, topic: &str) -> String {
        format!("{}wm:{}", self.prefix, topic)
    }
}

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The fields of one stored hash, read with the key for error messages.
struct Fields<'a> {
    key: &'a str,
    fields: HashMap<String, Vec<u8>>,
}

impl Fields<'_> {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        let bytes = self
            .fields
            .get(name)
            .ok_or_else(|| corrupt(self.key, format!("missing field {name}")))?;
        String::from_utf8(bytes.clone())
            .map_err(|_| corrupt(self.key, format!("field {name} is not UTF-8")))
    }

    fn number(&self, name: &str) -> Result<i64, StoreError> {
        self.text(name)?
            .parse()
            .map_err(|_| corrupt(self.key, format!("field {name} is not a number")))
    }

    fn vector(&self) -> Result<Vec<f32>, StoreError> {
        let raw = self
            .fields
            .get("vec")
            .ok_or_else(|| corrupt(self.key, "missing field vec"))?;
        if raw.len() % 4 != 0 {
            return Err(corrupt(self.key, "vec length is not a multiple of 4"));
        }
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

impl Store for RedisStore {
    async fn apply_actions(&self, batch: &PartitionBatch) -> Result<Applied, StoreError> {
        let mut invocation = self.apply_script.prepare_invoke();
        invocation
            .key(self.watermark_key(&batch.topic))
            .arg(batch.partition)
            .arg(self.policy.cap)
            .arg(self.policy.ttl_ms)
            .arg(self.policy.dedupe_window)
            .arg(batch.read_up_to);
        for (offset, action) in &batch.actions {
            invocation
                .key(self.history_key(&action.user_id))
                .key(self.event_ids_key(&action.user_id))
                .arg(*offset)
                .arg(HistoryEntry::from(action).encode())
                .arg(&action.event_id);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        let [applied, duplicates, refused @ ..] = reply.as_slice() else {
            return Err(corrupt(
                &self.watermark_key(&batch.topic),
                "short script reply",
            ));
        };
        let (applied, duplicates) = (*applied as usize, *duplicates as usize);
        let refused: Vec<usize> = refused.iter().map(|&i| i as usize).collect();
        Ok(Applied {
            applied,
            duplicates,
            replayed: batch.actions.len() - applied - duplicates - refused.len(),
            refused,
        })
    }

    async fn history(&self, user_id: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.history_key(user_id);
        let mut conn = self.conn.clone();
        let raw: Vec<String> = conn.lrange(&key, -(limit as isize), -1).await?;
        raw.iter()
            .map(|s| HistoryEntry::decode(s).ok_or_else(|| corrupt(&key, format!("entry `{s}`"))))
            .collect()
    }

    async fn put_item_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        let items_key = self.key("items");
        for e in embeddings {
            if e.space == EmbeddingSpace::Content {
                pipe.sadd(&items_key, &e.item_id).ignore();
            }
            pipe.hset_multiple(
                self.item_key(&e.item_id, e.space),
                &[
                    ("model", e.model.as_bytes().to_vec()),
                    ("space", e.space.as_str().as_bytes().to_vec()),
                    ("version", e.version.to_string().into_bytes()),
                    ("dim", e.dim.to_string().into_bytes()),
                    ("ts_ms", e.ts_ms.to_string().into_bytes()),
                    ("vec", vector_bytes(&e.vector)),
                ],
            )
            .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn item_embedding(
        &self,
        item_id: &str,
        space: EmbeddingSpace,
    ) -> Result<Option<ItemEmbedding>, StoreError> {
        let key = self.item_key(item_id, space);
        let Some(fields) = self.read_hash(&key).await? else {
            return Ok(None);
        };
        let stored = fields.text("space")?;
        if stored != space.as_str() {
            return Err(corrupt(
                &key,
                format!("space {stored} under a {} key", space.as_str()),
            ));
        }
        Ok(Some(ItemEmbedding {
            item_id: item_id.to_string(),
            model: fields.text("model")?,
            space,
            dim: fields.number("dim")? as usize,
            vector: fields.vector()?,
            version: fields.number("version")? as u64,
            ts_ms: fields.number("ts_ms")?,
        }))
    }

    async fn item_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.smembers(self.key("items")).await?)
    }

    async fn put_user_embeddings(&self, embeddings: &[UserEmbedding]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for e in embeddings {
            let key = self.user_key(&e.user_id);
            pipe.hset_multiple(
                &key,
                &[
                    ("model", e.model.as_bytes().to_vec()),
                    ("version", e.version.to_string().into_bytes()),
                    ("dim", e.dim.to_string().into_bytes()),
                    ("history_len", e.history_len.to_string().into_bytes()),
                    ("ts_ms", e.ts_ms.to_string().into_bytes()),
                    ("vec", vector_bytes(&e.vector)),
                ],
            )
            .ignore();
            if self.policy.ttl_ms > 0 {
                pipe.pexpire(&key, self.policy.ttl_ms as i64).ignore();
            }
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn user_embedding(&self, user_id: &str) -> Result<Option<UserEmbedding>, StoreError> {
        let key = self.user_key(user_id);
        let Some(fields) = self.read_hash(&key).await? else {
            return Ok(None);
        };
        Ok(Some(UserEmbedding {
            user_id: user_id.to_string(),
            model: fields.text("model")?,
            dim: fields.number("dim")? as usize,
            vector: fields.vector()?,
            version: fields.number("version")? as u64,
            history_len: fields.number("history_len")? as usize,
            ts_ms: fields.number("ts_ms")?,
        }))
    }

    async fn watermarks(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.hgetall(self.watermark_key(topic)).await?)
    }

    fn watermarks_blocking(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        let mut conn = self
            .client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))?;
        Ok(redis::Commands::hgetall(
            &mut conn,
            self.watermark_key(topic),
        )?)
    }

    async fn advance_watermarks(
        &self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> Result<(), StoreError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut invocation = self.advance_script.key(self.watermark_key(topic));
        for (partition, offset) in offsets {
            invocation.arg(*partition).arg(*offset);
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn publish_model(&self, model: &StoredModel) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset_multiple(
                self.key("model"),
                &[
                    ("version", model.version.to_string().into_bytes()),
                    ("manifest", model.manifest.clone()),
                    ("state", model.state.clone()),
                ],
            )
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn model_version(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
        let version: Option<String> = conn.hget(self.key("model"), "version").await?;
        version
            .map(|v| {
                v.parse()
                    .map_err(|_| corrupt(&self.key("model"), "version is not a number"))
            })
            .transpose()
    }

    async fn current_model(&self) -> Result<Option<StoredModel>, StoreError> {
        let key = self.key("model");
        let Some(fields) = self.read_hash(&key).await? else {
            return Ok(None);
        };
        let bytes = |name: &str| {
            fields
                .fields
                .get(name)
                .cloned()
                .ok_or_else(|| corrupt(&key, format!("missing field {name}")))
        };
        Ok(Some(StoredModel {
            version: fields.number("version")? as u64,
            manifest: bytes("manifest")?,
            state: bytes("state")?,
        }))
    }

    async fn try_lead(&self, instance: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let held: i64 = self
            .lead_script
            .key(self.key("leader"))
            .arg(instance)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    async fn user_count(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let mut iter: redis::AsyncIter<String> =
            conn.scan_match(format!("{}h:*", self.prefix)).await?;
        let mut count = 0;
        while let Some(item) = futures::StreamExt::next(&mut iter).await {
            item?;
            count += 1;
        }
        Ok(count)
    }
}
