//! Tabular evaluation: batch outlier models on labelled CSV datasets (the ODDS benchmarks).
//!
//! **Protocol** (the standard unsupervised one of the ODDS / ADBench literature): each detector
//! is fitted on *all* rows, labels unseen, and scores those same rows; the scores are then ranked
//! against the labels with
//!
//! - [`roc_auc`]: the probability that a random outlier outscores a random inlier, ties counting
//!   one half — the Mann–Whitney statistic on average ranks, identical to scikit-learn's
//!   `roc_auc_score`;
//! - [`average_precision`]: scikit-learn's `average_precision_score`, `Σ (R_n − R_{n−1}) P_n` over
//!   the distinct score thresholds taken from the highest down (step-wise, not interpolated; tied
//!   scores enter together).
//!
//! Fit and score times are measured separately (wall clock, so multi-threaded detectors count
//! their real latency). Seeded detectors run once per seed and report means; the others run once.
//!
//! **Input**: a CSV file with a header row, numeric feature columns, and the label last
//! (`1` = outlier, `0` = inlier). Errors name the file and the 1-based line.
//!
//! **Registry**: [`registry`] lists the detectors by name; adding one is one entry there.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oddity_detect::DetectError;
use oddity_detect::ml::{
    EnsembleConfig, Estimator, HalfSpaceTreesConfig, IsolationForest, LocalOutlierFactor, Matrix,
    OneClassSvmConfig, OutlierModel, ZScore,
};
use serde::Serialize;

use crate::EvalError;

/// A labelled dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The file's stem (`cardio` for `cardio.csv`).
    pub name: String,
    /// Names of the feature columns (the header without the label).
    pub columns: Vec<String>,
    /// The feature rows.
    pub features: Matrix,
    /// `true` for an outlier, one per row.
    pub labels: Vec<bool>,
}

impl Dataset {
    /// Number of outliers.
    pub fn outliers(&self) -> usize {
        self.labels.iter().filter(|l| **l).count()
    }
}

/// Reads a CSV file with a header row, numeric features and a 0/1 label in the last column.
pub fn read_csv(path: &Path) -> Result<Dataset, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    parse_csv(path, &text)
}

/// Parses the text of a labelled CSV file (see [`read_csv`]); `path` names it in errors.
pub fn parse_csv(path: &Path, text: &str) -> Result<Dataset, EvalError> {
    let err = |line: usize, reason: String| EvalError::Parse {
        file: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (_, header) = lines
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or_else(|| err(1, "empty file: expected a header row".to_owned()))?;
    let mut columns: Vec<String> = header.split(',').map(|c| c.trim().to_owned()).collect();
    if columns.len() < 2 {
        return Err(err(
            1,
            "the header needs at least one feature column and the label".to_owned(),
        ));
    }
    columns.pop();
    let width = columns.len();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (line, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        if fields.len() != width + 1 {
            return Err(err(
                line,
                format!(
                    "expected {} fields like the header, found {}",
                    width + 1,
                    fields.len()
                ),
            ));
        }
        for (c, f) in fields[..width].iter().enumerate() {
            match f.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(err(
                        line,
                        format!(
                            "column {} ({}): expected a finite number, found {f:?}",
                            c + 1,
                            columns[c]
                        ),
                    ));
                }
            }
        }
        let label = fields[width];
        labels.push(match label.parse::<f64>() {
            Ok(0.0) => false,
            Ok(1.0) => true,
            _ => {
                return Err(err(line, format!("label must be 0 or 1, found {label:?}")));
            }
        });
    }
    if labels.is_empty() {
        return Err(err(1, "no data rows after the header".to_owned()));
    }
    let features = Matrix::new(width, values).map_err(|e| err(0, e.to_string()))?;
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Ok(Dataset {
        name,
        columns,
        features,
        labels,
    })
}

/// Area under the ROC curve of `scores` (higher = more anomalous) against `labels`.
///
/// Computed as the Mann–Whitney U statistic with average ranks for ties, which equals the
/// trapezoidal area scikit-learn's `roc_auc_score` computes. Errors when a class is missing or a
/// score is NaN.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, EvalError> {
    let order = checked_order(labels, scores)?;
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(EvalError::Metric(
            "roc-auc needs both outliers and inliers".to_owned(),
        ));
    }
    // Ascending order; a run of equal scores shares the average of its 1-based ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_run = order[i..=j].iter().filter(|&&k| labels[k]).count();
        rank_sum += avg_rank * pos_in_run as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Average precision of `scores` against `labels`, as scikit-learn's
