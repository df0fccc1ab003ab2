//! The replay's figure: prequential Recall@10 per window of probes, and consumer lag per stream
//! over time.

use super::{windows, LagSample, ReplayReport};
use crate::eval::plot::Panel;

/// Prequential recall per window and consumer lag over the replay.
pub fn panels(report: &ReplayReport, window: usize) -> Vec<Panel> {
    let w = windows(&report.probes, window);
    let series = |name: &str, pick: fn(&(usize, f64, f64, f64)) -> f64| {
        (
            name.to_string(),
            w.iter().map(|p| (p.0 as f64, pick(p))).collect(),
        )
    };
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
            series: vec![
                series("online LEARN", |p| p.1),
                series("frozen", |p| p.2),
                series("popularity", |p| p.3),
            ],
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
