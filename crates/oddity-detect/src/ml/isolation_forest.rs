//! Isolation Forest (Liu, Ting and Zhou, 2008), equivalent to scikit-learn's `IsolationForest`.
//!
//! **Idea.** Outliers are few and different, so random axis-parallel cuts isolate them in fewer
//! steps than inliers. Each tree is grown on a random subsample of ψ rows (drawn without
//! replacement): at every node a feature is picked uniformly among those not constant in the node
//! and a threshold uniformly between its minimum and maximum there; rows `<= threshold` go left.
//! Growth stops at one row or at depth `ceil(log2 ψ)`. The path length of a row in a tree is the
//! depth of the leaf it lands in plus `c(n_leaf)`, the average depth an unbuilt subtree of the
//! leaf's `n_leaf` training rows would have added (scikit-learn's `_average_path_length`). The
//! score is `2^(−E[h(x)] / c(ψ))`: in 0..1, about 0.5 for ordinary rows and close to 1 for
//! outliers. It is exactly `−score_samples` of scikit-learn.
//!
//! **Parameters** follow scikit-learn's defaults: 100 trees, `max_samples = "auto"`
//! (min(256, n)), `max_features = 1.0`, no bootstrap, `contamination = "auto"` (threshold 0.5)
//! or a share, which sets the threshold at the training scores' `1 − share` percentile.
//!
//! **Determinism.** A master `ChaCha8Rng` seeded with `seed` draws one seed per tree, so the
//! forest depends only on `seed`, never on the number of threads that grow it.
//!
//! **Speed.** Each tree is grown as a flat `Vec` of 16-byte nodes (children stored as a pair,
//! leaves carry their precomputed path length) on a column-major copy of its subsample. Trees of
//! depth ≤ 8 (every tree with the default ψ ≤ 256) are also stored as complete binary trees of
//! depth 8 (`CompleteTree`), which scoring walks: node `i`'s children are `2i` and `2i + 1`, so
//! a step needs no leaf test, no child index and no bounds check on the node (the index is
//! masked), and every walk is the same 8 steps. A complete tree compares in `f32`, as
//! scikit-learn does (it fits and scores on a `float32` copy of X): its splits are 8 bytes (the
//! linked threshold rounded to nearest, and the feature), and blocks of 32 rows are rounded to
//! `f32` and copied into arrays of 8, 16, 32 or 64 values (so the row read needs no bounds check
//! either), then walk four trees at a time in lockstep, so their loads overlap. With two trees
//! a step is 12 instructions in the compiled loop (13 with 16-byte `f64` splits, 17 walking one
//! tree on the unpadded rows, 23 for the linked walk); four share the loop overhead further.
//!
//! **Exactness.** The linked tree (the serialised form) keeps `f64` thresholds and the `f64`
//! walk; forests with a tree deeper than 8 score every tree that way. For the `f32` walk, the
//! grower moves a threshold `t` that rounds onto the `f32` value of the nearest training value
//! above it (`t` within half an `f32` step of it) down to the nearest value below it
//! (`f32_safe_threshold`), which splits the node's training values the same way in `f64`.
//! Since rounding is monotonic, every row a tree was grown on then takes the same path in `f32`
//! as in `f64`, unless two of its values are equal in `f32` (no `f32` threshold can separate
//! them; scikit-learn never sees them as different). Other rows (including training rows outside
//! a tree's subsample) take the path of the linked walk comparing `x as f32 > t as f32`; they
//! differ from the `f64` walk only for a value within half an `f32` step of a threshold. The
//! tests check both, and that scores are deterministic and equal row by row and in batches.
//! A threshold is moved only with probability about (`f32` step / gap between the values), so
//! forests are practically as before (seed-0 ROC-AUC on `shuttle` and `mammography` unchanged).
//! Measured with `tabular` on a 2 vCPU EPYC (seed 0, 12 interleaved runs, median fit + score):
//! `shuttle` (49 097 × 9) 24.2 ms (`f64`, two trees) → 22.1 (`f32`, two trees) → 20.7 (`f32`,
//! four trees), `mammography` 6.7 → 6.2 → 5.5 ms; eight trees at a time (25.7 ms) and keeping
//! the positions of two rows in registers instead of memory (29 ms, latency-bound) were slower.
//! Earlier: scoring `shuttle` went from 54–73 ms (linked walk) to 37 ms (complete trees),
//! `mammography` from 11–13 to 8–9 ms; padded rows with two trees at a time then took 10–15 %
//! less CPU time on `shuttle`.
//! Blocks of 128 or 256 rows made no measurable difference. Trees are grown, and large batches
//! scored, on scoped std threads.

use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::common::{Contamination, average_path_length, check_data, par_chunks};
use super::{Estimator, Matrix, OutlierModel};
use crate::DetectError;

/// Features whose range in a node is at most this are treated as constant (scikit-learn's
/// `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// Flags a leaf in [`Node::feature`] (the other bits are a valid feature index, 0).
const LEAF: u32 = 1 << 31;

