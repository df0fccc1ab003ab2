//! Owns what the service answers with: the in-memory [`Catalogue`] of content embeddings, the
//! [`Models`] that turn them into aligned embeddings (current version, frozen baseline), top-K
//! recommendation ([`recommend`]) and the HTTP API ([`router`]: `/v1/recommend`, `/v1/status`,
//! `/healthz`, `/metrics`).

mod catalogue;
mod http;
mod model;
mod popularity;
pub mod recommend;

pub use catalogue::Catalogue;
pub use http::{router, Status};
pub use model::{Models, ServingModel, Which};
pub use popularity::ItemCounts;
