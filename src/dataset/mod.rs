//! Owns offline datasets: items with text, and each user's time-ordered item sequence.
//!
//! One canonical on-disk format (`items.jsonl`: `{"item_id": …, "text": …}` per line;
//! `interactions.csv`: `user,item,timestamp` with a header) plus importers for RecBole atomic files
//! ([`recbole`], e.g. the UniSRec Amazon data) and MovieLens 100K ([`movielens`]). [`load`] detects
//! the format. [`content`] computes a dataset's frozen content embeddings once and caches them.

pub mod content;
pub mod movielens;
pub mod recbole;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}:{line}: {reason}")]
    Format {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}: no items.jsonl + interactions.csv, RecBole (*.text, *.inter) or MovieLens (u.item, u.data) files")]
    UnknownFormat(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub text: String,
}

/// Items and sequences. Sequences hold indices into `items`, oldest first.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub items: Vec<Item>,
    pub users: Vec<String>,
    pub sequences: Vec<Vec<u32>>,
}

pub(crate) fn read(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|e| DatasetError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

pub(crate) fn format_error(path: &Path, line: usize, reason: impl Into<String>) -> DatasetError {
    DatasetError::Format {
        path: path.to_path_buf(),
        line: line + 1,
        reason: reason.into(),
    }
}

/// Loads `dir` in whichever supported format it holds.
pub fn load(dir: &Path) -> Result<Dataset, DatasetError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    if dir.join("items.jsonl").is_file() {
        return load_canonical(dir, name);
    }
    if dir.join("u.data").is_file() {
        return movielens::load(dir, name);
    }
    if let Some(stem) = recbole::find_stem(dir) {
        return recbole::load(dir, &stem, name);
    }
    Err(DatasetError::UnknownFormat(dir.to_path_buf()))
}

/// Groups `(user, item index, timestamp)` into per-user sequences ordered by time (stable for ties).
pub fn sequences_from_interactions(
    interactions: Vec<(String, u32, i64)>,
) -> (Vec<String>, Vec<Vec<u32>>) {
    let mut by_user: HashMap<String, Vec<(i64, usize, u32)>> = HashMap::new();
    for (n, (user, item, ts)) in interactions.into_iter().enumerate() {
        by_user.entry(user).or_default().push((ts, n, item));
    }
    let mut users: Vec<String> = by_user.keys().cloned().collect();
    users.sort();
    let sequences = users
        .iter()
        .map(|u| {
            let mut events = by_user.remove(u).expect("user present");
            events.sort_unstable();
            events.into_iter().map(|(_, _, item)| item).collect()
        })
        .collect();
    (users, sequences)
}

fn load_canonical(dir: &Path, name: String) -> Result<Dataset, DatasetError> {
    let items_path = dir.join("items.jsonl");
    let mut items = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    for (n, line) in read(&items_path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        #[derive(serde::Deserialize)]
        struct Row {
            item_id: String,
            text: String,
        }
        let row: Row =
            serde_json::from_str(line).map_err(|e| format_error(&items_path, n, e.to_string()))?;
        index.insert(row.item_id.clone(), items.len() as u32);
        items.push(Item {
            id: row.item_id,
            text: row.text,
        });
    }
    let inter_path = dir.join("interactions.csv");
    let mut interactions = Vec::new();
    for (n, line) in read(&inter_path)?
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [user, item, ts] = fields[..] else {
            return Err(format_error(&inter_path, n, "expected user,item,timestamp"));
        };
        let item = *index
            .get(item)
            .ok_or_else(|| format_error(&inter_path, n, format!("unknown item `{item}`")))?;
        let ts = ts
            .parse()
            .map_err(|_| format_error(&inter_path, n, format!("bad timestamp `{ts}`")))?;
        interactions.push((user.to_string(), item, ts));
    }
    let (users, sequences) = sequences_from_interactions(interactions);
    Ok(Dataset {
        name,
        items,
        users,
        sequences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_format_orders_by_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("items.jsonl"),
            "{\"item_id\":\"a\",\"text\":\"A\"}\n{\"item_id\":\"b\",\"text\":\"B\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("interactions.csv"),
            "user,item,timestamp\nu1,b,20\nu1,a,10\nu2,a,5\n",
        )
        .unwrap();
        let d = load(dir.path()).unwrap();
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.users, ["u1", "u2"]);
        assert_eq!(d.sequences, [vec![0, 1], vec![0]]);
        std::fs::write(
            dir.path().join("interactions.csv"),
            "user,item,timestamp\nu1,zzz,1\n",
        )
        .unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("unknown item `zzz`"));
    }
}
