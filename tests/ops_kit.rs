//! The operations kit (`config/prometheus/`, `config/grafana/`): Prometheus's own `promtool`
//! checks the scrape config and the alert rules and runs their unit tests
//! (`alerts.test.yml`), and every `learn_*` metric the rules and the dashboard query is one the
//! service exports (a name written in `src/metrics/`), so a renamed metric cannot leave an alert
//! silently watching nothing.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) {
    let Some(promtool) = common::promtool() else {
        return;
    };
    let out = Command::new(&promtool)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_config_and_the_rules() {
    promtool(&["check", "config", "config/prometheus/prometheus.yml"]);
    promtool(&["check", "rules", "config/prometheus/alerts.yml"]);
}

#[test]
fn promtool_unit_tests_of_the_alerts_pass() {
    promtool(&["test", "rules", "config/prometheus/alerts.test.yml"]);
}

/// `learn_*` metric names in `text`, histogram/summary series suffixes removed, recording rules
/// (`learn:…`) excluded.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("learn_") {
        if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        names.insert(base.to_string());
    }
    names
}

fn exported() -> BTreeSet<String> {
    let mut text = String::new();
    for file in ["event.rs", "lag.rs"] {
        text += &std::fs::read_to_string(root().join("src/metrics").join(file)).unwrap();
    }
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("learn_"))
        .map(String::from)
        .collect()
}

#[test]
fn rules_and_dashboard_query_only_exported_metrics() {
    let exported = exported();
    assert!(exported.contains("learn_freshness_seconds") && exported.contains("learn_leader"));
    let dashboard_path = root().join("config/grafana/dashboards/learn-stream.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dashboard_path).unwrap()).unwrap();
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs += target["expr"].as_str().unwrap();
            exprs.push('\n');
        }
    }
    let rules = std::fs::read_to_string(root().join("config/prometheus/alerts.yml")).unwrap();
    for (what, text) in [("dashboard", &exprs), ("alerts.yml", &rules)] {
        let used = metric_names(text);
        assert!(used.len() >= 8, "{what}: too few metrics found: {used:?}");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{what} queries metrics the service does not export: {unknown:?}"
        );
    }
    // Every alert links a runbook section, and docs/runbook.md has it (a heading `## <Anchor>`).
    let alerts = rules.matches("- alert: ").count();
    let anchors: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook: \"docs/runbook.md#"))
        .map(|a| a.trim_end_matches('"'))
        .collect();
    assert_eq!(
        anchors.len(),
        alerts,
        "every alert has a runbook annotation"
    );
    let runbook = std::fs::read_to_string(root().join("docs/runbook.md")).unwrap();
    let headings: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    for anchor in anchors {
        assert!(
            headings.contains(anchor),
            "docs/runbook.md has no runbook heading for #{anchor}"
        );
    }
}
