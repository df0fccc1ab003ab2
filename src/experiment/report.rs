//! The written results of `learn eval`: `results.json`, `report.md` (tables) and `training.svg` / `training.png`
//! (validation NDCG@10 and loss per epoch of each trained model).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::eval::plot::{self, Panel};
use crate::eval::{Evaluation, Metrics};
use crate::train::TrainReport;

#[derive(Debug, Serialize)]
pub struct ModelResult {
    pub evaluation: Evaluation,
    /// Training log, for trained models.
    pub training: Option<TrainReport>,
    /// For a blended ranking: the weight chosen on validation and every weight's score there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<Fusion>,
}

/// The blend weight of `learn-fused`, selected on the validation split.
#[derive(Debug, Serialize)]
pub struct Fusion {
    pub weight: f64,
    /// (weight, unmasked validation NDCG@10) for every weight tried.
    pub valid_ndcg_10: Vec<(f64, f64)>,
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
    table(
        "Test, nothing masked (the published anchors' protocol)",
        &|e| Some(&e.unmasked),
    );
    table("Test, history items masked", &|e| Some(&e.masked));
    table(
        &format!(
            "Cold targets ({} items never seen in training; nothing masked)",
            results.cold_items
        ),
        &|e| e.cold_targets.as_ref(),
    );
    table("Warm targets (nothing masked)", &|e| {
        e.warm_targets.as_ref()
    });
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

/// Two panels: validation NDCG@10 and training loss per epoch, one line per trained model.
pub fn training_panels(results: &Results) -> Vec<Panel> {
    type Value = fn(&crate::train::EpochLog) -> f64;
    let panels: [(&str, &str, Value); 2] = [
        (
            "validation NDCG@10 (the selection metric)",
            "NDCG@10 (validation, nothing masked)",
            |e| e.valid_ndcg_10,
        ),
        ("training loss", "softmax cross-entropy (nats)", |e| e.loss),
    ];
    panels
        .iter()
        .map(|(title, y_label, value)| Panel {
            title: title.to_string(),
            x_label: "epoch".into(),
            y_label: y_label.to_string(),
            series: results
                .models
                .iter()
                .filter_map(|(name, r)| r.training.as_ref().map(|t| (name, t)))
                .map(|(name, t)| {
                    let points = t.curve.iter().map(|e| (e.epoch as f64, value(e))).collect();
                    (name.clone(), points)
                })
                .collect(),
        })
        .collect()
}

pub fn write(results: &Results, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(results).expect("serialisable"),
    )?;
    std::fs::write(dir.join("report.md"), markdown(results))?;
    plot::write(&training_panels(results), &dir.join("training"))
}
