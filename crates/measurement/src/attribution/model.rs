//! The models by name, and what each returns.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::markov::MarkovDetails;
use crate::Result;
use crate::error::MeasurementError;

/// An attribution model. Names are stable (CLI, API, CSV headers): see [`Model::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    FirstTouch,
    LastTouch,
    LastNonDirect,
    Linear,
    PositionBased,
    TimeDecay,
    Custom,
    /// Markov chain of the given order (1 to 3).
    Markov {
        order: u8,
    },
    Shapley,
}

impl Model {
    /// What a side-by-side report shows by default.
    pub const STANDARD: [Model; 9] = [
        Model::FirstTouch,
        Model::LastTouch,
        Model::LastNonDirect,
        Model::Linear,
        Model::PositionBased,
        Model::TimeDecay,
        Model::Custom,
        Model::Markov { order: 1 },
        Model::Shapley,
    ];

    /// Names [`Model::from_str`] accepts, for help texts and errors.
    pub const NAMES: &'static str = "first_touch, last_touch, last_non_direct, linear, position_based, \
        time_decay, custom, markov (= markov_1), markov_1, markov_2, markov_3, shapley";

    /// A Markov model of order 1 to 3.
    pub fn markov(order: u8) -> Result<Self> {
        if (1..=3).contains(&order) {
            Ok(Self::Markov { order })
        } else {
            Err(MeasurementError::invalid(format!("Markov order must be 1, 2 or 3, got {order}")))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::FirstTouch => "first_touch",
            Self::LastTouch => "last_touch",
            Self::LastNonDirect => "last_non_direct",
            Self::Linear => "linear",
            Self::PositionBased => "position_based",
            Self::TimeDecay => "time_decay",
            Self::Custom => "custom",
            Self::Markov { order: 1 } => "markov_1",
            Self::Markov { order: 2 } => "markov_2",
            Self::Markov { order: 3 } => "markov_3",
            Self::Markov { .. } => "markov",
            Self::Shapley => "shapley",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = MeasurementError;

    /// Parses a model name, case-insensitively; `-` may stand for `_`.
    fn from_str(name: &str) -> Result<Self> {
        let normalised = name.trim().to_ascii_lowercase().replace('-', "_");
        let model = match normalised.as_str() {
            "first_touch" => Self::FirstTouch,
            "last_touch" => Self::LastTouch,
            "last_non_direct" => Self::LastNonDirect,
            "linear" => Self::Linear,
            "position_based" => Self::PositionBased,
            "time_decay" => Self::TimeDecay,
            "custom" => Self::Custom,
            "markov" | "markov_1" => Self::Markov { order: 1 },
            "markov_2" => Self::Markov { order: 2 },
            "markov_3" => Self::Markov { order: 3 },
            "shapley" => Self::Shapley,
            _ => {
                return Err(MeasurementError::invalid(format!(
                    "unknown attribution model `{}`; valid models: {}",
                    name.trim(),
                    Self::NAMES
                )));
            }
        };
        Ok(model)
    }
}

impl Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Conversions and value one model gives one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelCredit {
    pub channel: String,
    pub conversions: f64,
    pub value: f64,
}

/// One model's attribution: every channel of the path set, in the path set's channel order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    pub model: Model,
    pub credits: Vec<ChannelCredit>,
    /// Why the result is degenerate, when it is (e.g. no conversions to attribute).
    pub note: Option<String>,
    /// Transition probabilities and removal effects, for Markov models.
    pub markov: Option<MarkovDetails>,
}

impl ModelResult {
    /// Sum of the attributed conversions and value (equal to the path set's totals).
    pub fn totals(&self) -> (f64, f64) {
        self.credits.iter().fold((0.0, 0.0), |(conversions, value), credit| {
            (conversions + credit.conversions, value + credit.value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for model in
            Model::STANDARD.into_iter().chain([Model::Markov { order: 2 }, Model::Markov { order: 3 }])
        {
            assert_eq!(model.name().parse::<Model>().unwrap(), model);
        }
        assert_eq!("Markov".parse::<Model>().unwrap(), Model::Markov { order: 1 });
        assert_eq!("position-based".parse::<Model>().unwrap(), Model::PositionBased);
        let error = "markov_4".parse::<Model>().unwrap_err().to_string();
        assert!(
            error.contains("unknown attribution model `markov_4`") && error.contains("shapley"),
            "{error}"
        );
        assert!(Model::markov(0).is_err() && Model::markov(4).is_err());
        assert_eq!(Model::markov(2).unwrap().to_string(), "markov_2");
    }
}
