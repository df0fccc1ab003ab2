//! RedisStore against a real redis-server, each test on a single node and on a three-primary Redis
//! Cluster: replay-safe appends, cap, TTL, embeddings round trip, the published model and the
//! leader lock.

mod common;

use common::RawConn;

use learn_stream::config::RedisConfig;
use learn_stream::schemas::{Action, EmbeddingSpace, ItemEmbedding, UserAction, UserEmbedding};
use learn_stream::store::{
    Fence, HistoryPolicy, ItemKey, PartitionBatch, Publication, RedisStore, Store, StoredModel,
};

fn batch(partition: i32, offsets: std::ops::Range<i64>) -> PartitionBatch {
    let read_up_to = offsets.end - 1;
    PartitionBatch {
        read_up_to,
        topic: "actions".into(),
        partition,
        actions: offsets
            .map(|o| {
                let action = UserAction {
                    event_id: format!("e{partition}-{o}"),
                    user_id: format!("u{}", o % 2),
                    item_id: format!("p{partition}i{o}"),
                    action: Action::Like,
                    ts_ms: o,
                    watch_ms: None,
                };
                (o, action)
            })
            .collect(),
    }
}

fn policy(cap: usize, ttl_ms: u64) -> HistoryPolicy {
    HistoryPolicy {
        cap,
        ttl_ms,
        dedupe_window: 4,
    }
}

/// The store on each Redis (single node, cluster), with a raw connection, its key prefix and its
/// `[redis]`.
async fn stores(cap: usize, ttl_ms: u64) -> Vec<(RedisStore, RawConn, String, RedisConfig)> {
    let prefix = format!("{}:", common::unique("store"));
    let mut out = Vec::new();
    for config in common::redis_backends(&prefix) {
        let store = RedisStore::open(&config, policy(cap, ttl_ms))
            .await
            .expect("redis");
        out.push((store, RawConn::open(&config).await, prefix.clone(), config));
    }
    out
}

fn items(entries: Vec<learn_stream::store::HistoryEntry>) -> Vec<String> {
    entries.into_iter().map(|e| e.item_id).collect()
}

#[tokio::test]
async fn replayed_offsets_are_not_appended_twice() {
    for (store, _, _, _) in stores(100, 0).await {
        assert_eq!(
            store.apply_actions(&batch(0, 0..6)).await.unwrap().appended,
            [0, 1, 2, 3, 4, 5]
        );
        // A crash before the commit redelivers 2..6 together with new offsets 6..10.
        let again = store.apply_actions(&batch(0, 2..10)).await.unwrap();
        assert_eq!(
            (again.appended, again.replayed),
            (vec![4, 5, 6, 7], 4),
            "offsets 6..10 appended (what counts actions counts only these)"
        );
        // Another partition has its own watermark.
        assert_eq!(
            store.apply_actions(&batch(1, 0..2)).await.unwrap().appended,
            [0, 1]
        );
        assert_eq!(
            items(store.history("u0", 100).await.unwrap()),
            ["p0i0", "p0i2", "p0i4", "p0i6", "p0i8", "p1i0"]
        );
    }
}

#[tokio::test]
async fn history_is_capped_and_expires() {
    for (store, mut conn, prefix, _) in stores(3, 60_000).await {
        store.apply_actions(&batch(0, 0..10)).await.unwrap();
        assert_eq!(
            items(store.history("u1", 100).await.unwrap()),
            ["p0i5", "p0i7", "p0i9"]
        );
        assert_eq!(
            items(store.history("u1", 2).await.unwrap()),
            ["p0i7", "p0i9"]
        );
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}h:{{u1}}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=60_000).contains(&ttl), "ttl {ttl}");
        assert!(store.history("nobody", 10).await.unwrap().is_empty());
        assert_eq!(store.user_count().await.unwrap(), 2);
    }
}

