//! Probabilistic deduplication of person records, in memory.
//!
//! The model is Fellegi–Sunter: each field of a pair of records is compared into an agreement
//! level (exact, a typo away, different, missing), each level carries a weight
//! `log2(m / u)` — how much more often it occurs among pairs of the same person (`m`) than
//! among pairs of different people (`u`) — and a pair's weight is the sum over its fields plus
//! the prior log-odds. The parameters are not configured but estimated from the records
//! themselves: `u` from random pairs, `m` and the prior by expectation–maximisation over the
//! candidate pairs (see `em`). Exact agreement on a rare value counts for more than on a common
//! one (term-frequency adjustment: two "Zbigniew"s say more than two "John"s).
//!
//! Only pairs sharing a blocking key are compared (see `blocking`), which keeps 100,000
//! records to a few seconds. Pairs whose match probability reaches
//! [`DedupConfig::auto_merge_probability`] are merged (and their connected components become
//! [`DedupOutcome::clusters`]); pairs between [`DedupConfig::review_probability`] and that are
//! suggestions for staff to accept or reject. Every scored pair explains itself field by field
//! ([`FieldMatch`]).
//!
//! Pure computation: no database, no I/O, deterministic for a given input and seed.

mod blocking;
mod cluster;
mod compare;
mod em;
mod normalize;
mod random;
pub mod synthetic;
#[cfg(test)]
mod tests;

use kernel::ErrorCode;
use std::time::{Duration, Instant};

/// What a field holds; decides how its values are normalised, compared and blocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// First name; nicknames (Bill/William) and initials (J/John) are partial agreement.
    GivenName,
    /// Family name; may be swapped with the given name.
    Surname,
    /// A full name in one field, compared regardless of word order.
    Name,
    /// Compared as year, month and day: typos and day/month swaps are partial agreement.
    DateOfBirth,
    /// House number.
    StreetNumber,
    /// Street name and type ("Kevin St" = "kevin street"); may include the number when the
    /// schema has no [`FieldKind::StreetNumber`].
    Street,
    /// Any other address line (building, locality); may be swapped with the street.
    AddressLine,
    /// City, town or suburb.
    City,
    Postcode,
    /// State, region or province code: only exact agreement counts.
    State,
    Email,
    /// Compared on the last nine digits, so the country code and trunk prefix do not matter.
    Phone,
    /// An identifier typed by hand (social security, customer number): one typo is partial
    /// agreement.
    Identifier,
    /// Any other code compared exactly (after case and accent folding).
    Exact,
    /// Any other free text, compared by Jaro–Winkler similarity.
    Text,
}

/// The fields of the records, in order: `(column name, kind)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSchema {
    pub fields: Vec<(String, FieldKind)>,
}

impl DedupSchema {
    pub fn new<N: Into<String>>(fields: impl IntoIterator<Item = (N, FieldKind)>) -> Self {
        Self { fields: fields.into_iter().map(|(name, kind)| (name.into(), kind)).collect() }
    }
}

/// One record: its key (a profile id, a row number) and its raw values, aligned with the
/// schema's fields; `None` or a blank value is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupRecord<K> {
    pub key: K,
    pub values: Vec<Option<String>>,
}

/// Thresholds and limits. The thresholds are posterior match probabilities of a pair, in
/// `(0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupConfig {
    /// Pairs at least this likely to be the same person are merged without review.
    pub auto_merge_probability: f64,
    /// Pairs at least this likely (and below the auto-merge threshold) are suggested to staff.
    pub review_probability: f64,
    /// Cap on the EM iterations (each costs one pass over the distinct comparison patterns).
    pub max_em_iterations: usize,
    /// EM stops once no parameter moves by more than this.
    pub em_tolerance: f64,
    /// Blocks with more records than this are compared along a window instead of in full.
    pub max_block_size: usize,
    /// Random pairs drawn to measure how often different people agree by chance.
    pub random_pairs: usize,
    /// Weigh exact agreement by the rarity of the value.
    pub term_frequency_adjustments: bool,
    /// Seed of the random-pair sample; the outcome is deterministic for a given seed.
    pub seed: u64,
    #[doc(hidden)]
    pub scoring: Scoring,
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    Candidates,
    Population,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            auto_merge_probability: 0.99,
            review_probability: 0.5,
            max_em_iterations: 200,
            em_tolerance: 1e-6,
            max_block_size: 500,
            random_pairs: 200_000,
            term_frequency_adjustments: true,
            seed: 0x5EED_DEDB,
            scoring: Scoring::Candidates,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DedupError {
    #[error("the schema has no fields")]
    EmptySchema,
    #[error("the schema has {fields} fields, at most {max} are supported")]
    TooManyFields { fields: usize, max: usize },
    #[error("the field {0:?} appears twice in the schema")]
    DuplicateField(String),
    #[error("record {record} has {found} values, the schema has {expected} fields")]
    ValueCountMismatch { record: usize, expected: usize, found: usize },
    #[error("at most {max} records can be deduplicated at once, got {found}")]
    TooManyRecords { found: usize, max: usize },
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

impl DedupError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadUserInput
    }
}

