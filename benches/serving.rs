//! Serving cost at catalogue sizes 10^4 and 10^5 (random content vectors of MiniLM's width, the
//! default tower shape, untrained weights: the cost does not depend on them): building a new
//! version's aligned index (what a model swap does before it serves), and one recommendation
//! (user tower + scoring the whole catalogue + popularity prior + top 10) — the CPU part of
//! `GET /v1/recommend`. Run: `cargo bench --bench serving`. The HTTP path under load, with
//! ingestion side by side, is `scripts/bench-http.sh`.

use candle_core::Device;
use candle_nn::VarMap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use learn_stream::config::Config;
use learn_stream::schemas::{now_ms, Action, UserAction};
use learn_stream::serving::recommend::{score, user_rows, Prior, Sources};
use learn_stream::serving::{Catalogue, ItemCounts, Models, ServingModel, Which};
use learn_stream::store::{HistoryPolicy, MemoryStore, PartitionBatch, Store};
use learn_stream::towers::{Tower, TowerInput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 384;

fn model(version: u64, seed: u64) -> ServingModel {
    let config = Config::load(None).unwrap();
    let varmap = VarMap::new();
    let tower = Tower::new(
        &config.towers,
        TowerInput::Features { dim: DIM },
        &varmap,
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

fn catalogue(items: usize) -> Catalogue {
    let mut rng = StdRng::seed_from_u64(1);
    let catalogue = Catalogue::new(DIM);
    for n in 0..items {
        let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
        catalogue.insert(&format!("i{n}"), &v);
    }
    catalogue
}

fn serving(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for items in [10_000usize, 100_000] {
        let catalogue = catalogue(items);
        let mut group = c.benchmark_group(format!("serving/{items}"));
        group.sample_size(10);

        let mut version = 1;
        group.throughput(Throughput::Elements(items as u64));
        group.bench_function(BenchmarkId::new("index_build", items), |b| {
            let models = Models::new(model(0, 1), model(0, 2), "bench".into());
            b.iter(|| {
                version += 1;
                assert!(models.swap(model(version, 3), &catalogue).unwrap());
            })
        });

        let models = Models::new(model(0, 1), model(0, 2), "bench".into());
        models.swap(model(1, 3), &catalogue).unwrap();
        let store = MemoryStore::new(HistoryPolicy {
            cap: 200,
            ttl_ms: 0,
            dedupe_window: 0,
        });
        let actions = (0..50)
            .map(|n| {
                let action = UserAction {
                    event_id: format!("e{n}"),
                    user_id: "u".into(),
                    item_id: format!("i{}", n * 37 % items),
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
                read_up_to: 49,
            }))
            .unwrap();
        let counts = ItemCounts::default();
        counts.observe(
            (0..items)
                .step_by(3)
                .map(|n| format!("i{n}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        let sources = Sources {
            store: &store,
            catalogue: &catalogue,
            models: &models,
            prior: Some(Prior {
                counts: &counts,
                weight: 1.0,
                logit_scale: 20.0,
            }),
            history_cap: 200,
        };
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("recommend", items), |b| {
            b.iter(|| {
                let rows = runtime.block_on(user_rows(&sources, "u")).unwrap();
                let rec = score(&sources, rows, 10, Which::Current).unwrap();
                assert_eq!(rec.items.len(), 10);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, serving);
criterion_main!(benches);
