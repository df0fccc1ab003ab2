//! Batch assembly for one online step: users' recent sequences over a batch-local item table.

use std::collections::HashMap;

use super::{Loop, TrainerError};
use crate::store::Store;
use crate::train::negatives::draw_uniform;
use crate::train::online::OnlineBatch;
use crate::train::Negatives;

impl<S: Store> Loop<S> {
    /// Users' recent sequences as rows of a batch-local table: the batch's items plus uniform
    /// draws from the catalogue (`sampled`, `mixed`), or the whole catalogue (`all_items`).
    pub(super) async fn batch(
        &mut self,
        users: &[String],
    ) -> Result<Option<OnlineBatch>, TrainerError> {
        let shared = self.shared.clone();
        let training = &shared.config.training;
        let limit = shared.config.towers.max_len + shared.config.online.recent_targets;
        let histories =
            futures::future::try_join_all(users.iter().map(|u| shared.store.history(u, limit)))
                .await?;
        let ids: Vec<String> = histories
            .iter()
            .flatten()
            .map(|e| e.item_id.clone())
            .collect();
        shared.catalogue.fetch_missing(&shared.store, &ids).await?;
        let whole = training.negatives == Negatives::AllItems;
        let (mut local, mut rows) = (HashMap::new(), Vec::new());
        let mut local_row = |row: u32| {
            if whole {
                return row;
            }
            *local.entry(row).or_insert_with(|| {
                rows.push(row);
                rows.len() as u32 - 1
            })
        };
        let sequences: Vec<Vec<u32>> = histories
            .iter()
            .map(|h| {
                h.iter()
                    .filter_map(|e| shared.catalogue.row(&e.item_id))
                    .map(&mut local_row)
                    .collect::<Vec<u32>>()
            })
            .filter(|s| s.len() >= 2)
            .collect();
        if sequences.len() < 2 {
            return Ok(None);
        }
        // Read after the rows above: the catalogue only grows, so it covers every one of them.
        let catalogue_items = shared.catalogue.len();
        let drawn: Vec<u32> = if training.negatives.draws() {
            draw_uniform(catalogue_items, training.negative_samples, &mut self.rng)
                .into_iter()
                .map(|row| local_row(row as u32))
                .collect()
        } else {
            Vec::new()
        };
        if whole {
            rows = (0..catalogue_items as u32).collect();
        }
        let log_share = training.logq_correction.then(|| {
            let ids: Vec<String> = rows
                .iter()
                .filter_map(|&r| shared.catalogue.id(r))
                .collect();
            shared.item_counts.log_share(ids.iter().map(String::as_str))
        });
        Ok(Some(OnlineBatch {
            table: shared.catalogue.table(&rows)?,
            sequences,
            drawn,
            catalogue_items,
            log_share,
        }))
    }
}
