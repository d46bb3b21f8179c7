//! Treatment against control on one per-person metric: Welch's unequal-variance t-test, the
//! confidence interval of the difference, and the relative lift with its delta-method interval.
//!
//! - Welch (1947), "The generalization of 'Student's' problem when several different
//!   population variances are involved", Biometrika 34: t = (ȳₜ − ȳ꜀)/√(sₜ²/nₜ + s꜀²/n꜀) with
//!   the Welch–Satterthwaite degrees of freedom
//!   ν = (sₜ²/nₜ + s꜀²/n꜀)² / ((sₜ²/nₜ)²/(nₜ − 1) + (s꜀²/n꜀)²/(n꜀ − 1)).
//!   This is R's `t.test(var.equal = FALSE)`; the interval of the difference uses the same t
//!   quantile.
//! - Relative lift r = ȳₜ/ȳ꜀ − 1. For independent arms the delta method (first-order Taylor
//!   expansion of the ratio, e.g. Deng, Knoblich & Lu 2018, "Applying the Delta Method in
//!   Metric Analytics", KDD) gives var(ȳₜ/ȳ꜀) ≈ sₜ²/(nₜ ȳ꜀²) + ȳₜ² s꜀²/(n꜀ ȳ꜀⁴); the method is
//!   asymptotic, so its interval uses the normal quantile.
//!
//! Undefined quantities are `None`, never NaN: no test when both arms have zero variance, no
//! relative lift when the control mean is not positive (a change relative to zero or to a
//! negative baseline has no meaningful size or sign).

use super::distributions::{normal_quantile, student_t_quantile, student_t_two_sided_p};
use super::interval::{Interval, check_level, finite};
use super::summary::Moments;
use crate::Result;

/// The comparison of a treatment (or variant) with its control on one metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MeanComparison {
    pub treatment_mean: f64,
    pub control_mean: f64,
    /// Treatment mean − control mean.
    pub difference: f64,
    /// √(sₜ²/nₜ + s꜀²/n꜀).
    pub standard_error: f64,
    /// Welch interval of the difference at `confidence`; `None` when the standard error is 0.
    pub difference_interval: Option<Interval>,
    /// Treatment mean ÷ control mean − 1; `None` unless the control mean is positive.
    pub relative_lift: Option<f64>,
    /// Delta-method standard error of the relative lift.
    pub relative_lift_standard_error: Option<f64>,
    /// Delta-method (normal) interval of the relative lift at `confidence`.
    pub relative_lift_interval: Option<Interval>,
    pub t_statistic: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom.
    pub degrees_of_freedom: Option<f64>,
    /// Two-sided p-value of Welch's test of equal means.
    pub p_value: Option<f64>,
    /// The confidence level of both intervals.
    pub confidence: f64,
}

