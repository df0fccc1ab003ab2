//! Redis implementation of [`Store`]. Keys (all under `redis.key_prefix`):
//! - `h:{user_id}`: list of encoded [`HistoryEntry`], oldest first, capped and with a TTL;
//! - `wm:{topic}`: hash partition → highest applied offset (the replay watermark);
//! - `item:{item_id}`: hash with `model`, `space`, `version`, `dim`, `ts_ms` and `vec` (little-endian f32).
//!
//! History writes run as one Lua script per partition batch, so the appends and the watermark move
//! together. The script touches keys of many users, so it needs a single Redis node (or a
//! primary/replica pair); Redis Cluster would need one hash tag per partition.

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::{HistoryEntry, HistoryPolicy, PartitionBatch, Store, StoreError};
use crate::schemas::{EmbeddingSpace, ItemEmbedding};

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    policy: HistoryPolicy,
    apply_script: Script,
}

impl RedisStore {
    pub async fn connect(
        url: &str,
        prefix: &str,
        policy: HistoryPolicy,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            policy,
            apply_script: Script::new(include_str!("apply_actions.lua")),
        })
    }

    fn history_key(&self, user_id: &str) -> String {
        format!("{}h:{}", self.prefix, user_id)
    }

    fn item_key(&self, item_id: &str) -> String {
        format!("{}item:{}", self.prefix, item_id)
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

impl Store for RedisStore {
    async fn apply_actions(&self, batch: &PartitionBatch) -> Result<usize, StoreError> {
        if batch.actions.is_empty() {
            return Ok(0);
        }
        let mut invocation = self.apply_script.prepare_invoke();
        invocation
            .key(self.watermark_key(&batch.topic))
            .arg(batch.partition)
            .arg(self.policy.cap)
            .arg(self.policy.ttl_ms);
        for (offset, action) in &batch.actions {
            invocation
                .key(self.history_key(&action.user_id))
                .arg(*offset)
                .arg(HistoryEntry::from(action).encode());
        }
        let mut conn = self.conn.clone();
        let applied: usize = invocation.invoke_async(&mut conn).await?;
        Ok(applied)
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
        for e in embeddings {
            let space = match e.space {
                EmbeddingSpace::Content => "content",
                EmbeddingSpace::Aligned => "aligned",
            };
            pipe.hset_multiple(
                self.item_key(&e.item_id),
                &[
                    ("model", e.model.as_bytes().to_vec()),
                    ("space", space.as_bytes().to_vec()),
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

    async fn item_embedding(&self, item_id: &str) -> Result<Option<ItemEmbedding>, StoreError> {
        let key = self.item_key(item_id);
        let mut conn = self.conn.clone();
        let fields: std::collections::HashMap<String, Vec<u8>> = conn.hgetall(&key).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let text = |name: &str| -> Result<String, StoreError> {
            let bytes = fields
                .get(name)
                .ok_or_else(|| corrupt(&key, format!("missing field {name}")))?;
            String::from_utf8(bytes.clone())
                .map_err(|_| corrupt(&key, format!("field {name} is not UTF-8")))
        };
        let number = |name: &str| -> Result<i64, StoreError> {
            text(name)?
                .parse()
                .map_err(|_| corrupt(&key, format!("field {name} is not a number")))
        };
        let space = match text("space")?.as_str() {
            "content" => EmbeddingSpace::Content,
            "aligned" => EmbeddingSpace::Aligned,
            other => return Err(corrupt(&key, format!("unknown space {other}"))),
        };
        let raw = fields
            .get("vec")
            .ok_or_else(|| corrupt(&key, "missing field vec"))?;
        if raw.len() % 4 != 0 {
            return Err(corrupt(&key, "vec length is not a multiple of 4"));
        }
        let vector: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Some(ItemEmbedding {
            item_id: item_id.to_string(),
            model: text("model")?,
            space,
            dim: number("dim")? as usize,
            vector,
            version: number("version")? as u64,
            ts_ms: number("ts_ms")?,
        }))
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
