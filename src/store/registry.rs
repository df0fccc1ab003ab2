//! The item registry (`ih`: an item's [`ItemKey`] field → its id), through which compact history
//! entries get their item ids back. An id is registered (`HSETNX`, idempotent) before the first
//! script that writes an entry for it, on the same connection, so any state of Redis that holds
//! the entry holds its id too (an RDB snapshot is a point in time, the AOF keeps the order).
//! `HSETNX` keeps the first id of a key; a later id whose 48-bit key collides with it (≈ 2·10⁻³
//! for a million items, ~1 in 10⁵ items at 10⁸) is told so by the `HGET` beside it and its entries
//! are written as text. A process-local LRU remembers the keys already registered or resolved, so
//! steady traffic adds no round trip.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use super::connection::Conn;
use super::entry::ItemKey;
use super::StoreError;

/// Keys remembered per process (registered or resolved).
const REMEMBERED: usize = 200_000;

#[derive(Clone)]
pub struct ItemRegistry {
    key: String,
    known: Arc<Mutex<lru::LruCache<ItemKey, String>>>,
}

impl ItemRegistry {
    pub fn new(key: String) -> Self {
        let capacity = NonZeroUsize::new(REMEMBERED).expect("not zero");
        Self {
            key,
            known: Arc::new(Mutex::new(lru::LruCache::new(capacity))),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, lru::LruCache<ItemKey, String>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the ids whose keys this process has not seen yet; returns the ids whose key
    /// holds another id (collisions: their entries are written as text).
    pub async fn register<'a>(
        &self,
        conn: &mut Conn,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<HashSet<&'a str>, StoreError> {
        let mut collided = HashSet::new();
        let mut fresh: Vec<(ItemKey, &str)> = Vec::new();
        {
            let mut known = self.known();
            for id in ids {
                let key = ItemKey::of(id);
                match known.get(&key) {
                    Some(registered) if registered == id => {}
                    Some(_) => drop(collided.insert(id)),
                    None => fresh.push((key, id)),
                }
            }
        }
        fresh.sort_unstable_by_key(|&(_, id)| id);
        fresh.dedup();
        if fresh.is_empty() {
            return Ok(collided);
        }
        let mut pipe = redis::pipe();
        for (key, id) in &fresh {
            let field = key.field();
            pipe.hset_nx(&self.key, &field, *id)
                .ignore()
                .hget(&self.key, &field);
        }
        let registered: Vec<String> = pipe.query_async(conn).await?;
        let mut known = self.known();
        for ((key, id), registered) in fresh.into_iter().zip(registered) {
            if registered != id {
                collided.insert(id);
            }
            known.put(key, registered);
        }
        Ok(collided)
    }

    /// The ids of `keys` (known ones from memory, the rest with one `HMGET`); a key the registry
    /// lacks is a corrupt entry.
    pub async fn resolve(
        &self,
        conn: &mut Conn,
        keys: &[ItemKey],
    ) -> Result<HashMap<ItemKey, String>, StoreError> {
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let mut known = self.known();
            for &key in keys {
                match known.get(&key) {
                    Some(id) => drop(out.insert(key, id.clone())),
                    None => missing.push(key),
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(out);
        }
        let fields: Vec<Vec<u8>> = missing.iter().map(|k| k.field()).collect();
        let ids: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&self.key)
            .arg(&fields)
            .query_async(conn)
            .await?;
        let mut known = self.known();
        for (key, id) in missing.into_iter().zip(ids) {
            let id = id.ok_or_else(|| StoreError::Corrupt {
                key: self.key.clone(),
                reason: format!("no item id registered for key {:02x?}", key.field()),
            })?;
            known.put(key, id.clone());
            out.insert(key, id);
        }
        Ok(out)
    }
}
