//! Normalisation of raw values before they are compared, blocked on or counted.
//!
//! Every value goes through [`normalize`] once; comparisons, blocking keys and term
//! frequencies all work on the normalised form, so `José  O'Brien` and `jose obrien` are the
//! same value and two typists' spacing choices never count as a disagreement.

use super::FieldKind;
use std::collections::HashMap;
use std::sync::LazyLock;
use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Placeholders that data-entry systems write instead of leaving a field empty.
const MISSING_PLACEHOLDERS: &[&str] = &["null", "none", "n/a", "unknown", "-", "?", "nil"];

/// Honorifics dropped from full names: they say nothing about who the person is.
const TITLES: &[&str] = &["mr", "mrs", "ms", "miss", "mme", "mlle", "m", "dr", "prof", "sir"];

/// Street types, their abbreviations expanded, so `12 Kevin St` and `12 Kevin Street` agree.
const STREET_TYPES: &[(&str, &str)] = &[
    ("st", "street"),
    ("str", "street"),
    ("rd", "road"),
    ("ave", "avenue"),
    ("av", "avenue"),
    ("blvd", "boulevard"),
    ("bd", "boulevard"),
    ("bvd", "boulevard"),
    ("dr", "drive"),
    ("drv", "drive"),
    ("ln", "lane"),
    ("ct", "court"),
    ("crt", "court"),
    ("pl", "place"),
    ("cres", "crescent"),
    ("cr", "crescent"),
    ("cct", "circuit"),
    ("cir", "circuit"),
    ("tce", "terrace"),
    ("terr", "terrace"),
    ("hwy", "highway"),
    ("pde", "parade"),
    ("sq", "square"),
    ("cl", "close"),
    ("gr", "grove"),
    ("pkwy", "parkway"),
    ("ch", "chemin"),
    ("imp", "impasse"),
    ("fbg", "faubourg"),
    ("rte", "route"),
    ("apt", "apartment"),
    ("bldg", "building"),
    ("vlge", "village"),
];

/// Words that are abbreviated anywhere in a place name.
const PLACE_WORDS: &[(&str, &str)] = &[
    ("st", "saint"),
    ("ste", "sainte"),
    ("mt", "mount"),
    ("ft", "fort"),
    ("pt", "port"),
    ("nth", "north"),
    ("sth", "south"),
    ("e", "east"),
    ("w", "west"),
];

