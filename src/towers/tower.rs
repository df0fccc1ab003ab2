//! The tower: item ids → input vectors → + positions → blocks → linear → L2-norm.
//!
//! Inputs are item ids (batch, len), right-padded. Under the causal mask a real position never sees
//! padding, so padding needs no mask of its own; a history's embedding is read at its last real
//! position.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder, VarMap};

use super::adapter::Adapter;
use super::add_rows::add_rows;
use super::attention::causal_mask;
use super::block::Block;
use super::init::{seeded_init, SeededDropout};
use super::linear::{linear, Linear};
use super::norm::{layer_norm, LayerNorm};
use super::padding::{gather_positions, pad_right};
use super::spec::TowerSpec;
use super::whiten::Whitening;
use crate::tensor::l2_normalise;

/// What an item id turns into before the transformer.
pub enum TowerInput {
    /// LEARN: a frozen content embedding table (items × llm_dim), read through a trainable adapter;
    /// `trained[i]`: item i occurs in the training data (gets an ID embedding with `item_ids`).
    Content { table: Tensor, trained: Vec<bool> },
    /// LEARN online: content vectors of width `dim`; the catalogue grows, so each batch brings its
    /// own table through [`Tower::with_table`].
    Features { dim: usize },
    /// SASRec: a trainable item-ID embedding table.
    Ids { items: usize },
}

#[derive(Clone)]
enum InputLayer {
    Content {
        table: Option<Tensor>,
        adapter: Adapter,
        ids: Option<ItemIds>,
        whitening: Option<Whitening>,
    },
    Ids(Embedding),
}

/// Learned per-item offsets, masked to zero (value and gradient) for items not seen in training.
#[derive(Clone)]
struct ItemIds {
    offsets: Embedding,
    /// (items, 1): 1 for items seen in training, 0 otherwise.
    trained: Tensor,
    /// `towers.id_dropout`: in training, an occurrence's offset is dropped whole, so the towers
    /// also learn to score from content alone, as they must for cold items.
    dropout: SeededDropout,
}

/// Clones share the weights (candle tensors share storage), so a clone with another content table
/// trains and reads the same variables.
#[derive(Clone)]
pub struct Tower {
    input: InputLayer,
    positions: Embedding,
    /// Normalises input + position to unit scale (as BERT does), so the residual stream starts at the
    /// scale of the blocks' outputs instead of being buried under them.
    input_norm: LayerNorm,
    blocks: Vec<Block>,
    final_norm: Option<LayerNorm>,
    /// `None` with `spec.output_head = false` (SASRec: scored by the hidden state itself).
    out: Option<Linear>,
    dropout: SeededDropout,
    spec: TowerSpec,
    device: Device,
}

impl Tower {
    /// Builds the tower with its variables in `varmap`, initialised from `seed`.
    pub fn new(
        spec: &TowerSpec,
        input: TowerInput,
        varmap: &VarMap,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
        let input = input_layer(spec, input, varmap, &vb, seed, device)?;
        let blocks = blocks(spec, &vb, seed)?;
        let mut tower = Self {
            input,
            // Rows 0..max_len: history positions; row max_len: the item tower's slot.
            positions: embedding(spec.max_len + 1, spec.d_model, vb.pp("position_embeddings"))?,
            input_norm: layer_norm(spec.d_model, 1e-6, vb.pp("input_norm"))?,
            blocks,
            final_norm: if spec.pre_ln {
                Some(layer_norm(spec.d_model, 1e-6, vb.pp("final_norm"))?)
            } else {
                None
            },
            out: spec
                .output_head
                .then(|| linear(spec.d_model, spec.out_dim, vb.pp("out")))
                .transpose()?,
            dropout: SeededDropout::new(spec.dropout, seed.wrapping_add(1)),
            spec: spec.clone(),
            device: device.clone(),
        };
        seeded_init(varmap, seed, spec.init_std)?;
        if let InputLayer::Content {
            table,
            whitening: Some(whitening),
            ..
        } = &mut tower.input
        {
            whitening.reset()?;
            // Offline: the table is the whole catalogue; fit on it and whiten it once.
            if let Some(content) = table {
                whitening.fit(content)?;
                *content = whitening.apply(content)?;
            }
        }
        Ok(tower)
    }

