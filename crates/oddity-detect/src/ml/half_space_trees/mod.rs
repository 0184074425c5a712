//! Half-Space Trees (Tan, Ting & Liu 2011): a streaming forest that learns online in constant
//! memory and constant time per point.
//!
//! # Algorithm
//! Features are rescaled to 0..1 by ranges known in advance (configured bounds, the warm-up
//! points, or for a batch fit the training rows). Each tree gets a random *workspace*: for every
//! dimension `q`, `s ~ U(0, 1)` and the range `[s − 2·max(s, 1 − s), s + 2·max(s, 1 − s)]`, which
//! always covers 0..1 with room to spare. A node halves its workspace at the midpoint of one
//! randomly chosen dimension; trees are full binary trees of depth `height`. The trees never
//! change: only *masses* are learnt, the number of points of a window falling in each node.
//! Two profiles alternate: the *reference* (masses of the last complete window), used to score,
//! and the *latest* (the window being filled); every `window` points the latest becomes the
//! reference. A point's score in a tree is `r · 2^k`, `r` the reference mass of the deepest node
//! on its path such that the node is a leaf or `r ≤ size_limit` (`0.1 · window`), `k` that
//! node's depth: mass scaled up by how much the space was halved, i.e. a density. The forest's
//! score is the sum over trees; high means normal.
//!
//! # Implementation choices
//! - Trees are implicit: a node's split dimension is a hash of (seed, tree, node id) and its
//!   split value the midpoint of the workspace narrowed along the path, so nothing but masses is
//!   stored, and only for nodes a score can reach (the root and the children of nodes heavier
//!   than `size_limit`). A full tree of height 15 would be 65,535 nodes per tree; the profile of a
//!   window of 250 is a few hundred. The latest window is kept as its points (at most
//!   `window × d` numbers) and turned into a profile by partitioning them when the window closes:
//!   the same masses as incrementing counters on every path, in bounded memory.
//! - A batch fit ([`Estimator::fit`]) is one window holding every training row, so the whole
//!   training set is the reference (a window of 250 over a sorted file would otherwise describe
//!   only its last rows). [`HalfSpaceTreesModel::learn`] then continues online with the
//!   configured window.
//! - The score is normalised to 0..1, higher = more anomalous, per tree then averaged:
//!   `mean over trees of 1 / (1 + r·2^k / ψ)`, `ψ` the reference mass. `r·2^k / ψ` is the
//!   point's density in that tree relative to a uniform spread over the workspace, so a tree
//!   whose path ends in an empty node votes 1, one at uniform density ½, one in a region 2ᵐ
//!   times denser about 2⁻ᵐ; the score is close to the share of trees that isolate the point.
//!   The paper sums `r·2^k` over trees instead ([`HalfSpaceTreesModel::mass_score`] gives that
//!   sum); a sum is dominated by the few trees that did not separate a point, which leaves no
//!   absolute scale for a threshold (a point isolated by 20 trees of 25 still has a sum of
//!   several times `T·ψ`). It also ranks better: ROC-AUC on 6 of the 8 ODDS sets (batch fit,
//!   seed 42), e.g. thyroid 0.907 vs 0.847, vowels 0.758 vs 0.692.
//! - Deterministic given the seed: workspaces come from a `ChaCha8Rng`, split dimensions from a
//!   hash.
//!
//! # Files
//! This file holds the configuration, the batch estimator and the model; `detector.rs` the
//! streaming [`HalfSpaceTreesDetector`].

use serde::{Deserialize, Serialize};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::kernel::check_finite;
use super::{Estimator, Matrix, OutlierModel};
use crate::DetectError;

mod detector;

pub use detector::HalfSpaceTreesDetector;

/// The known range of one feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureBounds {
    /// Lowest expected value.
    pub min: f64,
    /// Highest expected value (above `min`).
    pub max: f64,
}

