//! Deterministic numerical integration for the Bayesian comparisons (no Monte Carlo, so the
//! same counts always give the same chance to win).
//!
//! Composite 16-point Gauss–Legendre with adaptive bisection: each panel's estimate is compared
//! with the sum over its two halves and split again until they agree to a share of the
//! tolerance proportional to its width, up to a depth and a total budget so that the work is
//! bounded. The nodes are the roots of the Legendre polynomial Pₙ, found by Newton's method
//! from Tricomi's initial guesses cos(π(i − ¼)/(n + ½)) (Press et al., Numerical Recipes,
//! 3rd ed., §4.6 `gauleg`). The integrand is vector-valued so that one pass over the nodes
//! gives every arm's integral.

/// Nodes per panel.
const ORDER: usize = 16;
/// Bisections of one initial panel at most.
const MAX_DEPTH: u32 = 40;
/// Panel evaluations at most, over the whole integral.
const MAX_PANELS: usize = 20_000;

/// Gauss–Legendre nodes and weights on [−1, 1].
#[derive(Debug, Clone)]
pub(crate) struct GaussLegendre {
    nodes: Vec<f64>,
    weights: Vec<f64>,
}

impl GaussLegendre {
    pub(crate) fn new(n: usize) -> Self {
        let mut nodes = vec![0.0; n];
        let mut weights = vec![0.0; n];
        let nf = n as f64;
        for i in 0..n.div_ceil(2) {
            let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
            let mut derivative = 1.0;
            for _ in 0..100 {
                // Legendre recurrence: j·Pⱼ = (2j − 1)·z·Pⱼ₋₁ − (j − 1)·Pⱼ₋₂.
                let (mut p1, mut p2) = (1.0, 0.0);
                for j in 1..=n {
                    let jf = j as f64;
                    let p3 = p2;
                    p2 = p1;
                    p1 = ((2.0 * jf - 1.0) * z * p2 - (jf - 1.0) * p3) / jf;
                }
                derivative = nf * (z * p1 - p2) / (z * z - 1.0);
                let step = p1 / derivative;
                z -= step;
                if step.abs() < 1e-16 {
                    break;
                }
            }
            nodes[i] = -z;
            nodes[n - 1 - i] = z;
            let w = 2.0 / ((1.0 - z * z) * derivative * derivative);
            weights[i] = w;
            weights[n - 1 - i] = w;
        }
        Self { nodes, weights }
    }

    /// ∫ₐᵇ f, one component per entry of `out` (which is overwritten). `value` is scratch.
    fn panel(&self, f: &mut dyn FnMut(f64, &mut [f64]), a: f64, b: f64, value: &mut [f64], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        let (center, half) = ((a + b) / 2.0, (b - a) / 2.0);
        for (t, w) in self.nodes.iter().zip(&self.weights) {
            f(center + half * t, value);
            for (o, v) in out.iter_mut().zip(value.iter()) {
                *o += w * half * v;
            }
        }
    }
}

/// Integrates the vector function `f` (writing `dim` components) over the given panels, which
/// should not overlap. `scales` weighs each component's error (1 for a probability); a panel
/// is accepted once every weighted error is within `tolerance`·(panel width ÷ total width).
pub(crate) fn integrate(
    f: &mut dyn FnMut(f64, &mut [f64]),
    panels: &[(f64, f64)],
    scales: &[f64],
    tolerance: f64,
) -> Vec<f64> {
    let dim = scales.len();
    let rule = GaussLegendre::new(ORDER);
    let total_width: f64 = panels.iter().map(|(a, b)| b - a).filter(|w| *w > 0.0).sum();
    let mut result = vec![0.0; dim];
    if total_width.is_nan() || total_width <= 0.0 {
        return result;
    }
    let mut scratch = vec![0.0; dim];
    let mut evaluations = 0usize;
    let mut stack: Vec<(f64, f64, Vec<f64>, u32)> = Vec::new();
    for &(a, b) in panels.iter().filter(|(a, b)| b > a) {
        let mut whole = vec![0.0; dim];
        rule.panel(f, a, b, &mut scratch, &mut whole);
        evaluations += 1;
        stack.push((a, b, whole, 0));
        while let Some((a, b, whole, depth)) = stack.pop() {
            let mid = (a + b) / 2.0;
            let (mut left, mut right) = (vec![0.0; dim], vec![0.0; dim]);
            rule.panel(f, a, mid, &mut scratch, &mut left);
            rule.panel(f, mid, b, &mut scratch, &mut right);
            evaluations += 2;
            let allowed = tolerance * (b - a) / total_width;
            let error =
                (0..dim).map(|k| (left[k] + right[k] - whole[k]).abs() * scales[k]).fold(0.0, f64::max);
            let split_further = error > allowed
                && depth < MAX_DEPTH
                && evaluations < MAX_PANELS
                && mid > a
                && mid < b
                && error.is_finite();
            if split_further {
                stack.push((a, mid, left, depth + 1));
                stack.push((mid, b, right, depth + 1));
            } else {
                for k in 0..dim {
                    result[k] += left[k] + right[k];
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_points_integrate_polynomials_of_degree_31_exactly() {
        // An n-point Gauss–Legendre rule is exact for degree ≤ 2n − 1 (any numerical analysis
        // text, e.g. Numerical Recipes §4.6): ∫₀¹ x³¹ dx = 1/32, while a kink, ∫₀¹ |x − ½| dx = ¼,
        // is visibly off with one panel.
        let rule = GaussLegendre::new(ORDER);
        let weights: f64 = rule.weights.iter().sum();
        assert!((weights - 2.0).abs() < 1e-14);
        let mut scratch = [0.0];
        let mut out = [0.0];
        rule.panel(&mut |x, v| v[0] = x.powi(31), 0.0, 1.0, &mut scratch, &mut out);
        assert!((out[0] - 1.0 / 32.0).abs() < 1e-15);
        rule.panel(&mut |x, v| v[0] = (x - 0.5).abs(), 0.0, 1.0, &mut scratch, &mut out);
        assert!((out[0] - 0.25).abs() > 1e-6);
        // The adaptive integration splits around the kink until it is exact enough.
        let adaptive = integrate(&mut |x, v| v[0] = (x - 0.5).abs(), &[(0.0, 1.0)], &[1.0], 1e-12);
        assert!((adaptive[0] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn adaptive_integration_finds_a_narrow_peak_and_an_endpoint_singularity() {
        // The density of N(0.3, (10⁻⁴)²) integrates to 1 over panels 100 standard deviations
        // wide (the callers choose panels on the scale of the distributions; a peak narrower
        // than the node spacing of every initial panel could be missed); ∫₀¹ x^(−½)/2 dx = 1.
        let mut f = |x: f64, v: &mut [f64]| {
            let z = (x - 0.3) / 1e-4;
            v[0] = (-0.5 * z * z).exp() / (1e-4 * (2.0 * std::f64::consts::PI).sqrt());
            v[1] = if x < 0.01 { 0.5 / x.sqrt() } else { 0.0 };
        };
        let panels = [(0.0, 0.01), (0.29, 0.3), (0.3, 0.31)];
        let result = integrate(&mut f, &panels, &[1.0, 1.0], 1e-10);
        // ∫₀^0.01 x^(−½)/2 dx = √0.01 = 0.1.
        assert!((result[0] - 1.0).abs() < 1e-9, "{}", result[0]);
        assert!((result[1] - 0.1).abs() < 1e-6, "{}", result[1]);
    }
}
