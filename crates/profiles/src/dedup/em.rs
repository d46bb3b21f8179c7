//! Estimation of the Fellegi–Sunter parameters without labels.
//!
//! For every field and agreement level, `m` is the probability of that level among pairs of
//! records of the same person and `u` among pairs of different people; `prior` is the share
//! of matches among the candidate pairs. The `u` of random pairs is measured directly (a
//! random pair is almost never a match); then expectation–maximisation fits the two-class
//! mixture to the candidate pairs, where the comparison vectors are collapsed into distinct
//! patterns with counts so that an iteration costs the number of patterns, not of pairs.

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

/// The model: per field and level, `m` and `u`, and the share of matches among candidates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parameters {
    pub(crate) prior: f64,
    pub(crate) m: Vec<Vec<f64>>,
    pub(crate) u: Vec<Vec<f64>>,
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

/// `u` of random pairs: the exact level from the value frequencies (exact, and decisive for
/// rare values that a sample would never draw twice), the other levels from `samples`
/// random pairs.
pub(crate) fn random_pair_u(table: &Table, level_counts: &[usize], samples: usize, seed: u64) -> Vec<Vec<f64>> {
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
            let mut u: Vec<f64> = row.iter().map(|count| (count + PSEUDO_COUNT) / inexact * (1.0 - exact)).collect();
            if let Some(first) = u.first_mut() {
                *first = exact;
            }
            clamp_distribution(&mut u);
            u
        })
        .collect()
}

/// Fits the mixture to `patterns` (distinct comparison patterns and how many candidate pairs
/// show each), starting from `initial`. Stops when no parameter moves more than `tolerance`
/// or after `max_iterations`.
pub(crate) fn estimate(
    patterns: &[(Pattern, u64)],
    initial: Parameters,
    max_iterations: usize,
    tolerance: f64,
) -> Estimate {
    let mut parameters = initial;
    let fields = parameters.m.len();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        iterations += 1;
        let mut match_counts: Vec<Vec<f64>> = parameters.m.iter().map(|row| vec![PSEUDO_COUNT; row.len()]).collect();
        let mut non_match_counts = match_counts.clone();
        let mut expected_matches = 0.0;
        let mut total = 0.0;
        for &(pattern, count) in patterns {
            let count = count as f64;
            let posterior = match_probability(&parameters, pattern);
            expected_matches += count * posterior;
            total += count;
            for field in 0..fields {
                let level = usize::from(level_in(pattern, field));
                if let (Some(m), Some(u)) = (
                    match_counts.get_mut(field).and_then(|row| row.get_mut(level)),
                    non_match_counts.get_mut(field).and_then(|row| row.get_mut(level)),
                ) {
                    *m += count * posterior;
                    *u += count * (1.0 - posterior);
                }
            }
        }
        if total <= 0.0 {
            break;
        }
        let next = Parameters {
            prior: (expected_matches / total).clamp(FLOOR, 1.0 - FLOOR),
            m: match_counts.into_iter().map(normalized).collect(),
            u: non_match_counts.into_iter().map(normalized).collect(),
        };
        let change = largest_change(&parameters, &next);
        parameters = next;
        if change < tolerance {
            converged = true;
            break;
        }
    }
    keep_classes_apart(&mut parameters);
    Estimate { parameters, iterations, converged }
}

/// Posterior probability that a pair with `pattern` is a match; missing fields contribute
/// nothing. Computed in log space: with many fields the likelihoods underflow.
pub(crate) fn match_probability(parameters: &Parameters, pattern: Pattern) -> f64 {
    let mut log_odds = (parameters.prior / (1.0 - parameters.prior)).ln();
    for (field, (m, u)) in parameters.m.iter().zip(&parameters.u).enumerate() {
        let level = level_in(pattern, field);
        if level == MISSING {
            continue;
        }
        if let (Some(m), Some(u)) = (m.get(usize::from(level)), u.get(usize::from(level))) {
            log_odds += (m / u).ln();
        }
    }
    1.0 / (1.0 + (-log_odds).exp())
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

fn largest_change(before: &Parameters, after: &Parameters) -> f64 {
    let rows = |parameters: &Parameters| -> Vec<f64> {
        parameters.m.iter().chain(&parameters.u).flatten().copied().collect()
    };
    rows(before)
        .iter()
        .zip(rows(after).iter())
        .map(|(a, b)| (a - b).abs())
        .fold((before.prior - after.prior).abs(), f64::max)
}

/// Guards against the label switch EM can fall into (the "match" class fitting the
/// non-matches): exact agreement must be more likely among matches than among non-matches.
/// Where the data say otherwise for a field, that field is made neutral rather than evidence
/// against a match.
fn keep_classes_apart(parameters: &mut Parameters) {
    for (m, u) in parameters.m.iter_mut().zip(parameters.u.iter_mut()) {
        if let (Some(m_exact), Some(u_exact)) = (m.first(), u.first())
            && m_exact < u_exact
        {
            m.clone_from(u);
        }
    }
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
        let truth = Parameters {
            prior: 0.1,
            m: vec![vec![0.95, 0.05], vec![0.9, 0.1], vec![0.8, 0.15, 0.05]],
            u: vec![vec![0.05, 0.95], vec![0.2, 0.8], vec![0.01, 0.09, 0.9]],
        };
        let mut patterns = Vec::new();
        for a in 0..2u8 {
            for b in 0..2u8 {
                for c in 0..3u8 {
                    let levels = [a, b, c];
                    let probability = |params: &[Vec<f64>]| -> f64 {
                        levels.iter().enumerate().map(|(field, &level)| params[field][usize::from(level)]).product()
                    };
                    let expected = 1_000_000.0 * (truth.prior * probability(&truth.m) + 0.9 * probability(&truth.u));
                    patterns.push((pattern_of(&levels), expected.round() as u64));
                }
            }
        }
        let initial = Parameters {
            prior: 0.01,
            m: initial_m(&[2, 2, 3]),
            u: vec![vec![0.1, 0.9], vec![0.1, 0.9], vec![0.1, 0.1, 0.8]],
        };
        let estimate = estimate(&patterns, initial, 1000, 1e-9);
        assert!(estimate.converged);
        let found = estimate.parameters;
        assert!((found.prior - truth.prior).abs() < 0.01, "{found:?}");
        for (found, truth) in found.m.iter().flatten().zip(truth.m.iter().flatten()) {
            assert!((found - truth).abs() < 0.02, "m {found} vs {truth}");
        }
        for (found, truth) in found.u.iter().flatten().zip(truth.u.iter().flatten()) {
            assert!((found - truth).abs() < 0.02, "u {found} vs {truth}");
        }
    }
}
