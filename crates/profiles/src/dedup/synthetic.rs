//! Seeded synthetic person records with duplicates and their ground truth, to test and
//! benchmark deduplication (and to fill a demo workspace).
//!
//! People have Zipf-distributed given names and surnames (a long tail of generated surnames),
//! birth dates, and addresses in cities of very different sizes; some share a household
//! (surname and address, and for twins the birth date too), which is what makes a realistic
//! set hard. A share of people get duplicates, each damaged the way records are in practice:
//! typos (insertion, deletion, substitution by a neighbouring key, transposition),
//! nicknames and initials, given name and surname swapped, day and month swapped, missing
//! values, abbreviated street types, a new address after a move, formatting noise.

use super::normalize::NICKNAMES;
use super::random::SplitMix64;
use super::{DedupRecord, DedupSchema, FieldKind};
use std::collections::HashMap;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Distinct people.
    pub people: usize,
    /// Share of people who have at least one duplicate.
    pub duplicate_share: f64,
    /// Most duplicates of one person.
    pub max_duplicates: usize,
    /// Corruptions applied to each duplicate: between 1 and this many.
    pub max_corruptions: usize,
    /// Share of people living with an earlier person (same surname and address).
    pub household_share: f64,
    /// Share of those household members who are twins (same birth date).
    pub twin_share: f64,
    /// Share of duplicates entered after the person moved: a whole new address.
    pub move_share: f64,
    /// Add email and phone columns (often missing).
    pub contact_fields: bool,
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            people: 10_000,
            duplicate_share: 0.15,
            max_duplicates: 3,
            max_corruptions: 3,
            household_share: 0.05,
            twin_share: 0.01,
            move_share: 0.02,
            contact_fields: false,
            seed: 42,
        }
    }
}

/// Generated records, keyed by their position, and who each one really is.
#[derive(Debug, Clone)]
pub struct SyntheticDataset {
    pub schema: DedupSchema,
    pub records: Vec<DedupRecord<u64>>,
    /// Per record (by key), the person it describes.
    pub person_of: Vec<u64>,
}

/// Pairwise quality against the ground truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairMetrics {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl PairMetrics {
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }

    pub fn f1(&self) -> f64 {
        let (precision, recall) = (self.precision(), self.recall());
        if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 { 1.0 } else { numerator as f64 / denominator as f64 }
}

/// Pairwise metrics of predicted pairs against ground-truth entity ids (`entity_of[key]`).
/// Predicted pairs are deduplicated; keys out of range count as false positives.
pub fn pair_metrics(entity_of: &[u64], predicted: impl IntoIterator<Item = (u64, u64)>) -> PairMetrics {
    let mut pairs: Vec<(u64, u64)> = predicted
        .into_iter()
        .filter(|(a, b)| a != b)
        .map(|(a, b)| if a < b { (a, b) } else { (b, a) })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let entity = |key: u64| usize::try_from(key).ok().and_then(|index| entity_of.get(index));
    let true_positives = pairs
        .iter()
        .filter(|&&(a, b)| matches!((entity(a), entity(b)), (Some(x), Some(y)) if x == y))
        .count() as u64;
    let mut sizes: HashMap<u64, u64> = HashMap::new();
    for &entity in entity_of {
        *sizes.entry(entity).or_default() += 1;
    }
    let true_pairs: u64 = sizes.values().map(|&size| size * (size - 1) / 2).sum();
    PairMetrics {
        true_positives,
        false_positives: pairs.len() as u64 - true_positives,
        false_negatives: true_pairs.saturating_sub(true_positives),
    }
}

/// Pairwise metrics of clusters: every two records of a predicted cluster are a predicted
/// pair.
pub fn cluster_metrics(entity_of: &[u64], clusters: &[Vec<u64>]) -> PairMetrics {
    pair_metrics(
        entity_of,
        clusters.iter().flat_map(|cluster| {
            cluster
                .iter()
                .enumerate()
                .flat_map(move |(i, &a)| cluster.iter().skip(i + 1).map(move |&b| (a, b)))
        }),
    )
}

