//! The continual trainer's compute: one AdamW step on a micro-batch of users with fresh actions,
//! and the conversion to and from [`Checkpoint`]s. Every step draws its randomness (cuts, dense
//! anchors, dropout masks) from `seed + step`, so a restored checkpoint continues exactly as an
//! uninterrupted run would.

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::adamw::{AdamW, AdamWParams};
use super::negatives::{Negatives, Pool, Universe};
use super::offline::{batch_loss, sorted_vars};
use super::schedule::clip_gradients;
use super::TrainingConfig;
use crate::checkpoint::{Checkpoint, Manifest, Moments};
use crate::towers::{Tower, TowerInput, TowerSpec};

/// Users' recent sequences over a batch-local catalogue.
#[derive(Debug, Clone)]
pub struct OnlineBatch {
    /// (local items) × content dim: row i is the content embedding of local item i. With
    /// `all_items` negatives the whole catalogue, in catalogue order.
    pub table: Tensor,
    /// The candidates of this step ([`super::rows::effective_negatives`]: `training.negatives`,
    /// or `mixed` where the catalogue is too large for `all_items`).
    pub negatives: Negatives,
    /// Per user, oldest first, as rows of `table`.
    pub sequences: Vec<Vec<u32>>,
    /// Per sequence: how many of its last items are fresh (not trained on yet); every one of them
    /// is a target ([`super::targets::TargetSpec::fresh_samples`]). Missing or below the trainer's
    /// `recent` floor: `recent`.
    pub fresh: Vec<usize>,
    /// Rows of `table` drawn uniformly from the catalogue as negatives (`sampled`, `mixed`).
    pub drawn: Vec<u32>,
    /// Items in the catalogue the draws came from.
    pub catalogue_items: usize,
    /// Per row of `table`: log of the item's share of recent actions (for `logq_correction`),
    /// or None to train without the correction.
    pub log_share: Option<Vec<f32>>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stepped {
    pub loss: f32,
    /// (anchor, positive) pairs trained on.
    pub pairs: usize,
}

pub struct OnlineTrainer {
    tower: Tower,
    vars: Vec<(String, Var)>,
    optimizer: AdamW,
    config: TrainingConfig,
    /// At least a sequence's last `recent` actions are targets (`online.recent_targets`).
    recent: usize,
    /// See [`Self::refit_whitening_until`].
    whiten_refit_until: usize,
    /// See [`Self::warm_up_over`].
    warmup_steps: u64,
    // Keeps the variables alive and named.
    _varmap: VarMap,
}

impl OnlineTrainer {
    /// A freshly initialised trainer (weights from `config.seed`: the same as the frozen model's).
    pub fn new(
        spec: &TowerSpec,
        content_dim: usize,
        config: &TrainingConfig,
        recent: usize,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        let tower = Tower::new(
            spec,
            TowerInput::Features { dim: content_dim },
            &varmap,
            config.seed,
            &Device::Cpu,
        )?;
        let vars = sorted_vars(&varmap);
        let optimizer = AdamW::new(
            vars.iter().map(|(_, v)| v.clone()).collect(),
            AdamWParams::new(config.lr, config.weight_decay),
        )?;
        Ok(Self {
            tower,
            vars,
            optimizer,
            config: config.clone(),
            recent,
            whiten_refit_until: 0,
            warmup_steps: 1,
            _varmap: varmap,
        })
    }

    /// Optimizer steps taken so far (including those of a restored checkpoint).
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// The batch's loss under the current weights, with this step's randomness, and its number
    /// of (anchor, positive) pairs; None when the batch has fewer than two usable users.
    fn batch_loss(
        &self,
        batch: &OnlineBatch,
        batch_limit: usize,
    ) -> Result<Option<(Tensor, usize)>> {
        let seed = self
            .config
            .seed
            .wrapping_add(self.steps().wrapping_mul(7919));
        let mut rng = StdRng::seed_from_u64(seed);
        self.tower.reseed_dropout(seed);
        let targets = self.config.target_spec();
        let max_len = self.tower.spec().max_len;
        let samples: Vec<_> = batch
            .sequences
            .iter()
            .enumerate()
            .take(batch_limit)
            .flat_map(|(i, s)| {
                let fresh = batch.fresh.get(i).copied().unwrap_or(0).max(self.recent);
                targets.fresh_samples(s, max_len, fresh, &mut rng)
            })
            .collect();
        if samples.len() < 2 {
            return Ok(None);
        }
        let tower = self.tower.with_table(batch.table.clone())?;
        let pool = Pool {
            items: Universe::Rows(batch.catalogue_items),
            drawn: &batch.drawn,
            log_share: batch.log_share.as_deref(),
        };
        let config = TrainingConfig {
            negatives: batch.negatives,
            ..self.config.clone()
        };
        let pairs = samples.iter().map(|s| s.pairs.len()).sum();
        batch_loss(&tower, &samples, &config, &pool).map(|loss| Some((loss, pairs)))
    }

    /// `towers.whiten`: a lineage's whitening is fitted on the table of its first step (with
    /// `all_items` negatives, the whole catalogue; shrunk towards no whitening while it is small),
    /// then refitted whenever the catalogue has doubled since, as long as the last fit saw fewer
    /// than `whiten_refit_until` items and the table is the whole catalogue. The statistics travel
    /// with the weights, so every version carries its own (and a warm start keeps the offline fit
    /// until the catalogue outgrows it).
    fn refit_whitening(&self, batch: &OnlineBatch) -> Result<()> {
        let Some(whitening) = self.tower.whitening() else {
            return Ok(());
        };
        let fitted = whitening.fitted_on()?;
        let outgrown = batch.negatives == Negatives::AllItems
            && fitted < self.whiten_refit_until
            && batch.catalogue_items >= 2 * fitted;
        if fitted == 0 || outgrown {
            whitening.fit(&batch.table)?;
            tracing::info!(
                items = batch.table.dim(0)?,
                before = fitted,
                "content whitening fitted (it travels with the next version)"
            );
        }
        Ok(())
    }

