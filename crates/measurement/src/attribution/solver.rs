//! Exact absorption values of an absorbing Markov chain: the solution of `x = Q x + r`, where
//! `Q` holds the transient-to-transient probabilities and `r` the one-step reward of absorbing
//! (the probability of converting next, or the expected value converted next).
//!
//! The linear system is solved, not simulated. The states reachable from the start are split
//! into strongly connected components (Tarjan), which come out in reverse topological order, so
//! each component is solved once every state it can leave to is known: a single state directly,
//! a block of up to `dense_limit` states by Gaussian elimination with partial pivoting, a larger
//! block by Gauss–Seidel sweeps. `I - Q` restricted to a block is a nonsingular M-matrix (every
//! path through the data ends, so every block leaks to absorption), for which Gauss–Seidel
//! converges to the exact solution of the system; it stops only when the change per sweep,
//! extrapolated by the observed contraction rate, bounds the remaining error below the
//! tolerance (relative), and fails with an error past the sweep cap instead of returning an
//! approximation.

use crate::Result;
use crate::error::MeasurementError;

/// The transient part of an absorbing chain in compressed sparse rows, with the two rewards
/// solved for at once (conversions and value).
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    pub row_start: Vec<usize>,
    pub targets: Vec<u32>,
    pub probabilities: Vec<f64>,
    pub rewards: [Vec<f64>; 2],
}

