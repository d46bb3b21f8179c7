//! The agency's settings for every model, with the defaults the product documents.

use std::collections::HashMap;

use crate::Result;
use crate::error::MeasurementError;

/// Settings shared by a side-by-side run of the models.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Channel names the last non-direct model skips (compared ASCII case-insensitively).
    pub direct_channels: Vec<String>,
    pub position_weights: PositionWeights,
    pub time_decay: TimeDecay,
    pub custom: CustomRules,
    pub markov: MarkovSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            direct_channels: vec!["direct".into()],
            position_weights: PositionWeights::default(),
            time_decay: TimeDecay::default(),
            custom: CustomRules::default(),
            markov: MarkovSettings::default(),
        }
    }
}

impl Options {
    /// Refuses settings no model can honour, naming the setting.
    pub fn validate(&self) -> Result<()> {
        self.position_weights.validate()?;
        self.time_decay.validate()?;
        self.custom.validate()?;
        self.markov.validate()
    }
}

/// Position-based (U-shaped) weights of the first touch, all middle touches together, and
/// the last touch.
///
/// A one-touch path gives its touch everything. A two-touch path has no middle, so the first and
/// last weights are renormalised between its two touches (`first / (first + last)`: 50/50 with
/// the defaults), keeping the ratio the agency chose; if both are 0 the two touches share
/// equally. From three touches on, the middle weight is split equally among the middle touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionWeights {
    pub first: f64,
    pub middle: f64,
    pub last: f64,
}

impl Default for PositionWeights {
    fn default() -> Self {
        Self { first: 0.4, middle: 0.2, last: 0.4 }
    }
}

impl PositionWeights {
    pub fn validate(&self) -> Result<()> {
        for (name, weight) in [("first", self.first), ("middle", self.middle), ("last", self.last)] {
            if !weight.is_finite() || weight < 0.0 {
                return Err(MeasurementError::invalid(format!(
                    "position-based {name} weight must be a finite number >= 0, got {weight}"
                )));
            }
        }
        let sum = self.first + self.middle + self.last;
        if (sum - 1.0).abs() > 1e-9 {
            return Err(MeasurementError::invalid(format!(
                "position-based weights must sum to 1, they sum to {sum}"
            )));
        }
        Ok(())
    }
}

/// Time decay: a touch's weight halves every half-life before the conversion.
///
/// Paths from the database carry each touch's age in hours, so `half_life_hours` applies.
/// Offline path exports carry only the order of touches: there a touch's age is the number of
/// touches after it (the last touch is 0 steps old, the one before 1, …) and the half-life is
/// `half_life_touches`, measured in touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeDecay {
    pub half_life_hours: f64,
    pub half_life_touches: f64,
}

impl Default for TimeDecay {
    fn default() -> Self {
        Self { half_life_hours: 7.0 * 24.0, half_life_touches: 1.0 }
    }
}

impl TimeDecay {
    pub fn validate(&self) -> Result<()> {
        for (name, half_life) in
            [("half_life_hours", self.half_life_hours), ("half_life_touches", self.half_life_touches)]
        {
            if !half_life.is_finite() || half_life <= 0.0 {
                return Err(MeasurementError::invalid(format!(
                    "time decay {name} must be a finite number > 0, got {half_life}"
                )));
            }
        }
        Ok(())
    }
}

/// The agency's own rule: touch `i` of a path weighs
/// `importance(channel_i) × recency(k_i) × relevance_i`, normalised over the path, where `k_i`
/// is the number of touches after touch `i` (0 for the last touch) and `relevance_i` is the
/// touch's own relevance when the path carries one (database paths may), else the channel's.
/// Channels absent from a map take its default; names are matched exactly (after trimming).
/// If every touch of a path weighs 0 the path is shared equally among its touches, so that
/// every conversion is still attributed. With nothing configured the model equals linear.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomRules {
    pub importance: HashMap<String, f64>,
    pub default_importance: f64,
    pub relevance: HashMap<String, f64>,
    pub default_relevance: f64,
    pub recency: Recency,
}

