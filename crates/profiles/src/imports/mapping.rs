//! Column mapping: which CSV column is an identifier, a trait or the record's time, and how a
//! row becomes an `identify` message for the inbox. Without an explicit mapping, columns are
//! mapped by their header (`email`, `phone`, `customer_id`, `first_name`, `zip`…).

use crate::{Identity, IdentityKind, NormalizationContext, ProfilesError};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// CRM records create and update profiles; enrichment only adds traits to profiles that
/// already exist, keyed by one identifier, under its own source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Crm,
    Enrichment,
}

impl ImportKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Crm => "crm",
            Self::Enrichment => "enrichment",
        }
    }

    /// The trait source family of this kind of import (see [`crate::traits::source`]).
    pub const fn source_family(self) -> &'static str {
        match self {
            Self::Crm => crate::traits::source::IMPORT,
            Self::Enrichment => crate::traits::source::ENRICHMENT,
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "crm" => Some(Self::Crm),
            "enrichment" => Some(Self::Enrichment),
            _ => None,
        }
    }
}

/// How a trait cell is read. Empty cells are skipped whatever the type, so an import never
/// blanks a value it has no data for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    #[default]
    String,
    Number,
    Boolean,
    /// An ISO date (`2024-03-01`), kept as that text.
    Date,
}

/// Where a column goes: written `identity:<kind>`, `trait:<name>` (`trait:address.city` for a
/// nested trait), `timestamp` or `ignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnTarget {
    Identity(IdentityKind),
    Trait(Vec<String>),
    Timestamp,
    Ignore,
}

const MAX_TRAIT_DEPTH: usize = 3;
const MAX_TRAIT_NAME: usize = 64;

impl ColumnTarget {
    pub fn parse(raw: &str) -> Result<Self, ProfilesError> {
        let raw = raw.trim();
        match raw.split_once(':') {
            None if raw == "timestamp" => Ok(Self::Timestamp),
            None if raw == "ignore" => Ok(Self::Ignore),
            Some(("identity", kind)) => {
                let kind: IdentityKind = kind.parse()?;
                if kind == IdentityKind::Postal {
                    return Err(ProfilesError::invalid(
                        "postal identifiers are built from the name and address columns: map them to \
                         trait:firstName, trait:lastName, trait:address.street, trait:address.postalCode \
                         and trait:address.city",
                    ));
                }
                Ok(Self::Identity(kind))
            }
            Some(("trait", path)) => {
                let parts: Vec<String> = path.split('.').map(|p| p.trim().to_owned()).collect();
                let valid = parts.len() <= MAX_TRAIT_DEPTH
                    && parts.iter().all(|p| !p.is_empty() && p.len() <= MAX_TRAIT_NAME);
                if !valid {
                    return Err(ProfilesError::invalid(format!(
                        "`{raw}`: a trait name is 1 to {MAX_TRAIT_NAME} characters, nested at most \
                         {MAX_TRAIT_DEPTH} deep with dots"
                    )));
                }
                Ok(Self::Trait(parts))
            }
            _ => Err(ProfilesError::invalid(format!(
                "`{raw}` is not a column target; use identity:<kind>, trait:<name>, timestamp or ignore"
            ))),
        }
    }
}

impl std::fmt::Display for ColumnTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity(kind) => write!(f, "identity:{kind}"),
            Self::Trait(path) => write!(f, "trait:{}", path.join(".")),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Ignore => f.write_str("ignore"),
        }
    }
}

/// One column's mapping, as given by the caller or inferred from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub column: String,
    pub target: ColumnTarget,
    pub value_type: ValueType,
}

/// The stored form of a [`ColumnSpec`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredColumn {
    column: String,
    to: String,
    value_type: ValueType,
}

pub(crate) fn columns_to_json(columns: &[ColumnSpec]) -> Value {
    let stored: Vec<StoredColumn> = columns
        .iter()
        .map(|c| StoredColumn {
            column: c.column.clone(),
            to: c.target.to_string(),
            value_type: c.value_type,
        })
        .collect();
    serde_json::to_value(stored).unwrap_or(Value::Null)
}

