//! Owns the HTTP API (axum): `GET /v1/recommend` ([`recommend`]), `GET /v1/status` and
//! `GET /metrics` ([`status`]), `GET /livez` (= `/healthz`) and `GET /readyz` ([`health`]),
//! `GET /openapi.json`; optional bearer-token auth ([`auth`]). Every error is JSON with a `code`
//! ([`error`]), the HTTP layer's own answers included ([`wire`]). Each group of handlers gets the
//! handles it reads, built here once.

mod auth;
mod error;
mod health;
mod recommend;
pub mod status;
mod wire;

pub use status::Status;
pub use wire::JsonListener;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use super::Shared;
use crate::store::Store;
use error::ApiError;

/// The API described (`schemas/openapi.json`, kept in sync by `tests/http_api.rs`).
const OPENAPI: &str = include_str!("../../../schemas/openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// The API over `shared`'s handles.
pub fn router<S: Store>(shared: Arc<Shared<S>>) -> Router {
    crate::metrics::prometheus();
    let serving = &shared.config.serving;
    let recommender = Arc::new(recommend::Recommender {
        handles: shared.recommend_handles(),
        serving: serving.clone(),
        requests: Semaphore::new(serving.max_concurrent_requests),
        scorers: Arc::new(Semaphore::new(serving.scorers())),
    });
    let observed = Arc::new(status::Observed {
        instance: shared.instance.clone(),
        started: shared.started,
        stats: shared.stats.clone(),
        training: shared.training.clone(),
        models: shared.models.clone(),
        catalogue: shared.catalogue.clone(),
        active: shared.active.clone(),
        knobs: shared.knobs.clone(),
        lag: shared.lag.clone(),
    });
    let probe = Arc::new(health::Probe {
        store: shared.store.clone(),
        warmup: shared.warmup.clone(),
        models: shared.models.clone(),
        catalogue: shared.catalogue.clone(),
    });
    let mut api = Router::new()
        .route("/v1/recommend", get(recommend::handler::<S>))
        .with_state(recommender)
        .merge(
            Router::new()
                .route("/v1/status", get(status::status))
                .route("/metrics", get(status::metrics))
                .with_state(observed),
        );
    if let Some(token) = &serving.auth_token {
        let token: Arc<str> = token.expose().into();
        api = api.route_layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ));
    }
    Router::new()
        .merge(api)
        .route("/healthz", get(health::livez))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz::<S>))
        .route("/openapi.json", get(openapi))
        .with_state(probe)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "every endpoint answers GET only (see /openapi.json)",
            )
        })
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint: see /openapi.json (/v1/recommend, /v1/status, /livez, /readyz, /metrics)",
            )
        })
}
