//! Intervals and the checks on the levels (confidence, α, power) that every function takes.

use crate::{MeasurementError, Result};

/// The confidence level used when the caller does not choose one.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// A two-sided interval `[lower, upper]` (a confidence interval unless the field says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    /// `center ± half_width`, or `None` when either bound is not a finite number.
    pub(crate) fn around(center: f64, half_width: f64) -> Option<Self> {
        Self::new(center - half_width, center + half_width)
    }

    /// `None` when either bound is not finite (an overflow upstream), so that no NaN or
    /// infinity reaches a caller.
    pub(crate) fn new(lower: f64, upper: f64) -> Option<Self> {
        (lower.is_finite() && upper.is_finite()).then_some(Self { lower, upper })
    }

    /// Both bounds multiplied by `factor` (which may be negative: the bounds are re-ordered).
    pub(crate) fn scaled(self, factor: f64) -> Option<Self> {
        let (a, b) = (self.lower * factor, self.upper * factor);
        Self::new(a.min(b), a.max(b))
    }

    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
}

/// A probability-like level strictly inside (0, 1): a confidence, an α, a power, a threshold.
pub(crate) fn check_level(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(MeasurementError::invalid(format!("{name} must be strictly between 0 and 1, got {value}")))
    }
}

/// `Some(x)` when `x` is a finite number: the guard that turns an overflow into "not defined".
pub(crate) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_outside_the_open_unit_interval_are_refused() {
        for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert!(check_level("confidence", bad).is_err(), "{bad}");
        }
        assert!(check_level("confidence", 0.95).is_ok());
    }

    #[test]
    fn a_negative_scale_reorders_the_bounds() {
        let interval = Interval { lower: -1.0, upper: 2.0 }.scaled(-3.0).unwrap();
        assert_eq!(interval, Interval { lower: -6.0, upper: 3.0 });
        assert!(Interval::new(0.0, f64::INFINITY).is_none());
    }
}
