//! Owns the towers used for inference: the current model version (hot-swapped at each checkpoint,
//! or when a follower sees a new version), the frozen initial model (version 0, never trained: the
//! prequential baseline), and per model its aligned index ([`AlignedIndex`]): built before a new
//! version is swapped in, extended as items arrive, read by requests without waiting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use candle_core::{Result, Tensor};

use super::catalogue::Catalogue;
use super::index::{AlignedIndex, CHUNK_ROWS as INDEX_CHUNK_ROWS};
use crate::schemas::{now_ms, EmbeddingSpace, ItemEmbedding};
use crate::towers::Tower;

/// Towers at one version.
pub struct ServingModel {
    pub version: u64,
    pub tower: Tower,
    pub created_ms: i64,
}

/// Batch-local table for `rows` (deduplicated) and each row's local id.
fn local_table(catalogue: &Catalogue, rows: &[u32]) -> Result<(Tensor, Vec<u32>)> {
    let mut local: HashMap<u32, u32> = HashMap::new();
    let mut unique = Vec::new();
    let ids = rows
        .iter()
        .map(|&row| {
            *local.entry(row).or_insert_with(|| {
                unique.push(row);
                unique.len() as u32 - 1
            })
        })
        .collect();
    Ok((catalogue.table(&unique)?, ids))
}

impl ServingModel {
    /// Aligned embeddings (item tower) of catalogue rows.
    pub fn items(&self, catalogue: &Catalogue, rows: &[u32]) -> Result<Vec<Vec<f32>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let tower = self.tower.with_table(catalogue.table(rows)?)?;
        let local: Vec<u32> = (0..rows.len() as u32).collect();
        tower.items(&local, false)?.to_vec2()
    }

    /// The index of every catalogue row under this model.
    fn build_index(&self, catalogue: &Catalogue) -> Result<AlignedIndex> {
        let empty = AlignedIndex::empty(self.tower.spec().out_dim);
        let (rows, vectors) = self.missing(&empty, catalogue)?;
        Ok(empty.with_rows(&rows, &vectors))
    }

    /// The rows the catalogue has and `index` lacks, and their vectors under this model (the item
    /// tower in chunks of [`INDEX_CHUNK_ROWS`]).
    fn missing(
        &self,
        index: &AlignedIndex,
        catalogue: &Catalogue,
    ) -> Result<(Vec<u32>, Vec<Vec<f32>>)> {
        let (total, mut vectors) = (catalogue.len(), Vec::new());
        let rows: Vec<u32> = (index.rows() as u32..total as u32).collect();
        for chunk in rows.chunks(INDEX_CHUNK_ROWS) {
            vectors.extend(self.items(catalogue, chunk)?);
        }
        Ok((rows, vectors))
    }

    /// A user's embedding from their history (catalogue rows, oldest first).
    pub fn user(&self, catalogue: &Catalogue, history: &[u32]) -> Result<Vec<f32>> {
        let recent = &history[history.len().saturating_sub(self.tower.spec().max_len)..];
        let (table, local) = local_table(catalogue, recent)?;
        let tower = self.tower.with_table(table)?;
        tower.users(&[&local])?.squeeze(0)?.to_vec1()
    }
}

/// A model and its aligned index: readers load the index snapshot without waiting; writers (the
/// upload path, the follower's warm-up, a request that finds a few rows missing) make the next
/// snapshot one at a time.
struct Slot {
    model: Arc<ServingModel>,
    index: ArcSwap<AlignedIndex>,
    writer: Mutex<()>,
    /// A request asked for this model (the frozen one is warmed only once it is used).
    asked: AtomicBool,
}

/// The most rows a request embeds itself when the index lags the catalogue (a few milliseconds);
/// beyond it the request scores the snapshot and the follower's warm-up adds the rest, so no
/// request does a whole-catalogue build (nor do eight of them at once).
const REQUEST_EXTEND_MAX: usize = 256;

impl Slot {
    fn new(model: ServingModel, index: AlignedIndex) -> Self {
        Self {
            model: Arc::new(model),
            index: ArcSwap::from_pointee(index),
            writer: Mutex::default(),
            asked: AtomicBool::new(false),
        }
    }

    /// The index extended by the catalogue rows it lacks (items another process embedded since
    /// the last sync, or the frozen model's new rows) when there are at most `limit` of them;
    /// the snapshot as it is otherwise.
    fn index(&self, catalogue: &Catalogue, limit: usize) -> Result<Arc<AlignedIndex>> {
        let index = self.index.load_full();
        if catalogue.len() <= index.rows() || catalogue.len() - index.rows() > limit {
            return Ok(index);
        }
        let (rows, vectors) = self.model.missing(&index, catalogue)?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let latest = self.index.load_full();
        // Rows the upload path appended meanwhile are kept; only the rest of the tail is added.
        let skip = latest.rows().saturating_sub(index.rows()).min(rows.len());
        let next = Arc::new(latest.with_rows(&rows[skip..], &vectors[skip..]));
        self.index.store(next.clone());
        Ok(next)
    }
}

