//! The planning calculator: analysis of raw counts (no campaign needed) and the sample size or
//! power of a test of two proportions or two means.
//!
//! Sample size per arm for a two-sided test of p₁ = p₂ at level α with power 1 − β (Fleiss,
//! Levin & Paik, Statistical Methods for Rates and Proportions, 3rd ed., 2003, eq. 4.14
//! without the continuity correction; the formula behind R's `power.prop.test`):
//!
//! ```text
//! n = ( z₁₋α/₂ √(2 p̄ q̄) + z₁₋β √(p₁q₁ + p₂q₂) )² / (p₂ − p₁)²,   p̄ = (p₁ + p₂)/2
//! ```
//!
//! and its inverse for the power at a given n. For means (value per person) it is the normal
//! approximation n = 2σ²(z₁₋α/₂ + z₁₋β)²/δ² (Lehr's "16 σ²/δ²" for α = 0.05, power 0.8). With
//! k arms each variant is compared with the control at α/(k − 1) (Bonferroni, which is also
//! where Holm's procedure starts), so the plan stays valid for the A/B/n analysis.

use super::MAX_ARMS;
use super::distributions::{normal_cdf, normal_quantile};
use super::experiment::{ExperimentAnalysis, ExperimentArm, ExperimentOptions, analyze_experiment};
use super::interval::check_level;
use super::summary::ArmSummary;
use crate::{MeasurementError, Result};

/// Default significance level of a plan (two-sided).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default power of a plan.
pub const DEFAULT_POWER: f64 = 0.8;
/// Sample sizes above this are refused as undetectable in practice.
const MAX_SAMPLE_SIZE: f64 = 1e15;

/// One arm given by its counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CountArm {
    pub label: String,
    pub visitors: u64,
    pub conversions: u64,
    pub planned_weight: Option<f64>,
}

/// Analyses arms known only by visitors and conversions: the A/B/n analysis of
/// [`analyze_experiment`] on the conversion rate (value per person is not analysed, it would
/// be the same metric).
pub fn analyze_counts(arms: &[CountArm], options: &ExperimentOptions) -> Result<ExperimentAnalysis> {
    let arms: Vec<ExperimentArm> = arms
        .iter()
        .map(|arm| ExperimentArm {
            planned_weight: arm.planned_weight,
            ..ExperimentArm::new(arm.label.clone(), ArmSummary::from_counts(arm.visitors, arm.conversions))
        })
        .collect();
    analyze_experiment(&arms, &ExperimentOptions { analyze_value: false, ..options.clone() })
}

/// The smallest change the test should detect.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Effect {
    /// A fraction of the baseline: 0.1 means the rate moves from p to 1.1·p.
    Relative(f64),
    /// In the rate's own unit: 0.02 means the rate moves from p to p + 0.02 (two points).
    Absolute(f64),
}

/// A sample-size question about conversion rates.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProportionPlan {
    /// The control's expected conversion rate, in (0, 1).
    pub baseline_rate: f64,
    pub minimum_detectable_effect: Effect,
    /// Family-wise significance level, two-sided; default 0.05.
    pub alpha: f64,
    /// Power against the minimum detectable effect; default 0.8.
    pub power: f64,
    /// Arms including the control; default 2.
    pub arms: u32,
}

impl ProportionPlan {
    /// A plan with the defaults: α = 0.05 two-sided, power 0.8, two arms.
    pub fn new(baseline_rate: f64, minimum_detectable_effect: Effect) -> Self {
        Self { baseline_rate, minimum_detectable_effect, alpha: DEFAULT_ALPHA, power: DEFAULT_POWER, arms: 2 }
    }
}

/// The answer to a sample-size question.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SampleSize {
    /// People needed in each arm (rounded up).
    pub per_arm: u64,
    /// People needed in all arms together.
    pub total: u64,
    /// The unrounded formula value per arm.
    pub per_arm_exact: f64,
    /// The rate the variant is assumed to reach (proportions only).
    pub target_rate: Option<f64>,
    /// The level each variant-versus-control test is run at: α/(arms − 1).
    pub comparison_alpha: f64,
}

/// People per arm to detect `plan.minimum_detectable_effect` on a conversion rate.
pub fn sample_size_for_proportions(plan: &ProportionPlan) -> Result<SampleSize> {
    let (p1, p2) = rates(plan.baseline_rate, plan.minimum_detectable_effect)?;
    let comparison_alpha = comparison_alpha(plan.alpha, plan.arms)?;
    check_level("power", plan.power)?;
    let z_alpha = normal_quantile(1.0 - comparison_alpha / 2.0)?;
    let z_beta = normal_quantile(plan.power)?;
    let mean = (p1 + p2) / 2.0;
    let root =
        z_alpha * (2.0 * mean * (1.0 - mean)).sqrt() + z_beta * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    let exact = root * root / ((p2 - p1) * (p2 - p1));
    sample_size(exact, plan.arms, Some(p2), comparison_alpha)
}

