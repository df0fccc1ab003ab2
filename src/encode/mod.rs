//! Owns the frozen content encoder: item text in, L2-normalised mean-pooled last hidden states out.
//! The LLM is never trained (LEARN's premise): an item is embedded once, when it is uploaded.
//!
//! - [`text`]: the paper's item text template.
//! - [`bert`]: BERT-family encoders (all-MiniLM-L6-v2 by default) from a local Hugging Face directory.

mod bert;
mod text;

pub use bert::ContentEncoder;
pub use text::item_text;

use std::path::PathBuf;

use candle_core::{Tensor, D};

/// Scales every row (last dimension) of `xs` to unit L2 norm.
pub fn l2_normalise(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norm = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    xs.broadcast_div(&norm)
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "model directory {dir} is missing {file}; fetch the default model with `scripts/fetch-model.sh` \
         (or point encoder.model_dir / --model-dir at a directory with config.json, tokenizer.json and model.safetensors)"
    )]
    MissingModel { dir: PathBuf, file: &'static str },
    #[error("cannot read {path}: {reason}")]
    BadModelFile { path: PathBuf, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model forward pass: {0}")]
    Candle(#[from] candle_core::Error),
}