/// How one field of a pair compared, for explaining a score.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMatch {
    /// Agreement level (index into [`FieldKind::level_labels`]); `None` when a value is missing.
    pub level: Option<u8>,
    pub label: &'static str,
    /// Contribution to the pair's weight, in bits, term-frequency adjustment included.
    pub weight: f64,
}

/// A compared pair of records.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair<K> {
    pub a: K,
    pub b: K,
    /// Posterior log2-odds that `a` and `b` are the same person: the prior plus every field's
    /// weight.
    pub weight: f64,
    /// The same as a probability: `1 / (1 + 2^-weight)`.
    pub probability: f64,
    /// One per schema field, in schema order.
    pub fields: Vec<FieldMatch>,
}

/// `m`, `u` and the weight of one agreement level of a field.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelParameters {
    pub label: &'static str,
    /// Probability of this level among pairs of the same person.
    pub m: f64,
    /// Probability of this level among pairs of different people.
    pub u: f64,
    /// `log2(m / u)`, before term-frequency adjustment.
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldParameters {
    pub name: String,
    pub kind: FieldKind,
    pub levels: Vec<LevelParameters>,
}

/// The estimated model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParameters {
    /// Prior probability that a scored pair is a match.
    pub prior: f64,
    pub fields: Vec<FieldParameters>,
    pub em_iterations: usize,
    pub em_converged: bool,
}

/// Time spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupTimings {
    /// Normalising and interning the values.
    pub preparation: Duration,
    pub blocking: Duration,
    /// Comparing the candidate pairs and estimating the parameters.
    pub estimation: Duration,
    /// Scoring, thresholding and clustering.
    pub scoring: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DedupOutcome<K> {
    pub parameters: ModelParameters,
    /// Pairs compared after blocking.
    pub candidate_pairs: usize,
    /// Pairs merged without review, most likely first.
    pub auto_merge: Vec<ScoredPair<K>>,
    /// Pairs for staff to accept or reject, most likely first. Pairs already joined by a
    /// chain of auto-merges are left out.
    pub suggestions: Vec<ScoredPair<K>>,
    /// Groups of records joined by auto-merges (transitively), each in input order.
    pub clusters: Vec<Vec<K>>,
    pub timings: DedupTimings,
}

/// Finds the records of `records` that describe the same person.
///
/// Errors on an empty or oversized schema, a duplicate field name, a record whose value count
/// differs from the schema, or thresholds outside `(0, 1]` or inverted.
pub fn deduplicate<K: Clone>(
    schema: &DedupSchema,
    records: &[DedupRecord<K>],
    config: &DedupConfig,
) -> Result<DedupOutcome<K>, DedupError> {
    validate(schema, records, config)?;
    let started = Instant::now();
    let table = compare::Table::build(schema, records);
    let prepared = Instant::now();
    let pairs = blocking::candidate_pairs(&table, config.max_block_size);
    let blocked = Instant::now();

    let fields = schema.fields.len();
    let level_counts: Vec<usize> = schema.fields.iter().map(|(_, kind)| kind.level_count()).collect();
    let mut levels = vec![0u8; pairs.len() * fields];
    for (&pair, slot) in pairs.iter().zip(levels.chunks_exact_mut(fields)) {
        let (a, b) = blocking::split_pair(pair);
        table.compare(a, b, slot);
    }
    let patterns = count_patterns(&levels, fields);
    let random_u = em::random_pair_u(&table, &level_counts, config.random_pairs, config.seed);
    let initial = em::Parameters { prior: 0.1, m: em::initial_m(&level_counts), u: random_u.clone() };
    let estimate = em::estimate(&patterns, initial, config.max_em_iterations, config.em_tolerance);
    let estimated = Instant::now();

    let model = ScoringModel::new(&table, &estimate.parameters, &random_u, pairs.len(), config);
    let mut auto_merge = Vec::new();
    let mut suggestions = Vec::new();
    let mut merged = cluster::UnionFind::new(records.len());
    let review_log_odds = log2_odds(config.review_probability);
    let auto_log_odds = log2_odds(config.auto_merge_probability);
    for (&pair, pair_levels) in pairs.iter().zip(levels.chunks_exact(fields)) {
        let (a, b) = blocking::split_pair(pair);
        let weight = model.weight(&table, a, pair_levels);
        if weight < review_log_odds {
            continue;
        }
        let scored = (a, b, weight);
        if weight >= auto_log_odds {
            merged.union(a, b);
            auto_merge.push(scored);
        } else {
            suggestions.push(scored);
        }
    }
    suggestions.retain(|&(a, b, _)| merged.find(a) != merged.find(b));
    let explain = |list: Vec<(usize, usize, f64)>| -> Vec<ScoredPair<K>> {
        let mut explained: Vec<ScoredPair<K>> = list
            .into_iter()
            .filter_map(|(a, b, weight)| {
                let mut pair_levels = vec![0u8; fields];
                table.compare(a, b, &mut pair_levels);
                Some(ScoredPair {
                    a: records.get(a)?.key.clone(),
                    b: records.get(b)?.key.clone(),
                    weight,
                    probability: probability_of(weight),
                    fields: model.explain(&table, a, &pair_levels),
                })
            })
            .collect();
        explained.sort_by(|left, right| right.weight.total_cmp(&left.weight));
        explained
    };
    let auto_merge = explain(auto_merge);
    let suggestions = explain(suggestions);
    let clusters = merged
        .groups()
        .into_iter()
        .map(|group| group.into_iter().filter_map(|record| records.get(record).map(|r| r.key.clone())).collect())
        .collect();
    let scored = Instant::now();

    Ok(DedupOutcome {
        parameters: model.describe(schema, &estimate),
        candidate_pairs: pairs.len(),
        auto_merge,
        suggestions,
        clusters,
        timings: DedupTimings {
            preparation: prepared - started,
            blocking: blocked - prepared,
            estimation: estimated - blocked,
            scoring: scored - estimated,
        },
    })
}

