//! Function lengths: every `fn` with a body in the library code, from its signature's first line to
//! its closing brace.

/// `(name, first line (1-based), lines)` of every function in `code` (strings and comments
/// blanked).
pub fn lengths(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |byte: usize| starts.partition_point(|&s| s <= byte);
    let mut out = Vec::new();
    for (i, _) in code.match_indices("fn ") {
        if i > 0
            && code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = code[i + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` outside the signature's brackets, unless a `;` comes
        // first (a declaration in a trait).
        let mut depth = 0i32;
        let mut open = None;
        for (k, c) in code[i..].char_indices() {
            match c {
                '(' | '[' | '<' => depth += 1,
                ')' | ']' => depth -= 1,
                '>' if !code[..i + k].ends_with('-') => depth -= 1,
                ';' if depth <= 0 => break,
                '{' if depth <= 0 => {
                    open = Some(i + k);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = open else { continue };
        let mut depth = 0;
        let close = code[open..].char_indices().find_map(|(k, c)| {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(open + k)
        });
        let Some(close) = close else { continue };
        let first = line_of(i);
        let last = line_of(close);
        debug_assert!(last <= lines.len());
        out.push((name, first, last - first + 1));
    }
    out
}
