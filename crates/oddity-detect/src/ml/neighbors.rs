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
//!   724 ms per fit, interleaved A/B runs on the 2-vCPU VM. The rows of a group of more than k
//!   equal rows get the group's first k + 1 (less themselves) without a search, once the
//!   first row's search has shown that no other row ties with them ahead.
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
//! whenever the tree is not rotated. It needs no tree (the model builds its tree only to score
//! new rows, [`LazyKdTree`]):
//!
//! - **Layout.** Rows are centred and rotated onto their principal axes (from a 512-row sample,
//!   an f32 GEMM), put in a locality order ([`locality_order`]: the leaves of near-median splits)
//!   and packed in *panels* of as many rows as a SIMD register holds, coordinate by coordinate,
//!   each panel with its bounding box.
//! - **Screen.** A block of [`QUERY_BLOCK`] queries sweeps the panels: one fused multiply-add
//!   per coordinate and query gives `(1 − rel)‖y‖² − 2x·y` for a whole panel (`‖x‖² + ‖y‖² −
//!   2x·y` in `f32`), with a rigorous error bound, so each value is an interval `[lower, upper]`
//!   that holds the true squared distance. The instruction set is chosen at run time (AVX-512,
//!   AVX2+FMA or scalar) through `pulp`'s safe dispatch (the workspace forbids `unsafe`); the
//!   SIMD code avoids closures, which LLVM may compile apart from the instruction set.
//! - **Bounds.** The panels nearest to the block (by box centre, [`SEED_ROWS`] rows) go first:
//!   the k smallest of their upper ends start each query's bound, kept as a branch-free
//!   max-heap of the k smallest upper ends seen. A row is a candidate when its lower end is
//!   within its query's bound. A panel is left without computing it when its box is farther
//!   from the block's box than every query's bound, or after the head coordinates (95 % of the
//!   variance) when even the Cauchy–Schwarz bound on the rest keeps every row out: of the
//!   panels swept after the seeds, 69 % and 18 % on `satellite`, 12 % and 62 % on `cardio`.
//! - **Exact.** The candidates within the final bound (about k) get their exact `f64` distance,
//!   the same sum the tree computes, and each takes the place of its rank by (distance, index),
//!   a branch-free count of comparisons.
//! - **Threads.** Query blocks and the larger preparation steps run on rayon's pool, writing
//!   into buffers the calling thread allocated, with per-thread scratch kept between fits.
//!
//! Measured on the ODDS sets (2-vCPU Xeon with AVX-512, LOF fit on the training rows,
//! interleaved with earlier versions, best of 32 fits each): `satellite` (6 435 × 36) 11.9 ms,
//! `pendigits` (6 870 × 16) 9.8 ms, `thyroid` (3 772 × 6) 3.8 ms, `cardio` (1 831 × 21)
//! 2.4 ms, `breastw` (683 × 9) 0.58 ms (37.7, 24.7, 8.3, 4.7 and 0.88 ms with the
//! GEMM-and-scan search this one replaced). Of `cardio`'s 2.4 ms, ~0.42 run on one thread (the
//! axes, rotation, locality order and panels, and LOF's factors); of all CPU samples of
//! repeated `cardio` fits (perf), the per-query selection of the seed bound takes ~11 %, heap
//! updates ~9 %, the screen's multiply-adds ~12 %, exact distances ~5 %.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Matrix;
use super::common::{chunk_ranges, column_means, max_abs, sum_in_lanes, threads};

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
    /// its duplicates are), in tree order. `k` must be below the number of rows.
    pub(crate) fn all_knn(&self, k: usize) -> AllKnn {
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
        // Query in tree order (neighbouring queries share cache lines), one query per row,
        // each writing its neighbours in place: a row's place in that order is its place in
        // `members`.
        let mut dist = vec![0.0f64; n * k];
        let mut nbr = vec![0u32; n * k];
        let mut parts = Vec::new();
        let (mut dist_rest, mut nbr_rest) = (dist.as_mut_slice(), nbr.as_mut_slice());
        for range in chunk_ranges(distinct, 20 * k * self.dims.max(4)) {
            let len = (self.groups[range.end] - self.groups[range.start]) as usize * k;
            let (part_dist, rest) = std::mem::take(&mut dist_rest).split_at_mut(len);
            dist_rest = rest;
            let (part_nbr, rest) = std::mem::take(&mut nbr_rest).split_at_mut(len);
            nbr_rest = rest;
            parts.push((range, part_dist, part_nbr));
        }
        let search = |(range, dist, nbr): (std::ops::Range<usize>, &mut [f64], &mut [u32])| {
            let mut knn = Knn::new(k);
            let mut seeds: Vec<f64> = Vec::with_capacity(k + 1);
            let mut last: Option<u32> = None;
            let first = self.groups[range.start] as usize;
            for p in range {
                let q = point(p as u32);
                let rows = self.groups[p] as usize..self.groups[p + 1] as usize;
                let members = &self.members[rows.clone()];
                // More than k equal rows: when the first one's neighbours are the next k, no
                // other row lies at distance 0 with an index below the (k + 1)-th, so every
                // other member's are the first k + 1 less itself, without a search (3 329
                // copies of one row in `mammography`).
                let mut shortcut = false;
                for (i, (at, &id)) in rows.clone().zip(members).enumerate() {
                    if shortcut {
                        knn.items.clear();
                        let others = members[..=k].iter().filter(|&&o| o != id);
                        knn.items.extend(others.take(k).map(|&o| (0.0, o)));
                    } else {
                        // The previous query and its neighbours are near this one: the k-th
                        // smallest of their distances (computed exactly as the search
                        // computes them) bounds the search from the start.
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
                        shortcut = i == 0
                            && members.len() > k
                            && knn
                                .items()
                                .iter()
                                .map(|&(_, o)| o)
                                .eq(members[1..=k].iter().copied());
                    }
                    let slots = (at - first) * k..(at - first + 1) * k;
                    let slots = dist[slots.clone()].iter_mut().zip(&mut nbr[slots]);
                    for ((d, o), &(d2, id)) in slots.zip(knn.items()) {
                        *d = d2.sqrt();
                        *o = id;
                    }
                    last = Some(id);
                }
            }
        };
        if parts.len() == 1 {
            parts.into_iter().for_each(search);
        } else {
            parts.into_par_iter().for_each(search);
        }
        AllKnn {
            k,
            rows: self.members.clone(),
            dist,
            nbr,
        }
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

/// Share of the variance on the head coordinates of [`brute_all_knn`]'s screen.
const HEAD_VARIANCE: f64 = 0.95;

/// Rows sampled to find the principal axes of [`brute_all_knn`].
const ROTATION_SAMPLE: usize = 512;

/// Least work (in multiply-adds, roughly) worth a parallel task of [`brute_all_knn`]'s
/// preparation.
const PARALLEL_WORK: usize = 100_000;

/// Rows in the panels swept first, which set each query's initial bound.
const SEED_ROWS: usize = 128;

/// Queries screened together against each panel of reference rows: as many independent
/// multiply-add chains as it takes to keep the FMA units busy.
const QUERY_BLOCK: usize = 8;

/// Largest |value| for which the `f32` screen of [`brute_all_knn`] is used: squared norms of
/// centred rows stay far inside the `f32` range.
pub(crate) const SCREEN_MAX_ABS: f64 = 1e15;

/// Per-thread buffers of [`brute_all_knn`].
#[derive(Debug, Default)]
struct BruteScratch {
    /// The block's query rows, coordinate-major (`dims × QUERY_BLOCK`).
    queries: Vec<f32>,
    /// Per query of the block, a max-heap of the k smallest upper ends seen.
    heaps: Vec<f32>,
    /// Per query of the block, its candidates: (lower end, position).
    pools: Vec<Vec<(f32, u32)>>,
    /// Candidates' exact squared distances and row indices.
    exact_dist: Vec<f64>,
    exact_row: Vec<u64>,
    /// Per panel: lower bound on the squared distance from the block's box, and the
    /// squared distance between box centres.
    panel_lower: Vec<f32>,
    panel_key: Vec<f32>,
    /// Panels in sweep order.
    sweep: Vec<u64>,
    /// Per query, the lower and upper ends of the rows of the first panels swept.
    seed_lower: Vec<f32>,
    seed_upper: Vec<f32>,
}

/// `√tail` rounded up to an f32 with a margin (2⁻¹⁶ relative) for the rounding of the sums.
fn tail_norm(tail: f64) -> f32 {
    (tail.sqrt() * (1.0 + 2f64.powi(-16))) as f32
}

/// The data of [`brute_all_knn`], laid out for its screen.
struct BruteForce<'a> {
    data: &'a Matrix,
    order: &'a [u32],
    k: usize,
    n: usize,
    dims: usize,
    /// Reference rows per panel: the SIMD width.
    lanes: usize,
    /// Centred (perhaps rotated) rows, `f32`, row-major, in the original order.
    coords: Vec<f32>,
    /// Per panel of `lanes` rows (in `order`), per coordinate, the rows' values × −2.
    panels: Vec<f32>,
    /// `(1 − rel)‖y‖²` per position; infinite for the padding of the last panel.
    scaled: Vec<f32>,
    /// `‖y‖²` per position.
    norms: Vec<f32>,
    /// Coordinates screened before the rest ([`BruteForce::screen_panel`]; `dims` when none).
    head: usize,
    /// Per position, the norm of the coordinates after the head, rounded up.
    tails: Vec<f32>,
    /// Bounding boxes of the panels, coordinate-major (`dims × padded panel count`): lower
    /// and upper ends; padding panels have empty boxes (+∞, −∞).
    box_lo: Vec<f32>,
    box_hi: Vec<f32>,
    /// Largest `‖y‖²` per panel.
    panel_norm: Vec<f32>,
    /// Panel count, padded to whole SIMD registers.
    padded_panels: usize,

    /// Error bound of a screened value: `rel · (‖x‖² + ‖y‖²) + abs`.
    rel: f32,
    abs: f32,
    /// How far a squared box distance may exceed a true one, relative to the norms (plus
    /// 2⁻¹⁰ relative to itself).
    box_slack: f32,
}