#[tokio::test]
async fn item_embeddings_round_trip() {
    for (store, _, _, _) in stores(10, 0).await {
        let e = ItemEmbedding {
            item_id: "v:1".into(),
            model: "all-MiniLM-L6-v2".into(),
            space: EmbeddingSpace::Content,
            dim: 3,
            vector: vec![0.6, -0.8, 1e-7],
            version: 0,
            ts_ms: 123,
        };
        store
            .put_item_embeddings(std::slice::from_ref(&e))
            .await
            .unwrap();
        let aligned = ItemEmbedding {
            model: "learn-towers/all-MiniLM-L6-v2".into(),
            space: EmbeddingSpace::Aligned,
            dim: 2,
            vector: vec![1.0, 0.0],
            version: 4,
            ..e.clone()
        };
        store
            .put_item_embeddings(std::slice::from_ref(&aligned))
            .await
            .unwrap();
        assert_eq!(
            store
                .item_embedding("v:1", EmbeddingSpace::Content)
                .await
                .unwrap(),
            Some(e),
            "content and aligned vectors live side by side"
        );
        assert_eq!(
            store
                .item_embedding("v:1", EmbeddingSpace::Aligned)
                .await
                .unwrap(),
            Some(aligned)
        );
        assert_eq!(
            store
                .item_embedding("missing", EmbeddingSpace::Content)
                .await
                .unwrap(),
            None
        );

        let user = UserEmbedding {
            user_id: "u1".into(),
            model: "learn-towers/m".into(),
            dim: 2,
            vector: vec![0.6, 0.8],
            version: 4,
            history_len: 7,
            ts_ms: 5,
        };
        store
            .put_user_embeddings(std::slice::from_ref(&user))
            .await
            .unwrap();
        assert_eq!(store.user_embedding("u1").await.unwrap(), Some(user));
    }
}

#[tokio::test]
async fn model_registry_and_leader_lock() {
    for (store, _, _, _) in stores(10, 0).await {
        assert_eq!(store.model_version().await.unwrap(), None);
        let a = store
            .try_lead("a", 300)
            .await
            .unwrap()
            .expect("a free lock is taken");
        assert_eq!(store.try_lead("b", 300).await.unwrap(), None, "held by a");
        assert_eq!(
            store.try_lead("a", 300).await.unwrap().as_ref(),
            Some(&a),
            "a renews, same epoch"
        );
        let model = StoredModel {
            version: 3,
            manifest: b"{}".to_vec(),
            state: vec![0, 1, 2, 255],
        };
        assert_eq!(
            store.publish_model(&model, &a).await.unwrap(),
            Publication::Published
        );
        assert_eq!(store.model_version().await.unwrap(), Some(3));
        assert_eq!(store.current_model().await.unwrap(), Some(model.clone()));
        // Its own version 3 again (or an older one) is superseded: one model per version.
        let rival = StoredModel {
            state: vec![9, 9],
            ..model.clone()
        };
        assert_eq!(
            store.publish_model(&rival, &a).await.unwrap(),
            Publication::Superseded
        );
        let older = StoredModel {
            version: 2,
            ..rival.clone()
        };
        assert_eq!(
            store.publish_model(&older, &a).await.unwrap(),
            Publication::Superseded
        );
        assert_eq!(store.current_model().await.unwrap(), Some(model.clone()));
        // b does not hold the lock: whatever its version, it is not the leader.
        let b_fence = Fence {
            instance: "b".into(),
            epoch: a.epoch,
        };
        let newer = StoredModel {
            version: 4,
            ..rival.clone()
        };
        assert_eq!(
            store.publish_model(&newer, &b_fence).await.unwrap(),
            Publication::NotLeader
        );

        // a's lease lapses, b takes over (a new epoch), then a takes the lock back: a's old term is
        // fenced although a holds the lock again.
        tokio::time::sleep(std::time::Duration::from_millis(450)).await;
        let b = store
            .try_lead("b", 300)
            .await
            .unwrap()
            .expect("expired: b takes over");
        assert!(b.epoch > a.epoch, "a new epoch per acquisition");
        assert_eq!(
            store.publish_model(&newer, &a).await.unwrap(),
            Publication::NotLeader
        );
        assert_eq!(
            store.publish_model(&newer, &b).await.unwrap(),
            Publication::Published
        );
        tokio::time::sleep(std::time::Duration::from_millis(450)).await;
        let a_again = store
            .try_lead("a", 300)
            .await
            .unwrap()
            .expect("expired: a takes it back");
        assert!(a_again.epoch > b.epoch);
        let stale = StoredModel {
            version: 5,
            ..model
        };
        assert_eq!(
            store.publish_model(&stale, &a).await.unwrap(),
            Publication::NotLeader,
            "a's old epoch"
        );
        assert_eq!(
            store.publish_model(&stale, &a_again).await.unwrap(),
            Publication::Published
        );
        assert_eq!(store.model_version().await.unwrap(), Some(5));
    }
}

