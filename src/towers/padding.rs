//! Batch shaping for the towers: histories right-padded into one id tensor, and the outputs read
//! back at each history's last real position.

use candle_core::{Device, Result, Tensor};

/// Right-pads histories (truncated to their last `max_len` items) into (n, len) ids, and returns
/// the index of each one's last item.
pub fn pad_right(
    histories: &[&[u32]],
    max_len: usize,
    device: &Device,
) -> Result<(Tensor, Vec<usize>)> {
    let trimmed: Vec<&[u32]> = histories
        .iter()
        .map(|h| &h[h.len().saturating_sub(max_len)..])
        .collect();
    let len = trimmed.iter().map(|h| h.len()).max().unwrap_or(1).max(1);
    let mut ids = vec![0u32; trimmed.len() * len];
    for (row, h) in trimmed.iter().enumerate() {
        ids[row * len..row * len + h.len()].copy_from_slice(h);
    }
    let last = trimmed.iter().map(|h| h.len().max(1) - 1).collect();
    Ok((Tensor::from_vec(ids, (trimmed.len(), len), device)?, last))
}

/// Picks `out[b, positions[b]]` → (batch, dim).
pub fn gather_positions(out: &Tensor, positions: &[usize]) -> Result<Tensor> {
    let (b, l, d) = out.dims3()?;
    let flat: Vec<u32> = positions
        .iter()
        .enumerate()
        .map(|(row, &p)| (row * l + p) as u32)
        .collect();
    out.reshape((b * l, d))?
        .index_select(&Tensor::from_vec(flat, b, out.device())?, 0)
}
