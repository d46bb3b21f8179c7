//! Estimation of the Fellegi–Sunter parameters without labels.
//!
//! For every field and agreement level, `m` is the probability of that level among pairs of
//! records of the same person and `u` among pairs of different people. The `u` of random
//! pairs is measured directly (a random pair is almost never a match) and seeds the model;
//! expectation–maximisation then fits a mixture of classes (see [`Parameters`]) to the
//! candidate pairs, whose comparison vectors are collapsed into distinct patterns with counts
//! so that an iteration costs the number of patterns, not of pairs.

use super::compare::{MISSING, Table};
use super::random::SplitMix64;

/// Bits per field in a [`Pattern`]: at most 15 levels, 15 itself meaning missing.
const BITS_PER_FIELD: u32 = 4;

/// Most fields a pattern holds.
pub(crate) const MAX_FIELDS: usize = (u128::BITS / BITS_PER_FIELD) as usize;

/// Probabilities are kept inside `[FLOOR, 1 - FLOOR]`: a level never seen in one class must
/// not become infinite evidence, and EM must not collapse a class onto a single pattern.
const FLOOR: f64 = 1e-6;

/// Pseudo-count added to every level in the M step, so that rare levels are smoothed rather
/// than pinned to the floor by the first iterations.
const PSEUDO_COUNT: f64 = 0.5;

/// The levels of every field of a pair, `BITS_PER_FIELD` bits each.
pub(crate) type Pattern = u128;

pub(crate) fn pattern_of(levels: &[u8]) -> Pattern {
    levels.iter().enumerate().fold(0, |pattern, (field, &level)| {
        pattern | (Pattern::from(level & 0xF) << (field as u32 * BITS_PER_FIELD))
    })
}

fn level_in(pattern: Pattern, field: usize) -> u8 {
    ((pattern >> (field as u32 * BITS_PER_FIELD)) & 0xF) as u8
}

/// A latent class model. Class 0 is "same person"; the other classes are kinds of pairs of
/// different people. Two classes are Fellegi–Sunter's model; candidate pairs are not a random
/// sample of non-matches, though: blocking brings together strangers who share a place, a
/// name or a birth date, and people of one household share a surname and an address. Fitting
/// one non-match distribution to all of them breaks the independence the model assumes, and
/// EM then happily finds "same postcode" instead of "same person". One class per kind of
/// coincidence (after Winkler's three-class household model, and Larsen and Rubin) keeps
/// each class close to independent and the match class about identity.
///
/// The same reasoning applies to duplicates: when a person moves, every address field
/// disagrees at once, which one independent match class would count as five pieces of
/// evidence against a match. A second match class, "same person, new address", absorbs that.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parameters {
    /// How many of the first classes are matches (one or two).
    pub(crate) matches: usize,
    /// With two match classes, the fields a move changes (class 1 is "moved"): random there
    /// and fixed, equal to class 0 elsewhere, so that the class cannot drift into a kind of
    /// non-match.
    pub(crate) moved: Vec<bool>,
    /// Per class, what kind of pair it stands for ("same person", "same household", ...).
    pub(crate) labels: Vec<&'static str>,
    /// Per class, per field: whether an exact agreement in this class comes from sharing
    /// something (the same person, the same family) rather than from chance. Chance agreement
    /// is likelier on common values; that is what term-frequency adjustments correct.
    pub(crate) structural: Vec<Vec<bool>>,
    /// Per class, per field: whether the field keeps its initial distribution. A kind of
    /// non-match ("same birth date") is only estimated on the fields it is about and stays
    /// random elsewhere, so it cannot drift into explaining duplicates.
    pub(crate) fixed: Vec<Vec<bool>>,
    /// Share of the candidate pairs in each class.
    pub(crate) shares: Vec<f64>,
    /// Per class, per field, per level: the probability of that level in that class.
    pub(crate) classes: Vec<Vec<Vec<f64>>>,
}

impl Parameters {
    /// The logarithms of the shares and probabilities, computed once for many patterns.
    pub(crate) fn logarithms(&self) -> Logarithms {
        Logarithms {
            shares: self.shares.iter().map(|share| share.ln()).collect(),
            classes: self
                .classes
                .iter()
                .map(|class| class.iter().map(|row| row.iter().map(|p| p.ln()).collect()).collect())
                .collect(),
        }
    }

