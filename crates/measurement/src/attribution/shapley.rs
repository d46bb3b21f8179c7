//! Shapley value attribution (Zhao et al., 2018, "Shapley Value Methods for Attribution
//! Modeling in Online Advertising").
//!
//! The coalition value of a set of channels `S` is the conversions (or value) of the paths whose
//! set of channels is contained in `S`: `v(S) = Σ_{T ⊆ S} r(T)`, where `r(T)` is what the paths
//! with channel set exactly `T` produced. The `r(T)` are then the game's Harsanyi dividends,
//! and the Shapley value has the closed form `φ_j = Σ_{T ∋ j} r(T) / |T|`: each path's outcome
//! split equally among its distinct channels. This is linear in the paths, so it costs one pass
//! over them instead of `2^n` coalitions. [`exact_shapley`] computes the textbook sum over
//! coalitions for any small game, and the tests check both agree.

use super::path::PathSet;
use super::rules::Credits;
use crate::Result;
use crate::error::MeasurementError;

/// The closed form over a path set; non-converting paths have `r = 0`.
pub(crate) fn shapley(paths: &PathSet) -> Credits {
    let channels = paths.channels().len();
    let mut credits = Credits::zero(channels);
    // `seen[c] == stamp` marks channels already counted in the current path.
    let mut seen = vec![0u32; channels];
    let mut distinct: Vec<u32> = Vec::new();
    for (stamp, path) in (1u32..).zip(paths.iter()) {
        let outcome = path.outcome;
        if outcome.conversions == 0.0 && outcome.value == 0.0 {
            continue;
        }
        distinct.clear();
        for &channel in path.touches {
            if seen[channel as usize] != stamp {
                seen[channel as usize] = stamp;
                distinct.push(channel);
            }
        }
        let share = 1.0 / distinct.len() as f64;
        for &channel in &distinct {
            credits.conversions[channel as usize] += outcome.conversions * share;
            credits.value[channel as usize] += outcome.value * share;
        }
    }
    credits
}

/// The most players [`exact_shapley`] accepts: it evaluates `v` on all `2^n` coalitions.
pub const EXACT_SHAPLEY_MAX_PLAYERS: usize = 20;

/// The Shapley value of any game by its definition,
/// `φ_j = Σ_{S ⊆ N∖{j}} |S|! (n-|S|-1)! / n! · (v(S ∪ {j}) - v(S))`, with coalitions as bit
/// masks (bit `i` = player `i`).
pub fn exact_shapley(players: usize, value: impl Fn(u64) -> f64) -> Result<Vec<f64>> {
    if players == 0 || players > EXACT_SHAPLEY_MAX_PLAYERS {
        return Err(MeasurementError::invalid(format!(
            "exact Shapley values need 1 to {EXACT_SHAPLEY_MAX_PLAYERS} players, got {players}"
        )));
    }
    let coalitions = 1u64 << players;
    let values: Vec<f64> = (0..coalitions).map(&value).collect();
    // weight[s] = s! (n-s-1)! / n!, built without factorial overflow.
    let weights: Vec<f64> = (0..players)
        .map(|size| {
            let mut weight = 1.0 / players as f64;
            // 1/n · 1/C(n-1, s)
            for step in 0..size {
                weight *= (step + 1) as f64 / (players - 1 - step) as f64;
            }
            weight
        })
        .collect();
    let mut shapley = vec![0.0; players];
    for coalition in 0..coalitions {
        let size = coalition.count_ones() as usize;
        for (player, shapley) in shapley.iter_mut().enumerate() {
            let bit = 1u64 << player;
            if coalition & bit == 0 {
                *shapley += weights[size] * (values[(coalition | bit) as usize] - values[coalition as usize]);
            }
        }
    }
    Ok(shapley)
}

#[cfg(test)]
mod tests {
    use super::super::path::{PathOutcome, PathSetBuilder};
    use super::*;