    /// Ramp the learning rate up linearly over a fresh optimizer's first `steps` steps
    /// (`online.warmup_steps`; 0 or 1: full rate from the first step).
    pub fn warm_up_over(&mut self, steps: u64) {
        self.warmup_steps = steps;
    }

    /// Refit the whitening as the catalogue grows until a fit has seen this many items
    /// (`online.whiten_refit_until`; 0: fitted once, on the first step's table).
    pub fn refit_whitening_until(&mut self, items: usize) {
        self.whiten_refit_until = items;
    }

    /// The loss `step` would see on `batch` now, without updating anything (for monitoring).
    pub fn loss(&self, batch: &OnlineBatch) -> Result<Option<f32>> {
        self.batch_loss(batch, usize::MAX)?
            .map(|(l, _)| l.to_scalar::<f32>())
            .transpose()
    }

    /// One contrastive step; None when the batch has fewer than two usable users.
    /// A step whose loss or gradient norm is not finite changes nothing and is an error: a diverging
    /// step must never reach a checkpoint.
    pub fn step(&mut self, batch: &OnlineBatch, batch_limit: usize) -> Result<Option<Stepped>> {
        self.refit_whitening(batch)?;
        // A fresh optimizer (a new lineage, a warm start, a restore without moments) ramps its
        // learning rate up: AdamW's first updates are full-size on every weight at once.
        let ramp = (self.steps() + 1) as f64 / self.warmup_steps.max(1) as f64;
        self.optimizer
            .set_learning_rate(self.config.lr * ramp.min(1.0));
        let Some((loss, pairs)) = self.batch_loss(batch, batch_limit)? else {
            return Ok(None);
        };
        let value = loss.to_scalar::<f32>()?;
        let mut grads = loss.backward()?;
        let vars: Vec<Var> = self.vars.iter().map(|(_, v)| v.clone()).collect();
        let norm = clip_gradients(&mut grads, &vars, self.config.clip_norm)?;
        if !value.is_finite() || !norm.is_finite() {
            return Err(candle_core::Error::Msg(format!(
                "non-finite step (loss {value}, gradient norm {norm}): weights left unchanged"
            )));
        }
        self.optimizer.step(&grads)?;
        Ok(Some(Stepped { loss: value, pairs }))
    }

    /// Copies of the named weights, sorted by name.
    pub fn weights(&self) -> Result<Vec<(String, Tensor)>> {
        self.vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
            .collect()
    }

    /// The whole state as a checkpoint with `manifest` (whose `step` is overwritten).
    pub fn checkpoint(&self, mut manifest: Manifest) -> Result<Checkpoint> {
        let (m, v) = self.optimizer.moments()?;
        manifest.step = self.steps();
        Ok(Checkpoint {
            manifest,
            weights: self.weights()?,
            optimizer: Some(Moments { m, v }),
        })
    }

    /// Loads weights, moments and the step counter from `checkpoint`; one without moments (what
    /// the store publishes) gets a fresh optimizer — zero moments, step 0, so that AdamW's bias
    /// correction starts over rather than taking oversized first steps.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        if checkpoint.weights.len() != self.vars.len() {
            candle_core::bail!(
                "checkpoint has {} tensors, the towers {}",
                checkpoint.weights.len(),
                self.vars.len()
            );
        }
        for ((name, var), (saved, weight)) in self.vars.iter().zip(&checkpoint.weights) {
            if name != saved {
                candle_core::bail!("checkpoint tensor {saved} where the towers have {name}");
            }
            var.set(weight)?;
        }
        match &checkpoint.optimizer {
            Some(moments) => {
                self.optimizer
                    .restore(&moments.m, &moments.v, checkpoint.manifest.step)
            }
            None => {
                let zeros = |w: &[(String, Tensor)]| -> Result<Vec<Tensor>> {
                    w.iter().map(|(_, t)| t.zeros_like()).collect()
                };
                let weights = &checkpoint.weights;
                self.optimizer
                    .restore(&zeros(weights)?, &zeros(weights)?, 0)
            }
        }
    }
}

/// A tower for inference with the given weights (e.g. a checkpoint's), or the initial weights from
/// `seed` when `weights` is None (the frozen, never-trained model).
pub fn inference_tower(
    spec: &TowerSpec,
    content_dim: usize,
    seed: u64,
    weights: Option<&[(String, Tensor)]>,
) -> Result<Tower> {
    let varmap = VarMap::new();
    let tower = Tower::new(
        spec,
        TowerInput::Features { dim: content_dim },
        &varmap,
        seed,
        &Device::Cpu,
    )?;
    if let Some(weights) = weights {
        let data = varmap.data().lock().expect("varmap lock");
        if data.len() != weights.len() {
            candle_core::bail!("{} weights for {} variables", weights.len(), data.len());
        }
        for (name, weight) in weights {
            let Some(var) = data.get(name) else {
                candle_core::bail!("weights have {name}, the towers do not");
            };
            var.set(weight)?;
        }
    }
    Ok(tower)
}
