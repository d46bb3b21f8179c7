//! Traits with their source and time, and the precedence rule that decides which value wins.
//!
//! Stored per profile as one JSON object: `{"plan": {"value": "pro", "source": "events",
//! "at": "2026-11-23T12:00:00Z"}}`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Trait names are bounded so a hostile client cannot bloat profiles.
pub const MAX_TRAIT_NAME_BYTES: usize = 128;
pub const MAX_TRAITS_PER_PROFILE: usize = 500;

/// Where a value came from. Staff edits, imports and enrichment are sources as much as events.
pub mod source {
    pub const STAFF: &str = "staff";
    pub const IMPORT: &str = "import";
    pub const EVENTS: &str = "events";
    pub const ENRICHMENT: &str = "enrichment";
    pub const JOURNEY: &str = "journey";
}

/// A workspace's source precedence: earlier sources win over later ones; within one source the
/// newer value wins. Sources not listed rank after all listed ones.
#[derive(Debug, Clone)]
pub struct SourcePrecedence(Vec<String>);

impl Default for SourcePrecedence {
    fn default() -> Self {
        Self(vec![
            source::STAFF.into(),
            source::IMPORT.into(),
            source::EVENTS.into(),
            source::ENRICHMENT.into(),
        ])
    }
}

impl SourcePrecedence {
    pub fn new(order: Vec<String>) -> Self {
        Self(order)
    }

    pub fn order(&self) -> &[String] {
        &self.0
    }

    fn rank(&self, source: &str) -> usize {
        let family = source.split(':').next().unwrap_or(source);
        self.0.iter().position(|s| s == source || s == family).unwrap_or(self.0.len())
    }

    /// Whether a value from `new_source` at `new_at` replaces the stored entry.
    pub fn replaces(&self, new_source: &str, new_at: DateTime<Utc>, stored: &Value) -> bool {
        let stored_source = stored.get("source").and_then(Value::as_str).unwrap_or("");
        let stored_at = stored.get("at").and_then(Value::as_str).and_then(crate::message::parse_time);
        let (new_rank, old_rank) = (self.rank(new_source), self.rank(stored_source));
        new_rank < old_rank || (new_rank == old_rank && stored_at.is_none_or(|at| new_at >= at))
    }
}

/// Applies `updates` from one source to `traits`. Returns whether anything changed.
pub fn apply(
    traits: &mut Map<String, Value>,
    updates: &Map<String, Value>,
    source: &str,
    at: DateTime<Utc>,
    precedence: &SourcePrecedence,
) -> bool {
    let mut changed = false;
    for (name, value) in updates {
        if name.is_empty() || name.len() > MAX_TRAIT_NAME_BYTES {
            continue;
        }
        if !traits.contains_key(name) && traits.len() >= MAX_TRAITS_PER_PROFILE {
            continue;
        }
        let replaces = traits.get(name).is_none_or(|stored| precedence.replaces(source, at, stored));
        if replaces {
            let entry = serde_json::json!({ "value": value, "source": source, "at": at.to_rfc3339() });
            if traits.get(name) != Some(&entry) {
                traits.insert(name.clone(), entry);
                changed = true;
            }
        }
    }
    changed
}

/// Combines the traits of a merged profile into the survivor's, entry by entry, with the
/// same precedence rule as live updates.
pub fn combine(
    survivor: &mut Map<String, Value>,
    merged: &Map<String, Value>,
    precedence: &SourcePrecedence,
) {
    for (name, entry) in merged {
        let source = entry.get("source").and_then(Value::as_str).unwrap_or("");
        let at = entry.get("at").and_then(Value::as_str).and_then(crate::message::parse_time);
        let replaces = match (survivor.get(name), at) {
            (None, _) => true,
            (Some(stored), Some(at)) => precedence.replaces(source, at, stored),
            (Some(_), None) => false,
        };
        if replaces {
            survivor.insert(name.clone(), entry.clone());
        }
    }
}

/// Just the values, as clients and segment conditions see them.
pub fn values(traits: &Map<String, Value>) -> Map<String, Value> {
    traits.iter().map(|(k, v)| (k.clone(), v.get("value").cloned().unwrap_or(Value::Null))).collect()
}

/// A person's name from their trait values: `name`, else `firstName lastName`; empty if none.
pub fn display_name(values: &Map<String, Value>) -> String {
    let text = |key: &str| values.get(key).and_then(Value::as_str).unwrap_or("").trim().to_owned();
    match values.get("name").and_then(Value::as_str) {
        Some(name) => name.trim().to_owned(),
        None => format!("{} {}", text("firstName"), text("lastName")).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        crate::message::parse_time(s).unwrap()
    }

    #[test]
    fn precedence_beats_recency_and_recency_breaks_ties() {
        let precedence = SourcePrecedence::default();
        let mut traits = Map::new();
        let update = |v: Value| json!({ "plan": v }).as_object().cloned().unwrap();
        assert!(apply(
            &mut traits,
            &update(json!("crm")),
            "import:crm",
            t("2026-01-01T00:00:00Z"),
            &precedence
        ));
        assert!(!apply(&mut traits, &update(json!("web")), "events", t("2026-06-01T00:00:00Z"), &precedence));
        assert_eq!(values(&traits)["plan"], "crm");
        assert!(apply(
            &mut traits,
            &update(json!("new")),
            "import:other",
            t("2026-02-01T00:00:00Z"),
            &precedence
        ));
        assert!(!apply(
            &mut traits,
            &update(json!("old")),
            "import:crm",
            t("2025-02-01T00:00:00Z"),
            &precedence
        ));
        assert!(apply(&mut traits, &update(json!("staff")), "staff", t("2020-01-01T00:00:00Z"), &precedence));
        assert_eq!(values(&traits)["plan"], "staff");
    }
}
