//! Always-valid inference for people who look at results before the planned end: the mixture
//! sequential probability ratio test (mSPRT) with a normal mixture, from Johari, Pekelis &
//! Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (arXiv:1512.04922, 2015;
//! Operations Research 70(3), 2022) and Johari, Koomen, Pekelis & Walsh, "Peeking at A/B Tests"
//! (KDD 2017), as deployed in Optimizely's Stats Engine.
//!
//! With θ̂ the difference of means, V = sₜ²/nₜ + s꜀²/n꜀ its variance and a N(θ₀, τ²) mixture
//! over the effect, the mixture likelihood ratio against H₀: θ = θ₀ is
//!
//! ```text
//! Λ = √(V / (V + τ²)) · exp( τ² (θ̂ − θ₀)² / (2 V (V + τ²)) )
//! ```
//!
//! (for equal arms of n with variance σ², V = 2σ²/n gives the paper's two-stream formula). Λ is
//! a nonnegative martingale under H₀, so by Ville's inequality P(supₙ Λₙ ≥ 1/α) ≤ α: the
//! always-valid p-value pₙ = min(1, 1/Λₙ) (optionally the running minimum over earlier looks)
//! may be read at any look, as often as one likes. Inverting Λ ≥ 1/α in θ₀ gives the
//! always-valid confidence interval
//!
//! ```text
//! θ̂ ± √( V (V + τ²)/τ² · (2 ln(1/α) + ln((V + τ²)/V)) ).
//! ```
//!
//! The variances are plugged in at each look, as in the paper's implementation. τ is the
//! scale of effects one expects; the default is 10 % of the control mean (a relative lift of
//! 10 %), and an absolute τ in the metric's unit may be given instead.

use super::interval::{Interval, check_level, finite};
use super::summary::Moments;
use crate::{MeasurementError, Result};

/// The significance level of the sequential test unless configured otherwise.
pub const DEFAULT_SEQUENTIAL_ALPHA: f64 = 0.05;
/// The default mixing scale: τ = 10 % of the control mean.
pub const DEFAULT_RELATIVE_MIXING: f64 = 0.1;

/// The standard deviation τ of the normal mixture over effects.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum MixingScale {
    /// τ in the metric's unit (a rate difference, or value per person).
    Absolute(f64),
    /// τ as a fraction of the control mean (0.1: effects of about ±10 % are expected).
    RelativeToControl(f64),
}

/// Options of the always-valid test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SequentialOptions {
    /// Level of the test and of the interval (which has coverage 1 − α at all looks at once).
    pub alpha: f64,
    pub mixing: MixingScale,
}

impl Default for SequentialOptions {
    fn default() -> Self {
        Self {
            alpha: DEFAULT_SEQUENTIAL_ALPHA,
            mixing: MixingScale::RelativeToControl(DEFAULT_RELATIVE_MIXING),
        }
    }
}

/// The always-valid read-out of a difference of means.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SequentialTest {
    /// The difference of means θ̂ (treatment − control).
    pub difference: f64,
    /// Always-valid p-value of H₀: no difference.
    pub p_value: f64,
    /// Always-valid (1 − α) interval of the difference.
    pub interval: Interval,
    pub alpha: f64,
    /// The τ that was used, in the metric's unit.
    pub mixing_sd: f64,
    /// `p_value < alpha`: the test may stop now.
    pub significant: bool,
}

/// The mSPRT for an estimate `difference` with sampling variance `variance` (> 0), against
/// θ₀ = 0, with mixing standard deviation `mixing_sd` (> 0) at level `alpha`.
pub fn mixture_sprt(difference: f64, variance: f64, mixing_sd: f64, alpha: f64) -> Result<SequentialTest> {
    check_level("the sequential α", alpha)?;
    if !(difference.is_finite() && variance.is_finite() && variance > 0.0) {
        return Err(MeasurementError::invalid(
            "the sequential test needs a finite difference and a positive variance",
        ));
    }
    if !(mixing_sd > 0.0 && mixing_sd.is_finite()) {
        return Err(MeasurementError::invalid(format!(
            "the mixing scale τ must be positive, got {mixing_sd}"
        )));
    }
    let tau2 = mixing_sd * mixing_sd;
    let total = variance + tau2;
    // ln((V + τ²)/V) computed as ln(1 + τ²/V) to keep digits when τ² ≪ V.
    let log_ratio = (tau2 / variance).ln_1p();
    let log_lambda = -0.5 * log_ratio + tau2 * difference * difference / (2.0 * variance * total);
    let p_value = if log_lambda <= 0.0 { 1.0 } else { (-log_lambda).exp() };
    let half_width = (variance * total / tau2 * (2.0 * (1.0 / alpha).ln() + log_ratio)).sqrt();
    let interval = finite(half_width)
        .and_then(|h| Interval::around(difference, h))
        .ok_or_else(|| MeasurementError::invalid("the sequential interval overflows"))?;
    Ok(SequentialTest { difference, p_value, interval, alpha, mixing_sd, significant: p_value < alpha })
}

