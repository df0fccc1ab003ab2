//! Reading histograms back out of a Prometheus text exposition (`/metrics`): the cumulative
//! buckets of one series and PromQL's `histogram_quantile` over them, for `learn status` and the
//! benchmarks that report the service's own freshness.

/// Cumulative `(le, count)` buckets of `metric` whose labels include every `(name, value)` of
/// `labels` (`le` ascending; `+Inf` last).
pub fn buckets(text: &str, metric: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let prefix = format!("{metric}_bucket{{");
    let mut out: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (inside, value) = rest.split_once("} ")?;
            let mut le = None;
            let mut matched = 0;
            for pair in inside.split(',') {
                let (name, quoted) = pair.split_once('=')?;
                let value = quoted.trim_matches('"');
                if name == "le" {
                    le = Some(if value == "+Inf" {
                        f64::INFINITY
                    } else {
                        value.parse().ok()?
                    });
                } else if labels.contains(&(name, value)) {
                    matched += 1;
                }
            }
            (matched == labels.len()).then_some((le?, value.trim().parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The `q`-quantile of cumulative buckets, interpolated linearly inside its bucket (as PromQL's
/// `histogram_quantile`); `None` without observations. In the `+Inf` bucket it is the highest
/// finite bound.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            let fraction = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (le - lower) * fraction);
        }
        (lower, below) = (le, count);
    }
    Some(lower)
}

/// "p50 46 ms, p90 …, p99 …" of one histogram series, or `None` without observations.
pub fn percentiles_ms(buckets: &[(f64, f64)]) -> Option<String> {
    let parts: Vec<String> = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")]
        .iter()
        .map(|&(q, label)| Some(format!("{label} {:.0} ms", quantile(buckets, q)? * 1000.0)))
        .collect::<Option<_>>()?;
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE learn_freshness_stage_seconds histogram\n\
        learn_freshness_stage_seconds_bucket{stage=\"encode\",le=\"0.01\"} 2\n\
        learn_freshness_stage_seconds_bucket{stage=\"encode\",le=\"0.02\"} 6\n\
        learn_freshness_stage_seconds_bucket{stage=\"encode\",le=\"+Inf\"} 10\n\
        learn_freshness_stage_seconds_bucket{stage=\"store\",le=\"0.01\"} 10\n\
        learn_freshness_stage_seconds_bucket{stage=\"store\",le=\"+Inf\"} 10\n\
        learn_freshness_stage_seconds_sum{stage=\"encode\"} 0.3\n";

    #[test]
    fn picks_the_series_by_label_and_sorts_by_bound() {
        let encode = buckets(
            TEXT,
            "learn_freshness_stage_seconds",
            &[("stage", "encode")],
        );
        assert_eq!(
            encode,
            vec![(0.01, 2.0), (0.02, 6.0), (f64::INFINITY, 10.0)]
        );
        assert!(buckets(TEXT, "learn_freshness_seconds", &[]).is_empty());
    }

    #[test]
    fn interpolates_like_histogram_quantile() {
        let encode = buckets(
            TEXT,
            "learn_freshness_stage_seconds",
            &[("stage", "encode")],
        );
        // rank 5 of 10: 3 of the 4 observations in (0.01, 0.02] → 0.01 + 0.01 · 3/4.
        assert!((quantile(&encode, 0.5).unwrap() - 0.0175).abs() < 1e-12);
        // rank 1 of 10 inside the first bucket, which starts at 0.
        assert!((quantile(&encode, 0.1).unwrap() - 0.005).abs() < 1e-12);
        // in +Inf: the highest finite bound.
        assert_eq!(quantile(&encode, 0.99), Some(0.02));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[(0.01, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(
            percentiles_ms(&encode).as_deref(),
            Some("p50 18 ms, p90 20 ms, p99 20 ms")
        );
    }
}
