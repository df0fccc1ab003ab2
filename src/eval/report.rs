//! The written results of `learn eval`: `results.json`, `report.md` (tables) and `training.svg`
//! (validation Recall@10 and loss per epoch of each trained model).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{Evaluation, Metrics};
use crate::train::TrainReport;

#[derive(Debug, Serialize)]
pub struct ModelResult {
    pub evaluation: Evaluation,
    /// Training log, for trained models.
    pub training: Option<TrainReport>,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub dataset: String,
    pub items: usize,
    pub users: usize,
    pub test_cases: usize,
    pub cold_fraction: f64,
    pub cold_items: usize,
    pub command: String,
    pub models: BTreeMap<String, ModelResult>,
}

fn row(name: &str, m: &Metrics) -> String {
    format!(
        "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |\n",
        m.recall_10, m.ndcg_10, m.recall_50, m.ndcg_50, m.mrr, m.cases
    )
}

const HEADER: &str = "| model | Recall@10 | NDCG@10 | Recall@50 | NDCG@50 | MRR | cases |\n|---|---|---|---|---|---|---|\n";

pub fn markdown(results: &Results) -> String {
    let mut out = format!(
        "# {} — leave-one-out, full ranking over {} items\n\n`{}`\n\n",
        results.dataset, results.items, results.command
    );
    let mut table = |title: &str, pick: &dyn Fn(&Evaluation) -> Option<&Metrics>| {
        let rows: String = results
            .models
            .iter()
            .filter_map(|(n, r)| pick(&r.evaluation).map(|m| row(n, m)))
            .collect();
        if !rows.is_empty() {
            let _ = write!(out, "## {title}\n\n{HEADER}{rows}\n");
        }
    };
    table("Test, history items masked", &|e| Some(&e.masked));
    table("Test, nothing masked", &|e| Some(&e.unmasked));
    table(
        &format!(
            "Cold targets ({} items never seen in training; masked)",
            results.cold_items
        ),
        &|e| e.cold_targets.as_ref(),
    );
    table("Warm targets (masked)", &|e| e.warm_targets.as_ref());
    for (name, r) in &results.models {
        if let Some(t) = &r.training {
            let _ = writeln!(
                out,
                "- {name}: {} steps in {:.0} s, best epoch {}",
                t.steps, t.seconds, t.best_epoch
            );
        }
    }
    out
}

/// Two panels: validation Recall@10 and training loss per epoch, one line per trained model.
pub fn training_svg(results: &Results) -> String {
    const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let (w, h, pad) = (420.0, 260.0, 40.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{h}" font-family="sans-serif" font-size="11">"#,
        2.0 * w
    );
    let trained: Vec<(&String, &TrainReport)> = results
        .models
        .iter()
        .filter_map(|(n, r)| r.training.as_ref().map(|t| (n, t)))
        .collect();
    type Value = fn(&crate::train::EpochLog) -> f64;
    let panels: [(&str, Value); 2] = [
        ("validation Recall@10", |e| e.valid_recall_10),
        ("training loss", |e| e.loss),
    ];
    for (panel, (title, value)) in panels.iter().enumerate() {
        let x0 = panel as f64 * w;
        let all: Vec<f64> = trained
            .iter()
            .flat_map(|(_, t)| t.curve.iter().map(value))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(1e-9);
        let epochs = trained
            .iter()
            .map(|(_, t)| t.curve.len())
            .max()
            .unwrap_or(1)
            .max(2) as f64;
        let _ = write!(
            svg,
            r#"<text x="{}" y="16">{title} (min {lo:.4}, max {hi:.4}) vs epoch</text>"#,
            x0 + pad
        );
        let _ = write!(
            svg,
            r##"<rect x="{}" y="{pad}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            x0 + pad,
            w - 2.0 * pad,
            h - 2.0 * pad
        );
        for (k, (name, t)) in trained.iter().enumerate() {
            let points: Vec<String> = t
                .curve
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let x = x0 + pad + (w - 2.0 * pad) * i as f64 / (epochs - 1.0);
                    let y = h - pad - (h - 2.0 * pad) * (value(e) - lo) / span;
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            let color = COLORS[k % COLORS.len()];
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
                x0 + pad + 6.0,
                pad + 14.0 * (k + 1) as f64
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

pub fn write(results: &Results, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(results).expect("serialisable"),
    )?;
    std::fs::write(dir.join("report.md"), markdown(results))?;
    std::fs::write(dir.join("training.svg"), training_svg(results))
}
