//! Shares item popularity across processes: every `serving.popularity_sync_ms` this process adds the
//! counts it observed since the last sync to the decayed counts in the store, then takes everyone's
//! (decayed to now) as its view ([`crate::serving::ItemCounts`]), and rebuilds the prior by
//! catalogue row that requests rank with. A store outage keeps the local counts growing and
//! retries with them at the next sync. The last counts are shared once every source has stopped
//! ([`share_last`]): a source's final batch comes after the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use crate::schemas::now_ms;
use crate::serving::{Catalogue, ItemCounts};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// What popularity sharing touches.
pub struct Popularity<S> {
    pub store: S,
    pub item_counts: Arc<ItemCounts>,
    /// Its rows are what the prior is rebuilt by.
    pub catalogue: Arc<Catalogue>,
    /// `serving.popularity_sync_ms`.
    pub every: Duration,
    /// `serving.popularity_half_life_secs`, in ms.
    pub half_life_ms: u64,
}

pub async fn run<S: Store>(ctx: Arc<Popularity<S>>, mut shutdown: Shutdown) {
    loop {
        if let Err(err) = sync(&ctx).await {
            tracing::warn!(%err, "popularity not shared this time");
        }
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = tokio::time::sleep(ctx.every) => {}
        }
    }
}

/// Adds what this process counted last to the shared counts: run once the sources have stopped.
pub async fn share_last<S: Store>(ctx: &Popularity<S>) {
    if let Err(err) = share_pending(ctx, now_ms()).await {
        tracing::warn!(%err, "last popularity counts not shared");
    }
}

/// Adds the counts observed here since the last call to the shared ones (kept for the next call
/// when the store fails).
async fn share_pending<S: Store>(ctx: &Popularity<S>, now: i64) -> Result<(), StoreError> {
    let pending = ctx.item_counts.take_pending();
    if pending.is_empty() {
        return Ok(());
    }
    let added = ctx
        .store
        .add_popularity(&pending, now, ctx.half_life_ms)
        .await;
    if added.is_err() {
        ctx.item_counts.restore_pending(pending);
    }
    added
}

async fn sync<S: Store>(ctx: &Arc<Popularity<S>>) -> Result<(), StoreError> {
    let now = now_ms();
    share_pending(ctx, now).await?;
    let counts = ctx.store.popularity(now, ctx.half_life_ms).await?;
    ctx.item_counts.replace(counts);
    // A hash lookup per catalogue row: off the async runtime.
    let (counts, catalogue) = (ctx.item_counts.clone(), ctx.catalogue.clone());
    let refreshed = tokio::task::spawn_blocking(move || {
        counts.refresh_rows(&catalogue);
    })
    .await;
    if let Err(err) = refreshed {
        tracing::warn!(%err, "popularity prior not rebuilt");
    }
    Ok(())
}
