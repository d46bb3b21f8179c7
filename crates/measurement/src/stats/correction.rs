//! Multiple-comparison corrections for A/B/n tests, where every variant is compared with the
//! same control and the chance that *some* variant looks significant by luck grows with the
//! number of variants.
//!
//! - Holm (1979), "A simple sequentially rejective multiple test procedure", Scand. J. Statist.
//!   6: sort the m p-values, adjusted p₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎). Controls the
//!   family-wise error rate under any dependence (the comparisons share a control, so they are
//!   correlated) and rejects everything Bonferroni rejects, so it is the default.
//! - Bonferroni: min(1, m·p).
//!
//! This is R's `p.adjust(p, "holm")` / `p.adjust(p, "bonferroni")`. Undefined p-values (`None`)
//! still count in m (conservative) and stay `None`.

/// Which correction the A/B/n analysis applies to its p-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// No correction: each comparison at its own level.
    None,
    /// Bonferroni: every p-value times the number of comparisons.
    Bonferroni,
    /// Holm's step-down procedure.
    #[default]
    Holm,
}

impl Correction {
    /// The adjusted p-values, in the input order.
    pub fn adjust(self, p_values: &[Option<f64>]) -> Vec<Option<f64>> {
        match self {
            Self::None => p_values.to_vec(),
            Self::Bonferroni => bonferroni(p_values),
            Self::Holm => holm(p_values),
        }
    }

    /// The confidence each interval needs for all of them to hold together with
    /// `confidence` (Bonferroni: 1 − (1 − confidence)/m). Holm has no interval of its own, so
    /// its intervals are Bonferroni's; an interval that excludes 0 then implies that Holm
    /// rejects too.
    pub fn interval_confidence(self, confidence: f64, comparisons: usize) -> f64 {
        match self {
            Self::None => confidence,
            Self::Bonferroni | Self::Holm => 1.0 - (1.0 - confidence) / comparisons.max(1) as f64,
        }
    }
}

/// Bonferroni-adjusted p-values.
pub fn bonferroni(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let m = p_values.len() as f64;
    p_values.iter().map(|p| p.map(|p| (p * m).min(1.0))).collect()
}

/// Holm-adjusted p-values.
pub fn holm(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    // Undefined p-values sort last (as if 1).
    order.sort_by(|&a, &b| p_values[a].unwrap_or(1.0).total_cmp(&p_values[b].unwrap_or(1.0)));
    let mut adjusted = vec![None; m];
    let mut running = 0.0_f64;
    for (rank, &index) in order.iter().enumerate() {
        let p = p_values[index].unwrap_or(1.0);
        running = running.max(((m - rank) as f64 * p).min(1.0));
        adjusted[index] = p_values[index].map(|_| running);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_matches_the_textbook_example() {
        // Wikipedia, "Holm–Bonferroni method", example: p = 0.01, 0.04, 0.03, 0.005 at α = 0.05
        // rejects H₁ and H₄ only. R: p.adjust(c(.01, .04, .03, .005), "holm") =
        // 0.03 0.06 0.06 0.02.
        let p = [Some(0.01), Some(0.04), Some(0.03), Some(0.005)];
        let adjusted: Vec<f64> = holm(&p).into_iter().map(|p| p.unwrap()).collect();
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-15, "{adjusted:?}");
        }
        let rejected: Vec<bool> = adjusted.iter().map(|&p| p < 0.05).collect();
        assert_eq!(rejected, [true, false, false, true]);
    }

    #[test]
    fn bonferroni_and_undefined_values() {
        // R: p.adjust(c(.01, .04, .03, .005), "bonferroni") = 0.04 0.16 0.12 0.02.
        let p = [Some(0.01), Some(0.04), Some(0.03), Some(0.005)];
        let b: Vec<f64> = Correction::Bonferroni.adjust(&p).into_iter().map(|p| p.unwrap()).collect();
        for (a, e) in b.iter().zip([0.04, 0.16, 0.12, 0.02]) {
            assert!((a - e).abs() < 1e-15, "{b:?}");
        }
        let with_gap = holm(&[Some(0.01), None, Some(0.5)]);
        assert_eq!(with_gap, vec![Some(0.03), None, Some(1.0)]);
        assert_eq!(Correction::None.adjust(&[Some(0.2)]), vec![Some(0.2)]);
        assert!((Correction::Holm.interval_confidence(0.95, 4) - 0.9875).abs() < 1e-15);
        assert_eq!(Correction::None.interval_confidence(0.95, 4), 0.95);
    }
}
