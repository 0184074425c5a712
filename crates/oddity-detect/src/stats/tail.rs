//! Tail probabilities and the score scale shared by every statistical detector.
//!
//! Every detector in [`crate::stats`] turns its statistic into a *tail probability* `p` (how
//! likely a value at least this extreme is under the detector's model of the past), measures its
//! *surprise* in decades, `s = −log10(p)`, and reports
//!
//! ```text
//! score = 1 − 2^(−s / 5)
//! ```
//!
//! so that `p = 1e-5` gives 0.5, `1e-10` gives 0.75, `1e-20` gives 0.94. The scale makes scores
//! comparable across detectors and series (a z-score detector, a MAD detector and a CUSUM reach
//! the same score for equally improbable observations) and, unlike a clamped linear scale, it
//! never saturates: a 40-sigma jump still outranks a 9-sigma one, so a single threshold chosen
//! over many series keeps its resolution. Probabilities are handled as natural logarithms so the
//! far tail never underflows.

use std::f64::consts::{LN_10, SQRT_2};

/// Decades of surprise that map to score 0.5.
pub const HALF_SCORE_DECADES: f64 = 5.0;

/// The score of a surprise of `decades` (`−log10 p`).
pub fn score_from_decades(decades: f64) -> f64 {
    if decades.is_nan() || decades <= 0.0 {
        return 0.0;
    }
    1.0 - (-decades / HALF_SCORE_DECADES).exp2()
}

/// The surprise in decades (`−log10 p`) of a probability given as its natural logarithm.
pub fn decades_from_ln_p(ln_p: f64) -> f64 {
    if ln_p.is_nan() {
        0.0
    } else {
        (-ln_p / LN_10).max(0.0)
    }
}

/// The score of a tail probability given as its natural logarithm.
pub fn score_from_ln_p(ln_p: f64) -> f64 {
    score_from_decades(decades_from_ln_p(ln_p))
}

/// The natural logarithm of the tail probability whose score is `score` (inverse of
/// [`score_from_ln_p`] inside 0..1).
pub fn ln_p_from_score(score: f64) -> f64 {
    let decades = -HALF_SCORE_DECADES * (1.0 - score).log2();
    -decades * LN_10
}

/// `ln erfc(x)` for `x >= 0`, accurate to ~1e-7 relative everywhere and never underflowing
/// (Chebyshev fit of Numerical Recipes' `erfcc`, evaluated in log space).
pub fn ln_erfc(x: f64) -> f64 {
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t.ln() - x * x + poly
}

/// `ln P(|Z| >= |z|)` for a standard normal `Z` (two-sided tail).
pub fn ln_two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return 0.0;
    }
    if z.is_infinite() {
        return f64::NEG_INFINITY;
    }
    ln_erfc(z.abs() / SQRT_2).min(0.0)
}

/// `|z|` covered by the score table; beyond it the score is computed exactly.
const Z_TABLE_MAX: f64 = 8.0;
/// Table entries per unit of `|z|`.
const Z_TABLE_RESOLUTION: f64 = 128.0;
/// Number of table entries (0..=8 in steps of 1/128).
const Z_TABLE_LEN: usize = (Z_TABLE_MAX * Z_TABLE_RESOLUTION) as usize + 1;

/// The score of `|z| = i / 128`, tabulated once: the score is a fixed function of `|z|`, and a
/// table lookup with linear interpolation costs a few nanoseconds where the exact form (a
/// division, a logarithm, a 9-term polynomial and an exponential) costs ~30, which matters for
/// detectors that must run at tens of millions of points per second. Interpolation error is
/// below 1e-5 and the interpolant is monotone like the exact score.
static Z_SCORE_TABLE: std::sync::LazyLock<[f64; Z_TABLE_LEN]> = std::sync::LazyLock::new(|| {
    let mut table = [0.0; Z_TABLE_LEN];
    for (i, slot) in table.iter_mut().enumerate() {
        *slot = score_from_ln_p(ln_two_sided_p(i as f64 / Z_TABLE_RESOLUTION));
    }
    table
});

/// The score of a two-sided Gaussian z-score.
#[inline]
pub fn score_from_z(z: f64) -> f64 {
    let a = z.abs();
    if a < Z_TABLE_MAX {
        let pos = a * Z_TABLE_RESOLUTION;
        let i = pos as usize;
        let frac = pos - i as f64;
        let table = &*Z_SCORE_TABLE;
        table[i] + (table[i + 1] - table[i]) * frac
    } else if a.is_nan() {
        0.0
    } else {
        score_from_ln_p(ln_two_sided_p(a))
    }
}

/// The complementary error function, `erfc(x)`, for any real `x`.
pub fn erfc(x: f64) -> f64 {
    if x >= 0.0 {
        ln_erfc(x).exp()
    } else {
        2.0 - ln_erfc(-x).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        let cases = [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
            (-1.0, 1.842_700_793),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(
                (got - want).abs() / want < 1e-6,
                "erfc({x}) = {got}, want {want}"
            );
        }
        // Far tail: erfc(10) = 2.088e-45, in log space.
        assert!((ln_erfc(10.0) - 2.088_487_583_762_545e-45_f64.ln()).abs() < 1e-5);
    }

    #[test]
    fn tabulated_z_score_matches_the_exact_one() {
        let mut previous = 0.0;
        for i in 0..=20_000 {
            let z = f64::from(i) * 0.000_5;
            let exact = score_from_ln_p(ln_two_sided_p(z));
            let fast = score_from_z(z);
            assert!((fast - exact).abs() < 1e-5, "z = {z}: {fast} vs {exact}");
            assert!(fast >= previous, "not monotone at {z}");
            assert_eq!(score_from_z(-z), fast);
            previous = fast;
        }
        assert_eq!(score_from_z(f64::NAN), 0.0);
    }

    #[test]
    fn score_scale_is_anchored() {
        assert_eq!(score_from_ln_p(0.0), 0.0);
        assert!((score_from_ln_p(1e-5_f64.ln()) - 0.5).abs() < 1e-12);
        assert!((score_from_ln_p(1e-10_f64.ln()) - 0.75).abs() < 1e-12);
        // Never saturates where it matters: 1e-40 still ranks below 1e-60.
        assert!(score_from_ln_p(1e-40_f64.ln()) < score_from_ln_p(1e-60_f64.ln()));
        assert!(score_from_ln_p(1e-60_f64.ln()) < 1.0);
        assert_eq!(score_from_ln_p(f64::NAN), 0.0);
        assert_eq!(score_from_ln_p(f64::NEG_INFINITY), 1.0);
        assert!((ln_p_from_score(0.5) - 1e-5_f64.ln()).abs() < 1e-9);
        // A 3-sigma two-sided tail is 0.0027.
        assert!((ln_two_sided_p(3.0).exp() - 0.002_699_8).abs() < 1e-6);
        assert_eq!(score_from_z(0.0), 0.0);
        assert_eq!(score_from_z(f64::INFINITY), 1.0);
        assert!(score_from_z(9.0) < score_from_z(40.0));
    }
}