    /// The match probability `m` of each field and level: the match classes mixed by their
    /// shares.
    pub(crate) fn m(&self) -> Vec<Vec<f64>> {
        self.mixed(0..self.matches)
    }

    /// The non-match probability `u` of each field and level: the non-match classes mixed by
    /// their shares.
    pub(crate) fn u(&self) -> Vec<Vec<f64>> {
        self.mixed(self.matches..self.classes.len())
    }

    /// Share of the candidate pairs that are matches.
    pub(crate) fn match_share(&self) -> f64 {
        self.shares.iter().take(self.matches).sum()
    }

    fn mixed(&self, classes: std::ops::Range<usize>) -> Vec<Vec<f64>> {
        let total: f64 = self.shares.get(classes.clone()).map_or(0.0, |shares| shares.iter().sum());
        let mut mixed: Vec<Vec<f64>> = self
            .classes
            .first()
            .map_or(Vec::new(), |class| class.iter().map(|row| vec![0.0; row.len()]).collect());
        for class in classes {
            let (Some(share), Some(levels)) = (self.shares.get(class), self.classes.get(class)) else {
                continue;
            };
            for (mixed_row, class_row) in mixed.iter_mut().zip(levels) {
                for (mixed, probability) in mixed_row.iter_mut().zip(class_row) {
                    *mixed += share / total.max(f64::MIN_POSITIVE) * probability;
                }
            }
        }
        mixed
    }
}

/// [`Parameters`] in log space.
#[derive(Debug, Clone)]
pub(crate) struct Logarithms {
    shares: Vec<f64>,
    classes: Vec<Vec<Vec<f64>>>,
}

impl Logarithms {
    /// Per class, `log(share) + Σ log P(level)` of a pattern; missing fields count for nothing.
    pub(crate) fn class_log_likelihoods(&self, pattern: Pattern, out: &mut Vec<f64>) {
        out.clear();
        for (share, class) in self.shares.iter().zip(&self.classes) {
            let mut log_likelihood = *share;
            for (field, levels) in class.iter().enumerate() {
                let level = level_in(pattern, field);
                if level == MISSING {
                    continue;
                }
                if let Some(log_probability) = levels.get(usize::from(level)) {
                    log_likelihood += log_probability;
                }
            }
            out.push(log_likelihood);
        }
    }
}

/// How a pair scores under a fitted model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Posterior {
    /// Natural log-odds of the match classes against the non-match classes.
    pub(crate) log_odds: f64,
    /// The most likely match and non-match classes, which per-field explanations compare.
    pub(crate) closest_match: usize,
    pub(crate) closest_non_match: usize,
}

/// The posterior from per-class log-likelihoods (see [`Logarithms::class_log_likelihoods`]).
pub(crate) fn posterior(parameters: &Parameters, log_likelihoods: &[f64]) -> Posterior {
    let (match_log_likelihood, closest_match) = log_sum_exp(log_likelihoods, 0..parameters.matches);
    let (non_match_log_likelihood, closest_non_match) =
        log_sum_exp(log_likelihoods, parameters.matches..log_likelihoods.len());
    Posterior { log_odds: match_log_likelihood - non_match_log_likelihood, closest_match, closest_non_match }
}

/// `log Σ exp(values[range])`, and the index of the largest term.
fn log_sum_exp(values: &[f64], range: std::ops::Range<usize>) -> (f64, usize) {
    let start = range.start;
    let Some(slice) = values.get(range) else {
        return (f64::NEG_INFINITY, start);
    };
    let (largest, best) = slice.iter().enumerate().fold((start, f64::NEG_INFINITY), |best, (i, &value)| {
        if value > best.1 { (start + i, value) } else { best }
    });
    if best == f64::NEG_INFINITY {
        return (best, largest);
    }
    (best + slice.iter().map(|&value| (value - best).exp()).sum::<f64>().ln(), largest)
}

#[derive(Debug, Clone)]
pub(crate) struct Estimate {
    pub(crate) parameters: Parameters,
    pub(crate) iterations: usize,
    pub(crate) converged: bool,
}