/// Half-Space Trees parameters (defaults: 25 trees of height 15, window 250, as the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HalfSpaceTreesConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Depth of every tree (1..=32).
    pub height: u32,
    /// Points per window: the reference profile is replaced every `window` points.
    pub window: usize,
    /// A node whose reference mass is at most `size_limit · window` ends a scoring path, in
    /// 0..1 (the paper's 0.1).
    pub size_limit: f64,
    /// Streaming only: points buffered to learn the feature ranges when `bounds` is empty; they
    /// also start the first window. Nothing is scored before the first window is complete.
    pub warm_up: usize,
    /// Known ranges of the features, one per feature in order; empty to learn them (warm-up, or
    /// the training rows of a batch fit).
    pub bounds: Vec<FeatureBounds>,
    /// Streaming only: the event `fields` forming the feature vector, in this order; empty to use
    /// the event's single resolved `value`.
    pub features: Vec<String>,
    /// Streaming only: a point is anomalous when its score is above this, in (0, 1].
    pub threshold: f64,
    /// Seed of the random workspaces and split dimensions.
    pub seed: u64,
}

impl Default for HalfSpaceTreesConfig {
    fn default() -> Self {
        HalfSpaceTreesConfig {
            n_trees: 25,
            height: 15,
            window: 250,
            size_limit: 0.1,
            warm_up: 250,
            bounds: Vec::new(),
            features: Vec::new(),
            threshold: 0.8,
            seed: 42,
        }
    }
}

impl HalfSpaceTreesConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.n_trees == 0 {
            errors.push("n_trees (0) must be at least 1".to_string());
        }
        if !(1..=32).contains(&self.height) {
            errors.push(format!("height ({}) must be in 1..=32", self.height));
        }
        if self.window == 0 || self.window > u32::MAX as usize {
            errors.push(format!(
                "window ({}) must be in 1..=4294967295",
                self.window
            ));
        }
        if !(0.0..1.0).contains(&self.size_limit) {
            errors.push(format!(
                "size_limit ({}) must be in [0, 1)",
                self.size_limit
            ));
        }
        if self.bounds.is_empty() && self.warm_up == 0 {
            errors.push("warm_up (0) must be at least 1 when no bounds are configured".to_string());
        }
        for (i, b) in self.bounds.iter().enumerate() {
            if !(b.min.is_finite() && b.max.is_finite() && b.min < b.max) {
                errors.push(format!(
                    "bounds[{i}] (min {}, max {}) must be finite with min < max",
                    b.min, b.max
                ));
            }
        }
        let dims = self.features.len().max(1);
        if !self.bounds.is_empty() && self.bounds.len() != dims {
            errors.push(format!(
                "bounds has {} entries but there are {dims} features",
                self.bounds.len()
            ));
        }
        for (i, f) in self.features.iter().enumerate() {
            if self.features[..i].contains(f) {
                errors.push(format!("features lists {f} twice"));
            }
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            errors.push(format!("threshold ({}) must be in (0, 1]", self.threshold));
        }
        errors
    }

    fn check(&self) -> Result<(), DetectError> {
        let errors = self.validate();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DetectError::Parameter {
                name: "half_space_trees",
                reason: errors.join("; "),
            })
        }
    }

    /// The batch estimator, once the parameters are valid.
    pub fn build(&self) -> Result<HalfSpaceTrees, DetectError> {
        self.check()?;
        Ok(HalfSpaceTrees {
            config: self.clone(),
        })
    }

    /// The streaming detector for one series, once the parameters are valid.
    pub fn build_detector(&self) -> Result<HalfSpaceTreesDetector, DetectError> {
        self.check()?;
        Ok(HalfSpaceTreesDetector::new(self.clone()))
    }
}

/// The batch estimator: [`Estimator::fit`] learns one window of all training rows.
#[derive(Debug, Clone)]
pub struct HalfSpaceTrees {
    config: HalfSpaceTreesConfig,
}

impl Estimator for HalfSpaceTrees {
    type Model = HalfSpaceTreesModel;

    fn fit(&self, data: &Matrix) -> Result<HalfSpaceTreesModel, DetectError> {
        check_finite(data)?;
        let d = data.n_cols();
        let (lo, hi) = if self.config.bounds.is_empty() {
            ranges(data.rows(), d)
        } else if self.config.bounds.len() == d {
            self.config.bounds.iter().map(|b| (b.min, b.max)).unzip()
        } else {
            return Err(DetectError::Parameter {
                name: "bounds",
                reason: format!("{} bounds for {d} columns", self.config.bounds.len()),
            });
        };
        let mut model = HalfSpaceTreesModel::new(&self.config, &lo, &hi);
        for row in data.rows() {
            model.push_latest(row);
        }
        model.close_window();
        Ok(model)
    }
}

