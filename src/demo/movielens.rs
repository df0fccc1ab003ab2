//! Replays MovieLens 100K (`u.item`, `u.genre`, `u.data`) as a stream: each movie is uploaded just
//! before its first rating, ratings become actions in timestamp order
//! (5 → like, 4 → complete, 3 → view, 1–2 → skip).

use std::collections::HashMap;
use std::path::Path;

use super::{DemoError, Outgoing, Topic};
use crate::schemas::{Action, ItemUpload, UserAction};

fn read_latin1(path: &Path) -> Result<String, DemoError> {
    let bytes = std::fs::read(path).map_err(|e| DemoError::Dataset(format!("{}: {e}", path.display())))?;
    Ok(bytes.iter().map(|&b| b as char).collect())
}

fn bad_line(path: &Path, line: usize) -> DemoError {
    DemoError::Dataset(format!("{}:{}: unexpected format", path.display(), line + 1))
}

fn action_for(rating: u8) -> Action {
    match rating {
        5 => Action::Like,
        4 => Action::Complete,
        3 => Action::View,
        _ => Action::Skip,
    }
}

pub fn movielens_stream(dir: &Path) -> Result<Vec<Outgoing>, DemoError> {
    let genres_path = dir.join("u.genre");
    let genres: Vec<String> = read_latin1(&genres_path)?
        .lines()
        .filter_map(|l| l.split('|').next().filter(|g| !g.is_empty()).map(str::to_string))
        .collect();

    let data_path = dir.join("u.data");
    let mut ratings: Vec<(i64, String, String, u8)> = Vec::new();
    for (n, line) in read_latin1(&data_path)?.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let [user, item, rating, ts] = f[..] else { return Err(bad_line(&data_path, n)) };
        let rating: u8 = rating.parse().map_err(|_| bad_line(&data_path, n))?;
        let ts: i64 = ts.parse().map_err(|_| bad_line(&data_path, n))?;
        ratings.push((ts * 1000, user.to_string(), item.to_string(), rating));
    }
    ratings.sort();
    let mut first_seen: HashMap<&str, i64> = HashMap::new();
    for (ts, _, item, _) in &ratings {
        first_seen.entry(item.as_str()).or_insert(*ts);
    }

    let item_path = dir.join("u.item");
    let mut events: Vec<(i64, u8, Outgoing)> = Vec::new();
    for (n, line) in read_latin1(&item_path)?.lines().enumerate() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 5 + genres.len() {
            return Err(bad_line(&item_path, n));
        }
        let Some(&first) = first_seen.get(f[0]) else { continue };
        let item_genres: Vec<&str> =
            genres.iter().zip(&f[5..]).filter(|(_, flag)| **flag == "1").map(|(g, _)| g.as_str()).collect();
        let upload = ItemUpload {
            item_id: f[0].to_string(),
            title: f[1].to_string(),
            description: None,
            tags: item_genres.iter().map(|g| g.to_lowercase()).collect(),
            category: Some(item_genres.join(", ")).filter(|c| !c.is_empty()),
            brand: None,
            author_id: None,
            ts_ms: first - 1,
        };
        let payload = serde_json::to_vec(&upload).expect("serialisable");
        events.push((first - 1, 0, Outgoing { topic: Topic::Items, key: upload.item_id, payload }));
    }
    for (ts, user, item, rating) in ratings {
        let action = UserAction {
            event_id: format!("ml-{user}-{item}"),
            user_id: user,
            item_id: item,
            action: action_for(rating),
            ts_ms: ts,
            watch_ms: None,
        };
        let payload = serde_json::to_vec(&action).expect("serialisable");
        events.push((ts, 1, Outgoing { topic: Topic::Actions, key: action.user_id, payload }));
    }
    events.sort_by_key(|(ts, kind, _)| (*ts, *kind));
    Ok(events.into_iter().map(|(_, _, o)| o).collect())
}
