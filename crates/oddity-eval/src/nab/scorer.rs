//! The NAB scoring rules, implemented from their definition (`nab/sweeper.py`,
//! `nab/optimizer.py`, `config/profiles.json` of numenta/NAB).
//!
//! 1. The first `min(floor(0.15·n), 750)` rows of a file are the probationary period: they are
//!    dropped before scoring and count neither as detections nor as false positives.
//! 2. A row inside a window of width `W` rows whose last row is `R` has relative position
//!    `p = −(R − i + 1)/W ∈ [−1, 0)`; detecting it is worth `tp · σ̂(p) / σ̂(−1)` where
//!    `σ̂(y) = 2/(1 + e^{5y}) − 1` is the scaled sigmoid (`−1` for `y > 3`). Only the best
//!    (earliest) detection of a window counts; a window without one costs `−fn`.
//! 3. A row outside every window costs `fp · σ̂(d)` with `d = (i − R_prev)/(W_prev − 1)`, its
//!    distance past the previous window's last row in units of that window's width, and the full
//!    `−fp` before the first window (or when `d > 3`).
//! 4. A detection is a row whose score is ≥ the threshold. One threshold serves the whole corpus;
//!    [`sweep`] tries every distinct score and keeps the best total.
//! 5. Normalised score: `100 · (raw − null)/(perfect − null)` with `null = −fn · windows` (the
//!    detector that never fires) and `perfect = tp · windows`.
//!
//! Rows are prepared once per file ([`prepare_file`]) with their unweighted value, so that the
//! three profiles and every threshold reuse them.

use serde::Serialize;

/// Fraction of a file's rows in the probationary period.
pub const PROBATION_FRACTION: f64 = 0.15;
/// Cap of the probationary period in rows (`0.15 · 5000`).
pub const PROBATION_CAP: usize = 750;

/// Weights of one NAB application profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    /// Profile name as NAB spells it.
    pub name: &'static str,
    /// Weight of a detected window (true positive).
    pub tp: f64,
    /// Weight of a false-positive row.
    pub fp: f64,
    /// Weight of a missed window (false negative).
    pub fn_: f64,
}

/// NAB's three profiles: standard, reward_low_FP_rate, reward_low_FN_rate.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// The probationary length of a file of `rows` rows.
pub fn probation_rows(rows: usize) -> usize {
    ((PROBATION_FRACTION * rows as f64).floor() as usize).min(PROBATION_CAP)
}

/// `2 / (1 + e^{5y}) − 1`, or −1 past three window widths.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// A scorable row: its anomaly score and what detecting it is worth before profile weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The detector's score for the row.
    pub score: f64,
    /// The window the row lies in (corpus-wide id), or None for a false-positive row.
    pub window: Option<usize>,
    /// Inside a window: the true-positive value in 0..=1 (already divided by `σ̂(−1)`).
    /// Outside: the unweighted false-positive value in −1..0.
    pub value: f64,
}

/// One file's rows ready for scoring, windows numbered from `first_window`.
///
/// `windows` are inclusive row ranges `(first, last)`, sorted and disjoint. Returns the scorable
/// rows and the number of windows that have at least one scorable row.
pub fn prepare_file(
    scores: &[f64],
    windows: &[(usize, usize)],
    first_window: usize,
) -> (Vec<Row>, usize) {
    let n = scores.len();
    let probation = probation_rows(n);
    let max_tp = scaled_sigmoid(-1.0);
    let mut rows = Vec::with_capacity(n.saturating_sub(probation));
    let mut counted = vec![false; windows.len()];
    let mut next = 0; // index of the first window not yet passed
    let mut previous: Option<(usize, usize)> = None;
    for (i, &score) in scores.iter().enumerate() {
        while next < windows.len() && windows[next].1 < i {
            previous = Some(windows[next]);
            next += 1;
        }
        let inside = windows.get(next).filter(|w| w.0 <= i);
        let (window, value) = match inside {
            Some(&(first, last)) => {
                let width = (last - first + 1) as f64;
                let position = -((last - i + 1) as f64) / width;
                (Some(first_window + next), scaled_sigmoid(position) / max_tp)
            }
            None => match previous {
                None => (None, -1.0),
                Some((first, last)) => {
                    let width = (last - first + 1) as f64;
                    let distance = (i - last) as f64 / (width - 1.0).max(1.0);
                    (None, scaled_sigmoid(distance))
                }
            },
        };
        if i < probation {
            continue;
        }
        if inside.is_some() {
            counted[next] = true;
        }
        rows.push(Row {
            score,
            window,
            value,
        });
    }
    (rows, counted.iter().filter(|&&c| c).count())
}

