//! Owns training of the towers: which pairs a sequence contributes ([`targets`]), which candidates
//! each pair's softmax runs over ([`negatives`]), the learning-rate schedule and gradient clipping
//! ([`schedule`]) and the offline trainer ([`offline`]): epochs of user micro-batches, AdamW,
//! validation after every epoch, early stopping on the smoothed validation curve
//! ([`stopping`]) and the best epoch's weights kept. Deterministic
//! for a seed. [`online`] is the continual trainer's step and its checkpoint state; [`adamw`] the
//! optimizer whose state can be saved; [`rows`] which catalogue rows an online step reads;
//! [`sasrec`] the item-ID baseline's own shape and recipe (`[sasrec]`).

pub mod adamw;
pub mod negatives;
pub mod offline;
pub mod online;
pub mod rows;
mod sasrec;
pub mod schedule;
pub mod stopping;
pub mod targets;

pub use negatives::Negatives;
pub use offline::{train, EpochLog, TrainReport};
pub use sasrec::SasrecConfig;
pub use targets::Targets;

use serde::{Deserialize, Serialize};

use targets::TargetSpec;

use crate::checks::{positive, Invalid};

/// Optimisation settings (`[training]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Most passes over the training users.
    pub epochs: usize,
    /// Users per micro-batch.
    pub batch_size: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    /// Fraction of the steps spent warming the learning rate up linearly; cosine decay follows.
    pub warmup_frac: f64,
    /// Global gradient-norm clip.
    pub clip_norm: f64,
    /// Cosine similarity × this = logit (1 / temperature).
    pub logit_scale: f64,
    /// Which pairs a sequence contributes: `all_positions`, `dense` (paper) or `last` (released code).
    pub loss: Targets,
    /// Which candidates each pair's softmax runs over: `all_items`, `sampled`, `in_batch`, `mixed`.
    pub negatives: Negatives,
    /// Uniform draws per step for `sampled` and `mixed`.
    pub negative_samples: usize,
    /// Correct in-batch candidates (`in_batch`, `mixed`) for their popularity-proportional sampling.
    pub logq_correction: bool,
    /// Dense loss: history positions sampled per user (N_h).
    pub history_positions: usize,
    /// Dense loss: target items per user (N_t).
    pub target_items: usize,
    /// Stop after this many epochs without a better (smoothed) validation NDCG@10.
    pub patience: usize,
    /// Epochs averaged for the stopping test ([`stopping`]); 1 = the raw curve.
    #[serde(default = "patience_window_default")]
    pub patience_window: usize,
    /// Dropout also on the item tower's pass over the candidates (true), or on the user side only
    /// (false: every candidate is its clean vector, as at serving).
    #[serde(default = "candidate_dropout_default")]
    pub candidate_dropout: bool,
    pub seed: u64,
}

fn candidate_dropout_default() -> bool {
    true
}

fn patience_window_default() -> usize {
    1
}

impl TrainingConfig {
    /// The first value training cannot run with.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("training.batch_size", self.batch_size)?;
        positive("training.patience_window", self.patience_window)?;
        positive("training.epochs", self.epochs)?;
        if self.negatives.draws() {
            positive("training.negative_samples", self.negative_samples)?;
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            return Err(Invalid::new("training.lr", "must be greater than 0"));
        }
        Ok(())
    }

    pub fn target_spec(&self) -> TargetSpec {
        TargetSpec {
            targets: self.loss,
            history_positions: self.history_positions,
            target_items: self.target_items,
        }
    }
}
