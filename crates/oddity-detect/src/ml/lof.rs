//! Local Outlier Factor (Breunig et al., 2000) with scikit-learn's `LocalOutlierFactor`
//! conventions.
//!
//! **Idea.** A point is an outlier when its neighbourhood is much sparser than its neighbours'
//! neighbourhoods. With `N_k(p)` the k nearest neighbours of p (Euclidean distance; a training
//! point is not its own neighbour) and `k-dist(o)` the distance to o's k-th neighbour:
//!
//! - reachability distance `reach(p, o) = max(d(p, o), k-dist(o))`, which smooths distances to
//!   points inside o's own neighbourhood;
//! - local reachability density `lrd(p) = 1 / (mean_{o ∈ N_k(p)} reach(p, o) + 1e-10)` (the
//!   `1e-10` guard is scikit-learn's, so duplicate rows give a huge but finite density);
//! - `LOF(p) = mean_{o ∈ N_k(p)} lrd(o) / lrd(p)`: about 1 inside a cluster, larger for outliers.
//!
//! **Scores.** Training rows score their LOF (scikit-learn's `−negative_outlier_factor_`), via
//! [`Estimator::fit_score`] or [`LofModel::training_scores`]; a new row scores the LOF it would
//! have against the training set (scikit-learn's `−score_samples` with `novelty=True`: its k
//! neighbours are training points, and the training densities are not recomputed). LOF has no
//! natural bound, so the score is the raw factor, ≥ 0, ≈ 1 for inliers; the ensemble normalises.
//! `contamination = "auto"` flags LOF > 1.5 (scikit-learn's `offset_ = −1.5`), a share sets the
//! threshold at the training factors' `1 − share` percentile.
//!
//! **Parameters.** `n_neighbors` (20) is clamped to `n − 1`, as scikit-learn does; at least two
//! rows are needed.
//!
//! **Neighbours** come from an exact KD-tree (`ml/neighbors.rs`: duplicate rows merged, rows of
//! 10+ columns rotated onto their principal axes, incremental cell distances), queried in
//! parallel on rayon's pool. The training rows' neighbours come from an exact brute-force
//! search instead when that is cheaper (small `n² · d`, see `brute_force_pays`); it gives the
//! same neighbours as an unrotated tree, and exact ones where the tree is rotated, and the
//! model then builds its tree only when it first scores a new row (or is serialised). Equal
//! distances are broken by row index (by the last bit after a rotation); scikit-learn breaks
//! them by its own traversal, which can change *which* of several equidistant points is the k-th
//! neighbour (never the k distances themselves), so factors can differ slightly on data with
//! many ties: 0.003 ROC-AUC at most on the ODDS sets.

use serde::{Deserialize, Serialize};

use super::common::{Contamination, check_data, max_abs, par_chunks, sum_in_lanes};
use super::neighbors::{
    AllKnn, KdTree, Knn, LazyKdTree, SCREEN_MAX_ABS, brute_all_knn, largest_equal_group,
};
use super::{Estimator, Matrix, OutlierModel};
use crate::DetectError;

/// scikit-learn's guard against a zero mean reachability distance.
const LRD_GUARD: f64 = 1e-10;

/// Training neighbours are found by brute force when `n² · (columns + 8)` is at most this
/// (see `brute_force_pays`).
const BRUTE_FORCE_MAX_WORK: usize = 2_000_000_000;

/// Whether comparing every pair beats the KD-tree for the training neighbours. Brute force
/// costs about `n² · (d + 8)` (a multiply-add per column, a few operations per pair, less what
/// its bounds skip); the tree's cost grows more slowly with n but quickly with d. Measured on
/// the ODDS sets (2 vCPU), brute force wins up to `satellite` (6 435 × 36, 1.8·10⁹: LOF `fit`
/// 13 ms; the rotated tree took 74–80 ms on the VM of an earlier session). A group of g > k
/// equal rows keeps the whole group as tied candidates of each of its rows (g² in all), which
/// the tree avoids by merging them: brute force still pays while g² ≤ k·n, i.e. the ties add at
/// most k candidates per row on average (`breastw`, a group of 27 among 683 rows);
/// `mammography` (3 329 equal rows among 11 183) stays on the tree.
fn brute_force_pays(n: usize, dims: usize, largest_group: usize, k: usize) -> bool {
    let ties_ok =
        largest_group <= k || largest_group.saturating_mul(largest_group) <= k.saturating_mul(n);
    ties_ok && n.saturating_mul(n).saturating_mul(dims + 8) <= BRUTE_FORCE_MAX_WORK
}

