//! Exact k-nearest-neighbour search under the Euclidean distance: a KD-tree, and a brute-force
//! all-pairs search for the training neighbours of small data ([`brute_all_knn`]).
//!
//! - **Duplicates** are merged first: the tree holds each distinct row once, with the ascending
//!   list of the row indices that share it. Tabular data is full of repeated rows (3 329 copies
//!   of one row in `mammography`), and without merging a query inside such a group would visit
//!   every leaf holding a copy.
//! - **Rotation.** With [`ROTATE_MIN_DIMS`] or more columns the rows are centred and rotated onto
//!   their principal axes (Jacobi eigen-decomposition of the covariance) before the tree is
//!   built. Distances are unchanged (up to rounding) but axis-aligned splits follow the data's
//!   spread, and the leading coordinates carry most of each distance, so partial sums exceed
//!   the current bound sooner. Correlated high-dimensional data (36 columns in `satellite`) is
//!   where KD-trees otherwise degrade to brute force.
//! - **Tree.** A node splits at the median of its widest coordinate until at most
//!   [`LEAF_SIZE`] points remain (or all are equal). A query descends into the nearer child
//!   first. The distance from the query to a node's cell is kept per coordinate (Arya and
//!   Mount's incremental distance): entering the far child changes one coordinate, to the
//!   splitting plane, so a cheap estimate discards most far children in O(1), and the others
//!   get their exact cell distance. A child whose cell is *strictly* farther than the current
//!   k-th neighbour is skipped; leaf distances stop early once they exceed it.
//! - **Training rows** ([`KdTree::all_knn`]) are queried in tree order, and each query starts
//!   with a ceiling: the k-th smallest distance to the previous query and its neighbours
//!   (computed exactly as the search computes distances, so no true neighbour lies beyond it).
//!   Without it a search prunes nothing until it has k points: `shuttle` (49 097 × 9) 1 053 →
//!   724 ms per fit, interleaved A/B runs on the 2-vCPU VM.
//!
//! **Ties.** Neighbours are ordered by (squared distance, original index), so the k returned are
//! the k smallest in that order whatever the tree's shape or the thread count. Exact cell
//! distances sum, in the same lanes and order as point distances, per-coordinate terms that are
//! each no larger than those of any point in the cell; rounding is monotone, so pruning never
//! drops a point that belongs in the result (the O(1) estimate only prunes with a margin far
//! above its rounding error). After a rotation, distances that are equal in exact arithmetic
//! may differ in the last bit, which then decides the order instead of the index.
//!
//! **Brute force** ([`brute_all_knn`]) returns, for every row, exactly the k smallest
//! (squared distance, index) in the original coordinates, so it equals the tree's result
//! whenever the tree is not rotated. An `f32` screen (`‖x‖² + ‖y‖² − 2x·y` on centred rows)
//! keeps every candidate that its rigorous error bound cannot exclude; only those get the exact
//! `f64` distance. The cross terms `x·y` come from `ndarray`'s GEMM (the `matrixmultiply` crate,
//! which picks AVX2/FMA kernels at run time; the workspace forbids `unsafe`, so our own loops
//! only get the SSE2 baseline), [`GEMM_QUERIES`] rows against all rows at a time. Each row
//! takes its admission bound from the [`NEAR_ROWS`] rows on either side of it in tree order
//! (the k-th smallest upper end among them: rows near in tree order are near in space), then
//! keeps every row whose lower end is within it, testing [`RUN`] values at a time with one
//! vectorised comparison and extracting the few that pass without branches: about 40–46
//! candidates per row for k = 20 on the ODDS sets. A symmetric variant (each pair computed
//! once, offered to both rows) did half the multiply-adds but was slower (thyroid 48–74 ms
//! against 21–27 ms): a row then meets its candidates in no useful order, so its bound stays
//! loose and it keeps many more candidates. Cost per row on one core (`thyroid`, 3 772 × 6):
//! ~1.2 µs of GEMM, 0.5 µs for the bound, ~0.6 µs for the vectorised test over all rows,
//! ~3 µs for the candidates (extraction, exact distances, selection).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, Axis, Slice};
use serde::{Deserialize, Serialize};

use super::Matrix;
use super::common::{par_chunks, par_chunks_with};

/// Most distinct points in a leaf.
const LEAF_SIZE: usize = 16;

/// Rows with at least this many columns are rotated onto their principal axes. Measured on the
/// ODDS sets, rotation makes LOF 1.5–3× faster from 12 columns up; it would also halve the
/// time on `shuttle` (9 columns), but on small-integer data such as `breastw` it changes which
/// of several equidistant rows are neighbours (the last bit decides instead of the index) and
/// moves ROC-AUC away from scikit-learn's by ~0.01, so lower-dimensional data stays exact.
const ROTATE_MIN_DIMS: usize = 10;

/// A node: points `start..end` of the tree order; children at `left` (coordinate `dim` at
/// most `split`) and `left + 1` (at least `split`), or a leaf when `left == 0` (the root is never
/// a child).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct KdNode {
    start: u32,
    end: u32,
    left: u32,
    dim: u32,
    split: f64,
}

