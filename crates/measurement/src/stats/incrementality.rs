//! Incrementality of a campaign or journey measured against its holdout (control) group.
//!
//! Both metrics are per person: the conversion indicator and the value per person, each
//! compared by [`compare_means`] (Welch test, difference interval, delta-method relative
//! lift). The incremental totals are the per-person differences scaled to the treated
//! population, as in the standard holdout read-out (e.g. Gordon, Zettelmeyer et al. 2019,
//! "A Comparison of Approaches to Advertising Measurement", Marketing Science):
//!
//! - incremental conversions = (rateₜ − rate꜀)·nₜ,
//! - incremental revenue = (valueₜ − value꜀)·nₜ,
//!
//! with intervals that are the difference intervals times nₜ (nₜ is fixed by the design).
//! Cost per incremental acquisition = cost ÷ incremental conversions, only when the latter is
//! positive; its interval is cost ÷ the conversion interval, defined when that interval lies
//! above zero (the map x ↦ cost/x is monotone there).

use super::interval::{DEFAULT_CONFIDENCE, Interval, finite};
use super::summary::ArmSummary;
use super::welch::{MeanComparison, compare_means};
use crate::{MeasurementError, Result};

/// An estimate with its interval (at the analysis's confidence), `None` when undefined.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub value: f64,
    pub interval: Option<Interval>,
}

/// What one group looks like, for display next to the comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GroupMetrics {
    pub people: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    pub revenue: f64,
    pub value_per_person: f64,
}

/// The holdout read-out of one campaign or journey.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Incrementality {
    pub treatment: GroupMetrics,
    pub control: GroupMetrics,
    /// Conversion rate, treatment against control.
    pub conversion: MeanComparison,
    /// Value per person, treatment against control.
    pub value: MeanComparison,
    pub incremental_conversions: Estimate,
    pub incremental_revenue: Estimate,
    pub cost: Option<f64>,
    /// Cost ÷ incremental conversions; `None` without a cost or when incremental conversions
    /// are not positive.
    pub cost_per_incremental_acquisition: Option<Estimate>,
    /// Incremental revenue ÷ cost (incremental ROAS); `None` without a positive cost.
    pub incremental_return_on_spend: Option<Estimate>,
    pub confidence: f64,
}

/// Options of [`incrementality`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct IncrementalityOptions {
    /// Confidence of every interval, in (0, 1); default 0.95.
    pub confidence: f64,
    /// What the treatment cost (same currency as the value); optional.
    pub cost: Option<f64>,
}

impl Default for IncrementalityOptions {
    fn default() -> Self {
        Self { confidence: DEFAULT_CONFIDENCE, cost: None }
    }
}

/// Compares the treated group with its holdout. Each group needs at least 2 people.
pub fn incrementality(
    treatment: &ArmSummary,
    control: &ArmSummary,
    options: &IncrementalityOptions,
) -> Result<Incrementality> {
    if let Some(cost) = options.cost
        && !(cost.is_finite() && cost >= 0.0)
    {
        return Err(MeasurementError::invalid(format!("cost must be a finite number ≥ 0, got {cost}")));
    }
    for (name, arm) in [("treatment", treatment), ("control (holdout)", control)] {
        arm.validate().map_err(|e| MeasurementError::invalid(format!("{name} group: {e}")))?;
        if arm.people < 2 {
            return Err(MeasurementError::invalid(format!(
                "the {name} group needs at least 2 people, it has {}",
                arm.people
            )));
        }
    }
    let conversion =
        compare_means(&treatment.conversion_moments()?, &control.conversion_moments()?, options.confidence)?;
    let value = compare_means(&treatment.value_moments()?, &control.value_moments()?, options.confidence)?;

    let treated = treatment.people as f64;
    let scale = |comparison: &MeanComparison| Estimate {
        value: comparison.difference * treated,
        interval: comparison.difference_interval.and_then(|i| i.scaled(treated)),
    };
    let incremental_conversions = scale(&conversion);
    let incremental_revenue = scale(&value);

    let cost_per_incremental_acquisition = options.cost.and_then(|cost| {
        let per =
            finite(cost / incremental_conversions.value).filter(|_| incremental_conversions.value > 0.0)?;
        let interval = incremental_conversions
            .interval
            .filter(|i| i.lower > 0.0)
            .and_then(|i| Interval::new(cost / i.upper, cost / i.lower));
        Some(Estimate { value: per, interval })
    });
    let incremental_return_on_spend = options.cost.filter(|&cost| cost > 0.0).and_then(|cost| {
        Some(Estimate {
            value: finite(incremental_revenue.value / cost)?,
            interval: incremental_revenue.interval.and_then(|i| i.scaled(1.0 / cost)),
        })
    });

    Ok(Incrementality {
        treatment: group(treatment, conversion.treatment_mean, value.treatment_mean),
        control: group(control, conversion.control_mean, value.control_mean),
        conversion,
        value,
        incremental_conversions,
        incremental_revenue,
        cost: options.cost,
        cost_per_incremental_acquisition,
        incremental_return_on_spend,
        confidence: options.confidence,
    })
}

