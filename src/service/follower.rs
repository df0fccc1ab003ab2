//! Keeps a process that does not train in step with the one that does: it swaps to each new model
//! version published in the store (hot swap: requests in flight finish on the old version), and
//! extends the aligned index by catalogue rows it lacks (after a swap, or rows a history brought).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::trainer::serving_model;
use super::Shared;
use crate::checkpoint;
use crate::metrics::Event;
use crate::shutdown::Shutdown;
use crate::store::Store;

pub async fn run<S: Store>(shared: Arc<Shared<S>>, mut shutdown: Shutdown) {
    let poll = Duration::from_millis(shared.config.online.model_poll_ms.max(50));
    loop {
        // Rows the catalogue gained join the aligned index here, not in a request.
        let warm = shared.clone();
        if let Ok(Err(err)) =
            tokio::task::spawn_blocking(move || warm.models.warm(&warm.catalogue)).await
        {
            tracing::warn!(%err, "aligned index not extended");
        }
        if !shared.training.leading.load(Ordering::Relaxed) {
            match follow(&shared).await {
                Ok(()) => shared.warmup.model_loaded.store(true, Ordering::Relaxed),
                Err(err) => {
                    tracing::warn!(%err, "cannot load the published model; serving the previous version")
                }
            }
        }
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn follow<S: Store>(
    shared: &Arc<Shared<S>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let serving = shared.models.current().version;
    if shared
        .store
        .model_version()
        .await?
        .is_none_or(|v| v <= serving)
    {
        return Ok(());
    }
    let Some(stored) = shared.store.current_model().await? else {
        return Ok(());
    };
    let checkpoint = checkpoint::from_bytes(&stored.manifest, &stored.state)?;
    let model = serving_model(&shared.config, shared.catalogue.dim(), &checkpoint)?;
    if shared.serve_model(model).await? {
        shared
            .training
            .last_checkpoint_ms
            .store(checkpoint.manifest.created_ms, Ordering::Relaxed);
        shared.stats.emit(Event::ModelServed {
            version: stored.version,
        });
    }
    Ok(())
}