/// Which model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    Current,
    Frozen,
}

pub struct Models {
    current: ArcSwap<Slot>,
    frozen: Arc<Slot>,
    /// Published as the `model` of aligned embeddings.
    towers_id: String,
}

impl Models {
    /// `initial` serves until the first swap; `frozen` is the never-trained model.
    pub fn new(initial: ServingModel, frozen: ServingModel, towers_id: String) -> Self {
        let (current_index, frozen_index) = (
            AlignedIndex::empty(initial.tower.spec().out_dim),
            AlignedIndex::empty(frozen.tower.spec().out_dim),
        );
        Self {
            current: ArcSwap::from_pointee(Slot::new(initial, current_index)),
            frozen: Arc::new(Slot::new(frozen, frozen_index)),
            towers_id,
        }
    }

    pub fn towers_id(&self) -> &str {
        &self.towers_id
    }

    fn slot(&self, which: Which) -> Arc<Slot> {
        match which {
            Which::Current => self.current.load_full(),
            Which::Frozen => self.frozen.clone(),
        }
    }

    pub fn current(&self) -> Arc<ServingModel> {
        self.slot(Which::Current).model.clone()
    }

    pub fn get(&self, which: Which) -> Arc<ServingModel> {
        self.slot(which).model.clone()
    }

    /// Serves `model` from now on (ignored if not newer than the current one). Its aligned index
    /// is built here, before the swap, so no request waits for it: CPU-heavy on large catalogues,
    /// call it off the async runtime.
    pub fn swap(&self, model: ServingModel, catalogue: &Catalogue) -> Result<bool> {
        if model.version <= self.current.load().model.version {
            return Ok(false);
        }
        let index = model.build_index(catalogue)?;
        let slot = Arc::new(Slot::new(model, index));
        let previous = self.current.rcu(|current| {
            if slot.model.version > current.model.version {
                slot.clone()
            } else {
                current.clone()
            }
        });
        Ok(previous.model.version < slot.model.version)
    }

    /// Aligned embeddings of `rows` (new or edited items) under the current model, kept in its
    /// index so they are not computed again for this version.
    pub fn embed_items(&self, catalogue: &Catalogue, rows: &[u32]) -> Result<(u64, Vec<Vec<f32>>)> {
        let slot = self.slot(Which::Current);
        let vectors = slot.model.items(catalogue, rows)?;
        {
            let _writer = slot.writer.lock().unwrap_or_else(|p| p.into_inner());
            let next = slot.index.load().with_rows(rows, &vectors);
            slot.index.store(Arc::new(next));
        }
        Ok((slot.model.version, vectors))
    }

    /// Extends the current model's index by the catalogue rows it lacks.
    /// Off the request path (the follower, the changelog); the frozen model too once a
    /// request has asked for it.
    pub fn warm(&self, catalogue: &Catalogue) -> Result<()> {
        self.slot(Which::Current).index(catalogue, usize::MAX)?;
        if self.frozen.asked.load(Ordering::Relaxed) {
            self.frozen.index(catalogue, usize::MAX)?;
        }
        Ok(())
    }

    /// The whole catalogue's aligned embeddings under the current model (from its index).
    pub fn all_items(&self, catalogue: &Catalogue) -> Result<(u64, Vec<Vec<f32>>)> {
        let slot = self.slot(Which::Current);
        Ok((
            slot.model.version,
            slot.index(catalogue, usize::MAX)?.vectors(),
        ))
    }

    /// Output records of aligned embeddings: catalogue `rows` and their `vectors` at `version`.
    pub fn records(
        &self,
        catalogue: &Catalogue,
        version: u64,
        rows: &[u32],
        vectors: Vec<Vec<f32>>,
    ) -> Vec<ItemEmbedding> {
        let ts_ms = now_ms();
        rows.iter()
            .zip(vectors)
            .filter_map(|(&row, vector)| {
                Some(ItemEmbedding {
                    item_id: catalogue.live_id(row)?,
                    model: self.towers_id.clone(),
                    space: EmbeddingSpace::Aligned,
                    dim: vector.len(),
                    vector,
                    version,
                    ts_ms,
                })
            })
            .collect()
    }

    /// The `n` best catalogue rows for `user` (a unit vector from the same model) by
    /// `cos + bias(row)` in `which`'s aligned index: (version, (row, score) best first).
    pub fn top(
        &self,
        which: Which,
        catalogue: &Catalogue,
        user: &[f32],
        bias: impl Fn(usize) -> f32,
        n: usize,
    ) -> Result<(u64, Vec<(u32, f32)>)> {
        let slot = self.slot(which);
        slot.asked.store(true, Ordering::Relaxed);
        let index = slot.index(catalogue, REQUEST_EXTEND_MAX)?;
        Ok((slot.model.version, index.top(user, bias, n)))
    }
}
