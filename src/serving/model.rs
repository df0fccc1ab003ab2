//! Owns the towers used for inference: the current model version (hot-swapped at each checkpoint,
//! or when a follower sees a new version), the frozen initial model (version 0, never trained: the
//! prequential baseline), and per model the aligned embeddings of the whole catalogue, extended as
//! items arrive and recomputed when the version changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use candle_core::{Result, Tensor};

use super::catalogue::Catalogue;
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

    /// A user's embedding from their history (catalogue rows, oldest first).
    pub fn user(&self, catalogue: &Catalogue, history: &[u32]) -> Result<Vec<f32>> {
        let recent = &history[history.len().saturating_sub(self.tower.spec().max_len)..];
        let (table, local) = local_table(catalogue, recent)?;
        let tower = self.tower.with_table(table)?;
        tower.users(&[&local])?.squeeze(0)?.to_vec1()
    }
}

/// The catalogue's aligned embeddings under one model version.
#[derive(Default)]
struct AlignedIndex {
    version: Option<u64>,
    rows: usize,
    /// rows × out_dim, row-major.
    matrix: Vec<f32>,
}

/// How many items one item-tower call embeds when the index is (re)built.
const INDEX_CHUNK: usize = 1024;

impl AlignedIndex {
    fn refresh(&mut self, model: &ServingModel, catalogue: &Catalogue) -> Result<()> {
        if self.version != Some(model.version) {
            *self = AlignedIndex {
                version: Some(model.version),
                ..Default::default()
            };
        }
        let total = catalogue.len();
        while self.rows < total {
            let end = total.min(self.rows + INDEX_CHUNK);
            let rows: Vec<u32> = (self.rows as u32..end as u32).collect();
            for v in model.items(catalogue, &rows)? {
                self.matrix.extend(v);
            }
            self.rows = end;
        }
        Ok(())
    }

    /// Keeps vectors just computed for `rows` under `version`: overwrites known rows (an edited
    /// item), appends the next row; anything else is left for `refresh`.
    fn record(&mut self, version: u64, rows: &[u32], vectors: &[Vec<f32>]) {
        if self.version != Some(version) {
            return;
        }
        for (&row, vector) in rows.iter().zip(vectors) {
            let (row, dim) = (row as usize, vector.len());
            if row < self.rows {
                self.matrix[row * dim..(row + 1) * dim].copy_from_slice(vector);
            } else if row == self.rows {
                self.matrix.extend_from_slice(vector);
                self.rows += 1;
            }
        }
    }
}

/// A model and its aligned index.
struct Slot {
    model: Arc<ServingModel>,
    index: Mutex<AlignedIndex>,
}

impl Slot {
    fn new(model: ServingModel) -> Self {
        Self {
            model: Arc::new(model),
            index: Mutex::default(),
        }
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
    current: RwLock<Arc<Slot>>,
    frozen: Arc<Slot>,
    /// Published as the `model` of aligned embeddings.
    towers_id: String,
}

impl Models {
    /// `initial` serves until the first swap; `frozen` is the never-trained model.
    pub fn new(initial: ServingModel, frozen: ServingModel, towers_id: String) -> Self {
        Self {
            current: RwLock::new(Arc::new(Slot::new(initial))),
            frozen: Arc::new(Slot::new(frozen)),
            towers_id,
        }
    }

    pub fn towers_id(&self) -> &str {
        &self.towers_id
    }

    fn slot(&self, which: Which) -> Arc<Slot> {
        match which {
            Which::Current => self
                .current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            Which::Frozen => self.frozen.clone(),
        }
    }

    pub fn current(&self) -> Arc<ServingModel> {
        self.slot(Which::Current).model.clone()
    }

    pub fn get(&self, which: Which) -> Arc<ServingModel> {
        self.slot(which).model.clone()
    }

    /// Serves `model` from now on (ignored if not newer than the current one).
    pub fn swap(&self, model: ServingModel) -> bool {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if model.version <= current.model.version {
            return false;
        }
        *current = Arc::new(Slot::new(model));
        true
    }

    /// Aligned embeddings of `rows` (new or edited items) under the current model, kept in its
    /// index (when it is not busy) so they are not computed again for this version.
    pub fn embed_items(&self, catalogue: &Catalogue, rows: &[u32]) -> Result<(u64, Vec<Vec<f32>>)> {
        let slot = self.slot(Which::Current);
        let vectors = slot.model.items(catalogue, rows)?;
        // Never wait here (the upload path): while the index is being rebuilt, it will compute
        // these rows itself.
        if let Ok(mut index) = slot.index.try_lock() {
            index.record(slot.model.version, rows, &vectors);
        }
        Ok((slot.model.version, vectors))
    }

    /// The whole catalogue's aligned embeddings under the current model (from its index).
    pub fn all_items(&self, catalogue: &Catalogue) -> Result<(u64, Vec<Vec<f32>>)> {
        let slot = self.slot(Which::Current);
        let mut index = slot.index.lock().unwrap_or_else(|p| p.into_inner());
        index.refresh(&slot.model, catalogue)?;
        let dim = index.matrix.len() / index.rows.max(1);
        let vectors = index
            .matrix
            .chunks_exact(dim.max(1))
            .map(<[f32]>::to_vec)
            .collect();
        Ok((slot.model.version, vectors))
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
                    item_id: catalogue.id(row)?,
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

    /// Scores every catalogue item for `user` (a unit vector from the same model) with `which`'s
    /// aligned index: (version, scores by catalogue row).
    pub fn scores(
        &self,
        which: Which,
        catalogue: &Catalogue,
        user: &[f32],
    ) -> Result<(u64, Vec<f32>)> {
        let slot = self.slot(which);
        let mut index = slot.index.lock().unwrap_or_else(|p| p.into_inner());
        index.refresh(&slot.model, catalogue)?;
        let dim = user.len();
        let scores = index
            .matrix
            .chunks_exact(dim)
            .map(|row| row.iter().zip(user).map(|(a, b)| a * b).sum())
            .collect();
        Ok((slot.model.version, scores))
    }
}