/// Common diminutives and their formal given name. A nickname agreeing with the formal name
/// is strong (not exact) agreement, which is how people fill in forms.
pub(crate) const NICKNAMES: &[(&str, &str)] = &[
    ("bob", "robert"),
    ("rob", "robert"),
    ("robbie", "robert"),
    ("bobby", "robert"),
    ("bill", "william"),
    ("will", "william"),
    ("billy", "william"),
    ("jim", "james"),
    ("jimmy", "james"),
    ("jamie", "james"),
    ("mike", "michael"),
    ("mick", "michael"),
    ("micky", "michael"),
    ("dave", "david"),
    ("davy", "david"),
    ("dan", "daniel"),
    ("danny", "daniel"),
    ("tom", "thomas"),
    ("tommy", "thomas"),
    ("chris", "christopher"),
    ("kit", "christopher"),
    ("nick", "nicholas"),
    ("nicky", "nicholas"),
    ("tony", "anthony"),
    ("steve", "stephen"),
    ("ed", "edward"),
    ("eddie", "edward"),
    ("ted", "edward"),
    ("johnny", "john"),
    ("joe", "joseph"),
    ("joey", "joseph"),
    ("sam", "samuel"),
    ("ben", "benjamin"),
    ("benny", "benjamin"),
    ("alex", "alexander"),
    ("sandy", "alexander"),
    ("andy", "andrew"),
    ("drew", "andrew"),
    ("matt", "matthew"),
    ("pete", "peter"),
    ("rick", "richard"),
    ("dick", "richard"),
    ("rich", "richard"),
    ("greg", "gregory"),
    ("charlie", "charles"),
    ("chuck", "charles"),
    ("harry", "henry"),
    ("hank", "henry"),
    ("fred", "frederick"),
    ("larry", "lawrence"),
    ("josh", "joshua"),
    ("zac", "zachary"),
    ("zach", "zachary"),
    ("jon", "jonathan"),
    ("nate", "nathan"),
    ("tim", "timothy"),
    ("ron", "ronald"),
    ("don", "donald"),
    ("ken", "kenneth"),
    ("kenny", "kenneth"),
    ("jeff", "jeffrey"),
    ("phil", "philip"),
    ("ray", "raymond"),
    ("gerry", "gerald"),
    ("liz", "elizabeth"),
    ("beth", "elizabeth"),
    ("betty", "elizabeth"),
    ("lizzie", "elizabeth"),
    ("eliza", "elizabeth"),
    ("kate", "katherine"),
    ("katie", "katherine"),
    ("kathy", "katherine"),
    ("cathy", "catherine"),
    ("kat", "katherine"),
    ("jenny", "jennifer"),
    ("jen", "jennifer"),
    ("sue", "susan"),
    ("susie", "susan"),
    ("maggie", "margaret"),
    ("meg", "margaret"),
    ("peggy", "margaret"),
    ("maddie", "madeline"),
    ("becky", "rebecca"),
    ("becca", "rebecca"),
    ("vicky", "victoria"),
    ("tori", "victoria"),
    ("abby", "abigail"),
    ("pam", "pamela"),
    ("patty", "patricia"),
    ("trish", "patricia"),
    ("debbie", "deborah"),
    ("deb", "deborah"),
    ("jess", "jessica"),
    ("jessie", "jessica"),
    ("steph", "stephanie"),
    ("mandy", "amanda"),
    ("mel", "melissa"),
    ("nat", "natalie"),
    ("em", "emily"),
    ("emmy", "emily"),
    ("annie", "anne"),
    ("ann", "anne"),
    ("molly", "mary"),
    ("polly", "mary"),
    ("sally", "sarah"),
    ("sara", "sarah"),
    ("jojo", "josephine"),
    ("josie", "josephine"),
    ("fran", "frances"),
    ("frankie", "francis"),
    ("frank", "francis"),
    ("gabi", "gabrielle"),
    ("gaby", "gabrielle"),
    ("manu", "emmanuel"),
    ("jb", "jeanbaptiste"),
];

/// The formal given name a nickname stands for, or the name itself.
pub(crate) fn formal_given_name(name: &str) -> &str {
    static FORMAL: LazyLock<HashMap<&'static str, &'static str>> =
        LazyLock::new(|| NICKNAMES.iter().copied().collect());
    FORMAL.get(name).copied().unwrap_or(name)
}

/// Lower-case, accents removed, every run of non-alphanumeric characters turned into one
/// space, trimmed.
pub(crate) fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    };
    if raw.is_ascii() {
        for c in raw.chars() {
            push(c, &mut out);
        }
    } else {
        for c in raw.nfd() {
            if is_combining_mark(c) {
                continue;
            }
            // Letters that do not decompose into a base letter and a mark.
            match c {
                'ß' => "ss".chars().for_each(|c| push(c, &mut out)),
                'æ' | 'Æ' => "ae".chars().for_each(|c| push(c, &mut out)),
                'œ' | 'Œ' => "oe".chars().for_each(|c| push(c, &mut out)),
                'ø' | 'Ø' => push('o', &mut out),
                'ł' | 'Ł' => push('l', &mut out),
                'đ' | 'Đ' => push('d', &mut out),
                _ => push(c, &mut out),
            }
        }
    }
    out
}

fn is_placeholder(raw: &str) -> bool {
    let trimmed = raw.trim();
    trimmed.is_empty()
        || MISSING_PLACEHOLDERS.iter().any(|placeholder| trimmed.eq_ignore_ascii_case(placeholder))
}