/// One tree's profile: masses of the reachable nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    /// `(mass, first child)`; the root is 0, a node's children are `first child` and the next
    /// one; 0 marks a node that ends every path through it.
    nodes: Vec<(u32, u32)>,
}

/// A half-space forest: fixed implicit trees, a reference profile and the latest window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HalfSpaceTreesModel {
    height: u32,
    window: usize,
    size_limit: f64,
    seed: u64,
    /// Per feature: the value mapped to 0 and the width mapped to 1 (a width can overflow to
    /// +∞ on values near ±f64::MAX, which a plain JSON number cannot hold).
    #[serde(with = "crate::compact::f64_exact_vec")]
    offset: Vec<f64>,
    #[serde(with = "crate::compact::f64_exact_vec")]
    width: Vec<f64>,
    /// Per tree, per feature: the workspace `[lo, hi]`, flattened as `lo₀, hi₀, lo₁, …`.
    #[serde(with = "crate::compact::f64_rows")]
    workspaces: Vec<Vec<f64>>,
    /// Reference profile per tree (empty before the first window closes).
    reference: Vec<Profile>,
    /// Mass of the reference window.
    reference_mass: u32,
    /// Points of the window being filled, rescaled, row-major.
    #[serde(with = "crate::compact::f64s")]
    latest: Vec<f64>,
}

impl HalfSpaceTreesModel {
    fn new(config: &HalfSpaceTreesConfig, lo: &[f64], hi: &[f64]) -> Self {
        let d = lo.len();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let workspaces = (0..config.n_trees)
            .map(|_| {
                (0..d)
                    .flat_map(|_| {
                        let s: f64 = rng.random();
                        let m = 2.0 * s.max(1.0 - s);
                        [s - m, s + m]
                    })
                    .collect()
            })
            .collect();
        HalfSpaceTreesModel {
            height: config.height,
            window: config.window,
            size_limit: config.size_limit,
            seed: config.seed,
            offset: lo.to_vec(),
            width: lo
                .iter()
                .zip(hi)
                .map(|(l, h)| if h > l { h - l } else { 1.0 })
                .collect(),
            workspaces,
            reference: Vec::new(),
            reference_mass: 0,
            latest: Vec::new(),
        }
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.offset.len()
    }

    /// Whether a reference profile exists (a window has closed), i.e. whether scores mean
    /// anything.
    pub fn is_ready(&self) -> bool {
        !self.reference.is_empty()
    }

    /// Points in the reference window.
    pub fn reference_mass(&self) -> u32 {
        self.reference_mass
    }

    /// Learns one row: it joins the latest window, and the reference is replaced when the
    /// window is full. A row of the wrong width or with a non-finite value is not learnt
    /// (returns false).
    pub fn learn(&mut self, row: &[f64]) -> bool {
        if row.len() != self.n_features() || row.iter().any(|v| !v.is_finite()) {
            return false;
        }
        self.push_latest(row);
        if self.latest.len() >= self.window * self.n_features() {
            self.close_window();
        }
        true
    }

    /// The paper's forest score `S`, the sum over trees of `r · 2^k`: high means normal. 0
    /// before the first window closes.
    pub fn mass_score(&self, row: &[f64]) -> f64 {
        self.scores(row).0
    }

    /// `(S, normalised score)` in one pass over the trees (see the module docs).
    fn scores(&self, row: &[f64]) -> (f64, f64) {
        let x: Vec<f64> = self.rescale(row).collect();
        let psi = f64::from(self.reference_mass.max(1));
        let mut lohi = Vec::with_capacity(2 * x.len());
        let (mut total, mut votes) = (0.0, 0.0);
        for (t, profile) in self.reference.iter().enumerate() {
            lohi.clear();
            lohi.extend_from_slice(&self.workspaces[t]);
            let (mut node, mut heap, mut depth) = (0usize, 1u64, 0i32);
            loop {
                let (mass, child) = profile.nodes[node];
                if child == 0 {
                    let s = f64::from(mass) * 2f64.powi(depth);
                    total += s;
                    votes += 1.0 / (1.0 + s / psi);
                    break;
                }
                let q = self.split_dim(t, heap);
                let mid = 0.5 * (lohi[2 * q] + lohi[2 * q + 1]);
                if x[q] < mid {
                    lohi[2 * q + 1] = mid;
                    node = child as usize;
                    heap *= 2;
                } else {
                    lohi[2 * q] = mid;
                    node = child as usize + 1;
                    heap = 2 * heap + 1;
                }
                depth += 1;
            }
        }
        (total, votes / self.reference.len().max(1) as f64)
    }

