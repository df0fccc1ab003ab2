//! Frozen-encoder throughput (items/s) at batch 1, 16 and 64 on the committed product titles
//! (`tests/fixtures/encoder/titles.json`), native kernels and candle, 1 and 2 threads, for every
//! model present: all-MiniLM-L6-v2 (`scripts/fetch-model.sh`) and SmolLM2-135M
//! (`scripts/fetch-model.sh smollm2`). Run: `cargo bench --bench encoder`. The comparison with
//! onnxruntime on the same texts is `scripts/bench-encoder.sh`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use learn_stream::config::{Config, EncoderBackend, EncoderConfig};
use learn_stream::encode::ContentEncoder;

fn encoder(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let titles: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/encoder/titles.json")).unwrap(),
    )
    .unwrap();
    for model in [
        "models/all-MiniLM-L6-v2",
        "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    ] {
        for backend in [EncoderBackend::Native, EncoderBackend::Candle] {
            for threads in [1, 2] {
                let config = EncoderConfig {
                    model_dir: root.join(model),
                    backend,
                    threads,
                    max_batch: 64,
                    cache_entries: 0,
                    ..Config::load(None).unwrap().encoder
                };
                let encoder = match ContentEncoder::from_config(&config) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("skipping {model}: {e}");
                        continue;
                    }
                };
                let name = format!("{}/{backend:?}/{threads}t", encoder.model_id()).to_lowercase();
                let mut group = c.benchmark_group(name);
                group.sample_size(10);
                for batch in [1usize, 16, 64] {
                    let inputs: Vec<String> = titles.iter().cycle().take(batch).cloned().collect();
                    group.throughput(Throughput::Elements(batch as u64));
                    group.bench_with_input(
                        BenchmarkId::from_parameter(batch),
                        &inputs,
                        |b, inputs| b.iter(|| encoder.embed(inputs).expect("embed")),
                    );
                }
                group.finish();
            }
        }
    }
}

criterion_group!(benches, encoder);
criterion_main!(benches);