pub(crate) fn columns_from_json(value: &Value) -> Option<Vec<ColumnSpec>> {
    let stored: Vec<StoredColumn> = serde_json::from_value(value.clone()).ok()?;
    stored
        .into_iter()
        .map(|c| {
            let target = ColumnTarget::parse(&c.to).ok()?;
            Some(ColumnSpec { column: c.column, target, value_type: c.value_type })
        })
        .collect()
}

/// The target a header suggests when no mapping is given.
fn infer(header: &str) -> (ColumnTarget, ValueType) {
    let key: String = header.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    let trait_at = |path: &[&str]| ColumnTarget::Trait(path.iter().map(|p| (*p).to_owned()).collect());
    let target = match key.as_str() {
        "email" | "emailaddress" | "mail" | "courriel" => ColumnTarget::Identity(IdentityKind::Email),
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "cell" | "tel" | "telephone" => {
            ColumnTarget::Identity(IdentityKind::Phone)
        }
        "userid" | "customerid" | "accountid" | "crmid" | "externalid" => {
            ColumnTarget::Identity(IdentityKind::UserId)
        }
        "anonymousid" => ColumnTarget::Identity(IdentityKind::AnonymousId),
        "maid" | "idfa" | "gaid" | "adid" | "advertisingid" => ColumnTarget::Identity(IdentityKind::Maid),
        "deviceid" => ColumnTarget::Identity(IdentityKind::DeviceId),
        "timestamp" | "updatedat" => ColumnTarget::Timestamp,
        "firstname" | "givenname" => trait_at(&["firstName"]),
        "lastname" | "surname" | "familyname" => trait_at(&["lastName"]),
        "name" | "fullname" => trait_at(&["name"]),
        "street" | "address" | "addressline1" | "streetaddress" => trait_at(&["address", "street"]),
        "city" | "town" => trait_at(&["address", "city"]),
        "postalcode" | "postcode" | "zip" | "zipcode" => trait_at(&["address", "postalCode"]),
        "country" => trait_at(&["address", "country"]),
        "birthday" | "birthdate" | "dateofbirth" | "dob" => {
            return (trait_at(&["birthday"]), ValueType::Date);
        }
        _ => match camel_case(header) {
            name if name.is_empty() => ColumnTarget::Ignore,
            name => ColumnTarget::Trait(vec![name]),
        },
    };
    (target, ValueType::String)
}

/// `Loyalty tier` → `loyaltyTier`, `LTV` → `ltv`, `date_of_purchase` → `dateOfPurchase`: the
/// style of Segment's reserved traits, so a header `Plan` and a tracked `plan` are one trait.
fn camel_case(header: &str) -> String {
    let mut name = String::new();
    for (i, word) in header.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).enumerate() {
        let all_caps = word.chars().all(|c| !c.is_lowercase());
        let mut chars = word.chars();
        let Some(first) = chars.next() else { continue };
        if i == 0 {
            name.extend(first.to_lowercase());
        } else {
            name.extend(first.to_uppercase());
        }
        if all_caps {
            name.extend(chars.flat_map(char::to_lowercase));
        } else {
            name.extend(chars);
        }
    }
    name.chars().take(MAX_TRAIT_NAME).collect()
}

/// A mapping checked against a file's header.
#[derive(Debug)]
pub(crate) struct Mapping {
    kind: ImportKind,
    /// Per mapped column: its position in the row and its spec.
    columns: Vec<(usize, ColumnSpec)>,
    width: usize,
}

/// Why one row was not imported. Messages name the column, never the value, so that job
/// errors hold no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: u64,
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

impl RowError {
    pub(crate) fn new(row: u64, column: Option<&str>, code: &str, message: impl Into<String>) -> Self {
        Self { row, column: column.map(str::to_owned), code: code.to_owned(), message: message.into() }
    }
}

/// A row ready for the inbox.
#[derive(Debug)]
pub(crate) struct MappedRow {
    pub occurred_at: Option<DateTime<Utc>>,
    pub body: Value,
}

