//! The offline trainer.

use std::collections::HashSet;
use std::time::Instant;

use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::adamw::{AdamW, AdamWParams};
use super::negatives::{draw_uniform, Pool, Universe};
use super::schedule::{clip_gradients, learning_rate};
use super::stopping::should_stop;
use super::targets::UserSample;
use super::TrainingConfig;
use crate::eval::scorers::TowerScorer;
use crate::eval::{evaluate, Case};
use crate::towers::loss::softmax_loss;
use crate::towers::padding::pad_right;
use crate::towers::Tower;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    /// Validation metrics, nothing masked (the selection protocol of the published anchors).
    pub valid_recall_10: f64,
    pub valid_ndcg_10: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub curve: Vec<EpochLog>,
    pub best_epoch: usize,
    pub steps: usize,
    pub seconds: f64,
}

/// Sorted by name so the optimiser, clipping and checkpoints see them in a fixed order.
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut named: Vec<(String, Var)> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    vars.iter().map(|v| v.as_tensor().copy()).collect()
}

/// The loss of one micro-batch of user samples, with candidates drawn from `pool`.
pub fn batch_loss(
    tower: &Tower,
    samples: &[UserSample],
    config: &TrainingConfig,
    pool: &Pool,
) -> Result<Tensor> {
    let histories: Vec<&[u32]> = samples.iter().map(|s| s.history.as_slice()).collect();
    let (ids, _) = pad_right(&histories, tower.spec().max_len, tower.device())?;
    let len = ids.dim(1)?;
    let (mut anchors, mut targets) = (Vec::new(), Vec::new());
    for (row, s) in samples.iter().enumerate() {
        for pair in &s.pairs {
            anchors.push(row * len + pair.position);
            targets.push(pair.target);
        }
    }
    let flat: Vec<u32> = anchors.iter().map(|&a| a as u32).collect();
    let out = tower.forward_anchors(&ids, &flat, true)?;
    let set = config.negatives.candidates(&targets, &anchors, pool);
    let candidates = tower.items(&set.items, config.candidate_dropout)?;
    softmax_loss(
        &out,
        &candidates,
        &set.positives,
        if tower.spec().normalise {
            config.logit_scale
        } else {
            1.0
        },
        set.log_q.as_deref(),
        &set.blocked,
    )
}

/// ln of each item's share of the items in `train` (the in-batch sampling distribution).
pub fn log_shares(train: &[Vec<u32>], item_count: usize) -> Vec<f32> {
    let mut counts = vec![0f64; item_count];
    for &item in train.iter().flatten() {
        counts[item as usize] += 1.0;
    }
    let total: f64 = counts.iter().sum::<f64>().max(1.0);
    counts.iter().map(|c| (c / total).ln() as f32).collect()
}

/// The items that occur in `train`, ascending: the candidates of training (a cold item held out of
/// training is not everybody's negative either).
pub fn trained_items(train: &[Vec<u32>], item_count: usize) -> Vec<u32> {
    let mut seen = vec![false; item_count];
    for &item in train.iter().flatten() {
        seen[item as usize] = true;
    }
    (0..item_count as u32)
        .filter(|&i| seen[i as usize])
        .collect()
}

/// Batches a window of this many batches' users together, sorted by history length.
const BUCKET_WINDOW: usize = 16;

/// One epoch's micro-batches: users shuffled, each contributing its epoch samples; within windows
/// of `BUCKET_WINDOW` batches the samples are sorted by history length (so a batch is padded
/// little), and the batches are shuffled again. Padding drops several-fold.
fn length_bucketed_batches(
    train: &[Vec<u32>],
    trainable: &[usize],
    config: &TrainingConfig,
    max_len: usize,
    rng: &mut StdRng,
) -> Vec<Vec<UserSample>> {
    let targets = config.target_spec();
    let batch_size = config.batch_size.max(1);
    let mut order = trainable.to_vec();
    order.shuffle(rng);
    let mut batches = Vec::new();
    for window in order.chunks(batch_size * BUCKET_WINDOW) {
        let mut samples: Vec<UserSample> = window
            .iter()
            .flat_map(|&u| targets.epoch_samples(&train[u], max_len, rng))
            .collect();
        samples.sort_by_key(|s| s.history.len());
        let mut chunks = samples.into_iter().peekable();
        while chunks.peek().is_some() {
            batches.push(chunks.by_ref().take(batch_size).collect());
        }
    }
    batches.shuffle(rng);
    batches
}

/// A run's optimisation state: the variables, AdamW, the step count and the negatives' universe.
struct Optimisation<'a> {
    tower: &'a Tower,
    config: &'a TrainingConfig,
    vars: Vec<Var>,
    optimizer: AdamW,
    /// Items drawn as negatives (those seen in training).
    universe: Vec<u32>,
    log_share: Option<Vec<f32>>,
    step: usize,
    total_steps: usize,
}