/// Initial `m`: matches mostly agree exactly, the rest spread over the typo levels and a
/// little disagreement (data entry errors, people moving).
pub(crate) fn initial_m(level_counts: &[usize]) -> Vec<Vec<f64>> {
    level_counts
        .iter()
        .map(|&levels| match levels {
            0 | 1 => vec![1.0; levels],
            2 => vec![0.9, 0.1],
            _ => {
                let rest = 0.1 / (levels - 1) as f64;
                let mut m = vec![rest; levels];
                m[0] = 0.9;
                m
            }
        })
        .collect()
}

/// A kind of non-match: pairs of different people agreeing on `fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Coincidence {
    pub(crate) label: &'static str,
    pub(crate) fields: Vec<usize>,
    /// Whether they agree because they share something (a household), not by chance.
    pub(crate) structural: bool,
}

/// Initial model: the match class; with `moved` (the address fields), the match class of
/// people who moved, random on those fields; strangers agreeing by chance (`random_u`); and
/// one class per coincidence, agreeing on its fields and random elsewhere.
pub(crate) fn initial_parameters(
    level_counts: &[usize],
    random_u: &[Vec<f64>],
    moved: Option<&[usize]>,
    coincidences: &[Coincidence],
) -> Parameters {
    let fields = level_counts.len();
    let m = initial_m(level_counts);
    let mut classes = vec![m.clone()];
    let mut shares = vec![0.05];
    let mut labels = vec!["same person"];
    let mut structural = vec![vec![true; fields]];
    let mut fixed = vec![vec![false; fields]];
    let mut moved_fields = Vec::new();
    if let Some(address) = moved {
        moved_fields = (0..fields).map(|field| address.contains(&field)).collect();
        let mut class = m;
        for &field in address {
            if let (Some(row), Some(random)) = (class.get_mut(field), random_u.get(field)) {
                row.clone_from(random);
            }
        }
        classes.push(class);
        shares.push(0.005);
        labels.push("same person, moved");
        structural.push(moved_fields.iter().map(|moved| !moved).collect());
        fixed.push(moved_fields.clone());
    }
    let matches = classes.len();
    classes.push(random_u.to_vec());
    shares.push(0.45);
    // Every candidate pair came through a blocking rule, whose class below accounts for what
    // the strangers it brings share; this class is for the rest (windows over oversized
    // blocks) and stays random everywhere, so that no free class can fit a subset of matches.
    labels.push("strangers");
    structural.push(vec![false; fields]);
    fixed.push(vec![true; fields]);
    for coincidence in coincidences {
        labels.push(coincidence.label);
        structural.push(
            (0..fields).map(|field| coincidence.structural && coincidence.fields.contains(&field)).collect(),
        );
        fixed.push((0..fields).map(|field| !coincidence.fields.contains(&field)).collect());
        let mut class = random_u.to_vec();
        for &field in &coincidence.fields {
            if let Some(row) = class.get_mut(field) {
                let inexact: f64 = row.iter().skip(1).sum();
                for (level, probability) in row.iter_mut().enumerate() {
                    *probability = if level == 0 { 0.7 } else { 0.3 * *probability / inexact.max(FLOOR) };
                }
                clamp_distribution(row);
            }
        }
        classes.push(class);
    }
    let coincidence_share = 0.5 / coincidences.len().max(1) as f64;
    shares.extend(coincidences.iter().map(|_| coincidence_share));
    let total: f64 = shares.iter().sum();
    shares.iter_mut().for_each(|share| *share /= total);
    Parameters { matches, moved: moved_fields, labels, structural, fixed, shares, classes }
}

