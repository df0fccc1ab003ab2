//! Reading Rust source as text: the `crate::`/`super::`/`self::` paths a file names (groups
//! `{a, b::{c, d}}` expanded), its `pub use` re-exports, and its code with strings, chars and
//! comments blanked (so braces and lines can be counted).

/// `text` with the contents of string and char literals and of comments replaced by spaces (line
/// breaks kept), so that braces, `fn` and paths are only ever code.
pub fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let start = i + 2 + hashes;
            let rest: String = chars[start..].iter().collect();
            let len = rest
                .find(&close)
                .map(|e| rest[..e].chars().count())
                .unwrap_or(0);
            out.push_str(&" ".repeat(2 + hashes));
            out.extend(chars[start..start + len].iter().map(|&c| blank(c)));
            out.push_str(&" ".repeat(1 + hashes));
            i = start + len + 1 + hashes;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                for k in 0..step {
                    if let Some(&c) = chars.get(i + k) {
                        out.push(blank(c));
                    }
                }
                i += step;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            let from = if next == Some('\\') { i + 3 } else { i + 2 };
            let end = (from..chars.len())
                .find(|&k| chars[k] == '\'')
                .unwrap_or(from);
            out.extend(std::iter::repeat_n(' ', end - i + 1));
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `'x'`, `'\n'`, `'\''`, `'\u{1F600}'` rather than a lifetime `'a`.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Every path `text` names that starts with `crate::`, `super::` or `self::`, as segments
/// (`super` and `self` kept for the caller to resolve), groups expanded.
pub fn rooted_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for root in ["crate::", "super::", "self::"] {
        for (i, _) in text.match_indices(root) {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            tree(&text[i..], Vec::new(), &mut out);
        }
    }
    out
}

/// The paths a `use` tree at the start of `s` names, each prefixed with `prefix`; returns how many
/// bytes the tree took.
pub fn tree(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let skip = |pos: usize| pos + s[pos..].len() - s[pos..].trim_start().len();
    let mut path = prefix;
    let mut pos = skip(0);
    loop {
        if s[pos..].starts_with('{') {
            pos += 1;
            loop {
                pos = skip(pos);
                if s[pos..].starts_with('}') {
                    return pos + 1;
                }
                let used = tree(&s[pos..], path.clone(), out);
                pos = skip(pos + used);
                if s[pos..].starts_with(',') {
                    pos += 1;
                } else if used == 0 && !s[pos..].starts_with('}') {
                    return pos;
                }
            }
        }
        let ident: String = s[pos..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        pos += ident.len();
        if ident.is_empty() || (ident == "self" && !path.is_empty()) {
            if !path.is_empty() {
                out.push(path);
            }
            return pos;
        }
        path.push(ident);
        if s[pos..].starts_with("::") {
            pos = skip(pos + 2);
        } else {
            out.push(path);
            return pos;
        }
    }
}

/// The `pub use` trees in `code`: each path as written (relative paths begin with a plain name).
pub fn reexports(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("pub use ") {
        tree(&code[i + "pub use ".len()..], Vec::new(), &mut out);
    }
    out
}