impl Optimisation<'_> {
    /// One pass over `batches`, a step each: the mean loss.
    fn epoch(
        &mut self,
        batches: Vec<Vec<UserSample>>,
        rng: &mut StdRng,
        bar: &ProgressBar,
    ) -> Result<f64> {
        let config = self.config;
        let (mut loss_sum, mut steps) = (0f64, 0usize);
        for samples in batches {
            if samples.iter().all(|s| s.pairs.is_empty()) {
                continue;
            }
            self.optimizer.set_learning_rate(learning_rate(
                config.lr,
                self.step,
                self.total_steps,
                config.warmup_frac,
            ));
            let drawn = if config.negatives.draws() {
                draw_uniform(self.universe.len(), config.negative_samples, rng)
                    .into_iter()
                    .map(|i| self.universe[i])
                    .collect()
            } else {
                Vec::new()
            };
            let pool = Pool {
                items: Universe::Items(&self.universe),
                drawn: &drawn,
                log_share: self.log_share.as_deref(),
            };
            let loss = batch_loss(self.tower, &samples, config, &pool)?;
            let mut grads = loss.backward()?;
            clip_gradients(&mut grads, &self.vars, config.clip_norm)?;
            self.optimizer.step(&grads)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            steps += 1;
            self.step += 1;
            bar.inc(1);
        }
        Ok(loss_sum / steps.max(1) as f64)
    }
}

/// An epoch's log once `tower` is scored on `valid` (nothing masked).
fn validated(
    tower: &Tower,
    item_count: usize,
    valid: &[Case],
    epoch: usize,
    loss: f64,
    started: Instant,
) -> Result<EpochLog> {
    let metrics = evaluate(
        &TowerScorer::new(tower, item_count)?,
        valid,
        &HashSet::new(),
    )?
    .unmasked;
    let log = EpochLog {
        epoch,
        loss,
        valid_recall_10: metrics.recall_10,
        valid_ndcg_10: metrics.ndcg_10,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        epoch,
        loss = log.loss,
        valid_ndcg_10 = log.valid_ndcg_10,
        seconds = log.seconds,
        "epoch done"
    );
    Ok(log)
}

/// Trains `tower` (whose variables are `varmap`) on `train` sequences, validating on `valid` after
/// every epoch (NDCG@10, nothing masked); leaves the best epoch's weights in place.
pub fn train(
    tower: &Tower,
    varmap: &VarMap,
    train: &[Vec<u32>],
    valid: &[Case],
    item_count: usize,
    config: &TrainingConfig,
) -> Result<TrainReport> {
    let started = Instant::now();
    let vars: Vec<Var> = sorted_vars(varmap).into_iter().map(|(_, v)| v).collect();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let trainable: Vec<usize> = (0..train.len()).filter(|&u| train[u].len() >= 2).collect();
    let max_len = tower.spec().max_len;
    let steps_per_epoch =
        length_bucketed_batches(train, &trainable, config, max_len, &mut rng.clone()).len();
    let mut run = Optimisation {
        tower,
        config,
        optimizer: AdamW::new(
            vars.clone(),
            AdamWParams::new(config.lr, config.weight_decay),
        )?,
        vars,
        universe: trained_items(train, item_count),
        log_share: config
            .logq_correction
            .then(|| log_shares(train, item_count)),
        step: 0,
        total_steps: steps_per_epoch * config.epochs,
    };
    let mut curve: Vec<EpochLog> = Vec::new();
    let (mut best, mut best_epoch, mut best_weights) = (f64::NEG_INFINITY, 0, snapshot(&run.vars)?);
    let mut status = String::new();
    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        let batches = length_bucketed_batches(train, &trainable, config, max_len, &mut rng);
        let bar = ProgressBar::new(steps_per_epoch as u64).with_style(
            ProgressStyle::with_template(
                "epoch {msg} {bar:30} {pos}/{len} steps ({per_sec}, eta {eta})",
            )
            .expect("template"),
        );
        bar.set_message(format!("{epoch}/{}{status}", config.epochs));
        let loss = run.epoch(batches, &mut rng, &bar)?;
        bar.finish_and_clear();
        let log = validated(tower, item_count, valid, epoch, loss, epoch_started)?;
        status = format!(
            " (last: loss {:.4}, valid NDCG@10 {:.4}",
            log.loss, log.valid_ndcg_10
        );
        if log.valid_ndcg_10 > best {
            (best, best_epoch, best_weights) = (log.valid_ndcg_10, epoch, snapshot(&run.vars)?);
        }
        curve.push(log);
        status += &format!("; best {best:.4} at epoch {best_epoch})");
        let valid: Vec<f64> = curve.iter().map(|e| e.valid_ndcg_10).collect();
        if should_stop(&valid, config.patience, config.patience_window) {
            tracing::info!(
                best_epoch,
                "early stop: the {}-epoch mean of validation NDCG@10 has not improved for {} epochs",
                config.patience_window,
                config.patience
            );
            break;
        }
    }
    for (var, weights) in run.vars.iter().zip(&best_weights) {
        var.set(weights)?;
    }
    Ok(TrainReport {
        curve,
        best_epoch,
        steps: run.step,
        seconds: started.elapsed().as_secs_f64(),
    })
}
