//! Line charts with `plotters`: side-by-side panels, each with a title, named series of (x, y)
//! points, both axes labelled with their quantity and unit and ticked, and a legend; written as
//! `<stem>.svg` and `<stem>.png`. Used for the training curves and the prequential replay report.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

/// One chart.
pub struct Panel {
    pub title: String,
    /// Axis descriptions, with units.
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Pixels per panel.
const PANEL: (u32, u32) = (640, 420);

/// Where a sans-serif TrueType font is looked for (Debian's fonts-dejavu-core first): plotters
/// measures and draws text with it.
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn font() -> std::io::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = FONTS
                .iter()
                .find(|p| Path::new(p).exists())
                .ok_or("no DejaVu Sans font: install fonts-dejavu-core")?;
            let bytes: &'static [u8] = Box::leak(
                std::fs::read(path)
                    .map_err(|e| format!("{path}: {e}"))?
                    .into_boxed_slice(),
            );
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{path}: not a usable font"))
        })
        .clone()
        .map_err(std::io::Error::other)
}

/// Writes the panels side by side to `<stem>.svg` and `<stem>.png`. Without a font to measure
/// and draw text with, the figure is skipped with a warning (the numbers are in the reports).
pub fn write(panels: &[Panel], stem: &Path) -> std::io::Result<()> {
    if let Err(err) = font() {
        tracing::warn!(%err, figure = %stem.display(), "figure not drawn");
        return Ok(());
    }
    let size = (PANEL.0 * panels.len().max(1) as u32, PANEL.1);
    let failed = |e: String| std::io::Error::other(format!("{}: {e}", stem.display()));
    let svg = stem.with_extension("svg");
    draw(&SVGBackend::new(&svg, size).into_drawing_area(), panels).map_err(failed)?;
    let png = stem.with_extension("png");
    let drawn = draw(&BitMapBackend::new(&png, size).into_drawing_area(), panels);
    drawn.map_err(failed)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let (x, y) = ranges(panel);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|x| format!("{x}"))
            .draw()
            .map_err(err)?;
        for (i, (name, points)) in panel.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// The data's extent on each axis, padded by 5 % of the y range (never empty).
fn ranges(panel: &Panel) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = || panel.series.iter().flat_map(|(_, s)| s.iter());
    let fold = |pick: fn(&(f64, f64)) -> f64| {
        points()
            .map(pick)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let ((xlo, xhi), (ylo, yhi)) = (fold(|p| p.0), fold(|p| p.1));
    if xlo > xhi {
        return (0.0..1.0, 0.0..1.0);
    }
    let pad = ((yhi - ylo) * 0.05).max(1e-6);
    (xlo..xhi.max(xlo + 1e-6), (ylo - pad)..(yhi + pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_figure_is_written_as_a_well_formed_svg_and_png() {
        if font().is_err() {
            eprintln!("skipped: no DejaVu Sans font");
            return;
        }
        let dir = std::env::temp_dir().join(format!("learn-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let panels = [
            Panel {
                title: "validation NDCG@10".into(),
                x_label: "epoch".into(),
                y_label: "NDCG@10".into(),
                series: vec![
                    (
                        "learn".into(),
                        (1..=20)
                            .map(|e| (e as f64, 0.03 + e as f64 * 0.002))
                            .collect(),
                    ),
                    (
                        "sasrec".into(),
                        (1..=12)
                            .map(|e| (e as f64, 0.02 + e as f64 * 0.002))
                            .collect(),
                    ),
                ],
            },
            Panel {
                title: "consumer lag".into(),
                x_label: "time (s)".into(),
                y_label: "lag (messages)".into(),
                series: vec![("actions".into(), vec![(0.0, 5.0), (1.0, 0.0), (2.0, 12.0)])],
            },
        ];
        write(&panels, &dir.join("figure")).unwrap();
        let svg = std::fs::read_to_string(dir.join("figure.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>')?.1.split_once("</text>"))
            .map(|(text, _)| text.trim())
            .collect();
        assert!(
            texts.len() > 20,
            "tick labels on both axes of both panels: {texts:?}"
        );
        for text in [
            "validation NDCG@10",
            "epoch",
            "NDCG@10",
            "learn",
            "sasrec",
            "consumer lag",
            "time (s)",
            "lag (messages)",
            "actions",
        ] {
            assert!(texts.contains(&text), "{text} missing from {texts:?}");
        }
        let png = std::fs::read(dir.join("figure.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (2 * PANEL.0, PANEL.1));
        assert!(png.len() > 10_000, "a drawn image, not a blank one");
        let _ = std::fs::remove_dir_all(dir);
    }
}
