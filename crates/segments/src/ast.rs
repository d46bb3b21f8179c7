//! The machine form of a segment definition: a tree of conditions, serialised as tagged JSON.
//! The text form ([`crate::dsl`]) parses into it and prints from it; the compiler
//! ([`crate::compile`]) turns it into SQL.

use crate::error::{Result, SegmentsError};
use kernel::SegmentId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Limits a definition must respect, so a hostile or runaway one cannot exhaust the parser,
/// the compiler or the database.
pub const MAX_DEPTH: usize = 24;
pub const MAX_CONDITIONS: usize = 256;
pub const MAX_LIST_VALUES: usize = 1000;
pub const MAX_NAME_BYTES: usize = 200;
pub const MAX_STRING_BYTES: usize = 1000;
pub const MAX_SEQUENCE_STEPS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    And {
        conditions: Vec<Condition>,
    },
    Or {
        conditions: Vec<Condition>,
    },
    Not {
        condition: Box<Condition>,
    },
    /// A trait of the profile compared with a value.
    Trait {
        name: String,
        op: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
    /// One of the traits the platform computes (first and last seen, counts, revenue…).
    Computed {
        name: ComputedTrait,
        op: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
    /// Events of one name, optionally filtered by their properties, measured (at least once
    /// by default), within a window back from now.
    Event {
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        measure: Option<Measure>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<Window>,
    },
    /// Events in order: each step after the previous one, the last within `within` of the
    /// first.
    Sequence {
        steps: Vec<SequenceStep>,
        within: Window,
    },
    /// Has at least one identifier of a kind (email, phone, maid…).
    Identity {
        kind: String,
    },
    /// Has granted consent for a purpose on a channel (the channel's own record, else the
    /// purpose's record for every channel; the latest wins).
    Consent {
        purpose: String,
        channel: String,
    },
    /// Has had an event on a channel.
    Channel {
        channel: String,
    },
    /// Has used a device type.
    Device {
        device: String,
    },
    /// Is in another segment (its current definition, evaluated together with this one).
    Segment {
        id: SegmentId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Contains,
    StartsWith,
    Exists,
}

impl Op {
    pub const ALL: [Op; 10] =
        [Op::Eq, Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::In, Op::Contains, Op::StartsWith, Op::Exists];

    /// How the text form writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::In => "in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::Exists => "exists",
        }
    }

    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Lte | Op::Gt | Op::Gte)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputedTrait {
    FirstSeen,
    LastSeen,
    EventCount,
    Revenue,
    FirstChannel,
}

impl ComputedTrait {
    pub const ALL: [ComputedTrait; 5] = [
        ComputedTrait::FirstSeen,
        ComputedTrait::LastSeen,
        ComputedTrait::EventCount,
        ComputedTrait::Revenue,
        ComputedTrait::FirstChannel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComputedTrait::FirstSeen => "first_seen",
            ComputedTrait::LastSeen => "last_seen",
            ComputedTrait::EventCount => "event_count",
            ComputedTrait::Revenue => "revenue",
            ComputedTrait::FirstChannel => "first_channel",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub fn kind(self) -> ValueKind {
        match self {
            ComputedTrait::FirstSeen | ComputedTrait::LastSeen => ValueKind::Time,
            ComputedTrait::EventCount | ComputedTrait::Revenue => ValueKind::Number,
            ComputedTrait::FirstChannel => ValueKind::Text,
        }
    }
}

/// What a computed trait holds, which decides the comparisons it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Time,
    Number,
    Text,
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Text(String),
    /// A moment relative to the evaluation: `30 days ago`.
    Ago {
        ago: Window,
    },
    List(Vec<Value>),
}

/// A span of time back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub amount: u32,
    pub unit: TimeUnit,
}

impl Window {
    /// Longest window accepted: ten years.
    pub const MAX_SECONDS: i64 = 10 * 366 * 24 * 3600;

