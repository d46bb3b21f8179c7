//! Markov-chain attribution (Anderl et al., 2016) with removal effects solved exactly.
//!
//! The chain: consecutive repeats of a channel are collapsed (`a > a > b` is `a > b`), then a
//! path of order `k` visits the states made of its `k` consecutive channels
//! (`a > b > c` at order 2: `(a,b)`, `(b,c)`; a path shorter than `k` is one state of all its
//! channels), after `(start)` and before `(conversion)` and `(null)`. Every transition of a path
//! counts its conversions plus nulls; its last state goes to `(conversion)` with its conversions
//! and to `(null)` with its nulls, so non-converting journeys weigh on every probability.
//!
//! Repeats are collapsed on channels before the states are formed, as the issue asks; at order 1
//! this is the same chain as ChannelAttribution's, at orders 2 and 3 it differs from its choice
//! of collapsing only repeated *states* (`a > a > b` there gives `(a,a)`, `(a,b)`).
//!
//! The removal effect of a channel is the drop in the probability of converting from
//! `(start)` when every state containing the channel leads to `(null)` instead; both
//! probabilities are absorption probabilities computed exactly (see `solver`), one linear solve
//! per channel over the transition matrix alone (the paths are read once). The drop equals the
//! probability of converting after visiting the channel, which is what simulation-based tools
//! estimate. Conversions are shared in proportion to the removal effects.
//!
//! Value uses the same transition probabilities with a different reward: reaching
//! `(conversion)` from a state earns the mean value of the conversions observed leaving that
//! state. The value removal effect is the drop of the expected value earned from `(start)`, and
//! value is shared in proportion to it. This is exactly the expectation ChannelAttribution's
//! simulation estimates (it draws each simulated conversion's value from those observed after
//! the path's last state), without the sampling noise.

use serde::Serialize;

use super::hashing::FxHashMap;
use super::path::PathSet;
use super::rules::Credits;
use super::solver::{self, Chain, SolverSettings};
use crate::Result;
use crate::error::MeasurementError;

/// What a report can show besides the attributed conversions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarkovDetails {
    pub order: u8,
    /// State labels: `(start)`, then channel tuples joined by ` > `, then `(conversion)` and
    /// `(null)`; [`Transition`] indexes into this list.
    pub states: Vec<String>,
    /// Every observed transition with its probability, rows summing to 1.
    pub transitions: Vec<Transition>,
    /// Probability that a journey converts, from `(start)`.
    pub conversion_probability: f64,
    /// Expected conversion value of a journey, from `(start)`.
    pub value_per_journey: f64,
    /// One per channel of the path set, in its order.
    pub removal_effects: Vec<RemovalEffect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Transition {
    pub from: u32,
    pub to: u32,
    pub probability: f64,
}

/// Relative removal effects: the share of conversions (and of value) lost when the channel is
/// removed, `1 - p_without / p` (ChannelAttribution's `removal_effects` output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemovalEffect {
    pub channel: String,
    pub conversions: f64,
    pub value: f64,
}

pub(crate) struct MarkovOutcome {
    pub credits: Credits,
    pub details: MarkovDetails,
    pub note: Option<String>,
}

/// Bits per channel in a packed state key: three `channel + 1` fields, 0 meaning "absent".
const KEY_BITS: u32 = 21;

/// A path's states as a flat sequence of channel tuples.
struct StateSpace {
    order: usize,
    /// Channels of each transient state; `(start)` is state 0 with no channels.
    tuples: Vec<[u32; 3]>,
    lengths: Vec<u8>,
    index: FxHashMap<u64, u32>,
}

impl StateSpace {
    fn new(order: usize, channels: usize) -> Self {
        let mut space = Self { order, tuples: vec![[0; 3]], lengths: vec![0], index: FxHashMap::default() };
        if order == 1 {
            // State of channel c is c + 1: no lookups on the hot path.
            for channel in 0..channels as u32 {
                space.tuples.push([channel, 0, 0]);
                space.lengths.push(1);
            }
        }
        space
    }

    fn len(&self) -> usize {
        self.tuples.len()
    }

    fn state(&mut self, window: &[u32]) -> u32 {
        if self.order == 1 {
            return window[0] + 1;
        }
        let key = window.iter().enumerate().fold(0u64, |key, (position, &channel)| {
            key | (u64::from(channel) + 1) << (KEY_BITS * position as u32)
        });
        let next = self.tuples.len() as u32;
        let id = *self.index.entry(key).or_insert(next);
        if id == next {
            let mut tuple = [0; 3];
            tuple[..window.len()].copy_from_slice(window);
            self.tuples.push(tuple);
            self.lengths.push(window.len() as u8);
        }
        id
    }

    fn channels_of(&self, state: usize) -> &[u32] {
        &self.tuples[state][..self.lengths[state] as usize]
    }
}