/// Centring and rotation applied to rows before they enter the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rotation {
    mean: Vec<f64>,
    /// Row-major `dims × dims`; row `a` is the `a`-th principal axis (decreasing variance).
    axes: Vec<f64>,
}

impl Rotation {
    fn apply(&self, row: &[f64], out: &mut Vec<f64>) {
        let dims = self.mean.len();
        out.clear();
        out.extend(self.axes.chunks_exact(dims).map(|axis| {
            let mut sum = 0.0;
            for ((x, m), a) in row.iter().zip(&self.mean).zip(axis) {
                sum += (x - m) * a;
            }
            sum
        }));
    }
}

/// A KD-tree over the distinct rows of a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KdTree {
    dims: usize,
    rotation: Option<Rotation>,
    /// Distinct (rotated) rows in tree order, row-major.
    points: Vec<f64>,
    /// Point `p` stands for rows `members[groups[p]..groups[p + 1]]`.
    groups: Vec<u32>,
    /// Original row indices, ascending within each group.
    members: Vec<u32>,
    nodes: Vec<KdNode>,
    /// Bounding box of all points: lower then upper bounds.
    root_lo: Vec<f64>,
    root_hi: Vec<f64>,
}

/// The k best neighbours found so far, sorted by (squared distance, index), and scratch space
/// for a rotated query.
#[derive(Debug, Clone)]
pub(crate) struct Knn {
    k: usize,
    items: Vec<(f64, u32)>,
    query: Vec<f64>,
    /// Per coordinate, the query's distance to the current cell.
    offsets: Vec<f64>,
    /// A squared distance known to hold at least k rows (other than the excluded one), or
    /// infinity: points beyond it are pruned before the set is full.
    ceiling: f64,
}

impl Knn {
    /// An empty set that keeps at most `k` neighbours.
    pub(crate) fn new(k: usize) -> Self {
        Knn {
            k,
            items: Vec::with_capacity(k + 1),
            query: Vec::new(),
            offsets: Vec::new(),
            ceiling: f64::INFINITY,
        }
    }

    /// True when a box at squared distance `d2` cannot hold a better neighbour.
    #[inline]
    fn prunes(&self, d2: f64) -> bool {
        d2 > self.bound()
    }

    /// The squared distance beyond which a point cannot enter (the ceiling until full).
    #[inline]
    fn bound(&self) -> f64 {
        match self.items.last() {
            Some(w) if self.items.len() == self.k => w.0.min(self.ceiling),
            _ => self.ceiling,
        }
    }

    /// Offers a candidate; false when it is rejected.
    #[inline]
    fn offer(&mut self, d2: f64, id: u32) -> bool {
        if self.items.len() == self.k && self.items.last().is_none_or(|&w| (d2, id) >= w) {
            return false;
        }
        let pos = self.items.partition_point(|&w| w < (d2, id));
        self.items.insert(pos, (d2, id));
        if self.items.len() > self.k {
            self.items.pop();
        }
        true
    }

    /// The neighbours as (squared distance, original index), nearest first.
    pub(crate) fn items(&self) -> &[(f64, u32)] {
        &self.items
    }
}

