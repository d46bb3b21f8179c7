//! The distribution functions the statistics use, all from `statrs`, behind wrappers that never
//! panic (statrs panics on NaN and on out-of-range arguments) and that route around the two
//! places where statrs 0.19 loses accuracy at the sample sizes a marketing platform sees:
//!
//! - `StudentsT::inverse_cdf` drifts above ~10⁴ degrees of freedom (1.95635 instead of 1.95997
//!   for the 0.975 quantile at 3·10⁶) and does not return at 10⁸. Its `cdf` and `pdf` stay
//!   accurate up to ~10⁷ degrees of freedom (checked against the Cornish–Fisher expansion,
//!   Abramowitz & Stegun 26.7.5), so [`student_t_quantile`] refines the starting point by
//!   Newton's method on them. Past 10⁷ (where the log-gamma cancellation in statrs's `cdf`
//!   costs more than the t and the normal differ: |F_t − Φ| ≤ φ(z)(z³ + z)/(4ν) < 10⁻⁸) the
//!   normal distribution is used.
//! - The regularized incomplete beta stops its continued fraction after 140 terms, so
//!   `Beta::cdf` is off by up to 2·10⁻³ once both shape parameters pass ~5·10⁵ (measured
//!   against 30-digit quadrature; below [`BETA_NORMAL_LIMIT`] the error stays under 10⁻⁶). A
//!   posterior past that limit is replaced by the normal with its mean and variance
//!   (Bernstein–von Mises). One arm's CDF then errs by about |skewness|·φ(0)/6 ≤ 4·10⁻⁴ at the
//!   limit (shrinking as 1/√min(a, b)), but in a chance to win the arms' skews cancel: against
//!   Evan Miller's exact sum it is off by ~10⁻⁷ for arms of 10⁶–10⁷ people.

use crate::{MeasurementError, Result};
use statrs::distribution::{Beta, ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

/// Above this value of min(α, β) a Beta posterior is handled as the normal with the same mean
/// and variance (see the module documentation).
pub(crate) const BETA_NORMAL_LIMIT: f64 = 1e5;

/// Degrees of freedom above which statrs's own t quantile is not trusted as a starting point.
const T_QUANTILE_TRUSTED_DF: f64 = 1e4;
/// Degrees of freedom above which Student's t is replaced by the normal distribution.
const T_NORMAL_DF: f64 = 1e7;

fn internal(what: &str) -> MeasurementError {
    MeasurementError::invalid(format!("statistics: {what} is out of range"))
}

/// Standard normal quantile Φ⁻¹(p), for p strictly inside (0, 1).
pub(crate) fn normal_quantile(p: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(internal("a normal probability"));
    }
    Ok(Normal::standard().inverse_cdf(p))
}

/// Standard normal cumulative distribution Φ(x).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() { 0.5 } else { Normal::standard().cdf(x) }
}

/// Standard normal density φ(x).
#[cfg(test)]
pub(crate) fn normal_pdf(x: f64) -> f64 {
    if x.is_finite() { Normal::standard().pdf(x) } else { 0.0 }
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom: 2·P(T > |t|).
pub(crate) fn student_t_two_sided_p(t: f64, df: f64) -> Result<f64> {
    if t.is_nan() {
        return Err(internal("a t statistic"));
    }
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| internal("a number of degrees of freedom"))?;
    let upper_tail = if df > T_NORMAL_DF { Normal::standard().sf(t.abs()) } else { dist.sf(t.abs()) };
    Ok((2.0 * upper_tail).clamp(0.0, 1.0))
}