/// SIMD width of the machine's best instruction set (pulp's `Arch`), in `f32`.
struct Lanes;

impl pulp::WithSimd for Lanes {
    type Output = usize;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> usize {
        S::F32_LANES
    }
}

/// One thread's share of [`brute_all_knn`]: blocks of queries, run with the SIMD instruction
/// set detected at run time.
struct BruteChunk<'a, 'b> {
    search: &'a BruteForce<'a>,
    scratch: &'b mut BruteScratch,
    blocks: std::ops::Range<usize>,
    /// Distances and neighbours, k per query, for the queries of `blocks` in position order.
    dist: &'b mut [f64],
    nbr: &'b mut [u32],
}

impl pulp::WithSimd for BruteChunk<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let per_block = QUERY_BLOCK * self.search.k;
        let blocks = self.blocks.zip(self.dist.chunks_mut(per_block));
        for ((b, dist), nbr) in blocks.zip(self.nbr.chunks_mut(per_block)) {
            self.search.query_block(simd, b, self.scratch, dist, nbr);
        }
    }
}

thread_local! {
    /// Buffers of [`brute_all_knn`], one set per thread (rayon's threads outlive a fit).
    static BRUTE_SCRATCH: std::cell::RefCell<BruteScratch> = std::cell::RefCell::default();
}

/// The lanes of a mask as bits (lane i → bit i).
#[inline(always)]
fn mask_bits<S: pulp::Simd>(simd: S, m: S::m32s) -> u32 {
    // AVX2: one `vmovmskps` (the generic lane-by-lane fold below costs ~20 instructions, and
    // the search extracts a mask per panel and query). The type test is resolved at compile
    // time.
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = (&simd as &dyn std::any::Any).downcast_ref::<pulp::x86::V3>() {
        let m: std::arch::x86_64::__m256 = pulp::bytemuck::cast(m);
        return v3.avx._mm256_movemask_ps(m) as u32;
    }
    let _ = simd;
    if const { std::mem::size_of::<S::m32s>() == std::mem::size_of::<S::u32s>() } {
        // One all-ones or all-zeros 32-bit lane per value.
        let lanes: S::u32s = pulp::bytemuck::cast(m);
        let lanes = pulp::bytemuck::cast_slice::<S::u32s, u32>(std::slice::from_ref(&lanes));
        lanes
            .iter()
            .enumerate()
            .fold(0, |bits, (j, &x)| bits | (x >> 31) << j)
    } else if const { std::mem::size_of::<S::m32s>() == 2 } {
        u32::from(pulp::bytemuck::cast::<S::m32s, u16>(m))
    } else {
        u32::from(pulp::bytemuck::cast::<S::m32s, u8>(m))
    }
}

/// Levels below the root of a heap of `k ≥ 1` values (⌊log₂ k⌋), and the length it is padded
/// to with −∞ (`2^(depth + 2)`, so that every value's children exist) for [`heapify`] and
/// [`heap_replace_top`].
fn heap_shape(k: usize) -> (u32, usize) {
    let depth = k.max(1).ilog2();
    (depth, 4 << depth)
}

/// Makes the first `k` values of `heap` a max-heap. Like [`heap_replace_top`], the heap is
/// shaped by [`heap_shape`] and each sift-down takes `depth` steps without a data-dependent
/// branch.
#[inline(always)]
fn heapify(heap: &mut [f32], k: usize, depth: u32) {
    for start in (0..k / 2).rev() {
        let mut at = start;
        for _ in 0..depth {
            let left = 2 * at + 1;
            let child = left + usize::from(heap[left + 1] > heap[left]);
            let (parent, larger) = (heap[at], heap[child]);
            let down = larger > parent;
            heap[at] = if down { larger } else { parent };
            heap[child] = if down { parent } else { larger };
            at = if down { child } else { at };
        }
    }
}

/// Replaces the largest value of the max-heap `heap` by `value` (smaller); returns the new
/// largest. The heap is shaped by [`heap_shape`], so that the sift-down can take `depth` steps
/// without a data-dependent branch (the comparisons are mispredicted half
/// the time, and a heap of k = 20 is replaced tens of times per query: 7–9 % of the search when
/// it was measured).
#[inline(always)]
fn heap_replace_top(heap: &mut [f32], depth: u32, value: f32) -> f32 {
    let mut at = 0;
    for _ in 0..depth {
        let left = 2 * at + 1;
        let child = left + usize::from(heap[left + 1] > heap[left]);
        let up = heap[child] > value;
        heap[at] = if up { heap[child] } else { heap[at] };
        at = if up { child } else { at };
    }
    heap[at] = value;
    heap[0]
}