    pub fn seconds(self) -> i64 {
        i64::from(self.amount) * self.unit.seconds()
    }

    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::seconds(self.seconds())
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit.as_str();
        // `1 day`, `2 days`.
        let unit = if self.amount == 1 { &unit[..unit.len() - 1] } else { unit };
        write!(f, "{} {unit}", self.amount)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl TimeUnit {
    pub fn seconds(self) -> i64 {
        match self {
            TimeUnit::Minutes => 60,
            TimeUnit::Hours => 3600,
            TimeUnit::Days => 86_400,
            TimeUnit::Weeks => 7 * 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Minutes => "minutes",
            TimeUnit::Hours => "hours",
            TimeUnit::Days => "days",
            TimeUnit::Weeks => "weeks",
        }
    }

    /// Singular or plural: `day`, `days`.
    pub fn parse(word: &str) -> Option<Self> {
        let plural = if word.ends_with('s') { word.to_owned() } else { format!("{word}s") };
        [TimeUnit::Minutes, TimeUnit::Hours, TimeUnit::Days, TimeUnit::Weeks]
            .into_iter()
            .find(|u| u.as_str() == plural)
    }
}

/// A condition on a property of an event: `revenue > 50`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFilter {
    pub property: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// How an event condition measures the matching events: `count >= 2`, `sum(revenue) > 100`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub aggregate: Aggregate,
    /// The numeric property summed or averaged; none for `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        [Aggregate::Count, Aggregate::Sum, Aggregate::Avg, Aggregate::Min, Aggregate::Max]
            .into_iter()
            .find(|a| a.as_str() == word)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceStep {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<PropertyFilter>,
}

impl Condition {
    /// Reads the JSON form, then checks it as [`Condition::validate`] does.
    pub fn from_json(json: &str) -> Result<Self> {
        let condition: Condition = serde_json::from_str(json).map_err(|e| {
            SegmentsError::invalid(format!("the definition is not valid JSON for a segment: {e}"))
        })?;
        condition.validate()?;
        Ok(condition)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The same definition with groups of one replaced by their member, which the text form
    /// cannot tell apart. Stored definitions are normalised.
    pub fn normalized(self) -> Condition {
        match self {
            Condition::And { conditions } | Condition::Or { conditions } if conditions.len() == 1 => {
                conditions
                    .into_iter()
                    .next()
                    .map(Condition::normalized)
                    .unwrap_or(Condition::And { conditions: Vec::new() })
            }
            Condition::And { conditions } => {
                Condition::And { conditions: conditions.into_iter().map(Condition::normalized).collect() }
            }
            Condition::Or { conditions } => {
                Condition::Or { conditions: conditions.into_iter().map(Condition::normalized).collect() }
            }
            Condition::Not { condition } => Condition::Not { condition: Box::new(condition.normalized()) },
            other => other,
        }
    }

    /// The segments this definition refers to directly.
    pub fn segment_refs(&self) -> Vec<SegmentId> {
        let mut refs = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Segment { id } = c {
                refs.push(*id);
            }
        });
        refs
    }

    /// Whether the definition depends on the time of evaluation, so that membership can change
    /// without any new data (a window that slides, a date relative to now).
    pub fn is_time_relative(&self) -> bool {
        let mut relative = false;
        self.walk(&mut |c| {
            relative |= match c {
                Condition::Event { within, .. } => within.is_some(),
                Condition::Sequence { .. } => false,
                Condition::Trait { value, .. } | Condition::Computed { value, .. } => {
                    matches!(value, Some(Value::Ago { .. }))
                }
                _ => false,
            }
        });
        relative
    }

    fn walk(&self, visit: &mut impl FnMut(&Condition)) {
        visit(self);
        match self {
            Condition::And { conditions } | Condition::Or { conditions } => {
                conditions.iter().for_each(|c| c.walk(visit));
            }
            Condition::Not { condition } => condition.walk(visit),
            _ => {}
        }
    }

    /// Checks what the types cannot say: limits, and comparisons that make sense for their
    /// value (`exists` takes no value, `in` a list, `<` a number, a date or a text…).
    pub fn validate(&self) -> Result<()> {
        let mut count = 0;
        self.validate_at(0, &mut count)
    }

