//! A/B/n and multivariate experiments: every variant against one control on the conversion
//! rate and on value per person, with
//!
//! - Welch tests and intervals ([`compare_means`]), p-values corrected for the k − 1
//!   comparisons (Holm by default, [`Correction`]) and intervals at the matching Bonferroni
//!   confidence, so that all intervals hold together;
//! - the Bayesian chance to win and expected loss across all arms ([`super::bayes`]);
//! - the sample-ratio check against the planned weights ([`sample_ratio_mismatch`]);
//! - optionally the always-valid sequential test ([`always_valid`]), its α split like the
//!   intervals' (α/(k − 1) unless uncorrected) and its p-values corrected like the
//!   fixed-horizon ones.
//!
//! A multivariate test is an A/B/n test whose arms are combinations of factor levels. When the
//! arms carry their levels, a main effect per factor level is added: the arms at that level
//! pooled against the arms at the control's level of the same factor. In a balanced full
//! factorial design this is the usual marginal (main-effect) comparison, averaged over the
//! other factors (Montgomery, Design and Analysis of Experiments, ch. 5); in an unbalanced
//! one the other factors are not averaged out equally, so it is descriptive only. These
//! factor comparisons are not corrected for multiplicity.

use super::MAX_ARMS;
use super::bayes::{BetaPrior, Chance, conversion_chances, value_chances};
use super::correction::Correction;
use super::interval::{DEFAULT_CONFIDENCE, check_level};
use super::sequential::{SequentialOptions, SequentialTest, always_valid};
use super::srm::{DEFAULT_SRM_THRESHOLD, SampleRatioCheck, sample_ratio_mismatch};
use super::summary::{ArmSummary, Moments};
use super::welch::{MeanComparison, compare_means};
use crate::{MeasurementError, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Longest arm label, factor name or level accepted.
const MAX_LABEL_CHARS: usize = 200;
/// Most factors a multivariate arm may list.
const MAX_FACTORS: usize = 16;

/// One factor level of a multivariate arm ("headline" = "B").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FactorLevel {
    pub factor: String,
    pub level: String,
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExperimentArm {
    /// Unique within the experiment.
    pub label: String,
    pub summary: ArmSummary,
    /// Planned share of traffic, any positive scale; all arms or none (then equal shares).
    pub planned_weight: Option<f64>,
    /// Factor levels of a multivariate arm; empty for a plain A/B/n arm.
    pub factors: Vec<FactorLevel>,
}

impl ExperimentArm {
    /// A plain arm with no planned weight and no factors.
    pub fn new(label: impl Into<String>, summary: ArmSummary) -> Self {
        Self { label: label.into(), summary, planned_weight: None, factors: Vec::new() }
    }
}

/// Options of [`analyze_experiment`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExperimentOptions {
    /// Label of the control arm; the first arm when `None`.
    pub control: Option<String>,
    /// Family confidence of the intervals, in (0, 1); default 0.95.
    pub confidence: f64,
    pub correction: Correction,
    /// Prior of the conversion rates for the Bayesian read-out; default Beta(1, 1).
    pub prior: BetaPrior,
    /// p-value under which the sample ratio is flagged; default 0.001.
    pub srm_threshold: f64,
    /// Analyse value per person as well as the conversion rate (off for raw counts, where the
    /// two are the same metric).
    pub analyze_value: bool,
    /// Add the always-valid sequential test.
    pub sequential: Option<SequentialOptions>,
}

impl Default for ExperimentOptions {
    fn default() -> Self {
        Self {
            control: None,
            confidence: DEFAULT_CONFIDENCE,
            correction: Correction::Holm,
            prior: BetaPrior::default(),
            srm_threshold: DEFAULT_SRM_THRESHOLD,
            analyze_value: true,
            sequential: None,
        }
    }
}

/// What one arm looks like.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ArmOverview {
    pub label: String,
    pub people: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    pub value_per_person: f64,
}