impl BruteForce<'_> {
    /// The screened values of panel `p` for each query of the block (`queries`
    /// coordinate-major): `(1 − rel)‖y‖² − 2x·y` per lane. With `limit` (per query, the value
    /// at most which a row is a candidate, and `‖x_tail‖`), `None` when, after the head
    /// coordinates, even the Cauchy–Schwarz bound on the rest (`−2‖x_tail‖‖y_tail‖`) leaves
    /// every value above its query's limit; without, the panel is computed whole.
    #[inline(always)]
    fn screen_panel<S: pulp::Simd>(
        &self,
        simd: S,
        p: usize,
        queries: &[f32],
        limit: Option<(&[S::f32s; QUERY_BLOCK], &[f32; QUERY_BLOCK])>,
    ) -> Option<[S::f32s; QUERY_BLOCK]> {
        let (dims, lanes, head) = (self.dims, self.lanes, self.head);
        let panel = &self.panels[p * dims * lanes..(p + 1) * dims * lanes];
        let (base, _) = S::as_simd_f32s(&self.scaled[p * lanes..(p + 1) * lanes]);
        let mut acc = [base[0]; QUERY_BLOCK];
        let mut rows = panel
            .chunks_exact(lanes)
            .zip(queries.chunks_exact(QUERY_BLOCK));
        for (ys, xs) in rows.by_ref().take(head) {
            let (ys, _) = S::as_simd_f32s(ys);
            for (a, &x) in acc.iter_mut().zip(xs) {
                *a = simd.mul_add_e_f32s(simd.splat_f32s(x), ys[0], *a);
            }
        }
        if let Some((limit, query_tails)) = limit.filter(|_| head < dims) {
            let (tails, _) = S::as_simd_f32s(&self.tails[p * lanes..(p + 1) * lanes]);
            // Loops, not closures (`array::from_fn`, `fold`): a closure holding SIMD operations
            // may be compiled on its own, without the instruction set, and then call each
            // intrinsic as a function (2× slower).
            let rest = simd.splat_f32s(-2.0 * query_tails[0]);
            let least = simd.mul_add_e_f32s(rest, tails[0], acc[0]);
            let mut any = simd.less_than_or_equal_f32s(least, limit[0]);
            for q in 1..QUERY_BLOCK {
                let rest = simd.splat_f32s(-2.0 * query_tails[q]);
                let least = simd.mul_add_e_f32s(rest, tails[0], acc[q]);
                any = simd.or_m32s(any, simd.less_than_or_equal_f32s(least, limit[q]));
            }
            if mask_bits(simd, any) == 0 {
                return None;
            }
        }
        for (ys, xs) in rows {
            let (ys, _) = S::as_simd_f32s(ys);
            for (a, &x) in acc.iter_mut().zip(xs) {
                *a = simd.mul_add_e_f32s(simd.splat_f32s(x), ys[0], *a);
            }
        }
        Some(acc)
    }

    /// Finds the neighbours of the queries at positions `block · QUERY_BLOCK ..` (at most
    /// `QUERY_BLOCK`) and writes their distances and neighbours, k per query, to `dist` and `nbr`.
    #[inline(always)]
    fn query_block<S: pulp::Simd>(
        &self,
        simd: S,
        block: usize,
        scratch: &mut BruteScratch,
        dist: &mut [f64],
        nbr: &mut [u32],
    ) {
        let (n, k, dims, lanes) = (self.n, self.k, self.dims, self.lanes);
        let first = block * QUERY_BLOCK;
        let count = QUERY_BLOCK.min(n - first);
        let BruteScratch {
            queries,
            heaps,
            pools,
            exact_dist,
            exact_row,
            panel_lower,
            panel_key,
            sweep,
            seed_lower,
            seed_upper,
        } = scratch;
        // The queries coordinate-major (missing ones of a last, partial block are zeros).
        queries.clear();
        queries.resize(dims * QUERY_BLOCK, 0.0);
        let mut query_tails = [0.0f32; QUERY_BLOCK];
        for q in 0..count {
            query_tails[q] = self.tails[first + q];
            let id = self.order[first + q] as usize;
            let row = &self.coords[id * dims..(id + 1) * dims];
            for (c, &x) in row.iter().enumerate() {
                queries[c * QUERY_BLOCK + q] = x;
            }
        }
        let (heap_depth, heap_len) = heap_shape(k);
        heaps.clear();
        heaps.resize(QUERY_BLOCK * heap_len, f32::NEG_INFINITY);
        for q in 0..QUERY_BLOCK {
            heaps[q * heap_len..q * heap_len + k].fill(f32::MAX);
        }
        pools.resize_with(QUERY_BLOCK, Vec::new);
        pools.iter_mut().for_each(Vec::clear);
        // Lower end of a squared distance = `lower_offset + value`, where `value = (1 −
        // rel)‖y‖² − 2x·y` is what the screen computes; `limit` is the value at most which the
        // lower end is within the query's k-th smallest upper end (−∞ for missing queries).
        let mut lower_offset = [0.0f32; QUERY_BLOCK];
        let mut kth = [f32::MAX; QUERY_BLOCK];
        let mut limit = [simd.splat_f32s(f32::NEG_INFINITY); QUERY_BLOCK];
        for q in 0..count {
            lower_offset[q] = self.norms[first + q] * (1.0 - self.rel) - self.abs;
            limit[q] = simd.splat_f32s(f32::MAX);
        }
        let panels = self.panels.len() / (dims * lanes);
        // The block's box, and per panel the squared distance from it (a lower bound on every
        // pair's) and between box centres (the sweep order: nearest panels first, so the
        // bounds tighten early and far panels are skipped).
        let padded = self.padded_panels;
        panel_lower.clear();
        panel_lower.resize(padded, 0.0);
        panel_key.clear();
        panel_key.resize(padded, 0.0);
        let mut block_norm = 0.0f32;
        for q in 0..count {
            block_norm = block_norm.max(self.norms[first + q]);
        }
        {
            let (lower, _) = S::as_mut_simd_f32s(panel_lower);
            let (key, _) = S::as_mut_simd_f32s(panel_key);
            let zero = simd.splat_f32s(0.0);
            let half = simd.splat_f32s(0.5);
            for c in 0..dims {
                let xs = &queries[c * QUERY_BLOCK..c * QUERY_BLOCK + count];
                let (qlo, qhi) = xs
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                        (if x < l { x } else { l }, if x > h { x } else { h })
                    });
                let (qlo_v, qhi_v) = (simd.splat_f32s(qlo), simd.splat_f32s(qhi));
                let qmid = simd.splat_f32s(0.5 * (qlo + qhi));
                let (los, _) = S::as_simd_f32s(&self.box_lo[c * padded..(c + 1) * padded]);
                let (his, _) = S::as_simd_f32s(&self.box_hi[c * padded..(c + 1) * padded]);
                for (((l, k), &plo), &phi) in lower.iter_mut().zip(key.iter_mut()).zip(los).zip(his)
                {
                    let gap = simd.max_f32s(
                        simd.max_f32s(simd.sub_f32s(qlo_v, phi), simd.sub_f32s(plo, qhi_v)),
                        zero,
                    );
                    *l = simd.mul_add_e_f32s(gap, gap, *l);
                    let mid = simd.mul_f32s(simd.add_f32s(plo, phi), half);
                    let d = simd.sub_f32s(mid, qmid);
                    *k = simd.mul_add_e_f32s(d, d, *k);
                }
            }
        }
        // The panels nearest to the block first (about SEED_ROWS rows): every value of theirs
        // is kept, and the k-th smallest upper end among them starts each query's bound.
        let first_panels = (SEED_ROWS / lanes).clamp(1, panels);
        sweep.clear();
        sweep.extend((0..panels).map(|p| u64::from(panel_key[p].to_bits()) << 32 | p as u64));
        if panels > first_panels {
            sweep.select_nth_unstable(first_panels);
        }
        let seeded = first_panels * lanes;
        seed_lower.clear();
        seed_lower.resize(QUERY_BLOCK * seeded, f32::INFINITY);
        seed_upper.clear();
        seed_upper.resize(QUERY_BLOCK * seeded, f32::INFINITY);
        let two_abs = simd.splat_f32s(2.0 * self.abs);
        let two_rel = simd.splat_f32s(2.0 * self.rel);
        for (f, &key) in sweep[..first_panels].iter().enumerate() {
            let p = key as u32 as usize;
            let Some(acc) = self.screen_panel(simd, p, queries, None) else {
                unreachable!("without limits no panel is left early")
            };
            let (norms, _) = S::as_simd_f32s(&self.norms[p * lanes..(p + 1) * lanes]);
            for q in 0..count {
                let lower = simd.add_f32s(acc[q], simd.splat_f32s(lower_offset[q]));
                // upper = lower + 2·(rel·(‖x‖² + ‖y‖²) + abs)
                let band = simd.mul_add_e_f32s(
                    two_rel,
                    simd.add_f32s(norms[0], simd.splat_f32s(self.norms[first + q])),
                    two_abs,
                );
                let at = q * seeded + f * lanes;
                let (lo, _) = S::as_mut_simd_f32s(&mut seed_lower[at..at + lanes]);
                lo[0] = lower;
                // Upper ends are not negative (each is at least a squared distance; the max
                // only guards rounding), so their bits order as they do: they are selected as
                // integers below, faster than with `total_cmp`.
                let (up, _) = S::as_mut_simd_f32s(&mut seed_upper[at..at + lanes]);
                up[0] = simd.max_f32s(simd.add_f32s(lower, band), simd.splat_f32s(0.0));
                // A query is not its own neighbour.
                if (first + q) / lanes == p {
                    let lane = (first + q) % lanes;
                    seed_lower[at + lane] = f32::INFINITY;
                    seed_upper[at + lane] = f32::INFINITY;
                }
            }
        }
        for q in 0..count {
            let heap = &mut heaps[q * heap_len..(q + 1) * heap_len];
            // The k smallest upper ends make the heap (∞ for missing rows → MAX).
            let uppers = pulp::bytemuck::cast_slice_mut::<f32, u32>(
                &mut seed_upper[q * seeded..(q + 1) * seeded],
            );
            if uppers.len() > k {
                uppers.select_nth_unstable(k - 1);
            }
            let smallest = k.min(seeded);
            for (h, &bits) in heap.iter_mut().zip(&uppers[..smallest]) {
                *h = f32::from_bits(bits).min(f32::MAX);
            }
            heapify(heap, k, heap_depth);
            kth[q] = heap[0];
            // Candidates: every row of those panels whose lower end is within the bound.
            let bound = simd.splat_f32s(kth[q]);
            let (lowers, _) = S::as_simd_f32s(&seed_lower[q * seeded..(q + 1) * seeded]);
            for (v, &l) in lowers.iter().enumerate() {
                let mut bits = mask_bits(simd, simd.less_than_or_equal_f32s(l, bound));
                while bits != 0 {
                    let lane = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let j = (sweep[v] as u32 as usize * lanes + lane) as u32;
                    pools[q].push((seed_lower[q * seeded + v * lanes + lane], j));
                }
            }
            limit[q] = simd.splat_f32s(kth[q] - lower_offset[q]);
        }
        let mut max_kth = kth[..count]
            .iter()
            .fold(0.0f32, |m, &v| if v > m { v } else { m });
        let mut values = [0.0f32; 64];
        for &key in sweep[first_panels..].iter() {
            let p = key as u32 as usize;
            // Every pair with a row of the panel is farther than every query's bound: skip.
            // (The boxes hold the computed coordinates, each row within c‖x‖ of its exact
            // rotation; so a squared box distance exceeds the true squared distance D² of any
            // pair by at most 2⁻¹⁰·D² + 2050·c²·(‖x‖² + ‖y‖²): `box_slack`.)
            let slack = self.box_slack * (block_norm + self.panel_norm[p]);
            if panel_lower[p] * (1.0 - 2f32.powi(-9)) - slack > max_kth {
                continue;
            }
            let Some(acc) = self.screen_panel(simd, p, queries, Some((&limit, &query_tails)))
            else {
                continue;
            };
            let mut pass = [simd.less_than_or_equal_f32s(acc[0], limit[0]); QUERY_BLOCK];
            let mut any = pass[0];
            for q in 1..QUERY_BLOCK {
                pass[q] = simd.less_than_or_equal_f32s(acc[q], limit[q]);
                any = simd.or_m32s(any, pass[q]);
            }
            if mask_bits(simd, any) == 0 {
                continue;
            }
            for q in 0..count {
                let mut bits = mask_bits(simd, pass[q]);
                if bits == 0 {
                    continue;
                }
                let (stored, _) = S::as_mut_simd_f32s(&mut values[..lanes]);
                stored[0] = acc[q];
                let i = first + q;
                let heap = &mut heaps[q * heap_len..(q + 1) * heap_len];
                let pool = &mut pools[q];
                let ni = self.norms[i];
                while bits != 0 {
                    let lane = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let j = p * lanes + lane;
                    if j == i || j >= n {
                        continue;
                    }
                    let lower = lower_offset[q] + values[lane];
                    let upper = lower + 2.0 * (self.rel * (ni + self.norms[j]) + self.abs);
                    if upper < kth[q] {
                        kth[q] = heap_replace_top(heap, heap_depth, upper);
                    }
                    pool.push((lower, j as u32));
                }
                if pool.len() >= 8 * k + 64 {
                    let bound = kth[q];
                    pool.retain(|c| c.0 <= bound);
                }
                limit[q] = simd.splat_f32s(kth[q] - lower_offset[q]);
            }
            max_kth = kth[..count]
                .iter()
                .fold(0.0, |m, &v| if v > m { v } else { m });
        }
        // Exact distances of the candidates within the final bounds; the k smallest by
        // (distance, index), each placed by its rank among them: a count of comparisons
        // without branches, which vectorises (a selection and a sort of the ~k candidates
        // cost twice as much, most of it in mispredicted branches).
        for q in 0..count {
            let id = self.order[first + q];
            let row = self.data.row(id as usize);
            let bound = kth[q];
            exact_dist.clear();
            exact_row.clear();
            // A loop, not `extend`: this way it is compiled for the SIMD instruction set.
            for &(lower, j) in &pools[q] {
                if lower <= bound {
                    let o = self.order[j as usize];
                    exact_dist.push(sq_dist_full(row, self.data.row(o as usize)));
                    exact_row.push(u64::from(o));
                }
            }
            // At least k rows have their upper end within the bound, so their lower ends are.
            debug_assert!(exact_dist.len() >= k, "fewer than k candidates");
            let (dist, nbr) = (&mut dist[q * k..(q + 1) * k], &mut nbr[q * k..(q + 1) * k]);
            for (&d2, &o) in exact_dist.iter().zip(exact_row.iter()) {
                let mut rank = 0;
                for (&e, &p) in exact_dist.iter().zip(exact_row.iter()) {
                    rank += usize::from((e < d2) | ((e == d2) & (p < o)));
                }
                if rank < k {
                    dist[rank] = d2.sqrt();
                    nbr[rank] = o as u32;
                }
            }
        }
    }
}