impl Mapping {
    /// Checks `specs` (or infers them) against `header`. Returns the mapping and the effective
    /// column specs, which the job keeps so staff see how the file was read.
    pub fn resolve(
        kind: ImportKind,
        header: &[String],
        specs: Option<&[ColumnSpec]>,
    ) -> Result<(Self, Vec<ColumnSpec>), ProfilesError> {
        let header: Vec<&str> = header.iter().map(|h| h.trim()).collect();
        let specs: Vec<ColumnSpec> = match specs {
            Some(specs) => specs.to_vec(),
            None => header
                .iter()
                .map(|h| {
                    let (target, value_type) = infer(h);
                    ColumnSpec { column: (*h).to_owned(), target, value_type }
                })
                .collect(),
        };
        let mut columns = Vec::new();
        let mut seen_targets: Vec<String> = Vec::new();
        for spec in &specs {
            if spec.target == ColumnTarget::Ignore {
                continue;
            }
            let positions: Vec<usize> = header
                .iter()
                .enumerate()
                .filter(|(_, h)| **h == spec.column.trim())
                .map(|(i, _)| i)
                .collect();
            let index = match positions.as_slice() {
                [index] => *index,
                [] => {
                    return Err(ProfilesError::invalid(format!(
                        "the file has no column named `{}`",
                        spec.column
                    )));
                }
                _ => {
                    return Err(ProfilesError::invalid(format!(
                        "the file has several columns named `{}`; rename them or map them explicitly",
                        spec.column
                    )));
                }
            };
            let target = spec.target.to_string();
            if matches!(spec.target, ColumnTarget::Trait(_) | ColumnTarget::Timestamp)
                && seen_targets.contains(&target)
            {
                return Err(ProfilesError::invalid(format!("two columns are mapped to `{target}`")));
            }
            seen_targets.push(target);
            columns.push((index, spec.clone()));
        }
        let identities =
            columns.iter().filter(|(_, s)| matches!(s.target, ColumnTarget::Identity(_))).count();
        match kind {
            ImportKind::Crm if identities == 0 => {
                return Err(ProfilesError::invalid(
                    "no column is mapped to an identifier (identity:email, identity:phone, identity:user_id…), \
                     so no row could be linked to a person",
                ));
            }
            ImportKind::Enrichment if identities != 1 => {
                return Err(ProfilesError::invalid(format!(
                    "an enrichment file is keyed by exactly one identifier column; {identities} are mapped"
                )));
            }
            _ => {}
        }
        let effective = specs.into_iter().filter(|s| s.target != ColumnTarget::Ignore).collect();
        Ok((Self { kind, columns, width: header.len() }, effective))
    }

    /// Turns one row into the body of an `identify` message.
    pub fn map_row(
        &self,
        row: u64,
        fields: &[String],
        normalization: &NormalizationContext,
    ) -> Result<MappedRow, RowError> {
        if fields.len() != self.width {
            return Err(RowError::new(
                row,
                None,
                "WRONG_FIELD_COUNT",
                format!("the row has {} fields where the header has {}", fields.len(), self.width),
            ));
        }
        let mut body = Map::new();
        let mut traits = Map::new();
        let mut external = Vec::new();
        let mut occurred_at = None;
        let mut identified = false;
        for (index, spec) in &self.columns {
            let raw = fields[*index].trim();
            if raw.is_empty() {
                continue;
            }
            let column = Some(spec.column.as_str());
            match &spec.target {
                ColumnTarget::Ignore => {}
                ColumnTarget::Timestamp => {
                    occurred_at = Some(parse_timestamp(raw).ok_or_else(|| {
                        RowError::new(
                            row,
                            column,
                            "INVALID_VALUE",
                            "not a timestamp (use 2024-03-01T12:00:00Z, 2024-03-01 12:00:00 or 2024-03-01)",
                        )
                    })?);
                }
                ColumnTarget::Identity(kind) => {
                    let identity = Identity::parse(kind.clone(), raw, normalization).map_err(|e| {
                        RowError::new(row, column, "INVALID_IDENTIFIER", identity_error(kind, &e))
                    })?;
                    identified = true;
                    if self.kind == ImportKind::Enrichment {
                        // The key finds the person; it is not third-party data about them.
                        external.push(json!({ "type": kind.as_str(), "id": identity.value }));
                        continue;
                    }
                    match kind {
                        IdentityKind::UserId => {
                            body.insert("userId".into(), identity.value.into());
                        }
                        IdentityKind::AnonymousId => {
                            body.insert("anonymousId".into(), identity.value.into());
                        }
                        IdentityKind::Email => {
                            traits.insert("email".into(), identity.value.into());
                        }
                        IdentityKind::Phone => {
                            traits.insert("phone".into(), identity.value.into());
                        }
                        other => external.push(json!({ "type": other.as_str(), "id": identity.value })),
                    }
                }
                ColumnTarget::Trait(path) => {
                    let value = parse_value(raw, spec.value_type).ok_or_else(|| {
                        RowError::new(row, column, "INVALID_VALUE", value_error(spec.value_type))
                    })?;
                    insert_path(&mut traits, path, value);
                }
            }
        }
        if !identified {
            let message = match self.kind {
                ImportKind::Crm => "the row has no identifier, so it cannot be linked to a person",
                ImportKind::Enrichment => "the row's key identifier is empty",
            };
            return Err(RowError::new(row, None, "NO_IDENTIFIER", message));
        }
        body.insert("type".into(), "identify".into());
        body.insert("traits".into(), Value::Object(traits));
        if !external.is_empty() {
            body.insert("context".into(), json!({ "externalIds": external }));
        }
        Ok(MappedRow { occurred_at, body: Value::Object(body) })
    }
}

