//! The file-level import graph of `src/`: file A uses file B when A names a `crate::`, `super::` or
//! `self::` path that resolves into B, following `pub use` re-exports to the file that defines the
//! item (so `crate::serving::Catalogue` is `serving/catalogue.rs`, not `serving/mod.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::paths::{code_only, reexports, rooted_paths};

/// One source file, read.
pub struct File {
    pub path: PathBuf,
    /// Its module path (`src/a/b.rs` and `src/a/b/mod.rs` are `["a", "b"]`; `lib.rs` is `[]`).
    pub module: Vec<String>,
    /// The code before its first `#[cfg(test)]`, strings and comments blanked.
    pub code: String,
}

/// Every library source file under `src/` (the binary's `main.rs` and test-only `*_tests.rs` files
/// left out).
pub fn library_files(src: &Path) -> Vec<File> {
    let mut paths = Vec::new();
    super::sources(src, &mut paths);
    paths
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p != &src.join("main.rs") && !name.ends_with("_tests.rs")
        })
        .map(|path| {
            let rel = path.strip_prefix(src).unwrap();
            let mut module: Vec<String> = rel
                .components()
                .map(|c| {
                    c.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_string()
                })
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let body = text.split("#[cfg(test)]").next().unwrap_or_default();
            File {
                code: code_only(body),
                path,
                module,
            }
        })
        .collect()
}

/// `path` as written in the file of `module` (leading `crate`, `super`, `self` or a plain name)
/// made absolute; `None` for `super` above the crate root.
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().map(String::as_str) == Some("super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The files' import graph (file paths relative to `src/`).
pub fn graph(src: &Path, files: &[File]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<&[String], &File> =
        files.iter().map(|f| (f.module.as_slice(), f)).collect();
    let exports: BTreeMap<&[String], Vec<Vec<String>>> = files
        .iter()
        .map(|f| {
            let paths = reexports(&f.code)
                .iter()
                .filter_map(|p| absolute(&f.module, p))
                .collect();
            (f.module.as_slice(), paths)
        })
        .collect();
    let name = |f: &File| f.path.strip_prefix(src).unwrap().display().to_string();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let from = name(file);
        let entry = edges.entry(from.clone()).or_default();
        for path in rooted_paths(&file.code) {
            let Some(path) = absolute(&file.module, &path) else {
                continue;
            };
            if let Some(target) = resolve(&by_module, &exports, &path, 0) {
                let to = name(target);
                if to != from {
                    entry.insert(to);
                }
            }
        }
    }
    edges
}

/// The file that defines what absolute `path` names: the deepest module file on the path, then
/// through its `pub use` re-exports of the next segment.
fn resolve<'a>(
    by_module: &BTreeMap<&[String], &'a File>,
    exports: &BTreeMap<&[String], Vec<Vec<String>>>,
    path: &[String],
    depth: usize,
) -> Option<&'a File> {
    let k = (0..=path.len())
        .rev()
        .find(|&k| by_module.contains_key(&path[..k]))?;
    let file = by_module[&path[..k]];
    let Some(item) = path.get(k) else {
        return Some(file);
    };
    let reexport = exports[&path[..k]]
        .iter()
        .find(|e| e.last() == Some(item) && e.as_slice() != path);
    match reexport {
        Some(target) if depth < 8 => {
            let mut full = target.clone();
            full.extend(path[k + 1..].iter().cloned());
            resolve(by_module, exports, &full, depth + 1).or(Some(file))
        }
        _ => Some(file),
    }
}
