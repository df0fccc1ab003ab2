//! The replay's figure: each arm's prequential Recall@10 per window of probes, and consumer lag
//! per stream over time.

use super::prequential::{windows, LagSample};
use super::ReplayReport;
use crate::eval::plot::Panel;

/// Prequential recall per window and consumer lag over the replay.
pub fn panels(report: &ReplayReport, window: usize) -> Vec<Panel> {
    let w = windows(&report.probes, report.arms.len(), window);
    let recall: Vec<(String, Vec<(f64, f64)>)> = report
        .arms
        .iter()
        .enumerate()
        .map(|(arm, name)| {
            let points = w.iter().map(|(at, s)| (*at as f64, s[arm].recall_10));
            (name.clone(), points.collect())
        })
        .collect();
    let lag = |name: &str, pick: fn(&LagSample) -> i64| {
        (
            name.to_string(),
            report
                .lag
                .iter()
                .map(|s| (s.elapsed_secs, pick(s) as f64))
                .collect(),
        )
    };
    vec![
        Panel {
            title: format!("prequential Recall@10, windows of {window} probes"),
            x_label: "actions replayed".into(),
            y_label: "Recall@10".into(),
            series: recall,
        },
        Panel {
            title: "consumer lag".into(),
            x_label: "time since the replay started (s)".into(),
            y_label: "lag (messages)".into(),
            series: vec![
                lag("actions", |s| s.actions_lag),
                lag("uploads", |s| s.uploads_lag),
            ],
        },
    ]
}
