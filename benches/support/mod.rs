//! What the serving benchmarks share: untrained default towers over MiniLM-width content, a random
//! catalogue, histories in the memory store, and a popularity prior.
#![allow(dead_code)]

use candle_core::Device;
use candle_nn::VarMap;
use learn_stream::config::Config;
use learn_stream::schemas::{now_ms, Action, UserAction};
use learn_stream::serving::recommend::{Prior, Sources};
use learn_stream::serving::{Catalogue, ItemCounts, Models, ServingModel};
use learn_stream::store::{HistoryPolicy, MemoryStore, PartitionBatch, Store};
use learn_stream::towers::{Tower, TowerInput};
use rand::rngs::StdRng;
use rand::Rng;

/// The content width of MiniLM-L6 (the default encoder).
pub const CONTENT_DIM: usize = 384;

/// The default towers, untrained (serving cost does not depend on the weights).
pub fn model(version: u64, seed: u64) -> ServingModel {
    let config = Config::load(None).unwrap();
    let tower = Tower::new(
        &config.towers,
        TowerInput::Features { dim: CONTENT_DIM },
        &VarMap::new(),
        seed,
        &Device::Cpu,
    )
    .unwrap();
    ServingModel {
        version,
        tower,
        created_ms: now_ms(),
    }
}

/// `items` random content vectors, ids `i<n>`.
pub fn catalogue(items: usize, rng: &mut StdRng) -> Catalogue {
    let catalogue = Catalogue::new(CONTENT_DIM);
    for n in 0..items {
        let v: Vec<f32> = (0..CONTENT_DIM)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        catalogue.insert(&format!("i{n}"), &v);
    }
    catalogue
}

/// A memory store holding `(user, item)` views in this order.
pub fn store_with(runtime: &tokio::runtime::Runtime, views: Vec<(String, String)>) -> MemoryStore {
    let store = MemoryStore::new(HistoryPolicy {
        cap: 200,
        ttl_ms: 0,
        dedupe_window: 0,
    });
    let read_up_to = views.len() as i64;
    let actions = views
        .into_iter()
        .enumerate()
        .map(|(n, (user_id, item_id))| {
            let action = UserAction {
                event_id: format!("e{n}"),
                user_id,
                item_id,
                action: Action::View,
                ts_ms: n as i64,
                watch_ms: None,
            };
            (n as i64, action)
        })
        .collect();
    runtime
        .block_on(store.apply_actions(&PartitionBatch {
            topic: "actions".into(),
            partition: 0,
            actions,
            read_up_to,
        }))
        .unwrap();
    store
}

/// Popularity with every third item acted on once.
pub fn counts(items: usize) -> ItemCounts {
    let counts = ItemCounts::default();
    let popular: Vec<String> = (0..items).step_by(3).map(|n| format!("i{n}")).collect();
    counts.observe(popular.iter().map(String::as_str));
    counts
}

/// What a recommendation reads, with the popularity prior at weight 1 (the default).
pub fn sources<'a>(
    store: &'a MemoryStore,
    catalogue: &'a Catalogue,
    models: &'a Models,
    counts: &'a ItemCounts,
) -> Sources<'a, MemoryStore> {
    Sources {
        store,
        catalogue,
        models,
        prior: Some(Prior {
            counts,
            weight: 1.0,
            logit_scale: 20.0,
        }),
        history_cap: 200,
    }
}
