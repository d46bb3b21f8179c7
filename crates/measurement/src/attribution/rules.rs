//! Rule-based models: each path's conversions and value are shared among its touches by
//! weights the rule gives, normalised over the path; a channel touched twice gets two shares.

use super::options::{CustomRules, Options, PositionWeights, TimeDecay};
use super::path::{Path, PathSet};

/// Per-channel conversions and value, indexed by channel id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Credits {
    pub conversions: Vec<f64>,
    pub value: Vec<f64>,
}

impl Credits {
    pub(crate) fn zero(channels: usize) -> Self {
        Self { conversions: vec![0.0; channels], value: vec![0.0; channels] }
    }
}

/// Shares every converting path by `weights`, which fills one non-negative weight per touch.
/// A path whose weights sum to 0 (or are not finite) is shared equally, so nothing is lost.
fn distribute(paths: &PathSet, mut weights: impl FnMut(&Path<'_>, &mut Vec<f64>)) -> Credits {
    let mut credits = Credits::zero(paths.channels().len());
    let mut scratch = Vec::new();
    for path in paths.iter() {
        let outcome = path.outcome;
        if outcome.conversions == 0.0 && outcome.value == 0.0 {
            continue;
        }
        scratch.clear();
        weights(&path, &mut scratch);
        let sum: f64 = scratch.iter().sum();
        let equal = !(sum.is_finite() && sum > 0.0) || scratch.len() != path.touches.len();
        for (index, &channel) in path.touches.iter().enumerate() {
            let share = if equal { 1.0 / path.touches.len() as f64 } else { scratch[index] / sum };
            if share != 0.0 {
                credits.conversions[channel as usize] += outcome.conversions * share;
                credits.value[channel as usize] += outcome.value * share;
            }
        }
    }
    credits
}

fn one_hot(weights: &mut Vec<f64>, len: usize, hot: usize) {
    weights.resize(len, 0.0);
    weights[hot] = 1.0;
}

pub(crate) fn first_touch(paths: &PathSet) -> Credits {
    distribute(paths, |path, weights| one_hot(weights, path.touches.len(), 0))
}

pub(crate) fn last_touch(paths: &PathSet) -> Credits {
    distribute(paths, |path, weights| one_hot(weights, path.touches.len(), path.touches.len() - 1))
}

/// Last touch whose channel is not direct; a path of direct touches only credits its last touch.
pub(crate) fn last_non_direct(paths: &PathSet, options: &Options) -> Credits {
    let direct: Vec<bool> = paths
        .channels()
        .iter()
        .map(|name| options.direct_channels.iter().any(|direct| direct.trim().eq_ignore_ascii_case(name)))
        .collect();
    distribute(paths, |path, weights| {
        let len = path.touches.len();
        let hot = path.touches.iter().rposition(|&channel| !direct[channel as usize]).unwrap_or(len - 1);
        one_hot(weights, len, hot);
    })
}

pub(crate) fn linear(paths: &PathSet) -> Credits {
    distribute(paths, |path, weights| weights.resize(path.touches.len(), 1.0))
}

/// U-shaped; see [`PositionWeights`] for one- and two-touch paths.
pub(crate) fn position_based(paths: &PathSet, position: &PositionWeights) -> Credits {
    distribute(paths, |path, weights| {
        let len = path.touches.len();
        match len {
            1 => weights.push(1.0),
            2 if position.first + position.last > 0.0 => weights.extend([position.first, position.last]),
            2 => weights.extend([1.0, 1.0]),
            _ => {
                let middle = position.middle / (len - 2) as f64;
                weights.push(position.first);
                weights.resize(len - 1, middle);
                weights.push(position.last);
            }
        }
    })
}

/// `2^(-age / half_life)`: ages in hours on timed paths, in touches-after on offline paths.
pub(crate) fn time_decay(paths: &PathSet, decay: &TimeDecay) -> Credits {
    distribute(paths, |path, weights| match path.ages_hours {
        Some(ages) => {
            // Relative to the youngest touch, so that old journeys do not underflow to 0; the
            // common factor cancels in the normalisation.
            let youngest = ages.iter().copied().fold(f64::INFINITY, f64::min);
            weights.extend(ages.iter().map(|age| (-(age - youngest) / decay.half_life_hours).exp2()));
        }
        None => {
            let len = path.touches.len();
            weights
                .extend((0..len).map(|index| (-((len - 1 - index) as f64) / decay.half_life_touches).exp2()));
        }
    })
}

/// `importance × recency × relevance`; see [`CustomRules`].
pub(crate) fn custom(paths: &PathSet, rules: &CustomRules) -> Credits {
    let per_channel = |map: &std::collections::HashMap<String, f64>, default: f64| -> Vec<f64> {
        paths.channels().iter().map(|name| map.get(name.as_str()).copied().unwrap_or(default)).collect()
    };
    let importance = per_channel(&rules.importance, rules.default_importance);
    let relevance = per_channel(&rules.relevance, rules.default_relevance);
    distribute(paths, |path, weights| {
        let len = path.touches.len();
        weights.extend(path.touches.iter().enumerate().map(|(index, &channel)| {
            let touch_relevance = match path.relevance {
                Some(per_touch) => per_touch[index],
                None => relevance[channel as usize],
            };
            importance[channel as usize] * rules.recency.weight(len - 1 - index) * touch_relevance
        }));
    })
}

#[cfg(test)]
mod tests {
    use super::super::options::Recency;
    use super::super::path::{PathLimits, PathOutcome, PathSetBuilder};
    use super::*;

    /// a > b > c: 1 conversion worth 10; c > a > c: 2 worth 4; b: 1 worth 6; d > b: 0 (nulls).
    fn sample() -> PathSet {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["a", "b", "c"], PathOutcome::new(1.0, 10.0, 1.0)).unwrap();
        builder.add_named_path(&["c", "a", "c"], PathOutcome::new(2.0, 4.0, 0.0)).unwrap();
        builder.add_named_path(&["b"], PathOutcome::new(1.0, 6.0, 3.0)).unwrap();
        builder.add_named_path(&["d", "b"], PathOutcome::new(0.0, 0.0, 5.0)).unwrap();
        builder.build()
    }

    fn close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn first_and_last_touch() {
        let paths = sample(); // channels a, b, c, d
        let first = first_touch(&paths);
        close(&first.conversions, &[1.0, 1.0, 2.0, 0.0]);
        close(&first.value, &[10.0, 6.0, 4.0, 0.0]);
        let last = last_touch(&paths);
        close(&last.conversions, &[0.0, 1.0, 3.0, 0.0]);
        close(&last.value, &[0.0, 6.0, 14.0, 0.0]);
    }

    #[test]
    fn last_non_direct_skips_direct_touches_unless_all_are_direct() {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["email", "Direct"], PathOutcome::new(1.0, 5.0, 0.0)).unwrap();
        builder.add_named_path(&["direct", "seo", "direct"], PathOutcome::new(2.0, 2.0, 0.0)).unwrap();
        builder.add_named_path(&["direct", "direct"], PathOutcome::new(1.0, 1.0, 0.0)).unwrap();
        let paths = builder.build(); // email, Direct, direct, seo
        let credits = last_non_direct(&paths, &Options::default());
        close(&credits.conversions, &[1.0, 0.0, 1.0, 2.0]);
        close(&credits.value, &[5.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn linear_gives_every_touch_an_equal_share() {
        let credits = linear(&sample());
        // a: 1/3 + 2/3, b: 1/3 + 1, c: 1/3 + 4/3.
        close(&credits.conversions, &[1.0, 4.0 / 3.0, 5.0 / 3.0, 0.0]);
        close(&credits.value, &[10.0 / 3.0 + 4.0 / 3.0, 10.0 / 3.0 + 6.0, 10.0 / 3.0 + 8.0 / 3.0, 0.0]);
    }

    #[test]
    fn position_based_u_shape_with_one_two_and_many_touches() {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["a"], PathOutcome::new(1.0, 0.0, 0.0)).unwrap();
        builder.add_named_path(&["a", "b"], PathOutcome::new(1.0, 0.0, 0.0)).unwrap();
        builder.add_named_path(&["a", "b", "c", "d"], PathOutcome::new(1.0, 100.0, 0.0)).unwrap();
        let paths = builder.build();
        let credits = position_based(&paths, &PositionWeights::default());
        // a: 1 + 0.5 + 0.4; b: 0.5 + 0.1; c: 0.1; d: 0.4.
        close(&credits.conversions, &[1.9, 0.6, 0.1, 0.4]);
        close(&credits.value, &[40.0, 10.0, 10.0, 40.0]);
        let skewed = position_based(&paths, &PositionWeights { first: 0.3, middle: 0.6, last: 0.1 });
        // Two touches: 0.3 / 0.4 and 0.1 / 0.4.
        close(&skewed.conversions, &[1.0 + 0.75 + 0.3, 0.25 + 0.3, 0.3, 0.1]);
        let middle_only = position_based(&paths, &PositionWeights { first: 0.0, middle: 1.0, last: 0.0 });
        close(&middle_only.conversions, &[1.0 + 0.5, 0.5 + 0.5, 0.5, 0.0]);
    }

    #[test]
    fn time_decay_by_position_offline_and_by_hours_when_timed() {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["a", "b", "c"], PathOutcome::new(7.0, 14.0, 0.0)).unwrap();
        let credits = time_decay(&builder.build(), &TimeDecay::default());
        // Weights 1/4, 1/2, 1 over 7/4.
        close(&credits.conversions, &[1.0, 2.0, 4.0]);
        close(&credits.value, &[2.0, 4.0, 8.0]);

        let mut builder = PathSetBuilder::timed(PathLimits::default());
        let (a, b) = (builder.channel("a").unwrap(), builder.channel("b").unwrap());
        let decay = TimeDecay { half_life_hours: 24.0, half_life_touches: 1.0 };
        builder
            .add_timed_path(&[a, b], &[10_048.0, 10_000.0], None, PathOutcome::new(5.0, 5.0, 0.0))
            .unwrap();
        let credits = time_decay(&builder.build(), &decay);
        // 48 h is two half-lives older: weights 1/4 and 1, however old the journey.
        close(&credits.conversions, &[1.0, 4.0]);
    }

    #[test]
    fn custom_rules_multiply_importance_recency_and_relevance() {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["email", "display", "email"], PathOutcome::new(1.0, 10.0, 0.0)).unwrap();
        let paths = builder.build();
        assert_eq!(custom(&paths, &CustomRules::default()), linear(&paths));

        let mut rules = CustomRules::default();
        rules.importance.insert("display".into(), 3.0);
        rules.relevance.insert("email".into(), 2.0);
        rules.recency = Recency::Table(vec![1.0, 0.5]);
        // email(k=2): 1×0.5×2 = 1, display(k=1): 3×0.5×1 = 1.5, email(k=0): 1×1×2 = 2; sum 4.5.
        let credits = custom(&paths, &rules);
        close(&credits.conversions, &[3.0 / 4.5, 1.5 / 4.5]);
        close(&credits.value, &[30.0 / 4.5, 15.0 / 4.5]);

        // All weights 0: shared equally instead of lost.
        rules.default_importance = 0.0;
        rules.importance.clear();
        let credits = custom(&paths, &rules);
        close(&credits.conversions, &[2.0 / 3.0, 1.0 / 3.0]);

        // Per-touch relevance on timed paths replaces the channel's.
        let mut builder = PathSetBuilder::timed(PathLimits::default());
        let (email, web) = (builder.channel("email").unwrap(), builder.channel("web").unwrap());
        builder
            .add_timed_path(&[email, web], &[2.0, 1.0], Some(&[3.0, 1.0]), PathOutcome::new(4.0, 0.0, 0.0))
            .unwrap();
        let credits = custom(&builder.build(), &CustomRules::default());
        close(&credits.conversions, &[3.0, 1.0]);
    }
}