/// [`KdTree::all_knn`] by comparing every pair of rows: the same result (exact squared
/// distances, ties by row index) without a tree, for small data. `order` lists every row once;
/// rows near each other in it should be near in space (the tree order), so that bounds tighten
/// early. Every |value| must be at most [`SCREEN_MAX_ABS`].
///
/// Distances are screened in `f32` with `‖x‖² + ‖y‖² − 2x·y` on centred rows. Each screened
/// value `a` comes with a rigorous error bound `e` (see below; it holds for any summation
/// order and for fused multiply-adds), so the true squared distance lies in `[a − e, a + e]`.
/// A row keeps every candidate whose lower end is at most the k-th smallest upper end seen so
/// far (at least k rows are that close, so no true neighbour is dropped, ties included); the
/// few survivors get their exact `f64` distance, the same sum the tree computes, and are
/// sorted by (distance, index).
///
/// The screen is one pass per block of [`QUERY_BLOCK`] queries over panels of reference rows
/// as wide as the SIMD registers (AVX-512, AVX2 or scalar, chosen at run time by `pulp`): a
/// multiply-add per coordinate and query, a comparison per query and panel, and nothing
/// written to memory but the few values that pass.
pub(crate) fn brute_all_knn(data: &Matrix, k: usize) -> AllKnn {
    brute_all_knn_on(pulp::Arch::new(), data, k)
}