/// Rows walked through a tree together in [`IsolationForestModel::score_batch`].
const BLOCK: usize = 32;

/// Complete trees walked in lockstep on padded rows.
const LOCKSTEP: usize = 4;

/// How many rows each tree is grown on.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxSamples {
    /// min(256, number of rows), as scikit-learn's `"auto"`.
    #[default]
    Auto,
    /// A fixed count (capped at the number of rows, as scikit-learn does with a warning).
    Count(usize),
    /// A share of the rows, in (0, 1].
    Fraction(f64),
}

/// Isolation Forest parameters (the estimator); [`Estimator::fit`] gives an
/// [`IsolationForestModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IsolationForest {
    /// Number of trees (scikit-learn's `n_estimators`).
    pub n_estimators: usize,
    /// Rows per tree.
    pub max_samples: MaxSamples,
    /// Share of the features each tree sees, in (0, 1] (at least one feature).
    pub max_features: f64,
    /// Sets the decision threshold.
    pub contamination: Contamination,
    /// Seed of the random generator (scikit-learn's `random_state`).
    pub seed: u64,
}

impl Default for IsolationForest {
    fn default() -> Self {
        IsolationForest {
            n_estimators: 100,
            max_samples: MaxSamples::Auto,
            max_features: 1.0,
            contamination: Contamination::Auto,
            seed: 42,
        }
    }
}

/// A row the tree walks read by feature index.
trait Row {
    fn at(&self, feature: u32) -> f64;
}

impl Row for [f64] {
    #[inline(always)]
    fn at(&self, feature: u32) -> f64 {
        self[feature as usize]
    }
}

/// A row the complete-tree walks read by feature index, rounded to `f32`.
trait Row32 {
    fn at32(&self, feature: u32) -> f32;
}

impl Row32 for [f64] {
    #[inline(always)]
    fn at32(&self, feature: u32) -> f32 {
        self[feature as usize] as f32
    }
}

/// A row rounded to `f32` and copied into a power-of-two array at least as wide as the data:
/// `feature % W` is the feature itself, and the compiler drops the bounds check.
impl<const W: usize> Row32 for [f32; W] {
    #[inline(always)]
    fn at32(&self, feature: u32) -> f32 {
        self[feature as usize % W]
    }
}

/// One node of a flat tree. An internal node sends rows with `x[feature] <= value` to
/// `left` and the others to `left + 1`. A leaf has the [`LEAF`] bit set in `feature`, `left`
/// pointing to itself, and in `value` the path length of the rows that reach it
/// (depth + `c(n_leaf)`): a walk that reaches a leaf stays there, so walks run a fixed number of
/// branch-free steps (the tree's depth) and several rows can be walked in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    value: f64,
    feature: u32,
    left: u32,
}

impl Node {
    /// The next node for `row` (the node itself for a leaf).
    #[inline(always)]
    fn step<R: Row + ?Sized>(self, row: &R) -> u32 {
        let right = (row.at(self.feature & !LEAF) > self.value) & (self.feature & LEAF == 0);
        self.left + u32::from(right)
    }

    #[cfg(test)]
    fn is_leaf(self) -> bool {
        self.feature & LEAF != 0
    }
}

/// One isolation tree: `nodes[0]` is the root; `depth` is its deepest leaf's depth. This linked
/// form is what is serialised. Trees no deeper than [`COMPLETE_DEPTH`] (all of them with the
/// default ψ ≤ 256) are also laid out complete, which is what scoring walks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "LinkedTree", into = "LinkedTree")]
struct Tree {
    linked: LinkedTree,
    complete: Option<CompleteTree>,
}

/// The linked form of a tree (see [`Node`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LinkedTree {
    nodes: Vec<Node>,
    depth: u32,
}

impl From<LinkedTree> for Tree {
    fn from(linked: LinkedTree) -> Self {
        let complete = CompleteTree::new(&linked);
        Tree { linked, complete }
    }
}

impl From<Tree> for LinkedTree {
    fn from(tree: Tree) -> Self {
        tree.linked
    }
}

/// Deepest tree stored complete: 2^8 − 1 internal nodes and 2^8 leaves, 6 KiB.
const COMPLETE_DEPTH: u32 = 8;
/// Capacity of the complete arrays (a power of two, so `% COMPLETE_SLOTS` is a mask that lets
/// the compiler drop bounds checks).
const COMPLETE_SLOTS: usize = 1 << COMPLETE_DEPTH;

/// An internal node of a [`CompleteTree`]: rows with `x[feature] as f32 > threshold` go right.
/// `threshold` is the linked node's `f64` threshold rounded to nearest.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split {
    threshold: f32,
    feature: u32,
}

