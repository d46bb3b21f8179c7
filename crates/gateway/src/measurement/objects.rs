//! GraphQL shapes of attribution and experiment results, mapped from the domain's types.

use async_graphql::{Enum, InputObject, SimpleObject};
use measurement::{attribution, stats};

#[derive(InputObject)]
pub struct PathAttributionInput {
    /// The path file: a header row, then one row per path (`a > b > c`, conversions, value,
    /// non-converting count). At most the request body size.
    pub csv: String,
    /// Between the channels of a path.
    #[graphql(default = ">")]
    pub separator: String,
    /// Between fields (one character); guessed from the header among `, ; tab |` when absent.
    pub delimiter: Option<String>,
    #[graphql(default = "path")]
    pub path_column: String,
    #[graphql(default = "total_conversions")]
    pub conversions_column: String,
    /// Null when the file has no value column.
    #[graphql(default_with = "Some(\"total_conversion_value\".to_owned())")]
    pub value_column: Option<String>,
    /// Null when the file has no non-converting column.
    #[graphql(default_with = "Some(\"total_null\".to_owned())")]
    pub nulls_column: Option<String>,
    /// Models to run (default: every model, Markov at order 1): `first_touch`, `last_touch`,
    /// `last_non_direct`, `linear`, `position_based`, `time_decay`, `custom`, `markov_1` …
    /// `markov_3`, `shapley`.
    pub models: Option<Vec<String>>,
    /// Channels that count as direct for `last_non_direct` (default `direct`).
    pub direct_channels: Option<Vec<String>>,
    pub position_weights: Option<PositionWeightsInput>,
    /// Time-decay half-life in touches (a path file has no times; default 1).
    pub half_life_touches: Option<f64>,
}

#[derive(InputObject)]
pub struct PositionWeightsInput {
    pub first: f64,
    pub middle: f64,
    pub last: f64,
}

#[derive(SimpleObject)]
pub struct PathAttribution {
    pub rows: u64,
    pub distinct_paths: u64,
    /// Rows with no conversion, value or non-converting count.
    pub skipped_rows: u64,
    pub total_conversions: f64,
    pub total_value: f64,
    pub models: Vec<ModelAttribution>,
}

#[derive(SimpleObject)]
pub struct ModelAttribution {
    pub model: String,
    /// Why a result is degenerate (no conversions), if it is.
    pub note: Option<String>,
    pub channels: Vec<ChannelCredit>,
    /// Markov models only: the relative drop in conversions (and value) without each channel.
    pub removal_effects: Option<Vec<RemovalEffect>>,
}

#[derive(SimpleObject)]
pub struct ChannelCredit {
    pub channel: String,
    pub conversions: f64,
    pub value: f64,
}

#[derive(SimpleObject)]
pub struct RemovalEffect {
    pub channel: String,
    pub conversions: f64,
    pub value: f64,
}