/// [`brute_all_knn`] with the SIMD instruction set `arch`.
fn brute_all_knn_on(arch: pulp::Arch, data: &Matrix, k: usize) -> AllKnn {
    let n = data.n_rows();
    let dims = data.n_cols();
    let lanes = arch.dispatch(Lanes);
    let max_abs = max_abs(data.as_slice());

    // Centred rows in f32, rotated onto their principal axes: the leading coordinates carry
    // most of each distance, so panels of rows near in the locality order have tight boxes
    // (`satellite`: 65 % of the panels skipped by their box against 53 % unrotated), and the screen can
    // drop a panel after its head coordinates.
    let mean = column_means(data);
    let rotation = (dims >= 2).then(|| principal_axes(data, &mean, ROTATION_SAMPLE, 1e-4));
    // The head: the leading axes that carry HEAD_VARIANCE of the variance. A panel none of
    // whose rows can be within a query's bound given those coordinates alone (and the rest's
    // norms, by Cauchy–Schwarz) is left there.
    let head = rotation.as_ref().map_or(dims, |(_, variances)| {
        let total: f64 = variances.iter().sum();
        let mut sum = 0.0;
        let head = variances
            .iter()
            .position(|v| {
                sum += v;
                sum >= HEAD_VARIANCE * total
            })
            .map_or(dims, |at| at + 1);
        if head + 4 <= dims { head } else { dims }
    });
    let rotation = rotation.map(|(axes, _)| axes);
    let coords: Vec<f32> = match &rotation {
        Some(axes) => {
            // An f32 GEMM (its error is in `rel` below).
            let axes: Vec<f32> = axes.iter().map(|&a| a as f32).collect();
            let axes = ArrayView2::from_shape((dims, dims), &axes)
                .unwrap_or_else(|_| unreachable!("the axes are dims × dims"));
            let mut coords = vec![0.0f32; n * dims];
            // Tasks of at least PARALLEL_WORK multiply-adds (waking a thread costs more).
            let rows_per_task = n
                .div_ceil(4 * threads())
                .max(PARALLEL_WORK / (dims * dims).max(1));
            coords
                .par_chunks_mut(rows_per_task * dims)
                .enumerate()
                .for_each(|(t, out)| {
                    let first = t * rows_per_task;
                    let rows = out.len() / dims;
                    let mut centred = Array2::<f32>::zeros((rows, dims));
                    for (mut row, i) in centred.rows_mut().into_iter().zip(first..) {
                        for ((o, x), m) in row.iter_mut().zip(data.row(i)).zip(&mean) {
                            *o = (x - m) as f32;
                        }
                    }
                    let mut out = ArrayViewMut2::from_shape((rows, dims), out)
                        .unwrap_or_else(|_| unreachable!("whole rows"));
                    general_mat_mul(1.0, &centred, &axes.t(), 0.0, &mut out);
                });
            coords
        }
        None => data
            .rows()
            .flat_map(|row| row.iter().zip(&mean).map(|(x, m)| (x - m) as f32))
            .collect(),
    };
    let orth = rotation
        .as_ref()
        .map_or(0.0, |axes| orthogonality_error(axes, dims));
    let order = locality_order(&coords, dims, LOCALITY_LEAF);

    // Error bound of a screened value, `rel · (‖x‖² + ‖y‖²) + abs`. With u = 2⁻²⁴, rounding the
    // centred values to f32 moves a squared distance by at most 4u(‖x‖² + ‖y‖²), the f32 dot
    // product by d·u(‖x‖² + ‖y‖²)/2 (doubled), the norms and the final sum by 4u(‖x‖² + ‖y‖²):
    // (d + 8)u in all, taken 4× here. A rotation moves each row by at most c‖x‖, c = (d^1.5 +
    // √d + 1)u (its f32 GEMM: d·u‖x‖ per coordinate; the axes rounded to f32: √d·u‖x‖; its
    // rounded input: u‖x‖), hence squared distances by at most 4c(‖x‖² + ‖y‖²), taken 2×;
    // axes whose `AᵀA` is within ε of the identity add 2ε(‖x‖² + ‖y‖²), taken 4×. `abs` covers
    // the f64 centring, whose error is relative to the raw values (2⁻⁵² max|x| per coordinate),
    // again with a wide margin.
    let u = 2f64.powi(-24);
    let c = ((dims as f64).powf(1.5) + (dims as f64).sqrt() + 1.0) * u;
    let rotation_error = if rotation.is_some() {
        8.0 * c + 8.0 * orth
    } else {
        0.0
    };
    let rel = ((dims as f64 + 8.0) * 4.0 * u + rotation_error) as f32;
    // A computed row lies within c‖x‖ of the exact (rotated) one; a pair's distance in computed
    // coordinates then exceeds the true one by at most E = c(‖x‖ + ‖y‖) (plus the rotation's ε,
    // negligible), and (D + E)² ≤ (1 + 2⁻¹⁰)D² + 1025E² ≤ (1 + 2⁻¹⁰)D² + 2050c²(‖x‖² + ‖y‖²);
    // taken 2× here.
    let box_slack = (4100.0 * c * c) as f32;
    let abs = (dims as f64 * 2f64.powi(-46) * max_abs * max_abs) as f32 * 2.0;

    // Panels in parallel, each written in place (a worker's results freed by another thread
    // leave the allocator fresh pages to touch at the next fit): the rows (× −2) lane by lane,
    // each row's squared norm and tail norm, each panel's box and largest norm.
    let panels = n.div_ceil(lanes);
    let mut packed = vec![0.0f32; panels * dims * lanes];
    let mut norms = vec![f32::INFINITY; panels * lanes];
    let mut tails = vec![0.0f32; panels * lanes];
    // Per panel: box lower ends, upper ends, largest norm.
    let mut meta = vec![0.0f32; panels * (2 * dims + 1)];
    packed
        .par_chunks_mut(dims * lanes)
        .zip(norms.par_chunks_mut(lanes))
        .zip(tails.par_chunks_mut(lanes))
        .zip(meta.par_chunks_mut(2 * dims + 1))
        .enumerate()
        .with_min_len(PARALLEL_WORK / (dims * lanes).max(1))
        .for_each(|(p, (((packed, norms), tails), meta))| {
            let (lo, rest) = meta.split_at_mut(dims);
            let (hi, most) = rest.split_at_mut(dims);
            most[0] = 0.0;
            let filled = lanes.min(n - p * lanes);
            for (lane, &id) in order[p * lanes..p * lanes + filled].iter().enumerate() {
                let row = &coords[id as usize * dims..(id as usize + 1) * dims];
                for (c, &v) in row.iter().enumerate() {
                    packed[c * lanes + lane] = -2.0 * v;
                }
                let square = |c: usize| f64::from(row[c]) * f64::from(row[c]);
                let tail = sum_in_lanes(dims - head, |c| square(head + c));
                let norm = sum_in_lanes(head, square) + tail;
                norms[lane] = norm as f32;
                tails[lane] = tail_norm(tail);
                most[0] = most[0].max(norm as f32);
            }
            // The box from the packed values (−2v, exact), coordinate by coordinate over
            // contiguous lanes (a running min and max per row, through memory: 59 µs instead
            // of 45 for this loop on `cardio`).
            for (c, (lo, hi)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let (least, largest) = packed[c * lanes..c * lanes + filled]
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                        (if x < l { x } else { l }, if x > h { x } else { h })
                    });
                *lo = -0.5 * largest;
                *hi = -0.5 * least;
            }
        });
    let padded_panels = panels.div_ceil(lanes) * lanes;
    let mut box_lo = vec![f32::INFINITY; dims * padded_panels];
    let mut box_hi = vec![f32::NEG_INFINITY; dims * padded_panels];
    let mut panel_norm = vec![0.0f32; padded_panels];
    for (p, meta) in meta.chunks_exact(2 * dims + 1).enumerate() {
        for c in 0..dims {
            box_lo[c * padded_panels + p] = meta[c];
            box_hi[c * padded_panels + p] = meta[dims + c];
        }
        panel_norm[p] = meta[2 * dims];
    }
    let scaled: Vec<f32> = norms.iter().map(|&v| v * (1.0 - rel)).collect();
    let search = BruteForce {
        data,
        order: &order,
        k,
        n,
        dims,
        lanes,
        coords,
        panels: packed,
        scaled,
        norms,
        head,
        tails,
        box_lo,
        box_hi,
        panel_norm,
        padded_panels,
        rel,
        abs,
        box_slack,
    };
    // Blocks of queries in parallel, each writing its neighbours in place (by position), with
    // per-thread buffers kept from one fit to the next; 16 tasks per thread, so that the
    // threads finish close together (4 per thread: `cardio` 2.6 ms instead of 2.55).
    let blocks = n.div_ceil(QUERY_BLOCK);
    let blocks_per_task = blocks.div_ceil(16 * threads()).max(1);
    let per_task = (blocks_per_task * QUERY_BLOCK * k).max(1);
    let mut dist = vec![0.0f64; n * k];
    let mut nbr = vec![0u32; n * k];
    dist.par_chunks_mut(per_task)
        .zip(nbr.par_chunks_mut(per_task))
        .enumerate()
        .for_each(|(t, (dist, nbr))| {
            BRUTE_SCRATCH.with_borrow_mut(|scratch| {
                let first = t * blocks_per_task;
                arch.dispatch(BruteChunk {
                    search: &search,
                    scratch,
                    blocks: first..(first + blocks_per_task).min(blocks),
                    dist,
                    nbr,
                });
            });
        });
    AllKnn {
        k,
        rows: order,
        dist,
        nbr,
    }
}

