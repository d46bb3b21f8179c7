//! Tests across models: conservation on many generated path sets, a reference fixture checked
//! against an independent exact computation, and a 20-channel set through every model.

use super::*;

const ALL_MODELS: [Model; 11] = [
    Model::FirstTouch,
    Model::LastTouch,
    Model::LastNonDirect,
    Model::Linear,
    Model::PositionBased,
    Model::TimeDecay,
    Model::Custom,
    Model::Markov { order: 1 },
    Model::Markov { order: 2 },
    Model::Markov { order: 3 },
    Model::Shapley,
];

/// A deterministic generator (PCG-style LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn generated(random: &mut Lcg, channels: usize, paths: usize, max_length: usize, timed: bool) -> PathSet {
    let mut builder =
        if timed { PathSetBuilder::timed(PathLimits::default()) } else { PathSetBuilder::new() };
    let names = ["direct", "email", "search", "display", "social", "sms", "push", "tv"];
    let ids: Vec<ChannelId> = (0..channels)
        .map(|c| {
            builder
                .channel(&names.get(c).map_or_else(|| format!("channel_{c}"), |n| (*n).to_owned()))
                .unwrap()
        })
        .collect();
    for _ in 0..paths {
        let length = 1 + random.below(max_length as u64) as usize;
        // Skewed channel choice, with frequent repeats, like real journeys.
        let touches: Vec<ChannelId> = (0..length)
            .map(|_| {
                ids[(random.below(channels as u64) * random.below(channels as u64 + 1) / channels as u64)
                    as usize]
            })
            .collect();
        let conversions = if random.below(3) == 0 { 1.0 + random.below(3) as f64 } else { 0.0 };
        let value = if conversions > 0.0 { random.below(100_000) as f64 / 100.0 } else { 0.0 };
        let nulls = random.below(4) as f64;
        let outcome = PathOutcome::new(conversions, value, nulls);
        if timed {
            let mut age = random.below(500) as f64;
            let mut ages = vec![0.0; length];
            for slot in ages.iter_mut().rev() {
                *slot = age;
                age += random.below(200) as f64 / 3.0;
            }
            builder.add_timed_path(&touches, &ages, None, outcome).unwrap();
        } else {
            builder.add_path(&touches, outcome).unwrap();
        }
    }
    builder.build()
}

fn options_with_rules() -> Options {
    let mut options = Options::default();
    options.custom.importance.insert("email".into(), 2.0);
    options.custom.importance.insert("tv".into(), 0.0);
    options.custom.relevance.insert("search".into(), 1.5);
    options.custom.recency = Recency::Geometric { factor: 0.7 };
    options.time_decay.half_life_hours = 36.0;
    options.time_decay.half_life_touches = 2.0;
    options.position_weights = PositionWeights { first: 0.3, middle: 0.3, last: 0.4 };
    options
}

fn assert_conserves(paths: &PathSet, results: &[ModelResult]) {
    let totals = paths.totals();
    for result in results {
        let (conversions, value) = result.totals();
        let tolerance = |total: f64| 1e-9 * total.abs().max(1.0);
        assert!(
            (conversions - totals.conversions).abs() <= tolerance(totals.conversions),
            "{}: {conversions} conversions attributed of {}",
            result.model,
            totals.conversions
        );
        assert!(
            (value - totals.value).abs() <= tolerance(totals.value),
            "{}: {value} value attributed of {}",
            result.model,
            totals.value
        );
        for credit in &result.credits {
            assert!(credit.conversions >= 0.0 && credit.value >= 0.0, "{}: {credit:?}", result.model);
        }
    }
}

#[test]
fn every_model_distributes_exactly_the_total_conversions_and_value() {
    let mut random = Lcg(42);
    let options = options_with_rules();
    for case in 0..120 {
        let channels = 1 + case % 8;
        let paths = generated(&mut random, channels, 1 + (case * 7) % 60, 1 + case % 9, case % 4 == 3);
        let results = run_models(&paths, &ALL_MODELS, &options).unwrap();
        assert_eq!(results.len(), ALL_MODELS.len());
        assert_conserves(&paths, &results);
        // The closed-form Shapley value equals the sum over coalitions.
        let shapley = results.iter().find(|result| result.model == Model::Shapley).unwrap();
        let exact = exact_shapley(channels, |coalition| {
            paths
                .iter()
                .filter(|path| path.touches.iter().all(|&c| coalition & (1 << c) != 0))
                .map(|path| path.outcome.conversions)
                .sum()
        })
        .unwrap();
        for (credit, exact) in shapley.credits.iter().zip(exact) {
            assert!((credit.conversions - exact).abs() <= 1e-9 * exact.abs().max(1.0));
        }
    }
}

#[test]
fn models_run_side_by_side_give_what_each_gives_alone_in_the_order_asked() {
    let mut random = Lcg(7);
    let options = options_with_rules();
    let paths = generated(&mut random, 6, 400, 7, true);
    let mut models = ALL_MODELS.to_vec();
    models.reverse();
    let together = run_models(&paths, &models, &options).unwrap();
    for (model, result) in models.iter().zip(&together) {
        assert_eq!(result, &run(&paths, *model, &options).unwrap());
    }
}

