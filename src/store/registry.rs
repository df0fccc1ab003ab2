//! The item registry (`ih`: an item id's xxh3-64, 8 bytes big-endian → the id), through which
//! compact history entries get their item ids back. An id is registered (`HSETNX`, idempotent)
//! before the first script that writes an entry for it, on the same connection, so any state of
//! Redis that holds the entry holds its id too (an RDB snapshot is a point in time, the AOF keeps
//! the order). `HSETNX` keeps the first id of a hash: two ids colliding in 64 bits (≈ 3·10⁻⁸ for
//! a million items) would read as the first. A process-local LRU remembers ids already registered
//! and resolved, so steady traffic adds no round trip.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use redis::aio::ConnectionManager;

use super::entry::item_hash;
use super::StoreError;

/// Ids remembered per process (registered or resolved).
const REMEMBERED: usize = 200_000;

#[derive(Clone)]
pub struct ItemRegistry {
    key: String,
    known: Arc<Mutex<lru::LruCache<u64, String>>>,
}

impl ItemRegistry {
    pub fn new(key: String) -> Self {
        let capacity = NonZeroUsize::new(REMEMBERED).expect("not zero");
        Self {
            key,
            known: Arc::new(Mutex::new(lru::LruCache::new(capacity))),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, lru::LruCache<u64, String>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the ids this process has not registered (or resolved) yet.
    pub async fn register<'a>(
        &self,
        conn: &mut ConnectionManager,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let fresh: HashMap<u64, &str> = {
            let mut known = self.known();
            ids.map(|id| (item_hash(id), id))
                .filter(|(hash, _)| known.get(hash).is_none())
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (hash, id) in &fresh {
            pipe.hset_nx(&self.key, hash.to_be_bytes().as_slice(), *id)
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
        let mut known = self.known();
        for (hash, id) in fresh {
            known.put(hash, id.to_string());
        }
        Ok(())
    }

    /// The ids of `hashes` (known ones from memory, the rest with one `HMGET`); a hash the
    /// registry lacks is a corrupt entry.
    pub async fn resolve(
        &self,
        conn: &mut ConnectionManager,
        hashes: &[u64],
    ) -> Result<HashMap<u64, String>, StoreError> {
        let mut out = HashMap::with_capacity(hashes.len());
        let mut missing = Vec::new();
        {
            let mut known = self.known();
            for &hash in hashes {
                match known.get(&hash) {
                    Some(id) => drop(out.insert(hash, id.clone())),
                    None => missing.push(hash),
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(out);
        }
        let fields: Vec<Vec<u8>> = missing.iter().map(|h| h.to_be_bytes().to_vec()).collect();
        let ids: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&self.key)
            .arg(&fields)
            .query_async(conn)
            .await?;
        let mut known = self.known();
        for (hash, id) in missing.into_iter().zip(ids) {
            let id = id.ok_or_else(|| StoreError::Corrupt {
                key: self.key.clone(),
                reason: format!("no item id registered for hash {hash:016x}"),
            })?;
            known.put(hash, id.clone());
            out.insert(hash, id);
        }
        Ok(out)
    }
}