/// Rows on which [`split_once`] judges the widest coordinate.
const SPREAD_SAMPLE: usize = 32;

/// Leaf size of [`locality_order`] for [`brute_all_knn`].
const LOCALITY_LEAF: usize = 16;

/// The most rows sharing one value (rows compared by the bits of their values, `-0.0` as
/// `0.0`, through a 64-bit hash: a collision can only overstate it). A row's hash is the sum
/// of its values' hashes, each mixed with its column: no chain from one value to the next, so
/// the values are hashed in SIMD lanes (a chained hash took 60 µs on `cardio`'s 1 831 × 21).
pub(crate) fn largest_equal_group(data: &Matrix) -> usize {
    let mut hashes: Vec<u64> = data
        .rows()
        .map(|row| {
            let mut sum = 0u64;
            for (c, &x) in row.iter().enumerate() {
                // `+ 0.0` makes -0.0 +0.0; the value offset by its column, one multiply and
                // a shift to mix its high bits into the low ones.
                let bits = (x + 0.0).to_bits();
                let h = (bits ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .wrapping_mul(0xbf58_476d_1ce4_e5b9);
                sum = sum.wrapping_add(h ^ (h >> 29));
            }
            sum
        })
        .collect();
    hashes.sort_unstable();
    hashes
        .chunk_by(|a, b| a == b)
        .map(<[u64]>::len)
        .max()
        .unwrap_or(0)
}

/// A [`KdTree`] built on first use from a copy of the training rows (a model whose training
/// neighbours came from [`brute_all_knn`] needs it only to score new rows). Serialises as the
/// tree, building it if needed, so stored models keep their form.
#[derive(Debug, Clone)]
pub(crate) struct LazyKdTree {
    rows: Option<Box<Matrix>>,
    tree: std::sync::OnceLock<Box<KdTree>>,
}

impl LazyKdTree {
    /// A tree to build from `data` when first needed.
    pub(crate) fn later(data: &Matrix) -> Self {
        LazyKdTree {
            rows: Some(Box::new(data.clone())),
            tree: std::sync::OnceLock::new(),
        }
    }

    /// A tree already built.
    pub(crate) fn built(tree: KdTree) -> Self {
        LazyKdTree {
            rows: None,
            tree: std::sync::OnceLock::from(Box::new(tree)),
        }
    }

    /// The tree, built now if it was not yet.
    pub(crate) fn get(&self) -> &KdTree {
        self.tree.get_or_init(|| match &self.rows {
            Some(rows) => Box::new(KdTree::build(rows)),
            None => unreachable!("a lazy tree has either its rows or its tree"),
        })
    }
}

impl PartialEq for LazyKdTree {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for LazyKdTree {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LazyKdTree {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        KdTree::deserialize(deserializer).map(LazyKdTree::built)
    }
}

/// An order of the rows of `data` in which rows near each other tend to be near in space: the
/// leaves, left to right, of a tree of (near-)median splits on the widest coordinate (a KD-tree's
/// order, without building the tree). Leaves hold at most `leaf` rows.
pub(crate) fn locality_order(coords: &[f32], dims: usize, leaf: usize) -> Vec<u32> {
    let n = coords.len() / dims.max(1);
    let mut order: Vec<u32> = (0..n as u32).collect();
    // The first split, then the halves in parallel when both are worth a task.
    if n * dims < PARALLEL_WORK || threads() < 2 {
        split_in_order(&mut order, coords, dims, leaf);
        return order;
    }
    let mid = split_once(&mut order, coords, dims, &mut Vec::with_capacity(n)).unwrap_or(0);
    let (left, right) = order.split_at_mut(mid);
    rayon::join(
        || split_in_order(left, coords, dims, leaf),
        || split_in_order(right, coords, dims, leaf),
    );
    order
}

/// Splits `ids` about the median of their widest coordinate (the lower part first); returns the
/// split position, or `None` when all of them are equal. Any split is correct (the order only
/// makes the search faster), so both the widest coordinate and the median are judged on at
/// most [`SPREAD_SAMPLE`] of the rows, and the rows are partitioned about that median in one
/// branch-free pass. On `cardio` the whole order took 79 µs instead of 90 with 64-row samples
/// and an exact median, and the search after it 2 % fewer instructions (32 rows judge the
/// split as well as 64; 16 rows cost the search 3 %).
fn split_once(
    ids: &mut [u32],
    coords: &[f32],
    dims: usize,
    scratch: &mut Vec<u32>,
) -> Option<usize> {
    let row = |id: u32| &coords[id as usize * dims..(id as usize + 1) * dims];
    let mut lo = vec![f32::INFINITY; dims];
    let mut hi = vec![f32::NEG_INFINITY; dims];
    let stride = ids.len().div_ceil(SPREAD_SAMPLE).max(1);
    for &id in ids.iter().step_by(stride) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row(id)) {
            *l = if v < *l { v } else { *l };
            *h = if v > *h { v } else { *h };
        }
    }
    let (split, spread) = (0..dims)
        .map(|d| (d, hi[d] - lo[d]))
        .fold((0, 0.0), |best, c| if c.1 > best.1 { c } else { best });
    if spread <= 0.0 || ids.len() < 2 {
        // The sample may miss the spread of a part of many rows: all equal only if all are.
        if stride == 1 || ids.iter().all(|&id| row(id) == row(ids[0])) {
            return None;
        }
    }
    let mut sample: Vec<f32> = ids
        .iter()
        .step_by(stride)
        .map(|&id| row(id)[split])
        .collect();
    let half = sample.len() / 2;
    let pivot = *sample.select_nth_unstable_by(half, f32::total_cmp).1;
    // Rows below the pivot to the front, the others to the back: each row is written at both
    // ends and the end it belongs to advances. With `<=` when nothing is below (the pivot is
    // the sample's least value); halves in the given order when that fails too (the sample saw
    // no spread on this coordinate).
    scratch.clear();
    scratch.resize(ids.len(), 0);
    for inclusive in [false, true] {
        let (mut front, mut back) = (0, ids.len());
        for &id in ids.iter() {
            let v = row(id)[split];
            let below = v < pivot || (inclusive && v == pivot);
            scratch[front] = id;
            scratch[back - 1] = id;
            front += usize::from(below);
            back -= usize::from(!below);
        }
        if front > 0 && front < ids.len() {
            ids.copy_from_slice(scratch);
            return Some(front);
        }
    }
    Some(ids.len() / 2)
}

