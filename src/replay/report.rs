//! The replay's report: `replay.md` (each arm's Recall@10 and NDCG@10 overall, on cold and warm
//! targets, and per window), `replay.json` and the figure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::prequential::{windows, COLD_BELOW};
use super::{figure, ReplayError, ReplayReport};
use crate::eval::plot;

/// What each arm is, in words, for the report (with a split, the service was warm-started).
fn describe(arm: &str, split: bool) -> &'static str {
    match (arm, split) {
        ("online", true) => "offline model + online updates (the default service), + prior",
        ("online", false) => "online LEARN (towers trained on the stream), + prior",
        ("online-alone", true) => "offline model + online updates, by the embeddings alone",
        ("online-alone", false) => "online LEARN, by the embeddings alone",
        ("frozen", true) => "offline model, frozen (never updated online), + prior",
        ("frozen", false) => "frozen (initial weights, never trained), + prior",
        ("scratch", _) => "online from scratch (a second service, no warm start), + prior",
        ("scratch-alone", _) => "online from scratch, by the embeddings alone",
        _ => "popularity so far (the replay's own counts)",
    }
}

/// Markdown summary: each arm's prequential Recall@10 and NDCG@10, overall, on cold and warm
/// targets, and Recall@10 per window.
pub fn markdown(report: &ReplayReport, window: usize) -> String {
    let split = report.history_events > 0;
    let mut md = format!(
        "Replayed {} events ({} actions; the first {} events as unevaluated history) in {:.0} s; \
         {} prequential probes ({} before the service caught up; {} on cold targets, fewer than \
         {COLD_BELOW} interactions before the probe).\n\n\
         | arm | Recall@10 | NDCG@10 | cold R@10 | warm R@10 | cold / warm |\n|---|---|---|---|---|---|\n",
        report.events,
        report.actions,
        report.history_events,
        report.seconds,
        report.probes.len(),
        report.unsynced_probes,
        report.probes.iter().filter(|p| p.cold).count(),
    );
    for s in &report.scores {
        let ratio = if s.warm.recall_10 > 0.0 {
            format!("{:.2}", s.cold.recall_10 / s.warm.recall_10)
        } else {
            "-".into()
        };
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {ratio} |",
            describe(&s.arm, split),
            s.overall.recall_10,
            s.overall.ndcg_10,
            s.cold.recall_10,
            s.warm.recall_10,
        );
    }
    let _ = write!(
        md,
        "\nRecall@10 per window of {window} probes:\n\n| actions replayed | {} |\n|---{}|\n",
        report.arms.join(" | "),
        "|---".repeat(report.arms.len())
    );
    for (at, scores) in windows(&report.probes, report.arms.len(), window) {
        let cells: Vec<String> = scores
            .iter()
            .map(|s| format!("{:.4}", s.recall_10))
            .collect();
        let _ = writeln!(md, "| {at} | {} |", cells.join(" | "));
    }
    md
}

/// Writes replay.json, replay.md and replay.svg / replay.png into `dir`.
pub fn write(report: &ReplayReport, window: usize, dir: &Path) -> Result<(), ReplayError> {
    let io = |path: PathBuf| move |source| ReplayError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let files = [
        (
            "replay.json",
            serde_json::to_string_pretty(report).expect("serialisable"),
        ),
        ("replay.md", markdown(report, window)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(path.clone()))?;
    }
    let stem = dir.join("replay");
    plot::write(&figure::panels(report, window), &stem).map_err(io(stem.with_extension("svg")))
}
