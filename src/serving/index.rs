//! Owns the aligned index of one model version: the item tower's vector of every catalogue row and
//! its int8 code, as an immutable snapshot made of fixed-size chunks shared between snapshots.
//! Readers take a snapshot without waiting; a writer makes the next snapshot by copying only the
//! chunks it changes (appending a row copies the last chunk, an edit copies the edited row's
//! chunk), never the whole matrix. A query ([`AlignedIndex::top`]) scans every row exactly up to
//! [`EXACT_ROWS`]; beyond, it scans the int8 codes (a quarter of the bytes) and re-scores the best
//! candidates exactly — no graph to rebuild per model version, a new item searchable as soon as it
//! is appended (docs/operations.md, "Large catalogues").

use std::sync::Arc;

use super::scan::{dot, dot_i8, quantise, TopN};

/// Rows per chunk (and per item-tower call when rows are embedded in bulk).
pub const CHUNK_ROWS: usize = 1024;

/// Catalogues up to this many rows are scored exactly, row by row; larger ones through the int8
/// codes first.
pub const EXACT_ROWS: usize = 65_536;

/// Candidates the int8 scan hands to exact re-scoring, for a query of the best `n`.
fn candidates(n: usize) -> usize {
    (4 * n).max(n + 256)
}

#[derive(Clone)]
pub struct AlignedIndex {
    dim: usize,
    rows: usize,
    /// Each CHUNK_ROWS × dim, row-major; the last one may be shorter.
    chunks: Vec<Arc<Vec<f32>>>,
    /// The same rows as int8 codes, and each row's scale (`row ≈ code · scale`).
    codes: Vec<Arc<(Vec<i8>, Vec<f32>)>>,
}

impl AlignedIndex {
    pub fn empty(dim: usize) -> Self {
        Self {
            dim,
            rows: 0,
            chunks: Vec::new(),
            codes: Vec::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
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
                next.codes.push(Arc::new((
                    Vec::with_capacity(CHUNK_ROWS * next.dim),
                    Vec::with_capacity(CHUNK_ROWS),
                )));
            }
            let data = Arc::make_mut(&mut next.chunks[chunk]);
            let (codes, scales) = Arc::make_mut(&mut next.codes[chunk]);
            if row == next.rows {
                data.extend_from_slice(vector);
                scales.push(quantise(vector, codes));
                next.rows += 1;
            } else {
                data[at..at + next.dim].copy_from_slice(vector);
                let mut code = Vec::with_capacity(next.dim);
                scales[row % CHUNK_ROWS] = quantise(vector, &mut code);
                codes[at..at + next.dim].copy_from_slice(&code);
            }
        }
        next
    }

    /// The `n` best rows by `cos(user, row) + bias(row)` (bias: the popularity prior), best first,
    /// scores exact. Up to [`EXACT_ROWS`] rows every row is scored exactly; beyond, the int8 codes
    /// pick `candidates(n)` rows and those are re-scored exactly.
    pub fn top(&self, user: &[f32], bias: impl Fn(usize) -> f32, n: usize) -> Vec<(u32, f32)> {
        let exact = |row: usize| {
            let (chunk, at) = (row / CHUNK_ROWS, (row % CHUNK_ROWS) * self.dim);
            dot(&self.chunks[chunk][at..at + self.dim], user) + bias(row)
        };
        if self.rows <= EXACT_ROWS {
            let mut top = TopN::new(n);
            for row in 0..self.rows {
                top.push(row as u32, exact(row));
            }
            return top.into_sorted();
        }
        let mut query = Vec::with_capacity(self.dim);
        let query_scale = quantise(user, &mut query);
        let mut pool = TopN::new(candidates(n));
        for (chunk, codes) in self.codes.iter().enumerate() {
            let (codes, scales) = codes.as_ref();
            for (i, (code, scale)) in codes.chunks_exact(self.dim).zip(scales).enumerate() {
                let row = chunk * CHUNK_ROWS + i;
                let approximate = dot_i8(code, &query) as f32 * scale * query_scale;
                pool.push(row as u32, approximate + bias(row));
            }
        }
        let mut top = TopN::new(n);
        for (row, _) in pool.into_sorted() {
            top.push(row, exact(row as usize));
        }
        top.into_sorted()
    }

    /// Bytes per row: the f32 vector, its int8 code and scale.
    pub fn bytes_per_row(&self) -> usize {
        self.dim * 4 + self.dim + 4
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(row: u32) -> Vec<f32> {
        vec![row as f32, 1.0]
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
        let top = appended.top(&[0.0, 1.0], |row| row as f32, 2);
        assert_eq!(
            top,
            [
                (CHUNK_ROWS as u32 + 3, 1028.0),
                (CHUNK_ROWS as u32 + 2, 1027.0)
            ]
        );
    }

    #[test]
    fn the_int8_scan_finds_what_the_exact_scan_finds() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut unit = |dim: usize| {
            let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        let rows = EXACT_ROWS + 5000;
        let vectors: Vec<Vec<f32>> = (0..rows).map(|_| unit(16)).collect();
        let index =
            AlignedIndex::empty(16).with_rows(&(0..rows as u32).collect::<Vec<_>>(), &vectors);
        let user = unit(16);
        let bias = |row: usize| if row.is_multiple_of(7) { 0.05 } else { 0.0 };
        let found = index.top(&user, bias, 100);
        let mut exact: Vec<(u32, f32)> = (0..rows)
            .map(|r| (r as u32, dot(&vectors[r], &user) + bias(r)))
            .collect();
        exact.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let truth: std::collections::HashSet<u32> = exact[..100].iter().map(|e| e.0).collect();
        let hits = found.iter().filter(|(r, _)| truth.contains(r)).count();
        assert!(hits >= 98, "recall@100 {hits}/100");
        assert_eq!(found[0], exact[0], "exact scores for what it returns");
    }
}