/// Local Outlier Factor parameters (the estimator); [`Estimator::fit`] gives a [`LofModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalOutlierFactor {
    /// Neighbourhood size k (clamped to the number of rows minus one).
    pub n_neighbors: usize,
    /// Sets the decision threshold.
    pub contamination: Contamination,
}

impl Default for LocalOutlierFactor {
    fn default() -> Self {
        LocalOutlierFactor {
            n_neighbors: 20,
            contamination: Contamination::Auto,
        }
    }
}

/// A fitted LOF: the training rows (in a KD-tree), their k-distances, densities and factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LofModel {
    k: usize,
    threshold: f64,
    tree: LazyKdTree,
    /// Per training row (original order): distance to its k-th neighbour.
    k_distance: Vec<f64>,
    /// Per training row: local reachability density.
    lrd: Vec<f64>,
    /// Per training row: its LOF.
    training_lof: Vec<f64>,
}

impl LofModel {
    /// The neighbourhood size actually used (`n_neighbors` clamped to n − 1).
    pub fn n_neighbors(&self) -> usize {
        self.k
    }

    /// Scores above this are outliers (1.5 for `contamination = "auto"`); equals
    /// −scikit-learn's `offset_`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// True when `score` is above the threshold (scikit-learn's `predict(x) == -1`).
    pub fn is_outlier(&self, score: f64) -> bool {
        score > self.threshold
    }

    /// The LOF of each training row, in row order (−`negative_outlier_factor_`).
    pub fn training_scores(&self) -> &[f64] {
        &self.training_lof
    }

    /// LOF of a new row against the training set, reusing `knn` as scratch space.
    fn score_with(&self, row: &[f64], knn: &mut Knn) -> f64 {
        self.tree.get().knn(row, knn);
        // The sums of `factors`, in the same order.
        let neighbours = knn.items();
        let count = neighbours.len();
        let reach = sum_in_lanes(count, |j| {
            let (d2, o) = neighbours[j];
            d2.sqrt().max(self.k_distance[o as usize])
        });
        let lrd = 1.0 / (reach / count as f64 + LRD_GUARD);
        sum_in_lanes(count, |j| self.lrd[neighbours[j].1 as usize]) / count as f64 / lrd
    }
}

impl OutlierModel for LofModel {
    /// The LOF of `row` as a new point (scikit-learn's novelty `−score_samples`); ≈ 1 for
    /// inliers, larger for outliers, not bounded.
    fn score(&self, row: &[f64]) -> f64 {
        self.score_with(row, &mut Knn::new(self.k))
    }

    fn score_batch(&self, data: &Matrix) -> Vec<f64> {
        // Build the tree here, not in the first of the parallel chunks (the others would wait).
        self.tree.get();
        par_chunks(data.n_rows(), 50 * self.k * data.n_cols(), |range| {
            let mut knn = Knn::new(self.k);
            range
                .map(|i| self.score_with(data.row(i), &mut knn))
                .collect()
        })
    }
}

/// From every row's k neighbours: k-distances, local reachability densities and outlier
/// factors, by row index; the rows in parallel when there are enough of them.
fn factors(knn: &AllKnn) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let AllKnn { k, rows, dist, nbr } = knn;
    let (k, n) = (*k, rows.len());
    // Per row of `rows` to per row index.
    let by_row = |values: &[f64]| {
        let mut out = vec![0.0; n];
        for (&id, &v) in rows.iter().zip(values) {
            out[id as usize] = v;
        }
        out
    };
    let k_distance = by_row(&dist.chunks_exact(k).map(|d| d[k - 1]).collect::<Vec<_>>());
    let lrd_listed = par_chunks(n, 4 * k, |range| {
        range
            .map(|p| {
                let reach = sum_in_lanes(k, |j| {
                    dist[p * k + j].max(k_distance[nbr[p * k + j] as usize])
                });
                1.0 / (reach / k as f64 + LRD_GUARD)
            })
            .collect()
    });
    let lrd = by_row(&lrd_listed);
    // LOF = mean(lrd of the neighbours) / lrd: one division per row, not one per neighbour
    // (divisions are slow; scikit-learn divides each neighbour's, a difference in the last bits).
    let lof_listed = par_chunks(n, 4 * k, |range| {
        range
            .map(|p| sum_in_lanes(k, |j| lrd[nbr[p * k + j] as usize]) / k as f64 / lrd_listed[p])
            .collect()
    });
    (k_distance, lrd, by_row(&lof_listed))
}

