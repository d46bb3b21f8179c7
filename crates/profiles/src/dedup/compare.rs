//! The normalised table of records and the comparison of two records field by field.
//!
//! A comparison turns a pair of values into an agreement level: `0` is exact agreement, the
//! last level is disagreement, the levels in between are degrees of "probably a typo". How
//! much each level is worth is not decided here but estimated from the data (see `em`).

use super::normalize::{formal_given_name, normalize};
use super::{DedupRecord, DedupSchema, FieldKind};
use std::collections::HashMap;

/// The level of a field when either value is missing: it contributes no evidence.
pub(crate) const MISSING: u8 = 15;

/// Sentinel id for a missing value in a [`Column`].
pub(crate) const NO_VALUE: u32 = u32::MAX;

/// Jaro–Winkler thresholds of the "very similar" and "similar" levels: above 0.92 nearly
/// every pair of different names is a typo of one another, below 0.85 almost none is.
const VERY_SIMILAR: f64 = 0.92;
const SIMILAR: f64 = 0.85;

/// Two swappable fields (given name and surname, street and second address line) are
/// compared crossed when that agrees better by this margin, so that a clean pair of
/// near-identical values is never re-read as a swap.
const SWAP_MARGIN: f64 = 0.1;

/// How a kind of field is compared; the number of levels follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// exact / very similar / similar / different
    Fuzzy,
    /// exact / typo or day-month swap / one of year, month, day differs / different
    Date,
    /// exact / one edit (insertion, deletion, substitution, transposition) / different
    OneEdit,
    /// exact / different
    Binary,
}

impl FieldKind {
    fn comparison(self) -> Comparison {
        match self {
            Self::GivenName
            | Self::Surname
            | Self::Name
            | Self::Street
            | Self::AddressLine
            | Self::City
            | Self::Text => Comparison::Fuzzy,
            Self::DateOfBirth => Comparison::Date,
            // The same mailbox at another provider is as often a namesake as the same person.
            Self::StreetNumber | Self::Postcode | Self::Phone | Self::Identifier | Self::Email => {
                Comparison::OneEdit
            }
            Self::State | Self::Exact => Comparison::Binary,
        }
    }

    /// The agreement levels of this kind, strongest first; the last one is disagreement.
    pub fn level_labels(self) -> &'static [&'static str] {
        match self.comparison() {
            Comparison::Fuzzy if self == Self::GivenName => {
                &["exact", "very similar or nickname", "similar, one typo or initial", "different"]
            }
            Comparison::Fuzzy => &["exact", "very similar", "similar or one typo", "different"],
            Comparison::Date => &["exact", "typo or day/month swap", "one part differs", "different"],
            Comparison::OneEdit => &["exact", "one typo", "different"],
            Comparison::Binary => &["exact", "different"],
        }
    }

    pub(crate) fn level_count(self) -> usize {
        self.level_labels().len()
    }

    /// Whether an exact agreement on a rare value should count for more than on a common one.
    /// States and generic exact codes have too few values for that to mean anything.
    pub(crate) fn uses_term_frequencies(self) -> bool {
        !matches!(self, Self::State | Self::Exact)
    }
}

/// One field of every record: normalised values interned, so that equality is an integer
/// comparison and term frequencies are counts.
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) kind: FieldKind,
    /// Per record, the id of its value in `values`, or [`NO_VALUE`].
    pub(crate) ids: Vec<u32>,
    pub(crate) values: Vec<String>,
    /// Per value id, how many records hold it.
    pub(crate) counts: Vec<u32>,
    pub(crate) present: u32,
}

impl Column {
    pub(crate) fn value(&self, record: usize) -> Option<&str> {
        match self.ids.get(record) {
            Some(&id) if id != NO_VALUE => self.values.get(id as usize).map(String::as_str),
            _ => None,
        }
    }

    /// Probability that two records drawn at random agree exactly on this field, both values
    /// being present: the sum of the squared value frequencies.
    pub(crate) fn random_exact_agreement(&self) -> f64 {
        if self.present == 0 {
            return 0.0;
        }
        let present = f64::from(self.present);
        self.counts.iter().map(|&count| (f64::from(count) / present).powi(2)).sum()
    }
}

