//! Shared, decayed item popularity. Each count decays with a half-life and is kept with the time it
//! was last brought to (`count:ms`); readers decay it to now. In Redis: 16 hashes `pop:{0}` …
//! `pop:{15}` (an item's shard from its id; the shards spread over a cluster's slots), written by
//! one script call per shard (`add_popularity.lua`, the same decay as [`decayed`]) and read whole.

use std::collections::HashMap;

use super::connection::Group;
use super::redis::RedisStore;
use super::StoreError;

const SHARDS: u64 = 16;

/// `count` as of `at_ms`, decayed to `now_ms` (half-life `half_life_ms`; 0 = never decays).
pub(super) fn decayed(count: f64, at_ms: i64, now_ms: i64, half_life_ms: u64) -> f64 {
    if half_life_ms == 0 || now_ms <= at_ms {
        return count;
    }
    count * (-((now_ms - at_ms) as f64) / half_life_ms as f64).exp2()
}

fn shard(item_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(item_id.as_bytes()) % SHARDS
}

/// `count:ms` → (count, ms).
fn parse(value: &str) -> Option<(f64, i64)> {
    let (count, at) = value.split_once(':')?;
    Some((count.parse().ok()?, at.parse().ok()?))
}

impl RedisStore {
    pub(super) async fn add_popularity_counts(
        &self,
        deltas: &[(String, f64)],
        now_ms: i64,
        half_life_ms: u64,
    ) -> Result<(), StoreError> {
        let mut shards: HashMap<u64, Vec<&(String, f64)>> = HashMap::new();
        for delta in deltas {
            shards.entry(shard(&delta.0)).or_default().push(delta);
        }
        futures::future::try_join_all(shards.into_iter().map(|(shard, deltas)| {
            let mut invocation = self.popularity_script.key(self.keys.popularity(shard));
            invocation.arg(now_ms).arg(half_life_ms);
            for (item, delta) in deltas {
                invocation.arg(item).arg(*delta);
            }
            let mut conn = self.connection.conn();
            async move { invocation.invoke_async::<()>(&mut conn).await }
        }))
        .await?;
        Ok(())
    }

    pub(super) async fn popularity_counts(
        &self,
        now_ms: i64,
        half_life_ms: u64,
    ) -> Result<HashMap<String, f64>, StoreError> {
        let cmds: Vec<(Group, redis::Cmd)> = (0..SHARDS)
            .map(|shard| {
                let key = self.keys.popularity(shard);
                (
                    self.connection.slot(&key),
                    redis::cmd("HGETALL").arg(&key).clone(),
                )
            })
            .collect();
        let mut counts = HashMap::new();
        for value in self.connection.query_each(cmds).await? {
            let shard: HashMap<String, String> = redis::from_redis_value(value)?;
            for (item, value) in shard {
                if let Some((count, at)) = parse(&value) {
                    counts.insert(item, decayed(count, at, now_ms, half_life_ms));
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_halves_every_half_life_and_never_grows() {
        assert_eq!(decayed(8.0, 1000, 4000, 1000), 1.0);
        assert_eq!(decayed(8.0, 1000, 4000, 0), 8.0, "no decay");
        assert_eq!(
            decayed(8.0, 5000, 4000, 1000),
            8.0,
            "a clock behind the count"
        );
        assert_eq!(parse("2.5:17"), Some((2.5, 17)));
        assert_eq!(parse("2.5"), None);
        assert!(shard("any item") < SHARDS);
    }
}
