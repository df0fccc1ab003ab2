//! Owns turning a batch of token sequences into packed embedding rows, with the range checks a
//! position-free model (rotary positions: the decoders, NomicBERT) needs: every id inside the
//! vocabulary, every sequence inside the rotary table.

use super::EncodeError;

/// The rows of `table` (vocab × `width`) for every token of every sequence, packed in order.
pub fn packed_rows(
    table: &[f32],
    width: usize,
    sequences: &[&[u32]],
    max_positions: usize,
) -> Result<Vec<f32>, EncodeError> {
    let vocab = table.len() / width;
    let tokens: usize = sequences.iter().map(|s| s.len()).sum();
    let mut rows = Vec::with_capacity(tokens * width);
    for seq in sequences {
        if seq.len() > max_positions {
            return Err(EncodeError::Tokenizer(format!(
                "{} tokens exceed the position table",
                seq.len()
            )));
        }
        for &id in *seq {
            let id = id as usize;
            if id >= vocab {
                return Err(EncodeError::Tokenizer(format!(
                    "token {id} is out of the vocabulary"
                )));
            }
            rows.extend_from_slice(&table[id * width..(id + 1) * width]);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_packed_in_order_and_out_of_range_is_an_error() {
        let table = [0., 1., 10., 11., 20., 21.];
        let rows = packed_rows(&table, 2, &[&[2, 0], &[1]], 4).unwrap();
        assert_eq!(rows, vec![20., 21., 0., 1., 10., 11.]);
        assert!(packed_rows(&table, 2, &[&[3]], 4).is_err());
        assert!(packed_rows(&table, 2, &[&[0, 0, 0]], 2).is_err());
    }
}
