//! Shares item popularity across processes: every `serving.popularity_sync_ms` this process adds the
//! counts it observed since the last sync to the decayed counts in the store, then takes everyone's
//! (decayed to now) as its view ([`crate::serving::ItemCounts`]), and rebuilds the prior by
//! catalogue row that requests rank with. A store outage keeps the local counts growing and
//! retries with them at the next sync. The last counts are shared once every source has stopped
//! ([`share_last`]): a source's final batch comes after the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::schemas::now_ms;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

pub async fn run<S: Store>(shared: Arc<Shared<S>>, mut shutdown: Shutdown) {
    let every = Duration::from_millis(shared.config.serving.popularity_sync_ms);
    loop {
        if let Err(err) = sync(&shared).await {
            tracing::warn!(%err, "popularity not shared this time");
        }
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Adds what this process counted last to the shared counts: run once the sources have stopped.
pub async fn share_last<S: Store>(shared: &Shared<S>) {
    if let Err(err) = share_pending(shared, now_ms()).await {
        tracing::warn!(%err, "last popularity counts not shared");
    }
}

/// Adds the counts observed here since the last call to the shared ones (kept for the next call
/// when the store fails).
async fn share_pending<S: Store>(shared: &Shared<S>, now: i64) -> Result<(), StoreError> {
    let pending = shared.item_counts.take_pending();
    if pending.is_empty() {
        return Ok(());
    }
    let half_life_ms = shared.config.serving.popularity_half_life_secs * 1000;
    let added = shared
        .store
        .add_popularity(&pending, now, half_life_ms)
        .await;
    if added.is_err() {
        shared.item_counts.restore_pending(pending);
    }
    added
}

async fn sync<S: Store>(shared: &Arc<Shared<S>>) -> Result<(), StoreError> {
    let half_life_ms = shared.config.serving.popularity_half_life_secs * 1000;
    let now = now_ms();
    share_pending(shared, now).await?;
    let counts = shared.store.popularity(now, half_life_ms).await?;
    shared.item_counts.replace(counts);
    // A hash lookup per catalogue row: off the async runtime.
    let refresh = shared.clone();
    let refreshed = tokio::task::spawn_blocking(move || {
        refresh.item_counts.refresh_rows(&refresh.catalogue);
    })
    .await;
    if let Err(err) = refreshed {
        tracing::warn!(%err, "popularity prior not rebuilt");
    }
    Ok(())
}
