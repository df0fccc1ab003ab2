//! Batch assembly for one online step: the taken users' sequences (every fresh action covered)
//! and the replayed users' stored histories, over a batch-local item table.

use super::{Loop, TrainerError};
use crate::service::active::Taken;
use crate::store::Store;
use crate::train::online::OnlineBatch;
use crate::train::rows::{effective_negatives, step_rows};

impl<S: Store> Loop<S> {
    /// The taken users' sequences (each read far enough back to cover its fresh actions) and the
    /// replayed users' latest windows, as rows of a batch-local table ([`step_rows`]): the whole
    /// catalogue (`all_items` up to `online.full_softmax_items`), or the batch's items plus
    /// uniform draws from the catalogue.
    pub(super) async fn batch(
        &mut self,
        taken: &Taken,
    ) -> Result<Option<OnlineBatch>, TrainerError> {
        let ctx = &self.ctx;
        let (training, catalogue) = (&ctx.config.training, &ctx.live.catalogue);
        let window = ctx.live.towers.max_len + ctx.config.online.recent_targets;
        let wanted: Vec<(&String, usize)> = taken
            .users
            .iter()
            .zip(&taken.fresh)
            .map(|(user, &fresh)| (user, fresh as usize))
            .chain(taken.replay.iter().map(|user| (user, 0)))
            .collect();
        let histories = futures::future::try_join_all(
            wanted
                .iter()
                .map(|&(user, fresh)| ctx.store.history(user, fresh + window)),
        )
        .await?;
        let ids: Vec<String> = histories
            .iter()
            .flatten()
            .map(|e| e.item_id.clone())
            .collect();
        catalogue.fetch_missing(&ctx.store, &ids).await?;
        let (sequences, fresh): (Vec<Vec<u32>>, Vec<usize>) = histories
            .iter()
            .zip(&wanted)
            .map(|(h, &(_, fresh))| {
                let rows: Vec<u32> = h.iter().filter_map(|e| catalogue.row(&e.item_id)).collect();
                (rows, fresh)
            })
            .filter(|(s, _)| s.len() >= 2)
            .unzip();
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
            fresh,
            drawn: step.drawn,
            catalogue_items,
            log_share,
        }))
    }
}