/// `u` of random pairs: the exact level from the value frequencies (exact, and decisive for
/// rare values that a sample would never draw twice), the other levels from `samples`
/// random pairs.
pub(crate) fn random_pair_u(
    table: &Table,
    level_counts: &[usize],
    samples: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let fields = level_counts.len();
    let mut counts: Vec<Vec<f64>> = level_counts.iter().map(|&levels| vec![0.0; levels]).collect();
    let mut rng = SplitMix64::new(seed);
    let mut levels = vec![0u8; fields];
    if table.len >= 2 {
        for _ in 0..samples {
            let a = rng.below(table.len);
            let b = rng.below(table.len - 1);
            // Uniform over b ≠ a.
            let b = if b >= a { b + 1 } else { b };
            table.compare(a, b, &mut levels);
            for (field, &level) in levels.iter().enumerate() {
                if let Some(count) = counts.get_mut(field).and_then(|row| row.get_mut(usize::from(level))) {
                    *count += 1.0;
                }
            }
        }
    }
    counts
        .iter()
        .zip(&table.columns)
        .map(|(row, column)| {
            let exact = column.random_exact_agreement().clamp(FLOOR, 1.0 - FLOOR);
            let inexact: f64 = row.iter().skip(1).map(|count| count + PSEUDO_COUNT).sum();
            let mut u: Vec<f64> =
                row.iter().map(|count| (count + PSEUDO_COUNT) / inexact * (1.0 - exact)).collect();
            if let Some(first) = u.first_mut() {
                *first = exact;
            }
            clamp_distribution(&mut u);
            u
        })
        .collect()
}

/// Fits the mixture to `patterns` (distinct comparison patterns and how many candidate pairs
/// show each), starting from `initial`. Stops when an iteration improves the log-likelihood
/// by less than `tolerance` (relative), or after `max_iterations`.
pub(crate) fn estimate(
    patterns: &[(Pattern, u64)],
    initial: Parameters,
    max_iterations: usize,
    tolerance: f64,
) -> Estimate {
    let mut parameters = initial;
    let mut iterations = 0;
    let mut converged = false;
    let mut previous_log_likelihood = f64::NEG_INFINITY;
    let mut log_likelihoods = Vec::with_capacity(parameters.shares.len());
    let mut responsibilities = Vec::with_capacity(parameters.shares.len());
    while iterations < max_iterations {
        iterations += 1;
        let mut counts: Vec<Vec<Vec<f64>>> = parameters
            .classes
            .iter()
            .map(|class| class.iter().map(|row| vec![PSEUDO_COUNT; row.len()]).collect())
            .collect();
        let logarithms = parameters.logarithms();
        let mut log_likelihood = 0.0;
        let mut class_totals = vec![0.0; parameters.shares.len()];
        let mut total = 0.0;
        for &(pattern, count) in patterns {
            let count = count as f64;
            logarithms.class_log_likelihoods(pattern, &mut log_likelihoods);
            let best = log_likelihoods.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            responsibilities.clear();
            responsibilities.extend(log_likelihoods.iter().map(|&value| (value - best).exp()));
            let sum: f64 = responsibilities.iter().sum();
            log_likelihood += count * (best + sum.ln());
            total += count;
            for ((responsibility, class_total), class_counts) in
                responsibilities.iter().zip(class_totals.iter_mut()).zip(counts.iter_mut())
            {
                let weight = count * responsibility / sum;
                *class_total += weight;
                for (field, row) in class_counts.iter_mut().enumerate() {
                    if let Some(slot) = row.get_mut(usize::from(level_in(pattern, field))) {
                        *slot += weight;
                    }
                }
            }
        }
        if total <= 0.0 {
            break;
        }
        tie_moved_class(&parameters, &mut counts);
        let mut classes: Vec<Vec<Vec<f64>>> =
            counts.into_iter().map(|class| class.into_iter().map(normalized).collect()).collect();
        for ((class, previous), fixed) in classes.iter_mut().zip(&parameters.classes).zip(&parameters.fixed) {
            for ((row, previous_row), &is_fixed) in class.iter_mut().zip(previous).zip(fixed) {
                if is_fixed {
                    row.clone_from(previous_row);
                }
            }
        }
        let next = Parameters {
            matches: parameters.matches,
            moved: parameters.moved.clone(),
            labels: parameters.labels.clone(),
            structural: parameters.structural.clone(),
            fixed: parameters.fixed.clone(),
            shares: class_totals.iter().map(|class_total| (class_total / total).clamp(FLOOR, 1.0)).collect(),
            classes,
        };
        parameters = next;
        // The likelihood of the parameters the E step just used: EM never decreases it, and
        // once it stops improving the rest is slow drift between near-empty classes.
        let improvement =
            (log_likelihood - previous_log_likelihood) / log_likelihood.abs().max(f64::MIN_POSITIVE);
        previous_log_likelihood = log_likelihood;
        if improvement.abs() < tolerance {
            converged = true;
            break;
        }
    }
    put_match_class_first(&mut parameters);
    Estimate { parameters, iterations, converged }
}