/// One variant against the control on one metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VariantComparison {
    pub label: String,
    /// Intervals at [`ExperimentAnalysis::interval_confidence`]; `p_value` uncorrected.
    pub comparison: MeanComparison,
    /// The p-value after the experiment's correction.
    pub adjusted_p_value: Option<f64>,
    /// The always-valid test, when asked for and defined.
    pub sequential: Option<SequentialTest>,
    /// Its p-value after the experiment's correction.
    pub sequential_adjusted_p_value: Option<f64>,
}

/// One arm's Bayesian read-out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ArmChance {
    pub label: String,
    pub posterior_mean: f64,
    pub chance_to_win: f64,
    pub expected_loss: f64,
}

/// Everything about one metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricAnalysis {
    /// One entry per variant (every arm but the control), in arm order.
    pub comparisons: Vec<VariantComparison>,
    /// One entry per arm, control included; `None` when undefined (value per person with an
    /// arm where it does not vary).
    pub bayesian: Option<Vec<ArmChance>>,
}

/// A factor level's main effect in a multivariate test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FactorEffect {
    pub factor: String,
    pub level: String,
    /// The control arm's level of this factor.
    pub baseline_level: String,
    /// The labels of the arms pooled at `level`.
    pub arms: Vec<String>,
    /// The labels of the arms pooled at `baseline_level`.
    pub baseline_arms: Vec<String>,
    /// Uncorrected, at the experiment's (family) confidence.
    pub conversion: MeanComparison,
    pub value: Option<MeanComparison>,
}

/// The read-out of an A/B/n or multivariate experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExperimentAnalysis {
    pub control: String,
    pub arms: Vec<ArmOverview>,
    pub conversion: MetricAnalysis,
    /// `None` when value was not analysed.
    pub value: Option<MetricAnalysis>,
    pub sample_ratio: SampleRatioCheck,
    pub correction: Correction,
    /// The family confidence asked for.
    pub confidence: f64,
    /// The confidence of each variant's interval (Bonferroni-adjusted unless no correction).
    pub interval_confidence: f64,
    /// Main effects, when every arm lists its factor levels.
    pub factor_effects: Vec<FactorEffect>,
}

/// Analyses 2 to 64 arms, each with at least 2 people.
pub fn analyze_experiment(arms: &[ExperimentArm], options: &ExperimentOptions) -> Result<ExperimentAnalysis> {
    check_level("confidence", options.confidence)?;
    let control = validate_arms(arms, options)?;
    let comparisons = arms.len() - 1;
    let interval_confidence = options.correction.interval_confidence(options.confidence, comparisons);
    if let Some(s) = &options.sequential {
        check_level("the sequential α", s.alpha)?;
    }
    // The sequential intervals hold together like the fixed-horizon ones: α split the same way.
    let sequential = options.sequential.map(|s| SequentialOptions {
        alpha: 1.0 - options.correction.interval_confidence(1.0 - s.alpha, comparisons),
        ..s
    });

    let summaries: Vec<ArmSummary> = arms.iter().map(|a| a.summary).collect();
    let conversion_moments =
        summaries.iter().map(ArmSummary::conversion_moments).collect::<Result<Vec<_>>>()?;
    let conversion = analyze_metric(
        arms,
        control,
        &conversion_moments,
        interval_confidence,
        options.correction,
        sequential.as_ref(),
        Some(conversion_chances(&summaries, options.prior)?),
    )?;
    let value = if options.analyze_value {
        let moments = summaries.iter().map(ArmSummary::value_moments).collect::<Result<Vec<_>>>()?;
        let chances = value_chances(&summaries)?;
        Some(analyze_metric(
            arms,
            control,
            &moments,
            interval_confidence,
            options.correction,
            sequential.as_ref(),
            chances,
        )?)
    } else {
        None
    };

    let observed: Vec<u64> = arms.iter().map(|a| a.summary.people).collect();
    let weights: Vec<f64> = arms.iter().map(|a| a.planned_weight.unwrap_or(1.0)).collect();
    let sample_ratio = sample_ratio_mismatch(&observed, &weights, options.srm_threshold)?;

    Ok(ExperimentAnalysis {
        control: arms[control].label.clone(),
        arms: arms
            .iter()
            .zip(&conversion_moments)
            .map(|(arm, moments)| ArmOverview {
                label: arm.label.clone(),
                people: arm.summary.people,
                conversions: arm.summary.conversions,
                conversion_rate: moments.mean,
                value_per_person: arm.summary.value_sum / arm.summary.people as f64,
            })
            .collect(),
        conversion,
        value,
        sample_ratio,
        correction: options.correction,
        confidence: options.confidence,
        interval_confidence,
        factor_effects: factor_effects(arms, control, options)?,
    })
}