    fn rescale<'r>(&'r self, row: &'r [f64]) -> impl Iterator<Item = f64> + 'r {
        row.iter()
            .zip(self.offset.iter().zip(&self.width))
            .map(|(v, (o, w))| (v - o) / w)
    }

    fn split_dim(&self, tree: usize, heap: u64) -> usize {
        let h = splitmix64(
            self.seed
                ^ splitmix64(tree as u64 ^ 0xA076_1D64_78BD_642F)
                ^ heap.wrapping_mul(0xE703_7ED1_A0B4_28DB),
        );
        (h % self.n_features() as u64) as usize
    }

    fn push_latest(&mut self, row: &[f64]) {
        let x: Vec<f64> = self.rescale(row).collect();
        self.latest.extend(x);
    }

    /// Turns the latest window into the reference profile.
    fn close_window(&mut self) {
        let d = self.n_features();
        let n = self.latest.len() / d;
        let limit = self.size_limit * n as f64;
        let latest = std::mem::take(&mut self.latest);
        let mut reference = Vec::with_capacity(self.workspaces.len());
        for t in 0..self.workspaces.len() {
            let mut nodes = vec![(0u32, 0u32)];
            let mut idx: Vec<u32> = (0..n as u32).collect();
            let mut lohi = self.workspaces[t].clone();
            let mut grow = Grow {
                model: self,
                tree: t,
                data: &latest,
                limit,
                nodes: &mut nodes,
            };
            grow.node(0, 1, 0, &mut idx, &mut lohi);
            reference.push(Profile { nodes });
        }
        self.reference = reference;
        self.reference_mass = n as u32;
    }
}

/// Builds one tree's profile by partitioning a window's points along the implicit splits.
struct Grow<'a> {
    model: &'a HalfSpaceTreesModel,
    tree: usize,
    data: &'a [f64],
    limit: f64,
    nodes: &'a mut Vec<(u32, u32)>,
}

impl Grow<'_> {
    fn node(&mut self, node: usize, heap: u64, depth: u32, idx: &mut [u32], lohi: &mut [f64]) {
        self.nodes[node].0 = idx.len() as u32;
        if depth == self.model.height || idx.len() as f64 <= self.limit {
            return;
        }
        let d = self.model.n_features();
        let q = self.model.split_dim(self.tree, heap);
        let mid = 0.5 * (lohi[2 * q] + lohi[2 * q + 1]);
        // partition: rows left of the split first
        let mut k = 0;
        for i in 0..idx.len() {
            if self.data[idx[i] as usize * d + q] < mid {
                idx.swap(i, k);
                k += 1;
            }
        }
        let child = self.nodes.len();
        self.nodes.push((0, 0));
        self.nodes.push((0, 0));
        self.nodes[node].1 = child as u32;
        let (left, right) = idx.split_at_mut(k);
        let hi = lohi[2 * q + 1];
        lohi[2 * q + 1] = mid;
        self.node(child, 2 * heap, depth + 1, left, lohi);
        lohi[2 * q + 1] = hi;
        let lo = lohi[2 * q];
        lohi[2 * q] = mid;
        self.node(child + 1, 2 * heap + 1, depth + 1, right, lohi);
        lohi[2 * q] = lo;
    }
}

