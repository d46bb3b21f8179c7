//! Experiment and incrementality statistics: pure computation on per-arm sums, no I/O.
//!
//! - [`incrementality`]: a campaign or journey against its holdout — rates, value per person,
//!   absolute and relative lift with intervals, p-values, incremental conversions and revenue,
//!   cost per incremental acquisition.
//! - [`analyze_experiment`]: A/B/n and multivariate tests — Welch tests with Holm-corrected
//!   p-values, Bayesian chance to win and expected loss, the sample-ratio check, and the
//!   always-valid sequential test for people who peek.
//! - [`analyze_counts`], [`sample_size_for_proportions`], [`power_for_proportions`],
//!   [`sample_size_for_means`]: the planning calculator on raw counts.
//!
//! Distribution functions come from `statrs` (`distributions.rs` notes where and why it is
//! worked around); undefined quantities are `None`, never NaN; bad input is
//! [`crate::MeasurementError::InvalidInput`].

mod bayes;
mod correction;
mod distributions;
mod experiment;
mod incrementality;
mod interval;
mod planning;
mod quadrature;
mod sequential;
mod srm;
mod summary;
mod welch;

pub use bayes::{BetaPrior, Chance, conversion_chances, value_chances};
pub use correction::{Correction, bonferroni, holm};
pub use experiment::{
    ArmChance, ArmOverview, ExperimentAnalysis, ExperimentArm, ExperimentOptions, FactorEffect, FactorLevel,
    MetricAnalysis, VariantComparison, analyze_experiment,
};
pub use incrementality::{Estimate, GroupMetrics, Incrementality, IncrementalityOptions, incrementality};
pub use interval::{DEFAULT_CONFIDENCE, Interval};
pub use planning::{
    CountArm, DEFAULT_ALPHA, DEFAULT_POWER, Effect, ProportionPlan, SampleSize, analyze_counts,
    power_for_proportions, sample_size_for_means, sample_size_for_proportions,
};
pub use sequential::{
    DEFAULT_RELATIVE_MIXING, DEFAULT_SEQUENTIAL_ALPHA, MixingScale, SequentialOptions, SequentialTest,
    always_valid, mixture_sprt,
};
pub use srm::{DEFAULT_SRM_THRESHOLD, SampleRatioCheck, sample_ratio_mismatch};
pub use summary::{ArmSummary, Moments};
pub use welch::{MeanComparison, compare_means};

/// Most arms an experiment, a Bayesian comparison or a sample-ratio check accepts.
pub const MAX_ARMS: usize = 64;
