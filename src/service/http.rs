//! The HTTP API (axum). `GET /v1/recommend?user_id=…&k=…[&model=frozen][&popularity_weight=w]`, `GET /v1/status`
//! (what `learn status` prints), `GET /livez` (= `/healthz`), `GET /readyz`, `GET /metrics` (Prometheus text).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{health, Shared};
use crate::metrics::Event;
use crate::schemas::{now_ms, MAX_ID_BYTES};
use crate::serving::recommend::{score, user_rows, RecommendError};
use crate::serving::Which;
use crate::store::Store;

#[derive(Debug, Deserialize)]
struct RecommendQuery {
    user_id: String,
    k: Option<usize>,
    model: Option<Which>,
    /// Overrides `serving.popularity_weight` (0 = embeddings only).
    popularity_weight: Option<f32>,
}

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

/// What bounds `/v1/recommend`: requests in flight (beyond: shed) and requests scoring at once
/// (beyond: wait their turn).
struct Limits {
    requests: Semaphore,
    scorers: Arc<Semaphore>,
}

/// Every error is JSON: a stable machine-readable `code` and a message for people.
pub(super) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "code": code, "error": message.into() });
    (status, Json(body)).into_response()
}

async fn recommend_handler<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    Extension(limits): Extension<Arc<Limits>>,
    query: Result<Query<RecommendQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                rejection.body_text(),
            )
        }
    };
    let k = q.k.unwrap_or(10);
    let max_k = shared.config.serving.max_k;
    let weight = q
        .popularity_weight
        .unwrap_or(shared.config.serving.popularity_weight);
    let invalid = |message: String| error(StatusCode::BAD_REQUEST, "invalid_parameter", message);
    if q.user_id.trim().is_empty() || q.user_id.len() > MAX_ID_BYTES {
        return invalid(format!(
            "user_id must be 1..={MAX_ID_BYTES} bytes, not blank"
        ));
    }
    if k == 0 || k > max_k {
        return invalid(format!("k must be in 1..={max_k}"));
    }
    if !weight.is_finite() {
        return invalid("popularity_weight must be a finite number".into());
    }
    // Load shedding: beyond the limit answer at once instead of queueing.
    let Ok(_slot) = limits.requests.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; retry shortly",
        );
    };
    let timeout = Duration::from_millis(shared.config.serving.request_timeout_ms);
    let which = q.model.unwrap_or(Which::Current);
    let scored = async {
        let user = user_rows(&shared.sources(weight), &q.user_id).await?;
        // Scoring the catalogue is CPU work: off the async runtime, so ingestion and other
        // requests keep their threads.
        let shared = shared.clone();
        // Held by the scoring thread itself: a request that times out does not free its turn
        // before its CPU work is done.
        let scorer = limits.scorers.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _scorer = scorer;
            score(&shared.sources(weight), user, k, which)
        })
        .await
        .map_err(|e| RecommendError::Task(e.to_string()))?
    };
    match tokio::time::timeout(timeout, scored).await {
        Ok(Ok(rec)) => Json(rec).into_response(),
        Ok(Err(err @ RecommendError::Store(_))) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            err.to_string(),
        ),
        Ok(Err(err)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        ),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("no answer within {timeout:?}"),
        ),
    }
}

fn status<S: Store>(shared: &Shared<S>) -> Status {
    let snapshot = shared.stats.snapshot();
    let uptime = shared.started.elapsed().as_secs_f64();
    let last_checkpoint = shared.training.last_checkpoint_ms.load(Ordering::Relaxed);
    Status {
        instance: shared.instance.clone(),
        leading: shared.training.leading.load(Ordering::Relaxed),
        uptime_secs: uptime,
        model_version: shared.models.current().version,
        checkpoint_age_secs: (last_checkpoint > 0)
            .then(|| (now_ms() - last_checkpoint) as f64 / 1000.0),
        train_steps: snapshot.train_steps,
        train_pairs: snapshot.train_pairs,
        train_actions: snapshot.train_actions,
        train_lag_secs: shared
            .training
            .lag_seconds(shared.active.pending(), now_ms()),
        train_loss: snapshot.train_loss,
        pending_users: shared.training.pending_users.load(Ordering::Relaxed),
        train_batch_limit: shared.knobs.train_batch.load(Ordering::Relaxed),
        embed_batch_limit: shared.knobs.embed_batch.load(Ordering::Relaxed),
        events_received: snapshot.received,
        events_per_sec: snapshot.received as f64 / uptime.max(1e-9),
        actions_applied: snapshot.actions_applied,
        items_embedded: snapshot.items_embedded,
        dead_letters: snapshot
            .dead_letters
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        catalogue_items: shared.catalogue.len(),
        lag: shared.lag.snapshot(),
    }
}

async fn status_handler<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Json<Status> {
    Json(status(&shared))
}

async fn metrics_handler<S: Store>(State(shared): State<Arc<Shared<S>>>) -> String {
    let last_checkpoint = shared.training.last_checkpoint_ms.load(Ordering::Relaxed);
    let (now, pending) = (now_ms(), shared.active.pending());
    Event::ServiceState {
        checkpoint_age_seconds: (last_checkpoint > 0)
            .then(|| (now - last_checkpoint) as f64 / 1000.0),
        model_version: shared.models.current().version,
        catalogue_items: shared.catalogue.len(),
        pending_train_users: pending,
        leading: shared.training.leading.load(Ordering::Relaxed),
        train_lag_seconds: shared.training.lag_seconds(pending, now),
    }
    .record();
    crate::metrics::prometheus().render()
}

/// The API described (`schemas/openapi.json`, kept in sync by `tests/http_api.rs`).
const OPENAPI: &str = include_str!("../../schemas/openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

pub fn router<S: Store>(shared: Arc<Shared<S>>) -> Router {
    crate::metrics::prometheus();
    let limits = Arc::new(Limits {
        requests: Semaphore::new(shared.config.serving.max_concurrent_requests),
        scorers: Arc::new(Semaphore::new(shared.config.serving.scorers())),
    });
    let mut api = Router::new()
        .route("/v1/recommend", get(recommend_handler::<S>))
        .route("/v1/status", get(status_handler::<S>))
        .route("/metrics", get(metrics_handler::<S>));
    if let Some(token) = &shared.config.serving.auth_token {
        let token: Arc<str> = token.expose().into();
        api = api.route_layer(axum::middleware::from_fn_with_state(
            token,
            super::auth::require_token,
        ));
    }
    Router::new()
        .merge(api)
        .route("/healthz", get(health::livez))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz::<S>))
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "every endpoint answers GET only (see /openapi.json)",
            )
        })
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint: see /openapi.json (/v1/recommend, /v1/status, /livez, /readyz, /metrics)",
            )
        })
        .layer(Extension(limits))
        .with_state(shared)
}