/// `average_precision_score`: `Σ_n (R_n − R_{n−1}) P_n` over the distinct thresholds from the
/// highest score down, where tied scores are admitted together. Errors when there is no outlier
/// or a score is NaN.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64, EvalError> {
    let mut order = checked_order(labels, scores)?;
    order.reverse();
    let positives = labels.iter().filter(|l| **l).count();
    if positives == 0 {
        return Err(EvalError::Metric(
            "average precision needs at least one outlier".to_owned(),
        ));
    }
    let (mut tp, mut seen, mut ap, mut prev_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let threshold = scores[order[i]];
        while i < order.len() && scores[order[i]] == threshold {
            tp += usize::from(labels[order[i]]);
            seen += 1;
            i += 1;
        }
        let recall = tp as f64 / positives as f64;
        let precision = tp as f64 / seen as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Ok(ap)
}

/// Indices sorted by ascending score, after checking the lengths match and no score is NaN.
fn checked_order(labels: &[bool], scores: &[f64]) -> Result<Vec<usize>, EvalError> {
    if labels.len() != scores.len() {
        return Err(EvalError::Metric(format!(
            "{} labels but {} scores",
            labels.len(),
            scores.len()
        )));
    }
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(EvalError::Metric(format!("score of row {i} is NaN")));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    Ok(order)
}

/// The outcome of fitting one detector on one dataset and scoring its rows.
#[derive(Debug, Clone)]
pub struct Run {
    /// One score per training row, higher = more anomalous.
    pub scores: Vec<f64>,
    /// Time to fit.
    pub fit: Duration,
    /// Time to score the training rows with the fitted model.
    pub score: Duration,
}

/// A detector the tabular evaluator can run.
#[derive(Debug, Clone, Copy)]
pub struct DetectorEntry {
    /// Name used on the command line and in reports.
    pub name: &'static str,
    /// Whether the result depends on the seed (the run repeats for every seed).
    pub seeded: bool,
    /// Fits with default parameters (and the seed) on the rows and scores the same rows.
    pub run: fn(&Matrix, u64) -> Result<Run, DetectError>,
}

/// The registered detectors, with their default parameters.
pub fn registry() -> Vec<DetectorEntry> {
    vec![
        DetectorEntry {
            name: "isolation_forest",
            seeded: true,
            run: |data, seed| {
                fit_then_score(
                    &IsolationForest {
                        seed,
                        ..IsolationForest::default()
                    },
                    data,
                )
            },
        },
        DetectorEntry {
            name: "lof",
            seeded: false,
            run: |data, _| {
                // Training rows score their stored LOF (a row is not its own neighbour).
                let t = Instant::now();
                let model = LocalOutlierFactor::default().fit(data)?;
                let fit = t.elapsed();
                let t = Instant::now();
                let scores = model.training_scores().to_vec();
                Ok(Run {
                    scores,
                    fit,
                    score: t.elapsed(),
                })
            },
        },
        DetectorEntry {
            name: "zscore",
            seeded: false,
            run: |data, _| fit_then_score(&ZScore::default(), data),
        },
        DetectorEntry {
            name: "one_class_svm",
            seeded: false,
            run: |data, _| fit_then_score(&OneClassSvmConfig::default().build()?, data),
        },
        DetectorEntry {
            name: "half_space_trees",
            seeded: true,
            run: |data, seed| {
                let config = HalfSpaceTreesConfig {
                    seed,
                    ..HalfSpaceTreesConfig::default()
                };
                fit_then_score(&config.build()?, data)
            },
        },
        DetectorEntry {
            name: "ensemble",
            seeded: true,
            run: |data, seed| ensemble(data, seed),
        },
    ]
}

/// Seed 003's ensemble with its default weights (isolation_forest 0.4, lof 0.3, zscore 0.3),
/// each member normalised by the distribution of its own training scores; the training rows are
/// scored as the members score them (LOF: a row is not its own neighbour).
fn ensemble(data: &Matrix, seed: u64) -> Result<Run, DetectError> {
    let t = Instant::now();
    let forest = IsolationForest {
        seed,
        ..IsolationForest::default()
    }
    .fit(data)?;
    let forest_scores = forest.score_batch(data);
    let lof = LocalOutlierFactor::default().fit(data)?;
    let lof_scores = lof.training_scores().to_vec();
    let zscore = ZScore::default().fit(data)?;
    let zscore_scores = zscore.score_batch(data);
    let mut ensemble = EnsembleConfig::default().build()?;
    ensemble.push_named("isolation_forest", Box::new(forest), &forest_scores)?;
    ensemble.push_named("lof", Box::new(lof), &lof_scores)?;
    ensemble.push_named("zscore", Box::new(zscore), &zscore_scores)?;
    let fit = t.elapsed();
    let t = Instant::now();
    let scores = (0..data.n_rows())
        .map(|i| {
            ensemble
                .combine(&[forest_scores[i], lof_scores[i], zscore_scores[i]])
                .score
        })
        .collect();
    Ok(Run {
        scores,
        fit,
        score: t.elapsed(),
    })
}

