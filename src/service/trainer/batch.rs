//! Batch assembly for one online step: users' recent sequences over a batch-local item table.

use super::{Loop, TrainerError};
use crate::store::Store;
use crate::train::online::OnlineBatch;
use crate::train::rows::{effective_negatives, step_rows};

impl<S: Store> Loop<S> {
    /// Users' recent sequences as rows of a batch-local table ([`step_rows`]): the whole
    /// catalogue (`all_items` up to `online.full_softmax_items`), or the batch's items plus
    /// uniform draws from the catalogue.
    pub(super) async fn batch(
        &mut self,
        users: &[String],
    ) -> Result<Option<OnlineBatch>, TrainerError> {
        let ctx = &self.ctx;
        let (training, catalogue) = (&ctx.config.training, &ctx.live.catalogue);
        let limit = ctx.live.towers.max_len + ctx.config.online.recent_targets;
        let histories =
            futures::future::try_join_all(users.iter().map(|u| ctx.store.history(u, limit)))
                .await?;
        let ids: Vec<String> = histories
            .iter()
            .flatten()
            .map(|e| e.item_id.clone())
            .collect();
        catalogue.fetch_missing(&ctx.store, &ids).await?;
        let sequences: Vec<Vec<u32>> = histories
            .iter()
            .map(|h| {
                h.iter()
                    .filter_map(|e| catalogue.row(&e.item_id))
                    .collect::<Vec<u32>>()
            })
            .filter(|s| s.len() >= 2)
            .collect();
        if sequences.len() < 2 {
            return Ok(None);
        }
        // Read after the rows above: the catalogue only grows, so it covers every one of them.
        let catalogue_items = catalogue.len();
        let negatives = effective_negatives(
            training.negatives,
            catalogue_items,
            ctx.config.online.full_softmax_items,
        );
        let step = step_rows(
            &sequences,
            catalogue_items,
            negatives,
            training.negative_samples,
            &mut self.rng,
        );
        let log_share = training.logq_correction.then(|| {
            let ids: Vec<String> = step.rows.iter().filter_map(|&r| catalogue.id(r)).collect();
            ctx.item_counts.log_share(ids.iter().map(String::as_str))
        });
        Ok(Some(OnlineBatch {
            table: catalogue.table(&step.rows)?,
            negatives: step.negatives,
            sequences: step.sequences,
            drawn: step.drawn,
            catalogue_items,
            log_share,
        }))
    }
}
