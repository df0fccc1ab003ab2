//! Owns the towers' shape and scoring options (`[towers]`; `[sasrec]` builds one for the ID
//! baseline), serialised into every checkpoint and results file.

use serde::{Deserialize, Serialize};

use super::adapter::AdapterKind;
use crate::checks::{positive, probability, Invalid};

/// Shape of a tower (`[towers]` in the config). Serialised into checkpoints and results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TowerSpec {
    pub d_model: usize,
    pub heads: usize,
    pub layers: usize,
    pub out_dim: usize,
    /// Longest history read (older items are dropped).
    pub max_len: usize,
    /// Hidden dropout: on the input and on each sublayer's output.
    pub dropout: f32,
    /// Dropout on the attention weights.
    pub attn_dropout: f32,
    /// LEARN offline: add a learned, zero-initialised item-ID embedding to the content projection
    /// of every item seen in training (UniSRec's "text + ID"); other items (cold, new) use content
    /// alone. The online towers read a growing catalogue and use content alone.
    pub item_ids: bool,
    /// With `item_ids`: probability that an occurrence's ID offset is dropped in training (the
    /// item then reads as content alone, as a cold item does).
    #[serde(default)]
    pub id_dropout: f32,
    /// Layer norm before each sublayer (true) or after it (false, BERT's post-LN).
    pub pre_ln: bool,
    /// Content towers: how the frozen content vectors reach `d_model` ([`AdapterKind`]: `linear`
    /// or `mlp`).
    #[serde(default)]
    pub adapter: AdapterKind,
    /// Content towers: whiten the frozen content vectors (centre, decorrelate, re-normalise) before
    /// the adapter, with statistics fitted on the catalogue ([`super::whiten`]).
    #[serde(default)]
    pub whiten: bool,
    /// An item's vector is its own input embedding (SASRec: its ID embedding; content towers: the
    /// adapter's projection, UniSRec's item side) through the final norm and output head, instead
    /// of a length-1 pass through the blocks.
    #[serde(default)]
    pub tied_items: bool,
    /// Unit outputs, logits cosine × `training.logit_scale` (LEARN, true), or raw dot products
    /// (false, SASRec's scoring: an item's norm can carry its popularity; with `tied_items` a
    /// candidate is its input embedding through the output head alone, no final norm).
    #[serde(default = "yes")]
    pub normalise: bool,
    /// The output head, a linear map d_model → `out_dim` after the blocks (LEARN, true), or none
    /// (false, SASRec's scoring: a history is its last hidden state, an item with `tied_items` its
    /// raw ID embedding; `out_dim` must equal `d_model`).
    #[serde(default = "yes")]
    pub output_head: bool,
    /// Initialisation: absent, PyTorch's defaults (weights uniform ±1/√fan_in, embedding tables
    /// ±0.035); σ, every weight and embedding table N(0, σ²) (RecBole's `initializer_range`, 0.02).
    /// Biases 0 and norm scales 1 either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_std: Option<f32>,
}

impl TowerSpec {
    /// The first value the towers cannot be built with, keyed under `section` (`towers`, or
    /// `sasrec` for the baseline's tower).
    pub fn validate(&self, section: &str) -> Result<(), Invalid> {
        let key = |name: &str| format!("{section}.{name}");
        positive(&key("d_model"), self.d_model)?;
        positive(&key("heads"), self.heads)?;
        positive(&key("out_dim"), self.out_dim)?;
        positive(&key("max_len"), self.max_len)?;
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(Invalid::new(
                key("heads"),
                format!("must divide {section}.d_model"),
            ));
        }
        if !self.output_head && self.out_dim != self.d_model {
            return Err(Invalid::new(
                key("out_dim"),
                format!(
                    "must equal {section}.d_model without an output head ({section}.output_head = false)"
                ),
            ));
        }
        probability(&key("dropout"), self.dropout)?;
        probability(&key("attn_dropout"), self.attn_dropout)?;
        probability(&key("id_dropout"), self.id_dropout)?;
        if self.init_std.is_some_and(|s| s.is_nan() || s <= 0.0) {
            return Err(Invalid::new(key("init_std"), "must be greater than 0"));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
