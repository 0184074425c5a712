//! The RBF kernel, scikit-learn's `gamma` conventions and a bounded row cache of the kernel
//! matrix, shared by the One-Class SVM's solver and its decision function.
//!
//! # Why a row cache
//! The SMO solver touches two rows of the `l × l` kernel matrix per iteration, and the same
//! rows again and again (the support vectors). Keeping every row costs `4·l²` bytes (9.6 GB for
//! the 49 097 rows of ODDS shuttle); recomputing every row costs `l·d` kernel evaluations per
//! iteration. libsvm's answer, kept here, is a least-recently-used cache of whole rows in single
//! precision (libsvm's `Qfloat`) with a byte budget: memory stays bounded and the hot rows are
//! computed once. Rows are full length (no shrinking-aware partial rows as libsvm has): simpler,
//! and the cost of computing a full row is paid once per cache miss.

use serde::{Deserialize, Serialize};

use super::Matrix;
use crate::DetectError;

/// The named `gamma` rules of scikit-learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GammaRule {
    /// `1 / (n_features · Var(X))`, the variance over all values of the training matrix
    /// (scikit-learn's default since 0.22); 1.0 when that variance is zero.
    Scale,
    /// `1 / n_features`.
    Auto,
}

/// The RBF kernel width: a named rule (`"scale"`, `"auto"`) or a positive number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Gamma {
    /// A rule resolved on the training data.
    Rule(GammaRule),
    /// A fixed value.
    Value(f64),
}

impl Default for Gamma {
    fn default() -> Self {
        Gamma::Rule(GammaRule::Scale)
    }
}

impl Gamma {
    /// The numeric gamma for `data`, exactly as scikit-learn resolves it.
    pub fn resolve(self, data: &Matrix) -> f64 {
        match self {
            Gamma::Value(g) => g,
            Gamma::Rule(GammaRule::Auto) => 1.0 / data.n_cols() as f64,
            Gamma::Rule(GammaRule::Scale) => {
                let v = data.as_slice();
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                if var > 0.0 {
                    1.0 / (data.n_cols() as f64 * var)
                } else {
                    1.0
                }
            }
        }
    }
}

/// `exp(-gamma · ‖a − b‖²)`.
#[inline]
pub fn rbf(gamma: f64, a: &[f64], b: &[f64]) -> f64 {
    let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (-gamma * d2).exp()
}

/// [`rbf`] for the cache: the distance in `f64`, the exponential in `f32` (what the cache stores
/// anyway; libsvm rounds its `double` kernel to `float` the same way, within an ulp).
#[inline]
fn rbf_f32(gamma: f64, a: &[f64], b: &[f64]) -> f32 {
    let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    ((-gamma * d2) as f32).exp()
}

/// Rejects empty data and non-finite values, naming the first offending cell.
pub(crate) fn check_finite(data: &Matrix) -> Result<(), DetectError> {
    if data.n_rows() == 0 {
        return Err(DetectError::NotEnoughData("no rows to fit on".to_string()));
    }
    let cols = data.n_cols();
    if let Some(k) = data.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(DetectError::Parameter {
            name: "data",
            reason: format!(
                "row {} column {} is {} (values must be finite numbers)",
                k / cols,
                k % cols,
                data.as_slice()[k]
            ),
        });
    }
    Ok(())
}

const EMPTY: u32 = u32::MAX;

/// A least-recently-used cache of rows of the RBF kernel matrix of `data`, within a byte budget.
#[derive(Debug)]
pub(crate) struct KernelCache<'a> {
    data: &'a Matrix,
    gamma: f64,
    l: usize,
    /// Slot holding row `i`, or `EMPTY`.
    slot_of: Vec<u32>,
    /// Row held by each slot.
    owner: Vec<usize>,
    /// Logical time of each slot's last use.
    last_used: Vec<u64>,
    clock: u64,
    buf: Vec<f32>,
    capacity: usize,
    /// Rows computed (cache misses), for diagnostics.
    pub(crate) misses: u64,
}

