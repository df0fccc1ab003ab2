//! RecBole atomic files as processed by UniSRec: `<stem>.text` (item token → text),
//! `<stem>.item2index`, and `<stem>.test.inter` whose history + target is each user's full sequence
//! (the history is truncated to its last 50 items by the processing).

use std::collections::HashMap;
use std::path::Path;

use super::{format_error, read, Dataset, DatasetError, Item};

/// The `<stem>` of a directory holding `<stem>.text` and `<stem>.test.inter`.
pub fn find_stem(dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.filter_map(Result::ok).find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let stem = name.strip_suffix(".test.inter")?.to_string();
        dir.join(format!("{stem}.text")).is_file().then_some(stem)
    })
}

pub fn load(dir: &Path, stem: &str, name: String) -> Result<Dataset, DatasetError> {
    let index_path = dir.join(format!("{stem}.item2index"));
    let mut ids: Vec<Option<String>> = Vec::new();
    for (n, line) in read(&index_path)?.lines().enumerate() {
        let (token, index) = line
            .split_once('\t')
            .ok_or_else(|| format_error(&index_path, n, "expected token<TAB>index"))?;
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| format_error(&index_path, n, "bad index"))?;
        if ids.len() <= index {
            ids.resize(index + 1, None);
        }
        ids[index] = Some(token.to_string());
    }
    let text_path = dir.join(format!("{stem}.text"));
    let mut texts: HashMap<String, String> = HashMap::new();
    for line in read(&text_path)?.lines().skip(1) {
        if let Some((token, text)) = line.split_once('\t') {
            texts.insert(token.to_string(), text.trim().to_string());
        }
    }
    let items = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let id =
                id.ok_or_else(|| format_error(&index_path, i, format!("no token for index {i}")))?;
            let text = texts.get(&id).cloned().unwrap_or_default();
            Ok(Item { id, text })
        })
        .collect::<Result<Vec<_>, DatasetError>>()?;

    let inter_path = dir.join(format!("{stem}.test.inter"));
    let (mut users, mut sequences) = (Vec::new(), Vec::new());
    for (n, line) in read(&inter_path)?.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [user, history, target] = fields[..] else {
            return Err(format_error(&inter_path, n, "expected 3 columns"));
        };
        let parse = |s: &str| -> Result<u32, DatasetError> {
            let i: u32 = s
                .parse()
                .map_err(|_| format_error(&inter_path, n, format!("bad item index `{s}`")))?;
            if i as usize >= items.len() {
                return Err(format_error(
                    &inter_path,
                    n,
                    format!("item index {i} out of range"),
                ));
            }
            Ok(i)
        };
        let mut sequence = history
            .split_whitespace()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        sequence.push(parse(target.trim())?);
        users.push(user.to_string());
        sequences.push(sequence);
    }
    Ok(Dataset {
        name,
        items,
        users,
        sequences,
    })
}
