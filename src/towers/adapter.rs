//! The content adapter: frozen content vectors (whitened or not) → the towers' width. `linear`:
//! one projection (LEARN's); `mlp`: two layers with a GELU between (WhitenRec's head over whitened
//! text vectors), for an encoder space richer than one linear map reads.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::gelu::gelu;
use super::linear::{linear, Linear};

/// `towers.adapter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    #[default]
    Linear,
    Mlp,
}

#[derive(Clone)]
pub struct Adapter {
    /// `adapter.*` (the only layer of `linear`, so its checkpoints read as before).
    first: Linear,
    /// `adapter_out.*`: the MLP's second layer, after the GELU.
    second: Option<Linear>,
}

impl Adapter {
    /// Its variables under `vb` (`adapter`, and `adapter_out` for the MLP).
    pub fn new(kind: AdapterKind, inputs: usize, outputs: usize, vb: &VarBuilder) -> Result<Self> {
        Ok(Self {
            first: linear(inputs, outputs, vb.pp("adapter"))?,
            second: match kind {
                AdapterKind::Linear => None,
                AdapterKind::Mlp => Some(linear(outputs, outputs, vb.pp("adapter_out"))?),
            },
        })
    }

    /// (…, inputs) → (…, outputs).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.first.forward(xs)?;
        match &self.second {
            Some(second) => second.forward(&gelu(&ys)?),
            None => Ok(ys),
        }
    }
}
