//! MovieLens 100K (`u.item`, `u.genre`, `u.data`; latin-1). Item text:
//! `Title: {title}. Category: {genres}`; a user's sequence is their ratings ordered by time.

use std::path::Path;

use super::{format_error, sequences_from_interactions, Dataset, DatasetError, Item};

pub struct Movie {
    pub id: String,
    pub title: String,
    pub genres: Vec<String>,
}

pub struct Rating {
    pub user: String,
    pub item: String,
    pub rating: u8,
    pub ts_ms: i64,
}

fn read_latin1(path: &Path) -> Result<String, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(bytes.iter().map(|&b| b as char).collect())
}

/// The non-empty lines of `text`, numbered from 0, split at `separator`.
fn records(text: &str, separator: char) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(move |(n, l)| (n, l.split(separator).collect()))
}

pub fn movies(dir: &Path) -> Result<Vec<Movie>, DatasetError> {
    let genres: Vec<String> = read_latin1(&dir.join("u.genre"))?
        .lines()
        .filter_map(|l| {
            l.split('|')
                .next()
                .filter(|g| !g.is_empty())
                .map(str::to_string)
        })
        .collect();
    let path = dir.join("u.item");
    let mut out = Vec::new();
    for (n, f) in records(&read_latin1(&path)?, '|') {
        if f.len() < 5 + genres.len() {
            return Err(format_error(&path, n, "too few fields"));
        }
        let movie_genres = genres
            .iter()
            .zip(&f[5..])
            .filter(|(_, flag)| **flag == "1")
            .map(|(g, _)| g.clone())
            .collect();
        out.push(Movie {
            id: f[0].to_string(),
            title: f[1].to_string(),
            genres: movie_genres,
        });
    }
    Ok(out)
}

/// All ratings, ordered by time.
pub fn ratings(dir: &Path) -> Result<Vec<Rating>, DatasetError> {
    let path = dir.join("u.data");
    let mut out = Vec::new();
    for (n, f) in records(&read_latin1(&path)?, '\t') {
        let [user, item, rating, ts] = f[..] else {
            return Err(format_error(&path, n, "expected 4 tab-separated fields"));
        };
        let rating = rating
            .parse()
            .map_err(|_| format_error(&path, n, "bad rating"))?;
        let ts: i64 = ts
            .parse()
            .map_err(|_| format_error(&path, n, "bad timestamp"))?;
        out.push(Rating {
            user: user.to_string(),
            item: item.to_string(),
            rating,
            ts_ms: ts * 1000,
        });
    }
    out.sort_by_key(|r| r.ts_ms);
    Ok(out)
}

pub fn load(dir: &Path, name: String) -> Result<Dataset, DatasetError> {
    let movies = movies(dir)?;
    let index: std::collections::HashMap<&str, u32> = movies
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i as u32))
        .collect();
    let mut interactions = Vec::new();
    for r in ratings(dir)? {
        let item = *index.get(r.item.as_str()).ok_or_else(|| {
            format_error(&dir.join("u.data"), 0, format!("unknown movie {}", r.item))
        })?;
        interactions.push((r.user, item, r.ts_ms));
    }
    let (users, sequences) = sequences_from_interactions(interactions);
    let items = movies
        .into_iter()
        .map(|m| Item {
            text: format!("Title: {}. Category: {}", m.title, m.genres.join(", ")),
            id: m.id,
        })
        .collect();
    Ok(Dataset {
        name,
        items,
        users,
        sequences,
    })
}