    fn validate_at(&self, depth: usize, count: &mut usize) -> Result<()> {
        *count += 1;
        if depth > MAX_DEPTH {
            return Err(SegmentsError::invalid(format!(
                "the definition nests deeper than {MAX_DEPTH} levels"
            )));
        }
        if *count > MAX_CONDITIONS {
            return Err(SegmentsError::invalid(format!(
                "the definition has more than {MAX_CONDITIONS} conditions"
            )));
        }
        match self {
            Condition::And { conditions } | Condition::Or { conditions } => {
                if conditions.is_empty() {
                    return Err(SegmentsError::invalid("`and` and `or` need at least one condition"));
                }
                for c in conditions {
                    c.validate_at(depth + 1, count)?;
                }
            }
            Condition::Not { condition } => condition.validate_at(depth + 1, count)?,
            Condition::Trait { name, op, value } => {
                check_key("trait name", name)?;
                check_comparison(*op, value.as_ref(), None)?;
            }
            Condition::Computed { name, op, value } => {
                check_comparison(*op, value.as_ref(), Some(name.kind()))?;
            }
            Condition::Event { name, filters, measure, within } => {
                check_name("event name", name)?;
                check_filters(filters)?;
                if let Some(measure) = measure {
                    check_measure(measure)?;
                }
                if let Some(window) = within {
                    check_window(*window)?;
                }
            }
            Condition::Sequence { steps, within } => {
                if steps.len() < 2 || steps.len() > MAX_SEQUENCE_STEPS {
                    return Err(SegmentsError::invalid(format!(
                        "a sequence has 2 to {MAX_SEQUENCE_STEPS} steps"
                    )));
                }
                for step in steps {
                    check_name("event name", &step.name)?;
                    check_filters(&step.filters)?;
                }
                check_window(*within)?;
            }
            Condition::Identity { kind } => check_word("identity kind", kind)?,
            Condition::Consent { purpose, channel } => {
                check_word("purpose", purpose)?;
                if channel != "*" {
                    check_word("channel", channel)?;
                }
            }
            Condition::Channel { channel } => check_word("channel", channel)?,
            Condition::Device { device } => check_name("device", device)?,
            Condition::Segment { .. } => {}
        }
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(SegmentsError::invalid(format!("the {what} must be 1 to {MAX_NAME_BYTES} bytes")));
    }
    Ok(())
}

/// Trait and property names are JSON keys, dotted for nested ones (`address.city`).
fn check_key(what: &str, name: &str) -> Result<()> {
    check_name(what, name)?;
    if name.split('.').any(str::is_empty) || name.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(SegmentsError::invalid(format!(
            "the {what} `{name}` cannot hold quotes, backslashes or empty parts between dots"
        )));
    }
    Ok(())
}

/// Channels, purposes and identity kinds are lower-case words, as the profiles store them.
pub(crate) fn check_word(what: &str, word: &str) -> Result<()> {
    let ok = word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && word.len() <= 64
        && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(SegmentsError::invalid(format!(
            "the {what} `{word}` must be lower-case letters, digits and _"
        )));
    }
    Ok(())
}

fn check_window(window: Window) -> Result<()> {
    if window.amount == 0 || window.seconds() > Window::MAX_SECONDS {
        return Err(SegmentsError::invalid("a time window must be between 1 minute and 10 years"));
    }
    Ok(())
}

fn check_filters(filters: &[PropertyFilter]) -> Result<()> {
    for filter in filters {
        check_key("property name", &filter.property)?;
        check_comparison(filter.op, filter.value.as_ref(), None)?;
    }
    Ok(())
}

