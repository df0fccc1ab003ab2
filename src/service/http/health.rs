//! Liveness and readiness: `/livez` answers while the process serves requests; `/readyz` answers
//! 200 only when the store answers within a second (what every pipeline, the trainer and
//! recommendations need), the catalogue has caught up with the catalogue changelog and the published
//! model is loaded, else 503 with each check — so a load balancer sends no traffic to a process
//! still warming up, an operator sees an outage while it lasts, and the process stays up to
//! recover by itself.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::service::shared::Warmup;
use crate::serving::{Catalogue, Models};
use crate::store::Store;

const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// What readiness checks.
pub struct Probe<S> {
    pub store: S,
    pub warmup: Arc<Warmup>,
    pub models: Arc<Models>,
    pub catalogue: Arc<Catalogue>,
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// `"ok"` or what failed.
    pub store: String,
    pub catalogue_synced: bool,
    pub model_loaded: bool,
    pub model_version: u64,
    pub catalogue_items: usize,
}

pub async fn livez() -> &'static str {
    "ok"
}

pub async fn readyz<S: Store>(State(probe): State<Arc<Probe<S>>>) -> (StatusCode, Json<Readiness>) {
    let store = match tokio::time::timeout(STORE_TIMEOUT, probe.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(err)) => format!("unavailable: {err}"),
        Err(_) => format!("no answer within {STORE_TIMEOUT:?}"),
    };
    let catalogue_synced = probe.warmup.catalogue_synced.load(Ordering::Relaxed);
    let model_loaded = probe.warmup.model_loaded.load(Ordering::Relaxed);
    let ready = store == "ok" && catalogue_synced && model_loaded;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let model_version = probe.models.current().version;
    (
        status,
        Json(Readiness {
            ready,
            store,
            catalogue_synced,
            model_loaded,
            model_version,
            catalogue_items: probe.catalogue.len(),
        }),
    )
}
