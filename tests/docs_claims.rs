//! The docs say what the code does: every configuration key (`section.key`), repository path and
//! `learn` command-line option that `README.md`, `docs/*.md`, `config/default.toml` and the deploy
//! kit name in code (inline or fenced) exists — a key the configuration accepts, a file in the
//! repository, an option the command's `--help` lists. The checker is run on a page of known
//! dangling names first, so a checker that sees nothing cannot pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use learn_stream::config::{Config, ConfigError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages checked, by name: the README, every `docs/` page, the default configuration and the
/// deploy kit's files that name keys and commands.
fn pages() -> Vec<(String, String)> {
    let mut names = vec![
        "README.md".to_string(),
        "config/default.toml".into(),
        "Dockerfile".into(),
        "docker-compose.yml".into(),
    ];
    for dir in ["docs", "deploy/kubernetes"] {
        let mut found: Vec<String> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                (name.ends_with(".md") || name.ends_with(".yaml")).then(|| format!("{dir}/{name}"))
            })
            .collect();
        found.sort();
        names.extend(found);
    }
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root().join(&name)).unwrap();
            (name, text)
        })
        .collect()
}

/// The code in `text`: inline spans of Markdown prose and the lines of fenced blocks; a file that
/// is not Markdown is code throughout.
fn code(name: &str, text: &str) -> Vec<String> {
    if !name.ends_with(".md") {
        return text.lines().map(str::to_string).collect();
    }
    let (mut out, mut fence, mut prose) = (Vec::new(), false, String::new());
    // Inline spans may wrap: the prose between two fences is split on backticks as a whole.
    let spans = |prose: &mut String, out: &mut Vec<String>| {
        let text = std::mem::take(prose);
        out.extend(
            text.split('`')
                .skip(1)
                .step_by(2)
                .map(|s| s.replace('\n', " ")),
        );
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            spans(&mut prose, &mut out);
            fence = !fence;
        } else if fence {
            out.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    spans(&mut prose, &mut out);
    out
}

const SECTIONS: [&str; 11] = [
    "kafka", "redis", "history", "ingest", "encoder", "towers", "training", "sasrec", "online",
    "serving", "lag",
];
const ROOTS: [&str; 10] = [
    "src/", "tests/", "scripts/", "docs/", "config/", "deploy/", "schemas/", "benches/", "crates/",
    ".ci/",
];
/// A dotted word ending so is a file name, not a key (`encoder.rs`).
const EXTENSIONS: [&str; 15] = [
    "rs",
    "md",
    "toml",
    "json",
    "yaml",
    "yml",
    "txt",
    "sh",
    "py",
    "lua",
    "png",
    "svg",
    "csv",
    "jsonl",
    "safetensors",
];

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `section.key` names in a line of code (`kafka.librdkafka.x`: `kafka.librdkafka`).
fn keys(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for section in SECTIONS {
        let pattern = format!("{section}.");
        for (i, _) in line.match_indices(&pattern) {
            let before = line[..i].chars().next_back();
            // Not a host (`@redis.internal:6380`), a file or a pattern (`lag.embed_batch_*`).
            if before.is_some_and(|c| word_char(c) || "./-$@".contains(c)) {
                continue;
            }
            let rest = &line[i + pattern.len()..];
            let key: String = rest.chars().take_while(|c| word_char(*c)).collect();
            let after = rest[key.len()..].chars().next();
            if key.is_empty()
                || EXTENSIONS.contains(&key.as_str())
                || after.is_some_and(|c| c == '*' || c == ':')
            {
                continue;
            }
            out.push(format!("{section}.{key}"));
        }
    }
    out
}

/// Repository paths in a line of code (not kubectl's `deploy/<name>` resources).
fn paths(line: &str) -> Vec<String> {
    if line.contains("kubectl") {
        return Vec::new();
    }
    line.split(|c: char| c.is_whitespace() || "()[],\"'=<>|;`".contains(c))
        .filter(|word| ROOTS.iter().any(|r| word.starts_with(r)))
        .filter(|word| !word.contains(['*', '{', '$', '…', '<']))
        .map(|word| {
            let word = word.split(['#', ':']).next().unwrap();
            word.trim_end_matches(['.', '/']).to_string()
        })
        .collect()
}

/// `learn` invocations in a line of code: the subcommand words and the `--options`.
fn commands(line: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for (i, _) in line.match_indices("learn ") {
        // A command starts the line or follows a shell separator (`--model learn` is a value).
        let before = line[..i].trim_end();
        let starts = before.is_empty()
            || before.ends_with(['&', ';', '|', '(', '$'])
            || ["exec", "time", "then", "do"].iter().any(|w| {
                before.ends_with(w) && !before[..before.len() - w.len()].ends_with(word_char)
            });
        if !starts {
            continue;
        }
        let rest = &line[i + "learn ".len()..];
        let rest = rest.split(['|', ';', '&', ')']).next().unwrap();
        let words: Vec<&str> = rest.split_whitespace().collect();
        let path: Vec<String> = words
            .iter()
            .take_while(|w| {
                w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
            })
            .take(2)
            .map(|w| w.to_string())
            .collect();
        let options = words
            .iter()
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| {
                let option = w.split('=').next().unwrap();
                option
                    .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                    .to_string()
            })
            .collect();
        if !path.is_empty() {
            out.push((path, options));
        }
    }
    out
}

/// Whether the configuration has `key`: a file setting it is refused only if the key is unknown.
fn key_exists(key: &str) -> bool {
    let (section, name) = key.split_once('.').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe.toml");
    std::fs::write(&file, format!("[{section}]\n{name} = 0\n")).unwrap();
    match Config::load(Some(&file)) {
        Err(ConfigError::Parse(err)) => !err.to_string().contains("unknown field"),
        _ => true,
    }
}