/// Checks the arms and returns the control's index.
fn validate_arms(arms: &[ExperimentArm], options: &ExperimentOptions) -> Result<usize> {
    if !(2..=MAX_ARMS).contains(&arms.len()) {
        return Err(MeasurementError::invalid(format!(
            "an experiment needs 2 to {MAX_ARMS} arms, got {}",
            arms.len()
        )));
    }
    let mut labels = BTreeSet::new();
    for arm in arms {
        check_label("arm label", &arm.label)?;
        if !labels.insert(arm.label.as_str()) {
            return Err(MeasurementError::invalid(format!("two arms are labelled '{}'", arm.label)));
        }
        arm.summary.validate().map_err(|e| MeasurementError::invalid(format!("arm '{}': {e}", arm.label)))?;
        if arm.summary.people < 2 {
            return Err(MeasurementError::invalid(format!(
                "arm '{}' needs at least 2 people, it has {}",
                arm.label, arm.summary.people
            )));
        }
        if let Some(weight) = arm.planned_weight
            && !(weight.is_finite() && weight > 0.0)
        {
            return Err(MeasurementError::invalid(format!(
                "arm '{}': the planned weight must be a positive number, got {weight}",
                arm.label
            )));
        }
    }
    let weighted = arms.iter().filter(|a| a.planned_weight.is_some()).count();
    if weighted != 0 && weighted != arms.len() {
        return Err(MeasurementError::invalid("give a planned weight to every arm or to none"));
    }
    match &options.control {
        None => Ok(0),
        Some(label) => arms
            .iter()
            .position(|a| &a.label == label)
            .ok_or_else(|| MeasurementError::invalid(format!("no arm is labelled '{label}' (the control)"))),
    }
}

fn check_label(what: &str, label: &str) -> Result<()> {
    if label.trim().is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        return Err(MeasurementError::invalid(format!(
            "each {what} must be 1 to {MAX_LABEL_CHARS} characters"
        )));
    }
    Ok(())
}

fn analyze_metric(
    arms: &[ExperimentArm],
    control: usize,
    moments: &[Moments],
    interval_confidence: f64,
    correction: Correction,
    sequential: Option<&SequentialOptions>,
    chances: Option<Vec<Chance>>,
) -> Result<MetricAnalysis> {
    let mut comparisons = Vec::with_capacity(arms.len() - 1);
    for (index, arm) in arms.iter().enumerate().filter(|(i, _)| *i != control) {
        let comparison = compare_means(&moments[index], &moments[control], interval_confidence)?;
        let sequential = match sequential {
            Some(options) => always_valid(&moments[index], &moments[control], options, None)?,
            None => None,
        };
        comparisons.push(VariantComparison {
            label: arm.label.clone(),
            comparison,
            adjusted_p_value: None,
            sequential,
            sequential_adjusted_p_value: None,
        });
    }
    let raw: Vec<Option<f64>> = comparisons.iter().map(|c| c.comparison.p_value).collect();
    let raw_sequential: Vec<Option<f64>> =
        comparisons.iter().map(|c| c.sequential.map(|s| s.p_value)).collect();
    for ((comparison, adjusted), sequential) in
        comparisons.iter_mut().zip(correction.adjust(&raw)).zip(correction.adjust(&raw_sequential))
    {
        comparison.adjusted_p_value = adjusted;
        comparison.sequential_adjusted_p_value = sequential;
    }
    let bayesian = chances.map(|chances| {
        arms.iter()
            .zip(chances)
            .map(|(arm, chance)| ArmChance {
                label: arm.label.clone(),
                posterior_mean: chance.posterior_mean,
                chance_to_win: chance.chance_to_win,
                expected_loss: chance.expected_loss,
            })
            .collect()
    });
    Ok(MetricAnalysis { comparisons, bayesian })
}

