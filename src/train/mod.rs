//! Owns training of the towers: the learning-rate schedule and gradient clipping ([`schedule`]) and
//! the offline trainer ([`offline`]): epochs of shuffled user micro-batches, the contrastive loss,
//! AdamW, validation after every epoch and the best epoch's weights kept. Deterministic for a seed.
//! [`online`] is the continual trainer's step and its checkpoint state; [`adamw`] the optimizer
//! whose state can be saved.

pub mod adamw;
pub mod offline;
pub mod online;
pub mod schedule;

pub use offline::{train, EpochLog, TrainReport};

use serde::{Deserialize, Serialize};

use crate::towers::loss::LossMode;

/// Optimisation settings (`[training]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Most passes over the training users.
    pub epochs: usize,
    /// Users per micro-batch (the in-batch negatives come from the other users).
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
    /// `dense` (paper) or `last` (released code).
    pub loss: LossKind,
    /// Where the negatives come from: `in_batch` (the paper: other users' targets) or `all_items`
    /// (softmax over the whole catalogue, as in the released code's fine-tuning).
    pub negatives: Negatives,
    /// Dense loss: history positions sampled per user (N_h).
    pub history_positions: usize,
    /// Dense loss: target items per user (N_t).
    pub target_items: usize,
    /// Stop after this many epochs without a better validation Recall@10.
    pub patience: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Negatives {
    InBatch,
    AllItems,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    Dense,
    Last,
}

impl TrainingConfig {
    pub fn loss_mode(&self) -> LossMode {
        match self.loss {
            LossKind::Dense => LossMode::Dense {
                history: self.history_positions,
                targets: self.target_items,
            },
            LossKind::Last => LossMode::Last,
        }
    }
}