/// The outcome of scoring rows at one threshold under one profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    /// Detection threshold (a row is a detection when its score is ≥ it).
    pub threshold: f64,
    /// Raw NAB score: true-positive value + false-positive cost − missed-window cost.
    pub raw: f64,
    /// Normalised NAB score: 0 for the null detector, 100 for the perfect one.
    pub normalized: f64,
    /// Windows with at least one detection.
    pub windows_hit: usize,
    /// Windows in the corpus (with a scorable row).
    pub windows: usize,
    /// Sum of the weighted true-positive values.
    pub tp_value: f64,
    /// Detections outside every window.
    pub fp_rows: usize,
    /// Sum of the weighted false-positive costs (≤ 0).
    pub fp_cost: f64,
}

/// The normalised score of `raw` with `windows` windows under `profile`.
pub fn normalize(raw: f64, windows: usize, profile: &Profile) -> f64 {
    let null = -profile.fn_ * windows as f64;
    let perfect = profile.tp * windows as f64;
    if perfect == null {
        0.0
    } else {
        100.0 * (raw - null) / (perfect - null)
    }
}

/// Scores `rows` (from any number of files; window ids corpus-wide) at `threshold`.
pub fn score_at(rows: &[Row], windows: usize, threshold: f64, profile: &Profile) -> Outcome {
    let mut best: Vec<Option<f64>> = vec![None; windows];
    let (mut fp_rows, mut fp_cost) = (0, 0.0);
    for row in rows.iter().filter(|r| r.score >= threshold) {
        match row.window {
            Some(w) => {
                if let Some(slot) = best.get_mut(w) {
                    *slot = Some(slot.map_or(row.value, |b: f64| b.max(row.value)));
                }
            }
            None => {
                fp_rows += 1;
                fp_cost += profile.fp * row.value;
            }
        }
    }
    let windows_hit = best.iter().flatten().count();
    let tp_value = profile.tp * best.iter().flatten().sum::<f64>();
    let raw = tp_value + fp_cost - profile.fn_ * (windows - windows_hit) as f64;
    Outcome {
        threshold,
        raw,
        normalized: normalize(raw, windows, profile),
        windows_hit,
        windows,
        tp_value,
        fp_rows,
        fp_cost,
    }
}

