//! Probabilistic deduplication of person records, in memory.
//!
//! Fellegi–Sunter, with the parameters estimated from the records themselves. Each field of a
//! pair of records is compared into an agreement level (exact, a typo away, different, or
//! missing, which counts for nothing); how likely each level is among pairs of one person and
//! among pairs of different people is learnt by expectation–maximisation over the candidate
//! pairs (see `em`), seeded by how often random pairs agree by chance. The classic model has
//! one class of non-matches and needs the fields independent within it; person data is not
//! like that (strangers that blocking brought together share a name, or a town and a house
//! number; households share a surname and a whole address; a move changes every address field
//! at once), so the model has one class per kind of such pairs and two match classes (the
//! same person, and the same person after a move). A pair's match probability is the
//! posterior of the match classes. Exact agreement on a rare value counts for more than on a
//! common one (term frequencies: two "Zbigniew"s say more than two "John"s).
//!
//! Only pairs sharing a blocking key are compared (see `blocking`), which keeps 100,000
//! records to a few seconds. Pairs whose match probability reaches
//! [`DedupConfig::auto_merge_probability`] are merged, and their connected components become
//! [`DedupOutcome::clusters`]; pairs between [`DedupConfig::review_probability`] and that are
//! suggestions for staff to accept or reject. Every scored pair explains itself field by field
//! ([`ScoredPair::fields`]). [`synthetic`] generates records with duplicates and ground truth.
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
    /// EM stops once an iteration improves the log-likelihood by less than this (relative).
    pub em_tolerance: f64,
    /// Blocks with more records than this are compared along a window instead of in full.
    pub max_block_size: usize,
    /// Random pairs drawn to measure how often different people agree by chance.
    pub random_pairs: usize,
    /// Weigh exact agreement by the rarity of the value.
    pub term_frequency_adjustments: bool,
    /// Seed of the random-pair sample; the outcome is deterministic for a given seed.
    pub seed: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            auto_merge_probability: 0.99,
            review_probability: 0.5,
            max_em_iterations: 200,
            em_tolerance: 1e-8,
            max_block_size: 500,
            random_pairs: 200_000,
            term_frequency_adjustments: true,
            seed: 0x5EED_DEDB,
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

/// How one field of a pair compared, for explaining a score. Its weight compares the
/// probability of this agreement level among duplicates with its probability in the kind of
/// non-match the pair most resembles (strangers sharing a place, a name, a birth date...).
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
    /// Posterior log2-odds that `a` and `b` are the same person: `prior_weight` plus every
    /// field's weight.
    pub weight: f64,
    /// The same as a probability: `1 / (1 + 2^-weight)`.
    pub probability: f64,
    /// The part of `weight` no field accounts for: the prior odds, measured against the kind
    /// of non-match this pair most resembles. `weight` is this plus the fields' weights.
    pub prior_weight: f64,
    /// The kind of non-match this pair most resembles, which the field weights compare it
    /// with: "same household", "same name", "same birth date", "same town and house number",
    /// "same surname and street"... (see [`ModelParameters::classes`]).
    pub closest_non_match: &'static str,
    /// One per schema field, in schema order.
    pub fields: Vec<FieldMatch>,
}

/// `m`, `u` and the weight of one agreement level of a field. `u` mixes every kind of
/// non-match among the candidate pairs.
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
    /// Share of the candidate pairs estimated to be matches.
    pub prior: f64,
    /// The kinds of pairs the model told apart: "same person" (and "same person, moved" when
    /// the schema has an address), "strangers", one kind per blocking rule the schema allows
    /// ("same name", "same given name and town"...) and "same household".
    pub classes: Vec<PairClass>,
    /// Per field, `m` and `u` for each level, `u` mixing the kinds of non-matches: a summary;
    /// pairs are scored against the classes.
    pub fields: Vec<FieldParameters>,
    pub em_iterations: usize,
    pub em_converged: bool,
}

/// One kind of candidate pair in the fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct PairClass {
    pub label: &'static str,
    pub is_match: bool,
    /// Share of the candidate pairs of this kind.
    pub share: f64,
}