/// The candidate pairs blocking yields for `records`, as pairs of keys: the pairs
/// [`deduplicate`] scores. For measuring how many true duplicates blocking keeps.
pub fn blocking_pairs<K: Clone>(
    schema: &DedupSchema,
    records: &[DedupRecord<K>],
    config: &DedupConfig,
) -> Result<Vec<(K, K)>, DedupError> {
    validate(schema, records, config)?;
    let table = compare::Table::build(schema, records);
    Ok(blocking::candidate_pairs(&table, config.max_block_size)
        .into_iter()
        .map(blocking::split_pair)
        .filter_map(|(a, b)| Some((records.get(a)?.key.clone(), records.get(b)?.key.clone())))
        .collect())
}

fn validate<K>(schema: &DedupSchema, records: &[DedupRecord<K>], config: &DedupConfig) -> Result<(), DedupError> {
    let fields = schema.fields.len();
    if fields == 0 {
        return Err(DedupError::EmptySchema);
    }
    if fields > em::MAX_FIELDS {
        return Err(DedupError::TooManyFields { fields, max: em::MAX_FIELDS });
    }
    for (position, (name, _)) in schema.fields.iter().enumerate() {
        if schema.fields[..position].iter().any(|(earlier, _)| earlier == name) {
            return Err(DedupError::DuplicateField(name.clone()));
        }
    }
    // Record indices travel as u32 inside the candidate pairs.
    let max_records = u32::MAX as usize;
    if records.len() > max_records {
        return Err(DedupError::TooManyRecords { found: records.len(), max: max_records });
    }
    if let Some((record, found)) =
        records.iter().enumerate().map(|(i, r)| (i, r.values.len())).find(|&(_, found)| found != fields)
    {
        return Err(DedupError::ValueCountMismatch { record, expected: fields, found });
    }
    let is_probability = |value: f64| value > 0.0 && value <= 1.0;
    if !is_probability(config.auto_merge_probability) || !is_probability(config.review_probability) {
        return Err(DedupError::InvalidConfig("thresholds must be probabilities in (0, 1]"));
    }
    if config.review_probability > config.auto_merge_probability {
        return Err(DedupError::InvalidConfig("the review threshold is above the auto-merge threshold"));
    }
    if !(config.em_tolerance > 0.0 && config.em_tolerance.is_finite()) {
        return Err(DedupError::InvalidConfig("the EM tolerance must be positive"));
    }
    if config.max_block_size < 2 {
        return Err(DedupError::InvalidConfig("the block size cap must be at least 2"));
    }
    Ok(())
}

fn count_patterns(levels: &[u8], fields: usize) -> Vec<(em::Pattern, u64)> {
    let mut patterns: Vec<em::Pattern> = levels.chunks_exact(fields).map(em::pattern_of).collect();
    patterns.sort_unstable();
    patterns.chunk_by(|a, b| a == b).filter_map(|run| run.first().map(|&pattern| (pattern, run.len() as u64))).collect()
}