/// Power of the two-proportion test with `per_arm` people in each arm (the inverse of
/// [`sample_size_for_proportions`]; `plan.power` is ignored):
/// Φ((√n·|p₂ − p₁| − z₁₋α/₂ √(2p̄q̄)) / √(p₁q₁ + p₂q₂)).
pub fn power_for_proportions(plan: &ProportionPlan, per_arm: u64) -> Result<f64> {
    let (p1, p2) = rates(plan.baseline_rate, plan.minimum_detectable_effect)?;
    let comparison_alpha = comparison_alpha(plan.alpha, plan.arms)?;
    if per_arm == 0 {
        return Err(MeasurementError::invalid("the number of people per arm must be positive"));
    }
    let z_alpha = normal_quantile(1.0 - comparison_alpha / 2.0)?;
    let mean = (p1 + p2) / 2.0;
    let n = per_arm as f64;
    let x = (n.sqrt() * (p2 - p1).abs() - z_alpha * (2.0 * mean * (1.0 - mean)).sqrt())
        / (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Ok(normal_cdf(x))
}

/// People per arm to detect a difference `minimum_detectable_difference` in a mean whose
/// per-person standard deviation is `standard_deviation` (value per person, say).
pub fn sample_size_for_means(
    standard_deviation: f64,
    minimum_detectable_difference: f64,
    alpha: f64,
    power: f64,
    arms: u32,
) -> Result<SampleSize> {
    if !(standard_deviation.is_finite() && standard_deviation > 0.0) {
        return Err(MeasurementError::invalid("the standard deviation must be a positive number"));
    }
    if !(minimum_detectable_difference.is_finite() && minimum_detectable_difference != 0.0) {
        return Err(MeasurementError::invalid("the minimum detectable difference must be a non-zero number"));
    }
    let comparison_alpha = comparison_alpha(alpha, arms)?;
    check_level("power", power)?;
    let z = normal_quantile(1.0 - comparison_alpha / 2.0)? + normal_quantile(power)?;
    let ratio = standard_deviation / minimum_detectable_difference;
    sample_size(2.0 * ratio * ratio * z * z, arms, None, comparison_alpha)
}

/// The baseline and target rates, both strictly inside (0, 1) and different.
fn rates(baseline: f64, effect: Effect) -> Result<(f64, f64)> {
    check_level("the baseline rate", baseline)?;
    let target = match effect {
        Effect::Relative(r) => baseline * (1.0 + r),
        Effect::Absolute(d) => baseline + d,
    };
    if !(target.is_finite() && target > 0.0 && target < 1.0) {
        return Err(MeasurementError::invalid(format!(
            "the effect moves the rate from {baseline} to {target}, outside (0, 1)"
        )));
    }
    if target == baseline {
        return Err(MeasurementError::invalid("the minimum detectable effect must not be zero"));
    }
    Ok((baseline, target))
}

fn comparison_alpha(alpha: f64, arms: u32) -> Result<f64> {
    check_level("alpha", alpha)?;
    if !(2..=MAX_ARMS as u32).contains(&arms) {
        return Err(MeasurementError::invalid(format!("a plan needs 2 to {MAX_ARMS} arms, got {arms}")));
    }
    Ok(alpha / f64::from(arms - 1))
}

fn sample_size(exact: f64, arms: u32, target_rate: Option<f64>, comparison_alpha: f64) -> Result<SampleSize> {
    if !(exact.is_finite() && exact <= MAX_SAMPLE_SIZE) {
        return Err(MeasurementError::invalid("the effect is too small to detect with any realistic sample"));
    }
    let per_arm = exact.ceil().max(2.0) as u64;
    Ok(SampleSize {
        per_arm,
        total: per_arm * u64::from(arms),
        per_arm_exact: exact,
        target_rate,
        comparison_alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_power_prop_test_documentation_examples() {
        // R, ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90)  # => n = 76.7
        // and power.prop.test(n = 50, p1 = .50, p2 = .75)  # => power = 0.740.
        // (By the formula at 30 digits: n = 76.7069, power = 0.740166.)
        let plan = ProportionPlan { power: 0.9, ..ProportionPlan::new(0.5, Effect::Absolute(0.25)) };
        let size = sample_size_for_proportions(&plan).unwrap();
        assert!((size.per_arm_exact - 76.706_928_451_777).abs() < 1e-9, "{size:?}");
        assert_eq!((size.per_arm, size.total), (77, 154));
        let power = power_for_proportions(&plan, 50).unwrap();
        assert!((power - 0.740_165_901_331).abs() < 1e-9, "{power}");
    }

    #[test]
    fn jmp_two_sample_proportions_example() {
        // JMP 13.2 documentation, "Two Sample Proportions": p₁ = 0.08, p₂ = 0.06, α = 0.05
        // two-sided, power 0.8 → "sample sizes of 2554" (the formula: 2553.63).
        let plan = ProportionPlan::new(0.08, Effect::Absolute(-0.02));
        let size = sample_size_for_proportions(&plan).unwrap();
        assert_eq!(size.per_arm, 2_554);
        assert!((size.per_arm_exact - 2_553.631_099_750).abs() < 1e-6);
    }

    #[test]
    fn ten_percent_to_twelve_percent() {
        // p₁ = 0.10, p₂ = 0.12 (a 20 % relative lift), α = 0.05, power 0.8: 3 840.85 → 3 841 per
        // arm by the formula above (R: power.prop.test(p1 = .1, p2 = .12, power = .8)).
        let relative =
            sample_size_for_proportions(&ProportionPlan::new(0.10, Effect::Relative(0.2))).unwrap();
        let absolute =
            sample_size_for_proportions(&ProportionPlan::new(0.10, Effect::Absolute(0.02))).unwrap();
        assert_eq!(relative.per_arm, 3_841);
        assert!((relative.per_arm_exact - 3_840.847_482_436).abs() < 1e-6);
        assert!((relative.per_arm_exact - absolute.per_arm_exact).abs() < 1e-6);
        assert!((relative.target_rate.unwrap() - 0.12).abs() < 1e-15);
        // Three arms: each comparison at α/2 needs more people.
        let three = sample_size_for_proportions(&ProportionPlan {
            arms: 3,
            ..ProportionPlan::new(0.10, Effect::Relative(0.2))
        })
        .unwrap();
        assert_eq!(three.comparison_alpha, 0.025);
        assert!(three.per_arm > relative.per_arm && three.total == three.per_arm * 3);
    }

    #[test]
    fn lehrs_rule_for_means() {
        // Lehr (1992), "Sixteen s-squared over d-squared": n ≈ 16σ²/δ² per group at α = 0.05,
        // power 0.8; exactly 2(1.959964 + 0.841621)² = 15.698 for δ = σ.
        let size = sample_size_for_means(10.0, 10.0, 0.05, 0.8, 2).unwrap();
        assert!((size.per_arm_exact - 15.697_759_468_698).abs() < 1e-9);
        assert_eq!(size.per_arm, 16);
        let quarter = sample_size_for_means(10.0, 2.5, 0.05, 0.8, 2).unwrap();
        assert!((quarter.per_arm_exact / size.per_arm_exact - 16.0).abs() < 1e-12);
    }

    #[test]
    fn bad_plans_are_refused() {
        let plan = ProportionPlan::new(0.1, Effect::Relative(0.1));
        assert!(sample_size_for_proportions(&ProportionPlan { baseline_rate: 0.0, ..plan }).is_err());
        assert!(
            sample_size_for_proportions(&ProportionPlan {
                minimum_detectable_effect: Effect::Relative(0.0),
                ..plan
            })
            .is_err()
        );
        assert!(
            sample_size_for_proportions(&ProportionPlan {
                minimum_detectable_effect: Effect::Absolute(0.95),
                ..plan
            })
            .is_err()
        );
        assert!(sample_size_for_proportions(&ProportionPlan { alpha: 1.0, ..plan }).is_err());
        assert!(sample_size_for_proportions(&ProportionPlan { power: 0.0, ..plan }).is_err());
        assert!(sample_size_for_proportions(&ProportionPlan { arms: 1, ..plan }).is_err());
        assert!(
            sample_size_for_proportions(&ProportionPlan {
                minimum_detectable_effect: Effect::Absolute(1e-12),
                ..plan
            })
            .is_err()
        );
        assert!(power_for_proportions(&plan, 0).is_err());
        assert!(sample_size_for_means(0.0, 1.0, 0.05, 0.8, 2).is_err());
        assert!(sample_size_for_means(1.0, 0.0, 0.05, 0.8, 2).is_err());
    }

    #[test]
    fn counts_are_analysed_without_a_campaign() {
        // 8 of 793 against 15 of 736. On 0/1 data Welch's statistic is the unpooled
        // two-proportion z with unbiased variances, z = (p₂ − p₁)/√(p₁q₁/(n₁−1) + p₂q₂/(n₂−1)),
        // and with ~1 300 degrees of freedom its p-value is the normal one to within 10⁻³.
        let arms = [
            CountArm { label: "with proof".into(), visitors: 793, conversions: 8, planned_weight: None },
            CountArm { label: "without".into(), visitors: 736, conversions: 15, planned_weight: None },
        ];
        let analysis = analyze_counts(&arms, &ExperimentOptions::default()).unwrap();
        assert!(analysis.value.is_none());
        let c = &analysis.conversion.comparisons[0].comparison;
        let (p1, p2) = (8.0_f64 / 793.0, 15.0_f64 / 736.0);
        let se = (p1 * (1.0 - p1) / 792.0 + p2 * (1.0 - p2) / 735.0).sqrt();
        let z = (p2 - p1) / se;
        assert!((c.standard_error - se).abs() < 1e-15);
        assert!((c.t_statistic.unwrap() - z).abs() < 1e-12);
        assert!((c.p_value.unwrap() - 2.0 * (1.0 - normal_cdf(z))).abs() < 1e-3, "{c:?}");
        let chances = analysis.conversion.bayesian.unwrap();
        assert!(chances[1].chance_to_win > 0.9);
        assert_eq!(analysis.arms[1].value_per_person, p2);
    }
}