/// Transition weights, dense when the state count is small (order 1) and hashed otherwise.
enum EdgeWeights {
    Dense { width: usize, weights: Vec<f64> },
    Sparse(FxHashMap<u64, f64>),
}

const DENSE_EDGE_LIMIT: usize = 1 << 21;

impl EdgeWeights {
    fn new(order: usize, channels: usize) -> Self {
        let width = channels + 1;
        if order == 1 && width * width <= DENSE_EDGE_LIMIT {
            Self::Dense { width, weights: vec![0.0; width * width] }
        } else {
            Self::Sparse(FxHashMap::default())
        }
    }

    #[inline]
    fn add(&mut self, from: u32, to: u32, weight: f64) {
        match self {
            Self::Dense { width, weights } => weights[from as usize * *width + to as usize] += weight,
            Self::Sparse(map) => *map.entry(u64::from(from) << 32 | u64::from(to)).or_insert(0.0) += weight,
        }
    }

    fn into_sorted(self) -> Vec<(u32, u32, f64)> {
        let mut edges: Vec<(u32, u32, f64)> = match self {
            Self::Dense { width, weights } => weights
                .iter()
                .enumerate()
                .filter(|(_, weight)| **weight > 0.0)
                .map(|(cell, &weight)| ((cell / width) as u32, (cell % width) as u32, weight))
                .collect(),
            Self::Sparse(map) => map
                .into_iter()
                .filter(|(_, weight)| *weight > 0.0)
                .map(|(key, weight)| ((key >> 32) as u32, key as u32, weight))
                .collect(),
        };
        edges.sort_unstable_by_key(|&(from, to, _)| (from, to));
        edges
    }
}

pub(crate) fn markov(paths: &PathSet, order: u8, settings: &SolverSettings) -> Result<MarkovOutcome> {
    if !(1..=3).contains(&order) {
        return Err(MeasurementError::invalid(format!("Markov order must be 1, 2 or 3, got {order}")));
    }
    let channel_count = paths.channels().len();
    let order_usize = usize::from(order);
    let mut space = StateSpace::new(order_usize, channel_count);
    let mut edges = EdgeWeights::new(order_usize, channel_count);
    // Per transient state: weight to (conversion), to (null), and value converted.
    let mut exits: Vec<[f64; 3]> = vec![[0.0; 3]; space.len()];
    let mut collapsed: Vec<u32> = Vec::new();
    for path in paths.iter() {
        let outcome = path.outcome;
        let weight = outcome.conversions + outcome.nulls;
        if weight <= 0.0 {
            continue;
        }
        collapsed.clear();
        for &channel in path.touches {
            if collapsed.last() != Some(&channel) {
                collapsed.push(channel);
            }
        }
        let window = order_usize.min(collapsed.len());
        let mut previous = 0u32;
        for start in 0..=collapsed.len() - window {
            let state = space.state(&collapsed[start..start + window]);
            edges.add(previous, state, weight);
            previous = state;
        }
        if exits.len() < space.len() {
            exits.resize(space.len(), [0.0; 3]);
        }
        let exit = &mut exits[previous as usize];
        exit[0] += outcome.conversions;
        exit[1] += outcome.nulls;
        exit[2] += outcome.value;
    }
    exits.resize(space.len(), [0.0; 3]);
    let edges = edges.into_sorted();
    let chain = build_chain(space.len(), &edges, &exits);

    let states = space.len();
    let conversion_state = states as u32;
    let null_state = states as u32 + 1;
    let mut details = MarkovDetails {
        order,
        states: state_labels(paths, &space),
        transitions: transitions(&chain, &exits, conversion_state, null_state),
        conversion_probability: 0.0,
        value_per_journey: 0.0,
        removal_effects: Vec::with_capacity(channel_count),
    };

    let totals = paths.totals();
    let mut credits = Credits::zero(channel_count);
    let mut removed = vec![false; states];
    let base = solver::absorption(&chain, 0, &removed, None, settings)?;
    details.conversion_probability = base[0][0];
    details.value_per_journey = base[1][0];

    let mut states_of_channel: Vec<Vec<u32>> = vec![Vec::new(); channel_count];
    for state in 1..states {
        let tuple = space.channels_of(state);
        for (position, &channel) in tuple.iter().enumerate() {
            if !tuple[..position].contains(&channel) {
                states_of_channel[channel as usize].push(state as u32);
            }
        }
    }
    let mut drops = vec![[0.0f64; 2]; channel_count];
    for (channel, channel_states) in states_of_channel.iter().enumerate() {
        if channel_states.is_empty() {
            continue;
        }
        for &state in channel_states {
            removed[state as usize] = true;
        }
        let without = solver::absorption(&chain, 0, &removed, Some(&base), settings)?;
        for &state in channel_states {
            removed[state as usize] = false;
        }
        for side in 0..2 {
            // Removal can only lower the absorption value; a negative drop is rounding.
            drops[channel][side] = (base[side][0] - without[side][0]).max(0.0);
        }
    }

    let drop_sums = drops.iter().fold([0.0; 2], |sums, drop| [sums[0] + drop[0], sums[1] + drop[1]]);
    for (channel, drop) in drops.iter().enumerate() {
        if drop_sums[0] > 0.0 {
            credits.conversions[channel] = totals.conversions * drop[0] / drop_sums[0];
        }
        if drop_sums[1] > 0.0 {
            credits.value[channel] = totals.value * drop[1] / drop_sums[1];
        }
        details.removal_effects.push(RemovalEffect {
            channel: paths.channels()[channel].clone(),
            conversions: if base[0][0] > 0.0 { drop[0] / base[0][0] } else { 0.0 },
            value: if base[1][0] > 0.0 { drop[1] / base[1][0] } else { 0.0 },
        });
    }
    let note = if totals.conversions == 0.0 {
        Some("no conversions: every removal effect is 0, nothing is attributed".to_owned())
    } else if drop_sums[0] == 0.0 {
        Some("every removal effect is 0: nothing is attributed".to_owned())
    } else {
        None
    };
    Ok(MarkovOutcome { credits, details, note })
}