fn identity_error(kind: &IdentityKind, error: &ProfilesError) -> String {
    match error {
        ProfilesError::InvalidInput(message) => format!("not a valid {kind}: {message}"),
        _ => format!("not a valid {kind}"),
    }
}

fn value_error(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::String => "not text",
        ValueType::Number => "not a number",
        ValueType::Boolean => "not a yes/no value (true/false, yes/no, 1/0)",
        ValueType::Date => "not a date (use 2024-03-01)",
    }
}

/// Sets `traits.a.b.c = value`, creating the objects on the way.
fn insert_path(traits: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut map = traits;
    for parent in parents {
        let entry = map.entry(parent.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner) = entry else { return };
        map = inner;
    }
    map.insert(last.clone(), value);
}

fn parse_value(raw: &str, value_type: ValueType) -> Option<Value> {
    match value_type {
        ValueType::String => Some(Value::String(raw.to_owned())),
        ValueType::Number => {
            // Spreadsheets write `1 234,50` as often as `1234.50`.
            let mut text: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}').collect();
            if text.contains(',') && !text.contains('.') {
                text = text.replace(',', ".");
            }
            let number: f64 = text.parse().ok().filter(|n: &f64| n.is_finite())?;
            serde_json::Number::from_f64(number).map(Value::Number)
        }
        ValueType::Boolean => match raw.to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "n" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        ValueType::Date => {
            let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .or_else(|| DateTime::parse_from_rfc3339(raw).ok().map(|t| t.date_naive()))?;
            Some(Value::String(date.format("%Y-%m-%d").to_string()))
        }
    }
}

fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn row(values: &[&str]) -> Vec<String> {
        header(values)
    }

    fn spec(column: &str, to: &str, value_type: ValueType) -> ColumnSpec {
        ColumnSpec { column: column.into(), target: ColumnTarget::parse(to).expect("target"), value_type }
    }

    fn fr() -> NormalizationContext {
        NormalizationContext::with_region("FR").expect("region")
    }

    #[test]
    fn headers_map_themselves() {
        let (mapping, effective) = Mapping::resolve(
            ImportKind::Crm,
            &header(&["Customer ID", "E-mail", "First Name", "ZIP", "Date of birth", "Loyalty tier", ""]),
            None,
        )
        .expect("mapping");
        let targets: Vec<String> = effective.iter().map(|c| c.target.to_string()).collect();
        assert_eq!(
            targets,
            [
                "identity:user_id",
                "identity:email",
                "trait:firstName",
                "trait:address.postalCode",
                "trait:birthday",
                "trait:loyaltyTier"
            ]
        );
        let mapped = mapping
            .map_row(2, &row(&["C-1", " Ada@Example.COM ", "Ada", "75002", "1815-12-10", "gold", "x"]), &fr())
            .expect("row");
        assert_eq!(
            mapped.body,
            json!({"type": "identify", "userId": "C-1", "traits": {"email": "ada@example.com", "firstName": "Ada",
                   "address": {"postalCode": "75002"}, "birthday": "1815-12-10", "loyaltyTier": "gold"}})
        );
    }

    #[test]
    fn explicit_columns_with_types_and_other_identifiers() {
        let specs = vec![
            spec("tel", "identity:phone", ValueType::String),
            spec("card", "identity:loyalty_card", ValueType::String),
            spec("spend", "trait:spend", ValueType::Number),
            spec("optin", "trait:newsletter", ValueType::Boolean),
            spec("at", "timestamp", ValueType::String),
        ];
        let (mapping, _) = Mapping::resolve(
            ImportKind::Crm,
            &header(&["tel", "card", "spend", "optin", "at", "junk"]),
            Some(&specs),
        )
        .expect("mapping");
        let mapped = mapping
            .map_row(3, &row(&["06 12 34 56 78", "L-9", "1 234,50", "Yes", "2024-03-01", "?"]), &fr())
            .expect("row");
        assert_eq!(
            mapped.body["traits"],
            json!({"phone": "+33612345678", "spend": 1234.5, "newsletter": true})
        );
        assert_eq!(mapped.body["context"]["externalIds"], json!([{"type": "loyalty_card", "id": "L-9"}]));
        assert_eq!(mapped.occurred_at.map(|t| t.to_rfc3339()).as_deref(), Some("2024-03-01T00:00:00+00:00"));

        let bad =
            mapping.map_row(4, &row(&["06 12 34 56 78", "", "lots", "", "", ""]), &fr()).expect_err("number");
        assert_eq!((bad.code.as_str(), bad.column.as_deref()), ("INVALID_VALUE", Some("spend")));
        let bad = mapping.map_row(5, &row(&["not a phone", "", "", "", "", ""]), &fr()).expect_err("phone");
        assert_eq!(bad.code, "INVALID_IDENTIFIER");
        assert!(!bad.message.contains("not a phone"), "errors never repeat the value: {}", bad.message);
        let bad = mapping.map_row(6, &row(&["", "", "3", "", "", ""]), &fr()).expect_err("no id");
        assert_eq!(bad.code, "NO_IDENTIFIER");
        let bad = mapping.map_row(7, &row(&["1", "2"]), &fr()).expect_err("width");
        assert_eq!((bad.code.as_str(), bad.row), ("WRONG_FIELD_COUNT", 7));
    }

    #[test]
    fn mappings_that_cannot_work_are_refused_before_any_row() {
        let refuse = |kind, names: &[&str], specs: Option<Vec<ColumnSpec>>| {
            Mapping::resolve(kind, &header(names), specs.as_deref()).expect_err("refused").to_string()
        };
        assert!(
            refuse(ImportKind::Crm, &["age", "income"], None)
                .contains("no column is mapped to an identifier")
        );
        assert!(refuse(ImportKind::Enrichment, &["email", "phone", "age"], None).contains("exactly one"));
        assert!(refuse(ImportKind::Crm, &["email", "email"], None).contains("several columns"));
        let missing = vec![spec("mail", "identity:email", ValueType::String)];
        assert!(refuse(ImportKind::Crm, &["email"], Some(missing)).contains("no column named `mail`"));
        assert!(ColumnTarget::parse("identity:postal").is_err());
        assert!(ColumnTarget::parse("trait:a.b.c.d").is_err());
        assert!(ColumnTarget::parse("somewhere").is_err());
        assert_eq!(
            ColumnTarget::parse(" trait:address.city ").expect("target").to_string(),
            "trait:address.city"
        );
    }

    #[test]
    fn other_headers_become_camel_case_traits() {
        for (header, name) in [
            ("Plan", "plan"),
            ("LTV", "ltv"),
            ("date_of_purchase", "dateOfPurchase"),
            ("NPS score", "npsScore"),
            ("Été", "été"),
        ] {
            assert_eq!(camel_case(header), name);
        }
        assert_eq!(infer("  ").0, ColumnTarget::Ignore);
    }

    #[test]
    fn stored_columns_round_trip() {
        let (_, effective) =
            Mapping::resolve(ImportKind::Crm, &header(&["email", "dob", "tier"]), None).expect("mapping");
        assert_eq!(columns_from_json(&columns_to_json(&effective)), Some(effective));
    }
}