/// The always-valid test of `treatment` against `control`. `previous` is this comparison's
/// read-out at the last look, if kept: the p-value becomes the running minimum and the interval
/// the running intersection (when they overlap), which is still valid and never less
/// informative. `None` when the test is not defined: both arms without variance, or a relative
/// τ with a control mean that is not positive.
pub fn always_valid(
    treatment: &Moments,
    control: &Moments,
    options: &SequentialOptions,
    previous: Option<&SequentialTest>,
) -> Result<Option<SequentialTest>> {
    check_level("the sequential α", options.alpha)?;
    let treatment = Moments::new(treatment.n, treatment.mean, treatment.variance)?;
    let control = Moments::new(control.n, control.mean, control.variance)?;
    let mixing_sd = match options.mixing {
        MixingScale::Absolute(tau) | MixingScale::RelativeToControl(tau)
            if !(tau > 0.0 && tau.is_finite()) =>
        {
            return Err(MeasurementError::invalid(format!("the mixing scale τ must be positive, got {tau}")));
        }
        MixingScale::Absolute(tau) => tau,
        MixingScale::RelativeToControl(fraction) => match finite(fraction * control.mean) {
            Some(tau) if tau > 0.0 => tau,
            _ => return Ok(None),
        },
    };
    let variance = treatment.variance_of_mean() + control.variance_of_mean();
    if !(variance > 0.0 && variance.is_finite()) {
        return Ok(None);
    }
    let mut test = mixture_sprt(treatment.mean - control.mean, variance, mixing_sd, options.alpha)?;
    if let Some(previous) = previous {
        if previous.alpha != options.alpha {
            return Err(MeasurementError::invalid("the previous look used a different α"));
        }
        test.p_value = test.p_value.min(previous.p_value);
        let lower = test.interval.lower.max(previous.interval.lower);
        let upper = test.interval.upper.min(previous.interval.upper);
        if lower <= upper {
            test.interval = Interval { lower, upper };
        }
        test.significant = test.p_value < test.alpha;
    }
    Ok(Some(test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::distributions::normal_cdf;
    use crate::stats::summary::ArmSummary;

    #[test]
    fn the_mixture_likelihood_ratio_matches_the_formula() {
        // V = 1, τ² = 1, θ̂ = 3: Λ = √½·e^(9/4) = 6.708842347995733 (30-digit arithmetic),
        // so p = 1/Λ = 0.149057012838996.
        let test = mixture_sprt(3.0, 1.0, 1.0, 0.05).unwrap();
        assert!((test.p_value - 0.149_057_012_838_996).abs() < 1e-14, "{}", test.p_value);
        assert!(!test.significant);
        // No difference: Λ = √(V/(V+τ²)) < 1, so p = 1.
        assert_eq!(mixture_sprt(0.0, 1.0, 1.0, 0.05).unwrap().p_value, 1.0);
    }

    #[test]
    fn the_interval_is_the_inversion_of_the_test() {
        // At an end point θ₀ of the interval, Λ(θ₀) = 1/α: the test of θ̂ − θ₀ has p = α.
        let (difference, variance, tau, alpha) = (0.8, 0.09, 0.5, 0.05);
        let test = mixture_sprt(difference, variance, tau, alpha).unwrap();
        for end in [test.interval.lower, test.interval.upper] {
            let p = mixture_sprt(difference - end, variance, tau, alpha).unwrap().p_value;
            assert!((p - alpha).abs() < 1e-12, "{p}");
        }
    }

    #[test]
    fn the_always_valid_p_value_is_never_below_the_fixed_horizon_one() {
        // E₀[Λ] = 1 at any fixed n and Λ grows with |z|, so by Markov's inequality
        // P(|Z| ≥ |z|) = P(Λ ≥ Λ(z)) ≤ 1/Λ(z): the fixed-horizon p never exceeds the mSPRT's.
        for variance in [1e-6_f64, 1e-3, 1.0, 50.0] {
            for tau_ratio in [0.01, 0.3, 1.0, 10.0, 1000.0] {
                for step in 0..=80 {
                    let z = f64::from(step) * 0.1;
                    let difference = z * variance.sqrt();
                    let tau = tau_ratio * variance.sqrt();
                    let fixed = 2.0 * (1.0 - normal_cdf(z));
                    let valid = mixture_sprt(difference, variance, tau, 0.05).unwrap().p_value;
                    assert!(
                        valid >= fixed * (1.0 - 1e-12),
                        "z {z} V {variance} τ/√V {tau_ratio}: {valid} < {fixed}"
                    );
                }
            }
        }
        // Same on arms, against Welch's p-value.
        let control = ArmSummary::from_counts(2_000, 200).conversion_moments().unwrap();
        for conversions in (150..=300).step_by(10) {
            let treatment = ArmSummary::from_counts(2_000, conversions).conversion_moments().unwrap();
            let welch = crate::stats::welch::compare_means(&treatment, &control, 0.95).unwrap();
            let valid =
                always_valid(&treatment, &control, &SequentialOptions::default(), None).unwrap().unwrap();
            assert!(valid.p_value >= welch.p_value.unwrap(), "{conversions}");
        }
    }

    #[test]
    fn a_large_effect_drives_the_p_value_to_zero() {
        let control = ArmSummary::from_counts(20_000, 2_000).conversion_moments().unwrap();
        let treatment = ArmSummary::from_counts(20_000, 2_600).conversion_moments().unwrap();
        let test = always_valid(&treatment, &control, &SequentialOptions::default(), None).unwrap().unwrap();
        assert!(test.p_value < 1e-9 && test.significant, "{test:?}");
        assert!(test.interval.lower > 0.0);
        assert!((test.mixing_sd - 0.01).abs() < 1e-15);
    }

    #[test]
    fn previous_looks_keep_the_running_minimum_and_intersection() {
        let control = ArmSummary::from_counts(20_000, 2_000).conversion_moments().unwrap();
        let early = ArmSummary::from_counts(20_000, 2_300).conversion_moments().unwrap();
        let later = ArmSummary::from_counts(20_000, 2_100).conversion_moments().unwrap();
        let options = SequentialOptions::default();
        let first = always_valid(&early, &control, &options, None).unwrap().unwrap();
        let alone = always_valid(&later, &control, &options, None).unwrap().unwrap();
        let second = always_valid(&later, &control, &options, Some(&first)).unwrap().unwrap();
        assert!(first.p_value < alone.p_value);
        assert_eq!(second.p_value, first.p_value);
        assert_eq!(second.interval.lower, first.interval.lower.max(alone.interval.lower));
        assert_eq!(second.interval.upper, first.interval.upper.min(alone.interval.upper));
        let other_alpha = SequentialOptions { alpha: 0.1, ..options };
        assert!(always_valid(&later, &control, &other_alpha, Some(&first)).is_err());
    }

    #[test]
    fn undefined_cases_are_none() {
        let zero = ArmSummary::from_counts(100, 0).conversion_moments().unwrap();
        let some = ArmSummary::from_counts(100, 5).conversion_moments().unwrap();
        let options = SequentialOptions::default();
        // Relative τ against a control mean of 0.
        assert_eq!(always_valid(&some, &zero, &options, None).unwrap(), None);
        // No variance at all.
        let absolute = SequentialOptions { mixing: MixingScale::Absolute(0.01), ..options };
        assert_eq!(always_valid(&zero, &zero, &absolute, None).unwrap(), None);
        assert!(
            always_valid(
                &some,
                &some,
                &SequentialOptions { mixing: MixingScale::Absolute(0.0), ..options },
                None
            )
            .is_err()
        );
        assert!(mixture_sprt(1.0, 0.0, 1.0, 0.05).is_err());
    }

    /// SplitMix64 (Steele, Lea & Flood 2014), enough for a reproducible simulation.
    struct SplitMix(u64);

    impl SplitMix {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Box–Muller.
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    #[test]
    fn peeking_at_an_a_a_test_keeps_the_error_rate_with_msprt_but_not_without() {
        // 400 A/A experiments, N(0, 1) per person, 100 looks of 20 people per arm. Stopping at
        // the first look with p < 0.05 must reject at most ~5 % of them with the mSPRT (Ville's
        // inequality), while the fixed-horizon p-value read at every look rejects far more
        // (Armitage, McPherson & Rowe 1969: about 0.37 at 100 looks).
        let mut rng = SplitMix(20_240_531);
        let options = SequentialOptions { alpha: 0.05, mixing: MixingScale::Absolute(0.2) };
        let (mut sequential_rejections, mut naive_rejections) = (0, 0);
        let experiments = 400;
        for _ in 0..experiments {
            let mut arms = [ArmSummary::default(); 2];
            let (mut sequential_rejected, mut naive_rejected) = (false, false);
            for _ in 0..100 {
                for arm in &mut arms {
                    for _ in 0..20 {
                        let x = rng.normal();
                        arm.people += 1;
                        arm.value_sum += x;
                        arm.value_sum_sq += x * x;
                    }
                }
                let (t, c) = (arms[0].value_moments().unwrap(), arms[1].value_moments().unwrap());
                let test = always_valid(&t, &c, &options, None).unwrap().unwrap();
                sequential_rejected |= test.significant;
                let z = (t.mean - c.mean) / (t.variance_of_mean() + c.variance_of_mean()).sqrt();
                naive_rejected |= 2.0 * (1.0 - normal_cdf(z.abs())) < 0.05;
            }
            sequential_rejections += u32::from(sequential_rejected);
            naive_rejections += u32::from(naive_rejected);
        }
        let sequential_rate = f64::from(sequential_rejections) / f64::from(experiments);
        let naive_rate = f64::from(naive_rejections) / f64::from(experiments);
        assert!(sequential_rate <= 0.06, "mSPRT rejected {sequential_rate}");
        assert!(naive_rate >= 0.2, "naive peeking rejected only {naive_rate}");
    }
}