/// The records, normalised column by column.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) columns: Vec<Column>,
    /// For each field, the field it may be swapped with.
    partners: Vec<Option<usize>>,
    pub(crate) len: usize,
}

impl Table {
    pub(crate) fn build<K>(schema: &DedupSchema, records: &[DedupRecord<K>]) -> Self {
        let mut columns: Vec<Column> = schema
            .fields
            .iter()
            .map(|(_, kind)| Column {
                kind: *kind,
                ids: Vec::with_capacity(records.len()),
                values: Vec::new(),
                counts: Vec::new(),
                present: 0,
            })
            .collect();
        for (field, column) in columns.iter_mut().enumerate() {
            let mut interned: HashMap<String, u32> = HashMap::new();
            for record in records {
                let normalized = record
                    .values
                    .get(field)
                    .and_then(Option::as_deref)
                    .and_then(|raw| normalize(column.kind, raw));
                let id = match normalized {
                    None => NO_VALUE,
                    Some(value) => {
                        column.present += 1;
                        let next_id = column.values.len() as u32;
                        let id = *interned.entry(value).or_insert(next_id);
                        if id == next_id {
                            column.values.push(String::new());
                            column.counts.push(0);
                        }
                        if let Some(count) = column.counts.get_mut(id as usize) {
                            *count += 1;
                        }
                        id
                    }
                };
                column.ids.push(id);
            }
            for (value, id) in interned {
                if let Some(slot) = column.values.get_mut(id as usize) {
                    *slot = value;
                }
            }
        }
        let partners = swap_partners(schema);
        Self { columns, partners, len: records.len() }
    }

    /// Fills `levels` (one per field) with the agreement levels of records `a` and `b`.
    pub(crate) fn compare(&self, a: usize, b: usize, levels: &mut [u8]) {
        for (field, column) in self.columns.iter().enumerate() {
            let partner = self.partners.get(field).copied().flatten();
            match partner {
                // The pair is compared once, from its first field.
                Some(partner) if partner < field => {}
                Some(partner) => {
                    let (first, second) = self.compare_swappable(field, partner, a, b);
                    if let Some(slot) = levels.get_mut(field) {
                        *slot = first;
                    }
                    if let Some(slot) = levels.get_mut(partner) {
                        *slot = second;
                    }
                }
                None => {
                    if let Some(slot) = levels.get_mut(field) {
                        *slot = compare_ids(column, column.ids[a], column.ids[b]);
                    }
                }
            }
        }
    }

    /// Levels of two swappable fields, read crossed when the values were clearly entered in
    /// each other's field ("Hannagan Mikhayla" for "Mikhayla Hannagan").
    fn compare_swappable(&self, field: usize, partner: usize, a: usize, b: usize) -> (u8, u8) {
        let (first, second) = (&self.columns[field], &self.columns[partner]);
        let (Some(a_first), Some(a_second), Some(b_first), Some(b_second)) =
            (first.value(a), second.value(a), first.value(b), second.value(b))
        else {
            return (
                compare_ids(first, first.ids[a], first.ids[b]),
                compare_ids(second, second.ids[a], second.ids[b]),
            );
        };
        let first_similarity = similarity(a_first, b_first);
        let second_similarity = similarity(a_second, b_second);
        let straight = (
            fuzzy_level(first.kind, a_first, b_first, first_similarity),
            fuzzy_level(second.kind, a_second, b_second, second_similarity),
        );
        // Crossing can add at most 2 to the similarity; no need to try when it cannot win.
        if first_similarity + second_similarity + SWAP_MARGIN >= 2.0 {
            return straight;
        }
        let first_crossed = similarity(a_first, b_second);
        let second_crossed = similarity(a_second, b_first);
        if first_crossed + second_crossed > first_similarity + second_similarity + SWAP_MARGIN {
            (
                fuzzy_level(first.kind, a_first, b_second, first_crossed),
                fuzzy_level(second.kind, a_second, b_first, second_crossed),
            )
        } else {
            straight
        }
    }
}

