//! Bayesian read-out of k arms: the chance that each arm is the best and the expected loss of
//! choosing it.
//!
//! - Conversion: Beta–Binomial conjugacy, posterior Beta(α₀ + conversions, β₀ + people −
//!   conversions), default prior Beta(1, 1) (uniform).
//! - Value per person: the sampling distribution of the mean, N(ȳ, s²/n) (a flat prior with a
//!   normal approximation; with the sample sizes of marketing arms the central limit theorem
//!   applies even to skewed revenue).
//!
//! With densities fᵢ and distribution functions Fᵢ of independent posteriors,
//! P(arm i is best) = ∫ fᵢ(x) Πⱼ≠ᵢ Fⱼ(x) dx and E[maxⱼ pⱼ] = Σᵢ ∫ x fᵢ(x) Πⱼ≠ᵢ Fⱼ(x) dx, so the
//! expected loss of choosing i is E[maxⱼ pⱼ] − E[pᵢ] (≥ 0; for two arms it is E[max(pⱼ − pᵢ, 0)],
//! Stucchio 2015, "Bayesian A/B Testing at VWO"). Both are integrated deterministically
//! ([`super::quadrature`]) over panels no wider than two posterior standard deviations of any
//! arm present there, so a narrow posterior (a large arm) next to a wide one is resolved. For
//! two arms the result is checked against Evan Miller's exact sum ("Formulas for Bayesian A/B
//! Testing", 2014).

use super::MAX_ARMS;
use super::distributions::Posterior;
use super::quadrature::integrate;
use super::summary::ArmSummary;
use crate::{MeasurementError, Result};

/// A posterior covers mean ± this many standard deviations (clipped to its support); the mass
/// outside is below 10⁻¹⁰ even for a Beta with a shape parameter of ½.
const COVER_SD: f64 = 30.0;
/// Width of the initial integration panels, in standard deviations of the narrowest arm there.
const PANEL_SD: f64 = 2.0;
/// An arm whose chance to win is provably below this is not integrated (reported as 0).
const NEGLIGIBLE: f64 = 1e-14;
/// Absolute tolerance of the chances to win (and, relative to the spread, of the losses).
const TOLERANCE: f64 = 1e-10;
/// Initial panels at most (the adaptive step may split them further).
const MAX_INITIAL_PANELS: usize = 8_192;

/// The prior of every arm's conversion rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BetaPrior {
    pub alpha: f64,
    pub beta: f64,
}

impl Default for BetaPrior {
    /// Beta(1, 1): every conversion rate equally likely before any data.
    fn default() -> Self {
        Self { alpha: 1.0, beta: 1.0 }
    }
}

impl BetaPrior {
    pub fn validate(&self) -> Result<()> {
        let ok = |x: f64| x.is_finite() && x > 0.0 && x <= 1e9;
        if ok(self.alpha) && ok(self.beta) {
            Ok(())
        } else {
            Err(MeasurementError::invalid(format!(
                "the Beta prior's parameters must be positive numbers up to 10⁹ (got α = {}, β = {})",
                self.alpha, self.beta
            )))
        }
    }
}

/// One arm's Bayesian read-out, in the order the arms were given.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Chance {
    /// Mean of the arm's posterior (the rate or value per person it expects).
    pub posterior_mean: f64,
    /// P(this arm has the highest true mean).
    pub chance_to_win: f64,
    /// E[best arm's mean − this arm's mean]: what choosing this arm is expected to give up, in
    /// the metric's unit (rate, or value per person).
    pub expected_loss: f64,
}