impl<'a> KernelCache<'a> {
    /// A cache of at most `budget_bytes` (and always at least two rows, which one SMO step
    /// needs at once).
    pub(crate) fn new(data: &'a Matrix, gamma: f64, budget_bytes: usize) -> Self {
        let l = data.n_rows();
        let capacity = (budget_bytes / (4 * l.max(1))).clamp(2, l.max(2));
        KernelCache {
            data,
            gamma,
            l,
            slot_of: vec![EMPTY; l],
            owner: Vec::with_capacity(capacity),
            last_used: Vec::with_capacity(capacity),
            clock: 0,
            buf: Vec::new(),
            capacity,
            misses: 0,
        }
    }

    /// Makes row `i` resident and most recently used; returns its slot. Never evicts the row
    /// touched just before, so two consecutive calls keep both rows resident.
    pub(crate) fn ensure(&mut self, i: usize) -> usize {
        self.clock += 1;
        let s = self.slot_of[i];
        if s != EMPTY {
            self.last_used[s as usize] = self.clock;
            return s as usize;
        }
        self.misses += 1;
        let slot = if self.owner.len() < self.capacity {
            self.owner.push(i);
            self.last_used.push(self.clock);
            self.buf.resize(self.owner.len() * self.l, 0.0);
            self.owner.len() - 1
        } else {
            let (victim, _) = self
                .last_used
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| **t)
                .expect("a full cache should have at least two slots");
            self.slot_of[self.owner[victim]] = EMPTY;
            self.owner[victim] = i;
            self.last_used[victim] = self.clock;
            victim
        };
        self.slot_of[i] = slot as u32;
        let xi = self.data.row(i);
        let gamma = self.gamma;
        let row = &mut self.buf[slot * self.l..(slot + 1) * self.l];
        for (k, (q, xk)) in row.iter_mut().zip(self.data.rows()).enumerate() {
            *q = if k == i { 1.0 } else { rbf_f32(gamma, xi, xk) };
        }
        slot
    }

    /// The row held by `slot` (from [`KernelCache::ensure`]).
    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        &self.buf[slot * self.l..(slot + 1) * self.l]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_rules_match_sklearn() {
        let m = Matrix::from_rows(&[vec![0.0, 1.0], vec![2.0, 3.0]]).unwrap();
        // values 0,1,2,3: mean 1.5, population variance 1.25, 2 features
        assert!((Gamma::default().resolve(&m) - 1.0 / 2.5).abs() < 1e-15);
        assert_eq!(Gamma::Rule(GammaRule::Auto).resolve(&m), 0.5);
        assert_eq!(Gamma::Value(3.0).resolve(&m), 3.0);
        let constant = Matrix::from_rows(&[vec![1.0], vec![1.0]]).unwrap();
        assert_eq!(Gamma::default().resolve(&constant), 1.0);
    }

    #[test]
    fn gamma_serde_accepts_names_and_numbers() {
        let g: Gamma = serde_json::from_str("\"scale\"").unwrap();
        assert_eq!(g, Gamma::Rule(GammaRule::Scale));
        let g: Gamma = serde_json::from_str("0.25").unwrap();
        assert_eq!(g, Gamma::Value(0.25));
        assert!(serde_json::from_str::<Gamma>("\"bogus\"").is_err());
    }

    #[test]
    fn cache_evicts_least_recently_used_and_keeps_values() {
        let rows: Vec<Vec<f64>> = (0..5).map(|i| vec![i as f64]).collect();
        let m = Matrix::from_rows(&rows).unwrap();
        // budget for two rows of 5 f32
        let mut c = KernelCache::new(&m, 0.5, 40);
        let a = c.ensure(0);
        let b = c.ensure(1);
        assert_ne!(a, b);
        assert!((f64::from(c.row(a)[1]) - (-0.5f64).exp()).abs() < 1e-7);
        c.ensure(0);
        c.ensure(2); // evicts row 1
        assert_eq!(c.misses, 3);
        c.ensure(0);
        assert_eq!(c.misses, 3);
        c.ensure(1);
        assert_eq!(c.misses, 4);
    }

    #[test]
    fn nan_is_rejected_with_its_position() {
        let m = Matrix::from_rows(&[vec![0.0, 1.0], vec![f64::NAN, 3.0]]).unwrap();
        let err = check_finite(&m).unwrap_err().to_string();
        assert!(err.contains("row 1 column 0 is NaN"), "{err}");
    }
}