#[tokio::test]
async fn resends_are_skipped_within_the_window() {
    for (store, _, _, _) in stores(100, 0).await {
        store.apply_actions(&batch(0, 0..4)).await.unwrap();
        // The producer resends offsets 0..2's events at new offsets 10..12.
        let first = batch(0, 0..2);
        let mut resend = batch(0, 10..12);
        for ((_, action), (_, original)) in resend.actions.iter_mut().zip(&first.actions) {
            *action = original.clone();
        }
        let applied = store.apply_actions(&resend).await.unwrap();
        assert_eq!((applied.appended.len(), applied.duplicates), (0, 2));
        assert_eq!(
            items(store.history("u0", 100).await.unwrap()),
            ["p0i0", "p0i2"]
        );
        assert_eq!(store.watermarks("actions").await.unwrap()[&0], 11);
        // The same item and action at another millisecond is a new event.
        let mut again = batch(0, 12..13);
        again.actions[0].1 = UserAction {
            ts_ms: first.actions[0].1.ts_ms + 1,
            ..first.actions[0].1.clone()
        };
        assert_eq!(store.apply_actions(&again).await.unwrap().appended, [0]);
    }
}

#[tokio::test]
async fn compact_entries_round_trip_and_a_colliding_item_is_written_as_text() {
    for (store, mut conn, prefix, config) in stores(100, 0).await {
        // Another id already holds the registry key of item "clash" (a 48-bit collision).
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}ih"))
            .arg(ItemKey::of("clash").field())
            .arg("first")
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut b = batch(0, 0..3);
        for (i, (_, a)) in b.actions.iter_mut().enumerate() {
            a.user_id = "u9".into();
            a.ts_ms = 1_700_000_000_000 + i as i64;
        }
        b.actions[1].1.item_id = "clash".into();
        assert_eq!(store.apply_actions(&b).await.unwrap().appended, [0, 1, 2]);
        let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(format!("{prefix}h:{{u9}}"))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        let lengths: Vec<usize> = raw.iter().map(Vec::len).collect();
        assert_eq!(lengths, [12, "1700000000001:l:clash".len(), 12]);
        // This process (ids remembered) and a fresh one (ids from the registry) read the same.
        let other = RedisStore::open(&config, policy(100, 0)).await.unwrap();
        for s in [&store, &other] {
            let history = s.history("u9", 10).await.unwrap();
            assert_eq!(items(history.clone()), ["p0i0", "clash", "p0i2"]);
            assert_eq!(history[1].ts_ms, 1_700_000_000_001);
        }
    }
}

#[tokio::test]
async fn a_key_of_another_type_refuses_only_its_actions() {
    for (store, mut conn, prefix, _) in stores(100, 0).await {
        // Someone wrote a string where user u1's history lives.
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}h:{{u1}}"))
            .arg("not a list")
            .query_async(&mut conn)
            .await
            .unwrap();
        let applied = store.apply_actions(&batch(0, 0..4)).await.unwrap();
        assert_eq!(applied.appended, [0, 2], "u0's actions are written");
        assert_eq!(
            applied.refused,
            [1, 3],
            "u1's actions (odd offsets) are refused"
        );
        assert_eq!(
            items(store.history("u0", 100).await.unwrap()),
            ["p0i0", "p0i2"]
        );
        // A replay refuses them again (the dead letter is not lost), and writes nothing twice.
        let again = store.apply_actions(&batch(0, 0..4)).await.unwrap();
        assert_eq!((again.appended.len(), again.refused.len()), (0, 2));
    }
}

