//! One arm's sufficient statistics, as the database can aggregate them in one pass, and the
//! per-person moments every test starts from.
//!
//! The unit is the person: `conversions` counts people who converted (each 0 or 1), and
//! `value_sum` / `value_sum_sq` are Σvᵢ and Σvᵢ² over people, where vᵢ is one person's total
//! value (0 for people who did not convert). Summing per person *before* squaring is what makes
//! the variance the variance of value per person.

use super::interval::finite;
use crate::{MeasurementError, Result};

/// Relative rounding slack allowed when `value_sum_sq` falls just below `value_sum²/n`.
const SUM_OF_SQUARES_SLACK: f64 = 1e-9;

/// One arm (treatment, control, or a variant) summarised per person.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct ArmSummary {
    /// People in the arm.
    pub people: u64,
    /// People who converted at least once.
    pub conversions: u64,
    /// Σ over people of each person's total value.
    pub value_sum: f64,
    /// Σ over people of the square of each person's total value.
    pub value_sum_sq: f64,
}

/// Sample mean and unbiased sample variance (divisor n − 1) of a per-person metric.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub variance: f64,
}

impl Moments {
    /// Moments computed elsewhere (for instance by SQL `avg` and `var_samp`); n must be ≥ 2.
    pub fn new(n: u64, mean: f64, variance: f64) -> Result<Self> {
        if n < 2 {
            return Err(MeasurementError::invalid(format!("a variance needs at least 2 people, got {n}")));
        }
        if !mean.is_finite() || !variance.is_finite() || variance < 0.0 {
            return Err(MeasurementError::invalid(format!(
                "mean and variance must be finite and the variance not negative (mean {mean}, variance {variance})"
            )));
        }
        Ok(Self { n, mean, variance })
    }

    /// Squared standard error of the mean, s²/n.
    pub(crate) fn variance_of_mean(&self) -> f64 {
        self.variance / self.n as f64
    }
}

impl ArmSummary {
    /// An arm known only by counts: the value of a person is 1 if they converted, so the value
    /// metric equals the conversion metric.
    pub fn from_counts(people: u64, conversions: u64) -> Self {
        Self { people, conversions, value_sum: conversions as f64, value_sum_sq: conversions as f64 }
    }

    /// Checks the invariants: conversions ≤ people, finite sums, Σv² ≥ 0, and Σv² ≥ (Σv)²/n up
    /// to rounding (Cauchy–Schwarz; anything lower means the sums were not taken per person).
    pub fn validate(&self) -> Result<()> {
        if self.conversions > self.people {
            return Err(MeasurementError::invalid(format!(
                "conversions ({}) exceed people ({})",
                self.conversions, self.people
            )));
        }
        if !self.value_sum.is_finite() || !self.value_sum_sq.is_finite() {
            return Err(MeasurementError::invalid("value sums must be finite numbers"));
        }
        if self.value_sum_sq < 0.0 {
            return Err(MeasurementError::invalid("the sum of squared values cannot be negative"));
        }
        if self.people == 0 {
            if self.value_sum != 0.0 || self.value_sum_sq != 0.0 {
                return Err(MeasurementError::invalid("an arm with no people cannot have value"));
            }
            return Ok(());
        }
        let square_of_sum = self.value_sum * self.value_sum / self.people as f64;
        if !square_of_sum.is_finite() {
            return Err(MeasurementError::invalid("value sums are too large"));
        }
        if self.value_sum_sq < square_of_sum * (1.0 - SUM_OF_SQUARES_SLACK) {
            return Err(MeasurementError::invalid(format!(
                "the sum of squared values ({}) is below (sum of values)²/people ({square_of_sum}): \
                 value_sum_sq must be the sum over people of each person's total value squared",
                self.value_sum_sq
            )));
        }
        Ok(())
    }

    /// Conversions ÷ people; `None` for an empty arm.
    pub fn conversion_rate(&self) -> Option<f64> {
        (self.people > 0).then(|| self.conversions as f64 / self.people as f64)
    }

    /// Σv ÷ people; `None` for an empty arm.
    pub fn value_per_person(&self) -> Option<f64> {
        (self.people > 0).then(|| self.value_sum / self.people as f64).and_then(finite)
    }

    /// Moments of the 0/1 conversion indicator: mean p̂, variance n·p̂(1 − p̂)/(n − 1).
    pub fn conversion_moments(&self) -> Result<Moments> {
        self.validate()?;
        let n = self.needs_variance()?;
        let c = self.conversions as f64;
        let variance = (c - c * c / n) / (n - 1.0);
        Moments::new(self.people, c / n, variance.max(0.0))
    }

    /// Moments of value per person: mean Σv/n, variance (Σv² − (Σv)²/n)/(n − 1), clamped at 0
    /// when rounding makes it slightly negative.
    pub fn value_moments(&self) -> Result<Moments> {
        self.validate()?;
        let n = self.needs_variance()?;
        let mean = self.value_sum / n;
        let variance = ((self.value_sum_sq - self.value_sum * mean) / (n - 1.0)).max(0.0);
        Moments::new(self.people, mean, variance)
    }

