//! Replays MovieLens 100K as a stream: each movie is uploaded just before its first rating, ratings
//! become actions in timestamp order (5 → like, 4 → complete, 3 → view, 1–2 → skip).

use std::collections::HashMap;
use std::path::Path;

use super::{Outgoing, WorkloadError};
use crate::dataset::movielens::{movies, ratings};
use crate::schemas::{Action, ItemUpload, UserAction};

fn action_for(rating: u8) -> Action {
    match rating {
        5 => Action::Like,
        4 => Action::Complete,
        3 => Action::View,
        _ => Action::Skip,
    }
}

pub fn movielens_stream(dir: &Path) -> Result<Vec<Outgoing>, WorkloadError> {
    let dataset_error = |e: crate::dataset::DatasetError| WorkloadError::Dataset(e.to_string());
    let ratings = ratings(dir).map_err(dataset_error)?;
    let mut first_seen: HashMap<&str, i64> = HashMap::new();
    for r in &ratings {
        first_seen.entry(r.item.as_str()).or_insert(r.ts_ms);
    }
    let mut events: Vec<(i64, u8, Outgoing)> = Vec::new();
    for movie in movies(dir).map_err(dataset_error)? {
        let Some(&first) = first_seen.get(movie.id.as_str()) else {
            continue;
        };
        let upload = ItemUpload {
            item_id: movie.id,
            title: movie.title,
            description: None,
            tags: movie.genres.iter().map(|g| g.to_lowercase()).collect(),
            category: Some(movie.genres.join(", ")).filter(|c| !c.is_empty()),
            brand: None,
            author_id: None,
            ts_ms: first - 1,
        };
        events.push((first - 1, 0, Outgoing::Upload(upload)));
    }
    for r in ratings.iter() {
        let action = UserAction {
            // A user may rate an item again (re-watches): the timestamp keeps each event its own id.
            event_id: format!("ml-{}-{}-{}", r.user, r.item, r.ts_ms),
            user_id: r.user.clone(),
            item_id: r.item.clone(),
            action: action_for(r.rating),
            ts_ms: r.ts_ms,
            watch_ms: None,
        };
        events.push((r.ts_ms, 1, Outgoing::Action(action)));
    }
    events.sort_by_key(|(ts, kind, _)| (*ts, *kind));
    Ok(events.into_iter().map(|(_, _, o)| o).collect())
}
