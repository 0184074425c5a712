//! libsvm's SMO `Solver`, transcribed for the one-class dual (see the parent module's docs for
//! the problem and the algorithm). Kept apart from the model because it is the part that has to
//! match libsvm step for step, and is tested as such.

use super::OneClassSvmConfig;
use crate::ml::Matrix;
use crate::ml::kernel::KernelCache;

/// libsvm's `TAU`: the curvature used when the pair's curvature is not positive.
const TAU: f64 = 1e-12;

/// The solution of the dual.
#[derive(Debug, Clone)]
pub(crate) struct DualSolution {
    pub(crate) alpha: Vec<f64>,
    pub(crate) rho: f64,
    /// ∇ = Qα over every row.
    pub(crate) gradient: Vec<f64>,
    pub(crate) iterations: u64,
}

/// libsvm's `Solver::Solve` for the one-class dual (see the module docs). `data` must be finite
/// and non-empty.
pub(crate) fn solve_dual(data: &Matrix, gamma: f64, config: &OneClassSvmConfig) -> DualSolution {
    let l = data.n_rows();
    let nu_l = config.nu * l as f64;
    let mut alpha = vec![0.0; l];
    let n_full = (nu_l.floor() as usize).min(l);
    alpha[..n_full].fill(1.0);
    if n_full < l {
        alpha[n_full] = nu_l - n_full as f64;
    }
    let mut solver = Solver {
        cache: KernelCache::new(data, gamma, config.cache_mb.saturating_mul(1 << 20)),
        g: vec![0.0; l],
        g_bar: vec![0.0; l],
        alpha,
        active: (0..l).collect(),
        eps: config.tol,
        unshrink: false,
    };
    solver.init_gradient();
    let iterations = solver.run(config.shrinking, config.max_iter);
    let rho = solver.rho();
    DualSolution {
        alpha: solver.alpha,
        rho,
        gradient: solver.g,
        iterations,
    }
}

#[derive(Debug)]
struct Solver<'a> {
    cache: KernelCache<'a>,
    /// Gradient Qα (exact over the active set; over all rows after reconstruction).
    g: Vec<f64>,
    /// Σ over alphas at the upper bound of C·Q_i, kept over all rows for reconstruction.
    g_bar: Vec<f64>,
    alpha: Vec<f64>,
    /// Indices not shrunk away.
    active: Vec<usize>,
    eps: f64,
    unshrink: bool,
}

