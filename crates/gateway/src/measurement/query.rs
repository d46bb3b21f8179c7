use super::objects::{
    ExperimentAnalysis, ExperimentCountsInput, ModelAttribution, PathAttribution, PathAttributionInput,
    SampleSize, SampleSizeInput,
};
use crate::{context::ContextExt, error::GqlResult, error::coded};
use async_graphql::{Context, Object};
use kernel::ErrorCode;
use measurement::{attribution, stats};

#[derive(Default)]
pub struct MeasurementQuery;

#[Object]
impl MeasurementQuery {
    /// Attribution models side by side on exported paths (what `passerelle attribution` does):
    /// conversions and value per channel under each model.
    async fn attribution_from_paths(
        &self,
        ctx: &Context<'_>,
        input: PathAttributionInput,
    ) -> async_graphql::Result<PathAttribution> {
        ctx.actor()?;
        let models = match &input.models {
            Some(names) => names.iter().map(|name| name.parse()).collect::<Result<Vec<_>, _>>().gql()?,
            None => attribution::Model::STANDARD.to_vec(),
        };
        let mut options = attribution::Options::default();
        if let Some(direct) = input.direct_channels {
            options.direct_channels = direct;
        }
        if let Some(w) = input.position_weights {
            options.position_weights =
                attribution::PositionWeights { first: w.first, middle: w.middle, last: w.last };
        }
        if let Some(half_life) = input.half_life_touches {
            options.time_decay.half_life_touches = half_life;
        }
        let delimiter = match input.delimiter.as_deref().map(str::as_bytes) {
            None => None,
            Some([byte]) if byte.is_ascii() => Some(*byte),
            Some(_) => return Err(coded(ErrorCode::BadUserInput, "the delimiter is one ASCII character")),
        };
        let csv_options = attribution::PathCsvOptions {
            path_column: input.path_column,
            conversions_column: input.conversions_column,
            value_column: input.value_column,
            nulls_column: input.nulls_column,
            channel_separator: input.separator,
            delimiter,
            ..attribution::PathCsvOptions::default()
        };
        let csv = input.csv;
        // Markov and Shapley on a large file take CPU time: off the async workers.
        let computed = tokio::task::spawn_blocking(move || {
            attribution::attribute_csv(csv.as_bytes(), &csv_options, &models, &options)
        })
        .await
        .map_err(|_| coded(ErrorCode::Internal, "the attribution was interrupted"))?;
        let (read, results) = computed.gql()?;
        let totals = read.paths.totals();
        Ok(PathAttribution {
            rows: read.rows,
            distinct_paths: read.paths.len() as u64,
            skipped_rows: read.skipped_rows,
            total_conversions: totals.conversions,
            total_value: totals.value,
            models: results.into_iter().map(ModelAttribution::from).collect(),
        })
    }

    /// The experiment calculator on raw counts: each variant against the control (Welch,
    /// delta-method lift, corrected p-values, optionally always-valid), Bayesian chance to win
    /// and expected loss, and the sample-ratio check.
    async fn experiment_calculator(
        &self,
        ctx: &Context<'_>,
        input: ExperimentCountsInput,
    ) -> async_graphql::Result<ExperimentAnalysis> {
        ctx.actor()?;
        let arms: Vec<stats::CountArm> = input
            .arms
            .into_iter()
            .map(|arm| stats::CountArm {
                label: arm.label,
                visitors: arm.visitors,
                conversions: arm.conversions,
                planned_weight: arm.planned_weight,
            })
            .collect();
        let defaults = stats::ExperimentOptions::default();
        let options = stats::ExperimentOptions {
            control: input.control,
            confidence: input.confidence.unwrap_or(defaults.confidence),
            correction: input.correction.map_or(defaults.correction, Into::into),
            sequential: input.sequential.then(stats::SequentialOptions::default),
            ..defaults
        };
        stats::analyze_counts(&arms, &options).gql().map(ExperimentAnalysis::from)
    }

    /// People needed per arm to detect an effect on a conversion rate (Fleiss' formula).
    async fn sample_size(
        &self,
        ctx: &Context<'_>,
        input: SampleSizeInput,
    ) -> async_graphql::Result<SampleSize> {
        ctx.actor()?;
        let effect = match (input.relative_effect, input.absolute_effect) {
            (Some(relative), None) => stats::Effect::Relative(relative),
            (None, Some(absolute)) => stats::Effect::Absolute(absolute),
            _ => {
                return Err(coded(
                    ErrorCode::BadUserInput,
                    "give exactly one of relativeEffect and absoluteEffect",
                ));
            }
        };
        let mut plan = stats::ProportionPlan::new(input.baseline_rate, effect);
        plan.alpha = input.alpha.unwrap_or(plan.alpha);
        plan.power = input.power.unwrap_or(plan.power);
        plan.arms = input.arms.unwrap_or(plan.arms);
        let size = stats::sample_size_for_proportions(&plan).gql()?;
        Ok(SampleSize {
            per_arm: size.per_arm,
            total: size.total,
            target_rate: size.target_rate,
            comparison_alpha: size.comparison_alpha,
        })
    }
}
