//! Top-K recommendation for one user: the user tower on the user's recent history, scored by dot
//! product against the aligned embeddings of every catalogue item (new uploads included: they are
//! in the catalogue as soon as they are embedded), excluding what the user has already seen.
//! A user with no usable history gets the newest uploads (fresh content first).
//! With a [`Prior`], the popularity prior is added (see [`super::ItemCounts`]).

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Catalogue, ItemCounts, Models, Which};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("towers: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("scoring task: {0}")]
    Task(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub item_id: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub user_id: String,
    pub model: Which,
    /// Model version that scored (0 = the initial towers).
    pub version: u64,
    /// True when the user had no history: the newest items are returned.
    pub cold_user: bool,
    pub items: Vec<Scored>,
}

/// The popularity prior: score = cos + weight / logit_scale · ln q(item), which ranks like
/// logit_scale · cos + weight · ln q(item).
pub struct Prior<'a> {
    pub counts: &'a ItemCounts,
    pub weight: f32,
    pub logit_scale: f32,
}

/// What to recommend from.
pub struct Sources<'a, S> {
    pub store: &'a S,
    pub catalogue: &'a Catalogue,
    pub models: &'a Models,
    pub prior: Option<Prior<'a>>,
    pub history_cap: usize,
}

/// The handles a running service recommends from (owned, cheap to clone); [`Self::sources`]
/// borrows them with a popularity weight.
#[derive(Clone)]
pub struct Handles<S> {
    pub store: S,
    pub catalogue: Arc<Catalogue>,
    pub models: Arc<Models>,
    pub item_counts: Arc<ItemCounts>,
    /// `training.logit_scale`: the prior's scale.
    pub logit_scale: f32,
    /// `history.cap`: how much of a history is read.
    pub history_cap: usize,
}

impl<S> Handles<S> {
    pub fn sources(&self, popularity_weight: f32) -> Sources<'_, S> {
        Sources {
            store: &self.store,
            catalogue: &self.catalogue,
            models: &self.models,
            prior: Some(Prior {
                counts: &self.item_counts,
                weight: popularity_weight,
                logit_scale: self.logit_scale,
            }),
            history_cap: self.history_cap,
        }
    }
}

/// What scoring needs from the store: the user's history as catalogue rows (fetched async).
pub struct UserRows {
    user_id: String,
    rows: Vec<u32>,
}

/// Reads the user's history and makes sure its items are in the catalogue (the async part).
pub async fn user_rows<S: Store>(
    sources: &Sources<'_, S>,
    user_id: &str,
) -> Result<UserRows, RecommendError> {
    let history = sources.store.history(user_id, sources.history_cap).await?;
    let ids: Vec<String> = history.iter().map(|e| e.item_id.clone()).collect();
    sources.catalogue.fetch_missing(sources.store, &ids).await?;
    let rows = ids
        .iter()
        .filter_map(|id| sources.catalogue.row(id))
        .collect();
    Ok(UserRows {
        user_id: user_id.to_string(),
        rows,
    })
}

/// The `k` best unseen items for `user` under `which` model: scores the whole catalogue (CPU
/// only: the HTTP handler runs it off the async runtime, after [`user_rows`]).
pub fn score<S: Store>(
    sources: &Sources<'_, S>,
    user: UserRows,
    k: usize,
    which: Which,
) -> Result<Recommendation, RecommendError> {
    let Sources {
        catalogue,
        models,
        ref prior,
        ..
    } = *sources;
    let UserRows { user_id, rows } = user;
    let user_id = user_id.as_str();
    let seen: HashSet<u32> = rows.iter().copied().collect();
    let model = models.get(which);
    if rows.is_empty() {
        let newest = (0..catalogue.len() as u32)
            .rev()
            .filter(|r| !seen.contains(r))
            .take(k);
        let items = newest
            .filter_map(|row| catalogue.live_id(row))
            .map(|item_id| Scored {
                item_id,
                score: 0.0,
            })
            .collect();
        return Ok(Recommendation {
            user_id: user_id.to_string(),
            model: which,
            version: model.version,
            cold_user: true,
            items,
        });
    }
    let user = model.user(catalogue, &rows)?;
    let (weight, log_q) = match prior.as_ref().filter(|p| p.weight != 0.0) {
        Some(prior) => (
            prior.weight / prior.logit_scale,
            Some(prior.counts.by_row(catalogue)),
        ),
        None => (0.0, None),
    };
    // The history's items and deleted ones are dropped after the ranking: ask for that many more.
    let (version, ranked) = models.top(
        which,
        catalogue,
        &user,
        |row| log_q.as_ref().map_or(0.0, |q| weight * q.get(row)),
        k + seen.len() + catalogue.deleted(),
    )?;
    let items = ranked
        .into_iter()
        .filter(|(row, _)| !seen.contains(row))
        .filter_map(|(row, score)| {
            catalogue
                .live_id(row)
                .map(|item_id| Scored { item_id, score })
        })
        .take(k)
        .collect();
    Ok(Recommendation {
        user_id: user_id.to_string(),
        model: which,
        version,
        cold_user: false,
        items,
    })
}