impl KdTree {
    /// Builds a tree over the rows of `data`.
    pub(crate) fn build(data: &Matrix) -> Self {
        let dims = data.n_cols();
        let n = data.n_rows();

        // Merge equal rows: sort row indices by value, then by index.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (ra, rb) = (data.row(a as usize), data.row(b as usize));
            ra.iter()
                .zip(rb)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        let mut members = Vec::with_capacity(n);
        let mut group_of_distinct = vec![0u32];
        let mut distinct: Vec<u32> = Vec::new();
        for (i, &id) in order.iter().enumerate() {
            if i > 0 && data.row(id as usize) != data.row(order[i - 1] as usize) {
                group_of_distinct.push(members.len() as u32);
            }
            if group_of_distinct.len() > distinct.len() {
                distinct.push(id);
            }
            members.push(id);
        }
        group_of_distinct.push(n as u32);
        let m = distinct.len();

        let rotation = (dims >= ROTATE_MIN_DIMS && m > 1).then(|| principal_rotation(data));
        let coords = match &rotation {
            // Distinct rows centred, times the axes (a GEMM: `C · Aᵀ`).
            Some(r) => {
                let mut centred = Array2::<f64>::zeros((m, dims));
                for (mut out, &id) in centred.rows_mut().into_iter().zip(&distinct) {
                    for ((o, x), mean) in out.iter_mut().zip(data.row(id as usize)).zip(&r.mean) {
                        *o = x - mean;
                    }
                }
                let axes = ArrayView2::from_shape((dims, dims), &r.axes)
                    .unwrap_or_else(|_| unreachable!("the axes are dims × dims"));
                let mut rotated = Array2::<f64>::zeros((m, dims));
                general_mat_mul(1.0, &centred, &axes.t(), 0.0, &mut rotated);
                rotated.into_raw_vec_and_offset().0
            }
            None => distinct
                .iter()
                .flat_map(|&id| data.row(id as usize))
                .copied()
                .collect(),
        };
        let coord = |p: u32, d: usize| coords[p as usize * dims + d];

        // Tree over distinct points 0..m.
        let mut perm: Vec<u32> = (0..m as u32).collect();
        let mut nodes = vec![KdNode {
            start: 0,
            end: m as u32,
            left: 0,
            dim: 0,
            split: 0.0,
        }];
        let (mut root_lo, mut root_hi) = (Vec::new(), Vec::new());
        let mut stack = vec![0usize];
        let mut lo = vec![0.0; dims];
        let mut hi = vec![0.0; dims];
        while let Some(node) = stack.pop() {
            let KdNode { start, end, .. } = nodes[node];
            let (start, end) = (start as usize, end as usize);
            lo.fill(f64::INFINITY);
            hi.fill(f64::NEG_INFINITY);
            for &p in &perm[start..end] {
                let point = &coords[p as usize * dims..(p as usize + 1) * dims];
                // Plain comparisons (values are finite), which vectorise, unlike `f64::min`.
                for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(point) {
                    *l = if v < *l { v } else { *l };
                    *h = if v > *h { v } else { *h };
                }
            }
            if node == 0 {
                root_lo.clone_from(&lo);
                root_hi.clone_from(&hi);
            }
            let (split, spread) = (0..dims)
                .map(|d| (d, hi[d] - lo[d]))
                .fold((0, 0.0), |best, c| if c.1 > best.1 { c } else { best });
            if end - start <= LEAF_SIZE || spread <= 0.0 {
                continue;
            }
            let mid = start + (end - start) / 2;
            perm[start..end].select_nth_unstable_by(mid - start, |&a, &b| {
                coord(a, split).total_cmp(&coord(b, split)).then(a.cmp(&b))
            });
            let left = nodes.len();
            nodes[node].left = left as u32;
            nodes[node].dim = split as u32;
            nodes[node].split = coord(perm[mid], split);
            for (s, e) in [(start, mid), (mid, end)] {
                nodes.push(KdNode {
                    start: s as u32,
                    end: e as u32,
                    left: 0,
                    dim: 0,
                    split: 0.0,
                });
            }
            stack.push(left);
            stack.push(left + 1);
        }

        // Lay points and their groups out in tree order.
        let mut points = Vec::with_capacity(m * dims);
        let mut groups = Vec::with_capacity(m + 1);
        let mut ordered_members = Vec::with_capacity(n);
        groups.push(0);
        for &p in &perm {
            let p = p as usize;
            points.extend_from_slice(&coords[p * dims..(p + 1) * dims]);
            let range = group_of_distinct[p] as usize..group_of_distinct[p + 1] as usize;
            ordered_members.extend_from_slice(&members[range]);
            groups.push(ordered_members.len() as u32);
        }
        KdTree {
            dims,
            rotation,
            points,
            groups,
            members: ordered_members,
            nodes,
            root_lo,
            root_hi,
        }
    }

    /// Original row indices in tree order (duplicates together): nearby rows are near.
    pub(crate) fn order(&self) -> &[u32] {
        &self.members
    }

