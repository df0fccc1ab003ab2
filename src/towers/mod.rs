//! Owns LEARN's preference-alignment towers (candle-nn, one small file per layer):
//!
//! - [`adapter`]: frozen content → the towers' width (one linear map, or a 2-layer MLP);
//! - [`init`]: seeded parameter initialisation and dropout (candle's CPU RNG cannot be seeded);
//! - [`attention`]: multi-head self-attention with an additive (causal) mask;
//! - [`norm`]: layer norm as one op with its own backward (candle-nn's fused one has none);
//! - [`linear`]: a linear layer as one 2-D product, its bias added by [`add_rows`] (`x + v` over
//!   leading rows, whose backward sums the rows in one pass; also the position table);
//! - [`gelu`]: GELU with its backward on the vectorised kernels;
//! - [`block`]: a transformer block, pre-LN or post-LN;
//! - [`padding`]: histories right-padded into one batch, outputs read at each last position;
//! - [`spec`]: the towers' shape and scoring options (`[towers]`, and SASRec's from `[sasrec]`);
//! - [`tower`]: input (frozen content embedding → linear adapter, or a trainable item-ID table for
//!   the SASRec baseline) + positions → blocks → linear → L2-norm. The user tower reads a history;
//!   the item tower is the same module and weights applied to one item alone, in its own position
//!   slot (paper variant (a)).
//! - [`whiten`]: the content vectors centred, decorrelated and re-normalised before the adapter
//!   (statistics fitted on the catalogue, carried with the weights);
//! - [`loss`]: softmax cross-entropy of (anchor, positive) pairs over candidate items, logQ-corrected.

mod adapter;
pub mod add_rows;
pub mod attention;
pub mod block;
mod fused;
pub mod gelu;
pub mod init;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod padding;
mod spec;
pub mod tower;
pub mod whiten;

pub use adapter::AdapterKind;
pub use spec::TowerSpec;
pub use tower::{Tower, TowerInput};