/// Times `fit` then `score_batch` on the same rows.
fn fit_then_score<E: Estimator>(estimator: &E, data: &Matrix) -> Result<Run, DetectError> {
    let t = Instant::now();
    let model = estimator.fit(data)?;
    let fit = t.elapsed();
    let t = Instant::now();
    let scores = model.score_batch(data);
    Ok(Run {
        scores,
        fit,
        score: t.elapsed(),
    })
}

/// What to evaluate.
#[derive(Debug, Clone, Default)]
pub struct TabularOptions {
    /// Labelled CSV files.
    pub data: Vec<PathBuf>,
    /// Detector names from [`registry`]; empty means all of them.
    pub detectors: Vec<String>,
    /// Seeds for seeded detectors; empty means `[42]`.
    pub seeds: Vec<u64>,
    /// Times each run this many times and reports the fastest (0 and 1 mean once): steadier
    /// timings on a busy machine. Scores are deterministic, so the metrics do not change.
    pub repeat: usize,
}

/// One seed's run of one detector on one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct SeedResult {
    /// The seed (0 for detectors without one).
    pub seed: u64,
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Average precision.
    pub average_precision: f64,
    /// Fit time in seconds.
    pub fit_secs: f64,
    /// Time to score the training rows, in seconds.
    pub score_secs: f64,
}

/// One detector on one dataset, averaged over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct TabularResult {
    /// Dataset name (file stem).
    pub dataset: String,
    /// The data file.
    pub file: PathBuf,
    /// Rows in the dataset.
    pub rows: usize,
    /// Feature columns.
    pub dims: usize,
    /// Rows labelled as outliers.
    pub outliers: usize,
    /// Detector name.
    pub detector: String,
    /// Mean ROC-AUC over the runs.
    pub roc_auc: f64,
    /// Mean average precision over the runs.
    pub average_precision: f64,
    /// Mean fit time in seconds.
    pub fit_secs: f64,
    /// Mean time to score the training rows, in seconds.
    pub score_secs: f64,
    /// Every run (one per seed for seeded detectors).
    pub runs: Vec<SeedResult>,
}

/// Results of a tabular evaluation, one entry per dataset and detector.
#[derive(Debug, Clone, Serialize)]
pub struct TabularReport {
    /// In the order of the data files, then of the detectors.
    pub results: Vec<TabularResult>,
}

/// Runs every selected detector on every dataset.
pub fn run(opts: &TabularOptions) -> Result<TabularReport, EvalError> {
    if opts.data.is_empty() {
        return Err(EvalError::Options("no data files given".to_owned()));
    }
    let entries = select(&opts.detectors)?;
    let seeds = if opts.seeds.is_empty() {
        vec![42]
    } else {
        opts.seeds.clone()
    };
    let mut results = Vec::new();
    for path in &opts.data {
        let dataset = read_csv(path)?;
        for entry in &entries {
            results.push(evaluate(&dataset, path, entry, &seeds, opts.repeat)?);
        }
    }
    Ok(TabularReport { results })
}

/// The registry entries named in `names` (all when empty), in the order given.
fn select(names: &[String]) -> Result<Vec<DetectorEntry>, EvalError> {
    let all = registry();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|e| e.name == name)
                .copied()
                .ok_or_else(|| EvalError::UnknownDetector {
                    name: name.clone(),
                    known: all.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
                })
        })
        .collect()
}

/// Runs one detector on one dataset for each seed (once if it is not seeded), `repeat` times
/// each keeping the fastest timings.
pub fn evaluate(
    dataset: &Dataset,
    path: &Path,
    entry: &DetectorEntry,
    seeds: &[u64],
    repeat: usize,
) -> Result<TabularResult, EvalError> {
    let seeds: &[u64] = if entry.seeded { seeds } else { &[0] };
    let mut runs = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let once = || {
            (entry.run)(&dataset.features, seed).map_err(|source| EvalError::Detect {
                detector: entry.name.to_owned(),
                file: path.to_path_buf(),
                source,
            })
        };
        let mut run = once()?;
        for _ in 1..repeat {
            let again = once()?;
            if again.fit + again.score < run.fit + run.score {
                run.fit = again.fit;
                run.score = again.score;
            }
        }
        runs.push(SeedResult {
            seed,
            roc_auc: roc_auc(&dataset.labels, &run.scores)?,
            average_precision: average_precision(&dataset.labels, &run.scores)?,
            fit_secs: run.fit.as_secs_f64(),
            score_secs: run.score.as_secs_f64(),
        });
    }
    let mean = |f: fn(&SeedResult) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    Ok(TabularResult {
        dataset: dataset.name.clone(),
        file: path.to_path_buf(),
        rows: dataset.labels.len(),
        dims: dataset.features.n_cols(),
        outliers: dataset.outliers(),
        detector: entry.name.to_owned(),
        roc_auc: mean(|r| r.roc_auc),
        average_precision: mean(|r| r.average_precision),
        fit_secs: mean(|r| r.fit_secs),
        score_secs: mean(|r| r.score_secs),
        runs,
    })
}

