//! Conversion paths as every model reads them: interned channels and aggregated paths.
//!
//! Touches of all paths live in one flat array so that a million paths cost a handful of
//! allocations, not one per path or per touch.

use super::hashing::{FxHashMap, hash_touches};
use crate::Result;
use crate::error::MeasurementError;

/// Index of a channel in its [`PathSet`] (`PathSet::channels()[id]` is its name).
pub type ChannelId = u32;

/// The largest channel count any path set may hold, whatever the limits say: the Markov model
/// packs up to three channel indexes in one 64-bit state key.
pub const HARD_MAX_CHANNELS: usize = 1_000_000;

/// Input bounds, so that a malformed or hostile file fails with a clear error instead of
/// exhausting memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLimits {
    /// Distinct channel names.
    pub max_channels: usize,
    /// Touches in one path (before consecutive repeats are collapsed).
    pub max_path_length: usize,
}

impl Default for PathLimits {
    fn default() -> Self {
        Self { max_channels: 10_000, max_path_length: 1_000 }
    }
}

/// What one path (or one group of identical paths) produced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PathOutcome {
    /// Conversions at the end of the path.
    pub conversions: f64,
    /// Total conversion value of those conversions.
    pub value: f64,
    /// Journeys along this path that ended without a conversion.
    pub nulls: f64,
}

impl PathOutcome {
    pub fn new(conversions: f64, value: f64, nulls: f64) -> Self {
        Self { conversions, value, nulls }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        for (name, number) in
            [("conversions", self.conversions), ("conversion value", self.value), ("null count", self.nulls)]
        {
            if !number.is_finite() || number < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {number}"));
            }
        }
        if self.conversions == 0.0 && self.value != 0.0 {
            return Err(format!("conversion value {} without any conversion", self.value));
        }
        Ok(())
    }

    fn carries_weight(&self) -> bool {
        self.conversions > 0.0 || self.nulls > 0.0
    }
}

#[derive(Debug, Clone)]
struct Entry {
    start: usize,
    len: u32,
    has_relevance: bool,
    hash: u64,
    outcome: PathOutcome,
}

/// One path as the models see it.
#[derive(Debug, Clone, Copy)]
pub struct Path<'a> {
    /// Channels in the order they were touched (repeats kept).
    pub touches: &'a [ChannelId],
    /// Hours between each touch and the conversion (or the end of the journey), when the path
    /// set is timed.
    pub ages_hours: Option<&'a [f64]>,
    /// Per-touch relevance weights, when the caller gave them (custom rule model).
    pub relevance: Option<&'a [f64]>,
    pub outcome: PathOutcome,
}

/// A set of aggregated conversion paths over interned channels.
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    channels: Vec<String>,
    channel_index: FxHashMap<Box<str>, ChannelId>,
    touches: Vec<ChannelId>,
    ages: Vec<f64>,
    relevance: Vec<f64>,
    entries: Vec<Entry>,
    timed: bool,
}

impl PathSet {
    /// Channel names, indexed by [`ChannelId`], in order of first appearance.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    pub fn channel_id(&self, name: &str) -> Option<ChannelId> {
        self.channel_index.get(name).copied()
    }

    /// Number of distinct paths (identical untimed paths are merged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether touches carry real ages (paths from the database) rather than only an order
    /// (offline path exports).
    pub fn is_timed(&self) -> bool {
        self.timed
    }

    pub fn path(&self, index: usize) -> Option<Path<'_>> {
        self.entries.get(index).map(|entry| self.view(entry))
    }

    pub fn iter(&self) -> impl Iterator<Item = Path<'_>> + '_ {
        self.entries.iter().map(|entry| self.view(entry))
    }

    fn view<'a>(&'a self, entry: &Entry) -> Path<'a> {
        let range = entry.start..entry.start + entry.len as usize;
        Path {
            touches: &self.touches[range.clone()],
            ages_hours: if self.timed { Some(&self.ages[range.clone()]) } else { None },
            relevance: if entry.has_relevance { Some(&self.relevance[range]) } else { None },
            outcome: entry.outcome,
        }
    }

    /// Conversions, value and nulls summed over every path: what each model must distribute.
    pub fn totals(&self) -> PathOutcome {
        let mut totals = PathOutcome::default();
        for entry in &self.entries {
            totals.conversions += entry.outcome.conversions;
            totals.value += entry.outcome.value;
            totals.nulls += entry.outcome.nulls;
        }
        totals
    }

    /// Total number of touches over all distinct paths.
    pub fn touch_count(&self) -> usize {
        self.touches.len()
    }
}

