//! The module stack, checked from the source: no module-level import cycle among the top-level
//! modules of `src/` (edges read from `crate::<module>` paths, tests excluded), no source file over
//! 400 lines, and a thin binary (`src/main.rs` under 150 lines). The same reading as
//! `../shared/tools/module-cycles.py`, so CI holds the line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "architecture/files.rs"]
mod files;
#[path = "architecture/functions.rs"]
mod functions;
#[path = "architecture/paths.rs"]
mod paths;
#[path = "architecture/repeats.rs"]
mod repeats;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module of a file under `src/` (`src/a.rs` and `src/a/…` are `a`).
fn module_of(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// `crate::a` and `crate::{a, b::c}` targets in `text`.
fn targets(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn modules_form_one_stack_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut too_long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        if lines > 400 {
            too_long.push(format!("{} ({lines})", file.display()));
        }
        let module = module_of(&src, file);
        if module == "main" || module == "lib" || module == "bin" {
            continue;
        }
        let body = text.split("#[cfg(test)]").next().unwrap_or_default();
        let targets: Vec<String> = targets(body).into_iter().filter(|t| *t != module).collect();
        edges.entry(module).or_default().extend(targets);
    }
    assert_eq!(
        cycles(&edges),
        Vec::<Vec<String>>::new(),
        "module-level import cycles"
    );
    assert_eq!(
        too_long,
        Vec::<String>::new(),
        "source files over 400 lines"
    );
    let main = std::fs::read_to_string(src.join("main.rs")).unwrap();
    assert!(
        main.lines().count() < 150,
        "src/main.rs has {} lines",
        main.lines().count()
    );
}

#[test]
fn the_check_sees_a_cycle() {
    let mut edges = BTreeMap::new();
    edges.insert(
        "a".to_string(),
        targets("use crate::b::X; crate::{c, d::e}"),
    );
    edges.insert("b".to_string(), targets("use crate::a;"));
    assert_eq!(
        edges["a"],
        BTreeSet::from(["b".into(), "c".into(), "d".into()])
    );
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".to_string()]]);
}

#[test]
fn report() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = files::library_files(&src);
    let graph = files::graph(&src, &files);
    for (a, bs) in &graph {
        for b in bs {
            if graph.get(b).is_some_and(|x| x.contains(a)) {
                println!("circle {a} <-> {b}");
            }
        }
    }
    println!("sccs {:?}", cycles(&graph));
    for f in &files {
        for (n, l, len) in functions::lengths(&f.code) {
            if len > 80 {
                println!("long {}:{l} {n} {len}", f.path.display());
            }
        }
    }
    let named: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            (
                f.path.strip_prefix(&src).unwrap().display().to_string(),
                f.code.clone(),
            )
        })
        .collect();
    for r in repeats::repeated(&named) {
        println!("repeat {r}");
    }
}