/// A tree of depth ≤ [`COMPLETE_DEPTH`] as a complete binary tree of exactly that depth:
/// internal nodes are numbered breadth-first from 1 (the root), node `i` has children `2i` and
/// `2i + 1`, and position `p` after [`COMPLETE_DEPTH`] steps is leaf `p − 2^8`. A leaf of the
/// linked tree above that depth becomes a chain of splits with threshold `+∞` (every row goes
/// left; a NaN goes left too, as in the linked walk) ending at a leaf that holds its path
/// length. Every walk is then the same 8 steps of two loads, a compare and `2i + c`: no leaf
/// flag, no child index, no bounds check on the node, and trees can be walked side by side.
/// Slot 0 of `splits` is unused.
#[derive(Debug, Clone, PartialEq)]
struct CompleteTree {
    splits: Box<[Split; COMPLETE_SLOTS]>,
    /// Path length (depth + `c(n_leaf)`) of each bottom position.
    leaves: Box<[f64; COMPLETE_SLOTS]>,
}

impl CompleteTree {
    fn new(tree: &LinkedTree) -> Option<Self> {
        if tree.depth > COMPLETE_DEPTH {
            return None;
        }
        let padding = Split {
            threshold: f32::INFINITY,
            feature: 0,
        };
        let mut out = CompleteTree {
            splits: Box::new([padding; COMPLETE_SLOTS]),
            leaves: Box::new([0.0; COMPLETE_SLOTS]),
        };
        // (linked node, complete position, depth)
        let mut stack = vec![(0usize, 1usize, 0u32)];
        while let Some((node, pos, depth)) = stack.pop() {
            let n = tree.nodes[node];
            if depth == COMPLETE_DEPTH {
                out.leaves[pos - COMPLETE_SLOTS] = n.value;
            } else if n.feature & LEAF != 0 {
                stack.push((node, 2 * pos, depth + 1));
            } else {
                out.splits[pos] = Split {
                    threshold: n.value as f32,
                    feature: n.feature,
                };
                stack.push((n.left as usize, 2 * pos, depth + 1));
                stack.push((n.left as usize + 1, 2 * pos + 1, depth + 1));
            }
        }
        Some(out)
    }

    /// Adds the path lengths of `rows` in each of `trees` to `sums` (tree by tree, in order),
    /// walking the rows and the trees in lockstep so that their loads overlap.
    #[inline(always)]
    fn add_path_lengths<'r, R, const N: usize>(
        trees: [&CompleteTree; N],
        rows: impl Iterator<Item = &'r R> + Clone,
        sums: &mut [f64],
    ) where
        R: Row32 + ?Sized + 'r,
    {
        let mut pos = [[1u32; N]; BLOCK];
        let pos = &mut pos[..sums.len()];
        for _ in 0..COMPLETE_DEPTH {
            for (p, row) in pos.iter_mut().zip(rows.clone()) {
                for (p, tree) in p.iter_mut().zip(trees) {
                    let split = tree.splits[*p as usize % COMPLETE_SLOTS];
                    *p = 2 * *p + u32::from(row.at32(split.feature) > split.threshold);
                }
            }
        }
        for (s, p) in sums.iter_mut().zip(pos.iter()) {
            for (p, tree) in p.iter().zip(trees) {
                // p is in 2^8..2^9: the leaf is p − 2^8.
                *s += tree.leaves[*p as usize % COMPLETE_SLOTS];
            }
        }
    }
}

impl Tree {
    fn depth(&self) -> u32 {
        self.linked.depth
    }

    /// Path length of `row`: depth of its leaf plus the leaf's average-path correction.
    #[inline]
    fn path_length(&self, row: &[f64]) -> f64 {
        let mut sum = [0.0];
        self.add_path_lengths(std::iter::once(row), &mut sum);
        sum[0]
    }

    /// Adds the path length of each of `rows` to `sums`.
    #[inline]
    fn add_path_lengths<'r, R>(&self, rows: impl Iterator<Item = &'r R> + Clone, sums: &mut [f64])
    where
        R: Row + Row32 + ?Sized + 'r,
    {
        if let Some(tree) = &self.complete {
            return CompleteTree::add_path_lengths([tree], rows, sums);
        }
        let nodes = &self.linked.nodes;
        let mut pos = [0u32; BLOCK];
        let pos = &mut pos[..sums.len()];
        for _ in 0..self.depth() {
            for (p, row) in pos.iter_mut().zip(rows.clone()) {
                *p = nodes[*p as usize].step(row);
            }
        }
        for (s, p) in sums.iter_mut().zip(pos.iter()) {
            *s += nodes[*p as usize].value;
        }
    }
}

/// A fitted Isolation Forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestModel {
    n_features: usize,
    /// ψ, the rows each tree was grown on.
    max_samples: usize,
    /// `c(ψ)`, the normaliser of the mean path length.
    norm: f64,
    threshold: f64,
    trees: Vec<Tree>,
}

