//! What the fused CPU ops ([`super::add_rows`], [`super::norm`], [`super::gelu`]) share: their
//! inputs as contiguous f32 slices, and results back as tensors.

use candle_core::{CpuStorage, Layout, Result, Shape, Tensor};

/// Rows per parallel task (a few thousand floats each at the towers' widths).
pub const ROWS_PER_TASK: usize = 64;

/// The f32 data of a contiguous CPU tensor.
pub fn f32_data<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("fused op: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("fused op: contiguous input only");
    };
    Ok(&data[start..end])
}

/// Runs `f` on the f32 data of `t` (made contiguous first).
pub fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("fused op: CPU tensors only");
    };
    Ok(f(f32_data(cpu, layout)?))
}

/// `values` as a tensor of `shape` on `like`'s device.
pub fn output(values: Vec<f32>, shape: Shape, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(values, shape, like.device())
}