/// Time spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupTimings {
    /// Normalising and interning the values.
    pub preparation: Duration,
    pub blocking: Duration,
    /// Comparing the candidate pairs and a sample of random pairs.
    pub comparison: Duration,
    /// Estimating the parameters (EM).
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
    let compared = Instant::now();
    let moved = movable_fields(schema);
    let initial =
        em::initial_parameters(&level_counts, &random_u, moved.as_deref(), &coincidences(schema, &table));
    let estimate = em::estimate(&patterns, initial, config.max_em_iterations, config.em_tolerance);
    let estimated = Instant::now();

    let model = ScoringModel::new(&table, estimate.parameters.clone(), patterns, config);
    let mut auto_merge = Vec::new();
    let mut suggestions = Vec::new();
    let mut merged = cluster::UnionFind::new(records.len());
    let review_log_odds = log2_odds(config.review_probability);
    let auto_log_odds = log2_odds(config.auto_merge_probability);
    let mut scratch = Vec::new();
    for (&pair, pair_levels) in pairs.iter().zip(levels.chunks_exact(fields)) {
        let (a, b) = blocking::split_pair(pair);
        let weight = model.score(&table, (a, b), pair_levels, &mut scratch).weight;
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
            .filter_map(|(a, b, _)| {
                let mut pair_levels = vec![0u8; fields];
                table.compare(a, b, &mut pair_levels);
                let score = model.score(&table, (a, b), &pair_levels, &mut Vec::new());
                let (fields, unexplained) = model.explain(&table, (a, b), &pair_levels, &score);
                Some(ScoredPair {
                    a: records.get(a)?.key.clone(),
                    b: records.get(b)?.key.clone(),
                    weight: score.weight,
                    probability: probability_of(score.weight),
                    prior_weight: unexplained,
                    closest_non_match: model.non_match_label(&score),
                    fields,
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
        .map(|group| {
            group.into_iter().filter_map(|record| records.get(record).map(|r| r.key.clone())).collect()
        })
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
            comparison: compared - blocked,
            estimation: estimated - compared,
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

fn validate<K>(
    schema: &DedupSchema,
    records: &[DedupRecord<K>],
    config: &DedupConfig,
) -> Result<(), DedupError> {
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
    patterns
        .chunk_by(|a, b| a == b)
        .filter_map(|run| run.first().map(|&pattern| (pattern, run.len() as u64)))
        .collect()
}

fn log2_odds(probability: f64) -> f64 {
    (probability / (1.0 - probability)).log2()
}

fn probability_of(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

/// The kinds of non-matches among the candidate pairs, each a class of the model (see `em`):
/// strangers that a blocking rule brought together (sharing a name, a birth date, a town and
/// house number...), and families sharing a surname and an address.
fn coincidences(schema: &DedupSchema, table: &compare::Table) -> Vec<em::Coincidence> {
    use FieldKind as F;
    let mut coincidences: Vec<em::Coincidence> = blocking::coincidences(table)
        .into_iter()
        .map(|(label, fields)| em::Coincidence { label, fields, structural: false })
        .collect();
    let fields_of = |kinds: &[FieldKind]| -> Vec<usize> {
        schema
            .fields
            .iter()
            .enumerate()
            .filter(|(_, (_, kind))| kinds.contains(kind))
            .map(|(i, _)| i)
            .collect()
    };
    let address = fields_of(&[F::StreetNumber, F::Street, F::AddressLine, F::City, F::Postcode, F::State]);
    let family_name = fields_of(&[F::Surname, F::Name]);
    // A family shares its landline, sometimes its mailbox.
    let shared_contact = fields_of(&[F::Phone, F::Email]);
    if !family_name.is_empty() && !address.is_empty() {
        coincidences.push(em::Coincidence {
            label: "same household",
            fields: family_name.into_iter().chain(address).chain(shared_contact).collect(),
            structural: true,
        });
    }
    coincidences
}

/// The address fields, which all change together when a person moves; `None` when the schema
/// has no address or nothing else to recognise a person by.
fn movable_fields(schema: &DedupSchema) -> Option<Vec<usize>> {
    use FieldKind as F;
    let (address, identity): (Vec<_>, Vec<_>) =
        schema.fields.iter().enumerate().partition(|(_, (_, kind))| {
            matches!(kind, F::StreetNumber | F::Street | F::AddressLine | F::City | F::Postcode | F::State)
        });
    let recognisable = identity.iter().any(|(_, (_, kind))| !matches!(kind, F::Exact | F::Text));
    (recognisable && !address.is_empty()).then(|| address.into_iter().map(|(field, _)| field).collect())
}

/// The fitted model, ready to score pairs.
struct ScoringModel {
    parameters: em::Parameters,
    /// Every candidate pair's pattern, sorted, with its per-class log-likelihoods (`classes`
    /// values from `pattern_index * classes`).
    patterns: Vec<em::Pattern>,
    log_likelihoods: Vec<f64>,
    classes: usize,
    /// Per field, per value id: `ln(f / Σf²)` for a value held by a share `f` of the records,
    /// added to the classes where agreeing on it is chance (empty when the field is not
    /// adjusted).
    term_frequency: Vec<Vec<f64>>,
}

/// Bound on a term-frequency adjustment, so that one very rare (or mistyped) value cannot
/// outweigh every other field.
const MAX_TERM_FREQUENCY_BITS: f64 = 10.0;

/// A pair's score.
struct Score {
    /// Log2-odds of a match.
    weight: f64,
    posterior: em::Posterior,
}

impl ScoringModel {
    fn new(
        table: &compare::Table,
        parameters: em::Parameters,
        patterns: Vec<(em::Pattern, u64)>,
        config: &DedupConfig,
    ) -> Self {
        let classes = parameters.shares.len();
        let mut log_likelihoods = Vec::with_capacity(patterns.len() * classes);
        let mut scratch = Vec::with_capacity(classes);
        let logarithms = parameters.logarithms();
        for &(pattern, _) in &patterns {
            logarithms.class_log_likelihoods(pattern, &mut scratch);
            log_likelihoods.extend_from_slice(&scratch);
        }
        let bound = MAX_TERM_FREQUENCY_BITS * std::f64::consts::LN_2;
        let term_frequency = table
            .columns
            .iter()
            .map(|column| {
                if !config.term_frequency_adjustments || !column.kind.uses_term_frequencies() {
                    return Vec::new();
                }
                // Two strangers agree on a value held by a share `f` of the records with
                // probability f², against Σf² on average: chance agreement on a rare value
                // is rarer than the field's average by `f / Σf²`. Shared values (the same
                // person, the same family) are not chance and are not adjusted. The pair's
                // own second record is not counted: duplicates would otherwise make every
                // rare value look common (a birth date held by three records of one person).
                let average = column.random_exact_agreement();
                let present = f64::from(column.present.max(1));
                column
                    .counts
                    .iter()
                    .map(|&count| {
                        let others = f64::from(count.saturating_sub(1).max(1));
                        (others / present / average).ln().clamp(-bound, bound)
                    })
                    .collect()
            })
            .collect();
        Self {
            parameters,
            patterns: patterns.into_iter().map(|(pattern, _)| pattern).collect(),
            log_likelihoods,
            classes,
            term_frequency,
        }
    }

    /// `ln(f / Σf²)` when both records hold the same value of `field` (a swapped exact
    /// agreement is left alone: its value is not drawn from this field's distribution).
    fn term_frequency(&self, table: &compare::Table, (a, b): (usize, usize), field: usize, level: u8) -> f64 {
        if level != 0 {
            return 0.0;
        }
        let Some(column) = table.columns.get(field) else {
            return 0.0;
        };
        match (column.ids.get(a), column.ids.get(b)) {
            (Some(&id), Some(&other)) if id == other => {
                self.term_frequency.get(field).and_then(|row| row.get(id as usize)).copied().unwrap_or(0.0)
            }
            _ => 0.0,
        }
    }

    fn is_chance(&self, class: usize, field: usize) -> bool {
        !self.parameters.structural.get(class).and_then(|row| row.get(field)).copied().unwrap_or(false)
    }

    fn score(
        &self,
        table: &compare::Table,
        pair: (usize, usize),
        levels: &[u8],
        scratch: &mut Vec<f64>,
    ) -> Score {
        let pattern = em::pattern_of(levels);
        scratch.clear();
        match self.patterns.binary_search(&pattern) {
            Ok(index) => scratch.extend_from_slice(
                self.log_likelihoods.get(index * self.classes..(index + 1) * self.classes).unwrap_or(&[]),
            ),
            // Only reached for a pair that was not a candidate.
            Err(_) => self.parameters.logarithms().class_log_likelihoods(pattern, scratch),
        }
        for (field, &level) in levels.iter().enumerate() {
            let adjustment = self.term_frequency(table, pair, field, level);
            if adjustment == 0.0 {
                continue;
            }
            for (class, log_likelihood) in scratch.iter_mut().enumerate() {
                if self.is_chance(class, field) {
                    *log_likelihood += adjustment;
                }
            }
        }
        let posterior = em::posterior(&self.parameters, scratch);
        Score { weight: posterior.log_odds / std::f64::consts::LN_2, posterior }
    }

    /// Per field, `log2` of how much likelier its level is in the closest match class than in
    /// the closest non-match class, term frequency included; and what of `weight` the fields
    /// leave unexplained.
    fn explain(
        &self,
        table: &compare::Table,
        pair: (usize, usize),
        levels: &[u8],
        score: &Score,
    ) -> (Vec<FieldMatch>, f64) {
        let (match_class, non_match_class) =
            (score.posterior.closest_match, score.posterior.closest_non_match);
        let probability = |class: usize, field: usize, level: u8| {
            self.parameters.classes.get(class)?.get(field)?.get(usize::from(level)).copied()
        };
        let fields: Vec<FieldMatch> = levels
            .iter()
            .zip(&table.columns)
            .enumerate()
            .map(|(field, (&level, column))| {
                if level == compare::MISSING {
                    return FieldMatch { level: None, label: "missing", weight: 0.0 };
                }
                let base = match (
                    probability(match_class, field, level),
                    probability(non_match_class, field, level),
                ) {
                    (Some(m), Some(u)) => (m / u).log2(),
                    _ => 0.0,
                };
                let chance = |class| if self.is_chance(class, field) { 1.0 } else { 0.0 };
                let adjustment = (chance(match_class) - chance(non_match_class))
                    * self.term_frequency(table, pair, field, level)
                    / std::f64::consts::LN_2;
                FieldMatch {
                    level: Some(level),
                    label: column.kind.level_labels().get(usize::from(level)).copied().unwrap_or("unknown"),
                    weight: base + adjustment,
                }
            })
            .collect();
        let explained: f64 = fields.iter().map(|field| field.weight).sum();
        (fields, score.weight - explained)
    }

    fn non_match_label(&self, score: &Score) -> &'static str {
        self.parameters.labels.get(score.posterior.closest_non_match).copied().unwrap_or("strangers")
    }

    fn describe(&self, schema: &DedupSchema, estimate: &em::Estimate) -> ModelParameters {
        let m = self.parameters.m();
        let u = self.parameters.u();
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
                        let get =
                            |table: &[Vec<f64>]| table.get(field).and_then(|row| row.get(level)).copied();
                        let (m, u) = (get(&m).unwrap_or(0.0), get(&u).unwrap_or(0.0));
                        let weight = if m > 0.0 && u > 0.0 { (m / u).log2() } else { 0.0 };
                        LevelParameters { label, m, u, weight }
                    })
                    .collect(),
            })
            .collect();
        let classes = self
            .parameters
            .labels
            .iter()
            .zip(&self.parameters.shares)
            .enumerate()
            .map(|(class, (label, share))| PairClass {
                label,
                is_match: class < self.parameters.matches,
                share: *share,
            })
            .collect();
        ModelParameters {
            prior: self.parameters.match_share(),
            classes,
            fields,
            em_iterations: estimate.iterations,
            em_converged: estimate.converged,
        }
    }
}