impl fmt::Display for TabularReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:>7} {:>5} {:>7}  {:<18} {:>5} {:>8} {:>8} {:>10} {:>10}",
            "dataset",
            "rows",
            "dims",
            "outl%",
            "detector",
            "runs",
            "ROC-AUC",
            "AP",
            "fit ms",
            "score ms"
        )?;
        for r in &self.results {
            writeln!(
                f,
                "{:<14} {:>7} {:>5} {:>7.2}  {:<18} {:>5} {:>8.4} {:>8.4} {:>10.2} {:>10.2}",
                r.dataset,
                r.rows,
                r.dims,
                100.0 * r.outliers as f64 / r.rows as f64,
                r.detector,
                r.runs.len(),
                r.roc_auc,
                r.average_precision,
                r.fit_secs * 1e3,
                r.score_secs * 1e3,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }

    struct MetricCase {
        name: &'static str,
        labels: &'static [u8],
        scores: &'static [f64],
        roc_auc: f64,
        ap: f64,
    }

    #[test]
    fn metrics_match_hand_computed_and_sklearn() {
        let cases = [
            MetricCase {
                // scikit-learn's documentation example for both metrics.
                name: "sklearn docs example",
                labels: &[0, 0, 1, 1],
                scores: &[0.1, 0.4, 0.35, 0.8],
                roc_auc: 0.75,
                ap: 0.833_333_333_333_333_3,
            },
            MetricCase {
                name: "perfect ranking",
                labels: &[0, 0, 0, 1],
                scores: &[0.1, 0.2, 0.3, 0.9],
                roc_auc: 1.0,
                ap: 1.0,
            },
            MetricCase {
                name: "reversed ranking",
                labels: &[1, 0, 0, 0],
                scores: &[0.1, 0.2, 0.3, 0.9],
                roc_auc: 0.0,
                ap: 0.25,
            },
            MetricCase {
                // Every pair tied: AUC 1/2; one threshold admits everything: P = 2/4, R = 1.
                name: "all scores tied",
                labels: &[0, 1, 0, 1],
                scores: &[0.5, 0.5, 0.5, 0.5],
                roc_auc: 0.5,
                ap: 0.5,
            },
            MetricCase {
                // Pairs (pos, neg): (2,1) 1, (2,2) ½, (3,1) 1, (3,2) 1, (3,1) 1, (3,2) 1 → 5.5/6.
                // AP: at 3: R 2/3, P 1; at 2: R 1, P 3/4; at 1: R 1 → 2/3 + 1/3·3/4 = 11/12.
                name: "ties across classes",
                labels: &[0, 0, 1, 1, 1],
                scores: &[1.0, 2.0, 2.0, 3.0, 3.0],
                roc_auc: 11.0 / 12.0,
                ap: 11.0 / 12.0,
            },
            MetricCase {
                // Pairs: pos 0.8 beats 3 negs; pos 0.4 ties neg 0.4 (½), beats 0.1 and 0.2:
                // (3 + 2.5) / 6. AP: at 0.8: R ½, P 1; at 0.4: R 1, P 2/3 → ½ + ½·2/3 = 5/6.
                name: "tie at a positive",
                labels: &[0, 0, 1, 0, 1],
                scores: &[0.1, 0.2, 0.4, 0.4, 0.8],
                roc_auc: 5.5 / 6.0,
                ap: 5.0 / 6.0,
            },
        ];
        for c in cases {
            let l = labels(c.labels);
            let auc = roc_auc(&l, c.scores).unwrap();
            let ap = average_precision(&l, c.scores).unwrap();
            assert!((auc - c.roc_auc).abs() < 1e-12, "{}: auc {auc}", c.name);
            assert!((ap - c.ap).abs() < 1e-12, "{}: ap {ap}", c.name);
        }
    }

    #[test]
    fn metric_errors() {
        assert!(roc_auc(&labels(&[1, 1]), &[0.1, 0.2]).is_err());
        assert!(roc_auc(&labels(&[0, 0]), &[0.1, 0.2]).is_err());
        assert!(average_precision(&labels(&[0, 0]), &[0.1, 0.2]).is_err());
        assert!(roc_auc(&labels(&[0, 1]), &[f64::NAN, 0.2]).is_err());
        assert!(roc_auc(&labels(&[0, 1]), &[0.2]).is_err());
        // AP is defined with only outliers.
        assert_eq!(
            average_precision(&labels(&[1, 1]), &[0.1, 0.2]).unwrap(),
            1.0
        );
    }

    struct CsvCase {
        name: &'static str,
        text: &'static str,
        expected: Result<(usize, usize, usize), &'static str>,
    }

    #[test]
    fn csv_cases() {
        let cases = [
            CsvCase {
                name: "good file with trailing newline and CRLF",
                text: "a,b,label\r\n1,2,0\r\n3.5,-4e2,1\r\n\r\n",
                expected: Ok((2, 2, 1)),
            },
            CsvCase {
                name: "float labels",
                text: "a,label\n1,0.0\n2,1.0\n",
                expected: Ok((2, 1, 1)),
            },
            CsvCase {
                name: "empty file",
                text: "",
                expected: Err("t.csv:1: empty file: expected a header row"),
            },
            CsvCase {
                name: "header only",
                text: "a,label\n",
                expected: Err("t.csv:1: no data rows after the header"),
            },
            CsvCase {
                name: "label only",
                text: "label\n1\n",
                expected: Err(
                    "t.csv:1: the header needs at least one feature column and the label",
                ),
            },
            CsvCase {
                name: "short row names its line",
                text: "a,b,label\n1,2,0\n1,0\n",
                expected: Err("t.csv:3: expected 3 fields like the header, found 2"),
            },
            CsvCase {
                name: "non-numeric value",
                text: "a,b,label\n1,x,0\n",
                expected: Err("t.csv:2: column 2 (b): expected a finite number, found \"x\""),
            },
            CsvCase {
                name: "nan value",
                text: "a,b,label\n1,NaN,0\n",
                expected: Err("t.csv:2: column 2 (b): expected a finite number, found \"NaN\""),
            },
            CsvCase {
                name: "bad label",
                text: "a,label\n1,2\n",
                expected: Err("t.csv:2: label must be 0 or 1, found \"2\""),
            },
        ];
        for c in cases {
            let got = parse_csv(Path::new("t.csv"), c.text);
            match (got, c.expected) {
                (Ok(d), Ok((rows, cols, outliers))) => {
                    assert_eq!(
                        (d.labels.len(), d.features.n_cols(), d.outliers()),
                        (rows, cols, outliers),
                        "{}",
                        c.name
                    );
                    assert_eq!(d.name, "t");
                }
                (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{}", c.name),
                (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
            }
        }
    }

    #[test]
    fn runs_every_detector_on_a_small_file() {
        let dir = std::env::temp_dir().join(format!("oddity-tabular-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("toy.csv");
        let mut text = String::from("x,y,label\n");
        for i in 0..60 {
            text.push_str(&format!("{},{},0\n", i % 6, (i * 7) % 5));
        }
        text.push_str("40,40,1\n-30,25,1\n");
        std::fs::write(&path, text).unwrap();
        let report = run(&TabularOptions {
            data: vec![path.clone()],
            detectors: vec![],
            seeds: vec![1, 2],
            repeat: 2,
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<&str> = report.results.iter().map(|r| r.detector.as_str()).collect();
        assert_eq!(
            names,
            [
                "isolation_forest",
                "lof",
                "zscore",
                "one_class_svm",
                "half_space_trees",
                "ensemble"
            ]
        );
        for r in &report.results {
            assert_eq!(r.roc_auc, 1.0, "{}", r.detector);
            assert_eq!(
                r.runs.len(),
                if matches!(
                    r.detector.as_str(),
                    "isolation_forest" | "half_space_trees" | "ensemble"
                ) {
                    2
                } else {
                    1
                }
            );
        }
        let table = report.to_string();
        assert!(
            table.contains("toy") && table.contains("ROC-AUC"),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["results"][0]["rows"], 62);
    }

    #[test]
    fn unknown_detector_lists_known_ones() {
        let err = run(&TabularOptions {
            data: vec![PathBuf::from("nowhere.csv")],
            detectors: vec!["magic".to_owned()],
            ..TabularOptions::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown detector \"magic\" (known: isolation_forest, lof, zscore, one_class_svm, half_space_trees, ensemble)"
        );
    }
}