impl SyntheticDataset {
    pub fn pair_metrics(&self, predicted: impl IntoIterator<Item = (u64, u64)>) -> PairMetrics {
        pair_metrics(&self.person_of, predicted)
    }

    pub fn cluster_metrics(&self, clusters: &[Vec<u64>]) -> PairMetrics {
        cluster_metrics(&self.person_of, clusters)
    }
}

const GIVEN_NAMES: &[&str] = &[
    "James",
    "Olivia",
    "William",
    "Emma",
    "Thomas",
    "Charlotte",
    "Jack",
    "Chloé",
    "Lucas",
    "Amelia",
    "Noah",
    "Isla",
    "Oliver",
    "Mia",
    "Léo",
    "Grace",
    "Henry",
    "Ava",
    "Ethan",
    "Sophie",
    "Samuel",
    "Ella",
    "Daniel",
    "Zoé",
    "Joshua",
    "Emily",
    "Benjamin",
    "Jessica",
    "Alexander",
    "Sarah",
    "Michael",
    "Hannah",
    "David",
    "Lily",
    "Matthew",
    "Ruby",
    "Robert",
    "Lucy",
    "Christopher",
    "Élodie",
    "Nicholas",
    "Hélène",
    "Andrew",
    "Catherine",
    "Joseph",
    "Elizabeth",
    "Anthony",
    "Margaret",
    "Richard",
    "Rebecca",
    "Edward",
    "Victoria",
    "Stephen",
    "Katherine",
    "Timothy",
    "Jennifer",
    "Gregory",
    "Patricia",
    "Kenneth",
    "Susan",
    "François",
    "Amélie",
    "Mathis",
    "Camille",
    "Hugo",
    "Manon",
    "Théo",
    "Inès",
    "Raphaël",
    "Léa",
    "Gabriel",
    "Jade",
    "Arthur",
    "Louise",
    "Louis",
    "Alice",
    "Jules",
    "Lina",
    "Adam",
    "Rose",
    "Nathan",
    "Anna",
    "Paul",
    "Julia",
    "Maxime",
    "Clara",
    "Antoine",
    "Eva",
    "Nicolas",
    "Juliette",
    "Julien",
    "Pauline",
    "Mohammed",
    "Fatima",
    "Youssef",
    "Yasmine",
    "Mehdi",
    "Sofia",
    "Karim",
    "Nadia",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Arjun",
    "Priya",
    "Siobhan",
    "Ciaran",
    "Niamh",
    "Declan",
    "Mateo",
    "Lucia",
    "Diego",
    "Valentina",
    "Sebastian",
    "Isabella",
    "Zbigniew",
    "Małgorzata",
    "Søren",
    "Ingrid",
    "Björn",
    "Astrid",
    "Dmitri",
    "Natasha",
];

const SURNAMES: &[&str] = &[
    "Smith",
    "Martin",
    "Brown",
    "Bernard",
    "Wilson",
    "Dubois",
    "Taylor",
    "Thomas",
    "Johnson",
    "Robert",
    "White",
    "Richard",
    "Walker",
    "Petit",
    "Harris",
    "Durand",
    "Lee",
    "Leroy",
    "Clarke",
    "Moreau",
    "King",
    "Simon",
    "Green",
    "Laurent",
    "Hall",
    "Lefebvre",
    "Wood",
    "Michel",
    "Hughes",
    "Garcia",
    "Edwards",
    "David",
    "Turner",
    "Bertrand",
    "Hill",
    "Roux",
    "Ward",
    "Vincent",
    "Morris",
    "Fournier",
    "Cooper",
    "Morel",
    "Baker",
    "Girard",
    "Young",
    "André",
    "Wright",
    "Lefèvre",
    "Scott",
    "Mercier",
    "Mitchell",
    "Dupont",
    "Campbell",
    "Lambert",
    "Anderson",
    "Bonnet",
    "Stewart",
    "François",
    "Murphy",
    "Martinez",
    "O'Brien",
    "Kelly",
    "McDonald",
    "MacLeod",
    "Nguyen",
    "Tran",
    "Pham",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Kumar",
    "Singh",
    "Patel",
    "Cohen",
    "Levy",
    "Schmidt",
    "Müller",
    "Schneider",
    "Fischer",
    "Weber",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Novák",
    "Horváth",
    "Nagy",
    "Papadopoulos",
    "Ivanov",
    "Petrov",
    "Andersen",
    "Nielsen",
    "Hansen",
    "Johansson",
    "Karlsson",
    "Virtanen",
    "Korhonen",
    "Jansen",
    "de Vries",
    "van Dijk",
    "Bakker",
    "Janssens",
    "Peeters",
    "Da Silva",
    "Santos",
    "Ferreira",
    "Pereira",
    "Rodríguez",
    "González",
    "Fernández",
    "López",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Díaz",
    "Hernández",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Alonso",
    "Gutiérrez",
];