    /// The content whitening, when `towers.whiten` is on and the input is content.
    pub fn whitening(&self) -> Option<&Whitening> {
        match &self.input {
            InputLayer::Content { whitening, .. } => whitening.as_ref(),
            InputLayer::Ids(_) => None,
        }
    }

    pub fn spec(&self) -> &TowerSpec {
        &self.spec
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Restarts every dropout mask sequence as if the tower had been built with `seed`.
    pub fn reseed_dropout(&self, seed: u64) {
        self.dropout.reseed(seed.wrapping_add(1));
        for (i, block) in self.blocks.iter().enumerate() {
            block.reseed_dropout(block_seed(seed, i));
        }
    }

    /// The same tower (same weights) reading item ids as rows of `table` (items × content dim,
    /// whitened here when the tower whitens).
    pub fn with_table(&self, table: Tensor) -> Result<Tower> {
        let InputLayer::Content {
            adapter,
            ids,
            whitening,
            ..
        } = &self.input
        else {
            candle_core::bail!("an item-ID tower has no content table");
        };
        let mut table = table.to_device(&self.device)?;
        if let Some(whitening) = whitening {
            if whitening.fitted_on()? > 0 {
                table = whitening.apply(&table)?;
            }
        }
        Ok(Tower {
            input: InputLayer::Content {
                table: Some(table),
                adapter: adapter.clone(),
                ids: ids.clone(),
                whitening: whitening.clone(),
            },
            ..self.clone()
        })
    }

    fn embed_ids(&self, ids: &Tensor, train: bool) -> Result<Tensor> {
        match &self.input {
            InputLayer::Content { table: None, .. } => {
                candle_core::bail!("content tower without a table: use Tower::with_table")
            }
            InputLayer::Content {
                table: Some(table),
                adapter,
                ids: item_ids,
                ..
            } => {
                let (b, l) = ids.dims2()?;
                let flat_ids = ids.flatten_all()?;
                let mut xs = adapter.forward(&table.index_select(&flat_ids, 0)?)?;
                if let Some(item_ids) = item_ids {
                    let keep = item_ids
                        .dropout
                        .forward(&item_ids.trained.index_select(&flat_ids, 0)?, train)?;
                    let offsets = item_ids.offsets.forward(&flat_ids)?.broadcast_mul(&keep)?;
                    xs = (xs + offsets)?;
                }
                xs.reshape((b, l, self.spec.d_model))
            }
            InputLayer::Ids(table) => table.forward(ids),
        }
    }

    /// (batch, len) item ids → (batch, len, out_dim) unit vectors; position j sees items 0..=j only.
    pub fn forward(&self, ids: &Tensor, train: bool) -> Result<Tensor> {
        let (_, l) = ids.dims2()?;
        self.forward_at(ids, &Tensor::arange(0u32, l as u32, &self.device)?, train)
    }

    /// `forward` with the position slots given: (len) rows of the position table.
    fn forward_at(&self, ids: &Tensor, positions: &Tensor, train: bool) -> Result<Tensor> {
        let (xs, mask) = self.inputs(ids, positions, train)?;
        self.head(&self.blocks_forward(xs, &mask, &self.blocks, train)?)
    }

    /// Input embeddings + positions, normalised (and dropped out): (batch, len, d_model), and
    /// the causal mask.
    fn inputs(&self, ids: &Tensor, positions: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (_, l) = ids.dims2()?;
        let xs = add_rows(
            &self.embed_ids(ids, train)?,
            &self.positions.forward(positions)?,
        )?;
        let xs = self
            .dropout
            .forward(&self.input_norm.forward(&xs)?, train)?;
        Ok((xs, causal_mask(l, &self.device)?))
    }

    fn blocks_forward(
        &self,
        mut xs: Tensor,
        mask: &Tensor,
        blocks: &[Block],
        train: bool,
    ) -> Result<Tensor> {
        for block in blocks {
            xs = block.forward(&xs, mask, train)?;
        }
        Ok(xs)
    }

    /// The final norm (pre-LN) and the output head.
    fn head(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.final_norm {
            Some(norm) => self.output(&norm.forward(xs)?),
            None => self.output(xs),
        }
    }

    /// The output head (when the tower has one), then unit length when `spec.normalise`.
    fn output(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = match &self.out {
            Some(out) => out.forward(xs)?,
            None => xs.clone(),
        };
        if self.spec.normalise {
            l2_normalise(&ys)
        } else {
            Ok(ys)
        }
    }

    /// The item tower: each item alone (a length-1 sequence) → (n, out_dim), read in the item
    /// slot of the position table (row `max_len`) rather than position 0. Otherwise a user whose
    /// history is one item j would *be* item j's vector, scoring j itself at the maximum cosine
    /// whatever the weights: every position-0 target then loses to the history item, and under
    /// the catalogue softmax an ID tower collapses every item onto one vector (loss stuck at
    /// ln |I|). Same module and weights, one input vector apart.
    pub fn items(&self, ids: &[u32], train: bool) -> Result<Tensor> {
        let ids = Tensor::from_vec(ids.to_vec(), (ids.len(), 1), &self.device)?;
        if self.spec.tied_items {
            let mut xs = self
                .dropout
                .forward(&self.embed_ids(&ids, train)?.squeeze(1)?, train)?;
            if let (Some(norm), true) = (&self.final_norm, self.spec.normalise) {
                xs = norm.forward(&xs)?;
            }
            return self.output(&xs);
        }
        let slot = Tensor::new(&[self.spec.max_len as u32], &self.device)?;
        self.forward_at(&ids, &slot, train)?.squeeze(1)
    }

    /// The user tower at inference: each history's embedding at its last item → (n, out_dim).
    /// Histories longer than `max_len` keep their most recent items.
    pub fn users(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let (ids, last) = pad_right(histories, self.spec.max_len, &self.device)?;
        let out = self.forward(&ids, false)?;
        gather_positions(&out, &last)
    }
}

fn block_seed(seed: u64, block: usize) -> u64 {
    seed.wrapping_add(1000 + block as u64)
}

#[path = "tower_anchors.rs"]
mod anchors;

/// The input layer: content through the adaptor (optionally whitened, with per-item ID offsets
/// offline), or item-ID embeddings.
fn input_layer(
    spec: &TowerSpec,
    input: TowerInput,
    varmap: &VarMap,
    vb: &VarBuilder,
    seed: u64,
    device: &Device,
) -> Result<InputLayer> {
    let whitening = |dim| {
        spec.whiten
            .then(|| Whitening::new(dim, varmap, device))
            .transpose()
    };
    let layer = match input {
        TowerInput::Content { table, trained } => {
            let adapter = Adapter::new(spec.adapter, table.dim(1)?, spec.d_model, vb)?;
            let ids = if spec.item_ids {
                let mask: Vec<f32> = trained.iter().map(|&t| f32::from(u8::from(t))).collect();
                Some(ItemIds {
                    offsets: embedding(trained.len(), spec.d_model, vb.pp("id_offsets"))?,
                    trained: Tensor::from_vec(mask, (trained.len(), 1), device)?,
                    dropout: SeededDropout::new(spec.id_dropout, seed.wrapping_add(2)),
                })
            } else {
                None
            };
            InputLayer::Content {
                table: Some(table.to_device(device)?),
                adapter,
                ids,
                whitening: whitening(table.dim(1)?)?,
            }
        }
        TowerInput::Features { .. } if spec.item_ids => {
            candle_core::bail!(
                "towers.item_ids is for offline training: the online catalogue grows, its towers read content alone"
            )
        }
        TowerInput::Features { .. } if !spec.normalise => {
            candle_core::bail!(
                "towers.normalise = false is for offline training: the service scores unit vectors (cosine + the popularity prior)"
            )
        }
        TowerInput::Features { dim } => InputLayer::Content {
            table: None,
            adapter: Adapter::new(spec.adapter, dim, spec.d_model, vb)?,
            ids: None,
            whitening: whitening(dim)?,
        },
        TowerInput::Ids { items } => {
            InputLayer::Ids(embedding(items, spec.d_model, vb.pp("item_embeddings"))?)
        }
    };
    Ok(layer)
}

/// The transformer blocks, each with its own dropout seeds.
fn blocks(spec: &TowerSpec, vb: &VarBuilder, seed: u64) -> Result<Vec<Block>> {
    (0..spec.layers)
        .map(|i| {
            let dropout = SeededDropout::new(spec.dropout, block_seed(seed, i));
            let attn_dropout =
                SeededDropout::new(spec.attn_dropout, block_seed(seed, i).wrapping_add(500));
            Block::new(
                spec.d_model,
                spec.heads,
                dropout,
                attn_dropout,
                spec.pre_ln,
                vb.pp(format!("block{i}")),
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "tower_tests.rs"]
mod tests;
