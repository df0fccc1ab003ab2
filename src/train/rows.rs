//! Which catalogue rows one online step reads. With `all_items` negatives and a catalogue of at
//! most `online.full_softmax_items`, the whole catalogue (exact softmax); above that, or with
//! `sampled`/`mixed`, the batch's own items plus `negative_samples` uniform draws — so a step's
//! cost stays flat however large the catalogue grows (`all_items` becomes `mixed` there: the
//! batch's targets + the draws, logQ-corrected).

use rand::Rng;

use super::negatives::{draw_uniform, Negatives};

/// One step's rows, local to the step: `sequences` and `drawn` index `rows`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRows {
    /// The catalogue row of each local row (with the whole catalogue: every row, in order).
    pub rows: Vec<u32>,
    /// Per user, oldest first, as local rows.
    pub sequences: Vec<Vec<u32>>,
    /// Uniform draws from the catalogue, as local rows.
    pub drawn: Vec<u32>,
    /// The candidates this step runs: `negatives`, or `mixed` where `all_items` is too large.
    pub negatives: Negatives,
}

/// The candidate mode a step over `catalogue_items` runs.
pub fn effective_negatives(
    negatives: Negatives,
    catalogue_items: usize,
    full_softmax_items: usize,
) -> Negatives {
    if negatives == Negatives::AllItems && catalogue_items > full_softmax_items {
        Negatives::Mixed
    } else {
        negatives
    }
}

/// Maps users' `sequences` (catalogue rows) onto a step's local rows: the whole catalogue when
/// the step's softmax runs over it, else the batch's items then `draws` uniform draws.
pub fn step_rows(
    sequences: &[Vec<u32>],
    catalogue_items: usize,
    negatives: Negatives,
    draws: usize,
    rng: &mut impl Rng,
) -> StepRows {
    if negatives == Negatives::AllItems {
        return StepRows {
            rows: (0..catalogue_items as u32).collect(),
            sequences: sequences.to_vec(),
            drawn: Vec::new(),
            negatives,
        };
    }
    let mut local = std::collections::HashMap::new();
    let mut rows = Vec::new();
    let mut local_row = |row: u32| {
        *local.entry(row).or_insert_with(|| {
            rows.push(row);
            rows.len() as u32 - 1
        })
    };
    let sequences: Vec<Vec<u32>> = sequences
        .iter()
        .map(|s| s.iter().map(|&r| local_row(r)).collect())
        .collect();
    let drawn = if negatives.draws() {
        draw_uniform(catalogue_items, draws, rng)
            .into_iter()
            .map(|row| local_row(row as u32))
            .collect()
    } else {
        Vec::new()
    };
    StepRows {
        rows,
        sequences,
        drawn,
        negatives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn all_items_turns_mixed_above_the_threshold() {
        use Negatives::*;
        assert_eq!(effective_negatives(AllItems, 1000, 1000), AllItems);
        assert_eq!(effective_negatives(AllItems, 1001, 1000), Mixed);
        assert_eq!(effective_negatives(InBatch, 10_000_000, 1000), InBatch);
    }

    #[test]
    fn local_rows_cover_the_batch_and_the_draws_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let sequences = vec![vec![7, 900_000, 7], vec![3, 5]];
        let rows = step_rows(&sequences, 1_000_000, Negatives::Mixed, 16, &mut rng);
        assert_eq!(&rows.rows[..4], &[7, 900_000, 3, 5]);
        assert_eq!(rows.sequences, vec![vec![0, 1, 0], vec![2, 3]]);
        assert_eq!(rows.drawn.len(), 16);
        assert!(rows.rows.len() <= 4 + 16);
        for (&d, _) in rows.drawn.iter().zip(0..) {
            assert!((rows.rows[d as usize] as usize) < 1_000_000);
        }
        let whole = step_rows(&sequences, 10, Negatives::AllItems, 16, &mut rng);
        assert_eq!(whole.rows, (0..10).collect::<Vec<u32>>());
        assert_eq!(whole.sequences, sequences);
    }
}