    /// Sums two arms (pooling people, as a factor's main effect does); checked for overflow.
    pub fn merged(&self, other: &Self) -> Result<Self> {
        let overflow = || MeasurementError::invalid("pooled arm counts overflow");
        let merged = Self {
            people: self.people.checked_add(other.people).ok_or_else(overflow)?,
            conversions: self.conversions.checked_add(other.conversions).ok_or_else(overflow)?,
            value_sum: self.value_sum + other.value_sum,
            value_sum_sq: self.value_sum_sq + other.value_sum_sq,
        };
        merged.validate()?;
        Ok(merged)
    }

    fn needs_variance(&self) -> Result<f64> {
        if self.people < 2 {
            return Err(MeasurementError::invalid(format!(
                "an arm needs at least 2 people for a variance, got {}",
                self.people
            )));
        }
        Ok(self.people as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// R's `sleep` data, group 1 (Cushny & Peebles 1905, as shipped with R): Σx = 7.5,
    /// Σx² = 34.43; R gives mean 0.75 and var 3.200556.
    fn sleep_group_1() -> ArmSummary {
        ArmSummary { people: 10, conversions: 0, value_sum: 7.5, value_sum_sq: 34.43 }
    }

    #[test]
    fn value_moments_match_r() {
        let m = sleep_group_1().value_moments().unwrap();
        assert_eq!(m.n, 10);
        assert!((m.mean - 0.75).abs() < 1e-15);
        // var(x) = (34.43 − 7.5²/10)/9 = 28.805/9 = 3.2005556 (R: var(sleep$extra[1:10])).
        assert!((m.variance - 3.200_555_555_555_556).abs() < 1e-12);
    }

    #[test]
    fn conversion_moments_are_the_bernoulli_sample_variance() {
        // 30 of 100: p̂ = 0.3, s² = 100·0.3·0.7/99 = 0.2121…
        let m = ArmSummary::from_counts(100, 30).conversion_moments().unwrap();
        assert!((m.mean - 0.3).abs() < 1e-15);
        assert!((m.variance - 0.21 * 100.0 / 99.0).abs() < 1e-15);
        // The count-only arm's value metric is the same indicator.
        assert_eq!(ArmSummary::from_counts(100, 30).value_moments().unwrap(), m);
    }

    #[test]
    fn inconsistent_summaries_are_refused_with_a_reason() {
        let too_many = ArmSummary::from_counts(10, 11);
        assert!(too_many.validate().unwrap_err().to_string().contains("exceed"));
        // Σv = 10 over 2 people needs Σv² ≥ 50.
        let squares_before_summing =
            ArmSummary { people: 2, conversions: 2, value_sum: 10.0, value_sum_sq: 40.0 };
        assert!(squares_before_summing.validate().unwrap_err().to_string().contains("each person"));
        let nan = ArmSummary { value_sum: f64::NAN, ..ArmSummary::from_counts(5, 1) };
        assert!(nan.validate().is_err());
        let empty_with_value = ArmSummary { people: 0, conversions: 0, value_sum: 1.0, value_sum_sq: 1.0 };
        assert!(empty_with_value.validate().is_err());
        assert!(
            ArmSummary::from_counts(1, 1)
                .conversion_moments()
                .unwrap_err()
                .to_string()
                .contains("at least 2")
        );
        assert!(Moments::new(5, 1.0, -1.0).is_err());
    }

    #[test]
    fn rounding_just_below_the_bound_is_tolerated_and_clamped() {
        // Everyone has value 0.1: Σv² equals (Σv)²/n mathematically, rounding may put it below.
        let n = 1_000_000u64;
        let arm = ArmSummary {
            people: n,
            conversions: n,
            value_sum: 0.1 * n as f64,
            value_sum_sq: 0.01 * n as f64 * (1.0 - 1e-12),
        };
        let m = arm.value_moments().unwrap();
        assert_eq!(m.variance, 0.0);
    }

    #[test]
    fn rates_and_merging() {
        let a = ArmSummary { people: 4, conversions: 1, value_sum: 10.0, value_sum_sq: 100.0 };
        let b = ArmSummary { people: 6, conversions: 2, value_sum: 5.0, value_sum_sq: 15.0 };
        let pooled = a.merged(&b).unwrap();
        assert_eq!(pooled, ArmSummary { people: 10, conversions: 3, value_sum: 15.0, value_sum_sq: 115.0 });
        assert_eq!(pooled.conversion_rate(), Some(0.3));
        assert_eq!(pooled.value_per_person(), Some(1.5));
        assert_eq!(ArmSummary::default().conversion_rate(), None);
        let huge = ArmSummary::from_counts(u64::MAX, 0);
        assert!(huge.merged(&ArmSummary::from_counts(1, 0)).is_err());
    }
}