/// Builds a [`PathSet`], interning channel names and merging identical untimed paths.
///
/// Paths with neither conversions nor nulls carry no weight in any model and are dropped.
#[derive(Debug)]
pub struct PathSetBuilder {
    set: PathSet,
    limits: PathLimits,
}

impl Default for PathSetBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PathSetBuilder {
    /// For paths known only by their order of touches (offline exports). Identical paths are
    /// merged by summing their outcomes.
    pub fn new() -> Self {
        Self::with_limits(PathLimits::default())
    }

    pub fn with_limits(limits: PathLimits) -> Self {
        Self { set: PathSet::default(), limits }
    }

    /// For paths whose touches have ages in hours (from the database). Timed paths are kept
    /// one by one: two journeys through the same channels at different times differ for the
    /// time-decay model.
    pub fn timed(limits: PathLimits) -> Self {
        let mut builder = Self::with_limits(limits);
        builder.set.timed = true;
        builder
    }

    /// The index of a channel name, interning it on first sight. Names are trimmed.
    pub fn channel(&mut self, name: &str) -> Result<ChannelId> {
        let name = name.trim();
        if let Some(&id) = self.set.channel_index.get(name) {
            return Ok(id);
        }
        if name.is_empty() {
            return Err(MeasurementError::invalid("a channel name is empty"));
        }
        let max = self.limits.max_channels.min(HARD_MAX_CHANNELS);
        if self.set.channels.len() >= max {
            return Err(MeasurementError::invalid(format!(
                "more than {max} distinct channels; the limit is {max}"
            )));
        }
        let id = self.set.channels.len() as ChannelId;
        self.set.channels.push(name.to_owned());
        self.set.channel_index.insert(name.into(), id);
        Ok(id)
    }

    /// Adds an untimed path given by channel names.
    pub fn add_named_path(&mut self, channels: &[&str], outcome: PathOutcome) -> Result<()> {
        let mut touches = Vec::with_capacity(channels.len());
        for name in channels {
            touches.push(self.channel(name)?);
        }
        self.add_path(&touches, outcome)
    }

    /// Adds an untimed path of interned channels; an identical path already present gets this
    /// outcome added to its own.
    pub fn add_path(&mut self, touches: &[ChannelId], outcome: PathOutcome) -> Result<()> {
        if self.set.timed {
            return Err(MeasurementError::invalid("a timed path set needs the touches' ages"));
        }
        self.check_path(touches, &outcome)?;
        if !outcome.carries_weight() {
            return Ok(());
        }
        if self.set.entries.len() >= u32::MAX as usize - 1 {
            return Err(MeasurementError::invalid("too many distinct paths"));
        }
        // Identical paths are merged in `build`, in one cache-friendly pass.
        let hash = hash_touches(touches);
        self.push_entry(touches, hash, false, outcome);
        Ok(())
    }

    /// Adds a timed path: `ages_hours[i]` is how long before the conversion (or the end of the
    /// journey) touch `i` happened; `relevance`, when given, is a per-touch weight for the
    /// custom rule model.
    pub fn add_timed_path(
        &mut self,
        touches: &[ChannelId],
        ages_hours: &[f64],
        relevance: Option<&[f64]>,
        outcome: PathOutcome,
    ) -> Result<()> {
        if !self.set.timed {
            return Err(MeasurementError::invalid("an untimed path set takes no ages"));
        }
        self.check_path(touches, &outcome)?;
        if ages_hours.len() != touches.len() {
            return Err(MeasurementError::invalid(format!(
                "{} touches but {} ages",
                touches.len(),
                ages_hours.len()
            )));
        }
        if let Some(&age) = ages_hours.iter().find(|age| !age.is_finite() || **age < 0.0) {
            return Err(MeasurementError::invalid(format!(
                "a touch age must be a finite number of hours >= 0, got {age}"
            )));
        }
        if let Some(relevance) = relevance {
            if relevance.len() != touches.len() {
                return Err(MeasurementError::invalid(format!(
                    "{} touches but {} relevance weights",
                    touches.len(),
                    relevance.len()
                )));
            }
            if let Some(&weight) = relevance.iter().find(|weight| !weight.is_finite() || **weight < 0.0) {
                return Err(MeasurementError::invalid(format!(
                    "a relevance weight must be a finite number >= 0, got {weight}"
                )));
            }
        }
        if !outcome.carries_weight() {
            return Ok(());
        }
        self.set.ages.extend_from_slice(ages_hours);
        match relevance {
            Some(relevance) => self.set.relevance.extend_from_slice(relevance),
            None => self.set.relevance.resize(self.set.relevance.len() + touches.len(), 1.0),
        }
        self.push_entry(touches, 0, relevance.is_some(), outcome);
        Ok(())
    }

