//! The recommenders compared, all behind [`Scorer`]: a score for every item given a history.

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;

use crate::tensor::l2_normalise;
use crate::towers::whiten::Whitening;
use crate::towers::Tower;

pub trait Scorer {
    /// (histories, items) scores; higher is better.
    fn scores(&self, histories: &[&[u32]]) -> Result<Tensor>;
}

/// LEARN or SASRec: cosine between the user tower's output and every item's item-tower output.
pub struct TowerScorer<'a> {
    tower: &'a Tower,
    items: Tensor,
}

impl<'a> TowerScorer<'a> {
    pub fn new(tower: &'a Tower, item_count: usize) -> Result<Self> {
        let ids: Vec<u32> = (0..item_count as u32).collect();
        let chunks = ids
            .chunks(2048)
            .map(|c| tower.items(c, false))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            tower,
            items: Tensor::cat(&chunks, 0)?,
        })
    }
}

impl Scorer for TowerScorer<'_> {
    fn scores(&self, histories: &[&[u32]]) -> Result<Tensor> {
        self.tower.users(histories)?.matmul(&self.items.t()?)
    }
}

/// Paper variant (c), no alignment: the user is the mean of the (centred, normalised) raw content
/// embeddings of their last `max_len` items; items are their raw content embeddings.
pub struct ContentScorer {
    items: Tensor,
    max_len: usize,
}

impl ContentScorer {
    pub fn new(table: &Tensor, max_len: usize) -> Result<Self> {
        // Mean-pooled LM embeddings share a common direction; centring removes it.
        let centred = table.broadcast_sub(&table.mean_keepdim(0)?)?;
        Ok(Self {
            items: l2_normalise(&centred)?,
            max_len,
        })
    }

    /// The same over whitened content ([`Whitening`] fitted on the catalogue).
    pub fn whitened(table: &Tensor, max_len: usize) -> Result<Self> {
        let whitening = Whitening::new(table.dim(1)?, &VarMap::new(), table.device())?;
        whitening.fit(table)?;
        Self::new(&whitening.apply(table)?, max_len)
    }
}

impl Scorer for ContentScorer {
    fn scores(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let users = histories
            .iter()
            .map(|h| {
                let recent = &h[h.len().saturating_sub(self.max_len)..];
                let ids = Tensor::from_vec(recent.to_vec(), recent.len(), self.items.device())?;
                self.items.index_select(&ids, 0)?.mean(0)
            })
            .collect::<Result<Vec<_>>>()?;
        l2_normalise(&Tensor::stack(&users, 0)?)?.matmul(&self.items.t()?)
    }
}

/// Most-interacted items first, the same list for everyone.
pub struct PopularityScorer {
    counts: Tensor,
}

impl PopularityScorer {
    pub fn new(train: &[Vec<u32>], item_count: usize) -> Result<Self> {
        let mut counts = vec![0f32; item_count];
        for &item in train.iter().flatten() {
            counts[item as usize] += 1.0;
        }
        Ok(Self {
            counts: Tensor::from_vec(counts, (1, item_count), &Device::Cpu)?,
        })
    }
}

impl Scorer for PopularityScorer {
    fn scores(&self, histories: &[&[u32]]) -> Result<Tensor> {
        let (_, items) = self.counts.dims2()?;
        self.counts
            .broadcast_as((histories.len(), items))?
            .contiguous()
    }
}