#[tokio::test]
async fn watermarks_move_up_only_and_cover_dead_lettered_offsets() {
    for (store, _, _, _) in stores(100, 0).await {
        // Offsets 4..8 of the batch were dead-lettered: the watermark still covers them.
        let mut b = batch(0, 0..4);
        b.read_up_to = 7;
        store.apply_actions(&b).await.unwrap();
        let advance = |p: i32, o: i64| std::collections::BTreeMap::from([(p, o)]);
        store
            .advance_watermarks("actions", &advance(0, 5))
            .await
            .unwrap();
        store
            .advance_watermarks("actions", &advance(1, 3))
            .await
            .unwrap();
        let expected = std::collections::BTreeMap::from([(0, 7), (1, 3)]);
        assert_eq!(store.watermarks("actions").await.unwrap(), expected);
        let blocking = tokio::task::spawn_blocking(move || store.watermarks_blocking("actions"));
        assert_eq!(blocking.await.unwrap().unwrap(), expected);
    }
}

#[tokio::test]
async fn a_batch_over_many_slots_is_exact_and_a_lost_resume_point_replays_nothing() {
    for (store, mut conn, prefix, config) in stores(100, 0).await {
        // 200 actions of 40 users: on the cluster, a script per slot on all three primaries.
        let mut b = batch(2, 0..200);
        for (offset, action) in &mut b.actions {
            action.user_id = format!("user-{}", *offset % 40);
        }
        assert_eq!(
            store.apply_actions(&b).await.unwrap().appended,
            (0..200).collect::<Vec<_>>(),
            "every action appended, by its batch index"
        );
        if config.cluster {
            // A crash after the slots were written but before the resume point moved: the
            // consumer resumes from the old point and the whole batch comes again. (On a single
            // node the point moves inside the batch's one script: it cannot lag the histories.)
            let _: () = redis::cmd("DEL")
                .arg(format!("{prefix}wm:actions"))
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let again = store.apply_actions(&b).await.unwrap();
        assert_eq!((again.appended.len(), again.replayed), (0, 200));
        for user in 0..40 {
            let expected: Vec<String> = (0..200)
                .filter(|o| o % 40 == user)
                .map(|o| format!("p2i{o}"))
                .collect();
            let history = store.history(&format!("user-{user}"), 100).await.unwrap();
            assert_eq!(items(history), expected, "user-{user}");
        }
        assert_eq!(store.watermarks("actions").await.unwrap()[&2], 199);
        assert_eq!(store.user_count().await.unwrap(), 40);
    }
}

#[tokio::test]
async fn popularity_is_shared_decayed_and_summed() {
    for (store, _, _, config) in stores(10, 0).await {
        let other = RedisStore::open(&config, policy(10, 0)).await.unwrap();
        let deltas = |pairs: &[(&str, f64)]| -> Vec<(String, f64)> {
            pairs.iter().map(|&(i, d)| (i.to_string(), d)).collect()
        };
        let (t0, half) = (1_000_000, 1000);
        // Two processes add their counts; 40 items so that every shard is written.
        let many: Vec<(String, f64)> = (0..40).map(|i| (format!("i{i}"), 1.0)).collect();
        store.add_popularity(&many, t0, half).await.unwrap();
        store
            .add_popularity(&deltas(&[("a", 2.0), ("b", 1.0)]), t0, half)
            .await
            .unwrap();
        other
            .add_popularity(&deltas(&[("a", 2.0)]), t0, half)
            .await
            .unwrap();
        let now = other.popularity(t0, half).await.unwrap();
        assert_eq!((now["a"], now["b"], now.len()), (4.0, 1.0, 42));
        // One half-life later everything has halved; an addition then counts in full.
        let later = store.popularity(t0 + half as i64, half).await.unwrap();
        assert_eq!((later["a"], later["b"], later["i7"]), (2.0, 0.5, 0.5));
        store
            .add_popularity(&deltas(&[("b", 1.0)]), t0 + half as i64, half)
            .await
            .unwrap();
        let after = store.popularity(t0 + 2 * half as i64, half).await.unwrap();
        assert_eq!((after["a"], after["b"]), (1.0, 0.75));
        // A writer whose clock is behind adds a decayed delta; nothing goes back in time.
        other
            .add_popularity(&deltas(&[("b", 1.0)]), t0, half)
            .await
            .unwrap();
        let behind = store.popularity(t0 + half as i64, half).await.unwrap();
        assert_eq!(behind["b"], 1.5 + 0.5);
    }
}
