//! Frozen-encoder throughput (items/s) at batch 1, 16 and 64 on product-title-like texts.
//! Needs the model: `scripts/fetch-model.sh` (or LEARN_MODEL_DIR). Run: `cargo bench --bench encoder`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use learn_stream::encode::ContentEncoder;

const WORDS: [&str; 16] = [
    "digital",
    "caliper",
    "stainless",
    "steel",
    "thermometer",
    "lab",
    "goggles",
    "anti-fog",
    "pipette",
    "glass",
    "beaker",
    "microscope",
    "slide",
    "kit",
    "safety",
    "gloves",
];

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let len = 6 + (i * 7) % 14;
            let words: Vec<&str> = (0..len)
                .map(|j| WORDS[(i * 3 + j * 5) % WORDS.len()])
                .collect();
            format!(
                "Title: {}. Brand: Brand{}. Category: Lab Supplies",
                words.join(" "),
                i % 9
            )
        })
        .collect()
}

fn encoder(c: &mut Criterion) {
    let dir = std::env::var_os("LEARN_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2")
        });
    let encoder = match ContentEncoder::load(&dir, "minilm".into(), 256, 64) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipping encoder bench: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("encoder_items");
    group.sample_size(10);
    for batch in [1usize, 16, 64] {
        let inputs = texts(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &inputs, |b, inputs| {
            b.iter(|| encoder.embed(inputs).expect("embed"))
        });
    }
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
