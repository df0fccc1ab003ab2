//! Owns `GET /v1/recommend?user_id=…&k=…[&model=frozen][&popularity_weight=w]`: the query checked
//! (the user id strictly: valid UTF-8 once percent-decoded, the topics' id rules), bounded
//! (requests in flight beyond the limit are shed, scoring waits for a scorer) and timed out.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::config::ServingConfig;
use crate::schemas::id_problem;
use crate::serving::recommend::{score, user_rows, Handles, RecommendError};
use crate::serving::Which;
use crate::store::Store;

#[derive(Debug, Deserialize)]
pub struct RecommendQuery {
    user_id: String,
    k: Option<usize>,
    model: Option<Which>,
    /// Overrides `serving.popularity_weight` (0 = embeddings only).
    popularity_weight: Option<f32>,
}

/// What the recommend endpoint touches.
pub struct Recommender<S> {
    pub handles: Handles<S>,
    pub serving: ServingConfig,
    /// Requests in flight (beyond: shed).
    pub requests: Semaphore,
    /// Requests scoring at once (beyond: wait their turn).
    pub scorers: Arc<Semaphore>,
}

/// The `user_id` of a raw query, percent-decoded strictly: an id that is not UTF-8 is refused,
/// not replaced by U+FFFD (two different invalid ids would become one user).
fn strict_user_id(raw: Option<&str>) -> Result<(), ApiError> {
    for pair in raw.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "user_id" {
            continue;
        }
        let value = value.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&value).decode_utf8();
        let id = decoded.map_err(|_| ApiError::invalid("user_id is not valid UTF-8"))?;
        if let Some(problem) = id_problem("user_id", &id) {
            return Err(ApiError::invalid(problem));
        }
    }
    Ok(())
}

/// The checked query: (query, k, popularity weight).
fn checked<S>(
    api: &Recommender<S>,
    raw: Option<&str>,
    query: Result<Query<RecommendQuery>, QueryRejection>,
) -> Result<(RecommendQuery, usize, f32), ApiError> {
    strict_user_id(raw)?;
    let Query(q) = query.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    })?;
    let k = q.k.unwrap_or(10);
    let max_k = api.serving.max_k;
    let weight = q.popularity_weight.unwrap_or(api.serving.popularity_weight);
    if k == 0 || k > max_k {
        return Err(ApiError::invalid(format!("k must be in 1..={max_k}")));
    }
    if !weight.is_finite() {
        return Err(ApiError::invalid(
            "popularity_weight must be a finite number",
        ));
    }
    Ok((q, k, weight))
}

pub async fn handler<S: Store>(
    State(api): State<Arc<Recommender<S>>>,
    RawQuery(raw): RawQuery,
    query: Result<Query<RecommendQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (q, k, weight) = checked(&api, raw.as_deref(), query)?;
    // Load shedding: beyond the limit answer at once instead of queueing.
    let Ok(_slot) = api.requests.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; retry shortly",
        ));
    };
    let timeout = Duration::from_millis(api.serving.request_timeout_ms);
    let which = q.model.unwrap_or(Which::Current);
    let scored = async {
        let user = user_rows(&api.handles.sources(weight), &q.user_id).await?;
        // Scoring the catalogue is CPU work: off the async runtime, so ingestion and other
        // requests keep their threads. The turn is held by the scoring thread itself: a request
        // that times out does not free it before its CPU work is done.
        let scorer = api.scorers.clone().acquire_owned().await;
        let api = api.clone();
        tokio::task::spawn_blocking(move || {
            let _scorer = scorer;
            score(&api.handles.sources(weight), user, k, which)
        })
        .await
        .map_err(|e| RecommendError::Task(e.to_string()))?
    };
    match tokio::time::timeout(timeout, scored).await {
        Ok(Ok(rec)) => Ok(Json(rec).into_response()),
        Ok(Err(err @ RecommendError::Store(_))) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            err.to_string(),
        )),
        Ok(Err(err)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("no answer within {timeout:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_decoded_strictly() {
        assert!(strict_user_id(Some("user_id=u%C3%A9+1&k=3")).is_ok());
        for bad in [
            "user_id=%ff%fe",
            "user_id=a%00b",
            "user_id=%20",
            "k=1&user_id=a%0Ab",
        ] {
            let err = strict_user_id(Some(bad)).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