fn build_chain(states: usize, edges: &[(u32, u32, f64)], exits: &[[f64; 3]]) -> Chain {
    let mut out_weight: Vec<f64> = exits.iter().map(|exit| exit[0] + exit[1]).collect();
    for &(from, _, weight) in edges {
        out_weight[from as usize] += weight;
    }
    let mut chain = Chain {
        row_start: Vec::with_capacity(states + 1),
        targets: Vec::with_capacity(edges.len()),
        probabilities: Vec::with_capacity(edges.len()),
        rewards: [vec![0.0; states], vec![0.0; states]],
    };
    let mut edge = 0;
    for state in 0..states {
        chain.row_start.push(chain.targets.len());
        let total = out_weight[state];
        while edge < edges.len() && edges[edge].0 as usize == state {
            chain.targets.push(edges[edge].1);
            chain.probabilities.push(edges[edge].2 / total);
            edge += 1;
        }
        if total > 0.0 {
            chain.rewards[0][state] = exits[state][0] / total;
            chain.rewards[1][state] = exits[state][2] / total;
        }
    }
    chain.row_start.push(chain.targets.len());
    chain
}

fn state_labels(paths: &PathSet, space: &StateSpace) -> Vec<String> {
    let names = paths.channels();
    let mut labels = Vec::with_capacity(space.len() + 2);
    labels.push("(start)".to_owned());
    for state in 1..space.len() {
        let label: Vec<&str> = space.channels_of(state).iter().map(|&c| names[c as usize].as_str()).collect();
        labels.push(label.join(" > "));
    }
    labels.push("(conversion)".to_owned());
    labels.push("(null)".to_owned());
    labels
}