impl IsolationForestModel {
    /// Scores above this are outliers (0.5 for `contamination = "auto"`); equals
    /// −scikit-learn's `offset_`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// True when `score` (from [`OutlierModel::score`]) is above the threshold, as scikit-learn's
    /// `predict(x) == -1`.
    pub fn is_outlier(&self, score: f64) -> bool {
        score > self.threshold
    }

    /// Width of the rows the model was fitted on.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Rows each tree was grown on (ψ).
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Adds the path lengths of `rows` over every tree to `sums`, tree by tree in order (so
    /// the sums are bit-identical however the trees are walked); complete trees go two at a
    /// time. Used on rows read in place (wider than 64 values, or forests with a deep tree).
    #[inline]
    fn add_path_lengths<'r, R>(&self, rows: impl Iterator<Item = &'r R> + Clone, sums: &mut [f64])
    where
        R: Row + Row32 + ?Sized + 'r,
    {
        let mut t = 0;
        while t < self.trees.len() {
            match (&self.trees[t].complete, self.trees.get(t + 1)) {
                (
                    Some(a),
                    Some(Tree {
                        complete: Some(b), ..
                    }),
                ) => {
                    CompleteTree::add_path_lengths([a, b], rows.clone(), sums);
                    t += 2;
                }
                _ => {
                    self.trees[t].add_path_lengths(rows.clone(), sums);
                    t += 1;
                }
            }
        }
    }

    /// [`Self::add_path_lengths`] on a row-major `block` of `cols`-wide rows, rounded to `f32`
    /// and copied into `W`-wide arrays first (`cols ≤ W`). Only for forests whose trees are all
    /// complete (the linked walk compares in `f64`).
    fn add_padded<const W: usize>(&self, block: &[f64], cols: usize, sums: &mut [f64]) {
        let mut rows = [[0.0f32; W]; BLOCK];
        for (padded, row) in rows.iter_mut().zip(block.chunks_exact(cols)) {
            for (p, &v) in padded[..cols].iter_mut().zip(row) {
                *p = v as f32;
            }
        }
        let rows = &rows[..sums.len()];
        fn complete(t: &Tree) -> &CompleteTree {
            t.complete.as_ref().expect("all trees are complete")
        }
        let mut quads = self.trees.chunks_exact(LOCKSTEP);
        for quad in &mut quads {
            let trees: [&CompleteTree; LOCKSTEP] = std::array::from_fn(|i| complete(&quad[i]));
            CompleteTree::add_path_lengths(trees, rows.iter(), sums);
        }
        for tree in quads.remainder() {
            CompleteTree::add_path_lengths([complete(tree)], rows.iter(), sums);
        }
    }

    /// `2^(−E[h] / c(ψ))`.
    fn to_score(&self, mean_path_length: f64) -> f64 {
        if self.norm == 0.0 {
            // ψ = 1: every tree is a single leaf and scikit-learn divides 0 by 0; use the
            // neutral score.
            return 0.5;
        }
        (-mean_path_length / self.norm).exp2()
    }

    /// Mean path length of `row` over the trees, E[h(x)].
    pub fn mean_path_length(&self, row: &[f64]) -> f64 {
        let total: f64 = self.trees.iter().map(|t| t.path_length(row)).sum();
        total / self.trees.len() as f64
    }
}

impl OutlierModel for IsolationForestModel {
    /// `2^(−E[h(x)] / c(ψ))`, in 0..1. `row` must have the training width.
    fn score(&self, row: &[f64]) -> f64 {
        debug_assert_eq!(
            row.len(),
            self.n_features,
            "row width should match the model"
        );
        self.to_score(self.mean_path_length(row))
    }

    fn score_batch(&self, data: &Matrix) -> Vec<f64> {
        debug_assert_eq!(
            data.n_cols(),
            self.n_features,
            "rows should match the model"
        );
        par_chunks(data.n_rows(), 10 * self.trees.len(), |range| {
            let mut out = Vec::with_capacity(range.len());
            let mut sums = [0.0; BLOCK];
            let cols = data.n_cols();
            let all_complete = self.trees.iter().all(|t| t.complete.is_some());
            for start in range.clone().step_by(BLOCK) {
                let end = (start + BLOCK).min(range.end);
                let block = &data.as_slice()[start * cols..end * cols];
                let sums = &mut sums[..end - start];
                sums.fill(0.0);
                match cols {
                    _ if !all_complete => self.add_path_lengths(block.chunks_exact(cols), sums),
                    0..=8 => self.add_padded::<8>(block, cols, sums),
                    9..=16 => self.add_padded::<16>(block, cols, sums),
                    17..=32 => self.add_padded::<32>(block, cols, sums),
                    33..=64 => self.add_padded::<64>(block, cols, sums),
                    _ => self.add_path_lengths(block.chunks_exact(cols), sums),
                }
                out.extend(
                    sums.iter()
                        .map(|&s| self.to_score(s / self.trees.len() as f64)),
                );
            }
            out
        })
    }
}