/// The normalised form of a raw value, or `None` when it carries no information.
pub(crate) fn normalize(kind: FieldKind, raw: &str) -> Option<String> {
    if is_placeholder(raw) {
        return None;
    }
    let folded = fold(raw);
    let normalized = match kind {
        // Spaces inside a name or a street are where typists disagree most ("Mc Donald",
        // "brentwood vlge" / "brentwoo dvlge"), and they carry no identity.
        FieldKind::GivenName | FieldKind::Surname => folded.split(' ').collect(),
        FieldKind::Name => {
            let mut tokens: Vec<&str> =
                folded.split(' ').filter(|token| !TITLES.contains(token) && !token.is_empty()).collect();
            // Sorted so that "Ada Lovelace" and "Lovelace, Ada" are the same name.
            tokens.sort_unstable();
            tokens.join(" ")
        }
        FieldKind::Street => expand_street(&folded),
        FieldKind::AddressLine => {
            folded.split(' ').map(|token| lookup(STREET_TYPES, token).unwrap_or(token)).collect()
        }
        FieldKind::City => {
            folded.split(' ').map(|token| lookup(PLACE_WORDS, token).unwrap_or(token)).collect()
        }
        FieldKind::StreetNumber | FieldKind::Postcode | FieldKind::State | FieldKind::Identifier => {
            folded.split(' ').collect()
        }
        FieldKind::Exact | FieldKind::Text => folded,
        FieldKind::DateOfBirth => normalize_date(raw)?,
        FieldKind::Email => normalize_email(raw)?,
        FieldKind::Phone => normalize_phone(raw)?,
    };
    if normalized.is_empty() { None } else { Some(normalized) }
}

fn lookup<'a>(table: &'a [(&str, &str)], token: &str) -> Option<&'a str> {
    table.iter().find(|(abbreviation, _)| *abbreviation == token).map(|(_, full)| *full)
}

/// The last word of a street is its type ("st" = street); a leading "st" is a saint.
fn expand_street(folded: &str) -> String {
    let tokens: Vec<&str> = folded.split(' ').collect();
    let last = tokens.len().saturating_sub(1);
    let mut out = String::with_capacity(folded.len() + 8);
    for (position, token) in tokens.iter().enumerate() {
        let expanded = if position == last && position > 0 {
            lookup(STREET_TYPES, token)
        } else if position == 0 && tokens.len() > 1 {
            lookup(PLACE_WORDS, token)
        } else {
            None
        };
        out.push_str(expanded.unwrap_or(token));
    }
    out
}

/// `YYYYMMDD` for the formats people actually type (`1985-03-07`, `19850307`, `07/03/1985`,
/// `7.3.1985`). A mistyped part keeps its digits in place (`07/03/19855` gives `198550307`)
/// so that the typo stays one edit away from the right date; anything else gives its digits.
fn normalize_date(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split(|c: char| !c.is_ascii_digit()).filter(|part| !part.is_empty()).collect();
    let pad = |part: &str| if part.len() == 1 { format!("0{part}") } else { part.to_owned() };
    let date = match parts.as_slice() {
        [year, month, day] if year.len() >= 3 => Some((*year, *month, *day)),
        // Day first: the European convention, and the only unambiguous reading of 31/12.
        [day, month, year] if year.len() >= 3 => Some((*year, *month, *day)),
        _ => None,
    };
    if let Some((year, month, day)) = date {
        return Some(format!("{year}{}{}", pad(month), pad(day)));
    }
    let digits: String = parts.concat();
    if digits.len() < 4 { None } else { Some(digits) }
}

fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.contains('@') { Some(email) } else { None }
}

/// The last nine digits: drops the country code and the trunk prefix, so `06 12 34 56 78` and
/// `+33 6 12 34 56 78` agree without knowing the country.
fn normalize_phone(raw: &str) -> Option<String> {
    let digits: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return None;
    }
    Some(digits[digits.len().saturating_sub(9)..].iter().collect())
}

