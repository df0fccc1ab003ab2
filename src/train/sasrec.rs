//! Owns SASRec's own defaults (`[sasrec]`): the item-ID baseline every reader compares with,
//! trained as RecBole trains it (the library behind its published figures on these splits) —
//! hidden 64, 2 heads, 2 post-LN blocks, dropout 0.5 / 0.5, N(0, 0.02) init, no weight decay, a
//! history scored by its last hidden state against the items' own ID embeddings (raw dot products,
//! no output head, no final norm) — whatever LEARN's `[towers]` defaults are.

use serde::{Deserialize, Serialize};

use super::TrainingConfig;
use crate::checks::Invalid;
use crate::towers::{AdapterKind, TowerSpec};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SasrecConfig {
    /// Hidden size (RecBole's `hidden_size`); the ID embeddings' width too.
    pub d_model: usize,
    pub heads: usize,
    pub layers: usize,
    /// Longest history read.
    pub max_len: usize,
    /// Hidden dropout (`hidden_dropout_prob`).
    pub dropout: f32,
    /// Dropout on the attention weights (`attn_dropout_prob`).
    pub attn_dropout: f32,
    /// σ of the N(0, σ²) initialisation of every weight and embedding (`initializer_range`).
    pub init_std: f32,
    /// AdamW weight decay (RecBole's default Adam has none).
    pub weight_decay: f64,
}

impl SasrecConfig {
    /// The tower SASRec trains: tied ID embeddings, raw dot products, no output head, post-LN.
    pub fn towers(&self) -> TowerSpec {
        TowerSpec {
            d_model: self.d_model,
            heads: self.heads,
            layers: self.layers,
            out_dim: self.d_model,
            max_len: self.max_len,
            dropout: self.dropout,
            attn_dropout: self.attn_dropout,
            item_ids: false,
            id_dropout: 0.0,
            pre_ln: false,
            adapter: AdapterKind::Linear,
            whiten: false,
            tied_items: true,
            normalise: false,
            output_head: false,
            init_std: Some(self.init_std),
        }
    }

    /// `[training]` (schedule, batch, negatives, stopping) with SASRec's weight decay.
    pub fn training(&self, shared: &TrainingConfig) -> TrainingConfig {
        TrainingConfig {
            weight_decay: self.weight_decay,
            ..shared.clone()
        }
    }

    /// The first invalid value: the tower's (under `sasrec.`), then the weight decay.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.towers().validate("sasrec")?;
        if self.weight_decay < 0.0 {
            return Err(Invalid::new("sasrec.weight_decay", "must not be negative"));
        }
        Ok(())
    }
}
