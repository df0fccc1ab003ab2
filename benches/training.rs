//! Training-step throughput: the continual trainer's online step (default batch 64) and the
//! offline trainer's step (default batch 512) on a synthetic catalogue of MiniLM-width content
//! vectors, with the default towers and recipe. One configuration per process, so that its peak
//! memory is its own:
//!
//! ```sh
//! cargo bench --bench training -- online 4385 [--batch 64] [--steps 10]
//! cargo bench --bench training -- offline 20000 [--batch 512] [--steps 5]
//! ```
//!
//! Prints one JSON line: first step, median steady step, steps/s, training pairs/s, peak RSS.
//! `scripts/bench-train.sh` runs it beside the PyTorch reference of the same step
//! (`scripts/train_reference.py`) and, optionally, a former build, alternating run by run.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use learn_stream::config::Config;
use learn_stream::towers::{Tower, TowerInput};
use learn_stream::train::adamw::{AdamW, AdamWParams};
use learn_stream::train::negatives::{Pool, Universe};
use learn_stream::train::offline::{batch_loss, sorted_vars};
use learn_stream::train::online::{OnlineBatch, OnlineTrainer};
use learn_stream::train::rows::{effective_negatives, step_rows};
use learn_stream::train::schedule::clip_gradients;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// As in the `learn` binary: mimalloc, never purging freed memory (`src/main.rs`), so a step's
/// tensors reuse the previous step's pages instead of faulting fresh ones in.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn hold_freed_memory() {
    /// `mi_option_purge_delay` (see `src/main.rs`).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide allocator option; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

const CONTENT_DIM: usize = 384;
const CLUSTERS: usize = 50;
/// Offline sequences are 2..=this long (Scientific's average is about 8).
const OFFLINE_MAX_LEN: usize = 16;

struct Args {
    mode: String,
    items: usize,
    batch: usize,
    steps: usize,
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let flag = |name: &str| {
        raw.iter()
            .position(|a| a == name)
            .and_then(|i| raw.get(i + 1))
            .map(|v| v.parse::<usize>().expect("a number"))
    };
    let positional: Vec<&String> = raw
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !raw[i - 1].starts_with("--")))
        .map(|(_, a)| a)
        .collect();
    let mode = positional
        .first()
        .map_or("online".to_string(), |m| m.to_string());
    let offline = mode == "offline";
    Args {
        items: positional
            .get(1)
            .map_or(4385, |n| n.parse().expect("items")),
        batch: flag("--batch").unwrap_or(if offline { 512 } else { 64 }),
        steps: flag("--steps").unwrap_or(if offline { 5 } else { 10 }),
        mode,
    }
}

/// `items` unit vectors around `CLUSTERS` centres, row-major.
fn content(items: usize, rng: &mut StdRng) -> Vec<f32> {
    let gauss = |rng: &mut StdRng| -> f32 {
        let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    };
    let centres: Vec<f32> = (0..CLUSTERS * CONTENT_DIM).map(|_| gauss(rng)).collect();
    let mut table = Vec::with_capacity(items * CONTENT_DIM);
    for i in 0..items {
        let c = &centres[(i % CLUSTERS) * CONTENT_DIM..][..CONTENT_DIM];
        let row: Vec<f32> = c.iter().map(|x| x + 0.7 * gauss(rng)).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        table.extend(row.iter().map(|x| x / norm));
    }
    table
}

