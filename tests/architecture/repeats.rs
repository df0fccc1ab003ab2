//! Repeated blocks: runs of six or more code lines that stand again elsewhere, the same but for
//! their literals (numbers, strings) and spacing. Lines of punctuation alone (`}`, `});`) and
//! `use` lines neither count nor break a run.

use std::collections::BTreeMap;

/// How many significant lines make a repeated block.
pub const MIN_LINES: usize = 6;

/// A line's normal form, or `None` when it is not significant.
fn normal(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with("use ") || line.starts_with("pub use ") || line.starts_with('#') {
        return None;
    }
    if !line.chars().any(|c| c.is_alphanumeric()) {
        return None;
    }
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() && !out.ends_with(|p: char| p.is_alphanumeric() || p == '_') {
            while chars
                .peek()
                .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '.')
            {
                chars.next();
            }
            out.push('0');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The repeated blocks among `files` (`(name, code)`): one `a:L ~ b:L (n lines)` entry per pair
/// of places, each run reported once at its longest.
pub fn repeated(files: &[(String, String)]) -> Vec<String> {
    // Significant lines: (file index, 1-based line, normal form).
    let lines: Vec<Vec<(usize, String)>> = files
        .iter()
        .map(|(_, code)| {
            code.lines()
                .enumerate()
                .filter_map(|(n, l)| normal(l).map(|l| (n + 1, l)))
                .collect()
        })
        .collect();
    let mut windows: BTreeMap<Vec<&str>, Vec<(usize, usize)>> = BTreeMap::new();
    for (f, ls) in lines.iter().enumerate() {
        for start in 0..ls.len().saturating_sub(MIN_LINES - 1) {
            let key: Vec<&str> = ls[start..start + MIN_LINES]
                .iter()
                .map(|(_, l)| l.as_str())
                .collect();
            windows.entry(key).or_default().push((f, start));
        }
    }
    // Pairs of window starts, then runs of consecutive windows merged.
    let mut pairs: BTreeMap<(usize, usize), Vec<(usize, usize)>> = BTreeMap::new();
    for places in windows.values().filter(|p| p.len() > 1) {
        for (i, &(fa, a)) in places.iter().enumerate() {
            for &(fb, b) in &places[i + 1..] {
                if fa == fb && b < a + MIN_LINES {
                    continue;
                }
                pairs.entry((fa, fb)).or_default().push((a, b));
            }
        }
    }
    let mut out = Vec::new();
    for ((fa, fb), mut starts) in pairs {
        starts.sort();
        let mut k = 0;
        while k < starts.len() {
            let (a, b) = starts[k];
            let mut n = 1;
            while starts.get(k + n) == Some(&(a + n, b + n)) {
                n += 1;
            }
            let len = n + MIN_LINES - 1;
            out.push(format!(
                "{}:{} ~ {}:{} ({len} lines)",
                files[fa].0, lines[fa][a].0, files[fb].0, lines[fb][b].0
            ));
            k += n;
        }
    }
    out
}
