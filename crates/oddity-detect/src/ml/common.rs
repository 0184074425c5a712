//! Small pieces shared by the batch outlier models: the contamination parameter, input
//! validation, numpy's linear percentile, scikit-learn's average path length and a scoped-thread
//! parallel map (std only, so no thread-pool dependency).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Matrix;
use crate::DetectError;

/// Expected share of outliers in the training data; it sets the model's decision threshold
/// exactly like scikit-learn's `contamination` (it never changes the scores).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "ContaminationRepr", into = "ContaminationRepr")]
pub enum Contamination {
    /// scikit-learn's `"auto"`: a fixed offset from the original paper of each model
    /// (score 0.5 for Isolation Forest, an outlier factor of 1.5 for LOF).
    #[default]
    Auto,
    /// A share in (0, 0.5]: the threshold is the training scores' `1 − share` percentile.
    Fraction(f64),
}

/// Serde form: `"auto"` or a number.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ContaminationRepr {
    Fraction(f64),
    Word(String),
}

impl TryFrom<ContaminationRepr> for Contamination {
    type Error = String;

    fn try_from(repr: ContaminationRepr) -> Result<Self, Self::Error> {
        let c = match repr {
            ContaminationRepr::Word(w) if w == "auto" => Contamination::Auto,
            ContaminationRepr::Word(w) => {
                return Err(format!(
                    "contamination must be \"auto\" or a number, got {w:?}"
                ));
            }
            ContaminationRepr::Fraction(f) => Contamination::Fraction(f),
        };
        c.validate()?;
        Ok(c)
    }
}

impl From<Contamination> for ContaminationRepr {
    fn from(c: Contamination) -> Self {
        match c {
            Contamination::Auto => ContaminationRepr::Word("auto".to_owned()),
            Contamination::Fraction(f) => ContaminationRepr::Fraction(f),
        }
    }
}

impl Contamination {
    /// Checks the share is in (0, 0.5], as scikit-learn requires.
    pub fn validate(self) -> Result<(), String> {
        match self {
            Contamination::Fraction(f) if !(f > 0.0 && f <= 0.5) => {
                Err(format!("contamination must be in (0, 0.5], got {f}"))
            }
            _ => Ok(()),
        }
    }

    /// The threshold on "higher is more anomalous" training `scores`: `auto` when the
    /// contamination is `Auto`, else the `1 − share` linear percentile of the scores (the mirror
    /// image of scikit-learn's `offset_ = percentile(score_samples, 100·share)`).
    pub(crate) fn threshold(self, scores: &[f64], auto: f64) -> f64 {
        match self {
            Contamination::Auto => auto,
            Contamination::Fraction(f) => percentile(scores, 100.0 * (1.0 - f)),
        }
    }
}

