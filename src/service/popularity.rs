//! Shares item popularity across processes: every `serving.popularity_sync_ms` this process adds the
//! counts it observed since the last sync to the decayed counts in the store, then takes everyone's
//! (decayed to now) as its view ([`crate::serving::ItemCounts`]), and rebuilds the prior by
//! catalogue row that requests rank with. A store outage keeps the local counts growing and
//! retries with them at the next sync.

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
    // What this process counted last reaches the store before it stops.
    if let Err(err) = sync(&shared).await {
        tracing::warn!(%err, "last popularity counts not shared");
    }
}

async fn sync<S: Store>(shared: &Arc<Shared<S>>) -> Result<(), StoreError> {
    let half_life_ms = shared.config.serving.popularity_half_life_secs * 1000;
    let now = now_ms();
    let pending = shared.item_counts.take_pending();
    if !pending.is_empty() {
        if let Err(err) = shared
            .store
            .add_popularity(&pending, now, half_life_ms)
            .await
        {
            shared.item_counts.restore_pending(pending);
            return Err(err);
        }
    }
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