/// `learn <path> --help`, dropping trailing words that are arguments rather than subcommands.
fn help(path: &[String], cache: &mut BTreeMap<Vec<String>, Option<String>>) -> Option<String> {
    if let Some(known) = cache.get(path) {
        return known.clone();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_learn"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    let text = if out.status.success() {
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    } else if path.len() > 1 {
        help(&path[..path.len() - 1], cache)
    } else {
        None
    };
    cache.insert(path.to_vec(), text.clone());
    text
}

/// Every dangling key, path and option the pages name, as `page: what`.
fn problems(pages: &[(String, String)]) -> Vec<String> {
    let mut known_keys = BTreeMap::new();
    let mut helps = BTreeMap::new();
    let mut found = BTreeSet::new();
    for (name, text) in pages {
        for line in code(name, text) {
            for key in keys(&line) {
                if !*known_keys
                    .entry(key.clone())
                    .or_insert_with(|| key_exists(&key))
                {
                    found.insert(format!("{name}: no configuration key `{key}`"));
                }
            }
            for path in paths(&line) {
                if !root().join(&path).exists() {
                    found.insert(format!("{name}: no file `{path}`"));
                }
            }
            for (path, options) in commands(&line) {
                let Some(text) = help(&path, &mut helps) else {
                    found.insert(format!("{name}: no command `learn {}`", path.join(" ")));
                    continue;
                };
                for option in options {
                    let listed = text.match_indices(&option).any(|(i, _)| {
                        let next = text[i + option.len()..].chars().next();
                        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                    if !listed {
                        found.insert(format!(
                            "{name}: `learn {}` has no `{option}`",
                            path.join(" ")
                        ));
                    }
                }
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn the_checker_finds_dangling_keys_files_and_options() {
    let page = "Set `online.no_such_key` and `serving.addr`; run `scripts/no-such.sh` and \
                `scripts/sweep.sh`:\n```\nlearn serve --no-such-option\nlearn loadgen --probe\n\
                learn no-such-command\n```\n";
    let found = problems(&[("bad.md".into(), page.into())]);
    assert_eq!(
        found,
        vec![
            "bad.md: `learn serve` has no `--no-such-option`",
            "bad.md: no command `learn no-such-command`",
            "bad.md: no configuration key `online.no_such_key`",
            "bad.md: no file `scripts/no-such.sh`",
        ]
    );
}

#[test]
fn every_key_file_and_option_the_docs_name_exists() {
    let pages = pages();
    assert!(pages.len() > 15, "{} pages", pages.len());
    let named: usize = pages
        .iter()
        .flat_map(|(name, text)| code(name, text))
        .map(|line| keys(&line).len() + paths(&line).len() + commands(&line).len())
        .sum();
    assert!(named > 300, "only {named} names found");
    assert_eq!(problems(&pages), Vec::<String>::new());
}

#[test]
fn the_readers_see_what_they_are_meant_to() {
    assert_eq!(
        keys("set encoder.model_dir, not encoder.rs or x.kafka.brokers"),
        ["encoder.model_dir"]
    );
    assert_eq!(
        paths("see scripts/sweep.sh:12, docs/a.md#b and `src/*.rs`"),
        ["scripts/sweep.sh", "docs/a.md"]
    );
    assert_eq!(
        commands(
            "cargo run -- x; learn checkpoint import runs/x --dir=d --model learn | learn-stream"
        ),
        [(
            vec!["checkpoint".to_string(), "import".into()],
            vec!["--dir".to_string(), "--model".into()]
        )]
    );
    assert!(Path::new(env!("CARGO_BIN_EXE_learn")).exists());
}

/// The subcommand names a `--help` text lists under `Commands:` (`help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The options of a `-h` text that say nothing but their default (clap puts the text beside the
/// option, or on the next line when the options are long).
fn undocumented(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().map(str::trim_start).collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with('-'))
        .filter_map(|(i, l)| {
            let (signature, text) = l.split_once("  ").unwrap_or((l, ""));
            let below = lines.get(i + 1).filter(|n| !n.starts_with('-')).copied();
            let text = match text.trim() {
                "" => below.unwrap_or("").trim(),
                text => text,
            };
            (text.is_empty() || text.starts_with('[')).then(|| signature.trim().to_string())
        })
        .collect()
}

#[test]
fn every_option_of_every_command_says_what_it_does() {
    let run = |path: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_learn"))
            .args(path)
            .arg("-h")
            .output()
            .unwrap();
        assert!(out.status.success(), "learn {path:?} -h");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = run(&[]);
    let mut missing = Vec::new();
    let mut seen = 0;
    for command in subcommands(&top) {
        let help = run(&[&command]);
        let nested = subcommands(&help);
        let paths: Vec<Vec<&str>> = match nested.is_empty() {
            true => vec![vec![command.as_str()]],
            false => nested
                .iter()
                .map(|n| vec![command.as_str(), n.as_str()])
                .collect(),
        };
        for path in paths {
            seen += 1;
            for option in undocumented(&run(&path)) {
                missing.push(format!("learn {}: {option}", path.join(" ")));
            }
        }
    }
    assert!(seen >= 13, "{seen} commands");
    assert_eq!(missing, Vec::<String>::new(), "options without help");
    assert_eq!(
        undocumented(
            "  -v, --verbose  Say more\n      --seed <SEED>  [default: 7]\n  --long <L>\n      \
             Says it below\n  --bare\n          [default: 1]\n"
        ),
        ["--seed <SEED>", "--bare"]
    );
}
