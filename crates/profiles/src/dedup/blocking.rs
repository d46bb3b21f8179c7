//! Blocking: which pairs of records are worth comparing at all.
//!
//! Comparing every pair is quadratic (5·10⁹ pairs for 100,000 records). Instead each record
//! gets several keys, each built from a few fields and tolerant of the typos the others are
//! not (the sounds of the names, the birth date, the postcode with the street number, ...), and
//! only records sharing at least one key are compared. A duplicate is lost only when every
//! key was damaged. Blocks larger than the configured cap (a placeholder birth date, a city
//! everyone lives in) are not compared in full but along a sliding window over the records
//! sorted by name, which keeps the work near-linear.

use super::FieldKind;
use super::compare::Table;
use super::normalize::soundex;

/// Records compared with each of their neighbours in an oversized block sorted by name.
const OVERSIZED_BLOCK_WINDOW: usize = 16;

/// Names used in keys: at most this many tokens per record.
const MAX_NAME_TOKENS: usize = 4;

/// Which rule a key comes from, so that equal parts from different rules never collide.
/// "Sound" is the Soundex code of a name; "town" the postcode, or the city without one.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum Rule {
    /// The sounds of two names, in either order (survives swapped names).
    NamesSound = 1,
    BirthDate,
    /// The sound of one name and the birth year.
    NameSoundBirthYear,
    /// The sound of one name and the town.
    NameSoundPostcode,
    PostcodeStreetNumber,
    /// The start of the street and the house number.
    StreetStreetNumber,
    /// Birth day and month, and the town.
    BirthDayPostcode,
    /// Any address line and the start of the city.
    AddressLineTown,
    /// The sound of one name and the start of any address line.
    NameSoundStreet,
    /// An email, phone or identifier.
    Strong,
}