/// Main effects of every factor level other than the control's, when the arms list factors.
fn factor_effects(
    arms: &[ExperimentArm],
    control: usize,
    options: &ExperimentOptions,
) -> Result<Vec<FactorEffect>> {
    if arms.iter().all(|a| a.factors.is_empty()) {
        return Ok(Vec::new());
    }
    // Every arm must name the same factors, each once.
    let mut levels_by_arm: Vec<BTreeMap<&str, &str>> = Vec::with_capacity(arms.len());
    for arm in arms {
        if arm.factors.len() > MAX_FACTORS {
            return Err(MeasurementError::invalid(format!("an arm may list at most {MAX_FACTORS} factors")));
        }
        let mut levels = BTreeMap::new();
        for FactorLevel { factor, level } in &arm.factors {
            check_label("factor name", factor)?;
            check_label("factor level", level)?;
            if levels.insert(factor.as_str(), level.as_str()).is_some() {
                return Err(MeasurementError::invalid(format!(
                    "arm '{}' lists factor '{factor}' twice",
                    arm.label
                )));
            }
        }
        levels_by_arm.push(levels);
    }
    let factors: Vec<&str> = levels_by_arm[control].keys().copied().collect();
    for (arm, levels) in arms.iter().zip(&levels_by_arm) {
        if levels.keys().copied().collect::<Vec<_>>() != factors {
            return Err(MeasurementError::invalid(format!(
                "arm '{}' does not list the same factors as the control",
                arm.label
            )));
        }
    }

    let mut effects = Vec::new();
    for factor in factors {
        let baseline = levels_by_arm[control][factor];
        let at = |level: &str| -> Vec<usize> {
            (0..arms.len()).filter(|&i| levels_by_arm[i][factor] == level).collect()
        };
        let baseline_arms = at(baseline);
        let levels: BTreeSet<&str> =
            levels_by_arm.iter().map(|l| l[factor]).filter(|&l| l != baseline).collect();
        for level in levels {
            let level_arms = at(level);
            let pooled = |indices: &[usize]| -> Result<ArmSummary> {
                indices.iter().try_fold(ArmSummary::default(), |acc, &i| acc.merged(&arms[i].summary))
            };
            let (treated, base) = (pooled(&level_arms)?, pooled(&baseline_arms)?);
            let conversion = compare_means(
                &treated.conversion_moments()?,
                &base.conversion_moments()?,
                options.confidence,
            )?;
            let value = if options.analyze_value {
                Some(compare_means(&treated.value_moments()?, &base.value_moments()?, options.confidence)?)
            } else {
                None
            };
            let labels = |indices: &[usize]| indices.iter().map(|&i| arms[i].label.clone()).collect();
            effects.push(FactorEffect {
                factor: factor.to_owned(),
                level: level.to_owned(),
                baseline_level: baseline.to_owned(),
                arms: labels(&level_arms),
                baseline_arms: labels(&baseline_arms),
                conversion,
                value,
            });
        }
    }
    Ok(effects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::correction::holm;

    fn arm(label: &str, people: u64, conversions: u64) -> ExperimentArm {
        ExperimentArm::new(label, ArmSummary::from_counts(people, conversions))
    }

    #[test]
    fn an_a_b_test_is_the_plain_comparison() {
        // With one comparison the corrections change nothing.
        let arms = [arm("A", 10_000, 1_000), arm("B", 10_000, 1_100)];
        let options = ExperimentOptions { analyze_value: false, ..Default::default() };
        let analysis = analyze_experiment(&arms, &options).unwrap();
        let b = &analysis.conversion.comparisons[0];
        let direct = compare_means(
            &arms[1].summary.conversion_moments().unwrap(),
            &arms[0].summary.conversion_moments().unwrap(),
            0.95,
        )
        .unwrap();
        assert_eq!(b.comparison, direct);
        assert_eq!(b.adjusted_p_value, direct.p_value);
        assert_eq!(analysis.interval_confidence, 0.95);
        assert_eq!(analysis.control, "A");
        assert!(analysis.value.is_none());
        let chances = analysis.conversion.bayesian.unwrap();
        assert!((chances[0].chance_to_win + chances[1].chance_to_win - 1.0).abs() < 1e-9);
        assert!(!analysis.sample_ratio.mismatch);
    }

    #[test]
    fn a_b_n_corrects_with_holm_and_widens_the_intervals() {
        let arms = [
            arm("control", 20_000, 2_000),
            arm("B", 20_000, 2_150),
            arm("C", 20_000, 2_020),
            arm("D", 20_000, 2_240),
        ];
        let options = ExperimentOptions {
            control: Some("control".into()),
            sequential: Some(SequentialOptions::default()),
            ..Default::default()
        };
        let analysis = analyze_experiment(&arms, &options).unwrap();
        assert!((analysis.interval_confidence - (1.0 - 0.05 / 3.0)).abs() < 1e-15);
        let comparisons = &analysis.conversion.comparisons;
        let raw: Vec<Option<f64>> = comparisons.iter().map(|c| c.comparison.p_value).collect();
        let adjusted: Vec<Option<f64>> = comparisons.iter().map(|c| c.adjusted_p_value).collect();
        assert_eq!(adjusted, holm(&raw));
        // The sequential tests split α over the three comparisons too.
        let sequential = comparisons[2].sequential.unwrap();
        assert!((sequential.alpha - 0.05 / 3.0).abs() < 1e-15);
        let raw_sequential: Vec<Option<f64>> =
            comparisons.iter().map(|c| c.sequential.map(|s| s.p_value)).collect();
        let adjusted_sequential: Vec<Option<f64>> =
            comparisons.iter().map(|c| c.sequential_adjusted_p_value).collect();
        assert_eq!(adjusted_sequential, holm(&raw_sequential));
        assert!(comparisons.iter().all(|c| c.adjusted_p_value >= c.comparison.p_value));
        assert_eq!(comparisons.iter().map(|c| c.label.as_str()).collect::<Vec<_>>(), ["B", "C", "D"]);
        let unadjusted = compare_means(
            &arms[3].summary.conversion_moments().unwrap(),
            &arms[0].summary.conversion_moments().unwrap(),
            0.95,
        )
        .unwrap();
        let (wide, narrow) =
            (comparisons[2].comparison.difference_interval.unwrap(), unadjusted.difference_interval.unwrap());
        assert!(wide.lower < narrow.lower && narrow.upper < wide.upper);
        let chances = analysis.conversion.bayesian.unwrap();
        assert_eq!(chances.len(), 4);
        let best = chances.iter().max_by(|a, b| a.chance_to_win.total_cmp(&b.chance_to_win)).unwrap();
        assert_eq!(best.label, "D");
        let total: f64 = chances.iter().map(|c| c.chance_to_win).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // Count-only arms: value per person is the same indicator.
        let value = analysis.value.unwrap();
        assert_eq!(value.comparisons[0].comparison.p_value, comparisons[0].comparison.p_value);
    }

    #[test]
    fn sample_ratio_uses_the_planned_weights_and_sequential_tests_are_added() {
        let mut arms = vec![arm("A", 9_000, 900), arm("B", 1_000, 150)];
        arms[0].planned_weight = Some(90.0);
        arms[1].planned_weight = Some(10.0);
        let options =
            ExperimentOptions { sequential: Some(SequentialOptions::default()), ..Default::default() };
        let analysis = analyze_experiment(&arms, &options).unwrap();
        assert_eq!(analysis.sample_ratio.chi_squared, 0.0);
        let b = &analysis.conversion.comparisons[0];
        let sequential = b.sequential.unwrap();
        assert!(sequential.p_value >= b.comparison.p_value.unwrap());
        assert_eq!(b.sequential_adjusted_p_value, Some(sequential.p_value));
        // The same arms against an equal split are a glaring mismatch.
        arms.iter_mut().for_each(|a| a.planned_weight = None);
        assert!(analyze_experiment(&arms, &options).unwrap().sample_ratio.mismatch);
        arms[0].planned_weight = Some(1.0);
        assert!(
            analyze_experiment(&arms, &options).unwrap_err().to_string().contains("every arm or to none")
        );
    }

    #[test]
    fn a_two_by_two_multivariate_test_gets_main_effects() {
        // Headline ∈ {old, new} × button ∈ {blue, green}; the new headline adds 2 points, the
        // button nothing, so pooled over buttons the headline effect is 12 % − 10 %.
        let cell = |label: &str, headline: &str, button: &str, conversions: u64| ExperimentArm {
            factors: vec![
                FactorLevel { factor: "headline".into(), level: headline.into() },
                FactorLevel { factor: "button".into(), level: button.into() },
            ],
            ..arm(label, 5_000, conversions)
        };
        let arms = [
            cell("old-blue", "old", "blue", 500),
            cell("old-green", "old", "green", 500),
            cell("new-blue", "new", "blue", 600),
            cell("new-green", "new", "green", 600),
        ];
        let analysis =
            analyze_experiment(&arms, &ExperimentOptions { analyze_value: false, ..Default::default() })
                .unwrap();
        assert_eq!(analysis.factor_effects.len(), 2);
        let button = &analysis.factor_effects[0];
        assert_eq!(
            (button.factor.as_str(), button.level.as_str(), button.baseline_level.as_str()),
            ("button", "green", "blue")
        );
        assert!(button.conversion.difference.abs() < 1e-15);
        let headline = &analysis.factor_effects[1];
        assert_eq!(headline.arms, ["new-blue", "new-green"]);
        assert_eq!(headline.baseline_arms, ["old-blue", "old-green"]);
        assert!((headline.conversion.difference - 0.02).abs() < 1e-15);
        assert_eq!(headline.conversion.confidence, 0.95);
        assert!(headline.value.is_none());
        // An arm missing a factor is refused.
        let mut broken = arms.clone();
        broken[3].factors.pop();
        assert!(analyze_experiment(&broken, &ExperimentOptions::default()).is_err());
    }

    #[test]
    fn bad_experiments_are_refused() {
        let ok = arm("A", 100, 10);
        let options = ExperimentOptions::default();
        assert!(analyze_experiment(std::slice::from_ref(&ok), &options).is_err());
        assert!(
            analyze_experiment(&[ok.clone(), ok.clone()], &options)
                .unwrap_err()
                .to_string()
                .contains("two arms")
        );
        assert!(
            analyze_experiment(&[ok.clone(), arm("B", 1, 0)], &options)
                .unwrap_err()
                .to_string()
                .contains("at least 2")
        );
        assert!(analyze_experiment(&[ok.clone(), arm(" ", 10, 0)], &options).is_err());
        let unknown = ExperimentOptions { control: Some("Z".into()), ..ExperimentOptions::default() };
        assert!(
            analyze_experiment(&[ok.clone(), arm("B", 10, 0)], &unknown)
                .unwrap_err()
                .to_string()
                .contains("'Z'")
        );
        let too_many: Vec<ExperimentArm> = (0..=MAX_ARMS).map(|i| arm(&format!("arm {i}"), 10, 1)).collect();
        assert!(analyze_experiment(&too_many, &options).is_err());
        let bad_confidence = ExperimentOptions { confidence: 1.5, ..ExperimentOptions::default() };
        assert!(analyze_experiment(&[ok, arm("B", 10, 0)], &bad_confidence).is_err());
    }
}