/// American Soundex of the letters of a normalised value (`R163` for "robert" and "rupert"),
/// used for blocking: robust to most typos after the first letter.
pub(crate) fn soundex(value: &str) -> Option<[u8; 4]> {
    let mut letters = value.bytes().filter(u8::is_ascii_alphabetic);
    let first = letters.next()?;
    let mut code = [first.to_ascii_uppercase(), b'0', b'0', b'0'];
    let mut previous = soundex_digit(first);
    let mut length = 1;
    for letter in letters {
        let digit = soundex_digit(letter);
        if digit != 0 && digit != previous {
            code[length] = digit;
            length += 1;
            if length == 4 {
                break;
            }
        }
        // h and w do not separate two letters with the same code; vowels do.
        if !matches!(letter, b'h' | b'w') {
            previous = digit;
        }
    }
    Some(code)
}

fn soundex_digit(letter: u8) -> u8 {
    match letter {
        b'b' | b'f' | b'p' | b'v' => b'1',
        b'c' | b'g' | b'j' | b'k' | b'q' | b's' | b'x' | b'z' => b'2',
        b'd' | b't' => b'3',
        b'l' => b'4',
        b'm' | b'n' => b'5',
        b'r' => b'6',
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_punctuation() {
        assert_eq!(fold("  José  O'Brien-Smith "), "jose o brien smith");
        assert_eq!(fold("Straße Œuvre"), "strasse oeuvre");
    }

    #[test]
    fn normalizes_each_kind() {
        assert_eq!(normalize(FieldKind::Surname, "Mc Donald").as_deref(), Some("mcdonald"));
        assert_eq!(normalize(FieldKind::Name, "Mr. Lovelace, Ada").as_deref(), Some("ada lovelace"));
        assert_eq!(normalize(FieldKind::Street, "Kevin St.").as_deref(), Some("kevinstreet"));
        assert_eq!(normalize(FieldKind::Street, "St Kilda Rd").as_deref(), Some("saintkildaroad"));
        assert_eq!(normalize(FieldKind::City, "St Albans").as_deref(), Some("saintalbans"));
        assert_eq!(normalize(FieldKind::DateOfBirth, "1985-3-7").as_deref(), Some("19850307"));
        assert_eq!(normalize(FieldKind::DateOfBirth, "07/03/1985").as_deref(), Some("19850307"));
        assert_eq!(normalize(FieldKind::DateOfBirth, "19850307").as_deref(), Some("19850307"));
        assert_eq!(normalize(FieldKind::DateOfBirth, "7.3.19855").as_deref(), Some("198550307"));
        assert_eq!(normalize(FieldKind::Phone, "+33 6 12 34 56 78").as_deref(), Some("612345678"));
        assert_eq!(normalize(FieldKind::Phone, "06 12 34 56 78").as_deref(), Some("612345678"));
        assert_eq!(normalize(FieldKind::Email, " Ada@Example.com").as_deref(), Some("ada@example.com"));
        assert_eq!(normalize(FieldKind::Postcode, "SW1A 1AA").as_deref(), Some("sw1a1aa"));
    }

    #[test]
    fn placeholders_and_blanks_are_missing() {
        assert_eq!(normalize(FieldKind::Surname, "   "), None);
        assert_eq!(normalize(FieldKind::Surname, "N/A"), None);
        assert_eq!(normalize(FieldKind::Surname, "--"), None);
        assert_eq!(normalize(FieldKind::DateOfBirth, "12"), None);
    }

    #[test]
    fn soundex_codes() {
        assert_eq!(soundex("robert"), Some(*b"R163"));
        assert_eq!(soundex("rupert"), Some(*b"R163"));
        assert_eq!(soundex("ashcraft"), Some(*b"A261"));
        assert_eq!(soundex("tymczak"), Some(*b"T522"));
        assert_eq!(soundex("lee"), Some(*b"L000"));
        assert_eq!(soundex("123"), None);
    }

    #[test]
    fn nicknames_map_to_formal_names() {
        assert_eq!(formal_given_name("bill"), "william");
        assert_eq!(formal_given_name("william"), "william");
    }
}