impl Default for CustomRules {
    fn default() -> Self {
        Self {
            importance: HashMap::new(),
            default_importance: 1.0,
            relevance: HashMap::new(),
            default_relevance: 1.0,
            recency: Recency::Geometric { factor: 1.0 },
        }
    }
}

/// Recency weight of a touch by its number `k` of touches before the end of the path.
#[derive(Debug, Clone, PartialEq)]
pub enum Recency {
    /// `factor^k`: 1 weighs every position alike, 0.5 halves the weight per step back.
    Geometric { factor: f64 },
    /// `table[k]`, the last entry repeating for older touches.
    Table(Vec<f64>),
}

impl Recency {
    pub(crate) fn weight(&self, steps_from_end: usize) -> f64 {
        match self {
            Self::Geometric { factor } => factor.powi(i32::try_from(steps_from_end).unwrap_or(i32::MAX)),
            Self::Table(table) => table.get(steps_from_end).or(table.last()).copied().unwrap_or(1.0),
        }
    }
}

impl CustomRules {
    pub fn validate(&self) -> Result<()> {
        let check = |what: &str, weight: f64| {
            if weight.is_finite() && weight >= 0.0 {
                Ok(())
            } else {
                Err(MeasurementError::invalid(format!(
                    "custom rule {what} must be a finite number >= 0, got {weight}"
                )))
            }
        };
        check("default importance", self.default_importance)?;
        check("default relevance", self.default_relevance)?;
        for (channel, &weight) in &self.importance {
            check(&format!("importance of `{channel}`"), weight)?;
        }
        for (channel, &weight) in &self.relevance {
            check(&format!("relevance of `{channel}`"), weight)?;
        }
        match &self.recency {
            Recency::Geometric { factor } => check("recency factor", *factor),
            Recency::Table(table) if table.is_empty() => {
                Err(MeasurementError::invalid("custom rule recency table is empty"))
            }
            Recency::Table(table) => table.iter().try_for_each(|&weight| check("recency weight", weight)),
        }
    }
}

/// Numerical settings of the Markov model's exact solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarkovSettings {
    /// Relative accuracy the iterative solver must reach on strongly connected blocks too large
    /// for direct elimination.
    pub tolerance: f64,
    /// Gauss–Seidel sweeps allowed per block before the solve fails.
    pub max_sweeps: usize,
    /// Largest strongly connected block solved by dense Gaussian elimination.
    pub dense_limit: usize,
}

impl Default for MarkovSettings {
    fn default() -> Self {
        Self { tolerance: 1e-13, max_sweeps: 200_000, dense_limit: 400 }
    }
}

impl MarkovSettings {
    pub fn validate(&self) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Err(MeasurementError::invalid(format!(
                "Markov solver tolerance must be in (0, 1), got {}",
                self.tolerance
            )));
        }
        if self.max_sweeps == 0 {
            return Err(MeasurementError::invalid("Markov solver max_sweeps must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        Options::default().validate().unwrap();
        let options = Options {
            position_weights: PositionWeights { first: 0.5, middle: 0.2, last: 0.4 },
            ..Options::default()
        };
        assert!(options.validate().unwrap_err().to_string().contains("sum to 1"));
        let mut options = Options::default();
        options.time_decay.half_life_touches = 0.0;
        assert!(options.validate().unwrap_err().to_string().contains("half_life_touches"));
        let mut options = Options::default();
        options.custom.importance.insert("email".into(), -1.0);
        assert!(options.validate().unwrap_err().to_string().contains("importance of `email`"));
        let mut options = Options::default();
        options.custom.recency = Recency::Table(vec![]);
        assert!(options.validate().is_err());
    }

    #[test]
    fn recency_weights_by_steps_from_the_end() {
        let geometric = Recency::Geometric { factor: 0.5 };
        assert_eq!([0, 1, 2].map(|k| geometric.weight(k)), [1.0, 0.5, 0.25]);
        let table = Recency::Table(vec![1.0, 0.6, 0.3]);
        assert_eq!([0, 1, 2, 9].map(|k| table.weight(k)), [1.0, 0.6, 0.3, 0.3]);
    }
}