    fn close(actual: &[f64], expected: &[f64], tolerance: f64) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() <= tolerance * e.abs().max(1.0), "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn glove_game() {
        // Player 0 holds a left glove, players 1 and 2 right gloves; a pair is worth 1.
        let value = |s: u64| if s & 1 != 0 && s & 0b110 != 0 { 1.0 } else { 0.0 };
        close(&exact_shapley(3, value).unwrap(), &[2.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0], 1e-15);
    }

    #[test]
    fn airport_game() {
        // Runway costs 30, 60, 120; a coalition pays for its longest runway (cost game).
        let costs = [30.0, 60.0, 120.0];
        let value = |s: u64| (0..3).filter(|i| s & (1 << i) != 0).map(|i| costs[i]).fold(0.0, f64::max);
        // Littlechild–Owen: each segment shared by the players who need it.
        close(&exact_shapley(3, value).unwrap(), &[10.0, 25.0, 85.0], 1e-14);
    }

    #[test]
    fn majority_games() {
        // Simple majority of three: symmetric.
        let majority = |s: u64| if s.count_ones() >= 2 { 1.0 } else { 0.0 };
        close(&exact_shapley(3, majority).unwrap(), &[1.0 / 3.0; 3], 1e-15);
        // Weighted voting [3; 2, 1, 1, 1]: the big player is pivotal in half of the orders.
        let weights = [2u32, 1, 1, 1];
        let voting = |s: u64| {
            let total: u32 = (0..4).filter(|i| s & (1 << i) != 0).map(|i| weights[i]).sum();
            if total >= 3 { 1.0 } else { 0.0 }
        };
        close(&exact_shapley(4, voting).unwrap(), &[0.5, 1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0], 1e-15);
        assert!(exact_shapley(0, majority).is_err());
        assert!(exact_shapley(21, majority).is_err());
    }

    /// v(S) from path data, by definition: outcome of the paths whose channel set is within S.
    fn path_game(paths: &PathSet, use_value: bool) -> impl Fn(u64) -> f64 + '_ {
        move |coalition: u64| {
            paths
                .iter()
                .filter(|path| path.touches.iter().all(|&c| coalition & (1 << c) != 0))
                .map(|path| if use_value { path.outcome.value } else { path.outcome.conversions })
                .sum()
        }
    }

    #[test]
    fn closed_form_by_hand() {
        // {a,b}: 2 conversions; {a}: 1; {a,b,c}: 3 (a touched twice).
        // a = 2/2 + 1 + 3/3 = 3, b = 1 + 1 = 2, c = 1.
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["a", "b"], PathOutcome::new(2.0, 20.0, 1.0)).unwrap();
        builder.add_named_path(&["a"], PathOutcome::new(1.0, 3.0, 0.0)).unwrap();
        builder.add_named_path(&["c", "a", "b", "a"], PathOutcome::new(3.0, 9.0, 0.0)).unwrap();
        builder.add_named_path(&["c"], PathOutcome::new(0.0, 0.0, 7.0)).unwrap();
        let paths = builder.build();
        let credits = shapley(&paths);
        close(&credits.conversions, &[3.0, 2.0, 1.0], 1e-15);
        close(&credits.value, &[10.0 + 3.0 + 3.0, 10.0 + 3.0, 3.0], 1e-15);
        close(&exact_shapley(3, path_game(&paths, false)).unwrap(), &credits.conversions, 1e-13);
    }

    #[test]
    fn closed_form_equals_the_sum_over_coalitions_on_random_path_sets() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for case in 0..60 {
            let channels = 1 + case % 8;
            let mut builder = PathSetBuilder::new();
            let ids: Vec<u32> = (0..channels).map(|c| builder.channel(&format!("c{c}")).unwrap()).collect();
            for _ in 0..1 + next(25) {
                let length = 1 + next(6) as usize;
                let touches: Vec<u32> = (0..length).map(|_| ids[next(channels as u64) as usize]).collect();
                let conversions = next(4) as f64;
                let value = if conversions > 0.0 { next(1000) as f64 / 7.0 } else { 0.0 };
                builder.add_path(&touches, PathOutcome::new(conversions, value, next(3) as f64)).unwrap();
            }
            let paths = builder.build();
            let closed = shapley(&paths);
            let exact_conversions = exact_shapley(channels, path_game(&paths, false)).unwrap();
            let exact_value = exact_shapley(channels, path_game(&paths, true)).unwrap();
            close(&closed.conversions, &exact_conversions, 1e-11);
            close(&closed.value, &exact_value, 1e-11);
        }
    }
}