impl IsolationForest {
    fn validate(&self, data: &Matrix) -> Result<(usize, usize), DetectError> {
        let param = |name, reason: String| DetectError::Parameter { name, reason };
        if self.n_estimators == 0 {
            return Err(param("n_estimators", "must be at least 1".to_owned()));
        }
        if !(self.max_features > 0.0 && self.max_features <= 1.0) {
            return Err(param(
                "max_features",
                format!("must be in (0, 1], got {}", self.max_features),
            ));
        }
        self.contamination
            .validate()
            .map_err(|r| param("contamination", r))?;
        check_data(data)?;
        let n = data.n_rows();
        let psi = match self.max_samples {
            MaxSamples::Auto => n.min(256),
            MaxSamples::Count(0) => return Err(param("max_samples", "must be at least 1".into())),
            MaxSamples::Count(c) => c.min(n),
            MaxSamples::Fraction(f) if f > 0.0 && f <= 1.0 => ((f * n as f64) as usize).max(1),
            MaxSamples::Fraction(f) => {
                return Err(param("max_samples", format!("must be in (0, 1], got {f}")));
            }
        };
        let n_feat = ((self.max_features * data.n_cols() as f64) as usize).max(1);
        Ok((psi, n_feat))
    }

    /// Grows the trees (unthresholded model).
    fn grow(&self, data: &Matrix) -> Result<IsolationForestModel, DetectError> {
        let (psi, n_feat) = self.validate(data)?;
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let mut master = ChaCha8Rng::seed_from_u64(self.seed);
        let seeds: Vec<u64> = (0..self.n_estimators).map(|_| master.random()).collect();
        let trees = par_chunks(self.n_estimators, psi * 8, |range| {
            range
                .map(|t| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seeds[t]);
                    grow_tree(data, psi, n_feat, max_depth, &mut rng)
                })
                .collect()
        });
        Ok(IsolationForestModel {
            n_features: data.n_cols(),
            max_samples: psi,
            norm: average_path_length(psi),
            threshold: 0.5,
            trees,
        })
    }
}

impl Estimator for IsolationForest {
    type Model = IsolationForestModel;

    fn fit(&self, data: &Matrix) -> Result<IsolationForestModel, DetectError> {
        if self.contamination != Contamination::Auto {
            // The threshold is a percentile of the training scores.
            return self.fit_score(data).map(|(model, _)| model);
        }
        self.grow(data)
    }

    fn fit_score(&self, data: &Matrix) -> Result<(IsolationForestModel, Vec<f64>), DetectError> {
        let mut model = self.grow(data)?;
        let scores = model.score_batch(data);
        model.threshold = self.contamination.threshold(&scores, 0.5);
        Ok((model, scores))
    }
}

/// Grows one tree on `psi` rows drawn without replacement, seeing `n_feat` of the columns.
fn grow_tree(
    data: &Matrix,
    psi: usize,
    n_feat: usize,
    max_depth: usize,
    rng: &mut ChaCha8Rng,
) -> Tree {
    let n = data.n_rows();
    let rows = index::sample(rng, n, psi).into_vec();
    let features: Vec<usize> = if n_feat >= data.n_cols() {
        (0..data.n_cols()).collect()
    } else {
        index::sample(rng, data.n_cols(), n_feat).into_vec()
    };
    // Column-major copy of the subsample: the min/max scans read one contiguous column. It is
    // filled row by row, so each sampled row (a cache miss on large data) is fetched once.
    let mut cols = vec![0.0; psi * features.len()];
    for (i, &r) in rows.iter().enumerate() {
        let row = data.row(r);
        for (j, &f) in features.iter().enumerate() {
            cols[j * psi + i] = row[f];
        }
    }
    let mut idx: Vec<u32> = (0..psi as u32).collect();
    let mut candidates: Vec<usize> = Vec::with_capacity(features.len());
    let leaf = |at: usize, value: f64| Node {
        value,
        feature: LEAF,
        left: at as u32,
    };
    let mut nodes = vec![leaf(0, 0.0)];
    let mut tree_depth = 0;
    // (node, start, end, depth) of nodes still to split.
    let mut stack = vec![(0usize, 0usize, psi, 0usize)];
    while let Some((node, start, end, depth)) = stack.pop() {
        let len = end - start;
        let split = if depth >= max_depth || len <= 1 {
            None
        } else {
            pick_split(
                &cols,
                psi,
                &idx[start..end],
                features.len(),
                &mut candidates,
                rng,
            )
        };
        let Some((j, threshold)) = split else {
            nodes[node] = leaf(node, depth as f64 + average_path_length(len));
            tree_depth = tree_depth.max(depth);
            continue;
        };
        // Partition idx[start..end]: values <= threshold first.
        let column = &cols[j * psi..(j + 1) * psi];
        let part = &mut idx[start..end];
        let mut mid = 0;
        // Largest value sent left and smallest sent right.
        let (mut below, mut above) = (f64::NEG_INFINITY, f64::INFINITY);
        for k in 0..part.len() {
            let v = column[part[k] as usize];
            if v <= threshold {
                part.swap(mid, k);
                mid += 1;
                below = below.max(v);
            } else {
                above = above.min(v);
            }
        }
        let threshold = f32_safe_threshold(threshold, below, above);
        let left = nodes.len();
        nodes[node] = Node {
            value: threshold,
            feature: features[j] as u32,
            left: left as u32,
        };
        nodes.push(leaf(left, 0.0));
        nodes.push(leaf(left + 1, 0.0));
        stack.push((left + 1, start + mid, end, depth + 1));
        stack.push((left, start, start + mid, depth + 1));
    }
    Tree::from(LinkedTree {
        nodes,
        depth: tree_depth as u32,
    })
}