/// Splits `ids` recursively ([`split_once`]) until at most `leaf` remain in a part.
fn split_in_order(ids: &mut [u32], coords: &[f32], dims: usize, leaf: usize) {
    let mut scratch = Vec::with_capacity(ids.len());
    let mut stack = vec![(0usize, ids.len())];
    while let Some((start, end)) = stack.pop() {
        if end - start <= leaf.max(1) {
            continue;
        }
        if let Some(mid) = split_once(&mut ids[start..end], coords, dims, &mut scratch) {
            stack.push((start + mid, end));
            stack.push((start, start + mid));
        }
    }
}

/// The `k` nearest neighbours of every training row ([`KdTree::all_knn`],
/// [`brute_all_knn`]), row after row in the order of `rows`: each search's own order (laying
/// them out by row index would cost a pass over all n·k entries that LOF does not need).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AllKnn {
    pub(crate) k: usize,
    /// Every row once.
    pub(crate) rows: Vec<u32>,
    /// Per row of `rows`, `k` neighbour distances (not squared), ascending by (distance, index).
    pub(crate) dist: Vec<f64>,
    /// Per row of `rows`, the `k` neighbours' row indices, in the order of `dist`.
    pub(crate) nbr: Vec<u32>,
}

impl AllKnn {
    /// Distances and neighbours laid out by row index, `k` per row.
    #[cfg(test)]
    pub(crate) fn by_row(&self) -> (Vec<f64>, Vec<u32>) {
        let k = self.k;
        let mut dist = vec![0.0; self.dist.len()];
        let mut nbr = vec![0u32; self.nbr.len()];
        for (p, &id) in self.rows.iter().enumerate() {
            let (to, from) = (id as usize * k..(id as usize + 1) * k, p * k..(p + 1) * k);
            dist[to.clone()].copy_from_slice(&self.dist[from.clone()]);
            nbr[to].copy_from_slice(&self.nbr[from]);
        }
        (dist, nbr)
    }
}

/// Centring and principal axes of the rows of `data` (Jacobi eigen-decomposition of the
/// covariance), axes by decreasing variance.
fn principal_rotation(data: &Matrix) -> Rotation {
    let mean = column_means(data);
    let (axes, _) = principal_axes(data, &mean, usize::MAX, 1e-30);
    Rotation { mean, axes }
}