    pub fn build(self) -> PathSet {
        let mut set = self.set;
        if !set.timed {
            merge_identical_paths(&mut set);
        }
        if !set.entries.iter().any(|entry| entry.has_relevance) {
            set.relevance = Vec::new();
        }
        set
    }

    fn check_path(&self, touches: &[ChannelId], outcome: &PathOutcome) -> Result<()> {
        if touches.is_empty() {
            return Err(MeasurementError::invalid("a path has no touches"));
        }
        if touches.len() > self.limits.max_path_length {
            return Err(MeasurementError::invalid(format!(
                "a path has {} touches; the limit is {}",
                touches.len(),
                self.limits.max_path_length
            )));
        }
        let channel_count = self.set.channels.len();
        if let Some(&bad) = touches.iter().find(|&&touch| touch as usize >= channel_count) {
            return Err(MeasurementError::invalid(format!("unknown channel index {bad}")));
        }
        outcome.validate().map_err(MeasurementError::invalid)
    }

    fn push_entry(&mut self, touches: &[ChannelId], hash: u64, has_relevance: bool, outcome: PathOutcome) {
        let start = self.set.touches.len();
        self.set.touches.extend_from_slice(touches);
        self.set.entries.push(Entry { start, len: touches.len() as u32, has_relevance, hash, outcome });
    }
}