fn group(arm: &ArmSummary, rate: f64, value_per_person: f64) -> GroupMetrics {
    GroupMetrics {
        people: arm.people,
        conversions: arm.conversions,
        conversion_rate: rate,
        revenue: arm.value_sum,
        value_per_person,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holdout() -> (ArmSummary, ArmSummary) {
        // 90 000 treated, 1 080 converted (1.2 %), revenue 54 000 with Σv² = 2 700 000
        // (every converter spent 50); 10 000 held out, 100 converted (1.0 %), revenue 5 000.
        let treatment =
            ArmSummary { people: 90_000, conversions: 1_080, value_sum: 54_000.0, value_sum_sq: 2_700_000.0 };
        let control =
            ArmSummary { people: 10_000, conversions: 100, value_sum: 5_000.0, value_sum_sq: 250_000.0 };
        (treatment, control)
    }

    #[test]
    fn incremental_totals_scale_the_per_person_difference() {
        let (t, c) = holdout();
        let options = IncrementalityOptions { cost: Some(900.0), ..Default::default() };
        let r = incrementality(&t, &c, &options).unwrap();
        // (0.012 − 0.010)·90 000 = 180 conversions; (0.6 − 0.5)·90 000 = 9 000 of revenue.
        assert!((r.incremental_conversions.value - 180.0).abs() < 1e-9);
        assert!((r.incremental_revenue.value - 9_000.0).abs() < 1e-7);
        let ci = r.incremental_conversions.interval.unwrap();
        let diff_ci = r.conversion.difference_interval.unwrap();
        assert!((ci.lower - diff_ci.lower * 90_000.0).abs() < 1e-9);
        // Relative lift of the rate: 0.012/0.010 − 1 = 20 %.
        assert!((r.conversion.relative_lift.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(r.treatment.conversion_rate, 0.012);
        assert_eq!(r.control.value_per_person, 0.5);
        // 900 / 180 = 5 per incremental conversion; iROAS 9 000 / 900 = 10.
        let cpia = r.cost_per_incremental_acquisition.unwrap();
        assert!((cpia.value - 5.0).abs() < 1e-12);
        assert!((r.incremental_return_on_spend.unwrap().value - 10.0).abs() < 1e-9);
        // Welch on 0/1 data: se = √(0.012·0.988/89 999 + 0.01·0.99/9 999) (unbiased variances).
        let se = (0.012_f64 * 0.988 * 90_000.0 / 89_999.0 / 90_000.0
            + 0.01 * 0.99 * 10_000.0 / 9_999.0 / 10_000.0)
            .sqrt();
        assert!((r.conversion.standard_error - se).abs() < 1e-15);
        // The holdout interval of incremental conversions straddles 0 here (z ≈ 1.89), so the
        // cost per incremental acquisition has no finite upper bound.
        assert!(ci.lower < 0.0 && cpia.interval.is_none());
    }

    #[test]
    fn a_clear_effect_bounds_the_cost_per_acquisition() {
        let t = ArmSummary::from_counts(200_000, 4_000);
        let c = ArmSummary::from_counts(200_000, 3_000);
        let r =
            incrementality(&t, &c, &IncrementalityOptions { cost: Some(10_000.0), confidence: 0.9 }).unwrap();
        let conversions = r.incremental_conversions;
        let cpia = r.cost_per_incremental_acquisition.unwrap();
        assert!((cpia.value - 10_000.0 / conversions.value).abs() < 1e-12);
        let (ci, cpia_ci) = (conversions.interval.unwrap(), cpia.interval.unwrap());
        assert!((cpia_ci.lower - 10_000.0 / ci.upper).abs() < 1e-12);
        assert!((cpia_ci.upper - 10_000.0 / ci.lower).abs() < 1e-12);
        assert!(r.conversion.p_value.unwrap() < 1e-20);
    }

    #[test]
    fn no_lift_means_no_cost_per_acquisition() {
        let t = ArmSummary::from_counts(1_000, 10);
        let c = ArmSummary::from_counts(1_000, 12);
        let r = incrementality(&t, &c, &IncrementalityOptions { cost: Some(100.0), ..Default::default() })
            .unwrap();
        assert!(r.incremental_conversions.value < 0.0);
        assert_eq!(r.cost_per_incremental_acquisition, None);
        assert!(r.incremental_return_on_spend.unwrap().value < 0.0);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let ok = ArmSummary::from_counts(100, 1);
        let options = IncrementalityOptions::default();
        assert!(
            incrementality(&ok, &ArmSummary::from_counts(1, 0), &options)
                .unwrap_err()
                .to_string()
                .contains("control")
        );
        assert!(incrementality(&ok, &ok, &IncrementalityOptions { cost: Some(-1.0), ..options }).is_err());
        assert!(incrementality(&ok, &ok, &IncrementalityOptions { confidence: 0.0, ..options }).is_err());
        assert!(
            incrementality(&ArmSummary::from_counts(5, 6), &ok, &options)
                .unwrap_err()
                .to_string()
                .contains("treatment")
        );
    }
}