/// The candidate pairs, each `(a << 32) | b` with `a < b`, sorted and without repetition.
pub(crate) fn candidate_pairs(table: &Table, max_block_size: usize) -> Vec<u64> {
    let mut keys: Vec<(u64, u32)> = Vec::with_capacity(table.len * 8);
    let fields = FieldsByRole::of(table);
    let mut record_keys = Vec::new();
    for record in 0..table.len {
        record_keys.clear();
        keys_of(table, &fields, record, &mut record_keys);
        keys.extend(record_keys.iter().map(|&key| (key, record as u32)));
    }
    keys.sort_unstable();
    keys.dedup();

    let mut pairs: Vec<u64> = Vec::new();
    let mut members: Vec<u32> = Vec::new();
    for block in keys.chunk_by(|left, right| left.0 == right.0) {
        if block.len() < 2 {
            continue;
        }
        members.clear();
        members.extend(block.iter().map(|&(_, record)| record));
        if members.len() <= max_block_size {
            for (position, &a) in members.iter().enumerate() {
                for &b in &members[position + 1..] {
                    pairs.push(pair_code(a, b));
                }
            }
        } else {
            members.sort_by(|&left, &right| {
                sort_key(table, &fields, left).cmp(&sort_key(table, &fields, right))
            });
            for (position, &a) in members.iter().enumerate() {
                for &b in members.iter().skip(position + 1).take(OVERSIZED_BLOCK_WINDOW) {
                    pairs.push(pair_code(a, b));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fn pair_code(a: u32, b: u32) -> u64 {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    (u64::from(low) << 32) | u64::from(high)
}

pub(crate) fn split_pair(code: u64) -> (usize, usize) {
    ((code >> 32) as usize, (code & 0xFFFF_FFFF) as usize)
}

/// The columns playing each role in the keys, found once from the schema.
struct FieldsByRole {
    names: Vec<usize>,
    full_names: Vec<usize>,
    birth_date: Option<usize>,
    postcode: Option<usize>,
    city: Option<usize>,
    street: Option<usize>,
    street_number: Option<usize>,
    /// Street and other address lines, which typists swap.
    address_lines: Vec<usize>,
    strong: Vec<usize>,
}

impl FieldsByRole {
    fn of(table: &Table) -> Self {
        let positions = |wanted: &[FieldKind]| -> Vec<usize> {
            table
                .columns
                .iter()
                .enumerate()
                .filter(|(_, column)| wanted.contains(&column.kind))
                .map(|(i, _)| i)
                .collect()
        };
        let first = |wanted: FieldKind| positions(&[wanted]).first().copied();
        Self {
            names: positions(&[FieldKind::GivenName, FieldKind::Surname]),
            full_names: positions(&[FieldKind::Name]),
            birth_date: first(FieldKind::DateOfBirth),
            postcode: first(FieldKind::Postcode),
            city: first(FieldKind::City),
            street: first(FieldKind::Street),
            street_number: first(FieldKind::StreetNumber),
            address_lines: positions(&[FieldKind::Street, FieldKind::AddressLine]),
            strong: positions(&[FieldKind::Email, FieldKind::Phone, FieldKind::Identifier, FieldKind::Exact]),
        }
    }
}

/// The kinds of pairs of different people each rule brings together, as the fields they
/// agree on: per rule whose fields the schema has, a label and those fields. A town brings
/// its postcode and state along, so any of them stands for all.
pub(crate) fn coincidences(table: &Table) -> Vec<(&'static str, Vec<usize>)> {
    let fields = FieldsByRole::of(table);
    let names: Vec<usize> = fields.names.iter().chain(&fields.full_names).copied().collect();
    let place: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, column)| matches!(column.kind, FieldKind::City | FieldKind::Postcode | FieldKind::State))
        .map(|(field, _)| field)
        .collect();
    let has_place = fields.postcode.is_some() || fields.city.is_some();
    let join =
        |parts: &[&[usize]]| -> Vec<usize> { parts.iter().flat_map(|part| part.iter().copied()).collect() };
    let birth: Vec<usize> = fields.birth_date.into_iter().collect();
    let number: Vec<usize> = fields.street_number.into_iter().collect();
    let street: Vec<usize> = fields.street.into_iter().collect();
    let mut coincidences = Vec::new();
    if !names.is_empty() {
        coincidences.push(("same name", names.clone()));
    }
    if !birth.is_empty() {
        coincidences.push(("same birth date", birth.clone()));
    }
    // These keys hold the sound of one name, so strangers meet on one name at a time.
    let singles: Vec<Vec<usize>> = fields
        .names
        .iter()
        .map(|&field| vec![field])
        .chain((!fields.full_names.is_empty()).then(|| fields.full_names.clone()))
        .collect();
    for single in &singles {
        let kind = single.first().and_then(|&field| table.columns.get(field)).map(|column| column.kind);
        let (with_year, with_town) = match kind {
            Some(FieldKind::GivenName) => ("same given name and birth year", "same given name and town"),
            Some(FieldKind::Surname) => ("same surname and birth year", "same surname and town"),
            _ => ("same name and birth year", "same name and town"),
        };
        if !birth.is_empty() {
            coincidences.push((with_year, join(&[single, &birth])));
        }
        if has_place {
            coincidences.push((with_town, join(&[single, &place])));
        }
    }
    if has_place && !number.is_empty() {
        coincidences.push(("same town and house number", join(&[&place, &number])));
    }
    if !street.is_empty() && !number.is_empty() {
        coincidences.push(("same street and number", join(&[&street, &number])));
    } else if !street.is_empty() && has_place {
        coincidences.push(("same street", join(&[&street, &place])));
    }
    if !birth.is_empty() && has_place {
        coincidences.push(("same birthday and town", join(&[&birth, &place])));
    }
    if !fields.address_lines.is_empty() && has_place {
        coincidences.push(("same address line and town", join(&[&fields.address_lines, &place])));
    }
    if !fields.address_lines.is_empty() {
        for single in &singles {
            let label =
                match single.first().and_then(|&field| table.columns.get(field)).map(|column| column.kind) {
                    Some(FieldKind::GivenName) => "same given name and street",
                    Some(FieldKind::Surname) => "same surname and street",
                    _ => "same name and street",
                };
            coincidences.push((label, join(&[single, &fields.address_lines])));
        }
    }
    for &field in &fields.strong {
        let label = match table.columns.get(field).map(|column| column.kind) {
            Some(FieldKind::Email) => "same email",
            Some(FieldKind::Phone) => "same phone",
            Some(FieldKind::Identifier) => "same identifier",
            _ => "same code",
        };
        coincidences.push((label, vec![field]));
    }
    coincidences
}

fn value(table: &Table, field: Option<usize>, record: usize) -> Option<&str> {
    table.columns.get(field?)?.value(record)
}

fn sort_key<'a>(table: &'a Table, fields: &FieldsByRole, record: u32) -> Vec<&'a str> {
    let record = record as usize;
    fields
        .names
        .iter()
        .chain(&fields.full_names)
        .map(|&field| Some(field))
        .chain([fields.birth_date])
        .map(|field| value(table, field, record).unwrap_or(""))
        .collect()
}

/// FNV-1a over the rule and the parts, each part terminated so that ("ab", "c") and
/// ("a", "bc") differ. A collision only adds a spurious candidate pair.
fn key(rule: Rule, parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    };
    eat(rule as u8);
    for part in parts {
        for &byte in *part {
            eat(byte);
        }
        eat(0xFF);
    }
    hash
}