/// Syllables of generated surnames: the long tail no list has.
const SYLLABLES: &[&str] = &[
    "ba", "ber", "bo", "car", "cha", "da", "del", "dri", "fa", "fen", "gar", "gil", "ha", "har", "ka", "kin",
    "la", "len", "lo", "ma", "mar", "mel", "mo", "na", "nel", "no", "pa", "per", "ra", "ren", "ro", "sa",
    "sel", "so", "ta", "ter", "to", "va", "ven", "wa", "wil", "zan", "quin", "bru", "cla", "fro", "gri",
    "pla", "stan", "tre", "vil", "mont", "rich", "ford", "ton", "ley", "by", "son", "man", "field",
];

const STREET_NAMES: &[&str] = &[
    "High",
    "Station",
    "Main",
    "Church",
    "Park",
    "Victoria",
    "Green",
    "Manor",
    "Kings",
    "Queens",
    "Mill",
    "Albert",
    "Bridge",
    "Chapel",
    "School",
    "Market",
    "Oak",
    "Elm",
    "Cedar",
    "Maple",
    "Willow",
    "Pine",
    "Hurley",
    "Kevin",
    "Pinkerton",
    "Stanley",
    "Salkauskas",
    "Macquoid",
    "Rupp",
    "Bourne",
    "Verco",
    "Weddin",
    "Erldunda",
    "Hampton",
    "Morrison",
    "Robertson",
    "de la Paix",
    "Victor Hugo",
    "Jean Jaurès",
    "Pasteur",
    "Gambetta",
    "des Lilas",
    "du Moulin",
    "de la Gare",
    "Voltaire",
    "Carnot",
    "Foch",
    "Nationale",
    "de l'Église",
    "des Écoles",
    "Saint-Michel",
    "Lafayette",
    "Montaigne",
    "Colbert",
];

/// Street types: full form and the abbreviation people write.
const STREET_TYPES: &[(&str, &str)] = &[
    ("Street", "St"),
    ("Road", "Rd"),
    ("Avenue", "Ave"),
    ("Lane", "Ln"),
    ("Drive", "Dr"),
    ("Court", "Ct"),
    ("Place", "Pl"),
    ("Crescent", "Cres"),
    ("Boulevard", "Blvd"),
    ("Circuit", "Cct"),
    ("Terrace", "Tce"),
    ("Parade", "Pde"),
];

const STATES: &[&str] = &["NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT"];

const EMAIL_DOMAINS: &[&str] =
    &["gmail.com", "yahoo.com", "outlook.com", "orange.fr", "free.fr", "example.org"];

/// Neighbouring keys on a QWERTY keyboard, for realistic substitutions.
const KEYBOARD_ROWS: &[&str] = &["qwertyuiop", "asdfghjkl", "zxcvbnm"];

#[derive(Debug, Clone)]
struct City {
    name: String,
    postcodes: Vec<String>,
    state: &'static str,
}

#[derive(Debug, Clone)]
struct Person {
    given: String,
    surname: String,
    /// (year, month, day)
    birth: (u32, u32, u32),
    street_number: u32,
    street: String,
    street_type: usize,
    city: usize,
    postcode: String,
    email: Option<String>,
    phone: Option<String>,
}

