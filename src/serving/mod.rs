//! Owns what the service answers with: the in-memory [`Catalogue`] of content embeddings, the
//! [`Models`] that turn them into aligned embeddings (current version, frozen baseline), top-K
//! recommendation ([`recommend`]). The HTTP API that serves them lives in `service::http`.

mod catalogue;
mod index;
mod model;
mod popularity;
pub mod recommend;
mod scan;

pub use catalogue::{Catalogue, Upsert};
pub use index::{AlignedIndex, EXACT_ROWS};
pub use model::{Models, ServingModel, Which};
pub use popularity::ItemCounts;
