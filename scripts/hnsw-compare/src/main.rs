//! Build time, query latency and recall@100 of an HNSW index (hnsw_rs: M 16, ef_construction 100,
//! ef 200, both cores inserting) over N random unit vectors of width 64 — the comparison behind the
//! aligned index's int8 scan (docs/operations.md, "Large catalogues").
use hnsw_rs::prelude::*;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dim = 64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let data: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect();
    let started = Instant::now();
    let hnsw = Hnsw::<f32, DistDot>::new(16, n, 16, 100, DistDot {});
    let refs: Vec<(&Vec<f32>, usize)> = data.iter().enumerate().map(|(i, v)| (v, i)).collect();
    hnsw.parallel_insert(&refs);
    let build = started.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut hits = 0;
    for _ in 0..100 {
        let q: Vec<f32> = {
            let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        };
        let t = Instant::now();
        let found = hnsw.search(&q, 100, 200);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let mut exact: Vec<(usize, f32)> = data.iter().enumerate().map(|(i, v)| (i, v.iter().zip(&q).map(|(a, b)| a * b).sum())).collect();
        exact.select_nth_unstable_by(99, |a, b| b.1.total_cmp(&a.1));
        let truth: std::collections::HashSet<usize> = exact[..100].iter().map(|e| e.0).collect();
        hits += found.iter().filter(|nb| truth.contains(&nb.d_id)).count();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("hnsw_rs {n} × {dim}: build {build:.1} s (2 threads, M 16, ef_c 100); query p50 {:.2} ms p99 {:.2} ms (ef 200); recall@100 {:.3}", times[50], times[98], hits as f64 / 10000.0);
}
