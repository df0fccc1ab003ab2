//! The demo's offline pass, as a platform starts its towers: the first part of the stream is the
//! platform's logs, exported as a dataset ([`crate::workload::export()`]), trained by `learn train`'s
//! own code ([`crate::experiment::train_command`], epochs chosen on its validation split; the
//! service's encoder, whose text cache then already holds those items' vectors) and set
//! as `online.warm_start`, so the service imports it as version 1 (the path of `learn checkpoint
//! import`) and the stream keeps it current.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::DemoError;
use crate::config::Config;
use crate::encode::ContentEncoder;
use crate::experiment::{train_command, ModelKind, TrainOptions};
use crate::workload::{export, Outgoing};

/// The share of the stream's events that is the platform's history.
pub const HISTORY_SHARE: f64 = 0.6;
/// Most offline epochs; the run stops once validation NDCG@10 has not improved for
/// [`PATIENCE`] epochs (the synthetic history is learnt within a few).
const EPOCHS: usize = 20;
const PATIENCE: usize = 3;

/// What the offline pass did, for the walkthrough.
#[derive(Debug, Clone)]
pub struct OfflinePass {
    pub items: usize,
    pub interactions: usize,
    pub epochs: usize,
    pub best_epoch: usize,
    pub valid_ndcg_10: f64,
    pub elapsed: Duration,
}

/// Trains on the first [`HISTORY_SHARE`] of `stream` under `work` and points
/// `config.online.warm_start` at the run.
pub async fn train(
    config: &mut Config,
    stream: &[Outgoing],
    encoder: Arc<ContentEncoder>,
    work: &Path,
) -> Result<OfflinePass, DemoError> {
    let started = Instant::now();
    let history = &stream[..(stream.len() as f64 * HISTORY_SHARE) as usize];
    let dataset = work.join("history");
    let written = export(history, &dataset).map_err(|e| DemoError::Offline(e.to_string()))?;
    let mut offline = config.clone();
    offline.training.epochs = EPOCHS.min(config.training.epochs);
    offline.training.patience = PATIENCE;
    offline.training.patience_window = 1;
    let options = TrainOptions {
        dataset,
        out: work.join("offline"),
        cache_dir: work.join("cache"),
        cold_fraction: 0.0,
        model: ModelKind::Learn,
    };
    let run = options.out.clone();
    let report =
        tokio::task::spawn_blocking(move || train_command(&offline, &options, Some(&encoder)))
            .await
            .map_err(|e| DemoError::Offline(e.to_string()))?
            .map_err(|e| DemoError::Offline(e.to_string()))?;
    config.online.warm_start = Some(run);
    let best = report.curve.iter().find(|e| e.epoch == report.best_epoch);
    Ok(OfflinePass {
        items: written.items,
        interactions: written.interactions,
        epochs: report.curve.len(),
        best_epoch: report.best_epoch,
        valid_ndcg_10: best.map_or(0.0, |e| e.valid_ndcg_10),
        elapsed: started.elapsed(),
    })
}