/// Given name with surname, street with the second address line: the two fields a typist
/// most often swaps. Only when the schema has exactly one of each.
fn swap_partners(schema: &DedupSchema) -> Vec<Option<usize>> {
    let mut partners = vec![None; schema.fields.len()];
    for (left, right) in
        [(FieldKind::GivenName, FieldKind::Surname), (FieldKind::Street, FieldKind::AddressLine)]
    {
        let find = |wanted: FieldKind| {
            let mut positions = schema.fields.iter().enumerate().filter(|(_, (_, kind))| *kind == wanted);
            match (positions.next(), positions.next()) {
                (Some((position, _)), None) => Some(position),
                _ => None,
            }
        };
        if let (Some(left), Some(right)) = (find(left), find(right)) {
            partners[left] = Some(right);
            partners[right] = Some(left);
        }
    }
    partners
}

fn compare_ids(column: &Column, a: u32, b: u32) -> u8 {
    if a == NO_VALUE || b == NO_VALUE {
        return MISSING;
    }
    if a == b {
        return 0;
    }
    match (column.values.get(a as usize), column.values.get(b as usize)) {
        (Some(a), Some(b)) => compare_values(column.kind, a, b),
        _ => MISSING,
    }
}

/// The agreement level of two normalised values of a field of `kind`.
pub(crate) fn compare_values(kind: FieldKind, a: &str, b: &str) -> u8 {
    if a == b {
        return 0;
    }
    match kind.comparison() {
        Comparison::Fuzzy => fuzzy_level(kind, a, b, similarity(a, b)),
        Comparison::Date => compare_dates(a, b),
        Comparison::OneEdit => {
            if within_one_edit(a.as_bytes(), b.as_bytes()) {
                1
            } else {
                2
            }
        }
        Comparison::Binary => 1,
    }
}

/// The level of two values of a fuzzy field whose Jaro–Winkler similarity is `similarity`.
fn fuzzy_level(kind: FieldKind, a: &str, b: &str, similarity: f64) -> u8 {
    if a == b {
        0
    } else if similarity >= VERY_SIMILAR
        || is_typo_of_long_word(a, b)
        || (kind == FieldKind::GivenName && formal_given_name(a) == formal_given_name(b))
    {
        1
    } else if similarity >= SIMILAR
        || within_one_edit(a.as_bytes(), b.as_bytes())
        || (kind == FieldKind::GivenName && is_initial_of(a, b))
    {
        2
    } else {
        3
    }
}

/// Jaro–Winkler undervalues a dropped repeated letter ("hannagan" / "hanagan" is 0.918); one
/// edit in a word of five letters or more is a typo, in a shorter one it may be another name.
fn is_typo_of_long_word(a: &str, b: &str) -> bool {
    a.len().min(b.len()) >= 5 && within_one_edit(a.as_bytes(), b.as_bytes())
}

/// "j" against "john".
fn is_initial_of(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.chars().count() == 1 && long.starts_with(short)
}

/// Dates in `YYYYMMDD`; anything else (an unreadable date) is compared as a string of digits.
fn compare_dates(a: &str, b: &str) -> u8 {
    if within_one_edit(a.as_bytes(), b.as_bytes()) {
        return 1;
    }
    if a.len() != 8 || b.len() != 8 || !a.is_ascii() || !b.is_ascii() {
        return 3;
    }
    let (a_year, a_month, a_day) = (&a[..4], &a[4..6], &a[6..]);
    let (b_year, b_month, b_day) = (&b[..4], &b[4..6], &b[6..]);
    if a_year == b_year && a_month == b_day && a_day == b_month {
        return 1;
    }
    let differing =
        usize::from(a_year != b_year) + usize::from(a_month != b_month) + usize::from(a_day != b_day);
    if differing == 1 { 2 } else { 3 }
}