/// The fields a move does not change are estimated from both match classes together.
fn tie_moved_class(parameters: &Parameters, counts: &mut [Vec<Vec<f64>>]) {
    if parameters.matches != 2 {
        return;
    }
    let [first, second, ..] = counts else {
        return;
    };
    for ((first_row, second_row), &is_moved) in first.iter_mut().zip(second.iter_mut()).zip(&parameters.moved)
    {
        if is_moved {
            continue;
        }
        for (a, b) in first_row.iter_mut().zip(second_row.iter_mut()) {
            *a += *b;
            *b = *a;
        }
    }
}

fn normalized(mut row: Vec<f64>) -> Vec<f64> {
    let sum: f64 = row.iter().sum();
    if sum > 0.0 {
        row.iter_mut().for_each(|value| *value /= sum);
    }
    clamp_distribution(&mut row);
    row
}

fn clamp_distribution(row: &mut [f64]) {
    row.iter_mut().for_each(|value| *value = value.clamp(FLOOR, 1.0 - FLOOR));
    let sum: f64 = row.iter().sum();
    row.iter_mut().for_each(|value| *value /= sum);
}

/// Guards against label switching: the main match class is the one that agrees exactly most
/// often, field by field; if EM moved "same person" into a non-match class, the two trade
/// places.
fn put_match_class_first(parameters: &mut Parameters) {
    let agreement =
        |class: &Vec<Vec<f64>>| -> f64 { class.iter().map(|row| row.first().copied().unwrap_or(0.0)).sum() };
    let first = parameters.classes.first().map_or(f64::NEG_INFINITY, agreement);
    let best = parameters.classes.iter().enumerate().skip(parameters.matches).fold(
        (0, first),
        |best, (class, levels)| {
            let value = agreement(levels);
            if value > best.1 { (class, value) } else { best }
        },
    );
    parameters.classes.swap(0, best.0);
    parameters.shares.swap(0, best.0);
    parameters.labels.swap(0, best.0);
    parameters.structural.swap(0, best.0);
    parameters.fixed.swap(0, best.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_round_trip() {
        let levels = [0u8, 3, MISSING, 1, 2];
        let pattern = pattern_of(&levels);
        for (field, &level) in levels.iter().enumerate() {
            assert_eq!(level_in(pattern, field), level);
        }
    }

    #[test]
    fn em_recovers_a_known_mixture() {
        // Two binary fields and one three-level field; 10% matches.
        let m = vec![vec![0.95, 0.05], vec![0.9, 0.1], vec![0.8, 0.15, 0.05]];
        let u = vec![vec![0.05, 0.95], vec![0.2, 0.8], vec![0.01, 0.09, 0.9]];
        let mut patterns = Vec::new();
        for a in 0..2u8 {
            for b in 0..2u8 {
                for c in 0..3u8 {
                    let levels = [a, b, c];
                    let probability = |params: &[Vec<f64>]| -> f64 {
                        levels
                            .iter()
                            .enumerate()
                            .map(|(field, &level)| params[field][usize::from(level)])
                            .product()
                    };
                    let expected = 1_000_000.0 * (0.1 * probability(&m) + 0.9 * probability(&u));
                    patterns.push((pattern_of(&levels), expected.round() as u64));
                }
            }
        }
        let random_u = vec![vec![0.1, 0.9], vec![0.1, 0.9], vec![0.1, 0.1, 0.8]];
        // One free non-match class; the fixed "strangers" class should end up empty.
        let all = Coincidence { label: "all", fields: vec![0, 1, 2], structural: false };
        let initial = initial_parameters(&[2, 2, 3], &random_u, None, &[all]);
        let estimate = estimate(&patterns, initial, 1000, 1e-9);
        assert!(estimate.converged);
        let found = estimate.parameters;
        assert!((found.shares[0] - 0.1).abs() < 0.01, "{found:?}");
        for (found, truth) in found.m().iter().flatten().zip(m.iter().flatten()) {
            assert!((found - truth).abs() < 0.02, "m {found} vs {truth}");
        }
        for (found, truth) in found.u().iter().flatten().zip(u.iter().flatten()) {
            assert!((found - truth).abs() < 0.02, "u {found} vs {truth}");
        }
    }
}