/// Welch's t-test and intervals for `treatment` against `control` at `confidence` ∈ (0, 1).
pub fn compare_means(treatment: &Moments, control: &Moments, confidence: f64) -> Result<MeanComparison> {
    check_level("confidence", confidence)?;
    let treatment = Moments::new(treatment.n, treatment.mean, treatment.variance)?;
    let control = Moments::new(control.n, control.mean, control.variance)?;
    let upper_probability = 1.0 - (1.0 - confidence) / 2.0;

    let difference = treatment.mean - control.mean;
    let (vt, vc) = (treatment.variance_of_mean(), control.variance_of_mean());
    let variance = vt + vc;
    let standard_error = variance.sqrt();

    let mut t_statistic = None;
    let mut degrees_of_freedom = None;
    let mut p_value = None;
    let mut difference_interval = None;
    if standard_error > 0.0 && standard_error.is_finite() && difference.is_finite() {
        let df =
            variance * variance / (vt * vt / (treatment.n as f64 - 1.0) + vc * vc / (control.n as f64 - 1.0));
        if let Some(df) = finite(df).filter(|&df| df > 0.0) {
            let t = difference / standard_error;
            t_statistic = finite(t);
            degrees_of_freedom = Some(df);
            p_value = Some(student_t_two_sided_p(t, df)?);
            let quantile = student_t_quantile(upper_probability, df)?;
            difference_interval = Interval::around(difference, quantile * standard_error);
        }
    }

    let mut relative_lift = None;
    let mut relative_lift_standard_error = None;
    let mut relative_lift_interval = None;
    if control.mean > 0.0 {
        let ratio = treatment.mean / control.mean;
        relative_lift = finite(ratio - 1.0);
        let c2 = control.mean * control.mean;
        let ratio_variance = vt / c2 + ratio * ratio * vc / c2;
        let se = finite(ratio_variance.sqrt()).filter(|&se| se > 0.0);
        relative_lift_standard_error = se;
        if let (Some(lift), Some(se)) = (relative_lift, se) {
            relative_lift_interval = Interval::around(lift, normal_quantile(upper_probability)? * se);
        }
    }

    Ok(MeanComparison {
        treatment_mean: treatment.mean,
        control_mean: control.mean,
        difference,
        standard_error,
        difference_interval,
        relative_lift,
        relative_lift_standard_error,
        relative_lift_interval,
        t_statistic,
        degrees_of_freedom,
        p_value,
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summary::ArmSummary;

    /// R's `sleep` data (Cushny & Peebles 1905, shipped with R as `datasets::sleep`).
    fn sleep() -> (Moments, Moments) {
        let group = |xs: &[f64]| ArmSummary {
            people: xs.len() as u64,
            conversions: 0,
            value_sum: xs.iter().sum(),
            value_sum_sq: xs.iter().map(|x| x * x).sum(),
        };
        let one = group(&[0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]);
        let two = group(&[1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]);
        (one.value_moments().unwrap(), two.value_moments().unwrap())
    }

    #[test]
    fn welch_matches_r_t_test_on_the_sleep_data() {
        // R documentation example `t.test(extra ~ group, data = sleep)` prints
        //   t = -1.8608, df = 17.776, p-value = 0.07939
        //   95 percent confidence interval: -3.3654832  0.2054832
        // (more digits, by the same formulas at 30 digits: t = -1.860813467,
        // df = 17.776473516, p = 0.079394140).
        let (one, two) = sleep();
        let c = compare_means(&one, &two, 0.95).unwrap();
        assert!((c.difference - -1.58).abs() < 1e-12);
        assert!((c.t_statistic.unwrap() - -1.860_813_467).abs() < 1e-8);
        assert!((c.degrees_of_freedom.unwrap() - 17.776_473_516).abs() < 1e-8);
        assert!((c.p_value.unwrap() - 0.079_394_140).abs() < 1e-8);
        let ci = c.difference_interval.unwrap();
        assert!((ci.lower - -3.365_483_2).abs() < 1e-7, "{ci:?}");
        assert!((ci.upper - 0.205_483_2).abs() < 1e-7, "{ci:?}");
    }

    #[test]
    fn relative_lift_uses_the_delta_method_variance() {
        // Hand-computed from the formula: treatment 0.12 (s² 0.1056, n 10 000), control 0.10
        // (s² 0.09, n 10 000): var = 0.1056/(10⁴·0.01) + 1.44·0.09/(10⁴·0.01) = 0.002352,
        // se = 0.0484974, lift 0.2, 95 % interval 0.2 ± 1.959964·0.0484974.
        let t = Moments::new(10_000, 0.12, 0.1056).unwrap();
        let c = Moments::new(10_000, 0.10, 0.09).unwrap();
        let r = compare_means(&t, &c, 0.95).unwrap();
        assert!((r.relative_lift.unwrap() - 0.2).abs() < 1e-12);
        let se = r.relative_lift_standard_error.unwrap();
        assert!((se - 0.002_352_f64.sqrt()).abs() < 1e-12);
        let ci = r.relative_lift_interval.unwrap();
        assert!((ci.upper - (0.2 + 1.959_963_984_540_054 * se)).abs() < 1e-12);
    }

    #[test]
    fn undefined_quantities_are_none_not_nan() {
        // No conversions anywhere: zero variance, zero control mean.
        let zero = ArmSummary::from_counts(50, 0).conversion_moments().unwrap();
        let r = compare_means(&zero, &zero, 0.95).unwrap();
        assert_eq!(r.difference, 0.0);
        assert_eq!((r.t_statistic, r.p_value, r.degrees_of_freedom), (None, None, None));
        assert_eq!((r.difference_interval, r.relative_lift, r.relative_lift_interval), (None, None, None));
        // Control without conversions, treatment with some: the test exists (df = nₜ − 1), the
        // relative lift does not.
        let some = ArmSummary::from_counts(50, 5).conversion_moments().unwrap();
        let r = compare_means(&some, &zero, 0.95).unwrap();
        assert!((r.degrees_of_freedom.unwrap() - 49.0).abs() < 1e-9);
        assert!(r.p_value.unwrap() > 0.0 && r.relative_lift.is_none());
        assert!(compare_means(&some, &zero, 1.0).is_err());
    }

    #[test]
    fn the_interval_widens_with_confidence() {
        let (one, two) = sleep();
        let narrow = compare_means(&one, &two, 0.8).unwrap().difference_interval.unwrap();
        let wide = compare_means(&one, &two, 0.99).unwrap().difference_interval.unwrap();
        assert!(wide.lower < narrow.lower && narrow.upper < wide.upper);
    }
}