/// The threshold `t` (with `below <= t < above`, the node's nearest training values on each
/// side), moved if needed so that the `f32` walk of [`CompleteTree`] splits the node's training
/// values as the `f64` one does. Rounding is monotonic, so `below as f32 <= t as f32` and
/// `t as f32 <= above as f32`: only `t as f32 == above as f32` (`t` within half an `f32` step
/// below `above`) would send `above` left; then `t` becomes `below`, which splits the node's
/// values the same way in `f64` and, unless `below` and `above` are equal in `f32` (which no
/// `f32` threshold can separate), also in `f32`. Other `t` are returned unchanged.
fn f32_safe_threshold(t: f64, below: f64, above: f64) -> f64 {
    if t as f32 >= above as f32 && (below as f32) < above as f32 {
        below
    } else {
        t
    }
}

/// Picks a feature uniformly among those not constant over `rows` (drawing without replacement
/// until one is found, as scikit-learn's random splitter) and a threshold uniform in its range.
/// `None` when every feature is constant.
fn pick_split(
    cols: &[f64],
    psi: usize,
    rows: &[u32],
    n_feat: usize,
    candidates: &mut Vec<usize>,
    rng: &mut ChaCha8Rng,
) -> Option<(usize, f64)> {
    candidates.clear();
    candidates.extend(0..n_feat);
    while !candidates.is_empty() {
        let j = candidates.swap_remove(rng.random_range(0..candidates.len()));
        let column = &cols[j * psi..(j + 1) * psi];
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &r in rows {
            let v = column[r as usize];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi <= lo + FEATURE_THRESHOLD {
            continue;
        }
        let mut threshold = lo + (hi - lo) * rng.random::<f64>();
        if threshold >= hi {
            threshold = lo;
        }
        return Some((j, threshold));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 rows in a tight 3-d cluster plus one far outlier at the end.
    fn cluster_with_outlier(seed: u64) -> Matrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows: Vec<Vec<f64>> = (0..300)
            .map(|_| (0..3).map(|_| rng.random::<f64>()).collect())
            .collect();
        rows.push(vec![8.0, -7.0, 9.0]);
        Matrix::from_rows(&rows).unwrap()
    }

    struct Case {
        name: &'static str,
        rows: Vec<Vec<f64>>,
        expected: Result<(), &'static str>,
    }

    #[test]
    fn fit_cases() {
        let cases = [
            Case {
                name: "single row fits and scores neutral",
                rows: vec![vec![1.0, 2.0]],
                expected: Ok(()),
            },
            Case {
                name: "constant columns give single-leaf trees",
                rows: vec![vec![3.0, 3.0]; 50],
                expected: Ok(()),
            },
            Case {
                name: "duplicate rows",
                rows: [vec![vec![1.0, 1.0]; 30], vec![vec![2.0, 5.0]; 30]].concat(),
                expected: Ok(()),
            },
            Case {
                name: "nan is rejected",
                rows: vec![vec![1.0, 2.0], vec![f64::NAN, 1.0]],
                expected: Err("invalid parameter data: row 1, column 0 is NaN"),
            },
            Case {
                name: "infinity is rejected",
                rows: vec![vec![1.0, f64::INFINITY]],
                expected: Err("invalid parameter data: row 0, column 1 is inf"),
            },
        ];
        for case in cases {
            let data = Matrix::from_rows(&case.rows).unwrap();
            let got = IsolationForest::default().fit_score(&data);
            match (got, case.expected) {
                (Ok((model, scores)), Ok(())) => {
                    assert_eq!(scores.len(), case.rows.len(), "{}", case.name);
                    assert!(
                        scores.iter().all(|s| (0.0..=1.0).contains(s)),
                        "{}: {scores:?}",
                        case.name
                    );
                    assert_eq!(model.n_features(), 2, "{}", case.name);
                }
                (Err(e), Err(msg)) => assert!(e.to_string().starts_with(msg), "{}: {e}", case.name),
                (got, want) => panic!("{}: got {:?}, want {want:?}", case.name, got.map(|g| g.1)),
            }
        }
    }

    #[test]
    fn constant_data_scores_equal() {
        let data = Matrix::from_rows(&vec![vec![3.0, 3.0]; 50]).unwrap();
        let (_, scores) = IsolationForest::default().fit_score(&data).unwrap();
        // Every tree is one leaf of 50 rows: h = c(50) = c(ψ), score = 2^-1.
        assert!(scores.iter().all(|s| (s - 0.5).abs() < 1e-12), "{scores:?}");
    }

    #[test]
    fn empty_data_is_rejected() {
        let data = Matrix::new(2, vec![]).unwrap();
        let err = IsolationForest::default().fit(&data).unwrap_err();
        assert!(matches!(err, DetectError::NotEnoughData(_)), "{err}");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let data = cluster_with_outlier(1);
        for (name, est) in [
            (
                "n_estimators",
                IsolationForest {
                    n_estimators: 0,
                    ..Default::default()
                },
            ),
            (
                "max_features",
                IsolationForest {
                    max_features: 0.0,
                    ..Default::default()
                },
            ),
            (
                "max_samples",
                IsolationForest {
                    max_samples: MaxSamples::Count(0),
                    ..Default::default()
                },
            ),
            (
                "max_samples",
                IsolationForest {
                    max_samples: MaxSamples::Fraction(1.5),
                    ..Default::default()
                },
            ),
            (
                "contamination",
                IsolationForest {
                    contamination: Contamination::Fraction(0.9),
                    ..Default::default()
                },
            ),
        ] {
            match est.fit(&data) {
                Err(DetectError::Parameter { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn obvious_outlier_scores_highest() {
        let data = cluster_with_outlier(7);
        let (model, scores) = IsolationForest::default().fit_score(&data).unwrap();
        let (argmax, max) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        assert_eq!(argmax, 300);
        assert!(model.is_outlier(*max), "{max}");
        assert!(model.score(&[0.5, 0.5, 0.5]) < 0.5);
    }

    #[test]
    fn deterministic_given_seed() {
        let data = cluster_with_outlier(3);
        let est = IsolationForest {
            seed: 11,
            ..Default::default()
        };
        let (m1, s1) = est.fit_score(&data).unwrap();
        let (m2, s2) = est.fit_score(&data).unwrap();
        assert_eq!(m1, m2);
        assert_eq!(s1, s2);
        let other = IsolationForest {
            seed: 12,
            ..Default::default()
        };
        assert_ne!(other.fit_score(&data).unwrap().1, s1);
    }

    #[test]
    fn serde_round_trip_scores_identically() {
        let data = cluster_with_outlier(5);
        let model = IsolationForest::default().fit(&data).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: IsolationForestModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.score_batch(&data), model.score_batch(&data));
    }

    #[test]
    fn contamination_sets_threshold() {
        let data = cluster_with_outlier(9);
        let est = IsolationForest {
            contamination: Contamination::Fraction(0.1),
            ..Default::default()
        };
        let (model, scores) = est.fit_score(&data).unwrap();
        let flagged = scores.iter().filter(|s| model.is_outlier(**s)).count();
        assert!((29..=31).contains(&flagged), "{flagged}");
        assert_eq!(
            IsolationForest::default().fit(&data).unwrap().threshold(),
            0.5
        );
    }

    #[test]
    fn trees_respect_max_depth_and_features() {
        let data = cluster_with_outlier(2);
        let est = IsolationForest {
            max_samples: MaxSamples::Count(64),
            max_features: 0.34,
            ..Default::default()
        };
        let model = est.fit(&data).unwrap();
        assert_eq!(model.max_samples(), 64);
        for tree in &model.trees {
            let features: std::collections::BTreeSet<u32> = tree
                .linked
                .nodes
                .iter()
                .filter(|n| !n.is_leaf())
                .map(|n| n.feature)
                .collect();
            assert!(features.len() <= 1, "{features:?}");
            // Depth ≤ 6 = log2(64): a leaf's path length is at most 6 + c(n_leaf) and the
            // tree has at most 2^7 − 1 nodes.
            assert!(tree.linked.nodes.len() < 128 && tree.depth() <= 6);
        }
    }

    /// The linked walk with the comparison of the complete layout: row value and threshold
    /// both rounded to `f32`.
    fn f32_reference_path_length(tree: &LinkedTree, row: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            let n = tree.nodes[i];
            if n.is_leaf() {
                return n.value;
            }
            i = n.left as usize + usize::from(row[n.feature as usize] as f32 > n.value as f32);
        }
    }

    /// The complete layout walks every row, in or out of the training range, to the same
    /// path length as the linked walk comparing in `f32`, and every row a tree was grown on to
    /// the same path length as the `f64` linked walk; deeper trees keep only the linked form.
    #[test]
    fn complete_layout_matches_linked_walk() {
        let data = cluster_with_outlier(4);
        let model = IsolationForest::default().fit(&data).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut rows: Vec<Vec<f64>> = data.rows().map(<[f64]>::to_vec).collect();
        rows.extend((0..200).map(|_| (0..3).map(|_| rng.random::<f64>() * 4.0 - 2.0).collect()));
        rows.push(vec![f64::NAN, 0.5, f64::INFINITY]);
        for tree in &model.trees {
            assert!(tree.complete.is_some());
            for row in &rows {
                assert_eq!(
                    tree.path_length(row),
                    f32_reference_path_length(&tree.linked, row)
                );
            }
        }
        // ψ = 301 needs depth 9: linked only, still scores like a forest.
        let deep = IsolationForest {
            max_samples: MaxSamples::Count(301),
            ..Default::default()
        };
        let (model, scores) = deep.fit_score(&data).unwrap();
        assert!(model.trees.iter().any(|t| t.depth() > COMPLETE_DEPTH));
        assert!(
            model
                .trees
                .iter()
                .all(|t| t.complete.is_none() == (t.depth() > COMPLETE_DEPTH))
        );
        let argmax = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(argmax, 300);
    }

    /// Training values closer together than a few `f32` steps (`1 + k·2e-7`: 1.7 steps apart)
    /// still split the same way in `f32` as in `f64`: with ψ = n every row is in every
    /// subsample, so every training row's `f32` path length is its `f64` one.
    #[test]
    fn f32_walk_splits_training_rows_like_f64() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let rows: Vec<Vec<f64>> = (0..256)
            .map(|k| {
                let x = 1.0 + k as f64 * 2e-7;
                vec![
                    x,
                    1.0 + f64::from(rng.random_range(0u32..256)) * 2e-7,
                    x * 1e3,
                ]
            })
            .collect();
        let data = Matrix::from_rows(&rows).unwrap();
        let model = IsolationForest::default().fit(&data).unwrap();
        let mut moved = 0;
        for tree in &model.trees {
            let linked = Tree {
                linked: tree.linked.clone(),
                complete: None,
            };
            assert!(tree.complete.is_some());
            for row in data.rows() {
                assert_eq!(tree.path_length(row), linked.path_length(row));
            }
            moved += tree
                .linked
                .nodes
                .iter()
                .filter(|n| !n.is_leaf() && data.rows().any(|r| r[n.feature as usize] == n.value))
                .count();
        }
        // Thresholds land on a training value only when moved by `f32_safe_threshold` (or
        // drawn at `lo`): the test exercises the move.
        assert!(moved > 100, "{moved}");
    }

    #[test]
    fn f32_safe_threshold_cases() {
        let step = f64::from(f32::EPSILON); // f32 step at 1.0
        for (name, t, below, above, want) in [
            ("well inside the gap", 1.5, 1.0, 2.0, 1.5),
            (
                "t rounds onto above",
                1.0 + 0.9 * step,
                1.0,
                1.0 + step,
                1.0,
            ),
            (
                "t rounds onto below",
                1.0 + 0.1 * step,
                1.0,
                1.0 + step,
                1.0 + 0.1 * step,
            ),
            (
                "inseparable in f32",
                1.0 + 0.2 * step,
                1.0,
                1.0 + 0.3 * step,
                1.0 + 0.2 * step,
            ),
        ] {
            let got = f32_safe_threshold(t, below, above);
            assert_eq!(got, want, "{name}");
            assert!(below <= got && got < above, "{name}");
            if (below as f32) < above as f32 {
                assert!(
                    below as f32 <= got as f32 && (got as f32) < above as f32,
                    "{name}"
                );
            }
        }
    }

    /// Batch scoring (rows rounded to `f32` and padded to 8, 16, 32 or 64 values with complete
    /// trees four at a time, or read in place above that or with deep trees: complete trees two
    /// at a time, linked ones alone) gives each row exactly its single-row score.
    #[test]
    fn batch_scores_equal_single_row_scores() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        for (cols, psi) in [
            (1, 256),
            (3, 301),
            (12, 256),
            (20, 64),
            (40, 301),
            (70, 256),
        ] {
            let rows: Vec<Vec<f64>> = (0..400)
                .map(|_| (0..cols).map(|_| rng.random::<f64>()).collect())
                .collect();
            let data = Matrix::from_rows(&rows).unwrap();
            let est = IsolationForest {
                max_samples: MaxSamples::Count(psi),
                n_estimators: 15,
                ..Default::default()
            };
            let (model, scores) = est.fit_score(&data).unwrap();
            let single: Vec<f64> = data.rows().map(|r| model.score(r)).collect();
            assert_eq!(scores, single, "{cols} columns, ψ = {psi}");
        }
    }

    #[test]
    fn estimator_serde_defaults() {
        let est: IsolationForest = serde_json::from_str(r#"{"contamination": 0.1}"#).unwrap();
        assert_eq!(est.n_estimators, 100);
        assert_eq!(est.contamination, Contamination::Fraction(0.1));
        assert!(serde_json::from_str::<IsolationForest>(r#"{"trees": 3}"#).is_err());
    }
}
