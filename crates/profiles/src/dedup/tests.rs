use super::synthetic::{SyntheticConfig, generate};
use super::*;

fn record(key: u64, values: &[&str]) -> DedupRecord<u64> {
    DedupRecord {
        key,
        values: values.iter().map(|value| (!value.is_empty()).then(|| (*value).to_owned())).collect(),
    }
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let schema = DedupSchema::new([("given", FieldKind::GivenName), ("surname", FieldKind::Surname)]);
    let config = DedupConfig::default();
    let mismatch = deduplicate(&schema, &[record(1, &["ada", "lovelace"]), record(2, &["ada"])], &config);
    assert_eq!(mismatch.err(), Some(DedupError::ValueCountMismatch { record: 1, expected: 2, found: 1 }));
    let empty = deduplicate::<u64>(&DedupSchema::new(Vec::<(String, FieldKind)>::new()), &[], &config);
    assert_eq!(empty.err(), Some(DedupError::EmptySchema));
    let duplicate = DedupSchema::new([("name", FieldKind::Name), ("name", FieldKind::Name)]);
    assert!(matches!(deduplicate::<u64>(&duplicate, &[], &config), Err(DedupError::DuplicateField(_))));
    let too_wide = DedupSchema::new((0..40).map(|i| (format!("f{i}"), FieldKind::Exact)));
    assert!(matches!(deduplicate::<u64>(&too_wide, &[], &config), Err(DedupError::TooManyFields { .. })));
    for (auto, review) in [(1.5, 0.5), (0.9, 0.0), (0.5, 0.9), (f64::NAN, 0.5)] {
        let config = DedupConfig {
            auto_merge_probability: auto,
            review_probability: review,
            ..DedupConfig::default()
        };
        let error = deduplicate::<u64>(&schema, &[], &config).err();
        assert!(matches!(error, Some(DedupError::InvalidConfig(_))), "{auto} {review}: {error:?}");
        assert_eq!(error.map(|error| error.code()), Some(kernel::ErrorCode::BadUserInput));
    }
}

#[test]
fn tiny_inputs_give_empty_outcomes() {
    let schema = DedupSchema::new([("name", FieldKind::Name)]);
    for records in [vec![], vec![record(1, &["Ada Lovelace"])]] {
        let outcome = deduplicate(&schema, &records, &DedupConfig::default());
        let outcome = outcome.unwrap_or_else(|error| panic!("{error}"));
        assert!(outcome.auto_merge.is_empty() && outcome.clusters.is_empty());
    }
}

/// Typos, nicknames, initials, swapped names, swapped day and month, missing values,
/// abbreviations and formatting noise, as in FEBRL: duplicates the fields can tell apart.
#[test]
fn typos_swaps_and_missing_values_are_deduplicated_with_f1_above_0_99() {
    let config = SyntheticConfig {
        people: 3000,
        household_share: 0.0,
        move_share: 0.0,
        seed: 11,
        ..Default::default()
    };
    let data = generate(&config);
    let outcome =
        deduplicate(&data.schema, &data.records, &DedupConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let pairs = data.pair_metrics(outcome.auto_merge.iter().map(|pair| (pair.a, pair.b)));
    let clusters = data.cluster_metrics(&outcome.clusters);
    assert!(pairs.f1() >= 0.99, "{pairs:?} f1 {}", pairs.f1());
    assert!(clusters.f1() >= 0.99, "{clusters:?} f1 {}", clusters.f1());
}

/// Households (a surname and an address shared by different people, twins sharing a birth
/// date too) and people who moved make some pairs ambiguous: auto-merges must stay precise,
/// the ambiguous pairs go to review.
#[test]
fn households_and_moves_do_not_make_auto_merges_imprecise() {
    let config = SyntheticConfig { people: 3000, household_share: 0.1, seed: 12, ..Default::default() };
    let data = generate(&config);
    let outcome =
        deduplicate(&data.schema, &data.records, &DedupConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let clusters = data.cluster_metrics(&outcome.clusters);
    assert!(clusters.precision() >= 0.99, "{clusters:?}");
    assert!(clusters.f1() >= 0.95, "{clusters:?} f1 {}", clusters.f1());
    let reviewed =
        data.pair_metrics(outcome.auto_merge.iter().chain(&outcome.suggestions).map(|pair| (pair.a, pair.b)));
    assert!(reviewed.recall() > clusters.recall().min(0.97), "{reviewed:?} {clusters:?}");
}

#[test]
fn em_estimates_sensible_parameters() {
    let data = generate(&SyntheticConfig { people: 2000, seed: 5, ..SyntheticConfig::default() });
    let outcome =
        deduplicate(&data.schema, &data.records, &DedupConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let parameters = &outcome.parameters;
    for field in &parameters.fields {
        let exact = &field.levels[0];
        let different = &field.levels[field.levels.len() - 1];
        // Duplicates mostly agree, strangers mostly do not.
        assert!(exact.m > 0.5, "{field:?}");
        assert!(exact.weight > 0.0 && different.weight < 0.0, "{field:?}");
        assert!(different.m < 0.15, "{field:?}");
    }
    let weight_of =
        |name: &str| parameters.fields.iter().find(|f| f.name == name).map(|f| f.levels[0].weight);
    // A birth date is more telling than a state.
    assert!(weight_of("date_of_birth") > weight_of("state").map(|w| w + 1.0), "{parameters:?}");
    // About one candidate pair in ten is a duplicate here; the match classes say so.
    assert!(parameters.prior > 0.02 && parameters.prior < 0.5, "{parameters:?}");
    assert!(parameters.classes.iter().any(|class| class.label == "same household" && !class.is_match));
}

#[test]
fn pairs_explain_themselves() {
    let schema = DedupSchema::new([
        ("given", FieldKind::GivenName),
        ("surname", FieldKind::Surname),
        ("dob", FieldKind::DateOfBirth),
    ]);
    let data = generate(&SyntheticConfig { people: 1500, seed: 3, ..SyntheticConfig::default() });
    let mut records: Vec<DedupRecord<u64>> = data
        .records
        .iter()
        .map(|r| DedupRecord { key: r.key + 10, values: r.values[..3].to_vec() })
        .collect();
    records.push(record(1, &["William", "Gates", "1955-10-28"]));
    records.push(record(2, &["Gates", "Bill", "28/10/1955"]));
    let outcome = deduplicate(&schema, &records, &DedupConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let pair = outcome.auto_merge.iter().chain(&outcome.suggestions).find(|pair| pair.a.min(pair.b) == 1);
    let pair = pair.unwrap_or_else(|| panic!("the pair was not found"));
    assert_eq!(pair.fields.iter().map(|field| field.level).collect::<Vec<_>>(), [Some(1), Some(0), Some(0)]);
    assert!(pair.probability > 0.5);
    let total: f64 = pair.fields.iter().map(|field| field.weight).sum();
    assert!((pair.weight - total - pair.prior_weight).abs() < 1e-9);
    // The nickname and the birth date are what tell this pair from strangers sharing a name.
    assert!(pair.fields[0].weight > 0.0 && pair.fields[2].weight > 0.0, "{pair:?}");
}
