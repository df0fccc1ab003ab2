//! Owns what a running process says about itself: `GET /v1/status` (the [`Status`] that
//! `learn status` prints) and `GET /metrics` (Prometheus text, with the service's state gauges
//! set first).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::metrics::{Event, LagBoard, Stats};
use crate::schemas::now_ms;
use crate::service::active::ActiveUsers;
use crate::service::lag::Knobs;
use crate::service::shared::TrainingState;
use crate::serving::{Catalogue, Models};

/// The service at a glance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub instance: String,
    /// This process trains (others follow and hot-swap).
    pub leading: bool,
    pub uptime_secs: f64,
    pub model_version: u64,
    pub checkpoint_age_secs: Option<f64>,
    pub train_steps: u64,
    /// (anchor, positive) pairs trained on since start.
    pub train_pairs: u64,
    /// Ingested actions the trainer has trained on since start.
    pub train_actions: u64,
    /// While users wait for a step: seconds since the newest action trained on was ingested.
    pub train_lag_secs: f64,
    pub train_loss: Option<f64>,
    pub pending_users: usize,
    pub train_batch_limit: usize,
    pub embed_batch_limit: usize,
    pub events_received: u64,
    pub events_per_sec: f64,
    pub actions_applied: u64,
    pub items_embedded: u64,
    pub dead_letters: BTreeMap<String, u64>,
    pub catalogue_items: usize,
    /// Topic → partition → messages behind (this process's partitions).
    pub lag: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// What the status and metrics endpoints read.
pub struct Observed {
    pub instance: String,
    pub started: Instant,
    pub stats: Arc<Stats>,
    pub training: Arc<TrainingState>,
    pub models: Arc<Models>,
    pub catalogue: Arc<Catalogue>,
    /// Users waiting for a step.
    pub active: Arc<ActiveUsers>,
    pub knobs: Arc<Knobs>,
    pub lag: Arc<LagBoard>,
}

impl Observed {
    fn status(&self) -> Status {
        let snapshot = self.stats.snapshot();
        let uptime = self.started.elapsed().as_secs_f64();
        let (now, pending) = (now_ms(), self.active.pending());
        Status {
            instance: self.instance.clone(),
            leading: self.training.leading.load(Ordering::Relaxed),
            uptime_secs: uptime,
            model_version: self.models.current().version,
            checkpoint_age_secs: self.training.checkpoint_age_seconds(now),
            train_steps: snapshot.train_steps,
            train_pairs: snapshot.train_pairs,
            train_actions: snapshot.train_actions,
            train_lag_secs: self.training.lag_seconds(pending, now),
            train_loss: snapshot.train_loss,
            pending_users: pending,
            train_batch_limit: self.knobs.train_batch.load(Ordering::Relaxed),
            embed_batch_limit: self.knobs.embed_batch.load(Ordering::Relaxed),
            events_received: snapshot.received,
            events_per_sec: snapshot.received as f64 / uptime.max(1e-9),
            actions_applied: snapshot.actions_applied,
            items_embedded: snapshot.items_embedded,
            dead_letters: snapshot
                .dead_letters
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            catalogue_items: self.catalogue.len(),
            lag: self.lag.snapshot(),
        }
    }
}

pub async fn status(State(observed): State<Arc<Observed>>) -> Json<Status> {
    Json(observed.status())
}

pub async fn metrics(State(observed): State<Arc<Observed>>) -> String {
    let (now, pending) = (now_ms(), observed.active.pending());
    Event::ServiceState {
        checkpoint_age_seconds: observed.training.checkpoint_age_seconds(now),
        model_version: observed.models.current().version,
        catalogue_items: observed.catalogue.len(),
        pending_train_users: pending,
        leading: observed.training.leading.load(Ordering::Relaxed),
        train_lag_seconds: observed.training.lag_seconds(pending, now),
    }
    .record();
    crate::metrics::prometheus().render()
}