/// The quantile of Student's t with `df` degrees of freedom at probability `p` ∈ (0, 1).
///
/// Starts from statrs's quantile (or, past 10⁴ degrees of freedom, the normal quantile, which
/// is then within 2.4·10⁻⁴) and takes Newton steps x ← x − (F(x) − p)/f(x) on statrs's
/// accurate `cdf` and `pdf` until the step is below 10⁻¹³·(1 + |x|). Past 10⁷ degrees of
/// freedom, the normal quantile.
pub(crate) fn student_t_quantile(p: f64, df: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(internal("a t probability"));
    }
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| internal("a number of degrees of freedom"))?;
    if df > T_NORMAL_DF {
        return normal_quantile(p);
    }
    let mut x = if df <= T_QUANTILE_TRUSTED_DF { dist.inverse_cdf(p) } else { normal_quantile(p)? };
    if !x.is_finite() {
        x = normal_quantile(p)?;
    }
    for _ in 0..50 {
        let density = dist.pdf(x);
        if density.is_nan() || density <= 0.0 {
            break;
        }
        let step = (dist.cdf(x) - p) / density;
        if !step.is_finite() {
            break;
        }
        x -= step;
        if step.abs() <= 1e-13 * (1.0 + x.abs()) {
            break;
        }
    }
    if x.is_finite() { Ok(x) } else { Err(internal("a t quantile")) }
}

/// Upper tail P(X > x) of the chi-squared distribution with `df` degrees of freedom.
pub(crate) fn chi_squared_sf(x: f64, df: f64) -> Result<f64> {
    if x.is_nan() {
        return Err(internal("a chi-squared statistic"));
    }
    let dist = ChiSquared::new(df).map_err(|_| internal("a number of degrees of freedom"))?;
    Ok(dist.sf(x).clamp(0.0, 1.0))
}

/// A posterior distribution of one arm's metric, as the Bayesian comparison integrates it.
#[derive(Debug, Clone)]
pub(crate) struct Posterior {
    shape: Shape,
    mean: f64,
    sd: f64,
    /// The support the integration may use: [0, 1] for a rate, the real line otherwise.
    support: (f64, f64),
}

#[derive(Debug, Clone)]
enum Shape {
    Beta(Beta),
    Normal(Normal),
}

impl Posterior {
    /// Beta(a, b), or its normal approximation once min(a, b) > [`BETA_NORMAL_LIMIT`].
    pub(crate) fn beta(a: f64, b: f64) -> Result<Self> {
        let beta = Beta::new(a, b).map_err(|_| internal("a Beta parameter"))?;
        let total = a + b;
        let mean = a / total;
        let sd = (a * b / (total * total * (total + 1.0))).sqrt();
        let shape = if a.min(b) > BETA_NORMAL_LIMIT {
            Shape::Normal(Normal::new(mean, sd).map_err(|_| internal("a Beta parameter"))?)
        } else {
            Shape::Beta(beta)
        };
        Ok(Self { shape, mean, sd, support: (0.0, 1.0) })
    }