impl From<attribution::ModelResult> for ModelAttribution {
    fn from(result: attribution::ModelResult) -> Self {
        Self {
            model: result.model.to_string(),
            note: result.note,
            channels: result
                .credits
                .into_iter()
                .map(|c| ChannelCredit { channel: c.channel, conversions: c.conversions, value: c.value })
                .collect(),
            removal_effects: result.markov.map(|details| {
                details
                    .removal_effects
                    .into_iter()
                    .map(|r| RemovalEffect { channel: r.channel, conversions: r.conversions, value: r.value })
                    .collect()
            }),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "stats::Correction")]
pub enum Correction {
    None,
    Bonferroni,
    Holm,
}

#[derive(InputObject)]
pub struct ExperimentCountsInput {
    pub arms: Vec<CountArmInput>,
    /// The control arm's label (default: the first arm).
    pub control: Option<String>,
    /// Confidence of the intervals (default 0.95).
    pub confidence: Option<f64>,
    /// Multiple-comparison correction for A/B/n (default HOLM).
    pub correction: Option<Correction>,
    /// Add the always-valid (mSPRT) test, for people who look at results before the end.
    #[graphql(default)]
    pub sequential: bool,
}

#[derive(InputObject)]
pub struct CountArmInput {
    pub label: String,
    pub visitors: u64,
    pub conversions: u64,
    /// The share of traffic the arm was meant to get, for the sample-ratio check (default: even).
    pub planned_weight: Option<f64>,
}

#[derive(SimpleObject)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

pub(super) fn interval(i: Option<stats::Interval>) -> Option<Interval> {
    i.map(|i| Interval { lower: i.lower, upper: i.upper })
}

#[derive(SimpleObject)]
pub struct ExperimentAnalysis {
    pub control: String,
    pub arms: Vec<ArmOverview>,
    /// Each variant against the control.
    pub comparisons: Vec<VariantComparison>,
    /// Chance to be best and expected loss, per arm (Beta(1,1) prior).
    pub bayesian: Vec<ArmChance>,
    pub sample_ratio: SampleRatioCheck,
    /// The confidence of the intervals after the correction for several comparisons.
    pub interval_confidence: f64,
}

#[derive(SimpleObject)]
pub struct ArmOverview {
    pub label: String,
    pub people: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
}

#[derive(SimpleObject)]
pub struct VariantComparison {
    pub label: String,
    pub rate: f64,
    pub control_rate: f64,
    pub difference: f64,
    pub difference_interval: Option<Interval>,
    /// rate / control rate − 1 (null when the control never converted).
    pub relative_lift: Option<f64>,
    /// Delta-method interval of the relative lift.
    pub relative_lift_interval: Option<Interval>,
    /// Welch's t-test, two-sided.
    pub p_value: Option<f64>,
    /// After the correction for several comparisons.
    pub adjusted_p_value: Option<f64>,
    /// Always-valid p-value (mSPRT), when asked for.
    pub sequential_p_value: Option<f64>,
    pub sequential_interval: Option<Interval>,
}

#[derive(SimpleObject)]
pub struct ArmChance {
    pub label: String,
    pub chance_to_win: f64,
    pub expected_loss: f64,
}

#[derive(SimpleObject)]
pub struct SampleRatioCheck {
    pub chi_squared: f64,
    pub p_value: f64,
    /// The split is not what was planned (p below 0.001): results are not to be trusted.
    pub mismatch: bool,
}

impl From<stats::ExperimentAnalysis> for ExperimentAnalysis {
    fn from(analysis: stats::ExperimentAnalysis) -> Self {
        Self {
            control: analysis.control,
            arms: analysis
                .arms
                .into_iter()
                .map(|a| ArmOverview {
                    label: a.label,
                    people: a.people,
                    conversions: a.conversions,
                    conversion_rate: a.conversion_rate,
                })
                .collect(),
            comparisons: analysis
                .conversion
                .comparisons
                .into_iter()
                .map(|c| VariantComparison {
                    label: c.label,
                    rate: c.comparison.treatment_mean,
                    control_rate: c.comparison.control_mean,
                    difference: c.comparison.difference,
                    difference_interval: interval(c.comparison.difference_interval),
                    relative_lift: c.comparison.relative_lift,
                    relative_lift_interval: interval(c.comparison.relative_lift_interval),
                    p_value: c.comparison.p_value,
                    adjusted_p_value: c.adjusted_p_value,
                    sequential_p_value: c
                        .sequential_adjusted_p_value
                        .or(c.sequential.as_ref().map(|s| s.p_value)),
                    sequential_interval: interval(c.sequential.map(|s| s.interval)),
                })
                .collect(),
            bayesian: analysis
                .conversion
                .bayesian
                .unwrap_or_default()
                .into_iter()
                .map(|c| ArmChance {
                    label: c.label,
                    chance_to_win: c.chance_to_win,
                    expected_loss: c.expected_loss,
                })
                .collect(),
            sample_ratio: SampleRatioCheck {
                chi_squared: analysis.sample_ratio.chi_squared,
                p_value: analysis.sample_ratio.p_value,
                mismatch: analysis.sample_ratio.mismatch,
            },
            interval_confidence: analysis.interval_confidence,
        }
    }
}

#[derive(InputObject)]
pub struct SampleSizeInput {
    /// The control's conversion rate, in (0, 1).
    pub baseline_rate: f64,
    /// The smallest change worth detecting, relative to the baseline (0.1 = +10%)…
    pub relative_effect: Option<f64>,
    /// …or in absolute points (0.02 = from 10% to 12%). Exactly one of the two.
    pub absolute_effect: Option<f64>,
    /// Two-sided significance level (default 0.05).
    pub alpha: Option<f64>,
    /// Chance to detect the effect when it is there (default 0.8).
    pub power: Option<f64>,
    /// Arms including the control (default 2); each comparison is planned at alpha / (arms − 1).
    pub arms: Option<u32>,
}

#[derive(SimpleObject)]
pub struct SampleSize {
    pub per_arm: u64,
    pub total: u64,
    pub target_rate: Option<f64>,
    pub comparison_alpha: f64,
}
