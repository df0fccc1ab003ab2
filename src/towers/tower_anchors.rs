//! The user tower read at a few positions per history (a training step's anchors): every block
//! but the last runs over the whole batch — later positions' keys and values need it — and the
//! last one, the final norm and the output head run on the anchors' rows alone. An online step
//! supervises the last `online.recent_targets` positions of 50: its last block then costs its
//! key/value projection instead of the whole block.

use candle_core::{Result, Tensor};

use super::Tower;

impl Tower {
    /// (batch, len) item ids → (P, out_dim): the outputs at `anchors` (flat indices
    /// row × len + position), the same values as `forward` gathered there.
    pub fn forward_anchors(&self, ids: &Tensor, anchors: &[u32], train: bool) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let Some((last, earlier)) = self.blocks.split_last() else {
            return self.gathered(ids, anchors, train);
        };
        // Dense anchors (offline, every position): the plain pass is as cheap and gathers less.
        if anchors.len() * 2 >= b * l {
            return self.gathered(ids, anchors, train);
        }
        let positions = Tensor::arange(0u32, l as u32, &self.device)?;
        let (xs, mask) = self.inputs(ids, &positions, train)?;
        let xs = self.blocks_forward(xs, &mask, earlier, train)?;
        self.head(&last.forward_rows(&xs, anchors, train)?)
    }

    /// The whole pass, then the anchors' rows.
    fn gathered(&self, ids: &Tensor, anchors: &[u32], train: bool) -> Result<Tensor> {
        let out = self.forward(ids, train)?;
        let (b, l, d) = out.dims3()?;
        out.reshape((b * l, d))?
            .index_select(&Tensor::new(anchors, &self.device)?, 0)
    }
}