/// Generates the records described by `config`, shuffled so that duplicates are not adjacent.
pub fn generate(config: &SyntheticConfig) -> SyntheticDataset {
    let mut rng = SplitMix64::new(config.seed);
    let given_weights = zipf(GIVEN_NAMES.len(), 0.5);
    let surname_weights = zipf(SURNAMES.len(), 0.5);
    let cities = cities(&mut rng, 1500);
    let city_weights = zipf(cities.len(), 0.8);

    let mut people: Vec<Person> = Vec::with_capacity(config.people);
    for _ in 0..config.people {
        let person = match people.len() {
            0 => None,
            existing if rng.chance(config.household_share) => {
                let housemate = rng.below(existing);
                people
                    .get(housemate)
                    .map(|housemate| household_member(&mut rng, housemate, &given_weights, config))
            }
            _ => None,
        };
        let person = person.unwrap_or_else(|| {
            new_person(
                &mut rng,
                &given_weights,
                &surname_weights,
                &cities,
                &city_weights,
                config.contact_fields,
            )
        });
        people.push(person);
    }

    let mut rows: Vec<(u64, Vec<Option<String>>)> = Vec::new();
    for (id, person) in people.iter().enumerate() {
        let original = render(person, &cities);
        rows.push((id as u64, original.clone()));
        if rng.chance(config.duplicate_share) {
            let mut duplicates = 1;
            while duplicates < config.max_duplicates && rng.chance(0.35) {
                duplicates += 1;
            }
            for _ in 0..duplicates {
                let duplicate = duplicate_of(&mut rng, person, &cities, &city_weights, config);
                rows.push((id as u64, duplicate));
            }
        }
    }
    // Fisher–Yates, so that record order says nothing about identity.
    for i in (1..rows.len()).rev() {
        let j = rng.below(i + 1);
        rows.swap(i, j);
    }

    let mut fields = vec![
        ("given_name", FieldKind::GivenName),
        ("surname", FieldKind::Surname),
        ("date_of_birth", FieldKind::DateOfBirth),
        ("street_number", FieldKind::StreetNumber),
        ("street", FieldKind::Street),
        ("city", FieldKind::City),
        ("postcode", FieldKind::Postcode),
        ("state", FieldKind::State),
    ];
    if config.contact_fields {
        fields.extend([("email", FieldKind::Email), ("phone", FieldKind::Phone)]);
    }
    let width = fields.len();
    let mut person_of = Vec::with_capacity(rows.len());
    let records = rows
        .into_iter()
        .enumerate()
        .map(|(key, (person, mut values))| {
            person_of.push(person);
            values.truncate(width);
            DedupRecord { key: key as u64, values }
        })
        .collect();
    SyntheticDataset { schema: DedupSchema::new(fields), records, person_of }
}

/// Cumulative Zipf weights with exponent `exponent` over `len` ranks.
fn zipf(len: usize, exponent: f64) -> Vec<f64> {
    let mut total = 0.0;
    let mut cumulative: Vec<f64> = (1..=len)
        .map(|rank| {
            total += (rank as f64).powf(-exponent);
            total
        })
        .collect();
    cumulative.iter_mut().for_each(|weight| *weight /= total);
    cumulative
}

fn pick_weighted(rng: &mut SplitMix64, cumulative: &[f64]) -> usize {
    let draw = rng.unit();
    cumulative.partition_point(|&weight| weight < draw).min(cumulative.len().saturating_sub(1))
}

fn pick<'a>(rng: &mut SplitMix64, list: &[&'a str]) -> &'a str {
    list.get(rng.below(list.len())).copied().unwrap_or("")
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn generated_word(rng: &mut SplitMix64, syllables: usize) -> String {
    capitalize(&(0..syllables).map(|_| pick(rng, SYLLABLES)).collect::<String>())
}

/// Cities of Zipf-distributed sizes: the largest get many postcodes, as real ones do.
fn cities(rng: &mut SplitMix64, count: usize) -> Vec<City> {
    let mut used_postcodes = std::collections::HashSet::new();
    (0..count)
        .map(|rank| {
            let name = match rng.below(4) {
                0 => format!("Saint {}", generated_word(rng, 2)),
                1 => format!("{} Hills", generated_word(rng, 2)),
                _ => {
                    let syllables = 2 + rng.below(2);
                    generated_word(rng, syllables)
                }
            };
            let postcode_count = (20 / (rank + 1)).max(1);
            let mut postcodes = Vec::with_capacity(postcode_count);
            while postcodes.len() < postcode_count {
                let postcode = format!("{:04}", 1000 + rng.below(8999));
                if used_postcodes.insert(postcode.clone()) {
                    postcodes.push(postcode);
                }
            }
            City { name, postcodes, state: pick(rng, STATES) }
        })
        .collect()
}