impl Estimator for LocalOutlierFactor {
    type Model = LofModel;

    fn fit(&self, data: &Matrix) -> Result<LofModel, DetectError> {
        if self.n_neighbors == 0 {
            return Err(DetectError::Parameter {
                name: "n_neighbors",
                reason: "must be at least 1".to_owned(),
            });
        }
        self.contamination
            .validate()
            .map_err(|reason| DetectError::Parameter {
                name: "contamination",
                reason,
            })?;
        check_data(data)?;
        let n = data.n_rows();
        if n < 2 {
            return Err(DetectError::NotEnoughData(format!(
                "local outlier factor needs at least 2 rows, got {n}"
            )));
        }
        let k = self.n_neighbors.min(n - 1);

        // k neighbours of every training row, excluding itself (its duplicates count). The
        // KD-tree, which scores new rows, is built when first needed if brute force finds them.
        let max_abs = max_abs(data.as_slice());
        let brute = max_abs <= SCREEN_MAX_ABS
            && brute_force_pays(n, data.n_cols(), largest_equal_group(data), k);
        let (tree, knn) = if brute {
            (LazyKdTree::later(data), brute_all_knn(data, k))
        } else {
            let tree = KdTree::build(data);
            let found = tree.all_knn(k);
            (LazyKdTree::built(tree), found)
        };

        let (k_distance, lrd, training_lof) = factors(&knn);
        let threshold = self.contamination.threshold(&training_lof, 1.5);
        Ok(LofModel {
            k,
            threshold,
            tree,
            k_distance,
            lrd,
            training_lof,
        })
    }

    fn fit_score(&self, data: &Matrix) -> Result<(LofModel, Vec<f64>), DetectError> {
        let model = self.fit(data)?;
        let scores = model.training_lof.clone();
        Ok((model, scores))
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn cluster_with_outlier(seed: u64) -> Matrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows: Vec<Vec<f64>> = (0..200)
            .map(|_| (0..2).map(|_| rng.random::<f64>()).collect())
            .collect();
        rows.push(vec![6.0, 6.0]);
        Matrix::from_rows(&rows).unwrap()
    }

