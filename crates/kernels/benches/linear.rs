//! The panel kernel against the plain `gemm` route on MiniLM's layer shapes, for one upload
//! (25 tokens), 16 and 64 uploads (400 and 1,600 tokens), 1 and 2 threads.
//! Run: `cargo bench -p learn-kernels --bench linear`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use learn_kernels::linear::Linear;

fn linear(c: &mut Criterion) {
    for (outputs, inputs) in [(1152usize, 384usize), (1536, 384), (384, 1536)] {
        let w: Vec<f32> = (0..outputs * inputs)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) * 0.001)
            .collect();
        let layers = [
            (
                "panel",
                Linear::new(&w, Some(vec![0.1; outputs]), outputs, inputs),
            ),
            (
                "gemm",
                Linear::with_gemm(&w, Some(vec![0.1; outputs]), outputs, inputs),
            ),
        ];
        for threads in [1usize, 2] {
            let team = learn_kernels::Team::new(threads);
            let mut group = c.benchmark_group(format!("linear_{inputs}x{outputs}_{threads}t"));
            group.sample_size(20);
            for m in [25usize, 400, 1600] {
                let x: Vec<f32> = (0..m * inputs)
                    .map(|i| ((i * 17 % 53) as f32 - 26.0) * 0.02)
                    .collect();
                let mut y = vec![0f32; m * outputs];
                group.throughput(Throughput::Elements((2 * m * inputs * outputs) as u64));
                for (name, layer) in &layers {
                    group.bench_function(BenchmarkId::new(*name, m), |b| {
                        b.iter(|| layer.forward(&team, &x, m, &mut y, false))
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, linear);
criterion_main!(benches);