/// Per-column minimum and maximum of `rows`.
fn ranges<'r>(rows: impl Iterator<Item = &'r [f64]>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    for row in rows {
        for q in 0..d {
            lo[q] = lo[q].min(row[q]);
            hi[q] = hi[q].max(row[q]);
        }
    }
    (lo, hi)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl OutlierModel for HalfSpaceTreesModel {
    /// In 0..1 (see the module docs); 0 before a window closes; NaN for a row with a
    /// non-finite value or of the wrong width.
    fn score(&self, row: &[f64]) -> f64 {
        if row.len() != self.n_features() || row.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        if !self.is_ready() {
            return 0.0;
        }
        self.scores(row).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: &[Vec<f64>]) -> Matrix {
        Matrix::from_rows(rows).unwrap()
    }

    /// A deterministic 2-D blob in 0..1 with some structure.
    fn blob(n: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|i| {
                let a = ((i * 7919) % 1000) as f64 / 1000.0;
                let b = ((i * 104_729) % 997) as f64 / 997.0;
                vec![0.4 + 0.2 * a, 0.3 + 0.1 * (a + b)]
            })
            .collect()
    }

    pub(super) fn small() -> HalfSpaceTreesConfig {
        HalfSpaceTreesConfig {
            n_trees: 10,
            height: 8,
            window: 50,
            warm_up: 50,
            ..Default::default()
        }
    }

    fn top(scores: &[f64]) -> usize {
        (0..scores.len())
            .max_by(|a, b| scores[*a].total_cmp(&scores[*b]))
            .unwrap()
    }

    #[test]
    fn batch_cases() {
        struct Case {
            name: &'static str,
            rows: Vec<Vec<f64>>,
            error: Option<&'static str>,
        }
        let cases = vec![
            Case {
                name: "constant data",
                rows: vec![vec![3.0, 3.0]; 30],
                error: None,
            },
            Case {
                name: "duplicate rows",
                rows: [vec![vec![0.0, 1.0]; 15], vec![vec![1.0, 0.0]; 15]].concat(),
                error: None,
            },
            Case {
                name: "a single row",
                rows: vec![vec![1.0, 2.0]],
                error: None,
            },
            Case {
                name: "two rows",
                rows: vec![vec![0.0], vec![1.0]],
                error: None,
            },
            Case {
                name: "nan is rejected",
                rows: vec![vec![0.0, 1.0], vec![2.0, f64::NAN]],
                error: Some("row 1 column 1 is NaN"),
            },
        ];
        for case in cases {
            let result = HalfSpaceTreesConfig::default()
                .build()
                .unwrap()
                .fit(&m(&case.rows));
            match (result, case.error) {
                (Ok(model), None) => {
                    assert!(model.is_ready(), "{}", case.name);
                    assert_eq!(model.reference_mass() as usize, case.rows.len());
                    for row in &case.rows {
                        let s = model.score(row);
                        assert!((0.0..=1.0).contains(&s), "{}: {s}", case.name);
                        // a training row is never in an empty region
                        assert!(s < 0.5, "{}: training row scores {s}", case.name);
                    }
                }
                (Err(e), Some(msg)) => assert!(e.to_string().contains(msg), "{}: {e}", case.name),
                (Ok(_), Some(msg)) => panic!("{}: fitted, expected {msg}", case.name),
                (Err(e), None) => panic!("{}: {e}", case.name),
            }
        }
        let empty = Matrix::new(2, vec![]).unwrap();
        assert!(
            HalfSpaceTreesConfig::default()
                .build()
                .unwrap()
                .fit(&empty)
                .is_err()
        );
    }

    #[test]
    fn profile_masses_equal_counters_on_every_path() {
        // The paper increments a counter on every node of every point's path; the profile must
        // hold the same masses for every node it keeps, and keep every node a score can reach.
        let rows = blob(200);
        let model = small().build().unwrap().fit(&m(&rows)).unwrap();
        let limit = model.size_limit * rows.len() as f64;
        for (t, profile) in model.reference.iter().enumerate() {
            let mut counts = std::collections::HashMap::<u64, u32>::new();
            for row in &rows {
                let x: Vec<f64> = model.rescale(row).collect();
                let mut lohi = model.workspaces[t].clone();
                let mut heap = 1u64;
                for _ in 0..=model.height {
                    *counts.entry(heap).or_default() += 1;
                    let q = model.split_dim(t, heap);
                    let mid = 0.5 * (lohi[2 * q] + lohi[2 * q + 1]);
                    if x[q] < mid {
                        lohi[2 * q + 1] = mid;
                        heap *= 2;
                    } else {
                        lohi[2 * q] = mid;
                        heap = 2 * heap + 1;
                    }
                }
            }
            // walk the profile with heap ids
            let mut stack = vec![(0usize, 1u64, 0u32)];
            while let Some((node, heap, depth)) = stack.pop() {
                let (mass, child) = profile.nodes[node];
                assert_eq!(
                    mass,
                    counts.get(&heap).copied().unwrap_or(0),
                    "tree {t} node {heap}"
                );
                let terminal = depth == model.height || f64::from(mass) <= limit;
                assert_eq!(child == 0, terminal, "tree {t} node {heap}");
                if child != 0 {
                    stack.push((child as usize, 2 * heap, depth + 1));
                    stack.push((child as usize + 1, 2 * heap + 1, depth + 1));
                }
            }
        }
    }

    #[test]
    fn obvious_outlier_scores_highest_and_is_deterministic() {
        let mut rows = blob(300);
        rows.push(vec![0.95, 0.05]);
        let x = m(&rows);
        let est = small().build().unwrap();
        let model = est.fit(&x).unwrap();
        let scores = model.score_batch(&x);
        assert_eq!(top(&scores), 300);
        assert!(scores[300] > 0.8, "{}", scores[300]);
        let again = est.fit(&x).unwrap();
        assert_eq!(model, again);
        let other = HalfSpaceTreesConfig { seed: 7, ..small() }
            .build()
            .unwrap()
            .fit(&x)
            .unwrap();
        assert_ne!(model.score_batch(&x), other.score_batch(&x));
    }

    #[test]
    fn serde_round_trip_gives_identical_scores() {
        let rows = blob(100);
        let mut model = small().build().unwrap().fit(&m(&rows)).unwrap();
        for r in rows.iter().take(20) {
            model.learn(r); // a half-filled latest window must survive too
        }
        let json = serde_json::to_string(&model).unwrap();
        let mut back: HalfSpaceTreesModel = serde_json::from_str(&json).unwrap();
        assert_eq!(model.score_batch(&m(&rows)), back.score_batch(&m(&rows)));
        for r in rows.iter().skip(20).take(40) {
            model.learn(r);
            back.learn(r);
        }
        assert_eq!(model, back);
    }

    #[test]
    fn learning_online_swaps_the_reference_every_window() {
        let rows = blob(120);
        let mut model = small().build().unwrap().fit(&m(&rows[..10])).unwrap();
        assert_eq!(model.reference_mass(), 10);
        assert!(
            !model.learn(&[0.5]) && !model.learn(&[0.5, f64::NAN]),
            "bad rows are refused"
        );
        // the regime moves: after one window of new points, the old region is empty
        let shifted: Vec<Vec<f64>> = rows.iter().map(|r| vec![r[0] + 0.5, r[1]]).collect();
        let old = rows[0].clone();
        let before = model.score(&old);
        for r in shifted.iter().take(49) {
            model.learn(r);
        }
        assert_eq!(model.reference_mass(), 10, "window not full yet");
        model.learn(&shifted[49]);
        assert_eq!(model.reference_mass(), 50);
        assert!(
            model.score(&old) > before,
            "{} vs {before}",
            model.score(&old)
        );
    }

    #[test]
    fn config_validation_lists_every_problem() {
        let bad = HalfSpaceTreesConfig {
            n_trees: 0,
            height: 40,
            window: 0,
            size_limit: 1.5,
            warm_up: 0,
            bounds: vec![FeatureBounds { min: 2.0, max: 1.0 }; 2],
            features: vec!["a".into(), "a".into(), "b".into()],
            threshold: 0.0,
            seed: 1,
        };
        let errors = bad.validate();
        assert_eq!(errors.len(), 9, "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("height (40)")));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("bounds[1] (min 2, max 1)"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("bounds has 2 entries but there are 3 features"))
        );
        assert!(errors.iter().any(|e| e.contains("features lists a twice")));
        assert!(bad.build().is_err() && bad.build_detector().is_err());
        assert!(HalfSpaceTreesConfig::default().validate().is_empty());
        let parsed: HalfSpaceTreesConfig =
            serde_json::from_str(r#"{"n_trees":25,"height":15,"window":250}"#).unwrap();
        assert_eq!(parsed, HalfSpaceTreesConfig::default());
        assert!(serde_json::from_str::<HalfSpaceTreesConfig>(r#"{"trees":25}"#).is_err());
    }
}
