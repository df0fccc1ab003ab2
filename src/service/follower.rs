//! Keeps a process that does not train in step with the one that does: it swaps to each new model
//! version published in the store (hot swap: requests in flight finish on the old version), and
//! extends the aligned index by catalogue rows it lacks (after a swap, or rows a history brought).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::live::LiveModels;
use super::shared::{TrainingState, Warmup};
use crate::checkpoint;
use crate::metrics::{Event, Stats};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// What the follower touches.
pub struct Follower<S> {
    pub store: S,
    pub live: LiveModels,
    pub stats: Arc<Stats>,
    /// Read (`leading`: the trainer serves its own versions) and written (`last_checkpoint_ms`).
    pub training: Arc<TrainingState>,
    pub warmup: Arc<Warmup>,
    /// `online.model_poll_ms`.
    pub poll: Duration,
}

pub async fn run<S: Store>(ctx: Follower<S>, mut shutdown: Shutdown) {
    let poll = ctx.poll.max(Duration::from_millis(50));
    loop {
        // Rows the catalogue gained join the aligned index here, not in a request.
        let warm = ctx.live.clone();
        if let Ok(Err(err)) =
            tokio::task::spawn_blocking(move || warm.models.warm(&warm.catalogue)).await
        {
            tracing::warn!(%err, "aligned index not extended");
        }
        if !ctx.training.leading.load(Ordering::Relaxed) {
            match follow(&ctx).await {
                Ok(()) => ctx.warmup.model_loaded.store(true, Ordering::Relaxed),
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
    ctx: &Follower<S>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let serving = ctx.live.models.current().version;
    if ctx
        .store
        .model_version()
        .await?
        .is_none_or(|v| v <= serving)
    {
        return Ok(());
    }
    let Some(stored) = ctx.store.current_model().await? else {
        return Ok(());
    };
    let checkpoint = checkpoint::from_bytes(&stored.manifest, &stored.state)?;
    let model = ctx.live.load(&checkpoint)?;
    if ctx.live.serve(model).await? {
        ctx.training
            .last_checkpoint_ms
            .store(checkpoint.manifest.created_ms, Ordering::Relaxed);
        ctx.stats.emit(Event::ModelServed {
            version: stored.version,
        });
    }
    Ok(())
}