fn transitions(chain: &Chain, exits: &[[f64; 3]], conversion: u32, null: u32) -> Vec<Transition> {
    let mut list = Vec::with_capacity(chain.targets.len() + 2 * exits.len());
    for (state, exit) in exits.iter().enumerate().take(chain.state_count()) {
        let row = chain.row_start[state]..chain.row_start[state + 1];
        for (&to, &probability) in chain.targets[row.clone()].iter().zip(&chain.probabilities[row.clone()]) {
            list.push(Transition { from: state as u32, to, probability });
        }
        let leaving: f64 = chain.probabilities[row].iter().sum();
        let exit_weight = exit[0] + exit[1];
        if exit_weight > 0.0 {
            let exit_probability = 1.0 - leaving;
            if exit[0] > 0.0 {
                list.push(Transition {
                    from: state as u32,
                    to: conversion,
                    probability: exit_probability * exit[0] / exit_weight,
                });
            }
            if exit[1] > 0.0 {
                list.push(Transition {
                    from: state as u32,
                    to: null,
                    probability: exit_probability * exit[1] / exit_weight,
                });
            }
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::super::path::{PathOutcome, PathSetBuilder};
    use super::*;

    const SETTINGS: SolverSettings =
        SolverSettings { tolerance: 1e-13, max_sweeps: 200_000, dense_limit: 400 };

    fn set(rows: &[(&[&str], f64, f64, f64)]) -> PathSet {
        let mut builder = PathSetBuilder::new();
        for &(path, conversions, value, nulls) in rows {
            builder.add_named_path(path, PathOutcome::new(conversions, value, nulls)).unwrap();
        }
        builder.build()
    }

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} vs {expected}");
    }

    #[test]
    fn order_one_by_hand() {
        // a > b: 1 conversion (value 30), 1 null; a: 1 null; b: 1 conversion (value 10).
        // Weights: start→a 3, start→b 1; a→b 2, a→null 1; b→conv 2, b→null 1.
        // P(conv) = 3/4·2/3·2/3 + 1/4·2/3 = 1/3 + 1/6 = 1/2.
        // Without a: 1/4·2/3 = 1/6, drop 1/3. Without b: 0, drop 1/2. Shares 2/5, 3/5.
        // Value reward at b: mean value 20 per conversion, so earns 2/3·20 = 40/3; from start
        // E = (3/4·2/3 + 1/4)·40/3 = 10; without a: 1/4·40/3 = 10/3; without b: 0.
        // Value drops 20/3 and 10: shares 2/5, 3/5 of 40.
        let paths = set(&[(&["a", "b"], 1.0, 30.0, 1.0), (&["a"], 0.0, 0.0, 1.0), (&["b"], 1.0, 10.0, 0.0)]);
        let outcome = markov(&paths, 1, &SETTINGS).unwrap();
        close(outcome.credits.conversions[0], 0.8);
        close(outcome.credits.conversions[1], 1.2);
        close(outcome.credits.value[0], 16.0);
        close(outcome.credits.value[1], 24.0);
        let details = outcome.details;
        close(details.conversion_probability, 0.5);
        close(details.value_per_journey, 10.0);
        close(details.removal_effects[0].conversions, 2.0 / 3.0);
        close(details.removal_effects[1].conversions, 1.0);
        assert_eq!(details.states, ["(start)", "a", "b", "(conversion)", "(null)"]);
        let probability = |from: &str, to: &str| {
            let index = |label: &str| details.states.iter().position(|s| s == label).unwrap() as u32;
            details
                .transitions
                .iter()
                .find(|t| t.from == index(from) && t.to == index(to))
                .map_or(0.0, |t| t.probability)
        };
        close(probability("(start)", "a"), 0.75);
        close(probability("a", "b"), 2.0 / 3.0);
        close(probability("a", "(null)"), 1.0 / 3.0);
        close(probability("b", "(conversion)"), 2.0 / 3.0);
        close(probability("b", "(null)"), 1.0 / 3.0);
        assert_eq!(details.transitions.len(), 6);
    }

    #[test]
    fn consecutive_repeats_are_collapsed() {
        let plain = set(&[(&["a", "b"], 1.0, 1.0, 2.0), (&["b", "a"], 2.0, 5.0, 1.0)]);
        let repeated = set(&[(&["a", "a", "b", "b"], 1.0, 1.0, 2.0), (&["b", "a", "a"], 2.0, 5.0, 1.0)]);
        for order in 1..=3 {
            let plain = markov(&plain, order, &SETTINGS).unwrap();
            let repeated = markov(&repeated, order, &SETTINGS).unwrap();
            assert_eq!(plain.details.transitions, repeated.details.transitions);
            assert_eq!(plain.credits, repeated.credits);
        }
    }

    #[test]
    fn order_two_by_hand() {
        // a > b > c: 2 conversions; c > b: 1 conversion, 1 null; a: 1 null.
        // States (a,b), (b,c), (c,b), (a). start→(a,b) 2, →(c,b) 2, →(a) 1.
        // P(conv) = 2/5·1 + 2/5·1/2 + 0 = 3/5.
        // Without a: (a,b), (a) removed → 2/5·1/2 = 1/5, drop 2/5.
        // Without b: every two-channel state removed → 0, drop 3/5.
        // Without c: (b,c), (c,b) removed → 0, drop 3/5.
        // Shares 2/8, 3/8, 3/8 of 3 conversions.
        let paths =
            set(&[(&["a", "b", "c"], 2.0, 0.0, 0.0), (&["c", "b"], 1.0, 0.0, 1.0), (&["a"], 0.0, 0.0, 1.0)]);
        let outcome = markov(&paths, 2, &SETTINGS).unwrap();
        close(outcome.details.conversion_probability, 0.6);
        close(outcome.credits.conversions[0], 0.75);
        close(outcome.credits.conversions[1], 1.125);
        close(outcome.credits.conversions[2], 1.125);
        assert_eq!(
            outcome.details.states,
            ["(start)", "a > b", "b > c", "c > b", "a", "(conversion)", "(null)"]
        );
    }

    #[test]
    fn no_conversions_attributes_nothing_and_says_so() {
        let paths = set(&[(&["a", "b"], 0.0, 0.0, 3.0)]);
        let outcome = markov(&paths, 1, &SETTINGS).unwrap();
        assert_eq!(outcome.credits.conversions, [0.0, 0.0]);
        assert!(outcome.note.unwrap().contains("no conversions"));
        assert!(markov(&paths, 4, &SETTINGS).is_err());
    }
}
