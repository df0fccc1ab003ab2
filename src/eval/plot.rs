//! Dependency-free SVG line charts: side-by-side panels, each with named series of (x, y) points,
//! axes scaled to the data. Used for training curves and the prequential replay report.

use std::fmt::Write;

/// One chart: a title (the x-axis name goes in it) and its series.
pub struct Panel {
    pub title: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The panels side by side, 420 × 260 px each.
pub fn svg(panels: &[Panel]) -> String {
    let (w, h, pad) = (420.0, 260.0, 40.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{h}" font-family="sans-serif" font-size="11">"#,
        w * panels.len().max(1) as f64
    );
    for (p, panel) in panels.iter().enumerate() {
        let x0 = p as f64 * w;
        let points = panel.series.iter().flat_map(|(_, s)| s.iter());
        let (mut xlo, mut xhi, mut ylo, mut yhi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in points {
            (xlo, xhi, ylo, yhi) = (xlo.min(x), xhi.max(x), ylo.min(y), yhi.max(y));
        }
        let (xspan, yspan) = ((xhi - xlo).max(1e-9), (yhi - ylo).max(1e-9));
        let _ = write!(
            svg,
            r#"<text x="{}" y="16">{} (min {ylo:.4}, max {yhi:.4})</text>"#,
            x0 + pad,
            panel.title
        );
        let _ = write!(
            svg,
            r##"<rect x="{}" y="{pad}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            x0 + pad,
            w - 2.0 * pad,
            h - 2.0 * pad
        );
        for (k, (name, series)) in panel.series.iter().enumerate() {
            let coords: Vec<String> = series
                .iter()
                .map(|&(x, y)| {
                    let px = x0 + pad + (w - 2.0 * pad) * (x - xlo) / xspan;
                    let py = h - pad - (h - 2.0 * pad) * (y - ylo) / yspan;
                    format!("{px:.1},{py:.1}")
                })
                .collect();
            let color = COLORS[k % COLORS.len()];
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                coords.join(" ")
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
