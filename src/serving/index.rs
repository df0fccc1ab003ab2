//! Owns the aligned index of one model version: the item tower's vector of every catalogue row,
//! as an immutable snapshot made of fixed-size chunks shared between snapshots. Readers take a
//! snapshot without waiting; a writer makes the next snapshot by copying only the chunks it
//! changes (appending a row copies the last chunk, an edit copies the edited row's chunk), never
//! the whole matrix.

use std::sync::Arc;

use candle_core::Result;

use super::catalogue::Catalogue;
use super::model::ServingModel;

/// Rows per chunk (and per item-tower call when rows are embedded in bulk).
const CHUNK_ROWS: usize = 1024;

#[derive(Clone)]
pub(super) struct AlignedIndex {
    dim: usize,
    rows: usize,
    /// Each CHUNK_ROWS × dim, row-major; the last one may be shorter.
    chunks: Vec<Arc<Vec<f32>>>,
}

impl AlignedIndex {
    pub fn empty(dim: usize) -> Self {
        Self {
            dim,
            rows: 0,
            chunks: Vec::new(),
        }
    }

    /// The index of every catalogue row under `model`.
    pub fn build(model: &ServingModel, catalogue: &Catalogue) -> Result<Self> {
        let empty = Self::empty(model.tower.spec().out_dim);
        let (rows, vectors) = empty.missing(model, catalogue)?;
        Ok(empty.with_rows(&rows, &vectors))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows the catalogue has and this index lacks, and their vectors under `model` (the item
    /// tower in chunks).
    pub fn missing(
        &self,
        model: &ServingModel,
        catalogue: &Catalogue,
    ) -> Result<(Vec<u32>, Vec<Vec<f32>>)> {
        let (total, mut vectors) = (catalogue.len(), Vec::new());
        let rows: Vec<u32> = (self.rows as u32..total as u32).collect();
        for chunk in rows.chunks(CHUNK_ROWS) {
            vectors.extend(model.items(catalogue, chunk)?);
        }
        Ok((rows, vectors))
    }

    /// The next snapshot with `vectors` for `rows`: known rows overwritten (an edited item), the
    /// next row appended; rows beyond it are left out (`missing` lists them for a later extension).
    pub fn with_rows(&self, rows: &[u32], vectors: &[Vec<f32>]) -> Self {
        let mut next = self.clone();
        for (&row, vector) in rows.iter().zip(vectors) {
            debug_assert_eq!(vector.len(), self.dim);
            let row = row as usize;
            if row > next.rows {
                continue;
            }
            let (chunk, at) = (row / CHUNK_ROWS, (row % CHUNK_ROWS) * next.dim);
            if chunk == next.chunks.len() {
                next.chunks
                    .push(Arc::new(Vec::with_capacity(CHUNK_ROWS * next.dim)));
            }
            let data = Arc::make_mut(&mut next.chunks[chunk]);
            if row == next.rows {
                data.extend_from_slice(vector);
                next.rows += 1;
            } else {
                data[at..at + next.dim].copy_from_slice(vector);
            }
        }
        next
    }

    /// Cosine (dot product of unit vectors) of `user` with every row, by row.
    pub fn scores(&self, user: &[f32]) -> Vec<f32> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.chunks_exact(self.dim))
            .map(|row| dot(row, user))
            .collect()
    }

    /// Every row's vector, by row.
    pub fn vectors(&self) -> Vec<Vec<f32>> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.chunks_exact(self.dim))
            .map(<[f32]>::to_vec)
            .collect()
    }
}

/// Dot product in eight independent lanes, which the compiler vectorises (a single running sum
/// cannot be reordered, so it stays scalar).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(row: u32) -> Vec<f32> {
        vec![row as f32, 1.0]
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn appends_and_edits_copy_only_the_chunks_they_touch() {
        let rows: Vec<u32> = (0..CHUNK_ROWS as u32 + 3).collect();
        let vectors: Vec<Vec<f32>> = rows.iter().map(|&r| unit(r)).collect();
        let first = AlignedIndex::empty(2).with_rows(&rows, &vectors);
        assert_eq!(first.rows(), CHUNK_ROWS + 3);
        assert_eq!(first.chunks.len(), 2);

        // Append one row and edit row 1: chunk 0 is copied (edit), the old snapshot is unchanged.
        let next = first.with_rows(
            &[first.rows() as u32, 1, 99_999],
            &[unit(7), vec![5.0, 5.0], unit(0)],
        );
        assert_eq!(
            next.rows(),
            first.rows() + 1,
            "a row beyond the next one is left out"
        );
        assert_eq!(next.vectors()[1], vec![5.0, 5.0]);
        assert_eq!(first.vectors()[1], unit(1), "snapshots are immutable");
        assert!(!Arc::ptr_eq(&first.chunks[0], &next.chunks[0]));

        // An append alone shares every full chunk.
        let appended = first.with_rows(&[first.rows() as u32], &[unit(9)]);
        assert!(Arc::ptr_eq(&first.chunks[0], &appended.chunks[0]));
        let scores = appended.scores(&[0.0, 1.0]);
        assert_eq!(scores.len(), appended.rows());
        assert!(scores.iter().all(|&s| s == 1.0));
    }
}