#[test]
fn a_path_set_without_conversions_attributes_nothing_and_says_so() {
    let mut builder = PathSetBuilder::new();
    builder.add_named_path(&["a", "b"], PathOutcome::new(0.0, 0.0, 4.0)).unwrap();
    let paths = builder.build();
    for result in run_models(&paths, &ALL_MODELS, &Options::default()).unwrap() {
        assert_eq!(result.totals(), (0.0, 0.0), "{}", result.model);
        assert!(result.note.is_some(), "{}", result.model);
    }
    assert_eq!(run_all(&PathSet::default(), &Options::default()).unwrap().len(), Model::STANDARD.len());
}

#[test]
fn invalid_options_are_refused_before_any_model_runs() {
    let mut options = Options::default();
    options.position_weights.first = 0.9;
    let paths = generated(&mut Lcg(1), 3, 10, 4, false);
    assert!(run_all(&paths, &options).is_err());
    assert!(run(&paths, Model::Linear, &options).is_err());
    assert!(run(&paths, Model::Markov { order: 4 }, &Options::default()).is_err());
}

/// Expected values come from an independent program (Python, exact rational arithmetic with
/// `fractions.Fraction`): it collapses repeats, builds the chain, and solves every absorbing
/// system by Gauss–Jordan elimination over the rationals. For order 1 the conversion
/// probability is exactly 16/69 (16 conversions over 69 journeys), and, e.g., search gets
/// 1389493502036640/241880767927919 conversions.
#[test]
fn markov_on_the_reference_fixture_matches_an_independent_exact_solution() {
    let file = include_str!("testdata/small_paths.csv");
    let read = read_paths_csv(file.as_bytes(), &PathCsvOptions::default()).unwrap();
    assert_eq!((read.rows, read.skipped_rows), (11, 0));
    let paths = read.paths;
    assert_eq!(paths.channels(), ["search", "email", "direct", "display"]);
    assert_eq!(paths.len(), 10, "the two `display > search` rows are merged");

    let check = |order: u8, expected: [(f64, f64, f64, f64); 4]| {
        let result = run(&paths, Model::Markov { order }, &Options::default()).unwrap();
        let details = result.markov.as_ref().unwrap();
        assert!((details.conversion_probability - 16.0 / 69.0).abs() < 1e-15);
        for (index, (conversions, value, effect_conversions, effect_value)) in
            expected.into_iter().enumerate()
        {
            let credit = &result.credits[index];
            let effect = &details.removal_effects[index];
            for (actual, expected) in [
                (credit.conversions, conversions),
                (credit.value, value),
                (effect.conversions, effect_conversions),
                (effect.value, effect_value),
            ] {
                assert!(
                    (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                    "order {order}, {}: {actual} vs {expected}",
                    credit.channel
                );
            }
        }
    };
    check(
        1,
        [
            (5.744538988939841, 204.10935949183693, 0.6493774866236796, 0.6588113448836799),
            (3.5383608949649465, 117.8897304101169, 0.39998543123543123, 0.3805170523920524),
            (3.4707818606932874, 123.62732065813589, 0.3923461231015188, 0.3990364850976362),
            (3.2463182554019254, 114.37358943991029, 0.3669721788871555, 0.36916787385781147),
        ],
    );
    check(
        2,
        [
            (6.431816868027053, 222.95748725221011, 0.7625, 0.8267857142857142),
            (3.5054049367015434, 137.1994086232387, 0.4155701754385965, 0.5087719298245614),
            (3.6903867275565063, 120.38741212322361, 0.4375, 0.44642857142857145),
            (2.372391467714897, 79.45569200132758, 0.28125, 0.29464285714285715),
        ],
    );
}

#[test]
fn twenty_channels_ten_thousand_paths_through_every_model() {
    let paths = generated(&mut Lcg(2024), 20, 10_000, 12, false);
    assert_eq!(paths.channels().len(), 20);
    let options = options_with_rules();
    let results = run_models(&paths, &ALL_MODELS, &options).unwrap();
    assert_conserves(&paths, &results);

    // The same Markov models with every block forced through Gauss–Seidel agree with the
    // direct elimination to 1e-10.
    let mut iterative = options.clone();
    iterative.markov.dense_limit = 0;
    for order in 1..=3 {
        let model = Model::Markov { order };
        let auto = results.iter().find(|result| result.model == model).unwrap();
        let forced = run(&paths, model, &iterative).unwrap();
        for (a, b) in auto.credits.iter().zip(&forced.credits) {
            assert!(
                (a.conversions - b.conversions).abs() <= 1e-10 * a.conversions.max(1.0),
                "{model}: {a:?} {b:?}"
            );
            assert!((a.value - b.value).abs() <= 1e-10 * a.value.max(1.0), "{model}: {a:?} {b:?}");
        }
    }

    let mut csv = Vec::new();
    write_csv(&results, &mut csv).unwrap();
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 21);
}

#[test]
fn symmetric_channels_get_equal_markov_credit() {
    let mut builder = PathSetBuilder::new();
    builder.add_named_path(&["a", "b"], PathOutcome::new(3.0, 30.0, 2.0)).unwrap();
    builder.add_named_path(&["b", "a"], PathOutcome::new(3.0, 30.0, 2.0)).unwrap();
    builder.add_named_path(&["a"], PathOutcome::new(1.0, 5.0, 4.0)).unwrap();
    builder.add_named_path(&["b"], PathOutcome::new(1.0, 5.0, 4.0)).unwrap();
    let paths = builder.build();
    for order in 1..=3 {
        let result = run(&paths, Model::Markov { order }, &Options::default()).unwrap();
        assert!((result.credits[0].conversions - 4.0).abs() < 1e-12, "{result:?}");
        assert!((result.credits[1].value - 35.0).abs() < 1e-12, "{result:?}");
    }
}