    /// The most rows sharing one distinct point.
    pub(crate) fn largest_group(&self) -> usize {
        self.groups
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Number of rows (duplicates included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Finds the `out.k` nearest training rows to `q` (a row in the original coordinates).
    pub(crate) fn knn(&self, q: &[f64], out: &mut Knn) {
        let mut query = std::mem::take(&mut out.query);
        match &self.rotation {
            Some(r) => r.apply(q, &mut query),
            None => {
                query.clear();
                query.extend_from_slice(q);
            }
        }
        out.ceiling = f64::INFINITY;
        self.knn_tree_coords(&query, u32::MAX, out);
        out.query = query;
    }

    /// For every training row, its `k` nearest other rows (a row is not its own neighbour;
    /// its duplicates are): returns distances (not squared) and row indices, `k` per row in
    /// row order. `k` must be below the number of rows.
    pub(crate) fn all_knn(&self, k: usize) -> (Vec<f64>, Vec<u32>) {
        let n = self.members.len();
        let distinct = self.groups.len() - 1;
        // The distinct point of every row.
        let mut point_of = vec![0u32; n];
        for p in 0..distinct {
            for &id in &self.members[self.groups[p] as usize..self.groups[p + 1] as usize] {
                point_of[id as usize] = p as u32;
            }
        }
        let point = |p: u32| &self.points[p as usize * self.dims..(p as usize + 1) * self.dims];
        // Query in tree order (neighbouring queries share cache lines), one query per row.
        let found: Vec<(u32, f64, u32)> =
            par_chunks(distinct, 20 * k * self.dims.max(4), |range| {
                let mut knn = Knn::new(k);
                let mut seeds: Vec<f64> = Vec::with_capacity(k + 1);
                let mut last: Option<u32> = None;
                let mut out = Vec::new();
                for p in range {
                    let q = point(p as u32);
                    let rows = self.groups[p] as usize..self.groups[p + 1] as usize;
                    for &id in &self.members[rows] {
                        // The previous query and its neighbours are near this one: the k-th
                        // smallest of their distances (computed exactly as the search computes
                        // them) bounds the search from the start.
                        seeds.clear();
                        if let Some(prev) = last {
                            let near = knn.items().iter().map(|&(_, o)| o);
                            seeds.extend(
                                near.chain(std::iter::once(prev))
                                    .filter(|&o| o != id)
                                    .map(|o| sq_dist(q, point(point_of[o as usize]))),
                            );
                        }
                        knn.ceiling = if seeds.len() >= k {
                            *seeds.select_nth_unstable_by(k - 1, f64::total_cmp).1
                        } else {
                            f64::INFINITY
                        };
                        self.knn_tree_coords(q, id, &mut knn);
                        out.extend(knn.items().iter().map(|&(d2, o)| (id, d2.sqrt(), o)));
                        last = Some(id);
                    }
                }
                out
            });
        scatter(&found, n, k)
    }

    /// k nearest rows to `q` (tree coordinates), leaving out row `exclude`.
    fn knn_tree_coords(&self, q: &[f64], exclude: u32, out: &mut Knn) {
        out.items.clear();
        if out.k == 0 || self.nodes.is_empty() {
            return;
        }
        let mut offsets = std::mem::take(&mut out.offsets);
        offsets.clear();
        offsets.extend(
            q.iter()
                .zip(&self.root_lo)
                .zip(&self.root_hi)
                .map(|((&v, &l), &h)| {
                    if v < l {
                        l - v
                    } else if v > h {
                        v - h
                    } else {
                        0.0
                    }
                }),
        );
        let rd = sum_squares(self.dims, f64::INFINITY, |i| offsets[i]);
        self.search(0, q, rd, &mut offsets, exclude, out);
        out.offsets = offsets;
    }

    /// Searches the subtree `node`, whose cell is at squared distance `rd` from `q`, with
    /// `offsets` the per-coordinate distances from `q` to that cell.
    fn search(
        &self,
        node: usize,
        q: &[f64],
        rd: f64,
        offsets: &mut [f64],
        exclude: u32,
        out: &mut Knn,
    ) {
        if out.prunes(rd) {
            return;
        }
        let KdNode {
            start,
            end,
            left,
            dim,
            split,
        } = self.nodes[node];
        if left == 0 {
            for p in start as usize..end as usize {
                let point = &self.points[p * self.dims..(p + 1) * self.dims];
                let d2 = sq_dist_bounded(q, point, out.bound());
                if out.prunes(d2) {
                    continue;
                }
                // Rows sharing the point, ascending: once one is rejected, so are the rest.
                let rows = self.groups[p] as usize..self.groups[p + 1] as usize;
                for &id in &self.members[rows] {
                    if id != exclude && !out.offer(d2, id) {
                        break;
                    }
                }
            }
            return;
        }
        let s = dim as usize;
        let diff = q[s] - split;
        let (near, far) = if diff <= 0.0 {
            (left as usize, left as usize + 1)
        } else {
            (left as usize + 1, left as usize)
        };
        self.search(near, q, rd, offsets, exclude, out);
        // The far cell: only coordinate `s` changes, to the splitting plane. An O(1) estimate
        // prunes clear cases (with a margin far above its rounding error); otherwise the
        // distance is summed exactly like point distances, so pruning stays exact.
        let old = offsets[s];
        let (old2, new2) = (old * old, diff * diff);
        let estimate = rd - old2 + new2;
        if estimate - 1e-9 * (rd + old2 + new2) > out.bound() {
            return;
        }
        offsets[s] = diff.abs();
        let far_rd = sum_squares(self.dims, out.bound(), |i| offsets[i]);
        self.search(far, q, far_rd, offsets, exclude, out);
        offsets[s] = old;
    }
}

/// Query rows per brute-force GEMM.
const GEMM_QUERIES: usize = 64;
/// Reference rows per screening block (a query skips a block none of whose values passes).
const TILE_REFS: usize = 8;
/// Rows on each side of a query's own block (in tree order) whose screened distances set its
/// first admission bound.
const NEAR_ROWS: usize = 64;
/// Values per vectorised test of the screen (whole blocks).
const RUN: usize = 8 * TILE_REFS;

/// The screen of one query row: bounds on its squared distances from `f32` values.
#[derive(Debug, Clone, Copy)]
struct Screen {
    /// Lower end = `lower_offset + scaled + dot`, with `scaled = (1 − rel)‖y‖²` and `dot =
    /// −2x·y`: `(1 − rel)‖x‖² − abs`.
    lower_offset: f32,
    /// Upper end = `upper_offset + scaled_up + dot`, with `scaled_up = (1 + rel)‖y‖²`:
    /// `(1 + rel)‖x‖² + abs`.
    upper_offset: f32,
}

impl Screen {
    fn new(qnorm: f32, rel: f32, abs: f32) -> Self {
        Screen {
            lower_offset: qnorm * (1.0 - rel) - abs,
            upper_offset: qnorm * (1.0 + rel) + abs,
        }
    }

    /// The value of `scaled + dot` at most which `lower ≤ bound`.
    #[inline]
    fn threshold(self, bound: f32) -> f32 {
        bound - self.lower_offset
    }
}

/// Per-thread buffers of [`brute_all_knn`].
struct BruteScratch {
    /// One GEMM block: the products of `GEMM_QUERIES` rows with every row.
    products: Array2<f32>,
    /// Screened upper ends of a query's nearest rows in tree order.
    near: Vec<f32>,
    /// Positions of a query's candidates.
    cands: Vec<u32>,
    /// Candidates' exact squared distances and row indices, as sort keys.
    exact: Vec<u128>,
}

/// Keeps the candidates whose lower end is at most the `k`-th smallest upper end (which becomes
/// the new admission bound); returns that bound. `ends` gives a candidate's (lower, upper).
fn compact(cands: &mut Vec<u32>, k: usize, ends: impl Fn(u32) -> (f32, f32)) -> f32 {
    cands.select_nth_unstable_by(k - 1, |&a, &b| ends(a).1.total_cmp(&ends(b).1));
    let bound = ends(cands[k - 1]).1;
    cands.retain(|&c| ends(c).0 <= bound);
    bound
}

/// [`KdTree::all_knn`] by comparing every pair of rows: the same result (exact squared
/// distances, ties by row index) without a tree, for small data. `order` lists every row once;
/// rows near each other in it should be near in space (the tree order), so that bounds tighten
/// early.
///
/// Distances are screened in `f32` with `‖x‖² + ‖y‖² − 2x·y` on centred rows, the cross terms
/// from a GEMM of [`GEMM_QUERIES`] rows against all rows. Each screened value `a` comes with a
/// rigorous error bound `e` (see below; it holds for any summation order and for fused
/// multiply-adds), so the true squared distance lies in `[a − e, a + e]`. A row keeps every
/// candidate whose lower end is at most the k-th smallest upper end seen so far (at least k
/// candidates are that close, so no true neighbour is dropped, ties included); the few
/// survivors get their exact `f64` distance, the same sum the tree computes, and are sorted by
/// (distance, index).
pub(crate) fn brute_all_knn(data: &Matrix, order: &[u32], k: usize) -> (Vec<f64>, Vec<u32>) {
    let n = data.n_rows();
    let dims = data.n_cols();
    let mut mean = vec![0.0; dims];
    for row in data.rows() {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let max_abs = data.as_slice().iter().fold(0.0f64, |m, x| m.max(x.abs()));

    // Error bound of a screened value, `rel · (‖x‖² + ‖y‖²) + abs`. With u = 2⁻²⁴, rounding the
    // centred values to f32 moves a squared distance by at most 4u(‖x‖² + ‖y‖²), the f32 dot
    // product by d·u(‖x‖² + ‖y‖²)/2 (doubled), the norms and the final sum by 4u(‖x‖² + ‖y‖²):
    // (d + 8)u in all, taken 4× here. `abs` covers the f64 centring, whose error is relative to
    // the raw values (2⁻⁵² max|x| per coordinate), again with a wide margin.
    let rel = (dims as f32 + 8.0) * 2f32.powi(-22);
    let abs = (dims as f64 * 2f64.powi(-46) * max_abs * max_abs) as f32 * 2.0;

    // Rows in `order`, centred, in f32: `xs` (one per row) are the GEMM's left factor, `ys`
    // (one per column, multiplied by −2, exact) its right factor, padded to whole blocks of
    // TILE_REFS columns; `scaled` holds `(1 − rel)‖y‖²` per column, so `scaled + x·ys` is
    // `(1 − rel)‖y‖² − 2x·y`. Padding columns have an infinite norm: they never pass a finite
    // bound and are skipped by index.
    let blocks = n.div_ceil(TILE_REFS);
    let cols = blocks * TILE_REFS;
    // The rows in `order`, for the exact distances (candidates are near in this order).
    let ordered: Vec<f64> = order
        .iter()
        .flat_map(|&id| data.row(id as usize))
        .copied()
        .collect();
    let mut xs = Array2::<f32>::zeros((n, dims));
    let mut ys = Array2::<f32>::zeros((dims, cols));
    let mut norms = vec![f32::INFINITY; cols];
    let mut scaled = vec![f32::INFINITY; cols];
    let mut scaled_up = vec![f32::INFINITY; cols];
    for (i, &id) in order.iter().enumerate() {
        let row = data.row(id as usize);
        let mut norm = 0.0f64;
        for (d, (x, m)) in row.iter().zip(&mean).enumerate() {
            let c = (x - m) as f32;
            xs[[i, d]] = c;
            ys[[d, i]] = -2.0 * c;
            norm += f64::from(c) * f64::from(c);
        }
        norms[i] = norm as f32;
        scaled[i] = norm as f32 * (1.0 - rel);
        scaled_up[i] = norm as f32 * (1.0 + rel);
    }

    let found = par_chunks_with(
        n.div_ceil(GEMM_QUERIES),
        GEMM_QUERIES * n * (dims + 2),
        || BruteScratch {
            products: Array2::<f32>::zeros((GEMM_QUERIES, cols)),
            near: Vec::new(),
            cands: Vec::new(),
            exact: Vec::new(),
        },
        |scratch, range| {
            let BruteScratch {
                products,
                near,
                cands,
                exact,
            } = scratch;
            let mut out = Vec::with_capacity(range.len() * GEMM_QUERIES * k);
            for qb in range {
                let first = qb * GEMM_QUERIES;
                let last = (first + GEMM_QUERIES).min(n);
                let mut products = products.slice_axis_mut(Axis(0), Slice::from(0..last - first));
                general_mat_mul(
                    1.0,
                    &xs.slice_axis(Axis(0), Slice::from(first..last)),
                    &ys,
                    0.0,
                    &mut products,
                );
                for (i, dots) in (first..last).zip(products.rows()) {
                    let Some(dots) = dots.to_slice() else {
                        unreachable!("rows of a standard-layout array are contiguous")
                    };
                    let screen = Screen::new(norms[i], rel, abs);
                    // 1. The admission bound: the k-th smallest upper end among the rows
                    //    nearest in tree order, which are near in space.
                    let own = i / TILE_REFS * TILE_REFS;
                    let lo = own.saturating_sub(NEAR_ROWS);
                    let hi = (own + TILE_REFS + NEAR_ROWS).min(n);
                    near.clear();
                    near.extend(
                        scaled_up[lo..hi]
                            .iter()
                            .zip(&dots[lo..hi])
                            .map(|(&s, &g)| s + g),
                    );
                    near[i - lo] = f32::INFINITY;
                    let mut bound = if hi - lo > k {
                        screen.upper_offset + *near.select_nth_unstable_by(k - 1, f32::total_cmp).1
                    } else {
                        f32::INFINITY
                    };
                    // 2. Every row whose lower end is within the bound, by a vectorised
                    //    test on whole runs of blocks (`lower ≤ bound` ⇔ `scaled + dot ≤
                    //    threshold`). Ties can keep more than k; the candidates are compacted
                    //    (which can only lower the bound) when they reach `cap`, which grows
                    //    when ties keep more than half.
                    let mut threshold = screen.threshold(bound);
                    let mut cap = 4 * k + 16;
                    cands.clear();
                    let runs = scaled.chunks(RUN).zip(dots.chunks(RUN));
                    for (r, (norm2, dot)) in runs.enumerate() {
                        let hit = norm2
                            .iter()
                            .zip(dot)
                            .fold(false, |hit, (&s, &g)| hit | (s + g <= threshold));
                        if !hit {
                            continue;
                        }
                        // The passing positions of the run, without branches.
                        let mut passed = [0u32; RUN];
                        let mut count = 0;
                        for (j, (&s, &g)) in (0..).zip(norm2.iter().zip(dot)) {
                            passed[count % RUN] = (r * RUN) as u32 + j;
                            count += usize::from(s + g <= threshold);
                        }
                        cands.extend(
                            passed[..count]
                                .iter()
                                .filter(|&&pos| pos as usize != i && (pos as usize) < n),
                        );
                        if cands.len() >= cap {
                            bound = compact(cands, k, |p| {
                                let p = p as usize;
                                (
                                    screen.lower_offset + (scaled[p] + dots[p]),
                                    screen.upper_offset + (scaled_up[p] + dots[p]),
                                )
                            });
                            cap = cap.max(2 * cands.len());
                            threshold = screen.threshold(bound);
                        }
                    }
                    // 3. Exact distances of the candidates within the final bound; the k
                    //    smallest by (distance, index).
                    let id = order[i];
                    let row = &ordered[i * dims..(i + 1) * dims];
                    // (distance, index) as one integer: the bits of a non-negative f64 order
                    // as the value does.
                    exact.clear();
                    exact.extend(cands.iter().map(|&p| {
                        let at = p as usize * dims;
                        let d2 = sq_dist(row, &ordered[at..at + dims]);
                        u128::from(d2.to_bits()) << 32 | u128::from(order[p as usize])
                    }));
                    if exact.len() > k {
                        exact.select_nth_unstable(k - 1);
                    }
                    let nearest = &mut exact[..k];
                    nearest.sort_unstable();
                    out.extend(nearest.iter().map(|&key| {
                        let d2 = f64::from_bits((key >> 32) as u64);
                        (id, d2.sqrt(), key as u32)
                    }));
                }
            }
            out
        },
    );
    scatter(&found, n, k)
}

/// Lays out `(row, distance, neighbour)` triples, `k` consecutive ones per row, in row order.
fn scatter(found: &[(u32, f64, u32)], n: usize, k: usize) -> (Vec<f64>, Vec<u32>) {
    let mut dist = vec![0.0; n * k];
    let mut nbr = vec![0u32; n * k];
    for chunk in found.chunks_exact(k) {
        let id = chunk[0].0 as usize;
        for (j, &(_, d, o)) in chunk.iter().enumerate() {
            dist[id * k + j] = d;
            nbr[id * k + j] = o;
        }
    }
    (dist, nbr)
}

/// Centring and principal axes of the rows of `data` (Jacobi eigen-decomposition of the
/// covariance), axes by decreasing variance.
fn principal_rotation(data: &Matrix) -> Rotation {
    let dims = data.n_cols();
    let n = data.n_rows() as f64;
    let mut mean = vec![0.0; dims];
    for row in data.rows() {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    // Covariance (unscaled) as a GEMM: `Cᵀ · C` on the centred rows.
    let mut centred = Array2::<f64>::zeros((data.n_rows(), dims));
    for (mut out, row) in centred.rows_mut().into_iter().zip(data.rows()) {
        for ((o, x), m) in out.iter_mut().zip(row).zip(&mean) {
            *o = x - m;
        }
    }
    let mut cov = Array2::<f64>::zeros((dims, dims));
    general_mat_mul(1.0, &centred.t(), &centred, 0.0, &mut cov);
    let mut cov = cov.into_raw_vec_and_offset().0;
    // Exactly symmetric (the GEMM may sum the two triangles in different orders).
    for a in 0..dims {
        for b in 0..a {
            cov[a * dims + b] = cov[b * dims + a];
        }
    }
    let (values, vectors) = jacobi_eigen(cov, dims);
    let mut order: Vec<usize> = (0..dims).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    // Column `c` of `vectors` is an eigenvector; store it as row of `axes`.
    let axes = order
        .iter()
        .flat_map(|&c| (0..dims).map(move |r| (r, c)))
        .map(|(r, c)| vectors[r * dims + c])
        .collect();
    Rotation { mean, axes }
}

/// Eigenvalues and eigenvectors (columns of the row-major result) of the symmetric `d × d`
/// matrix `a`, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|p| (p + 1..d).map(move |q| (p, q)))
            .map(|(p, q)| a[p * d + q] * a[p * d + q])
            .sum();
        if off <= 1e-30 * scale || off == 0.0 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// `Σ term(i)²` for `i` in `0..len`, accumulated in four lanes (so the compiler can use SIMD)
/// that are combined the same way every time; returns early, with a partial sum above `bound`,
/// as soon as one is seen at a checkpoint. Point and box distances both go through here, so a
/// box distance (each term no larger) never exceeds the distance of a point inside the box,
/// and a partial sum never exceeds the full one.
#[inline(always)]
fn sum_squares(len: usize, bound: f64, term: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let full = len / 4 * 4;
    let mut i = 0;
    while i < full {
        for (lane, a) in acc.iter_mut().enumerate() {
            let t = term(i + lane);
            *a += t * t;
        }
        i += 4;
        let partial = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        if partial > bound {
            return partial;
        }
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for j in full..len {
        let t = term(j);
        sum += t * t;
    }
    sum
}

/// Squared Euclidean distance (the exact value every search uses).
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    sq_dist_bounded(a, b, f64::INFINITY)
}

/// [`sq_dist`], or a partial sum above `bound` once one is seen.
#[inline]
fn sq_dist_bounded(a: &[f64], b: &[f64], bound: f64) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    sum_squares(len, bound, |i| a[i] - b[i])
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Brute force reference: the k smallest (squared distance, index).
    fn brute(data: &Matrix, q: &[f64], k: usize, exclude: Option<u32>) -> Vec<(f64, u32)> {
        let mut all: Vec<(f64, u32)> = data
            .rows()
            .enumerate()
            .filter(|(i, _)| Some(*i as u32) != exclude)
            .map(|(i, r)| (sq_dist(q, r), i as u32))
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        all.truncate(k);
        all
    }

    fn random_rows(seed: u64, n: usize, dims: usize, grid: Option<u8>) -> Matrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                (0..dims)
                    .map(|_| match grid {
                        Some(g) => f64::from(rng.random_range(0..g)),
                        None => rng.random::<f64>(),
                    })
                    .collect()
            })
            .collect();
        Matrix::from_rows(&rows).unwrap()
    }