    /// Normal(mean, sd²) with sd > 0.
    pub(crate) fn normal(mean: f64, sd: f64) -> Result<Self> {
        let normal = Normal::new(mean, sd).map_err(|_| internal("a normal posterior"))?;
        if !mean.is_finite() || !sd.is_finite() {
            return Err(internal("a normal posterior"));
        }
        Ok(Self { shape: Shape::Normal(normal), mean, sd, support: (f64::NEG_INFINITY, f64::INFINITY) })
    }

    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }

    pub(crate) fn sd(&self) -> f64 {
        self.sd
    }

    pub(crate) fn support(&self) -> (f64, f64) {
        self.support
    }

    pub(crate) fn pdf(&self, x: f64) -> f64 {
        if x.is_nan() {
            return 0.0;
        }
        let density = match &self.shape {
            Shape::Beta(beta) => beta.pdf(x),
            Shape::Normal(normal) => normal.pdf(x),
        };
        if density.is_finite() { density } else { 0.0 }
    }

    pub(crate) fn cdf(&self, x: f64) -> f64 {
        if x.is_nan() {
            return 0.0;
        }
        let p = match &self.shape {
            Shape::Beta(beta) => beta.cdf(x),
            Shape::Normal(normal) => normal.cdf(x),
        };
        if p.is_finite() { p.clamp(0.0, 1.0) } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_the_published_constant() {
        // z_{0.975} = 1.959963984540054 (Abramowitz & Stegun, Table 26.5; NIST/SEMATECH
        // e-Handbook 1.3.6.7.1 gives 1.960).
        assert!((normal_quantile(0.975).unwrap() - 1.959_963_984_540_054).abs() < 1e-12);
        // statrs's erfc is good to ~10⁻¹² here.
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 2e-12);
        assert!(normal_quantile(1.0).is_err());
    }

    #[test]
    fn t_quantiles_match_the_nist_table() {
        // NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2 "Critical values of the
        // Student's t distribution" (three decimals).
        for (p, df, table) in
            [(0.975, 10.0, 2.228), (0.975, 30.0, 2.042), (0.995, 5.0, 4.032), (0.95, 1.0, 6.314)]
        {
            let t = student_t_quantile(p, df).unwrap();
            assert!((t - table).abs() < 6e-4, "t({p}, {df}) = {t}, table {table}");
        }
    }

    #[test]
    fn t_quantile_for_millions_of_degrees_of_freedom_matches_cornish_fisher() {
        // Abramowitz & Stegun 26.7.5: t_p(ν) = z + (z³ + z)/(4ν) + (5z⁵ + 16z³ + 3z)/(96ν²) + …;
        // at ν ≥ 10⁴ the next term is below 10⁻¹¹. statrs's own inverse_cdf gives 1.95635 at
        // 3·10⁶ and does not return at 10⁸; past 10⁷ the normal quantile is used, 2.4·10⁻⁸ off.
        let z = 1.959_963_984_540_054_f64;
        for (df, tolerance) in [(1e4, 1e-9), (3e6, 1e-9), (1e8, 3e-8), (1e12, 1e-11)] {
            let expected = z
                + (z.powi(3) + z) / (4.0 * df)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df);
            let t = student_t_quantile(0.975, df).unwrap();
            assert!((t - expected).abs() < tolerance, "df {df}: {t} vs {expected}");
        }
        // The p-value side agrees: P(|T| > t_{0.975}) = 0.05 at every size.
        for df in [1e4, 3e6, 1e8, 1e12] {
            let p = student_t_two_sided_p(student_t_quantile(0.975, df).unwrap(), df).unwrap();
            assert!((p - 0.05).abs() < 1e-9, "df {df}: {p}");
        }
    }

    #[test]
    fn two_sided_t_p_value_matches_the_table() {
        // NIST table: P(T > 2.228) = 0.025 at 10 degrees of freedom, so the two-sided p is 0.05.
        let p = student_t_two_sided_p(2.228, 10.0).unwrap();
        assert!((p - 0.05).abs() < 2e-4, "{p}");
        assert!(student_t_two_sided_p(f64::NAN, 10.0).is_err());
        assert!(student_t_two_sided_p(1.0, 0.0).is_err());
    }

    #[test]
    fn chi_squared_critical_values_match_the_nist_table() {
        // NIST/SEMATECH e-Handbook 1.3.6.7.4: upper 5 % points 3.841 (1 df), 5.991 (2 df),
        // 7.815 (3 df); upper 0.1 % point 10.828 (1 df).
        for (x, df, p) in [(3.841, 1.0, 0.05), (5.991, 2.0, 0.05), (7.815, 3.0, 0.05), (10.828, 1.0, 0.001)] {
            let sf = chi_squared_sf(x, df).unwrap();
            assert!((sf - p).abs() < 2e-5 + 1e-3 * p, "{x} {df}: {sf}");
        }
        assert_eq!(chi_squared_sf(0.0, 1.0).unwrap(), 1.0);
    }

    #[test]
    fn huge_beta_posteriors_switch_to_the_normal_and_stay_accurate() {
        // Beta(500001, 9500001): the mean is a quantile of a nearly symmetric distribution, so
        // the CDF there must be 0.5 + O(skewness) ≈ 0.5002; statrs's Beta::cdf returns 0.50198.
        let posterior = Posterior::beta(500_001.0, 9_500_001.0).unwrap();
        let at_mean = posterior.cdf(posterior.mean());
        assert!((at_mean - 0.5).abs() < 3e-4, "{at_mean}");
        let small = Posterior::beta(11.0, 91.0).unwrap();
        assert!((small.mean() - 11.0 / 102.0).abs() < 1e-15);
        assert_eq!(small.cdf(1.5), 1.0);
        assert_eq!(small.pdf(f64::NAN), 0.0);
    }
}
