//! Redis implementation of [`Store`]. Keys (all under `redis.key_prefix`):
//! - `h:{user_id}`: list of stored [`HistoryEntry`] (compact 12-byte or older forms, see
//!   `entry.rs`), oldest first, capped and with a TTL; a resend is an entry equal to one of the
//!   user's last `history.dedupe_window`;
//! - `ih`: the item registry, item key → id, for compact entries (`registry.rs`);
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
use redis::{AsyncCommands, ClientTlsConfig, Script, TlsCertificates};

use super::entry::{ItemKey, StoredEntry};
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
    /// For the blocking watermark read of the rebalance callback.
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    policy: HistoryPolicy,
    registry: ItemRegistry,
    apply_script: Script,
    advance_script: Script,
    publish_script: Script,
    lead_script: Script,
}

impl RedisStore {
    pub async fn connect(
        url: &str,
        prefix: &str,
        policy: HistoryPolicy,
    ) -> Result<Self, StoreError> {
        Self::with_client(redis::Client::open(url)?, prefix, policy).await
    }

    /// Connects as `[redis]` says: plain or TLS (`rediss://`, with a private CA and a client
    /// certificate when configured).
    pub async fn open(config: &RedisConfig, policy: HistoryPolicy) -> Result<Self, StoreError> {
        let read = |path: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, StoreError> {
            path.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| StoreError::Tls(format!("{}: {e}", p.display())))
                })
                .transpose()
        };
        let (ca, cert, key) = (
            read(&config.tls_ca_file)?,
            read(&config.tls_cert_file)?,
            read(&config.tls_key_file)?,
        );
        let client = if ca.is_none() && cert.is_none() {
            redis::Client::open(config.url.as_str())?
        } else {
            let client_tls = cert
                .zip(key)
                .map(|(client_cert, client_key)| ClientTlsConfig {
                    client_cert,
                    client_key,
                });
            redis::Client::build_with_tls(
                config.url.as_str(),
                TlsCertificates {
                    client_tls,
                    root_cert: ca,
                },
            )?
        };
        Self::with_client(client, &config.key_prefix, policy).await
    }

    async fn with_client(
        client: redis::Client,
        prefix: &str,
        policy: HistoryPolicy,
    ) -> Result<Self, StoreError> {
        let conn = ConnectionManager::new(client.clone()).await?;
        Ok(Self {
            client,
            conn,
            keys: Keys::new(prefix),
            registry: ItemRegistry::new(Keys::new(prefix).item_registry()),
            policy,
            apply_script: Script::new(include_str!("apply_actions.lua")),
            advance_script: Script::new(include_str!("advance_watermarks.lua")),
            publish_script: Script::new(include_str!("publish_model.lua")),
            lead_script: Script::new(include_str!("lead.lua")),
        })
    }

    /// The hash under `key`, or None when it does not exist.
    async fn read_hash<'a>(&self, key: &'a str) -> Result<Option<Fields<'a>>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, Vec<u8>> = conn.hgetall(key).await?;
        Ok((!fields.is_empty()).then_some(Fields { key, fields }))
    }
}

impl Store for RedisStore {
    async fn apply_actions(&self, batch: &PartitionBatch) -> Result<Applied, StoreError> {
        let mut conn = self.conn.clone();
        // The ids first: an entry is never readable before its item id is.
        let collided = self
            .registry
            .register(
                &mut conn,
                batch.actions.iter().map(|(_, a)| a.item_id.as_str()),
            )
            .await?;
        let mut invocation = self.apply_script.prepare_invoke();
        invocation
            .key(self.keys.watermarks(&batch.topic))
            .arg(batch.partition)
            .arg(self.policy.cap)
            .arg(self.policy.ttl_ms)
            .arg(self.policy.dedupe_window)
            .arg(batch.read_up_to);
        for (offset, action) in &batch.actions {
            let compact = !collided.contains(action.item_id.as_str());
            invocation
                .key(self.keys.history(&action.user_id))
                .arg(*offset)
                .arg(HistoryEntry::from(action).encode_for_store(compact));
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        let [applied, duplicates, refused @ ..] = reply.as_slice() else {
            return Err(corrupt(
                &self.keys.watermarks(&batch.topic),
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
        let key = self.keys.history(user_id);
        let mut conn = self.conn.clone();
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

    async fn put_item_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        let items_key = self.keys.items();
        for e in embeddings {
            if e.space == EmbeddingSpace::Content {
                pipe.sadd(&items_key, &e.item_id).ignore();
            }
            pipe.hset_multiple(self.keys.item(&e.item_id, e.space), &item_to_fields(e))
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
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
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hgetall(key);
        }
        let mut conn = self.conn.clone();
        let hashes: Vec<HashMap<String, Vec<u8>>> = pipe.query_async(&mut conn).await?;
        item_ids
            .iter()
            .zip(&keys)
            .zip(hashes)
            .map(|((id, key), fields)| {
                if fields.is_empty() {
                    return Ok(None);
                }
                item_from_fields(id, space, &Fields { key, fields }).map(Some)
            })
            .collect()
    }

    async fn item_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.smembers(self.keys.items()).await?)
    }

    async fn put_user_embeddings(&self, embeddings: &[UserEmbedding]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for e in embeddings {
            let key = self.keys.user(&e.user_id);
            pipe.hset_multiple(&key, &user_to_fields(e)).ignore();
            if self.policy.ttl_ms > 0 {
                pipe.pexpire(&key, self.policy.ttl_ms as i64).ignore();
            }
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
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
        let mut conn = self.conn.clone();
        Ok(conn.hgetall(self.keys.watermarks(topic)).await?)
    }

    fn watermarks_blocking(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        let mut conn = self
            .client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))?;
        Ok(redis::Commands::hgetall(
            &mut conn,
            self.keys.watermarks(topic),
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
        let mut invocation = self.advance_script.key(self.keys.watermarks(topic));
        for (partition, offset) in offsets {
            invocation.arg(*partition).arg(*offset);
        }
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
        let written: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(match written {
            1 => Publication::Published,
            0 => Publication::Superseded,
            _ => Publication::NotLeader,
        })
    }

    async fn model_version(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
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
        model_from_fields(&fields).map(Some)
    }

    async fn try_lead(&self, instance: &str, ttl_ms: u64) -> Result<Option<Fence>, StoreError> {
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn user_count(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let mut iter: redis::AsyncIter<String> = conn.scan_match(self.keys.histories()).await?;
        let mut count = 0;
        while let Some(item) = futures::StreamExt::next(&mut iter).await {
            item?;
            count += 1;
        }
        Ok(count)
    }
}
