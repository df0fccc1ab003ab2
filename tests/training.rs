//! The offline trainer on a small synthetic catalogue: a fixed seed gives bit-identical weights,
//! every (targets × negatives) recipe learns (loss falls, validation recall beats chance), and
//! early stopping leaves the best validation epoch's weights in place.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashSet;

use learn_stream::eval::scorers::TowerScorer;
use learn_stream::eval::{evaluate, leave_one_out, Split};
use learn_stream::towers::{AdapterKind, Tower, TowerInput, TowerSpec};
use learn_stream::train::stopping::should_stop;
use learn_stream::train::{train, Negatives, Targets, TrainReport, TrainingConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ITEMS: usize = 60;
const CLUSTERS: usize = 4;

/// Users walk through one cluster's items; content vectors carry the cluster plus noise.
fn data() -> (Split, Tensor) {
    let mut rng = StdRng::seed_from_u64(5);
    let sequences: Vec<Vec<u32>> = (0..200)
        .map(|u| {
            let cluster = u % CLUSTERS;
            (0..rng.random_range(5..12))
                .map(|_| (rng.random_range(0..ITEMS / CLUSTERS) * CLUSTERS + cluster) as u32)
                .collect()
        })
        .collect();
    let content: Vec<f32> = (0..ITEMS)
        .flat_map(|i| (0..8).map(move |d| if d == i % CLUSTERS { 1.0 } else { 0.0 }))
        .zip((0..ITEMS * 8).map(|_| rng.random_range(-0.3f32..0.3)))
        .map(|(a, b)| a + b)
        .collect();
    (
        leave_one_out(&sequences),
        Tensor::from_vec(content, (ITEMS, 8), &Device::Cpu).unwrap(),
    )
}

fn config(loss: Targets, negatives: Negatives) -> TrainingConfig {
    TrainingConfig {
        epochs: 4,
        batch_size: 32,
        lr: 1e-2,
        weight_decay: 0.01,
        warmup_frac: 0.1,
        clip_norm: 1.0,
        logit_scale: 10.0,
        loss,
        negatives,
        negative_samples: 8,
        logq_correction: true,
        history_positions: 4,
        target_items: 3,
        patience: 10,
        patience_window: 1,
        candidate_dropout: true,
        seed: 9,
    }
}

enum Input {
    Ids,
    Content,
    /// Content through the 2-layer MLP adapter (`towers.adapter = "mlp"`).
    ContentMlp,
    ContentAndIds,
}

struct Run {
    weights: Vec<(String, Vec<f32>)>,
    report: TrainReport,
    /// Validation NDCG@10 (nothing masked) of the weights left in place.
    final_ndcg: f64,
}

fn run(config: TrainingConfig, input: Input) -> Run {
    let (split, content) = data();
    let spec = TowerSpec {
        d_model: 16,
        heads: 2,
        layers: 1,
        out_dim: 8,
        max_len: 12,
        dropout: 0.1,
        attn_dropout: 0.1,
        item_ids: matches!(input, Input::ContentAndIds),
        id_dropout: 0.0,
        adapter: if matches!(input, Input::ContentMlp) {
            AdapterKind::Mlp
        } else {
            AdapterKind::Linear
        },
        pre_ln: true,
        // Content towers whiten their input, as by default.
        whiten: !matches!(input, Input::Ids),
        tied_items: false,
        normalise: true,
        output_head: true,
        init_std: None,
    };
    let varmap = VarMap::new();
    let input = match input {
        Input::Ids => TowerInput::Ids { items: ITEMS },
        _ => TowerInput::Content {
            table: content,
            trained: vec![true; ITEMS],
        },
    };
    let tower = Tower::new(&spec, input, &varmap, 9, &Device::Cpu).unwrap();
    let report = train(&tower, &varmap, &split.train, &split.valid, ITEMS, &config).unwrap();
    let final_ndcg = evaluate(
        &TowerScorer::new(&tower, ITEMS).unwrap(),
        &split.valid,
        &HashSet::new(),
    )
    .unwrap()
    .unmasked
    .ndcg_10;
    let mut weights: Vec<(String, Vec<f32>)> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(name, var)| {
            (
                name.clone(),
                var.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    Run {
        weights,
        report,
        final_ndcg,
    }
}

#[test]
fn fixed_seed_gives_identical_weights() {
    for (loss, negatives) in [
        (Targets::Dense, Negatives::InBatch),
        (Targets::AllPositions, Negatives::Mixed),
    ] {
        let config = TrainingConfig {
            epochs: 3,
            ..config(loss, negatives)
        };
        let a = run(config.clone(), Input::ContentAndIds);
        let b = run(config, Input::ContentAndIds);
        assert_eq!(
            a.weights, b.weights,
            "{loss:?}/{negatives:?}: two runs with one seed must produce bit-identical weights"
        );
        assert_eq!(a.report.curve.len(), b.report.curve.len());
    }
}

#[test]
fn early_stopping_keeps_the_best_validation_weights() {
    // A high learning rate without decay overshoots: validation NDCG@10 is not monotone.
    let config = TrainingConfig {
        epochs: 12,
        patience: 3,
        candidate_dropout: true,
        lr: 0.2,
        warmup_frac: 0.0,
        ..config(Targets::AllPositions, Negatives::AllItems)
    };
    for window in [1, 3] {
        let run = run(
            TrainingConfig {
                patience_window: window,
                ..config.clone()
            },
            Input::Content,
        );
        let curve = &run.report.curve;
        let best = curve
            .iter()
            .max_by(|a, b| a.valid_ndcg_10.total_cmp(&b.valid_ndcg_10))
            .unwrap();
        assert_eq!(run.report.best_epoch, best.epoch, "{curve:?}");
        if window == 1 {
            assert!(
                curve.len() == 12 || curve.len() == best.epoch + 3,
                "stops 3 epochs after the best: {curve:?}"
            );
        }
        // It stops at the first epoch where the smoothed test says so, and not before.
        let valid: Vec<f64> = curve.iter().map(|e| e.valid_ndcg_10).collect();
        let first_stop = (1..=valid.len()).find(|&e| should_stop(&valid[..e], 3, window));
        assert_eq!(
            first_stop.unwrap_or(12),
            curve.len(),
            "window {window}: {curve:?}"
        );
        assert_eq!(
            run.final_ndcg, best.valid_ndcg_10,
            "the weights left in place are the best epoch's: {curve:?}"
        );
    }
}

/// With item-ID inputs nothing is known before training (chance Recall@10 is ~1/6): what the
/// towers reach comes from the loss.
fn best_valid_recall(report: &TrainReport) -> f64 {
    report
        .curve
        .iter()
        .map(|e| e.valid_recall_10)
        .fold(0.0, f64::max)
}

#[test]
fn every_recipe_learns_the_clusters() {
    for (loss, negatives) in [
        (Targets::Dense, Negatives::InBatch),
        (Targets::Last, Negatives::InBatch),
        (Targets::AllPositions, Negatives::AllItems),
        (Targets::AllPositions, Negatives::Sampled),
        (Targets::AllPositions, Negatives::Mixed),
    ] {
        let config = TrainingConfig {
            epochs: 40,
            ..config(loss, negatives)
        };
        let report = run(config, Input::Ids).report;
        let first = &report.curve[0];
        let best = best_valid_recall(&report);
        assert!(
            report.curve.last().unwrap().loss < first.loss,
            "{loss:?}/{negatives:?}: loss must fall: {:?}",
            report.curve
        );
        // 15 candidate items per cluster out of 60: knowing the cluster gives ~2/3.
        assert!(
            best > 0.4,
            "{loss:?}/{negatives:?}: validation Recall@10 {best} should be far above chance: {:?}",
            report.curve
        );
    }
}

/// Content towers learn the clusters through either adapter (one linear map, or the 2-layer MLP).
#[test]
fn content_towers_learn_the_clusters_through_either_adapter() {
    for input in [Input::Content, Input::ContentMlp] {
        let config = TrainingConfig {
            epochs: 40,
            ..config(Targets::AllPositions, Negatives::AllItems)
        };
        let report = run(config, input).report;
        let best = best_valid_recall(&report);
        assert!(
            best > 0.4,
            "validation Recall@10 {best} should be far above chance: {:?}",
            report.curve
        );
    }
}

/// The online step's large-catalogue mode (`all_items` above `online.full_softmax_items`: the
/// batch's items + uniform draws, logQ-corrected) reads a small share of the catalogue per step
/// and still learns the clusters: the trained user tower's top 10 come from the user's cluster.
#[test]
fn large_catalogue_online_steps_learn_the_clusters_from_a_sample() {
    use learn_stream::train::online::{OnlineBatch, OnlineTrainer};
    use learn_stream::train::rows::{effective_negatives, step_rows};
    const N: usize = 400;
    const K: usize = 4;
    const DIM: usize = 8;
    let mut rng = StdRng::seed_from_u64(11);
    let content: Vec<f32> = (0..N * DIM)
        .map(|i| f32::from(u8::from(i % DIM == (i / DIM) % K)) + rng.random_range(-1.5..1.5))
        .collect();
    let content = Tensor::from_vec(content, (N, DIM), &Device::Cpu).unwrap();
    let walk = |cluster: usize, rng: &mut StdRng| -> Vec<u32> {
        (0..12)
            .map(|_| (rng.random_range(0..N / K) * K + cluster) as u32)
            .collect()
    };
    let spec = TowerSpec {
        d_model: 16,
        heads: 2,
        layers: 1,
        out_dim: 8,
        max_len: 10,
        dropout: 0.0,
        attn_dropout: 0.0,
        item_ids: false,
        id_dropout: 0.0,
        adapter: AdapterKind::Linear,
        pre_ln: true,
        whiten: true,
        tied_items: false,
        normalise: true,
        output_head: true,
        init_std: None,
    };
    let config = TrainingConfig {
        lr: 5e-3,
        ..config(Targets::AllPositions, Negatives::AllItems)
    };
    let mut trainer = OnlineTrainer::new(&spec, DIM, &config, 3).unwrap();
    let full_softmax_items = 100;
    let negatives = effective_negatives(config.negatives, N, full_softmax_items);
    assert_eq!(negatives, Negatives::Mixed);
    let untrained = cluster_share(&trainer, &spec, config.seed, &content, &walk, &mut rng);
    for _ in 0..300 {
        let sequences: Vec<Vec<u32>> = (0..16).map(|u| walk(u % K, &mut rng)).collect();
        let step = step_rows(&sequences, N, negatives, config.negative_samples, &mut rng);
        assert!(step.rows.len() < N / 2, "{} rows of {N}", step.rows.len());
        let rows = Tensor::new(step.rows.as_slice(), &Device::Cpu).unwrap();
        let batch = OnlineBatch {
            table: content.index_select(&rows, 0).unwrap(),
            negatives: step.negatives,
            sequences: step.sequences,
            fresh: Vec::new(),
            drawn: step.drawn,
            catalogue_items: N,
            log_share: Some(vec![-(N as f32).ln(); step.rows.len()]),
        };
        trainer.step(&batch, usize::MAX).unwrap().expect("a step");
    }
    let trained = cluster_share(&trainer, &spec, config.seed, &content, &walk, &mut rng);
    assert!(
        trained > 0.7 && trained > untrained + 0.3,
        "top 10 from the user's cluster: {trained:.2}, untrained {untrained:.2} (chance 0.25)"
    );
}

/// Share of a fresh user's top 10 (of every item) that come from the user's cluster.
fn cluster_share(
    trainer: &learn_stream::train::online::OnlineTrainer,
    spec: &TowerSpec,
    seed: u64,
    content: &Tensor,
    walk: &dyn Fn(usize, &mut StdRng) -> Vec<u32>,
    rng: &mut StdRng,
) -> f64 {
    use learn_stream::train::online::inference_tower;
    let (n, dim) = content.dims2().unwrap();
    let k = 4;
    let weights = trainer.weights().unwrap();
    let tower = inference_tower(spec, dim, seed, Some(&weights))
        .unwrap()
        .with_table(content.clone())
        .unwrap();
    let items = tower
        .items(&(0..n as u32).collect::<Vec<_>>(), false)
        .unwrap();
    let (mut hits, mut total) = (0, 0);
    for cluster in 0..k {
        for _ in 0..5 {
            let history = walk(cluster, rng);
            let user = tower.users(&[&history[..10]]).unwrap();
            let scores: Vec<f32> = user
                .matmul(&items.t().unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            hits += order[..10].iter().filter(|&&i| i % k == cluster).count();
            total += 10;
        }
    }
    hits as f64 / total as f64
}
