//! Experiment assignment (A/B/n splits and holdouts) by a deterministic hash.
//!
//! Assignment must not depend on when or where a profile is processed: a retried job, a second
//! executor instance and the analytics warehouse must all agree on which arm a person is in. So
//! the arm is a pure function of a seed (chosen per experiment, e.g. journey id + step id) and
//! the profile id, through SHA-256, which is available everywhere (SQL, Python, JS) and spreads
//! even highly structured ids such as time-ordered `UUIDv7`s evenly.
//!
//! Changing a seed reshuffles everyone, so seeds must stay fixed for the life of an experiment.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Appended to the seed for holdouts so that the holdout draw is independent of a split that
/// uses the same seed. Consequently a split seed should never itself end in this suffix.
const HOLDOUT_SEED_SUFFIX: &str = ":holdout";

/// A uniformly distributed 64-bit number for `(seed, profile)`: the first 8 bytes, big endian,
/// of SHA-256(seed bytes ‖ 0x00 ‖ the profile's 16 bytes).
///
/// The 0x00 separator and the fixed-length profile make the encoding unambiguous, so two
/// different `(seed, profile)` pairs never hash the same input.
#[must_use]
pub fn bucket(seed: &str, profile: Uuid) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update([0x00]);
    hasher.update(profile.as_bytes());
    let digest = hasher.finalize();
    let mut first_eight_bytes = [0u8; 8];
    first_eight_bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first_eight_bytes)
}

/// Picks an index into `weights` with probability `weight / total`, deterministically.
///
/// The bucket is scaled into `0..total` by multiplying and keeping the high 64 bits
/// (`bucket * total >> 64`) rather than taking `bucket % total`, which would favour low
/// positions. Zero weights are never picked. Returns `None` if there is nothing to pick (no
/// weights, all zero) or if the total does not fit in a `u64` (impossible for real splits).
#[must_use]
pub fn choose(seed: &str, profile: Uuid, weights: &[u32]) -> Option<usize> {
    let total = weights.iter().try_fold(0u64, |sum, &weight| sum.checked_add(u64::from(weight)))?;
    if total == 0 {
        return None;
    }
    let position = scale_into(bucket(seed, profile), total);
    let mut cumulative = 0u64;
    for (index, &weight) in weights.iter().enumerate() {
        cumulative += u64::from(weight);
        if position < cumulative {
            return Some(index);
        }
    }
    // Unreachable: `position < total` and the cumulative sum ends at `total`.
    None
}

/// Whether the profile falls in the `percent`% control group of a holdout.
///
/// Uses [`bucket`] of `seed + ":holdout"`, so a holdout and a split sharing a seed are
/// independent: being held out says nothing about which variant one would have got.
/// `percent` 0 holds out nobody and 100 or more holds out everybody.
#[must_use]
pub fn in_holdout(seed: &str, profile: Uuid, percent: u8) -> bool {
    let holdout_seed = format!("{seed}{HOLDOUT_SEED_SUFFIX}");
    scale_into(bucket(&holdout_seed, profile), 100) < u64::from(percent)
}

