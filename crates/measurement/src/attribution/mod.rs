//! Attribution models over conversion paths, all computed on the same [`PathSet`] so they can
//! be shown side by side: first touch, last touch, last non-direct, linear, position-based, time
//! decay, the agency's custom rule, Markov chains of order 1 to 3 (removal effects solved
//! exactly) and Shapley values (closed form). Every model distributes exactly the path set's
//! total conversions and total value.
//!
//! Pure computation: the services build a [`PathSet`] from touchpoints (timed paths), the CLI
//! reads one from a path-aggregate CSV ([`read_paths_csv`]); [`run_all`] or [`run_models`] then
//! give one [`ModelResult`] per model, and [`write_csv`] / [`write_table`] render them.

mod csv_paths;
mod hashing;
mod markov;
mod model;
mod options;
mod path;
mod render;
mod rules;
mod shapley;
mod solver;

#[cfg(test)]
mod tests;

pub use csv_paths::{CsvPaths, PathCsvOptions, read_paths_csv};
pub use markov::{MarkovDetails, RemovalEffect, Transition};
pub use model::{ChannelCredit, Model, ModelResult};
pub use options::{CustomRules, MarkovSettings, Options, PositionWeights, Recency, TimeDecay};
pub use path::{ChannelId, HARD_MAX_CHANNELS, Path, PathLimits, PathOutcome, PathSet, PathSetBuilder};
pub use render::{write_csv, write_removal_effects_csv, write_table, write_transitions_csv};
pub use shapley::{EXACT_SHAPLEY_MAX_PLAYERS, exact_shapley};

use crate::Result;
use rules::Credits;
use solver::SolverSettings;

/// Runs the standard side-by-side set ([`Model::STANDARD`]: every model, Markov at order 1).
pub fn run_all(paths: &PathSet, options: &Options) -> Result<Vec<ModelResult>> {
    run_models(paths, &Model::STANDARD, options)
}

/// Runs the given models on the same paths and returns their results in that order. The
/// models are independent, so they run on as many threads as there are cores (each thread
/// takes the next model not yet started: Markov and Shapley are far heavier than the rules).
pub fn run_models(paths: &PathSet, models: &[Model], options: &Options) -> Result<Vec<ModelResult>> {
    options.validate()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(models.len());
    if threads <= 1 {
        return models.iter().map(|&model| run_validated(paths, model, options)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<ModelResult>>> = models.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&model) = models.get(index) else { return done };
                        done.push((index, run_validated(paths, model, options)));
                    }
                })
            })
            .collect();
        for worker in workers {
            // A model that panicked leaves its slot empty, reported below.
            for (index, result) in worker.join().unwrap_or_default() {
                results[index] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                Err(crate::MeasurementError::Internal("an attribution model failed".into()))
            })
        })
        .collect()
}

/// Reads a path file and runs `models` on it, side by side: what `passerelle attribution` and
/// the API's `attributionFromPaths` both do.
pub fn attribute_csv<R: std::io::Read>(
    input: R,
    csv: &PathCsvOptions,
    models: &[Model],
    options: &Options,
) -> Result<(CsvPaths, Vec<ModelResult>)> {
    options.validate()?;
    let read = read_paths_csv(input, csv)?;
    let results = run_models(&read.paths, models, options)?;
    Ok((read, results))
}

/// Runs one model.
pub fn run(paths: &PathSet, model: Model, options: &Options) -> Result<ModelResult> {
    options.validate()?;
    run_validated(paths, model, options)
}

fn run_validated(paths: &PathSet, model: Model, options: &Options) -> Result<ModelResult> {
    let no_conversions = paths.totals().conversions == 0.0;
    let mut note = None;
    let mut markov_details = None;
    let credits = match model {
        Model::FirstTouch => rules::first_touch(paths),
        Model::LastTouch => rules::last_touch(paths),
        Model::LastNonDirect => rules::last_non_direct(paths, options),
        Model::Linear => rules::linear(paths),
        Model::PositionBased => rules::position_based(paths, &options.position_weights),
        Model::TimeDecay => rules::time_decay(paths, &options.time_decay),
        Model::Custom => rules::custom(paths, &options.custom),
        Model::Shapley => shapley::shapley(paths),
        Model::Markov { order } => {
            let settings = SolverSettings {
                tolerance: options.markov.tolerance,
                max_sweeps: options.markov.max_sweeps,
                dense_limit: options.markov.dense_limit,
            };
            let outcome = markov::markov(paths, order, &settings)?;
            note = outcome.note;
            markov_details = Some(outcome.details);
            outcome.credits
        }
    };
    if no_conversions && note.is_none() {
        note = Some("no conversions: nothing is attributed".to_owned());
    }
    Ok(ModelResult { model, credits: named(paths, credits), note, markov: markov_details })
}

fn named(paths: &PathSet, credits: Credits) -> Vec<ChannelCredit> {
    paths
        .channels()
        .iter()
        .zip(credits.conversions)
        .zip(credits.value)
        .map(|((channel, conversions), value)| ChannelCredit { channel: channel.clone(), conversions, value })
        .collect()
}
