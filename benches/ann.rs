//! Large-catalogue retrieval, side by side in one run: the aligned index's query (`top`: int8 scan
//! of every row + exact re-scoring of the best candidates, above `EXACT_ROWS` rows) against an exact
//! f32 scan of every row with a full selection (what `/v1/recommend` did before), at k = 100 with a
//! popularity prior on every row. Random unit vectors of the towers' width (64) stand in for a
//! catalogue's aligned vectors. Prints latency percentiles over 300 queries, recall@100 against the
//! exact scan, the cost of appending one new item, and memory per item. Then the CPU part of
//! `GET /v1/recommend` end to end at the same size: a catalogue of random MiniLM-width content
//! vectors, a new version's index built through the (untrained, default-shape) item tower, and
//! per request the history read, the user tower, the query with the popularity prior and the
//! history filter, k = 100.
//! Run: `cargo bench --bench ann [-- ITEMS]` (default 1,000,000; ~2 GB of memory at that size).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use learn_stream::serving::recommend::{score, user_rows};
use learn_stream::serving::{AlignedIndex, Models, Which, EXACT_ROWS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod support;

const DIM: usize = 64;
const K: usize = 100;
const QUERIES: usize = 300;
const USERS: usize = 100;

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn percentile(times: &mut [Duration], q: f64) -> f64 {
    times.sort();
    times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
}

fn main() {
    let items: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = StdRng::seed_from_u64(5);
    let vectors: Vec<Vec<f32>> = (0..items).map(|_| unit(&mut rng)).collect();
    // A popularity prior per row (weight / logit_scale · ln q), as ranking adds it.
    let prior: Vec<f32> = (0..items)
        .map(|_| rng.random_range(-12.0f32..-4.0) / 20.0)
        .collect();
    let rows: Vec<u32> = (0..items as u32).collect();
    let started = Instant::now();
    let index = AlignedIndex::empty(DIM).with_rows(&rows, &vectors);
    let build = started.elapsed();

    let (mut fast, mut exact, mut hits) = (Vec::new(), Vec::new(), 0);
    for _ in 0..QUERIES {
        let user = unit(&mut rng);
        let started = Instant::now();
        let found = index.top(&user, |row| prior[row], K);
        fast.push(started.elapsed());

        let started = Instant::now();
        let mut all: Vec<(u32, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let dot: f32 = v.iter().zip(&user).map(|(a, b)| a * b).sum();
                (row as u32, dot + prior[row])
            })
            .collect();
        all.select_nth_unstable_by(K - 1, |a, b| b.1.total_cmp(&a.1));
        all.truncate(K);
        exact.push(started.elapsed());
        let truth: HashSet<u32> = all.iter().map(|e| e.0).collect();
        hits += found.iter().filter(|(row, _)| truth.contains(row)).count();
    }
    let started = Instant::now();
    let appended = index.with_rows(&[items as u32], &[unit(&mut rng)]);
    let append = started.elapsed();
    assert_eq!(appended.rows(), items + 1);

    let path = if items > EXACT_ROWS {
        "int8 scan + exact re-scoring"
    } else {
        "exact scan (below EXACT_ROWS)"
    };
    println!("{items} items × {DIM} dims, k = {K}, {QUERIES} queries, one thread");
    println!("| query | p50 ms | p99 ms | recall@{K} |");
    println!("|---|---|---|---|");
    println!(
        "| index.top ({path}) | {:.2} | {:.2} | {:.4} |",
        percentile(&mut fast, 0.5),
        percentile(&mut fast, 0.99),
        hits as f64 / (QUERIES * K) as f64
    );
    println!(
        "| exact f32 scan of every row + selection | {:.2} | {:.2} | 1 |",
        percentile(&mut exact, 0.5),
        percentile(&mut exact, 0.99)
    );
    println!(
        "p50 ratio exact / index.top: {:.2}×",
        percentile(&mut exact, 0.5) / percentile(&mut fast, 0.5)
    );
    println!(
        "index build {:.2} s (quantisation included); appending one new item {:.0} µs; {} bytes per item in the index",
        build.as_secs_f64(),
        append.as_secs_f64() * 1e6,
        index.bytes_per_row()
    );
    recommend_end_to_end(items, &mut rng);
}

/// The CPU part of `/v1/recommend` at `items`: history, user tower, query, prior, filter.
fn recommend_end_to_end(items: usize, rng: &mut StdRng) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let catalogue = support::catalogue(items, rng);
    let models = Models::new(support::model(0, 3), support::model(0, 3), "bench".into());
    let started = Instant::now();
    models.swap(support::model(1, 3), &catalogue).unwrap();
    let build = started.elapsed();
    let views = (0..USERS * 50)
        .map(|n| {
            (
                format!("u{}", n % USERS),
                format!("i{}", rng.random_range(0..items)),
            )
        })
        .collect();
    let store = support::store_with(&runtime, views);
    let counts = support::counts(items);
    let sources = support::sources(&store, &catalogue, &models, &counts);
    counts.refresh_rows(&catalogue);
    let mut times = Vec::new();
    for n in 0..3 * USERS {
        let started = Instant::now();
        let rows = runtime
            .block_on(user_rows(&sources, &format!("u{}", n % USERS)))
            .unwrap();
        let rec = score(&sources, rows, K, Which::Current).unwrap();
        times.push(started.elapsed());
        assert_eq!(rec.items.len(), K);
    }
    println!(
        "recommend end to end (CPU, k = {K}, 50-item histories, {} requests): p50 {:.2} ms, p99 {:.2} ms; a new version's index over {items} items (item tower + codes) {:.1} s",
        times.len(),
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.99),
        build.as_secs_f64()
    );
}