/// Maps a uniform 64-bit value onto `0..range` without modulo bias (Lemire's multiply-shift).
fn scale_into(uniform: u64, range: u64) -> u64 {
    let scaled = (u128::from(uniform) * u128::from(range)) >> 64;
    // `scaled < range <= u64::MAX`, so this never saturates; `try_from` just avoids a cast.
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use uuid::Builder;

    use super::*;

    const SAMPLE_SIZE: usize = 100_000;

    /// Chi-square critical values at p = 0.001, by degrees of freedom.
    const CHI_SQUARE_CRITICAL_1_DF: f64 = 10.828;
    const CHI_SQUARE_CRITICAL_2_DF: f64 = 13.816;
    const CHI_SQUARE_CRITICAL_3_DF: f64 = 16.266;

    /// A small deterministic PRNG (SplitMix64) so the statistical tests never flake: the data are
    /// the same on every run, and the bounds are only there to catch a broken hash mapping.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut mixed = self.0;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            mixed ^ (mixed >> 31)
        }
    }

    /// Realistic profile ids: UUIDv7 as `Uuid::now_v7` makes them (48-bit millisecond timestamp,
    /// then random bits), for sign-ups arriving in bursts over a few days, many within the same
    /// millisecond. Built from a fixed PRNG instead of the clock so that runs are reproducible.
    fn realistic_profile_ids(count: usize) -> Vec<Uuid> {
        let mut random = SplitMix64(0x5EED);
        let mut unix_millis: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
        (0..count)
            .map(|_| {
                // Half the sign-ups land in the same millisecond as the previous one.
                if random.next().is_multiple_of(2) {
                    unix_millis += random.next() % 5_000;
                }
                let mut random_bytes = [0u8; 10];
                random_bytes[..8].copy_from_slice(&random.next().to_be_bytes());
                random_bytes[8..].copy_from_slice(&random.next().to_be_bytes()[..2]);
                Builder::from_unix_timestamp_millis(unix_millis, &random_bytes).into_uuid()
            })
            .collect()
    }

    /// Adversarially structured ids (0, 1, 2, …), to show the hash does not care about structure.
    fn sequential_profile_ids(count: usize) -> Vec<Uuid> {
        (0..count).map(|number| Uuid::from_u128(number as u128)).collect()
    }

    /// Pearson's chi-square statistic of observed counts against expected proportions.
    fn chi_square(observed: &[usize], expected_proportions: &[f64]) -> f64 {
        let total: usize = observed.iter().sum();
        observed
            .iter()
            .zip(expected_proportions)
            .map(|(&count, &proportion)| {
                let expected = total as f64 * proportion;
                (count as f64 - expected).powi(2) / expected
            })
            .sum()
    }

    fn split_counts(seed: &str, profiles: &[Uuid], weights: &[u32]) -> Vec<usize> {
        let mut counts = vec![0; weights.len()];
        for &profile in profiles {
            counts[choose(seed, profile, weights).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn realistic_ids_are_valid_uuid_v7() {
        let ids = realistic_profile_ids(1_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        let millis = |id: &Uuid| id.get_timestamp().map(|timestamp| timestamp.to_unix()).unwrap();
        assert!(ids.windows(2).all(|pair| millis(&pair[0]) <= millis(&pair[1])), "ids arrive over time");
        assert!(ids.windows(2).any(|pair| millis(&pair[0]) == millis(&pair[1])), "some share a millisecond");
    }

    #[test]
    fn bucket_matches_the_documented_construction() {
        // Reference values computed independently:
        // python3 -c "import hashlib,uuid; u=uuid.UUID('0190f5a8-0000-7000-8000-000000000001');
        //             print(hashlib.sha256(b'journey-1/split' + b'\x00' + u.bytes).hexdigest()[:16])"
        let profile: Uuid = "0190f5a8-0000-7000-8000-000000000001".parse().unwrap();
        assert_eq!(bucket("journey-1/split", profile), 0xc768_ebd8_06e8_985a);
        assert_eq!(bucket("", profile), 0xedd7_10b5_614b_7fc0);
        // 0xc768… / 2^64 ≈ 0.779, so 77 of 100 equal slots: variant B of a 50/50 split.
        assert_eq!(choose("journey-1/split", profile, &[50, 50]), Some(1));
        assert_eq!(choose("journey-1/split", profile, &[78, 22]), Some(0));
        assert_eq!(choose("journey-1/split", profile, &[77, 23]), Some(1));
        // bucket("journey-1/split:holdout") = 0xdf2d… ≈ 0.8718, so slot 87 of 100.
        assert!(!in_holdout("journey-1/split", profile, 87));
        assert!(in_holdout("journey-1/split", profile, 88));
    }

    #[test]
    fn same_input_always_gives_the_same_answer() {
        for profile in realistic_profile_ids(1_000) {
            assert_eq!(bucket("seed", profile), bucket("seed", profile));
            assert_eq!(choose("seed", profile, &[20, 30, 50]), choose("seed", profile, &[20, 30, 50]));
            assert_eq!(in_holdout("seed", profile, 10), in_holdout("seed", profile, 10));
        }
    }

    #[test]
    fn seed_and_profile_both_matter() {
        let profiles = realistic_profile_ids(2);
        assert_ne!(bucket("seed", profiles[0]), bucket("seed", profiles[1]));
        assert_ne!(bucket("seed-a", profiles[0]), bucket("seed-b", profiles[0]));
    }

    #[test]
    fn choose_edge_cases() {
        let profiles = realistic_profile_ids(1_000);
        for &profile in &profiles {
            assert_eq!(choose("seed", profile, &[]), None);
            assert_eq!(choose("seed", profile, &[0, 0]), None);
            assert_eq!(choose("seed", profile, &[7]), Some(0));
            assert_eq!(choose("seed", profile, &[0, 3, 0]), Some(1));
            assert_ne!(choose("seed", profile, &[1, 0, 1]), Some(1));
            assert!(choose("seed", profile, &[u32::MAX; 4]).is_some_and(|index| index < 4));
        }
        assert!(profiles.iter().any(|&profile| choose("seed", profile, &[1, 0, 1]) == Some(0)));
        assert!(profiles.iter().any(|&profile| choose("seed", profile, &[1, 0, 1]) == Some(2)));
    }

    #[test]
    fn holdout_edge_cases() {
        for profile in realistic_profile_ids(1_000) {
            assert!(!in_holdout("seed", profile, 0));
            assert!(in_holdout("seed", profile, 100));
            assert!(in_holdout("seed", profile, 255));
        }
    }

    #[test]
    fn holdout_grows_monotonically_with_percent() {
        // Raising a holdout only adds people to it; nobody flips back into the journey.
        for profile in realistic_profile_ids(1_000) {
            let held_out_at: Vec<bool> =
                (0..=100).map(|percent| in_holdout("seed", profile, percent)).collect();
            assert!(held_out_at.windows(2).all(|pair| !pair[0] || pair[1]));
        }
    }

    #[test]
    fn fifty_fifty_split_is_even() {
        for (kind, profiles) in [
            ("UUIDv7", realistic_profile_ids(SAMPLE_SIZE)),
            ("sequential", sequential_profile_ids(SAMPLE_SIZE)),
        ] {
            let counts = split_counts("journey-1/split", &profiles, &[50, 50]);
            let statistic = chi_square(&counts, &[0.5, 0.5]);
            assert!(statistic < CHI_SQUARE_CRITICAL_1_DF, "{kind}: {counts:?}, chi-square {statistic}");
        }
    }

    #[test]
    fn twenty_thirty_fifty_split_follows_the_weights() {
        for (kind, profiles) in [
            ("UUIDv7", realistic_profile_ids(SAMPLE_SIZE)),
            ("sequential", sequential_profile_ids(SAMPLE_SIZE)),
        ] {
            let counts = split_counts("journey-1/split", &profiles, &[20, 30, 50]);
            let statistic = chi_square(&counts, &[0.2, 0.3, 0.5]);
            assert!(statistic < CHI_SQUARE_CRITICAL_2_DF, "{kind}: {counts:?}, chi-square {statistic}");
        }
    }

    #[test]
    fn ten_percent_holdout_is_ten_percent() {
        let profiles = realistic_profile_ids(SAMPLE_SIZE);
        let held_out =
            profiles.iter().filter(|&&profile| in_holdout("journey-1/holdout", profile, 10)).count();
        let expected = SAMPLE_SIZE as f64 * 0.1;
        let five_sigma = 5.0 * (SAMPLE_SIZE as f64 * 0.1 * 0.9).sqrt();
        assert!((held_out as f64 - expected).abs() < five_sigma, "{held_out} held out of {SAMPLE_SIZE}");
    }

    /// Cross-tabulates two boolean assignments into [both, first only, second only, neither].
    fn two_by_two(
        profiles: &[Uuid],
        first: impl Fn(Uuid) -> bool,
        second: impl Fn(Uuid) -> bool,
    ) -> Vec<usize> {
        let mut cells = vec![0; 4];
        for &profile in profiles {
            let cell = match (first(profile), second(profile)) {
                (true, true) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (false, false) => 3,
            };
            cells[cell] += 1;
        }
        cells
    }

    #[test]
    fn different_seeds_give_independent_splits() {
        let profiles = realistic_profile_ids(SAMPLE_SIZE);
        let cells = two_by_two(
            &profiles,
            |profile| choose("journey-1/subject-line", profile, &[50, 50]) == Some(0),
            |profile| choose("journey-1/send-time", profile, &[50, 50]) == Some(0),
        );
        let statistic = chi_square(&cells, &[0.25; 4]);
        assert!(statistic < CHI_SQUARE_CRITICAL_3_DF, "{cells:?}, chi-square {statistic}");
    }

    #[test]
    fn split_and_holdout_with_the_same_seed_are_independent() {
        let profiles = realistic_profile_ids(SAMPLE_SIZE);
        let seed = "journey-1/step-3";
        // 50% is where a shared derivation would show most plainly (it would give 50/0/0/50).
        let half = two_by_two(
            &profiles,
            |profile| in_holdout(seed, profile, 50),
            |profile| choose(seed, profile, &[50, 50]) == Some(0),
        );
        let statistic = chi_square(&half, &[0.25; 4]);
        assert!(statistic < CHI_SQUARE_CRITICAL_3_DF, "{half:?}, chi-square {statistic}");

        let tenth = two_by_two(
            &profiles,
            |profile| in_holdout(seed, profile, 10),
            |profile| choose(seed, profile, &[50, 50]) == Some(0),
        );
        let statistic = chi_square(&tenth, &[0.05, 0.05, 0.45, 0.45]);
        assert!(statistic < CHI_SQUARE_CRITICAL_3_DF, "{tenth:?}, chi-square {statistic}");
    }
}