/// Finds the threshold with the best raw score by sweeping every distinct score, highest first
/// (ties keep the highest threshold). A threshold above every score (no detection) is the
/// starting point, reported as threshold 1.1 as NAB does.
pub fn sweep(rows: &[Row], windows: usize, profile: &Profile) -> Outcome {
    let mut order: Vec<&Row> = rows.iter().filter(|r| !r.score.is_nan()).collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut best_value: Vec<Option<f64>> = vec![None; windows];
    let mut raw = -profile.fn_ * windows as f64;
    let (mut best_raw, mut best_threshold) = (raw, 1.1);
    let mut i = 0;
    while i < order.len() {
        let threshold = order[i].score;
        while i < order.len() && order[i].score == threshold {
            let row = order[i];
            match row.window {
                Some(w) => {
                    if let Some(slot) = best_value.get_mut(w) {
                        match *slot {
                            None => {
                                raw += profile.tp * row.value + profile.fn_;
                                *slot = Some(row.value);
                            }
                            Some(b) if row.value > b => {
                                raw += profile.tp * (row.value - b);
                                *slot = Some(row.value);
                            }
                            Some(_) => {}
                        }
                    }
                }
                None => raw += profile.fp * row.value,
            }
            i += 1;
        }
        if raw > best_raw + 1e-12 {
            best_raw = raw;
            best_threshold = threshold;
        }
    }
    score_at(rows, windows, best_threshold, profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: Profile = PROFILES[0];
    const LOW_FP: Profile = PROFILES[1];
    const LOW_FN: Profile = PROFILES[2];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probation_rows(20), 3);
        assert_eq!(probation_rows(4032), 604);
        assert_eq!(probation_rows(5000), 750);
        assert_eq!(probation_rows(22_695), 750);
        assert_eq!(probation_rows(0), 0);
    }

    #[test]
    fn scaled_sigmoid_matches_the_published_table() {
        // σ̂(−1)/σ̂(−1) = 1; centre 0.860; −0.25 → 0.562 (NAB-METHODS §3).
        let max = scaled_sigmoid(-1.0);
        assert!(close(max, 0.986_614_298));
        assert!((scaled_sigmoid(-0.5) / max - 0.860).abs() < 1e-3);
        assert!((scaled_sigmoid(-0.25) / max - 0.562).abs() < 1e-3);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert!(close(scaled_sigmoid(0.0), 0.0));
    }

    /// A 20-row file: probation floor(0.15·20) = 3 rows (0, 1, 2), one window on rows 10..=14
    /// (width 5).
    fn twenty_rows(detections: &[usize]) -> Vec<f64> {
        let mut scores = vec![0.0; 20];
        for &i in detections {
            scores[i] = 1.0;
        }
        scores
    }

    #[test]
    fn hand_computed_single_file() {
        struct Case {
            name: &'static str,
            detections: &'static [usize],
            profile: Profile,
            raw: f64,
            normalized: f64,
            hit: usize,
            fp_rows: usize,
        }
        let cases = [
            // No detection: the window is missed. raw = −fn = −1; normalised 100·(−1+1)/(1+1) = 0.
            Case {
                name: "null",
                detections: &[],
                profile: STANDARD,
                raw: -1.0,
                normalized: 0.0,
                hit: 0,
                fp_rows: 0,
            },
            // Detection on the window's first row: p = −(14−10+1)/5 = −1 → value 1.
            // raw = 1; normalised 100·(1+1)/2 = 100.
            Case {
                name: "perfect",
                detections: &[10],
                profile: STANDARD,
                raw: 1.0,
                normalized: 100.0,
                hit: 1,
                fp_rows: 0,
            },
            // Row 12: p = −(14−12+1)/5 = −0.6; σ̂(−0.6) = 2/(1+e^−3) − 1 = 0.905148;
            // /0.986614 = 0.917429.
            // raw 0.917429; normalised 100·1.917429/2 = 95.8714.
            Case {
                name: "late in window",
                detections: &[12],
                profile: STANDARD,
                raw: 0.917_429,
                normalized: 95.871_4,
                hit: 1,
                fp_rows: 0,
            },
            // Rows 12 and 10: only the best (earliest) counts → 1.
            Case {
                name: "best detection counts once",
                detections: &[10, 12, 13],
                profile: STANDARD,
                raw: 1.0,
                normalized: 100.0,
                hit: 1,
                fp_rows: 0,
            },
            // Row 1 is in the probation: ignored. Row 5 precedes every window: −1·0.11.
            // raw = −1 − 0.11 = −1.11; normalised 100·(−0.11)/2 = −5.5.
            Case {
                name: "fp before first window",
                detections: &[1, 5],
                profile: STANDARD,
                raw: -1.11,
                normalized: -5.5,
                hit: 0,
                fp_rows: 1,
            },
            // Row 18 after the window: d = (18−14)/(5−1) = 1; σ̂(1) = 2/(1+e^5) − 1 = −0.986614;
            // ×0.11 = −0.108528. With the perfect hit: raw 0.891472; normalised 94.5736.
            Case {
                name: "fp one width after",
                detections: &[10, 18],
                profile: STANDARD,
                raw: 0.891_472,
                normalized: 94.573_6,
                hit: 1,
                fp_rows: 1,
            },
            // Row 15: d = 1/4; σ̂(0.25) = 2/(1+e^1.25) − 1 = −0.554600; ×0.11 = −0.061006.
            // raw 0.938994; normalised 100·1.938994/2 = 96.9497.
            Case {
                name: "fp right after window is cheap",
                detections: &[10, 15],
                profile: STANDARD,
                raw: 0.938_994,
                normalized: 96.949_7,
                hit: 1,
                fp_rows: 1,
            },
            // Low-FP profile doubles the FP weight: 1 − 0.22·0.986614 = 0.782945; 100·1.782945/2.
            Case {
                name: "low fp profile",
                detections: &[10, 18],
                profile: LOW_FP,
                raw: 0.782_945,
                normalized: 89.147_3,
                hit: 1,
                fp_rows: 1,
            },
            // Low-FN profile: missing costs 2. raw = −2 − 0.11 = −2.11; null −2, perfect 1:
            // normalised 100·(−0.11)/3 = −3.6667.
            Case {
                name: "low fn profile miss",
                detections: &[5],
                profile: LOW_FN,
                raw: -2.11,
                normalized: -3.666_667,
                hit: 0,
                fp_rows: 1,
            },
        ];
        for case in cases {
            let scores = twenty_rows(case.detections);
            let (rows, windows) = prepare_file(&scores, &[(10, 14)], 0);
            assert_eq!(windows, 1);
            assert_eq!(rows.len(), 17, "{}", case.name);
            let got = score_at(&rows, windows, 0.5, &case.profile);
            assert!(
                close(got.raw, case.raw),
                "{}: raw {} want {}",
                case.name,
                got.raw,
                case.raw
            );
            assert!(
                (got.normalized - case.normalized).abs() < 1e-3,
                "{}: {} want {}",
                case.name,
                got.normalized,
                case.normalized
            );
            assert_eq!(got.windows_hit, case.hit, "{}", case.name);
            assert_eq!(got.fp_rows, case.fp_rows, "{}", case.name);
        }
    }

    #[test]
    fn far_past_window_costs_full_price() {
        // 40 rows, probation 6, window rows 10..=12 (width 3): row 30 is d = 18/2 = 9 > 3 → −1.
        let mut scores = vec![0.0; 40];
        scores[30] = 1.0;
        let (rows, w) = prepare_file(&scores, &[(10, 12)], 0);
        let got = score_at(&rows, w, 0.5, &STANDARD);
        assert!(close(got.raw, -1.0 - 0.11));
    }

    #[test]
    fn window_in_probation_does_not_count() {
        let (rows, w) = prepare_file(&[0.0; 20], &[(0, 1), (10, 14)], 0);
        assert_eq!(w, 1);
        assert!(rows.iter().all(|r| r.window != Some(0)));
    }

    #[test]
    fn sweep_picks_the_best_corpus_threshold() {
        // File A (20 rows, window 10..=14): row 10 scores 0.9, row 5 (FP, full price) scores 0.8.
        // File B (20 rows, window 10..=14): row 12 scores 0.7.
        // Thresholds: 1.1 → raw −2. 0.9 → A hit: −1 + 1 = 0.
        // 0.8 → + FP −0.11 = −0.11. 0.7 → + B hit 0.917429 + 1 = 1.807429 (best).
        // 0.0 → every other row: A FPs rows 3,4,6..9 before the window (−0.11 each ×6 more)
        // and after it; clearly worse. Normalised: 100·(1.807429+2)/4 = 95.1857.
        let mut a = vec![0.0; 20];
        a[10] = 0.9;
        a[5] = 0.8;
        let mut b = vec![0.0; 20];
        b[12] = 0.7;
        let (mut rows, wa) = prepare_file(&a, &[(10, 14)], 0);
        let (rows_b, wb) = prepare_file(&b, &[(10, 14)], wa);
        rows.extend(rows_b);
        let got = sweep(&rows, wa + wb, &STANDARD);
        assert_eq!(got.threshold, 0.7);
        assert!(close(got.raw, 1.807_429), "{}", got.raw);
        assert!((got.normalized - 95.185_7).abs() < 1e-3);
        assert_eq!((got.windows_hit, got.fp_rows), (2, 1));
    }

    #[test]
    fn sweep_of_a_silent_detector_is_null() {
        // 100 rows, probation 15, window 50..=54. Flagging every row (threshold 0) hits the
        // window (+1 + 1) but pays 35 full-price FPs before it (−3.85) and more after: worse
        // than flagging nothing, so the sweep keeps threshold 1.1 and the null score.
        let (rows, w) = prepare_file(&[0.0; 100], &[(50, 54)], 0);
        let got = sweep(&rows, w, &STANDARD);
        assert_eq!(got.threshold, 1.1);
        assert_eq!(got.normalized, 0.0);
    }
}