/// numpy's default (`linear`) percentile, `q` in 0..=100. NaN for an empty slice.
pub(crate) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = (q / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Rejects empty data and non-finite values, naming the first bad cell.
pub(crate) fn check_data(data: &Matrix) -> Result<(), DetectError> {
    if data.n_rows() == 0 {
        return Err(DetectError::NotEnoughData("no rows to fit on".to_owned()));
    }
    check_finite(data)
}

/// The mean of each column of `data` (rows summed in order, then divided by their count).
pub(crate) fn column_means(data: &Matrix) -> Vec<f64> {
    let mut mean = vec![0.0; data.n_cols()];
    for row in data.rows() {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    let n = data.n_rows() as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

/// Rejects non-finite values, naming the first bad cell.
pub(crate) fn check_finite(data: &Matrix) -> Result<(), DetectError> {
    let cols = data.n_cols();
    if let Some(i) = data.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(DetectError::Parameter {
            name: "data",
            reason: format!(
                "row {}, column {} is {} (only finite values are accepted)",
                i / cols,
                i % cols,
                data.as_slice()[i]
            ),
        });
    }
    Ok(())
}

/// scikit-learn's `_average_path_length`: the average depth of an unsuccessful search in a
/// binary search tree of `n` points, `c(n) = 2·H(n−1) − 2(n−1)/n` with `H(i) ≈ ln i + γ`;
/// 0 for n ≤ 1 and 1 for n = 2.
pub(crate) fn average_path_length(n: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// The largest |value| (0 for none), in eight lanes so that the compiler uses SIMD (a fold
/// through `f64::max` compares one value at a time: 20 µs for `cardio`'s 38 451 values).
/// Values must not be NaN.
pub(crate) fn max_abs(values: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in chunks.by_ref() {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            let x = x.abs();
            *m = if x > *m { x } else { *m };
        }
    }
    for (m, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *m = m.max(x.abs());
    }
    lanes.iter().fold(0.0, |m, &x| m.max(x))
}

/// `Σ term(j)` for `j` in `0..len`, in four partial sums of every fourth term, combined as
/// `(s₀ + s₁) + (s₂ + s₃)`: four chains of additions that overlap instead of one (a sum of 20
/// terms otherwise waits on 20 additions in turn).
#[inline(always)]
pub(crate) fn sum_in_lanes(len: usize, term: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let full = len / 4 * 4;
    for at in (0..full).step_by(4) {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += term(at + lane);
        }
    }
    for (lane, at) in (full..len).enumerate() {
        acc[lane] += term(at);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Number of worker threads to use (rayon's pool: the machine's parallelism).
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

/// Maps `0..n` in contiguous chunks, in parallel when `n · cost_per_item` is large enough to pay
/// for threads, and concatenates the chunk results in order (so the output never depends on the
/// number of threads).
pub(crate) fn par_chunks<T, F>(n: usize, cost_per_item: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> Vec<T> + Sync,
{
    par_chunks_with(n, cost_per_item, || (), |(), range| f(range))
}

/// [`par_chunks`] with scratch state made by `init` and reused across the chunks rayon hands
/// one thread at a time (buffers). The chunks run on rayon's pool, whose threads live as long
/// as the process: a thread spawned per call starts its allocations on fresh pages, which on
/// small data cost as much as the work. Several chunks per thread, so that one slowed-down
/// thread on a shared machine does not leave the others idle at the end.
pub(crate) fn par_chunks_with<S, T, I, F>(n: usize, cost_per_item: usize, init: I, f: F) -> Vec<T>
where
    T: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, Range<usize>) -> Vec<T> + Sync,
{
    use rayon::prelude::*;
    let ranges = chunk_ranges(n, cost_per_item);
    if ranges.len() <= 1 {
        return f(&mut init(), 0..n);
    }
    let parts: Vec<Vec<T>> = ranges
        .into_par_iter()
        .map_init(&init, |state, range| f(state, range))
        .collect();
    parts.into_iter().flatten().collect()
}

/// The contiguous chunks of `0..n` that [`par_chunks`] hands to threads: `0..n` alone when
/// `n · cost_per_item` is too small to pay for threads.
pub(crate) fn chunk_ranges(n: usize, cost_per_item: usize) -> Vec<Range<usize>> {
    const MIN_WORK: usize = 200_000;
    /// Chunks per thread when the work is split.
    const CHUNKS_PER_WORKER: usize = 4;
    let workers = threads()
        .min(n.saturating_mul(cost_per_item) / MIN_WORK)
        .max(1);
    if workers <= 1 {
        return std::iter::once(0..n).collect();
    }
    let chunk = n.div_ceil(workers * CHUNKS_PER_WORKER);
    (0..n.div_ceil(chunk))
        .map(|c| c * chunk..((c + 1) * chunk).min(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // np.percentile([1, 2, 3, 4], q) for q = 0, 10, 50, 90, 100
        let v = [4.0, 1.0, 3.0, 2.0];
        for (q, want) in [
            (0.0, 1.0),
            (10.0, 1.3),
            (50.0, 2.5),
            (90.0, 3.7),
            (100.0, 4.0),
        ] {
            assert!((percentile(&v, q) - want).abs() < 1e-12, "q={q}");
        }
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn average_path_length_matches_sklearn() {
        // sklearn.ensemble._iforest._average_path_length([0, 1, 2, 3, 256])
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        assert!((average_path_length(3) - 1.207_392_357_589_623).abs() < 1e-12);
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
    }

    #[test]
    fn contamination_serde_and_validation() {
        let auto: Contamination = serde_json::from_str("\"auto\"").unwrap();
        assert_eq!(auto, Contamination::Auto);
        let f: Contamination = serde_json::from_str("0.1").unwrap();
        assert_eq!(f, Contamination::Fraction(0.1));
        assert_eq!(serde_json::to_string(&f).unwrap(), "0.1");
        assert_eq!(serde_json::to_string(&auto).unwrap(), "\"auto\"");
        assert!(serde_json::from_str::<Contamination>("0.7").is_err());
        assert!(serde_json::from_str::<Contamination>("\"most\"").is_err());
    }

    #[test]
    fn par_chunks_keeps_order() {
        let out = par_chunks(10_000, 1_000, |r| r.map(|i| i * 2).collect());
        assert_eq!(out, (0..10_000).map(|i| i * 2).collect::<Vec<_>>());
        assert!(par_chunks(0, 1, |r| r.collect::<Vec<_>>()).is_empty());
        // Per-thread state is reused across the chunks a thread claims; order is kept whatever
        // thread ran which chunk.
        let out = par_chunks_with(
            10_001,
            1_000,
            || 0usize,
            |calls, r| {
                *calls += 1;
                r.map(|i| (i, *calls)).collect()
            },
        );
        assert_eq!(out.len(), 10_001);
        assert!(out.iter().enumerate().all(|(i, &(j, _))| i == j));
        assert!(out.iter().all(|&(_, calls)| calls >= 1));
    }
}