    /// Straightforward O(n²) LOF from the definition, for cross-checking.
    fn reference_lof(data: &Matrix, k: usize) -> Vec<f64> {
        let n = data.n_rows();
        let d =
            |a: usize, b: usize| super::super::neighbors::sq_dist(data.row(a), data.row(b)).sqrt();
        let nbrs: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                let mut o: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                o.sort_by(|&a, &b| d(i, a).total_cmp(&d(i, b)).then(a.cmp(&b)));
                o.truncate(k);
                o
            })
            .collect();
        let kd: Vec<f64> = (0..n).map(|i| d(i, nbrs[i][k - 1])).collect();
        let lrd: Vec<f64> = (0..n)
            .map(|i| {
                let m = nbrs[i].iter().map(|&o| d(i, o).max(kd[o])).sum::<f64>() / k as f64;
                1.0 / (m + 1e-10)
            })
            .collect();
        (0..n)
            .map(|i| nbrs[i].iter().map(|&o| lrd[o] / lrd[i]).sum::<f64>() / k as f64)
            .collect()
    }

    struct Case {
        name: &'static str,
        rows: Vec<Vec<f64>>,
        n_neighbors: usize,
        expected: Result<usize, &'static str>,
    }

    #[test]
    fn fit_cases() {
        let cases = [
            Case {
                name: "fewer rows than n_neighbors clamps k to n - 1",
                rows: vec![vec![0.0], vec![1.0], vec![3.0], vec![10.0]],
                n_neighbors: 20,
                expected: Ok(3),
            },
            Case {
                name: "two rows",
                rows: vec![vec![0.0, 1.0], vec![1.0, 1.0]],
                n_neighbors: 20,
                expected: Ok(1),
            },
            Case {
                name: "constant columns give factor 1",
                rows: vec![vec![2.0, 2.0]; 30],
                n_neighbors: 5,
                expected: Ok(5),
            },
            Case {
                name: "single row is not enough",
                rows: vec![vec![1.0, 2.0]],
                n_neighbors: 20,
                expected: Err("not enough data: local outlier factor needs at least 2 rows, got 1"),
            },
            Case {
                name: "nan is rejected",
                rows: vec![vec![1.0], vec![f64::NAN], vec![2.0]],
                n_neighbors: 20,
                expected: Err(
                    "invalid parameter data: row 1, column 0 is NaN (only finite values are accepted)",
                ),
            },
            Case {
                name: "zero neighbours is rejected",
                rows: vec![vec![1.0], vec![2.0]],
                n_neighbors: 0,
                expected: Err("invalid parameter n_neighbors: must be at least 1"),
            },
        ];
        for case in cases {
            let data = Matrix::from_rows(&case.rows).unwrap();
            let est = LocalOutlierFactor {
                n_neighbors: case.n_neighbors,
                ..Default::default()
            };
            match (est.fit_score(&data), case.expected) {
                (Ok((model, scores)), Ok(k)) => {
                    assert_eq!(model.n_neighbors(), k, "{}", case.name);
                    assert_eq!(scores.len(), case.rows.len(), "{}", case.name);
                    assert!(
                        scores.iter().all(|s| s.is_finite() && *s > 0.0),
                        "{}",
                        case.name
                    );
                }
                (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{}", case.name),
                (got, want) => panic!("{}: got {:?}, want {want:?}", case.name, got.map(|g| g.1)),
            }
        }
    }

    #[test]
    fn constant_and_duplicate_rows_score_one() {
        let data = Matrix::from_rows(&vec![vec![2.0, 2.0]; 30]).unwrap();
        let (_, scores) = LocalOutlierFactor::default().fit_score(&data).unwrap();
        assert!(scores.iter().all(|s| *s == 1.0), "{scores:?}");
    }

    #[test]
    fn matches_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // Integer grid values: ties and duplicates.
        let rows: Vec<Vec<f64>> = (0..150)
            .map(|_| {
                (0..2)
                    .map(|_| f64::from(rng.random_range(0..6u8)))
                    .collect()
            })
            .chain(std::iter::once(vec![20.0, 20.0]))
            .collect();
        let data = Matrix::from_rows(&rows).unwrap();
        let (_, scores) = LocalOutlierFactor {
            n_neighbors: 7,
            ..Default::default()
        }
        .fit_score(&data)
        .unwrap();
        let want = reference_lof(&data, 7);
        for (i, (a, b)) in scores.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "row {i}: {a} vs {b}"
            );
        }
    }

    /// Both neighbour searches give bit-identical factors on data of fewer than 10 columns
    /// (the tree is not rotated), with duplicates and ties; and brute force is what small data
    /// uses.
    #[test]
    fn brute_force_and_tree_give_identical_factors() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let rows: Vec<Vec<f64>> = (0..700)
            .map(|_| {
                (0..4)
                    .map(|_| f64::from(rng.random_range(0..5u8)) * 0.5)
                    .collect()
            })
            .collect();
        let data = Matrix::from_rows(&rows).unwrap();
        let k = 20;
        let tree = KdTree::build(&data);
        assert!(brute_force_pays(700, 4, largest_equal_group(&data), k));
        let from_tree = tree.all_knn(k);
        let brute = brute_all_knn(&data, k);
        assert_eq!(from_tree.by_row(), brute.by_row());
        let scores = LocalOutlierFactor::default().fit_score(&data).unwrap().1;
        assert_eq!(factors(&from_tree).2, scores);
    }

    #[test]
    fn brute_force_rule() {
        // cardio, pendigits, satellite: brute force; mammography (and its 3 329 equal rows),
        // shuttle: tree.
        assert!(brute_force_pays(1831, 21, 4, 20));
        assert!(brute_force_pays(6870, 16, 1, 20));
        assert!(brute_force_pays(6435, 36, 1, 20));
        assert!(!brute_force_pays(11183, 6, 3329, 20));
        assert!(!brute_force_pays(49097, 9, 1, 20));
        // breastw: a group of 27 > k equal rows, but 27² ≤ 20 · 683: brute force
        assert!(brute_force_pays(683, 9, 27, 20));
        assert!(brute_force_pays(500, 3, 100, 20));
        assert!(!brute_force_pays(500, 3, 101, 20));
    }

    #[test]
    fn known_small_case() {
        // LocalOutlierFactor(n_neighbors=2) on [[0], [1], [2], [10]], by hand (row 1 has two
        // neighbours at distance 1; either choice gives the same k-distance).
        // k-dist: 0→2 (nbrs 1,2), 1→1 (nbrs 0,2), 2→2 (nbrs 1,0), 10→9 (nbrs 2,1).
        // lrd: 0: mean(max(1,1), max(2,2)) = 1.5 → 2/3; 1: mean(max(1,2), max(1,2)) = 2 → 1/2;
        //      2: mean(max(1,1), max(2,2)) = 1.5 → 2/3; 10: mean(max(8,2), max(9,1)) = 8.5 → 2/17.
        // LOF: 0: (1/2 + 2/3)/2 / (2/3) = 0.875; 1: (2/3 + 2/3)/2 / (1/2) = 4/3;
        //      2: (1/2 + 2/3)/2 / (2/3) = 0.875; 10: (2/3 + 1/2)/2 / (2/17) = 119/24.
        let data = Matrix::from_rows(&[vec![0.0], vec![1.0], vec![2.0], vec![10.0]]).unwrap();
        let (_, scores) = LocalOutlierFactor {
            n_neighbors: 2,
            ..Default::default()
        }
        .fit_score(&data)
        .unwrap();
        let want = [0.875, 4.0 / 3.0, 0.875, 119.0 / 24.0];
        for (a, b) in scores.iter().zip(want) {
            assert!((a - b).abs() < 1e-8, "{scores:?}");
        }
    }

    #[test]
    fn obvious_outlier_scores_highest() {
        let data = cluster_with_outlier(1);
        let (model, scores) = LocalOutlierFactor::default().fit_score(&data).unwrap();
        let argmax = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(argmax, 200);
        assert!(model.is_outlier(scores[200]));
        // As a new point, the far one is an outlier and a central one is not.
        assert!(model.score(&[7.0, 7.0]) > 1.5);
        assert!(model.score(&[0.5, 0.5]) < 1.5);
    }

    #[test]
    fn deterministic_and_serde_round_trip() {
        let data = cluster_with_outlier(2);
        let (m1, s1) = LocalOutlierFactor::default().fit_score(&data).unwrap();
        let (m2, s2) = LocalOutlierFactor::default().fit_score(&data).unwrap();
        assert_eq!((&m1, &s1), (&m2, &s2));
        let json = serde_json::to_string(&m1).unwrap();
        let back: LofModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back.score_batch(&data), m1.score_batch(&data));
        assert_eq!(back.training_scores(), s1.as_slice());
        // A fresh model builds its tree when it first scores new rows: the same scores.
        let (fresh, _) = LocalOutlierFactor::default().fit_score(&data).unwrap();
        assert_eq!(fresh.score_batch(&data), back.score_batch(&data));
    }

    #[test]
    fn contamination_sets_threshold() {
        let data = cluster_with_outlier(3);
        let est = LocalOutlierFactor {
            contamination: Contamination::Fraction(0.05),
            ..Default::default()
        };
        let (model, scores) = est.fit_score(&data).unwrap();
        let flagged = scores.iter().filter(|s| model.is_outlier(**s)).count();
        assert!((9..=11).contains(&flagged), "{flagged}");
        assert_eq!(
            LocalOutlierFactor::default()
                .fit(&data)
                .unwrap()
                .threshold(),
            1.5
        );
    }
}