/// Whether one insertion, deletion, substitution or transposition of adjacent characters
/// turns `a` into `b` (optimal string alignment distance ≤ 1).
pub(crate) fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 => {
            prefix == short.len()
                || short.get(prefix + 1..) == long.get(prefix + 1..)
                || (short.get(prefix) == long.get(prefix + 1)
                    && short.get(prefix + 1) == long.get(prefix)
                    && short.get(prefix + 2..) == long.get(prefix + 2..))
        }
        1 => short.get(prefix..) == long.get(prefix + 1..),
        _ => false,
    }
}

/// Jaro–Winkler similarity; a byte-level implementation for ASCII (the common case after
/// normalisation, and several times faster), `strsim` otherwise.
pub(crate) fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    if a.is_ascii() && b.is_ascii() {
        jaro_winkler_ascii(a.as_bytes(), b.as_bytes())
    } else {
        strsim::jaro_winkler(a, b)
    }
}

/// Same definition as `strsim::jaro_winkler` (match window `max(len)/2 - 1`, prefix of at
/// most four, scaling 0.1 applied above 0.7), without allocating.
fn jaro_winkler_ascii(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (matches, transpositions) =
        if a.len() <= 64 && b.len() <= 64 { jaro_bits(a, b) } else { jaro_loop(a, b) };
    if matches == 0 {
        return 0.0;
    }
    let matches_f = matches as f64;
    let jaro = (matches_f / a.len() as f64
        + matches_f / b.len() as f64
        + (matches - transpositions / 2) as f64 / matches_f)
        / 3.0;
    if jaro <= 0.7 {
        return jaro;
    }
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    jaro + 0.1 * prefix as f64 * (1.0 - jaro)
}

