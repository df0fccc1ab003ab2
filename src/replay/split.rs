//! Where a split replay's history ends ([`SplitPoint`]), and that history as an offline dataset
//! for `learn train` ([`export_history`]).

use std::path::Path;

use super::ReplayError;
use crate::workload::{export, movielens_stream, Exported, Outgoing};

/// `learn replay --split`: a fraction of the events, or an event time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitPoint {
    Fraction(f64),
    /// Milliseconds since the epoch.
    Time(i64),
}

impl SplitPoint {
    /// A value in (0, 1) is a fraction of the events; a larger one, a Unix time in seconds.
    pub fn parse(value: &str) -> Result<Self, String> {
        let x: f64 = value
            .parse()
            .map_err(|_| format!("{value:?}: a fraction (0.5) or a Unix time in seconds"))?;
        match x {
            x if x > 0.0 && x < 1.0 => Ok(SplitPoint::Fraction(x)),
            x if x >= 1.0 => Ok(SplitPoint::Time((x * 1000.0) as i64)),
            _ => Err(format!("{value}: must be above 0")),
        }
    }

    /// The index of the first streamed event of `stream` (time-ordered).
    pub fn index(self, stream: &[Outgoing]) -> usize {
        match self {
            SplitPoint::Fraction(f) => (stream.len() as f64 * f).round() as usize,
            SplitPoint::Time(ms) => stream.partition_point(|o| o.ts_ms() < ms),
        }
    }
}

/// Writes the events before `split` as a canonical dataset for `learn train` ([`export`]).
pub fn export_history(
    dataset: &Path,
    split: SplitPoint,
    limit: usize,
    dir: &Path,
) -> Result<Exported, ReplayError> {
    let mut stream = movielens_stream(dataset).map_err(|e| ReplayError::Dataset(e.to_string()))?;
    if limit > 0 {
        stream.truncate(limit);
    }
    export(&stream[..split.index(&stream)], dir).map_err(|source| ReplayError::Write {
        path: dir.to_path_buf(),
        source,
    })
}
