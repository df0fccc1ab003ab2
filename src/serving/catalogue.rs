//! The in-memory catalogue of content embeddings: every item this process knows, in arrival order.
//! Items come from the uploads this process embeds and from the catalogue changelog (every
//! process's uploads, `service/changelog.rs`); an item a history names before either brought it is
//! fetched from the store ([`Catalogue::fetch_missing`]). Rows never move, so an index into the
//! catalogue stays valid; an edited item overwrites its row; a deleted item keeps its row, marked
//! (never recommended or published; an upload of the same id brings it back).

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use candle_core::{Device, Result as TensorResult, Tensor};

use crate::schemas::EmbeddingSpace;
use crate::store::{Store, StoreError};

#[derive(Default)]
struct Rows {
    index: HashMap<String, u32>,
    ids: Vec<String>,
    vectors: Vec<f32>,
    deleted: HashSet<u32>,
}

/// What [`Catalogue::upsert`] did, with the item's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    New(u32),
    Edited(u32),
    Same(u32),
}

impl Upsert {
    pub fn row(self) -> u32 {
        match self {
            Upsert::New(row) | Upsert::Edited(row) | Upsert::Same(row) => row,
        }
    }
}

pub struct Catalogue {
    dim: usize,
    rows: RwLock<Rows>,
}

impl Catalogue {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            rows: RwLock::default(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.read().ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rows> {
        self.rows.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds or overwrites an item's content vector; returns its row. Vectors of another width are
    /// refused (a different encoder).
    pub fn insert(&self, item_id: &str, vector: &[f32]) -> Option<u32> {
        self.upsert(item_id, vector).map(Upsert::row)
    }

    /// [`Catalogue::insert`], telling a new row, an edited one and an unchanged one apart.
    pub fn upsert(&self, item_id: &str, vector: &[f32]) -> Option<Upsert> {
        if vector.len() != self.dim {
            tracing::warn!(
                item_id,
                dim = vector.len(),
                expected = self.dim,
                "content vector of another width ignored"
            );
            return None;
        }
        let mut rows = self.write();
        if let Some(&row) = rows.index.get(item_id) {
            let revived = rows.deleted.remove(&row);
            let start = row as usize * self.dim;
            let stored = &mut rows.vectors[start..start + self.dim];
            if stored == vector && !revived {
                return Some(Upsert::Same(row));
            }
            stored.copy_from_slice(vector);
            return Some(Upsert::Edited(row));
        }
        let row = rows.ids.len() as u32;
        rows.index.insert(item_id.to_string(), row);
        rows.ids.push(item_id.to_string());
        rows.vectors.extend_from_slice(vector);
        Some(Upsert::New(row))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rows> {
        self.rows.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a deleted item; its row if it was live.
    pub fn remove(&self, item_id: &str) -> Option<u32> {
        let mut rows = self.write();
        let row = *rows.index.get(item_id)?;
        rows.deleted.insert(row).then_some(row)
    }

    /// Rows of deleted items.
    pub fn deleted(&self) -> usize {
        self.read().deleted.len()
    }

    /// The row of a live item.
    pub fn row(&self, item_id: &str) -> Option<u32> {
        let rows = self.read();
        rows.index
            .get(item_id)
            .copied()
            .filter(|row| !rows.deleted.contains(row))
    }

    /// Calls `f` with every item id, by row, without copying them.
    pub fn with_ids<T>(&self, f: impl FnOnce(&[String]) -> T) -> T {
        f(&self.read().ids)
    }

    /// The id of a row, deleted or not (rows line up with tables built from the catalogue).
    pub fn id(&self, row: u32) -> Option<String> {
        self.read().ids.get(row as usize).cloned()
    }

    /// The id of a row whose item is not deleted.
    pub fn live_id(&self, row: u32) -> Option<String> {
        let rows = self.read();
        if rows.deleted.contains(&row) {
            return None;
        }
        rows.ids.get(row as usize).cloned()
    }

    /// The given rows' vectors as a (rows.len() × dim) tensor.
    pub fn table(&self, rows: &[u32]) -> TensorResult<Tensor> {
        let data = self.read();
        let mut values = Vec::with_capacity(rows.len() * self.dim);
        for &row in rows {
            let start = row as usize * self.dim;
            values.extend_from_slice(&data.vectors[start..start + self.dim]);
        }
        Tensor::from_vec(values, (rows.len(), self.dim), &Device::Cpu)
    }

    /// Fetches content embeddings of `ids` this catalogue lacks from the store.
    pub async fn fetch_missing<S: Store>(
        &self,
        store: &S,
        ids: &[String],
    ) -> Result<usize, StoreError> {
        let missing: Vec<&String> = {
            let rows = self.read();
            ids.iter()
                .filter(|id| !rows.index.contains_key(*id))
                .collect()
        };
        let mut added = 0;
        // One pipelined round trip per chunk, not one per item.
        for chunk in missing.chunks(1000) {
            let ids: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
            let found = store.item_embeddings(&ids, EmbeddingSpace::Content).await?;
            for (id, e) in ids.iter().zip(found) {
                if let Some(e) = e {
                    added += usize::from(self.insert(id, &e.vector).is_some());
                }
            }
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_stable_and_overwritten_in_place() {
        let catalogue = Catalogue::new(2);
        assert_eq!(catalogue.insert("a", &[1.0, 0.0]), Some(0));
        assert_eq!(catalogue.insert("b", &[0.0, 1.0]), Some(1));
        assert_eq!(catalogue.insert("a", &[0.6, 0.8]), Some(0));
        assert_eq!(catalogue.insert("c", &[1.0]), None, "wrong width");
        assert_eq!(catalogue.upsert("b", &[0.0, 1.0]), Some(Upsert::Same(1)));
        assert_eq!(catalogue.upsert("b", &[1.0, 0.0]), Some(Upsert::Edited(1)));
        assert_eq!(catalogue.upsert("c", &[1.0, 0.0]), Some(Upsert::New(2)));
        assert_eq!(catalogue.insert("b", &[0.0, 1.0]), Some(1));
        let table = catalogue.table(&[1, 0]).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(table, vec![vec![0.0, 1.0], vec![0.6, 0.8]]);
        assert_eq!(catalogue.id(1).as_deref(), Some("b"));
    }
}
