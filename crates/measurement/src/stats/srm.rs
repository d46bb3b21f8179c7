//! Sample-ratio mismatch: did the arms receive the share of people the design planned?
//!
//! Pearson's chi-squared goodness-of-fit test of the observed arm sizes against the planned
//! weights (normalised to sum to 1): χ² = Σ (Oᵢ − Eᵢ)²/Eᵢ with Eᵢ = N·wᵢ, k − 1 degrees of
//! freedom. A mismatch usually means broken assignment or logging, and invalidates the
//! comparison (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled
//! Experiments", KDD). The default threshold p < 0.001 is strict on purpose: the check runs on
//! every experiment at every look, and a loose threshold would cry wolf.

use super::MAX_ARMS;
use super::distributions::chi_squared_sf;
use super::interval::check_level;
use crate::{MeasurementError, Result};

/// The p-value under which a mismatch is flagged, unless configured otherwise.
pub const DEFAULT_SRM_THRESHOLD: f64 = 0.001;

/// The outcome of the sample-ratio check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SampleRatioCheck {
    pub observed: Vec<u64>,
    /// N·wᵢ with the weights normalised.
    pub expected: Vec<f64>,
    pub chi_squared: f64,
    pub degrees_of_freedom: u32,
    pub p_value: f64,
    pub threshold: f64,
    /// `p_value < threshold`.
    pub mismatch: bool,
}

/// Tests observed arm sizes against planned `weights` (any positive numbers; only their ratios
/// matter).
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64], threshold: f64) -> Result<SampleRatioCheck> {
    check_level("the mismatch threshold", threshold)?;
    let k = observed.len();
    if !(2..=MAX_ARMS).contains(&k) {
        return Err(MeasurementError::invalid(format!("the check needs 2 to {MAX_ARMS} arms, got {k}")));
    }
    if weights.len() != k {
        return Err(MeasurementError::invalid(format!("{k} arms but {} planned weights", weights.len())));
    }
    if let Some(bad) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(MeasurementError::invalid(format!(
            "planned weights must be positive numbers, got {bad}"
        )));
    }
    let total_weight: f64 = weights.iter().sum();
    let people: f64 = observed.iter().map(|&o| o as f64).sum();
    if people == 0.0 {
        return Err(MeasurementError::invalid("no people were assigned yet"));
    }
    let expected: Vec<f64> = weights.iter().map(|w| people * w / total_weight).collect();
    let chi_squared: f64 = observed
        .iter()
        .zip(&expected)
        .map(|(&o, &e)| {
            let d = o as f64 - e;
            d * d / e
        })
        .sum();
    if !chi_squared.is_finite() {
        return Err(MeasurementError::invalid("the planned weights are too uneven for these counts"));
    }
    let degrees_of_freedom = (k - 1) as u32;
    let p_value = chi_squared_sf(chi_squared, f64::from(degrees_of_freedom))?;
    Ok(SampleRatioCheck {
        observed: observed.to_vec(),
        expected,
        chi_squared,
        degrees_of_freedom,
        p_value,
        threshold,
        mismatch: p_value < threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wikipedia_example_600_against_400() {
        // Wikipedia, "Sample ratio mismatch", Example: 1 000 users split 50/50 land 600 / 400;
        // "a sample ratio mismatch with a p-value of 2.54 × 10⁻¹⁰". χ² = 2·100²/500 = 40.
        let check = sample_ratio_mismatch(&[600, 400], &[0.5, 0.5], DEFAULT_SRM_THRESHOLD).unwrap();
        assert_eq!(check.chi_squared, 40.0);
        assert!((check.p_value - 2.539_628_589e-10).abs() < 1e-18, "{}", check.p_value);
        assert!(check.mismatch);
    }

    #[test]
    fn srm_checker_example_44000_against_45000() {
        // Lukas Vermeer's SRM checker (srm.osc.garden): 44 000 vs 45 000 on a 50/50 split gives
        // "a p-value of 0.0008". χ² = 2·500²/44 500 = 11.2360, p = 0.000802278 (1 df).
        let check = sample_ratio_mismatch(&[44_000, 45_000], &[1.0, 1.0], DEFAULT_SRM_THRESHOLD).unwrap();
        assert!((check.chi_squared - 11.235_955_056_179_775).abs() < 1e-9);
        assert!((check.p_value - 0.000_802_278_117_8).abs() < 1e-12, "{}", check.p_value);
        assert!(check.mismatch);
    }

    #[test]
    fn fifty_thousand_against_fifty_one_thousand() {
        // χ² = 2·500²/50 500 = 9.900990…, p = P(χ²₁ > 9.90099) = erfc(√4.950495) = 0.001651899
        // (above 0.001: not flagged at the default threshold, flagged at 0.01).
        let check = sample_ratio_mismatch(&[50_000, 51_000], &[0.5, 0.5], DEFAULT_SRM_THRESHOLD).unwrap();
        assert!((check.chi_squared - 9.900_990_099_009_9).abs() < 1e-9);
        assert!((check.p_value - 0.001_651_898_732_357).abs() < 1e-12, "{}", check.p_value);
        assert!(!check.mismatch);
        assert!(sample_ratio_mismatch(&[50_000, 51_000], &[0.5, 0.5], 0.01).unwrap().mismatch);
    }

    #[test]
    fn unequal_weights_and_more_arms() {
        // A 90/10 holdout exactly on plan, and three arms with 20/40/40 weights exactly on plan.
        let check = sample_ratio_mismatch(&[9_000, 1_000], &[90.0, 10.0], DEFAULT_SRM_THRESHOLD).unwrap();
        assert_eq!((check.chi_squared, check.p_value, check.mismatch), (0.0, 1.0, false));
        let check = sample_ratio_mismatch(&[200, 400, 400], &[1.0, 2.0, 2.0], DEFAULT_SRM_THRESHOLD).unwrap();
        assert_eq!(check.degrees_of_freedom, 2);
        assert_eq!(check.expected, vec![200.0, 400.0, 400.0]);
        // The same counts against an equal split: χ² = (133.3² + 66.7² + 66.7²)/333.3 = 80, 2 df,
        // p = e^(−40) (the chi-squared upper tail with 2 df is e^(−x/2)).
        let check = sample_ratio_mismatch(&[200, 400, 400], &[1.0; 3], DEFAULT_SRM_THRESHOLD).unwrap();
        assert!((check.chi_squared - 80.0).abs() < 1e-9);
        assert!((check.p_value / (-40.0f64).exp() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(sample_ratio_mismatch(&[1], &[1.0], 0.001).is_err());
        assert!(sample_ratio_mismatch(&[1, 2], &[1.0], 0.001).is_err());
        assert!(sample_ratio_mismatch(&[1, 2], &[1.0, 0.0], 0.001).is_err());
        assert!(sample_ratio_mismatch(&[0, 0], &[1.0, 1.0], 0.001).is_err());
        assert!(sample_ratio_mismatch(&[1, 2], &[1.0, 1.0], 1.0).is_err());
    }
}