fn keys_of(table: &Table, fields: &FieldsByRole, record: usize, out: &mut Vec<u64>) {
    let mut sounds: Vec<[u8; 4]> = Vec::with_capacity(MAX_NAME_TOKENS);
    let tokens = fields.names.iter().filter_map(|&field| value(table, Some(field), record)).chain(
        fields
            .full_names
            .iter()
            .filter_map(|&field| value(table, Some(field), record))
            .flat_map(|name| name.split(' ')),
    );
    for token in tokens.take(MAX_NAME_TOKENS) {
        if let Some(sound) = soundex(token) {
            sounds.push(sound);
        }
    }
    let birth_date = value(table, fields.birth_date, record);
    let birth_year = birth_date.filter(|date| date.len() == 8).and_then(|date| date.get(..4));
    let birth_day = birth_date.filter(|date| date.len() == 8).and_then(|date| date.get(4..));
    let postcode = value(table, fields.postcode, record);
    let place = postcode.or_else(|| value(table, fields.city, record));
    let street = value(table, fields.street, record);
    let street_number = value(table, fields.street_number, record);

    // Both names by sound, in either order: survives typos past the first letter and swaps.
    for (position, first) in sounds.iter().enumerate() {
        for second in &sounds[position + 1..] {
            let (low, high) = if first <= second { (first, second) } else { (second, first) };
            out.push(key(Rule::NamesSound, &[low, high]));
        }
    }
    if let Some(date) = birth_date {
        out.push(key(Rule::BirthDate, &[date.as_bytes()]));
    }
    for sound in &sounds {
        if let Some(year) = birth_year {
            out.push(key(Rule::NameSoundBirthYear, &[sound, year.as_bytes()]));
        }
        if let Some(place) = place {
            out.push(key(Rule::NameSoundPostcode, &[sound, place.as_bytes()]));
        }
    }
    if let (Some(place), Some(number)) = (place, street_number) {
        out.push(key(Rule::PostcodeStreetNumber, &[place.as_bytes(), number.as_bytes()]));
    }
    if let Some(street) = street {
        let prefix = street.as_bytes().get(..5).unwrap_or(street.as_bytes());
        match street_number {
            Some(number) => out.push(key(Rule::StreetStreetNumber, &[prefix, number.as_bytes()])),
            None => {
                if let Some(place) = place {
                    out.push(key(Rule::StreetStreetNumber, &[street.as_bytes(), place.as_bytes()]));
                }
            }
        }
    }
    if let (Some(day), Some(place)) = (birth_day, place) {
        out.push(key(Rule::BirthDayPostcode, &[day.as_bytes(), place.as_bytes()]));
    }
    // Any address line, whichever field it was typed in, with the start of the town (the
    // city, which a postcode typo leaves alone; its start survives most typos).
    let lines = || fields.address_lines.iter().filter_map(|&field| value(table, Some(field), record));
    if let Some(town) = value(table, fields.city, record).or(place) {
        let town = town.as_bytes().get(..3).unwrap_or(town.as_bytes());
        for line in lines() {
            out.push(key(Rule::AddressLineTown, &[line.as_bytes(), town]));
        }
    }
    // A name with the start of an address line: a duplicate whose town and birth date are
    // damaged, and the members of a household.
    for sound in &sounds {
        for line in lines() {
            let start = line.as_bytes().get(..4).unwrap_or(line.as_bytes());
            out.push(key(Rule::NameSoundStreet, &[sound, start]));
        }
    }
    for &field in &fields.strong {
        if let Some(value) = value(table, Some(field), record) {
            out.push(key(Rule::Strong, &[&(field as u32).to_le_bytes(), value.as_bytes()]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::{DedupRecord, DedupSchema};

    fn table(rows: &[[&str; 5]]) -> Table {
        let schema = DedupSchema::new([
            ("given", FieldKind::GivenName),
            ("surname", FieldKind::Surname),
            ("dob", FieldKind::DateOfBirth),
            ("number", FieldKind::StreetNumber),
            ("postcode", FieldKind::Postcode),
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
    fn typoed_and_swapped_duplicates_share_a_block_and_strangers_do_not() {
        let table = table(&[
            ["mikhayla", "hannagan", "19770501", "20", "2257"],
            ["hannagan", "mikhayla", "", "", ""],
            ["nikhayla", "hannagan", "19770510", "", "2257"],
            ["zac", "crosswell", "19870929", "5", "3931"],
        ]);
        let pairs: Vec<(usize, usize)> = candidate_pairs(&table, 100).into_iter().map(split_pair).collect();
        assert!(pairs.contains(&(0, 1)), "{pairs:?}");
        assert!(pairs.contains(&(0, 2)), "{pairs:?}");
        assert!(!pairs.iter().any(|&(a, b)| a == 3 || b == 3), "{pairs:?}");
    }

    #[test]
    fn oversized_blocks_are_windowed() {
        let rows: Vec<[&str; 5]> = (0..200).map(|_| ["", "", "19000101", "", ""]).collect();
        let table = table(&rows);
        let pairs = candidate_pairs(&table, 50);
        assert!(pairs.len() <= 200 * OVERSIZED_BLOCK_WINDOW, "{}", pairs.len());
        assert!(!pairs.is_empty());
    }
}