/// Chance to win and expected loss on the conversion rate.
pub fn conversion_chances(arms: &[ArmSummary], prior: BetaPrior) -> Result<Vec<Chance>> {
    check_arm_count(arms.len())?;
    prior.validate()?;
    let posteriors = arms
        .iter()
        .map(|arm| {
            arm.validate()?;
            let misses = (arm.people - arm.conversions) as f64;
            Posterior::beta(prior.alpha + arm.conversions as f64, prior.beta + misses)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(chances(&posteriors))
}

/// Chance to win and expected loss on value per person, from N(ȳ, s²/n) per arm. `None` when
/// an arm's value has no spread (for instance nobody bought): the normal approximation then
/// says nothing. Every arm needs at least 2 people.
pub fn value_chances(arms: &[ArmSummary]) -> Result<Option<Vec<Chance>>> {
    check_arm_count(arms.len())?;
    let mut posteriors = Vec::with_capacity(arms.len());
    for arm in arms {
        let moments = arm.value_moments()?;
        let sd = moments.variance_of_mean().sqrt();
        if !(sd > 0.0 && sd.is_finite()) {
            return Ok(None);
        }
        posteriors.push(Posterior::normal(moments.mean, sd)?);
    }
    Ok(Some(chances(&posteriors)))
}

fn check_arm_count(k: usize) -> Result<()> {
    if (2..=MAX_ARMS).contains(&k) {
        Ok(())
    } else {
        Err(MeasurementError::invalid(format!("a comparison needs 2 to {MAX_ARMS} arms, got {k}")))
    }
}

/// Where a posterior has its mass: mean ± [`COVER_SD`] standard deviations within its support.
fn cover(posterior: &Posterior) -> (f64, f64) {
    let (low, high) = posterior.support();
    let (mean, sd) = (posterior.mean(), posterior.sd());
    ((mean - COVER_SD * sd).max(low), (mean + COVER_SD * sd).min(high))
}

fn chances(posteriors: &[Posterior]) -> Vec<Chance> {
    let k = posteriors.len();
    let covers: Vec<(f64, f64)> = posteriors.iter().map(cover).collect();
    let cdf = |j: usize, x: f64| {
        let (low, high) = covers[j];
        if x <= low {
            0.0
        } else if x >= high {
            1.0
        } else {
            posteriors[j].cdf(x)
        }
    };

    // An arm is skipped when, even at the top of its own range, the others' distribution
    // functions multiply to a negligible number (the chance to win is bounded by that product).
    let live: Vec<bool> = (0..k)
        .map(|i| {
            let top = covers[i].1;
            let bound = (0..k).filter(|&j| j != i).map(|j| cdf(j, top)).product::<f64>();
            bound >= NEGLIGIBLE
        })
        .collect();

    let panels = panels(posteriors, &covers, &live);
    let shift = {
        let means: Vec<f64> = (0..k).filter(|&i| live[i]).map(|i| posteriors[i].mean()).collect();
        if means.is_empty() { 0.0 } else { means.iter().sum::<f64>() / means.len() as f64 }
    };
    let spread = panels
        .first()
        .zip(panels.last())
        .map(|(first, last)| (first.0 - shift).abs().max((last.1 - shift).abs()))
        .filter(|s| *s > 0.0 && s.is_finite())
        .unwrap_or(1.0);

    // Components 0..k: chance of each arm; component k: E[max] − shift.
    let mut prefix = vec![1.0; k + 1];
    let mut suffix = vec![1.0; k + 1];
    let mut values = vec![0.0; k];
    let mut integrand = |x: f64, out: &mut [f64]| {
        for (j, value) in values.iter_mut().enumerate() {
            *value = cdf(j, x);
        }
        for j in 0..k {
            prefix[j + 1] = prefix[j] * values[j];
            suffix[k - 1 - j] = suffix[k - j] * values[k - 1 - j];
        }
        let mut total = 0.0;
        for i in 0..k {
            let (low, high) = covers[i];
            let density = if live[i] && x >= low && x <= high { posteriors[i].pdf(x) } else { 0.0 };
            let value = density * prefix[i] * suffix[i + 1];
            out[i] = value;
            total += value;
        }
        out[k] = (x - shift) * total;
    };
    let mut scales = vec![1.0; k + 1];
    scales[k] = 1.0 / spread;
    let integrals = integrate(&mut integrand, &panels, &scales, TOLERANCE);

    let expected_max = integrals[k];
    (0..k)
        .map(|i| {
            let mean = posteriors[i].mean();
            Chance {
                posterior_mean: mean,
                chance_to_win: if live[i] { integrals[i].clamp(0.0, 1.0) } else { 0.0 },
                expected_loss: (expected_max - (mean - shift)).max(0.0),
            }
        })
        .collect()
}

/// Integration panels covering the ranges of the live arms, each at most [`PANEL_SD`] standard
/// deviations of the narrowest arm whose range it lies in, and starting a new panel wherever a
/// range starts. Gaps where no live arm has mass are left out.
fn panels(posteriors: &[Posterior], covers: &[(f64, f64)], live: &[bool]) -> Vec<(f64, f64)> {
    let live_arms: Vec<usize> = (0..posteriors.len()).filter(|&i| live[i]).collect();
    let Some(start) = live_arms.iter().map(|&i| covers[i].0).reduce(f64::min) else {
        return Vec::new();
    };
    let end = live_arms.iter().map(|&i| covers[i].1).fold(start, f64::max);
    let mut panels = Vec::new();
    let mut x = start;
    while x < end && panels.len() < MAX_INITIAL_PANELS {
        let narrowest = live_arms
            .iter()
            .filter(|&&i| covers[i].0 <= x && x < covers[i].1)
            .map(|&i| posteriors[i].sd())
            .reduce(f64::min);
        let next_start = live_arms.iter().map(|&i| covers[i].0).filter(|&low| low > x).fold(end, f64::min);
        let Some(sd) = narrowest else {
            x = next_start;
            continue;
        };
        let step = (PANEL_SD * sd).max(x.abs() * 1e-12);
        let next = (x + step).min(next_start).min(end);
        if next.is_nan() || next <= x {
            break;
        }
        panels.push((x, next));
        x = next;
    }
    if x < end
        && let Some(last) = panels.last_mut()
    {
        last.1 = end;
    }
    panels
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::function::beta::ln_beta;

    /// Evan Miller, "Formulas for Bayesian A/B Testing" (2014): for integer α_B,
    /// P(p_B > p_A) = Σ_{i=0}^{α_B−1} B(α_A+i, β_A+β_B) / ((β_B+i)·B(1+i, β_B)·B(α_A, β_A)).
    fn evan_miller(a_a: f64, b_a: f64, a_b: f64, b_b: f64) -> f64 {
        (0..a_b as u64)
            .map(|i| {
                let i = i as f64;
                (ln_beta(a_a + i, b_a + b_b) - (b_b + i).ln() - ln_beta(1.0 + i, b_b) - ln_beta(a_a, b_a))
                    .exp()
            })
            .sum()
    }

    #[test]
    fn two_arms_match_evan_millers_exact_formula() {
        // A: 100 of 1 000, B: 120 of 1 000, uniform prior → Beta(101, 901) and Beta(121, 881).
        // The sum at 40 digits is 0.923183438973559753…
        let arms = [ArmSummary::from_counts(1_000, 100), ArmSummary::from_counts(1_000, 120)];
        let c = conversion_chances(&arms, BetaPrior::default()).unwrap();
        assert!((c[1].chance_to_win - 0.923_183_438_973_559_8).abs() < 1e-9, "{c:?}");
        assert!((c[1].chance_to_win - evan_miller(101.0, 901.0, 121.0, 881.0)).abs() < 1e-9);
        assert!((c[0].chance_to_win + c[1].chance_to_win - 1.0).abs() < 1e-9);
    }

    #[test]
    fn two_arm_losses_match_stucchios_closed_form() {
        // Stucchio (2015), "Bayesian A/B Testing at VWO", eq. for E[max(p_B − p_A, 0)]:
        //   (α_B/(α_B+β_B))·h(α_A, β_A, α_B+1, β_B) − (α_A/(α_A+β_A))·h(α_A+1, β_A, α_B, β_B),
        // h = Evan Miller's P(X_{c,d} > X_{a,b}); at 40 digits 0.0204446937666758 for A and
        // 0.000484613926356444 for B.
        let arms = [ArmSummary::from_counts(1_000, 100), ArmSummary::from_counts(1_000, 120)];
        let c = conversion_chances(&arms, BetaPrior::default()).unwrap();
        let (mean_a, mean_b) = (101.0 / 1002.0, 121.0 / 1002.0);
        let loss_a = mean_b * evan_miller(101.0, 901.0, 122.0, 881.0)
            - mean_a * evan_miller(102.0, 901.0, 121.0, 881.0);
        assert!((c[0].expected_loss - 0.020_444_693_766_675_8).abs() < 1e-10, "{c:?}");
        assert!((c[0].expected_loss - loss_a).abs() < 1e-10);
        assert!((c[1].expected_loss - 0.000_484_613_926_356_444).abs() < 1e-10, "{c:?}");
        assert_eq!(c[1].posterior_mean, mean_b);
    }

    #[test]
    fn a_narrow_posterior_next_to_a_wide_one_is_resolved() {
        // A: 50 000 of 500 000 (sd 0.0004), B: 10 of 100 (sd 0.03); Evan Miller's sum over
        // α_B = 11 terms gives P(B > A) = 0.569947670714926 and the Stucchio losses
        // 0.0162221610360808 (A) and 0.00838062377477888 (B), at 40 digits. statrs's Beta CDF
        // is good to ~2·10⁻⁹ at Beta(50 001, 450 001), hence the tolerance of the chance.
        let arms = [ArmSummary::from_counts(500_000, 50_000), ArmSummary::from_counts(100, 10)];
        let c = conversion_chances(&arms, BetaPrior::default()).unwrap();
        assert!((c[1].chance_to_win - 0.569_947_670_714_926).abs() < 5e-9, "{c:?}");
        assert!((c[1].chance_to_win - evan_miller(50_001.0, 450_001.0, 11.0, 91.0)).abs() < 5e-9);
        assert!((c[0].expected_loss - 0.016_222_161_036_080_8).abs() < 1e-9, "{c:?}");
        assert!((c[1].expected_loss - 0.008_380_623_774_778_88).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn chances_sum_to_one_and_identical_arms_share_equally() {
        let same = [ArmSummary::from_counts(2_000, 150); 3];
        let c = conversion_chances(&same, BetaPrior::default()).unwrap();
        for arm in &c {
            assert!((arm.chance_to_win - 1.0 / 3.0).abs() < 1e-9, "{c:?}");
        }
        let mixed = [
            ArmSummary::from_counts(5_000, 400),
            ArmSummary::from_counts(5_200, 430),
            ArmSummary::from_counts(4_900, 415),
            ArmSummary::from_counts(300, 30),
            ArmSummary::from_counts(5_000, 300),
        ];
        let c = conversion_chances(&mixed, BetaPrior::default()).unwrap();
        let total: f64 = c.iter().map(|a| a.chance_to_win).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        // Arm 5 (6 %) against arms near 8 %: far below 10⁻⁹.
        assert!(c[4].chance_to_win < 1e-9 && c[4].expected_loss > 0.02);
        // Reordering the arms reorders the answer.
        let reversed: Vec<ArmSummary> = mixed.iter().rev().copied().collect();
        let r = conversion_chances(&reversed, BetaPrior::default()).unwrap();
        for (a, b) in c.iter().zip(r.iter().rev()) {
            assert!((a.chance_to_win - b.chance_to_win).abs() < 1e-9);
            assert!((a.expected_loss - b.expected_loss).abs() < 1e-10);
        }
    }

    #[test]
    fn value_posteriors_match_the_normal_closed_form() {
        // For two normals, P(B > A) = Φ(m/s) with m = μ_B − μ_A, s² = σ_A² + σ_B², and the loss
        // of choosing A is E[max(D, 0)] = m·Φ(m/s) + s·φ(m/s) (the mean of a rectified normal).
        use crate::stats::distributions::{normal_cdf, normal_pdf};
        let a = ArmSummary { people: 1_000, conversions: 100, value_sum: 5_000.0, value_sum_sq: 400_000.0 };
        let b = ArmSummary { people: 1_000, conversions: 110, value_sum: 5_600.0, value_sum_sq: 450_000.0 };
        let c = value_chances(&[a, b]).unwrap().unwrap();
        let (ma, mb) = (a.value_moments().unwrap(), b.value_moments().unwrap());
        let m = mb.mean - ma.mean;
        let s = (ma.variance / 1_000.0 + mb.variance / 1_000.0).sqrt();
        assert!((c[1].chance_to_win - normal_cdf(m / s)).abs() < 1e-9, "{c:?}");
        let loss_a = m * normal_cdf(m / s) + s * normal_pdf(m / s);
        assert!((c[0].expected_loss - loss_a).abs() < 1e-8, "{c:?} {loss_a}");
        // Nobody in arm A bought anything: no spread, no normal approximation.
        let none = ArmSummary::from_counts(1_000, 0);
        assert_eq!(value_chances(&[none, b]).unwrap(), None);
    }

    #[test]
    fn past_the_beta_limit_the_normal_swap_still_matches_the_exact_sum() {
        // 120 000 and 121 000 conversions of 1 000 000: both posteriors are past the limit of
        // statrs's Beta CDF and are integrated as normals. Evan Miller's exact sum (121 001
        // terms) gives 0.98507468520 (double-precision Python, math.lgamma).
        let arms = [ArmSummary::from_counts(1_000_000, 120_000), ArmSummary::from_counts(1_000_000, 121_000)];
        let c = conversion_chances(&arms, BetaPrior::default()).unwrap();
        let exact = evan_miller(120_001.0, 880_001.0, 121_001.0, 879_001.0);
        assert!((exact - 0.985_074_685_20).abs() < 1e-8, "{exact}");
        assert!((c[1].chance_to_win - exact).abs() < 1e-6, "{c:?} {exact}");
    }

    #[test]
    fn tens_of_millions_of_people_stay_fast_and_close_to_the_normal_answer() {
        // Beta(500 001, 9 500 001) and Beta(502 001, 9 498 001) are normal to within 10⁻⁴, so
        // P(B > A) ≈ Φ(Δ/√(σ_A² + σ_B²)).
        use crate::stats::distributions::normal_cdf;
        let arms =
            [ArmSummary::from_counts(10_000_000, 500_000), ArmSummary::from_counts(10_000_000, 502_000)];
        let c = conversion_chances(&arms, BetaPrior::default()).unwrap();
        let var = |a: f64, b: f64| a * b / ((a + b) * (a + b) * (a + b + 1.0));
        let z = (502_001.0 - 500_001.0)
            / 10_000_002.0
            / (var(500_001.0, 9_500_001.0) + var(502_001.0, 9_498_001.0)).sqrt();
        assert!((c[1].chance_to_win - normal_cdf(z)).abs() < 1e-4, "{c:?} {}", normal_cdf(z));
    }

    #[test]
    fn a_jeffreys_prior_with_no_conversions_still_integrates() {
        // Beta(½, 1000.5) has an integrable singularity at 0.
        let arms = [ArmSummary::from_counts(1_000, 0), ArmSummary::from_counts(1_000, 2)];
        let c = conversion_chances(&arms, BetaPrior { alpha: 0.5, beta: 0.5 }).unwrap();
        let total = c[0].chance_to_win + c[1].chance_to_win;
        assert!((total - 1.0).abs() < 1e-6, "{c:?}");
        assert!(c[1].chance_to_win > 0.9);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let arm = ArmSummary::from_counts(10, 1);
        assert!(conversion_chances(&[arm], BetaPrior::default()).is_err());
        assert!(conversion_chances(&[arm; MAX_ARMS + 1], BetaPrior::default()).is_err());
        assert!(conversion_chances(&[arm, arm], BetaPrior { alpha: 0.0, beta: 1.0 }).is_err());
        assert!(conversion_chances(&[arm, ArmSummary::from_counts(3, 4)], BetaPrior::default()).is_err());
    }
}