/// Sums identical untimed paths into their first occurrence, keeping first-appearance order.
///
/// A single hash table over a million paths misses the cache on nearly every probe, so the
/// paths are first partitioned by the high bits of their hash into buckets of about a thousand,
/// each deduplicated with a small table that stays in cache; touches are only compared when
/// two full 64-bit hashes are equal.
fn merge_identical_paths(set: &mut PathSet) {
    let count = set.entries.len();
    if count < 2 {
        return;
    }
    let bits = (count / 1024).max(1).next_power_of_two().trailing_zeros().min(12);
    let bucket_of = |hash: u64| if bits == 0 { 0 } else { (hash >> (64 - bits)) as usize };
    let mut bucket_start = vec![0usize; (1 << bits) + 1];
    for entry in &set.entries {
        bucket_start[bucket_of(entry.hash) + 1] += 1;
    }
    for bucket in 1..bucket_start.len() {
        bucket_start[bucket] += bucket_start[bucket - 1];
    }
    let mut cursor = bucket_start.clone();
    let mut partitioned = vec![(0u64, 0u32); count];
    for (index, entry) in set.entries.iter().enumerate() {
        let bucket = bucket_of(entry.hash);
        partitioned[cursor[bucket]] = (entry.hash, index as u32);
        cursor[bucket] += 1;
    }

    const KEEP: u32 = u32::MAX;
    let mut merged_into = vec![KEEP; count];
    let mut merged_any = false;
    let mut slots: Vec<u32> = Vec::new();
    for bucket in bucket_start.windows(2) {
        let part = &partitioned[bucket[0]..bucket[1]];
        if part.len() < 2 {
            continue;
        }
        let capacity = (part.len() * 2).next_power_of_two();
        let mask = capacity - 1;
        slots.clear();
        slots.resize(capacity, KEEP);
        for (position, &(hash, index)) in part.iter().enumerate() {
            let mut slot = (hash as usize) & mask;
            loop {
                let occupant = slots[slot];
                if occupant == KEEP {
                    slots[slot] = position as u32;
                    break;
                }
                let (occupant_hash, first) = part[occupant as usize];
                if occupant_hash == hash && same_touches(set, first as usize, index as usize) {
                    merged_into[index as usize] = first;
                    let outcome = set.entries[index as usize].outcome;
                    let first = &mut set.entries[first as usize].outcome;
                    first.conversions += outcome.conversions;
                    first.value += outcome.value;
                    first.nulls += outcome.nulls;
                    merged_any = true;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }
    if !merged_any {
        return;
    }
    let old_touches = std::mem::take(&mut set.touches);
    let old_entries = std::mem::take(&mut set.entries);
    for (entry, merged) in old_entries.into_iter().zip(merged_into) {
        if merged == KEEP {
            let start = set.touches.len();
            set.touches.extend_from_slice(&old_touches[entry.start..entry.start + entry.len as usize]);
            set.entries.push(Entry { start, ..entry });
        }
    }
}

fn same_touches(set: &PathSet, first: usize, second: usize) -> bool {
    let (first, second) = (&set.entries[first], &set.entries[second]);
    first.len == second.len
        && set.touches[first.start..first.start + first.len as usize]
            == set.touches[second.start..second.start + second.len as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_untimed_paths_are_merged_and_channels_interned_in_order() {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["b", " a "], PathOutcome::new(1.0, 10.0, 2.0)).unwrap();
        builder.add_named_path(&["a"], PathOutcome::new(0.0, 0.0, 1.0)).unwrap();
        builder.add_named_path(&["b", "a"], PathOutcome::new(2.0, 5.0, 0.0)).unwrap();
        let set = builder.build();
        assert_eq!(set.channels(), ["b", "a"]);
        assert_eq!(set.len(), 2);
        let first = set.path(0).unwrap();
        assert_eq!(first.touches, [0, 1]);
        assert_eq!(first.outcome, PathOutcome::new(3.0, 15.0, 2.0));
        assert_eq!(set.totals(), PathOutcome::new(3.0, 15.0, 3.0));
    }

    #[test]
    fn identical_paths_merge_across_hash_buckets() {
        let mut builder = PathSetBuilder::new();
        let ids: Vec<_> = (0..20).map(|c| builder.channel(&format!("c{c}")).unwrap()).collect();
        for round in 0..2 {
            for i in 0..5000u32 {
                let path = [ids[(i % 20) as usize], ids[((i / 20) % 20) as usize], ids[(i / 400) as usize]];
                builder.add_path(&path, PathOutcome::new(1.0, f64::from(round), 0.0)).unwrap();
            }
        }
        let set = builder.build();
        assert_eq!(set.len(), 5000);
        assert!(set.iter().all(|path| path.outcome == PathOutcome::new(2.0, 1.0, 0.0)));
    }

    #[test]
    fn weightless_paths_are_dropped_and_bad_outcomes_refused() {
        let mut builder = PathSetBuilder::new();
        builder.add_named_path(&["a"], PathOutcome::new(0.0, 0.0, 0.0)).unwrap();
        assert!(builder.add_named_path(&["a"], PathOutcome::new(-1.0, 0.0, 0.0)).is_err());
        assert!(builder.add_named_path(&["a"], PathOutcome::new(f64::NAN, 0.0, 0.0)).is_err());
        assert!(builder.add_named_path(&["a"], PathOutcome::new(0.0, 3.0, 1.0)).is_err());
        assert!(builder.add_named_path(&["a", ""], PathOutcome::new(1.0, 0.0, 0.0)).is_err());
        assert!(builder.add_path(&[], PathOutcome::new(1.0, 0.0, 0.0)).is_err());
        assert!(builder.add_path(&[7], PathOutcome::new(1.0, 0.0, 0.0)).is_err());
        assert!(builder.build().is_empty());
    }

    #[test]
    fn limits_bound_channels_and_path_length() {
        let mut builder = PathSetBuilder::with_limits(PathLimits { max_channels: 2, max_path_length: 3 });
        builder.channel("a").unwrap();
        builder.channel("b").unwrap();
        let error = builder.channel("c").unwrap_err().to_string();
        assert!(error.contains("limit is 2"), "{error}");
        let error = builder.add_path(&[0, 1, 0, 1], PathOutcome::new(1.0, 0.0, 0.0)).unwrap_err();
        assert!(error.to_string().contains("4 touches"), "{error}");
    }

    #[test]
    fn timed_paths_keep_ages_and_optional_relevance() {
        let mut builder = PathSetBuilder::timed(PathLimits::default());
        let a = builder.channel("a").unwrap();
        let b = builder.channel("b").unwrap();
        builder.add_timed_path(&[a, b], &[48.0, 1.0], None, PathOutcome::new(1.0, 9.0, 0.0)).unwrap();
        builder
            .add_timed_path(&[a, b], &[5.0, 0.0], Some(&[0.5, 1.0]), PathOutcome::new(1.0, 1.0, 0.0))
            .unwrap();
        assert!(builder.add_timed_path(&[a], &[-1.0], None, PathOutcome::new(1.0, 0.0, 0.0)).is_err());
        assert!(builder.add_path(&[a], PathOutcome::new(1.0, 0.0, 0.0)).is_err());
        let set = builder.build();
        assert!(set.is_timed());
        assert_eq!(set.len(), 2);
        assert_eq!(set.path(0).unwrap().ages_hours, Some(&[48.0, 1.0][..]));
        assert_eq!(set.path(0).unwrap().relevance, None);
        assert_eq!(set.path(1).unwrap().relevance, Some(&[0.5, 1.0][..]));
    }
}