/// A user's sequence: items of one cluster (as rows), `len` long.
fn sequence(items: usize, len: usize, rng: &mut StdRng) -> Vec<u32> {
    let cluster = rng.random_range(0..CLUSTERS.min(items));
    let per = items.div_ceil(CLUSTERS);
    (0..len)
        .map(|_| {
            let k = rng.random_range(0..per);
            ((k * CLUSTERS + cluster) % items) as u32
        })
        .collect()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    hold_freed_memory();
    let args = args();
    let config = Config::load(None).expect("default config");
    let mut rng = StdRng::seed_from_u64(7);
    let table = content(args.items, &mut rng);
    let mut times = Vec::new();
    let mut pairs = Vec::new();
    match args.mode.as_str() {
        "online" => {
            let table = Tensor::from_vec(table, (args.items, CONTENT_DIM), &Device::Cpu).unwrap();
            let mut trainer = OnlineTrainer::new(
                &config.towers,
                CONTENT_DIM,
                &config.training,
                config.online.recent_targets,
            )
            .unwrap();
            let len = config.towers.max_len + config.online.recent_targets;
            for _ in 0..args.steps + 1 {
                let sequences: Vec<Vec<u32>> = (0..args.batch)
                    .map(|_| sequence(args.items, len, &mut rng))
                    .collect();
                let started = Instant::now();
                let batch = online_batch(&table, sequences, &config, &mut rng);
                let stepped = trainer.step(&batch, usize::MAX).unwrap();
                times.push(started.elapsed().as_secs_f64());
                pairs.push(stepped.map_or(0, |s| s.pairs));
            }
        }
        "offline" => {
            let table = Tensor::from_vec(table, (args.items, CONTENT_DIM), &Device::Cpu).unwrap();
            let varmap = VarMap::new();
            let tower = Tower::new(
                &config.towers,
                TowerInput::Content {
                    table,
                    trained: vec![true; args.items],
                },
                &varmap,
                config.training.seed,
                &Device::Cpu,
            )
            .unwrap();
            let vars: Vec<_> = sorted_vars(&varmap).into_iter().map(|(_, v)| v).collect();
            let mut optimizer = AdamW::new(
                vars.clone(),
                AdamWParams::new(config.training.lr, config.training.weight_decay),
            )
            .unwrap();
            let pool = Pool {
                items: Universe::Rows(args.items),
                drawn: &[],
                log_share: None,
            };
            let targets = config.training.target_spec();
            for _ in 0..args.steps + 1 {
                let samples: Vec<_> = (0..args.batch)
                    .flat_map(|_| {
                        let len = rng.random_range(2..=OFFLINE_MAX_LEN);
                        let s = sequence(args.items, len, &mut rng);
                        targets.epoch_samples(&s, config.towers.max_len, &mut rng)
                    })
                    .collect();
                let started = Instant::now();
                let loss = batch_loss(&tower, &samples, &config.training, &pool).unwrap();
                let mut grads = loss.backward().unwrap();
                clip_gradients(&mut grads, &vars, config.training.clip_norm).unwrap();
                optimizer.step(&grads).unwrap();
                times.push(started.elapsed().as_secs_f64());
                pairs.push(samples.iter().map(|s| s.pairs.len()).sum::<usize>());
            }
        }
        other => panic!("unknown mode {other}: online | offline"),
    }
    report(&args, &times, &pairs);
}

/// The trainer task's batch (`service/trainer/batch.rs`): the whole catalogue up to
/// `online.full_softmax_items`, else the batch's items + uniform draws; uniform popularity.
fn online_batch(
    table: &Tensor,
    sequences: Vec<Vec<u32>>,
    config: &Config,
    rng: &mut StdRng,
) -> OnlineBatch {
    let items = table.dim(0).unwrap();
    let training = &config.training;
    let negatives =
        effective_negatives(training.negatives, items, config.online.full_softmax_items);
    let step = step_rows(&sequences, items, negatives, training.negative_samples, rng);
    let rows = Tensor::from_vec(step.rows.clone(), step.rows.len(), &Device::Cpu).unwrap();
    OnlineBatch {
        table: table.index_select(&rows, 0).unwrap(),
        negatives: step.negatives,
        sequences: step.sequences,
        fresh: Vec::new(),
        drawn: step.drawn,
        catalogue_items: items,
        log_share: training
            .logq_correction
            .then(|| vec![(1.0 / items as f32).ln(); step.rows.len()]),
    }
}

/// `times` and `pairs` per step; the first step is reported on its own.
fn report(args: &Args, times: &[f64], pairs: &[usize]) {
    let first = times[0];
    let mut steady = times[1..].to_vec();
    steady.sort_by(f64::total_cmp);
    let median = steady[steady.len() / 2];
    let total: f64 = times[1..].iter().sum();
    println!(
        "{{\"impl\":\"learn-stream\",\"mode\":\"{}\",\"items\":{},\"batch\":{},\"steps\":{},\"first_step_s\":{:.4},\"step_s\":{:.4},\"steps_per_s\":{:.3},\"pairs_per_s\":{:.1},\"peak_rss_mb\":{:.0}}}",
        args.mode,
        args.items,
        args.batch,
        steady.len(),
        first,
        median,
        1.0 / median,
        pairs[1..].iter().sum::<usize>() as f64 / total,
        peak_rss_mb()
    );
}