fn log2_odds(probability: f64) -> f64 {
    (probability / (1.0 - probability)).log2()
}

fn probability_of(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

/// Weights ready for scoring: per field and level, and per value for exact agreement.
struct ScoringModel {
    prior: f64,
    m: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
    level_weights: Vec<Vec<f64>>,
    /// Per field, per value id: bits added to an exact agreement on that value (empty when
    /// the field is not adjusted).
    term_frequency: Vec<Vec<f64>>,
}

/// Bound on a term-frequency adjustment, so that one very rare (or mistyped) value cannot
/// outweigh every other field.
const MAX_TERM_FREQUENCY_BITS: f64 = 10.0;

impl ScoringModel {
    fn new(
        table: &compare::Table,
        estimated: &em::Parameters,
        random_u: &[Vec<f64>],
        candidate_pairs: usize,
        config: &DedupConfig,
    ) -> Self {
        let (prior, u) = match config.scoring {
            Scoring::Candidates => (estimated.prior, estimated.u.clone()),
            Scoring::Population => {
                let records = table.len as f64;
                let all_pairs = (records * (records - 1.0) / 2.0).max(1.0);
                let matches = estimated.prior * candidate_pairs as f64;
                ((matches / all_pairs).clamp(1e-12, 0.5), random_u.to_vec())
            }
        };
        let level_weights = estimated
            .m
            .iter()
            .zip(&u)
            .map(|(m, u)| m.iter().zip(u).map(|(m, u)| (m / u).log2()).collect())
            .collect();
        let term_frequency = table
            .columns
            .iter()
            .map(|column| {
                if !config.term_frequency_adjustments || !column.kind.uses_term_frequencies() {
                    return Vec::new();
                }
                let average = column.random_exact_agreement();
                let present = f64::from(column.present.max(1));
                column
                    .counts
                    .iter()
                    .map(|&count| {
                        (average / (f64::from(count) / present))
                            .log2()
                            .clamp(-MAX_TERM_FREQUENCY_BITS, MAX_TERM_FREQUENCY_BITS)
                    })
                    .collect()
            })
            .collect();
        Self { prior, m: estimated.m.clone(), u, level_weights, term_frequency }
    }

    fn field_weight(&self, table: &compare::Table, record: usize, field: usize, level: u8) -> f64 {
        if level == compare::MISSING {
            return 0.0;
        }
        let base = self.level_weights.get(field).and_then(|row| row.get(usize::from(level))).copied().unwrap_or(0.0);
        if level != 0 {
            return base;
        }
        let adjustment = table
            .columns
            .get(field)
            .and_then(|column| column.ids.get(record))
            .and_then(|&id| self.term_frequency.get(field)?.get(id as usize))
            .copied()
            .unwrap_or(0.0);
        base + adjustment
    }

    fn weight(&self, table: &compare::Table, a: usize, levels: &[u8]) -> f64 {
        let evidence: f64 =
            levels.iter().enumerate().map(|(field, &level)| self.field_weight(table, a, field, level)).sum();
        log2_odds(self.prior) + evidence
    }

    fn explain(&self, table: &compare::Table, a: usize, levels: &[u8]) -> Vec<FieldMatch> {
        levels
            .iter()
            .zip(&table.columns)
            .enumerate()
            .map(|(field, (&level, column))| FieldMatch {
                level: (level != compare::MISSING).then_some(level),
                label: if level == compare::MISSING {
                    "missing"
                } else {
                    column.kind.level_labels().get(usize::from(level)).copied().unwrap_or("unknown")
                },
                weight: self.field_weight(table, a, field, level),
            })
            .collect()
    }

    fn describe(&self, schema: &DedupSchema, estimate: &em::Estimate) -> ModelParameters {
        let fields = schema
            .fields
            .iter()
            .enumerate()
            .map(|(field, (name, kind))| FieldParameters {
                name: name.clone(),
                kind: *kind,
                levels: kind
                    .level_labels()
                    .iter()
                    .enumerate()
                    .map(|(level, label)| {
                        let get = |table: &[Vec<f64>]| table.get(field).and_then(|row| row.get(level)).copied();
                        LevelParameters {
                            label,
                            m: get(&self.m).unwrap_or(0.0),
                            u: get(&self.u).unwrap_or(0.0),
                            weight: get(&self.level_weights).unwrap_or(0.0),
                        }
                    })
                    .collect(),
            })
            .collect();
        ModelParameters {
            prior: self.prior,
            fields,
            em_iterations: estimate.iterations,
            em_converged: estimate.converged,
        }
    }
}