    /// Checks `all_knn` and `knn` against brute force: exactly without a rotation; with one,
    /// distances within rounding and every returned row truly among the nearest.
    fn check(data: &Matrix, k: usize, exact: bool) {
        let tree = KdTree::build(data);
        assert_eq!(tree.len(), data.n_rows());
        assert_eq!(tree.rotation.is_none(), exact);
        let (dist, nbr) = tree.all_knn(k);
        for (i, row) in data.rows().enumerate() {
            let want = brute(data, row, k, Some(i as u32));
            let got: Vec<(f64, u32)> = (0..k)
                .map(|j| (dist[i * k + j] * dist[i * k + j], nbr[i * k + j]))
                .collect();
            if exact {
                let want: Vec<(f64, u32)> =
                    want.iter().map(|&(d2, o)| (d2.sqrt().powi(2), o)).collect();
                assert_eq!(got, want, "row {i}");
            } else {
                let kth = want[k - 1].0;
                for (&(g, o), &(w, _)) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-9 * w.max(1.0), "row {i}: {g} vs {w}");
                    let true_d2 = sq_dist(row, data.row(o as usize));
                    assert!(true_d2 <= kth + 1e-9 * kth.max(1.0), "row {i}: {o} too far");
                    assert_ne!(o as usize, i);
                }
            }
        }
        let mut knn = Knn::new(k);
        let q: Vec<f64> = (0..data.n_cols()).map(|d| d as f64 * 0.37 - 1.0).collect();
        tree.knn(&q, &mut knn);
        let want = brute(data, &q, k, None);
        for (&(g, _), &(w, _)) in knn.items().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-9 * w.max(1.0));
        }
    }

    #[test]
    fn matches_brute_force_with_ties_and_duplicates() {
        // Integer coordinates in a small range: many equal distances and duplicate rows.
        check(&random_rows(1, 600, 3, Some(5)), 20, true);
    }

    #[test]
    fn matches_brute_force_continuous() {
        check(&random_rows(2, 1000, 7, None), 5, true);
    }

    #[test]
    fn matches_brute_force_rotated() {
        // Correlated columns: x, 2x + noise, ...
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let rows: Vec<Vec<f64>> = (0..500)
            .map(|_| {
                let x: f64 = rng.random();
                (0..12)
                    .map(|d| x * d as f64 + 0.1 * rng.random::<f64>())
                    .collect()
            })
            .collect();
        check(&Matrix::from_rows(&rows).unwrap(), 10, false);
        check(&random_rows(4, 400, 16, Some(3)), 20, false);
    }

    /// Brute force returns exactly the k smallest (exact squared distance, index) of the
    /// reference, whatever the dimension, the row order it is given, ties, duplicate groups
    /// larger than its compaction capacity, or a large offset (which the f32 screen must
    /// tolerate); without a rotation it equals the tree's result.
    #[test]
    fn brute_force_is_exact() {
        let offset = {
            let m = random_rows(7, 300, 5, None);
            let rows: Vec<Vec<f64>> = m
                .rows()
                .map(|r| r.iter().map(|x| 1e6 + x * 1e-3).collect())
                .collect();
            Matrix::from_rows(&rows).unwrap()
        };
        let duplicates = {
            let mut rows = vec![vec![1.0, 2.0, 3.0]; 150];
            let m = random_rows(8, 150, 3, Some(4));
            rows.extend(m.rows().map(<[f64]>::to_vec));
            Matrix::from_rows(&rows).unwrap()
        };
        let cases = [
            (random_rows(1, 600, 3, Some(5)), 20),
            (random_rows(2, 700, 7, None), 5),
            (random_rows(4, 400, 16, Some(3)), 20),
            (random_rows(5, 333, 37, None), 20),
            (random_rows(6, 30, 2, None), 29),
            // Several GEMM blocks and far runs, a partial last block, groups of ~28 equal rows.
            (random_rows(9, 1001, 2, Some(6)), 20),
            (offset, 10),
            (duplicates, 20),
        ];
        for (data, k) in cases {
            let n = data.n_rows();
            let tree = KdTree::build(&data);
            let identity: Vec<u32> = (0..n as u32).collect();
            let (dist, nbr) = brute_all_knn(&data, tree.order(), k);
            assert_eq!(
                brute_all_knn(&data, &identity, k),
                (dist.clone(), nbr.clone())
            );
            for (i, row) in data.rows().enumerate() {
                let want = brute(&data, row, k, Some(i as u32));
                let got: Vec<(f64, u32)> =
                    (0..k).map(|j| (dist[i * k + j], nbr[i * k + j])).collect();
                let want: Vec<(f64, u32)> = want.iter().map(|&(d2, o)| (d2.sqrt(), o)).collect();
                assert_eq!(got, want, "{n} x {}, row {i}", data.n_cols());
            }
            if tree.rotation.is_none() {
                assert_eq!(tree.all_knn(k), (dist, nbr));
            }
        }
    }

    #[test]
    fn jacobi_diagonalises() {
        let a = vec![4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];
        let (values, v) = jacobi_eigen(a.clone(), 3);
        // A v_c = λ_c v_c for every column c.
        for c in 0..3 {
            for r in 0..3 {
                let av: f64 = (0..3).map(|k| a[r * 3 + k] * v[k * 3 + c]).sum();
                assert!((av - values[c] * v[r * 3 + c]).abs() < 1e-10);
            }
        }
        let trace: f64 = values.iter().sum();
        assert!((trace - 12.0).abs() < 1e-10);
    }

    #[test]
    fn fewer_points_than_k() {
        let data = Matrix::from_rows(&[vec![0.0], vec![1.0], vec![3.0]]).unwrap();
        let tree = KdTree::build(&data);
        let mut knn = Knn::new(5);
        tree.knn(&[0.0], &mut knn);
        assert_eq!(knn.items(), &[(0.0, 0), (1.0, 1), (9.0, 2)]);
    }
}