impl Solver<'_> {
    fn upper(&self, i: usize) -> bool {
        self.alpha[i] >= 1.0
    }

    fn lower(&self, i: usize) -> bool {
        self.alpha[i] <= 0.0
    }

    fn init_gradient(&mut self) {
        let l = self.alpha.len();
        for i in 0..l {
            if self.lower(i) {
                continue;
            }
            let a = self.alpha[i];
            let upper = self.upper(i);
            let s = self.cache.ensure(i);
            let q = self.cache.row(s);
            for ((g, gb), qj) in self.g.iter_mut().zip(self.g_bar.iter_mut()).zip(q) {
                *g += a * f64::from(*qj);
                if upper {
                    *gb += f64::from(*qj);
                }
            }
        }
    }

    /// Iterates until optimal (or `max_iter`); returns the iteration count.
    fn run(&mut self, shrinking: bool, max_iter: Option<u64>) -> u64 {
        let l = self.alpha.len();
        let max_iter = max_iter.unwrap_or(u64::MAX);
        let mut counter = l.min(1000) + 1;
        let mut iter = 0u64;
        while iter < max_iter {
            counter -= 1;
            if counter == 0 {
                counter = l.min(1000);
                if shrinking {
                    self.shrink();
                }
            }
            let (i, j) = match self.select_working_set() {
                Some(pair) => pair,
                None => {
                    self.reconstruct_gradient();
                    match self.select_working_set() {
                        Some(pair) => {
                            counter = 1;
                            pair
                        }
                        None => break,
                    }
                }
            };
            iter += 1;
            self.step(i, j);
        }
        self.reconstruct_gradient();
        iter
    }

    /// WSS3; `None` when the maximal violation is below `eps`.
    fn select_working_set(&mut self) -> Option<(usize, usize)> {
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax_idx = None;
        for &t in &self.active {
            if !self.upper(t) && -self.g[t] >= gmax {
                gmax = -self.g[t];
                gmax_idx = Some(t);
            }
        }
        let i = gmax_idx?;
        let si = self.cache.ensure(i);
        let qi = self.cache.row(si);
        let qd_i = 1.0; // K(x, x) = 1 for RBF
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmin_idx = None;
        let mut obj_diff_min = f64::INFINITY;
        for &j in &self.active {
            if self.alpha[j] <= 0.0 {
                continue;
            }
            let gj = self.g[j];
            if gj >= gmax2 {
                gmax2 = gj;
            }
            let grad_diff = gmax + gj;
            if grad_diff > 0.0 {
                let quad = qd_i + 1.0 - 2.0 * f64::from(qi[j]);
                let obj_diff = -(grad_diff * grad_diff) / if quad > 0.0 { quad } else { TAU };
                if obj_diff <= obj_diff_min {
                    gmin_idx = Some(j);
                    obj_diff_min = obj_diff;
                }
            }
        }
        if gmax + gmax2 < self.eps {
            return None;
        }
        gmin_idx.map(|j| (i, j))
    }

    /// Solves the two-variable subproblem on (i, j) and updates the gradients.
    fn step(&mut self, i: usize, j: usize) {
        let si = self.cache.ensure(i);
        let sj = self.cache.ensure(j);
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let qij = f64::from(self.cache.row(si)[j]);
        let mut quad = 2.0 - 2.0 * qij;
        if quad <= 0.0 {
            quad = TAU;
        }
        let delta = (self.g[i] - self.g[j]) / quad;
        let sum = old_i + old_j;
        let (mut ai, mut aj) = (old_i - delta, old_j + delta);
        if sum > 1.0 {
            if ai > 1.0 {
                ai = 1.0;
                aj = sum - 1.0;
            }
        } else if aj < 0.0 {
            aj = 0.0;
            ai = sum;
        }
        if sum > 1.0 {
            if aj > 1.0 {
                aj = 1.0;
                ai = sum - 1.0;
            }
        } else if ai < 0.0 {
            ai = 0.0;
            aj = sum;
        }
        let (ui, uj) = (self.upper(i), self.upper(j));
        self.alpha[i] = ai;
        self.alpha[j] = aj;
        let (dai, daj) = (ai - old_i, aj - old_j);
        let (qi, qj) = (self.cache.row(si), self.cache.row(sj));
        for &k in &self.active {
            self.g[k] += f64::from(qi[k]) * dai + f64::from(qj[k]) * daj;
        }
        for (idx, was_upper, q) in [(i, ui, qi), (j, uj, qj)] {
            let is_upper = self.alpha[idx] >= 1.0;
            if was_upper != is_upper {
                let sign = if is_upper { 1.0 } else { -1.0 };
                for (gb, qk) in self.g_bar.iter_mut().zip(q) {
                    *gb += sign * f64::from(*qk);
                }
            }
        }
    }

    /// libsvm's `be_shrunk`: a bounded alpha that the current violation cannot move.
    fn be_shrunk(&self, i: usize, gmax1: f64, gmax2: f64) -> bool {
        if self.upper(i) {
            -self.g[i] > gmax1
        } else if self.lower(i) {
            self.g[i] > gmax2
        } else {
            false
        }
    }

    fn shrink(&mut self) {
        let mut gmax1 = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        for &i in &self.active {
            if !self.upper(i) {
                gmax1 = gmax1.max(-self.g[i]);
            }
            if !self.lower(i) {
                gmax2 = gmax2.max(self.g[i]);
            }
        }
        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
        }
        let active = std::mem::take(&mut self.active);
        self.active = active
            .into_iter()
            .filter(|&i| !self.be_shrunk(i, gmax1, gmax2))
            .collect();
    }

    /// Restores the exact gradient of shrunk rows and reactivates every row.
    fn reconstruct_gradient(&mut self) {
        let l = self.alpha.len();
        if self.active.len() == l {
            return;
        }
        let mut is_active = vec![false; l];
        for &i in &self.active {
            is_active[i] = true;
        }
        let inactive: Vec<usize> = (0..l).filter(|&j| !is_active[j]).collect();
        for &j in &inactive {
            self.g[j] = self.g_bar[j];
        }
        for i in 0..l {
            let a = self.alpha[i];
            if a > 0.0 && a < 1.0 {
                let s = self.cache.ensure(i);
                let q = self.cache.row(s);
                for &j in &inactive {
                    self.g[j] += a * f64::from(q[j]);
                }
            }
        }
        self.active = (0..l).collect();
    }

    /// ρ from the KKT conditions (libsvm's `calculate_rho`).
    fn rho(&self) -> f64 {
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut n_free, mut sum_free) = (0usize, 0.0);
        for &i in &self.active {
            let g = self.g[i];
            if self.upper(i) {
                lb = lb.max(g);
            } else if self.lower(i) {
                ub = ub.min(g);
            } else {
                n_free += 1;
                sum_free += g;
            }
        }
        if n_free > 0 {
            sum_free / n_free as f64
        } else if ub.is_finite() && lb.is_finite() {
            (ub + lb) / 2.0
        } else if lb.is_finite() {
            // every alpha at 1 (ν = 1): libsvm would answer +inf; the tightest bound is finite
            lb
        } else {
            ub
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::kernel::Gamma;
    use crate::ml::one_class_svm::tests::{cloud, m};
    use crate::ml::{Estimator, OneClassSvmConfig};

    /// ½ αᵀQα = ½ Σ αᵢ∇ᵢ.
    fn objective(sol: &DualSolution) -> f64 {
        0.5 * sol
            .alpha
            .iter()
            .zip(&sol.gradient)
            .map(|(a, g)| a * g)
            .sum::<f64>()
    }

    fn assert_dual_feasible(sol: &DualSolution, nu: f64, name: &str) {
        let l = sol.alpha.len() as f64;
        let sum: f64 = sol.alpha.iter().sum();
        assert!(
            (sum - nu * l).abs() < 1e-9,
            "{name}: sum alpha {sum} != nu*l {}",
            nu * l
        );
        assert!(
            sol.alpha.iter().all(|a| (0.0..=1.0).contains(a)),
            "{name}: alpha out of the box"
        );
    }

    #[test]
    fn matches_sklearn_on_a_tiny_dataset() {
        // Reference values from scikit-learn 1.x (libsvm), computed with:
        //   X = [[0,0],[.5,.1],[1,.3],[.2,.9],[.8,.7],[.4,.4],[1.2,1.1],[.1,.6],[3,3],[.6,.2]]
        //   m = OneClassSVM(nu=0.3, kernel="rbf", gamma="scale", tol=1e-6, shrinking=False).fit(X)
        //   m._gamma, m.support_, m.dual_coef_, m.offset_, m.decision_function(X),
        //   m.decision_function([[.5,.5],[2,0]])
        let x = m(&[
            vec![0.0, 0.0],
            vec![0.5, 0.1],
            vec![1.0, 0.3],
            vec![0.2, 0.9],
            vec![0.8, 0.7],
            vec![0.4, 0.4],
            vec![1.2, 1.1],
            vec![0.1, 0.6],
            vec![3.0, 3.0],
            vec![0.6, 0.2],
        ]);
        let sk_gamma = 0.7315556530963092;
        let sk_support = [0usize, 2, 3, 6, 8];
        let sk_dual = [
            0.8046581354815461,
            0.1646657150853999,
            0.24422984704028072,
            0.7864463023927728,
            1.0,
        ];
        let sk_rho = 1.123155580591552;
        let sk_dec = [
            6.00193726052467e-07,
            0.08292579457222393,
            -4.0606381235264166e-07,
            1.7489790660185633e-07,
            0.17631970274936104,
            0.1808468857419845,
            -3.8873142704787256e-07,
            0.07324406937235861,
            -0.11783985296462074,
            0.10878120068605002,
        ];
        let sk_dec_new = [0.194000112003043, -0.7893681341191301];

        for shrinking in [false, true] {
            let config = OneClassSvmConfig {
                nu: 0.3,
                tol: 1e-6,
                shrinking,
                ..Default::default()
            };
            let gamma = config.gamma.resolve(&x);
            assert!((gamma - sk_gamma).abs() < 1e-15);
            let sol = solve_dual(&x, gamma, &config);
            assert_dual_feasible(&sol, 0.3, "tiny");
            let support: Vec<usize> = (0..10).filter(|&i| sol.alpha[i] > 0.0).collect();
            assert_eq!(support, sk_support);
            for (k, &i) in sk_support.iter().enumerate() {
                assert!(
                    (sol.alpha[i] - sk_dual[k]).abs() < 1e-5,
                    "alpha {i}: {}",
                    sol.alpha[i]
                );
            }
            assert!((sol.rho - sk_rho).abs() < 1e-5, "rho {}", sol.rho);

            let model = config.build().unwrap().fit(&x).unwrap();
            for (row, want) in x.rows().zip(sk_dec) {
                assert!((model.decision_function(row) - want).abs() < 1e-5);
            }
            for (row, want) in [[0.5, 0.5], [2.0, 0.0]].iter().zip(sk_dec_new) {
                assert!((model.decision_function(row) - want).abs() < 1e-5);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the data: the dual stays feasible, and at the end no pair violates the KKT
        /// conditions by more than `tol` (max ∇ over α > 0 minus min ∇ over α < 1 below tol).
        #[test]
        fn solution_is_feasible_and_optimal(
            rows in proptest::collection::vec(proptest::collection::vec(-10.0f64..10.0, 2), 1..60),
            nu in 0.01f64..1.0,
            shrinking: bool,
        ) {
            let x = m(&rows);
            let config = OneClassSvmConfig { nu, shrinking, ..Default::default() };
            let sol = solve_dual(&x, config.gamma.resolve(&x), &config);
            assert_dual_feasible(&sol, nu, "proptest");
            let up = sol.alpha.iter().zip(&sol.gradient).filter(|(a, _)| **a > 0.0);
            let down = sol.alpha.iter().zip(&sol.gradient).filter(|(a, _)| **a < 1.0);
            let max_up = up.map(|(_, g)| *g).fold(f64::NEG_INFINITY, f64::max);
            let min_down = down.map(|(_, g)| *g).fold(f64::INFINITY, f64::min);
            proptest::prop_assert!(max_up - min_down < config.tol, "violation {}", max_up - min_down);
            proptest::prop_assert!(sol.rho.is_finite());
        }
    }

    #[test]
    fn two_points_by_hand() {
        // x0 = 0, x1 = 1, gamma 1, nu 0.5: Σα = 1 and symmetry give α = (½, ½);
        // ρ = ∇ᵢ = ½ + ½e⁻¹, so f(0.5) = e^(−¼) − ½ − ½e⁻¹ and f(x₀) = f(x₁) = 0.
        let x = m(&[vec![0.0], vec![1.0]]);
        let config = OneClassSvmConfig {
            nu: 0.5,
            gamma: Gamma::Value(1.0),
            ..Default::default()
        };
        let sol = solve_dual(&x, 1.0, &config);
        assert_eq!(sol.iterations, 1);
        assert!((sol.alpha[0] - 0.5).abs() < 1e-12 && (sol.alpha[1] - 0.5).abs() < 1e-12);
        let e1 = (-1.0f64).exp();
        assert!((sol.rho - (0.5 + 0.5 * e1)).abs() < 1e-7);
        assert!((objective(&sol) - 0.5 * (0.5 + 0.5 * e1)).abs() < 1e-7);
        let model = config.build().unwrap().fit(&x).unwrap();
        let want = (-0.25f64).exp() - 0.5 - 0.5 * e1;
        assert!((model.decision_function(&[0.5]) - want).abs() < 1e-7);
        assert!(model.decision_function(&[0.0]).abs() < 1e-7);
    }

    #[test]
    fn dual_constraints_hold_whatever_the_cache_and_shrinking() {
        let x = cloud(300);
        let base = OneClassSvmConfig::default();
        let gamma = base.gamma.resolve(&x);
        let reference = solve_dual(
            &x,
            gamma,
            &OneClassSvmConfig {
                shrinking: false,
                ..base.clone()
            },
        );
        assert_dual_feasible(&reference, 0.1, "no shrinking");
        for (name, config) in [
            (
                "shrinking",
                OneClassSvmConfig {
                    shrinking: true,
                    ..base.clone()
                },
            ),
            // 1 MiB holds ~870 rows of 300: no eviction; the tiny cache below forces it
            (
                "shrinking, 1 MiB cache",
                OneClassSvmConfig {
                    cache_mb: 1,
                    ..base.clone()
                },
            ),
        ] {
            let sol = solve_dual(&x, gamma, &config);
            assert_dual_feasible(&sol, 0.1, name);
            assert!(
                (sol.rho - reference.rho).abs() < 1e-2,
                "{name}: rho {}",
                sol.rho
            );
            assert!((objective(&sol) - objective(&reference)).abs() < 1e-3 * objective(&reference));
        }
        // two-row cache: every step evicts; same iterates as the big cache
        let mut cache = KernelCache::new(&x, gamma, 8 * 300);
        let mut solver = Solver {
            g: vec![0.0; 300],
            g_bar: vec![0.0; 300],
            alpha: {
                let mut a = vec![0.0; 300];
                a[..30].fill(1.0);
                a
            },
            active: (0..300).collect(),
            eps: 1e-3,
            unshrink: false,
            cache: KernelCache::new(&x, gamma, 8 * 300),
        };
        std::mem::swap(&mut solver.cache, &mut cache);
        solver.init_gradient();
        solver.run(false, None);
        assert_eq!(solver.alpha, reference.alpha);
        // KKT: free alphas have gradient ρ within tol, bounded ones are on the right side
        for (a, g) in reference.alpha.iter().zip(&reference.gradient) {
            if *a <= 0.0 {
                assert!(*g >= reference.rho - 1e-3);
            } else if *a >= 1.0 {
                assert!(*g <= reference.rho + 1e-3);
            }
        }
    }
}
