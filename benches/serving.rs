//! Serving cost at catalogue sizes 10^4 and 10^5 (random content vectors of MiniLM's width, the
//! default tower shape, untrained weights: the cost does not depend on them): building a new
//! version's aligned index (what a model swap does before it serves), and one recommendation
//! (user tower + scoring the whole catalogue + popularity prior + top 10) — the CPU part of
//! `GET /v1/recommend`. Run: `cargo bench --bench serving`. The HTTP path under load, with
//! ingestion side by side, is `scripts/bench-http.sh`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use learn_stream::serving::recommend::{score, user_rows};
use learn_stream::serving::{Models, Which};
use rand::rngs::StdRng;
use rand::SeedableRng;

mod support;

fn serving(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for items in [10_000usize, 100_000] {
        let catalogue = support::catalogue(items, &mut StdRng::seed_from_u64(1));
        let mut group = c.benchmark_group(format!("serving/{items}"));
        group.sample_size(10);

        let mut version = 1;
        group.throughput(Throughput::Elements(items as u64));
        group.bench_function(BenchmarkId::new("index_build", items), |b| {
            let models = Models::new(support::model(0, 1), support::model(0, 2), "bench".into());
            b.iter(|| {
                version += 1;
                assert!(models.swap(support::model(version, 3), &catalogue).unwrap());
            })
        });

        let models = Models::new(support::model(0, 1), support::model(0, 2), "bench".into());
        models.swap(support::model(1, 3), &catalogue).unwrap();
        let views = (0..50)
            .map(|n| ("u".to_string(), format!("i{}", n * 37 % items)))
            .collect();
        let store = support::store_with(&runtime, views);
        let counts = support::counts(items);
        let sources = support::sources(&store, &catalogue, &models, &counts);
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
