//! Reading a NAB corpus: `data/<category>/<file>.csv` (columns `timestamp,value`) and the
//! windows file (`{"<category>/<file>.csv": [["start", "end"], …]}`), and writing result files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use oddity_model::time::parse_iso8601;

use crate::EvalError;

/// One data file of the corpus.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Path relative to the data directory with `/` separators (`realTraffic/speed_7578.csv`),
    /// the key of the windows file.
    pub name: String,
    /// The timestamp column as written.
    pub timestamp_text: Vec<String>,
    /// The value column as written.
    pub value_text: Vec<String>,
    /// Timestamps in epoch milliseconds.
    pub ts: Vec<i64>,
    /// Values (NaN where the cell is empty or not a number).
    pub values: Vec<f64>,
}

/// Every `*.csv` under `dir`, recursively, sorted by relative name.
pub fn list_csv(dir: &Path) -> Result<Vec<(String, PathBuf)>, EvalError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| EvalError::io(&d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| EvalError::io(&d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "csv") {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((name, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one `timestamp,value` CSV file.
pub fn read_data_file(name: &str, path: &Path) -> Result<DataFile, EvalError> {
    let text = fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut file = DataFile {
        name: name.to_owned(),
        timestamp_text: Vec::new(),
        value_text: Vec::new(),
        ts: Vec::new(),
        values: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if i == 0 || line.is_empty() {
            continue;
        }
        let (ts_text, value_text) = line.split_once(',').unwrap_or((line, ""));
        let ts = parse_iso8601(ts_text).ok_or_else(|| EvalError::Parse {
            file: path.to_path_buf(),
            line: i + 1,
            reason: format!("invalid timestamp `{ts_text}`"),
        })?;
        file.ts.push(ts);
        file.values
            .push(value_text.trim().parse::<f64>().unwrap_or(f64::NAN));
        file.timestamp_text.push(ts_text.to_owned());
        file.value_text.push(value_text.to_owned());
    }
    Ok(file)
}

/// Reads the windows file: file name → windows as (start, end) epoch milliseconds.
pub fn read_windows(path: &Path) -> Result<BTreeMap<String, Vec<(i64, i64)>>, EvalError> {
    let text = fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let raw: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|e| EvalError::Parse {
            file: path.to_path_buf(),
            line: e.line(),
            reason: e.to_string(),
        })?;
    let mut out = BTreeMap::new();
    for (name, windows) in raw {
        let mut parsed = Vec::with_capacity(windows.len());
        for (start, end) in windows {
            let bad = |s: &str| EvalError::Parse {
                file: path.to_path_buf(),
                line: 0,
                reason: format!("invalid window timestamp `{s}` for {name}"),
            };
            let a = parse_iso8601(&start).ok_or_else(|| bad(&start))?;
            let b = parse_iso8601(&end).ok_or_else(|| bad(&end))?;
            parsed.push((a, b));
        }
        parsed.sort_unstable();
        out.insert(name, parsed);
    }
    Ok(out)
}

/// Inclusive row ranges of `windows` in `ts` (rows with `start ≤ ts ≤ end`); windows that cover
/// no row are dropped and overlapping ranges merged.
pub fn window_rows(ts: &[i64], windows: &[(i64, i64)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &(start, end) in windows {
        let first = ts.iter().position(|&t| t >= start && t <= end);
        let last = ts.iter().rposition(|&t| t >= start && t <= end);
        if let (Some(a), Some(b)) = (first, last) {
            match out.last_mut() {
                Some(prev) if a <= prev.1 + 1 => prev.1 = prev.1.max(b),
                _ => out.push((a, b)),
            }
        }
    }
    out
}

/// Writes `timestamp,value,anomaly_score` with scores in shortest round-trip form.
pub fn write_scores(path: &Path, file: &DataFile, scores: &[f64]) -> Result<(), EvalError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| EvalError::io(parent, e))?;
    }
    let mut out = String::with_capacity(file.ts.len() * 48);
    out.push_str("timestamp,value,anomaly_score\n");
    for ((ts, value), score) in file.timestamp_text.iter().zip(&file.value_text).zip(scores) {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{ts},{value},{score}");
    }
    fs::write(path, out).map_err(|e| EvalError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rows_are_inclusive_and_merged() {
        let ts: Vec<i64> = (0..10).map(|i| i * 10).collect();
        assert_eq!(window_rows(&ts, &[(20, 40)]), vec![(2, 4)]);
        assert_eq!(window_rows(&ts, &[(15, 41)]), vec![(2, 4)]);
        assert_eq!(window_rows(&ts, &[(20, 40), (40, 60)]), vec![(2, 6)]);
        assert_eq!(window_rows(&ts, &[(1000, 2000)]), vec![]);
    }
}