fn birth_date(rng: &mut SplitMix64) -> (u32, u32, u32) {
    (1930 + rng.below(76) as u32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
}

fn new_person(
    rng: &mut SplitMix64,
    given_weights: &[f64],
    surname_weights: &[f64],
    cities: &[City],
    city_weights: &[f64],
    contact_fields: bool,
) -> Person {
    let given = GIVEN_NAMES.get(pick_weighted(rng, given_weights)).copied().unwrap_or("Alex").to_owned();
    let surname = if rng.chance(0.6) {
        SURNAMES.get(pick_weighted(rng, surname_weights)).copied().unwrap_or("Smith").to_owned()
    } else {
        let syllables = 2 + rng.below(2);
        generated_word(rng, syllables)
    };
    let mut person = Person {
        given,
        surname,
        birth: birth_date(rng),
        street_number: 0,
        street: String::new(),
        street_type: 0,
        city: 0,
        postcode: String::new(),
        email: None,
        phone: None,
    };
    move_house(rng, &mut person, cities, city_weights);
    if contact_fields {
        person.email = rng.chance(0.6).then(|| email_of(rng, &person.given, &person.surname));
        person.phone = rng.chance(0.5).then(|| {
            format!(
                "06 {:02} {:02} {:02} {:02}",
                rng.below(100),
                rng.below(100),
                rng.below(100),
                rng.below(100)
            )
        });
    }
    person
}

fn move_house(rng: &mut SplitMix64, person: &mut Person, cities: &[City], city_weights: &[f64]) {
    person.city = pick_weighted(rng, city_weights);
    person.postcode = cities
        .get(person.city)
        .and_then(|city| city.postcodes.get(rng.below(city.postcodes.len())))
        .cloned()
        .unwrap_or_default();
    // Small numbers are far more common than large ones.
    person.street_number = 1 + (rng.unit().powi(3) * 300.0) as u32;
    person.street = if rng.chance(0.5) { pick(rng, STREET_NAMES).to_owned() } else { generated_word(rng, 2) };
    person.street_type = rng.below(STREET_TYPES.len());
}

fn email_of(rng: &mut SplitMix64, given: &str, surname: &str) -> String {
    let local: String =
        format!("{}.{}", super::normalize::fold(given), super::normalize::fold(surname)).replace(' ', "");
    let suffix = if rng.chance(0.5) { String::new() } else { rng.below(100).to_string() };
    format!("{local}{suffix}@{}", pick(rng, EMAIL_DOMAINS))
}

fn household_member(
    rng: &mut SplitMix64,
    housemate: &Person,
    given_weights: &[f64],
    config: &SyntheticConfig,
) -> Person {
    let mut member = housemate.clone();
    loop {
        let given = GIVEN_NAMES.get(pick_weighted(rng, given_weights)).copied().unwrap_or("Alex");
        if given != housemate.given {
            member.given = given.to_owned();
            break;
        }
    }
    if !rng.chance(config.twin_share) {
        let (year, _, _) = housemate.birth;
        let (_, month, day) = birth_date(rng);
        let year = (i64::from(year) + rng.below(61) as i64 - 30).clamp(1930, 2010) as u32;
        member.birth = (year, month, day);
    }
    if config.contact_fields {
        member.email = rng.chance(0.6).then(|| email_of(rng, &member.given, &member.surname));
        // Households share a landline.
        member.phone = housemate.phone.clone().filter(|_| rng.chance(0.5));
    }
    member
}

/// Column values of a person, formatted the way the first system entered them.
fn render(person: &Person, cities: &[City]) -> Vec<Option<String>> {
    let (year, month, day) = person.birth;
    let (street_type, _) = STREET_TYPES.get(person.street_type).copied().unwrap_or(("Street", "St"));
    let city = cities.get(person.city);
    vec![
        Some(person.given.clone()),
        Some(person.surname.clone()),
        Some(format!("{year:04}-{month:02}-{day:02}")),
        Some(person.street_number.to_string()),
        Some(format!("{} {street_type}", person.street)),
        city.map(|city| city.name.clone()),
        Some(person.postcode.clone()),
        city.map(|city| city.state.to_owned()),
        person.email.clone(),
        person.phone.clone(),
    ]
}

const GIVEN: usize = 0;
const SURNAME: usize = 1;
const BIRTH: usize = 2;
const NUMBER: usize = 3;
const STREET: usize = 4;
const CITY: usize = 5;
const POSTCODE: usize = 6;
const STATE: usize = 7;
const EMAIL: usize = 8;
const PHONE: usize = 9;

/// A second record of `person`, entered by someone else and damaged on the way.
fn duplicate_of(
    rng: &mut SplitMix64,
    person: &Person,
    cities: &[City],
    city_weights: &[f64],
    config: &SyntheticConfig,
) -> Vec<Option<String>> {
    let mut person = person.clone();
    // A move happens before the record is typed: the whole address is new.
    if rng.chance(config.move_share) {
        move_house(rng, &mut person, cities, city_weights);
    }
    let mut values = render(&person, cities);
    let (year, month, day) = person.birth;
    // Another system, another date format.
    if rng.chance(0.3) {
        set(&mut values, BIRTH, format!("{day:02}/{month:02}/{year:04}"));
    }
    if rng.chance(0.3) {
        let (_, abbreviation) = STREET_TYPES.get(person.street_type).copied().unwrap_or(("Street", "St"));
        set(&mut values, STREET, format!("{} {abbreviation}", person.street));
    }
    let corruptions = 1 + rng.below(config.max_corruptions.max(1));
    for _ in 0..corruptions {
        match rng.below(100) {
            0..=39 => {
                // Names are typed most and damaged most.
                let field = match rng.below(10) {
                    0..=2 => GIVEN,
                    3..=5 => SURNAME,
                    6 => STREET,
                    7 => CITY,
                    8 => POSTCODE,
                    _ => NUMBER,
                };
                typo_in(rng, &mut values, field);
            }
            40..=47 => {
                let nickname: Vec<&str> = NICKNAMES
                    .iter()
                    .filter(|(_, formal)| super::normalize::fold(&person.given) == *formal)
                    .map(|(nickname, _)| *nickname)
                    .collect();
                let replacement = if nickname.is_empty() || rng.chance(0.3) {
                    person.given.chars().next().map(|initial| format!("{initial}.")).unwrap_or_default()
                } else {
                    capitalize(pick(rng, &nickname))
                };
                set(&mut values, GIVEN, replacement);
            }
            48..=54 => values.swap(GIVEN, SURNAME),
            55..=61 => {
                if day <= 12 && day != month {
                    set(&mut values, BIRTH, format!("{year:04}-{day:02}-{month:02}"));
                } else {
                    typo_in(rng, &mut values, BIRTH);
                }
            }
            62..=67 => typo_in(rng, &mut values, BIRTH),
            68..=89 => {
                let field = match rng.below(10) {
                    0 => GIVEN,
                    1 => SURNAME,
                    2 => BIRTH,
                    3 | 4 => NUMBER,
                    5 => STREET,
                    6 => CITY,
                    7 => POSTCODE,
                    8 => STATE,
                    _ => EMAIL + rng.below(2),
                };
                if let Some(value) = values.get_mut(field) {
                    *value = None;
                }
            }
            90..=94 => {
                if let Some(Some(email)) = values.get_mut(EMAIL) {
                    let mut chars: Vec<char> = email.chars().collect();
                    typo(rng, &mut chars);
                    *email = chars.into_iter().collect();
                } else {
                    typo_in(rng, &mut values, PHONE);
                }
            }
            _ => {
                // Shouting or lazy typists: case and accents carry no identity.
                for value in values.iter_mut().flatten() {
                    *value =
                        if rng.chance(0.5) { value.to_uppercase() } else { super::normalize::fold(value) };
                }
            }
        }
    }
    values
}

fn set(values: &mut [Option<String>], field: usize, value: String) {
    if let Some(slot) = values.get_mut(field) {
        *slot = Some(value);
    }
}

fn typo_in(rng: &mut SplitMix64, values: &mut [Option<String>], field: usize) {
    if let Some(Some(value)) = values.get_mut(field) {
        let mut chars: Vec<char> = value.chars().collect();
        typo(rng, &mut chars);
        *value = chars.into_iter().collect();
    }
}

/// One insertion, deletion, substitution (by a neighbouring key for letters, a neighbouring
/// digit for digits) or transposition of adjacent characters.
fn typo(rng: &mut SplitMix64, chars: &mut Vec<char>) {
    if chars.is_empty() {
        return;
    }
    let position = rng.below(chars.len());
    let current = chars.get(position).copied().unwrap_or('a');
    match rng.below(4) {
        0 => chars.insert(position, neighbour(rng, current)),
        1 if chars.len() > 2 => {
            chars.remove(position);
        }
        2 if position + 1 < chars.len() => chars.swap(position, position + 1),
        _ => {
            if let Some(slot) = chars.get_mut(position) {
                *slot = neighbour(rng, current);
            }
        }
    }
}

fn neighbour(rng: &mut SplitMix64, key: char) -> char {
    if let Some(digit) = key.to_digit(10) {
        let shifted = if rng.chance(0.5) { digit + 1 } else { digit + 9 };
        return char::from_digit(shifted % 10, 10).unwrap_or('0');
    }
    let lower = key.to_ascii_lowercase();
    for row in KEYBOARD_ROWS {
        if let Some(index) = row.find(lower) {
            let bytes = row.as_bytes();
            let left = index.checked_sub(1).and_then(|i| bytes.get(i));
            let right = bytes.get(index + 1);
            let chosen = match (left, right) {
                (Some(&left), Some(&right)) => {
                    if rng.chance(0.5) {
                        left
                    } else {
                        right
                    }
                }
                (Some(&only), None) | (None, Some(&only)) => only,
                (None, None) => bytes.get(index).copied().unwrap_or(b'e'),
            };
            let chosen = char::from(chosen);
            return if key.is_uppercase() { chosen.to_ascii_uppercase() } else { chosen };
        }
    }
    'e'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_has_duplicates() {
        let config = SyntheticConfig { people: 500, contact_fields: true, ..SyntheticConfig::default() };
        let first = generate(&config);
        let second = generate(&config);
        assert_eq!(first.records, second.records);
        assert_eq!(first.person_of, second.person_of);
        assert!(first.records.len() > 550 && first.records.len() < 700, "{}", first.records.len());
        assert!(first.records.iter().all(|record| record.values.len() == first.schema.fields.len()));
        let person_of = &first.person_of;
        let truth: Vec<(u64, u64)> = first
            .records
            .iter()
            .flat_map(|a| {
                first
                    .records
                    .iter()
                    .filter(move |b| b.key > a.key && person_of[b.key as usize] == person_of[a.key as usize])
                    .map(move |b| (a.key, b.key))
            })
            .collect();
        let perfect = first.pair_metrics(truth);
        assert_eq!(perfect.f1(), 1.0);
    }

    #[test]
    fn typos_change_exactly_one_thing() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..200 {
            let mut chars: Vec<char> = "hannagan".chars().collect();
            typo(&mut rng, &mut chars);
            let typoed: String = chars.into_iter().collect();
            assert!(crate::dedup::compare::within_one_edit(b"hannagan", typoed.as_bytes()), "{typoed}");
        }
    }

    #[test]
    fn metrics_count_pairs() {
        let truth = [0, 0, 0, 1, 1, 2];
        let metrics = pair_metrics(&truth, [(0, 1), (1, 0), (3, 4), (4, 5)]);
        assert_eq!(metrics, PairMetrics { true_positives: 2, false_positives: 1, false_negatives: 2 });
        let clusters = cluster_metrics(&truth, &[vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(clusters.f1(), 1.0);
    }
}