impl Chain {
    pub(crate) fn state_count(&self) -> usize {
        self.row_start.len().saturating_sub(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SolverSettings {
    pub tolerance: f64,
    pub max_sweeps: usize,
    pub dense_limit: usize,
}

const UNVISITED: u32 = u32::MAX;

/// Absorption values of every state reachable from `start` once the `removed` states are
/// redirected to the null state (their value is 0). Unreachable and removed states get 0.
/// `warm` (values of a related system, e.g. before removal) only speeds up iterative blocks.
pub(crate) fn absorption(
    chain: &Chain,
    start: usize,
    removed: &[bool],
    warm: Option<&[Vec<f64>; 2]>,
    settings: &SolverSettings,
) -> Result<[Vec<f64>; 2]> {
    let states = chain.state_count();
    let mut solution = [vec![0.0; states], vec![0.0; states]];
    if start >= states || removed[start] {
        return Ok(solution);
    }
    let mut solver = BlockSolver::new(chain, removed, warm, settings);
    let mut tarjan = Tarjan::new(states);
    // Depth-first search without recursion: each frame is a state and its next edge.
    let mut calls: Vec<(u32, usize)> = vec![(start as u32, chain.row_start[start])];
    tarjan.visit(start as u32);
    while let Some(&mut (state, ref mut edge)) = calls.last_mut() {
        let state_index = state as usize;
        if *edge < chain.row_start[state_index + 1] {
            let target = chain.targets[*edge];
            *edge += 1;
            let target_index = target as usize;
            if removed[target_index] {
                continue;
            }
            if tarjan.index[target_index] == UNVISITED {
                tarjan.visit(target);
                calls.push((target, chain.row_start[target_index]));
            } else if tarjan.on_stack[target_index] {
                tarjan.lowlink[state_index] = tarjan.lowlink[state_index].min(tarjan.index[target_index]);
            }
            continue;
        }
        calls.pop();
        if let Some(&(parent, _)) = calls.last() {
            tarjan.lowlink[parent as usize] =
                tarjan.lowlink[parent as usize].min(tarjan.lowlink[state_index]);
        }
        if tarjan.lowlink[state_index] == tarjan.index[state_index] {
            let component_start = tarjan.stack.iter().rposition(|&member| member == state).unwrap_or(0);
            for &member in &tarjan.stack[component_start..] {
                tarjan.on_stack[member as usize] = false;
            }
            solver.solve_block(&tarjan.stack[component_start..], &mut solution)?;
            tarjan.stack.truncate(component_start);
        }
    }
    Ok(solution)
}

/// Tarjan's bookkeeping: discovery order, lowest reachable discovery order, and the stack of
/// states whose component is not complete yet.
struct Tarjan {
    index: Vec<u32>,
    lowlink: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    counter: u32,
}

impl Tarjan {
    fn new(states: usize) -> Self {
        Self {
            index: vec![UNVISITED; states],
            lowlink: vec![0; states],
            on_stack: vec![false; states],
            stack: Vec::new(),
            counter: 0,
        }
    }

    fn visit(&mut self, state: u32) {
        self.index[state as usize] = self.counter;
        self.lowlink[state as usize] = self.counter;
        self.counter += 1;
        self.stack.push(state);
        self.on_stack[state as usize] = true;
    }
}

struct BlockSolver<'a> {
    chain: &'a Chain,
    removed: &'a [bool],
    warm: Option<&'a [Vec<f64>; 2]>,
    settings: &'a SolverSettings,
    /// Local index of each state of the block being solved, `UNVISITED` elsewhere.
    local: Vec<u32>,
}

impl<'a> BlockSolver<'a> {
    fn new(
        chain: &'a Chain,
        removed: &'a [bool],
        warm: Option<&'a [Vec<f64>; 2]>,
        settings: &'a SolverSettings,
    ) -> Self {
        Self { chain, removed, warm, settings, local: vec![UNVISITED; chain.state_count()] }
    }

    fn solve_block(&mut self, members: &[u32], solution: &mut [Vec<f64>; 2]) -> Result<()> {
        for (position, &member) in members.iter().enumerate() {
            self.local[member as usize] = position as u32;
        }
        let size = members.len();
        // Per member: the self-loop probability, the constant part (reward plus flows to states
        // already solved) and the edges inside the block.
        let mut self_loop = vec![0.0; size];
        let mut constant = [vec![0.0; size], vec![0.0; size]];
        let mut inner_start = Vec::with_capacity(size + 1);
        let mut inner_target: Vec<u32> = Vec::new();
        let mut inner_probability: Vec<f64> = Vec::new();
        for (position, &member) in members.iter().enumerate() {
            let state = member as usize;
            inner_start.push(inner_target.len());
            constant[0][position] = self.chain.rewards[0][state];
            constant[1][position] = self.chain.rewards[1][state];
            for edge in self.chain.row_start[state]..self.chain.row_start[state + 1] {
                let target = self.chain.targets[edge] as usize;
                let probability = self.chain.probabilities[edge];
                if self.removed[target] {
                    continue;
                }
                let local = self.local[target];
                if target == state {
                    self_loop[position] += probability;
                } else if local != UNVISITED {
                    inner_target.push(local);
                    inner_probability.push(probability);
                } else {
                    constant[0][position] += probability * solution[0][target];
                    constant[1][position] += probability * solution[1][target];
                }
            }
        }
        inner_start.push(inner_target.len());
        let block = Block { self_loop, constant, inner_start, inner_target, inner_probability };

        let values = if size == 1 {
            let leak = 1.0 - block.self_loop[0];
            if leak <= 0.0 {
                return Err(MeasurementError::invalid("a Markov state never reaches conversion or null"));
            }
            [vec![block.constant[0][0] / leak], vec![block.constant[1][0] / leak]]
        } else {
            if size <= self.settings.dense_limit {
                block.solve_dense()?
            } else {
                let initial = self.warm.map(|warm| {
                    [
                        members.iter().map(|&member| warm[0][member as usize]).collect(),
                        members.iter().map(|&member| warm[1][member as usize]).collect(),
                    ]
                });
                block.solve_gauss_seidel(initial, self.settings)?
            }
        };
        for (position, &member) in members.iter().enumerate() {
            solution[0][member as usize] = values[0][position];
            solution[1][member as usize] = values[1][position];
            self.local[member as usize] = UNVISITED;
        }
        Ok(())
    }
}

struct Block {
    self_loop: Vec<f64>,
    constant: [Vec<f64>; 2],
    inner_start: Vec<usize>,
    inner_target: Vec<u32>,
    inner_probability: Vec<f64>,
}

impl Block {
    fn size(&self) -> usize {
        self.self_loop.len()
    }

    /// Gaussian elimination with partial pivoting on `(I - Q) x = c`, both right-hand sides.
    fn solve_dense(&self) -> Result<[Vec<f64>; 2]> {
        let size = self.size();
        let width = size + 2;
        let mut matrix = vec![0.0; size * width];
        for row in 0..size {
            let line = &mut matrix[row * width..(row + 1) * width];
            line[row] = 1.0 - self.self_loop[row];
            for edge in self.inner_start[row]..self.inner_start[row + 1] {
                line[self.inner_target[edge] as usize] -= self.inner_probability[edge];
            }
            line[size] = self.constant[0][row];
            line[size + 1] = self.constant[1][row];
        }
        for column in 0..size {
            let mut pivot = column;
            for row in column + 1..size {
                if matrix[row * width + column].abs() > matrix[pivot * width + column].abs() {
                    pivot = row;
                }
            }
            let pivot_value = matrix[pivot * width + column];
            if pivot_value.is_nan() || pivot_value.abs() <= 1e-300 {
                return Err(MeasurementError::invalid("the Markov chain's linear system is singular"));
            }
            if pivot != column {
                for offset in 0..width {
                    matrix.swap(column * width + offset, pivot * width + offset);
                }
            }
            let (upper, lower) = matrix.split_at_mut((column + 1) * width);
            let pivot_row = &upper[column * width..];
            for row in lower.chunks_exact_mut(width) {
                let factor = row[column] / pivot_value;
                if factor != 0.0 {
                    for offset in column..width {
                        row[offset] -= factor * pivot_row[offset];
                    }
                }
            }
        }
        let mut values = [vec![0.0; size], vec![0.0; size]];
        for row in (0..size).rev() {
            let line = &matrix[row * width..(row + 1) * width];
            for (side, value) in values.iter_mut().enumerate() {
                let mut sum = line[size + side];
                for column in row + 1..size {
                    sum -= line[column] * value[column];
                }
                value[row] = sum / line[row];
            }
        }
        Ok(values)
    }

    /// Gauss–Seidel sweeps until the extrapolated error is below the relative tolerance.
    fn solve_gauss_seidel(
        &self,
        initial: Option<[Vec<f64>; 2]>,
        settings: &SolverSettings,
    ) -> Result<[Vec<f64>; 2]> {
        let size = self.size();
        let mut values = initial.unwrap_or_else(|| [vec![0.0; size], vec![0.0; size]]);
        let mut previous_change = [f64::INFINITY; 2];
        let mut previous_rate = [0.0f64; 2];
        let mut converged = [false; 2];
        for sweep in 0..settings.max_sweeps {
            let mut change = [0.0f64; 2];
            let mut scale = [0.0f64; 2];
            for row in 0..size {
                let leak = 1.0 - self.self_loop[row];
                for side in 0..2 {
                    let mut sum = self.constant[side][row];
                    for edge in self.inner_start[row]..self.inner_start[row + 1] {
                        sum += self.inner_probability[edge] * values[side][self.inner_target[edge] as usize];
                    }
                    let value = sum / leak;
                    change[side] = change[side].max((value - values[side][row]).abs());
                    scale[side] = scale[side].max(value.abs());
                    values[side][row] = value;
                }
            }
            for side in 0..2 {
                // The error left is about change × rate / (1 − rate) for a contraction `rate`,
                // estimated from successive changes (the larger of the last two, to be safe);
                // a change at the rounding level means the iteration cannot get closer.
                let bound = settings.tolerance * scale[side];
                let rounding_floor = 64.0 * f64::EPSILON * scale[side];
                let rate = (change[side] / previous_change[side]).max(previous_rate[side]);
                converged[side] = sweep >= 2
                    && (change[side] <= rounding_floor
                        || (change[side] <= bound
                            && rate < 1.0
                            && change[side] * rate / (1.0 - rate) <= bound));
                previous_rate[side] = change[side] / previous_change[side];
                previous_change[side] = change[side];
            }
            if converged[0] && converged[1] {
                return Ok(values);
            }
            if !values[0].iter().chain(&values[1]).all(|value| value.is_finite()) {
                break;
            }
        }
        Err(MeasurementError::invalid(format!(
            "the Markov chain solver did not converge within {} sweeps on a block of {size} states; \
             try a lower order",
            settings.max_sweeps
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: SolverSettings =
        SolverSettings { tolerance: 1e-13, max_sweeps: 1_000_000, dense_limit: 400 };
    const DENSE: SolverSettings = SolverSettings { dense_limit: usize::MAX, ..SETTINGS };
    const ITERATIVE: SolverSettings = SolverSettings { dense_limit: 0, ..SETTINGS };

    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random chain: each state has a few out-edges among the others plus conversion and
    /// null exits, with probabilities from random counts (as a Markov model builds them).
    fn random_chain(random: &mut Lcg, states: usize, degree: usize, leak: f64) -> Chain {
        let mut chain = Chain::default();
        chain.row_start.push(0);
        for _ in 0..states {
            let mut edges: Vec<(u32, f64)> = (0..degree)
                .map(|_| ((random.next() * states as f64) as u32, 1.0 + random.next() * 9.0))
                .collect();
            edges.sort_by_key(|edge| edge.0);
            edges.dedup_by_key(|edge| edge.0);
            let conversion = leak * random.next() * 10.0;
            let null = leak * random.next() * 10.0;
            let total: f64 = edges.iter().map(|edge| edge.1).sum::<f64>() + conversion + null;
            for (target, weight) in edges {
                chain.targets.push(target);
                chain.probabilities.push(weight / total);
            }
            chain.rewards[0].push(conversion / total);
            chain.rewards[1].push(conversion * (1.0 + random.next() * 50.0) / total);
            chain.row_start.push(chain.targets.len());
        }
        chain
    }

    #[test]
    fn iterative_and_dense_solvers_agree_on_random_chains() {
        let mut random = Lcg(7);
        for case in 0..40 {
            let states = 5 + case * 7;
            let leak = if case % 3 == 0 { 0.05 } else { 1.0 };
            let chain = random_chain(&mut random, states, 4, leak);
            let mut removed = vec![false; states];
            for state in removed.iter_mut().skip(1) {
                *state = random.next() < 0.1;
            }
            let dense = absorption(&chain, 0, &removed, None, &DENSE).unwrap();
            let iterative = absorption(&chain, 0, &removed, None, &ITERATIVE).unwrap();
            let warm = absorption(&chain, 0, &removed, Some(&dense), &ITERATIVE).unwrap();
            for side in 0..2 {
                for state in 0..states {
                    let (d, i, w) = (dense[side][state], iterative[side][state], warm[side][state]);
                    let scale = d.abs().max(1.0);
                    assert!((d - i).abs() <= 1e-10 * scale, "case {case} state {state}: {d} vs {i}");
                    assert!((d - w).abs() <= 1e-10 * scale, "case {case} state {state}: {d} vs {w}");
                }
            }
        }
    }

    #[test]
    fn solves_a_hand_computed_chain() {
        // start(0) -> a(1) with 1; a -> b 1/2, a -> conversion 1/4, a -> null 1/4;
        // b -> a 1/2, b -> conversion 1/2.
        // x_a = 1/4 + x_b / 2, x_b = 1/2 + x_a / 2  =>  x_a = 2/3, x_b = 5/6, x_start = 2/3.
        let chain = Chain {
            row_start: vec![0, 1, 2, 3],
            targets: vec![1, 2, 1],
            probabilities: vec![1.0, 0.5, 0.5],
            rewards: [vec![0.0, 0.25, 0.5], vec![0.0, 0.25, 0.5]],
        };
        for method in [SETTINGS, DENSE, ITERATIVE] {
            let solution = absorption(&chain, 0, &[false; 3], None, &method).unwrap();
            // The iterative method stops at a relative error of 1e-13.
            assert!((solution[0][0] - 2.0 / 3.0).abs() < 1e-12, "{}: {}", method.dense_limit, solution[0][0]);
            assert!((solution[0][2] - 5.0 / 6.0).abs() < 1e-12, "{}: {}", method.dense_limit, solution[0][2]);
            // Removing b: x_a = 1/4.
            let removed = absorption(&chain, 0, &[false, false, true], None, &method).unwrap();
            assert!((removed[0][0] - 0.25).abs() < 1e-14);
            assert_eq!(removed[0][2], 0.0);
        }
    }

    #[test]
    fn a_slowly_mixing_block_fails_loudly_past_the_sweep_cap() {
        // Two states bouncing with probability 0.999999 each way.
        let chain = Chain {
            row_start: vec![0, 1, 2, 3],
            targets: vec![1, 2, 1],
            probabilities: vec![1.0, 0.999_999, 0.999_999],
            rewards: [vec![0.0, 1e-6, 1e-6], vec![0.0, 0.0, 0.0]],
        };
        let settings = SolverSettings { tolerance: 1e-13, max_sweeps: 50, dense_limit: 0 };
        let error = absorption(&chain, 0, &[false; 3], None, &settings).unwrap_err();
        assert!(error.to_string().contains("did not converge"), "{error}");
        let exact = absorption(&chain, 0, &[false; 3], None, &DENSE).unwrap();
        assert!((exact[0][0] - 1.0).abs() < 1e-9);
    }
}