/// Principal axes of the rows of `data` around `mean` (row-major `dims × dims`, by decreasing
/// variance) and the variance along each (unscaled), from at most `max_rows` rows taken at an
/// even stride (any orthogonal axes are correct; a sample finds good ones for less).
fn principal_axes(
    data: &Matrix,
    mean: &[f64],
    max_rows: usize,
    tolerance: f64,
) -> (Vec<f64>, Vec<f64>) {
    let dims = data.n_cols();
    let n = data.n_rows();
    let stride = n.div_ceil(max_rows.max(1)).max(1);
    let rows = n.div_ceil(stride);
    // Covariance (unscaled) as a GEMM: `Cᵀ · C` on the centred rows.
    let mut centred = Array2::<f64>::zeros((rows, dims));
    for (mut out, i) in centred.rows_mut().into_iter().zip((0..n).step_by(stride)) {
        for ((o, x), m) in out.iter_mut().zip(data.row(i)).zip(mean) {
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
    let (values, vectors) = jacobi_eigen(cov, dims, tolerance);
    let mut order: Vec<usize> = (0..dims).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let axes = order
        .iter()
        .flat_map(|&c| &vectors[c * dims..(c + 1) * dims])
        .copied()
        .collect();
    let variances = order.iter().map(|&c| values[c].max(0.0)).collect();
    (axes, variances)
}

/// `d · max |(A·Aᵀ − I)_ab|` for the rows of `axes` (d × d): a bound on the spectral norm of
/// `AᵀA − I`, i.e. on how far the rotation is from preserving squared lengths, relative to them.
fn orthogonality_error(axes: &[f64], dims: usize) -> f64 {
    let mut worst = 0.0f64;
    for a in 0..dims {
        for b in 0..dims {
            let dot: f64 = (0..dims)
                .map(|c| axes[a * dims + c] * axes[b * dims + c])
                .sum();
            let want = if a == b { 1.0 } else { 0.0 };
            worst = worst.max((dot - want).abs());
        }
    }
    worst * dims as f64
}

/// Eigenvalues and eigenvectors (the rows of the second result, row-major `d × d`) of the
/// symmetric `d × d` matrix `a`, by cyclic Jacobi rotations. A rotation of rows and columns
/// `p`, `q` updates the two rows (contiguous, so in SIMD lanes), sets the 2 × 2 block by the
/// closed forms, and mirrors the rows into the columns (the result is symmetric); the
/// eigenvectors are kept as rows for the same reason.
fn jacobi_eigen(mut a: Vec<f64>, d: usize, tolerance: f64) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum();
    // Rows p and q of `m` rotated: p ← c·p − s·q, q ← s·p + c·q.
    let rotate = |m: &mut [f64], p: usize, q: usize, c: f64, s: f64| {
        let (head, tail) = m.split_at_mut(q * d);
        let row_p = &mut head[p * d..(p + 1) * d];
        for (x, y) in row_p.iter_mut().zip(&mut tail[..d]) {
            let (xp, xq) = (*x, *y);
            *x = c * xp - s * xq;
            *y = s * xp + c * xq;
        }
    };
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|p| (p + 1..d).map(move |q| (p, q)))
            .map(|(p, q)| a[p * d + q] * a[p * d + q])
            .sum();
        if off <= tolerance * scale || off == 0.0 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (a[p * d + p], a[q * d + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                rotate(&mut a, p, q, c, s);
                rotate(&mut v, p, q, c, s);
                a[p * d + p] = app - t * apq;
                a[q * d + q] = aqq + t * apq;
                a[p * d + q] = 0.0;
                a[q * d + p] = 0.0;
                for k in 0..d {
                    if k != p && k != q {
                        a[k * d + p] = a[p * d + k];
                        a[k * d + q] = a[q * d + k];
                    }
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

/// [`sq_dist`] without the early-exit checks of [`sum_squares`], the same sums in the same
/// order (so the same value, bit for bit), which the compiler can vectorise.
#[inline(always)]
fn sq_dist_full(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f64; 4];
    for (x, y) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for lane in 0..4 {
            let t = x[lane] - y[lane];
            acc[lane] += t * t;
        }
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for j in len / 4 * 4..len {
        let t = a[j] - b[j];
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
        let (dist, nbr) = tree.all_knn(k).by_row();
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
    fn groups_larger_than_k() {
        // 31 equal rows, and 5 other rows whose squared distance to them underflows to 0:
        // after the group (the search's shortcut applies), then before it (it must not).
        let tiny = vec![1e-170];
        let mut rows = vec![vec![0.0]; 31];
        rows.extend(vec![tiny.clone(); 5]);
        rows.push(vec![1.0]);
        check(&Matrix::from_rows(&rows).unwrap(), 20, true);
        let mut rows = vec![tiny; 5];
        rows.extend(vec![vec![0.0]; 31]);
        rows.push(vec![1.0]);
        check(&Matrix::from_rows(&rows).unwrap(), 20, true);
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

    /// Every instruction set pulp can dispatch to on this machine (the scalar one always).
    fn arches() -> Vec<pulp::Arch> {
        let mut arches = vec![pulp::Arch::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                arches.push(pulp::Arch::V3(v3));
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                arches.push(pulp::Arch::V4(v4));
            }
        }
        arches
    }

    /// Brute force returns exactly the k smallest (exact squared distance, index) of the
    /// reference on every instruction set, whatever the dimension, ties, duplicate groups
    /// larger than its pool's compaction, a large offset (which the f32 screen must
    /// tolerate), a rotation onto principal axes, fewer rows than a SIMD register; and so
    /// equals the tree's result when the tree is not rotated.
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
            let mut rows = vec![vec![1.0, 2.0, 3.0]; 300];
            let m = random_rows(8, 150, 3, Some(4));
            rows.extend(m.rows().map(<[f64]>::to_vec));
            Matrix::from_rows(&rows).unwrap()
        };
        // 14 columns driven by two factors: most of the variance on two axes, so the screen
        // works on rotated rows.
        let correlated = {
            let mut rng = ChaCha8Rng::seed_from_u64(10);
            let rows: Vec<Vec<f64>> = (0..700)
                .map(|_| {
                    let (a, b): (f64, f64) = (rng.random(), rng.random());
                    (0..14)
                        .map(|d| a * d as f64 - b * (d % 3) as f64 + 0.05 * rng.random::<f64>())
                        .collect()
                })
                .collect();
            Matrix::from_rows(&rows).unwrap()
        };
        // A tight cluster far from the rest (and from the mean): its rows' rounding errors are
        // large next to their distances, which the bounds must allow for.
        let far_cluster = {
            let mut rng = ChaCha8Rng::seed_from_u64(17);
            let rows: Vec<Vec<f64>> = (0..360)
                .map(|i| {
                    (0..14)
                        .map(|d| {
                            let x: f64 = rng.random();
                            if i < 300 {
                                x * (d + 1) as f64
                            } else {
                                1e4 + 1e-3 * x
                            }
                        })
                        .collect()
                })
                .collect();
            Matrix::from_rows(&rows).unwrap()
        };
        let cases = [
            (far_cluster, 20),
            (random_rows(1, 600, 3, Some(5)), 20),
            (random_rows(2, 700, 7, None), 5),
            (random_rows(4, 400, 16, Some(3)), 20),
            (random_rows(5, 333, 37, None), 20),
            (random_rows(6, 30, 2, None), 29),
            (random_rows(11, 5, 3, None), 1),
            (random_rows(12, 9, 4, Some(2)), 8),
            // Many panels, a partial last panel and query block, groups of ~28 equal rows.
            (random_rows(9, 1001, 2, Some(6)), 20),
            (offset, 10),
            (duplicates, 20),
            (correlated, 20),
        ];
        for (data, k) in cases {
            let n = data.n_rows();
            let (dist, nbr) = brute_all_knn(&data, k).by_row();
            for (i, row) in data.rows().enumerate() {
                let want = brute(&data, row, k, Some(i as u32));
                let got: Vec<(f64, u32)> =
                    (0..k).map(|j| (dist[i * k + j], nbr[i * k + j])).collect();
                let want: Vec<(f64, u32)> = want.iter().map(|&(d2, o)| (d2.sqrt(), o)).collect();
                assert_eq!(got, want, "{n} x {}, row {i}", data.n_cols());
            }
            for arch in arches() {
                assert_eq!(
                    brute_all_knn_on(arch, &data, k).by_row(),
                    (dist.clone(), nbr.clone()),
                    "{arch:?}, {n} x {}",
                    data.n_cols()
                );
            }
            let tree = KdTree::build(&data);
            if tree.rotation.is_none() {
                assert_eq!(tree.all_knn(k).by_row(), (dist, nbr));
            }
        }
    }

    #[test]
    fn heaps_keep_the_k_smallest() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        for k in [1usize, 2, 3, 7, 20, 31, 32, 33] {
            let (depth, len) = heap_shape(k);
            let mut heap = vec![f32::NEG_INFINITY; len];
            let first: Vec<f32> = (0..k).map(|_| rng.random_range(0.0..100.0)).collect();
            heap[..k].copy_from_slice(&first);
            heapify(&mut heap, k, depth);
            let mut kept = first.clone();
            for _ in 0..200 {
                let v: f32 = rng.random_range(0.0..100.0);
                if v < heap[0] {
                    let top = heap_replace_top(&mut heap, depth, v);
                    kept.sort_by(f32::total_cmp);
                    kept.pop();
                    kept.push(v);
                    assert_eq!(top, kept.iter().fold(f32::MIN, |m, &x| m.max(x)), "k {k}");
                }
            }
            let mut got = heap[..k].to_vec();
            got.sort_by(f32::total_cmp);
            kept.sort_by(f32::total_cmp);
            assert_eq!(got, kept, "k {k}");
            assert!(heap[k..].iter().all(|&v| v == f32::NEG_INFINITY));
        }
    }

    #[test]
    fn locality_order_is_a_permutation_of_nearby_leaves() {
        let data = random_rows(14, 1000, 3, None);
        let coords: Vec<f32> = data.as_slice().iter().map(|&v| v as f32).collect();
        let order = locality_order(&coords, 3, 16);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        // Consecutive rows are much nearer than random pairs (mean squared distance 0.5).
        let mean: f64 = order
            .windows(2)
            .map(|w| sq_dist(data.row(w[0] as usize), data.row(w[1] as usize)))
            .sum::<f64>()
            / 999.0;
        assert!(mean < 0.05, "{mean}");
    }

    #[test]
    fn equal_groups() {
        let mut rows = vec![vec![1.0, -0.0]; 5];
        rows.push(vec![1.0, 0.0]);
        rows.extend((0..4).map(|i| vec![f64::from(i), 2.0]));
        rows.extend(vec![vec![3.0, 2.0]; 2]);
        assert_eq!(largest_equal_group(&Matrix::from_rows(&rows).unwrap()), 6);
        assert_eq!(largest_equal_group(&random_rows(15, 50, 3, None)), 1);
    }

    /// A lazy tree answers like the tree, and serialises as the tree it builds.
    #[test]
    fn lazy_tree_is_the_tree() {
        let data = random_rows(16, 300, 4, None);
        let lazy = LazyKdTree::later(&data);
        let built = LazyKdTree::built(KdTree::build(&data));
        assert_eq!(
            serde_json::to_string(&lazy).unwrap(),
            serde_json::to_string(&built).unwrap()
        );
        let back: LazyKdTree =
            serde_json::from_str(&serde_json::to_string(&lazy).unwrap()).unwrap();
        assert_eq!(back, built);
        let (mut a, mut b) = (Knn::new(5), Knn::new(5));
        LazyKdTree::later(&data).get().knn(&[0.5; 4], &mut a);
        built.get().knn(&[0.5; 4], &mut b);
        assert_eq!(a.items(), b.items());
    }

    #[test]
    fn jacobi_diagonalises() {
        let a = vec![4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];
        let (values, v) = jacobi_eigen(a.clone(), 3, 1e-30);
        // A v_c = λ_c v_c for every row c.
        for c in 0..3 {
            for r in 0..3 {
                let av: f64 = (0..3).map(|k| a[r * 3 + k] * v[c * 3 + k]).sum();
                assert!((av - values[c] * v[c * 3 + r]).abs() < 1e-10);
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