fn check_measure(measure: &Measure) -> Result<()> {
    match (measure.aggregate, &measure.property) {
        (Aggregate::Count, Some(_)) => {
            return Err(SegmentsError::invalid("`count` counts events: it takes no property"));
        }
        (Aggregate::Count, None) => {}
        (_, None) => {
            return Err(SegmentsError::invalid(format!(
                "`{}` needs the property it adds up, e.g. {}(revenue)",
                measure.aggregate.as_str(),
                measure.aggregate.as_str()
            )));
        }
        (_, Some(property)) => check_key("property name", property)?,
    }
    if !matches!(measure.op, Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte) {
        return Err(SegmentsError::invalid("a count or a sum compares with =, !=, <, <=, > or >="));
    }
    if !measure.value.is_finite() {
        return Err(SegmentsError::invalid("a count or a sum compares with a finite number"));
    }
    Ok(())
}

fn check_comparison(op: Op, value: Option<&Value>, kind: Option<ValueKind>) -> Result<()> {
    let symbol = op.symbol();
    match (op, value) {
        (Op::Exists, None) => return Ok(()),
        (Op::Exists, Some(_)) => return Err(SegmentsError::invalid("`exists` takes no value")),
        (_, None) => return Err(SegmentsError::invalid(format!("`{symbol}` needs a value"))),
        (Op::In, Some(Value::List(items))) => {
            if items.is_empty() || items.len() > MAX_LIST_VALUES {
                return Err(SegmentsError::invalid(format!("`in` takes 1 to {MAX_LIST_VALUES} values")));
            }
            for item in items {
                check_scalar(item, kind)?;
                if matches!(item, Value::Ago { .. }) {
                    return Err(SegmentsError::invalid("`in` takes texts, numbers or true/false"));
                }
            }
        }
        (Op::In, Some(_)) => {
            return Err(SegmentsError::invalid(
                "`in` takes a list of values in parentheses: in (\"a\", \"b\")",
            ));
        }
        (_, Some(Value::List(_))) => {
            return Err(SegmentsError::invalid(format!("`{symbol}` compares with one value, not a list")));
        }
        (Op::Contains | Op::StartsWith, Some(Value::Text(_)))
            if kind.is_none_or(|k| k == ValueKind::Text) => {}
        (Op::Contains | Op::StartsWith, Some(_)) => {
            return Err(SegmentsError::invalid(format!("`{symbol}` looks for a text")));
        }
        (_, Some(Value::Bool(_))) if op.is_ordering() => {
            return Err(SegmentsError::invalid(format!("`{symbol}` cannot compare with true or false")));
        }
        (_, Some(Value::Ago { ago })) => {
            check_window(*ago)?;
            if kind.is_some_and(|k| k != ValueKind::Time) {
                return Err(SegmentsError::invalid("only dates compare with a time ago"));
            }
        }
        (_, Some(value)) => check_scalar(value, kind)?,
    }
    Ok(())
}

fn check_scalar(value: &Value, kind: Option<ValueKind>) -> Result<()> {
    match value {
        Value::Text(text) if text.len() > MAX_STRING_BYTES => {
            Err(SegmentsError::invalid(format!("a text value is at most {MAX_STRING_BYTES} bytes")))
        }
        Value::Number(n) if !n.is_finite() => Err(SegmentsError::invalid("numbers must be finite")),
        Value::Number(_) if kind.is_some_and(|k| k != ValueKind::Number) => {
            Err(SegmentsError::invalid("this computed trait does not hold a number"))
        }
        Value::Text(text) if kind == Some(ValueKind::Number) => Err(SegmentsError::invalid(format!(
            "this computed trait holds a number, not the text \"{text}\""
        ))),
        Value::Text(text)
            if kind == Some(ValueKind::Time) && crate::compile::parse_moment(text).is_none() =>
        {
            Err(SegmentsError::invalid(format!(
                "\"{text}\" is not a date: write it as 2026-01-31 or 2026-01-31T12:00:00Z"
            )))
        }
        Value::Bool(_) if kind.is_some() => {
            Err(SegmentsError::invalid("computed traits are not true or false"))
        }
        Value::List(_) => Err(SegmentsError::invalid("lists do not nest")),
        _ => Ok(()),
    }
}