/// Matches and half-transpositions of Jaro for strings of at most 64 bytes, with one bit per
/// position: each character of `a` takes the first free equal character of `b` in its window.
fn jaro_bits(a: &[u8], b: &[u8]) -> (usize, usize) {
    let below = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut positions = [0u64; 128];
    for (j, &c) in b.iter().enumerate() {
        positions[usize::from(c & 0x7F)] |= 1 << j;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let (mut a_matched, mut b_matched) = (0u64, 0u64);
    for (i, &c) in a.iter().enumerate() {
        let range = below((i + window + 1).min(b.len())) & !below(i.saturating_sub(window));
        let candidates = positions[usize::from(c & 0x7F)] & range & !b_matched;
        if candidates != 0 {
            b_matched |= candidates & candidates.wrapping_neg();
            a_matched |= 1 << i;
        }
    }
    let matches = a_matched.count_ones() as usize;
    let mut transpositions = 0;
    while a_matched != 0 {
        let (i, j) = (a_matched.trailing_zeros() as usize, b_matched.trailing_zeros() as usize);
        if a.get(i) != b.get(j) {
            transpositions += 1;
        }
        a_matched &= a_matched - 1;
        b_matched &= b_matched - 1;
    }
    (matches, transpositions)
}

/// The same for longer strings.
fn jaro_loop(a: &[u8], b: &[u8]) -> (usize, usize) {
    let mut a_flags = vec![false; a.len()];
    let mut b_flags = vec![false; b.len()];
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut matches = 0usize;
    for (i, &a_char) in a.iter().enumerate() {
        let start = i.saturating_sub(window);
        let end = (i + window + 1).min(b.len());
        for j in start..end {
            if !b_flags[j] && b[j] == a_char {
                a_flags[i] = true;
                b_flags[j] = true;
                matches += 1;
                break;
            }
        }
    }
    let mut transpositions = 0usize;
    let mut b_matched = b.iter().zip(b_flags.iter()).filter(|(_, flag)| **flag).map(|(c, _)| c);
    for (a_char, _) in a.iter().zip(a_flags.iter()).filter(|(_, flag)| **flag) {
        if b_matched.next() != Some(a_char) {
            transpositions += 1;
        }
    }
    (matches, transpositions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaro_winkler_matches_strsim() {
        let words = [
            "martha",
            "marhta",
            "dixon",
            "dicksonx",
            "jellyfish",
            "smellyfish",
            "a",
            "",
            "abc",
            "cba",
            "hannagan",
            "hannaan",
            "kevinstreet",
            "kevintreet",
            "mikhayla",
            "mikhvyla",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaba",
        ];
        for a in words {
            for b in words {
                let ours = similarity(a, b);
                let reference = strsim::jaro_winkler(a, b);
                assert!((ours - reference).abs() < 1e-12, "{a} / {b}: {ours} vs {reference}");
            }
        }
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit(b"4223", b"4223"));
        assert!(within_one_edit(b"4223", b"4233"));
        assert!(within_one_edit(b"4223", b"2423"));
        assert!(within_one_edit(b"4223", b"423"));
        assert!(within_one_edit(b"4223", b"42235"));
        assert!(!within_one_edit(b"4223", b"3224"));
        assert!(!within_one_edit(b"4223", b"42"));
        assert!(!within_one_edit(b"5162", b"5612x"));
    }

    #[test]
    fn name_levels() {
        assert_eq!(compare_values(FieldKind::Surname, "hannagan", "hannagan"), 0);
        assert_eq!(compare_values(FieldKind::Surname, "hannagan", "hannaan"), 1);
        assert_eq!(compare_values(FieldKind::Surname, "siggins", "siggyins"), 1);
        assert_eq!(compare_values(FieldKind::Surname, "hannagan", "paulka"), 3);
        assert_eq!(compare_values(FieldKind::GivenName, "bill", "william"), 1);
        assert_eq!(compare_values(FieldKind::GivenName, "j", "john"), 2);
        assert_eq!(compare_values(FieldKind::Surname, "j", "john"), 3);
    }

    #[test]
    fn date_levels() {
        assert_eq!(compare_values(FieldKind::DateOfBirth, "19151111", "19151111"), 0);
        assert_eq!(compare_values(FieldKind::DateOfBirth, "19021119", "19021219"), 1);
        assert_eq!(compare_values(FieldKind::DateOfBirth, "19850307", "19850703"), 1);
        assert_eq!(compare_values(FieldKind::DateOfBirth, "19850307", "19850328"), 2);
        assert_eq!(compare_values(FieldKind::DateOfBirth, "19850307", "19620307"), 2);
        assert_eq!(compare_values(FieldKind::DateOfBirth, "19850307", "19621224"), 3);
    }

    #[test]
    fn other_levels() {
        assert_eq!(compare_values(FieldKind::Postcode, "5162", "5612"), 1);
        assert_eq!(compare_values(FieldKind::Postcode, "5162", "2283"), 2);
        assert_eq!(compare_values(FieldKind::State, "vic", "vci"), 1);
        assert_eq!(compare_values(FieldKind::Email, "ada@example.com", "ada@exmaple.com"), 1);
        assert_eq!(compare_values(FieldKind::Email, "ada@example.com", "ada@example.org"), 2);
        assert_eq!(compare_values(FieldKind::Email, "ada@example.com", "bob@example.com"), 2);
    }

    fn table(rows: &[[&str; 3]]) -> Table {
        let schema = DedupSchema::new([
            ("given", FieldKind::GivenName),
            ("surname", FieldKind::Surname),
            ("dob", FieldKind::DateOfBirth),
        ]);
        let records: Vec<DedupRecord<u64>> = rows
            .iter()
            .enumerate()
            .map(|(key, row)| DedupRecord {
                key: key as u64,
                values: row.iter().map(|value| (!value.is_empty()).then(|| (*value).to_owned())).collect(),
            })
            .collect();
        Table::build(&schema, &records)
    }

    #[test]
    fn swapped_names_compare_crossed_and_missing_values_are_missing() {
        let table = table(&[
            ["Mikhayla", "Hannagan", "1977-05-01"],
            ["hannagan", "mikhayla", ""],
            ["Mikhayla", "Hanagan", "19770501"],
        ]);
        let mut levels = [0u8; 3];
        table.compare(0, 1, &mut levels);
        assert_eq!(levels, [0, 0, MISSING]);
        table.compare(0, 2, &mut levels);
        assert_eq!(levels, [0, 1, 0]);
    }
}
