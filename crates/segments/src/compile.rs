//! Compiles a definition into one SQL condition over the live profile `p`, for PostgreSQL and
//! SQLite from the same code: only JSON access, a few functions and time arithmetic differ.
//!
//! Every leaf is two-valued (`COALESCE(…, false)`), so `not` means "everyone else": someone
//! without the trait `plan` is in `not trait plan = "pro"` and not in `trait plan != "pro"`.
//! Event conditions are set-based (`p.id IN (SELECT profile_id … GROUP BY … HAVING …)`), never
//! one subquery per profile, so the database can run them as joins over the events.

use crate::ast::{Aggregate, ComputedTrait, Condition, Measure, Op, PropertyFilter, Value, Window};
use crate::error::{Result, SegmentsError};
use chrono::{DateTime, NaiveDate, Utc};
use kernel::{ProfileId, SegmentId};
use platform::sql::Sql;
use sea_orm::DbBackend;
use std::collections::HashMap;
use uuid::Uuid;

/// What a compilation needs besides the definition.
pub struct Context<'a> {
    pub backend: DbBackend,
    pub tenant: Uuid,
    /// The moment "now" means in windows and relative dates.
    pub now: DateTime<Utc>,
    /// The current definitions of the segments this one refers to (and those they refer to).
    pub segments: &'a HashMap<SegmentId, Condition>,
    /// Only these profiles are asked about (the real-time path): every subquery is narrowed
    /// to them, so it reads their rows instead of the workspace's.
    pub only: Option<&'a [ProfileId]>,
}

/// Appends the definition as a boolean SQL expression over `p` (a row of `profiles`).
pub fn condition(sql: &mut Sql, definition: &Condition, context: &Context<'_>) -> Result<()> {
    Compiler { context, segment_depth: 0 }.condition(sql, definition)
}

/// Reads a date or a moment written in a definition: `2026-01-31` (midnight UTC) or RFC 3339.
pub fn parse_moment(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(moment) = DateTime::parse_from_rfc3339(text) {
        return Some(moment.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

struct Compiler<'a> {
    context: &'a Context<'a>,
    segment_depth: usize,
}

/// A JSON value inside a column: the trait `plan` is `p.traits` at `["plan", "value"]`, the
/// property `product.sku` is `e.body` at `["properties", "product", "sku"]`.
struct JsonAt<'k> {
    column: String,
    keys: Vec<&'k str>,
}

impl Compiler<'_> {
    fn postgres(&self) -> bool {
        self.context.backend == DbBackend::Postgres
    }

    fn condition(&mut self, sql: &mut Sql, condition: &Condition) -> Result<()> {
        match condition {
            Condition::And { conditions } | Condition::Or { conditions } => {
                let joiner = if matches!(condition, Condition::And { .. }) { " AND " } else { " OR " };
                sql.push("(");
                for (i, c) in conditions.iter().enumerate() {
                    if i > 0 {
                        sql.push(joiner);
                    }
                    self.condition(sql, c)?;
                }
                sql.push(")");
            }
            Condition::Not { condition } => {
                sql.push("(NOT ");
                self.condition(sql, condition)?;
                sql.push(")");
            }
            Condition::Trait { name, op, value } => {
                let mut keys: Vec<&str> = name.split('.').collect();
                // A trait's stored entry is {value, source, at}; a dotted name reads inside it.
                keys.insert(1, "value");
                self.leaf(sql, |this, sql| {
                    this.json_comparison(
                        sql,
                        &JsonAt { column: "p.traits".to_owned(), keys },
                        *op,
                        value.as_ref(),
                    )
                })?;
            }
            Condition::Computed { name, op, value } => {
                self.leaf(sql, |this, sql| this.computed(sql, *name, *op, value.as_ref()))?;
            }
            Condition::Event { name, filters, measure, within } => {
                self.event(sql, name, filters, measure.as_ref(), *within)?;
            }
            Condition::Sequence { steps, within } => {
                sql.push("p.id IN (SELECT e0.profile_id FROM events e0");
                for (i, step) in steps.iter().enumerate().skip(1) {
                    let (alias, previous) = (format!("e{i}"), format!("e{}", i - 1));
                    sql.push(&format!(
                        " JOIN events {alias} ON {alias}.tenant_id = e0.tenant_id AND {alias}.profile_id = e0.profile_id \
                         AND {alias}.id > {previous}.id AND {alias}.name = "
                    ))
                    .bind(step.name.clone());
                    self.filters(sql, &alias, &step.filters)?;
                    sql.push(" AND ");
                    self.within_of_first(sql, &alias, *within);
                }
                sql.push(" WHERE e0.tenant_id = ")
                    .bind(self.context.tenant)
                    .push(" AND e0.profile_id IS NOT NULL AND e0.name = ");
                sql.bind(steps[0].name.clone());
                self.filters(sql, "e0", &steps[0].filters)?;
                self.narrow(sql, "e0.profile_id");
                sql.push(")");
            }
            Condition::Identity { kind } => {
                sql.push("p.id IN (SELECT i.profile_id FROM identities i WHERE i.tenant_id = ")
                    .bind(self.context.tenant)
                    .push(" AND i.kind = ")
                    .bind(kind.clone());
                self.narrow(sql, "i.profile_id");
                sql.push(")");
            }
            Condition::Consent { purpose, channel } => {
                // The latest record for the channel, else the latest for every channel (`*`),
                // as `profiles::consent::decide` reads a history; set-based, so the database
                // ranks the workspace's consents once instead of probing them per profile.
                sql.push(
                    "p.id IN (SELECT latest.profile_id FROM (SELECT c.profile_id, c.granted, \
                     ROW_NUMBER() OVER (PARTITION BY c.profile_id ORDER BY CASE WHEN c.channel = ",
                )
                .bind(channel.clone())
                .push(" THEN 0 ELSE 1 END, c.id DESC) AS rank FROM consents c WHERE c.tenant_id = ")
                .bind(self.context.tenant)
                .push(" AND c.purpose = ")
                .bind(purpose.clone())
                .push(" AND c.channel IN (")
                .bind(channel.clone())
                .push(", '*')");
                self.narrow(sql, "c.profile_id");
                sql.push(") latest WHERE latest.rank = 1 AND latest.granted)");
            }
            Condition::Channel { channel } => {
                sql.push("p.id IN (SELECT e.profile_id FROM events e WHERE e.tenant_id = ")
                    .bind(self.context.tenant)
                    .push(" AND e.profile_id IS NOT NULL AND e.channel = ")
                    .bind(channel.clone());
                self.narrow(sql, "e.profile_id");
                sql.push(")");
            }
            Condition::Device { device } => {
                if self.postgres() {
                    sql.push("p.devices @> jsonb_build_array(").bind(device.clone()).push("::text)");
                } else {
                    sql.push("EXISTS (SELECT 1 FROM json_each(p.devices) d WHERE d.value = ")
                        .bind(device.clone())
                        .push(")");
                }
            }
            Condition::Segment { id } => {
                let definition = self
                    .context
                    .segments
                    .get(id)
                    .ok_or_else(|| SegmentsError::invalid(format!("the segment {id} does not exist")))?;
                self.segment_depth += 1;
                if self.segment_depth > crate::ast::MAX_DEPTH {
                    return Err(SegmentsError::invalid("segments refer to each other in a cycle"));
                }
                sql.push("(");
                self.condition(sql, definition)?;
                sql.push(")");
                self.segment_depth -= 1;
            }
        }
        Ok(())
    }

    /// Narrows a subquery to the profiles asked about, when only some are.
    fn narrow(&self, sql: &mut Sql, column: &str) {
        if let Some(only) = self.context.only {
            sql.push(" AND ").push(column).push(" IN ").bind_list(only.iter().map(ProfileId::as_uuid));
        }
    }

    /// A comparison that may be NULL (a missing trait), made two-valued.
    fn leaf(&mut self, sql: &mut Sql, write: impl FnOnce(&mut Self, &mut Sql) -> Result<()>) -> Result<()> {
        sql.push("COALESCE(");
        write(self, sql)?;
        sql.push(", false)");
        Ok(())
    }

    fn json_comparison(
        &mut self,
        sql: &mut Sql,
        at: &JsonAt<'_>,
        op: Op,
        value: Option<&Value>,
    ) -> Result<()> {
        let missing = || SegmentsError::invalid(format!("`{}` needs a value", op.symbol()));
        match (op, value) {
            (Op::Exists, _) => {
                sql.push("COALESCE(");
                self.json_type(sql, at);
                sql.push(", 'null') <> 'null'");
            }
            (Op::In, Some(Value::List(items))) => {
                sql.push("(false");
                for item in items {
                    sql.push(" OR ");
                    self.json_comparison(sql, at, Op::Eq, Some(item))?;
                }
                sql.push(")");
            }
            (Op::Contains, Some(Value::Text(needle))) => {
                sql.push("(");
                let function = if self.postgres() { "strpos" } else { "instr" };
                sql.push(function).push("(");
                self.json_text(sql, at);
                sql.push(", ").bind(needle.clone()).push(") > 0 OR (");
                // A list trait contains an element: interests contains "golf".
                self.json_type(sql, at);
                sql.push(" = 'array' AND ");
                if self.postgres() {
                    self.json_value(sql, at);
                    sql.push(" @> jsonb_build_array(").bind(needle.clone()).push("::text)");
                } else {
                    sql.push("EXISTS (SELECT 1 FROM json_each(").push(&at.column).push(", ");
                    self.sqlite_path(sql, at);
                    sql.push(") j WHERE j.type = 'text' AND j.value = ").bind(needle.clone()).push(")");
                }
                sql.push("))");
            }
            (Op::StartsWith, Some(Value::Text(prefix))) => {
                if self.postgres() {
                    sql.push("starts_with(");
                    self.json_text(sql, at);
                    sql.push(", ").bind(prefix.clone()).push(")");
                } else {
                    sql.push("substr(");
                    self.json_text(sql, at);
                    sql.push(", 1, length(").bind(prefix.clone()).push(")) = ").bind(prefix.clone());
                }
            }
            (_, Some(Value::Bool(flag))) => {
                // `!= true` is false for someone without the trait, like every `!=`.
                let wanted = (op == Op::Eq) == *flag;
                if self.postgres() {
                    self.json_value(sql, at);
                    sql.push(if wanted { " = 'true'::jsonb" } else { " = 'false'::jsonb" });
                } else {
                    self.json_type(sql, at);
                    sql.push(if wanted { " = 'true'" } else { " = 'false'" });
                }
            }
            (_, Some(Value::Number(number))) => {
                self.json_number(sql, at);
                sql.push(" ").push(sql_op(op)).push(" ").bind(*number);
            }
            (_, Some(Value::Text(text))) => {
                self.json_text(sql, at);
                self.collate(sql, op);
                sql.push(" ").push(sql_op(op)).push(" ").bind(text.clone());
            }
            (_, Some(Value::Ago { ago })) => {
                // Dates in traits are ISO 8601 texts, which sort as the moments they name.
                let moment = self.context.now - ago.duration();
                self.json_text(sql, at);
                self.collate(sql, op);
                sql.push(" ")
                    .push(sql_op(op))
                    .push(" ")
                    .bind(moment.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            }
            (_, Some(Value::List(_))) | (_, None) => return Err(missing()),
        }
        Ok(())
    }

    /// Text comparisons order by code point on both backends, whatever the database's locale.
    fn collate(&self, sql: &mut Sql, op: Op) {
        if self.postgres() && op.is_ordering() {
            sql.push(" COLLATE \"C\"");
        }
    }

    fn json_value(&self, sql: &mut Sql, at: &JsonAt<'_>) {
        sql.push("(").push(&at.column);
        for key in &at.keys {
            sql.push(" -> ").bind((*key).to_owned());
        }
        sql.push(")");
    }

    fn sqlite_path(&self, sql: &mut Sql, at: &JsonAt<'_>) {
        // Keys are quoted in the path; names with a double quote are refused by validation.
        let path: String = at.keys.iter().map(|k| format!(".\"{k}\"")).collect();
        sql.bind(format!("${path}"));
    }

    /// The JSON type: `string`/`number`/`boolean`/`array`/`object`/`null` on PostgreSQL,
    /// `text`/`integer`/`real`/`true`/`false`/`array`/`object`/`null` on SQLite; NULL when absent.
    fn json_type(&self, sql: &mut Sql, at: &JsonAt<'_>) {
        if self.postgres() {
            sql.push("jsonb_typeof(");
            self.json_value(sql, at);
            sql.push(")");
        } else {
            sql.push("json_type(").push(&at.column).push(", ");
            self.sqlite_path(sql, at);
            sql.push(")");
        }
    }

    /// The value as text when it is a JSON string, else NULL.
    fn json_text(&self, sql: &mut Sql, at: &JsonAt<'_>) {
        sql.push("(CASE WHEN ");
        self.json_type(sql, at);
        if self.postgres() {
            sql.push(" = 'string' THEN ");
            self.json_value(sql, at);
            sql.push(" #>> '{}' END)");
        } else {
            sql.push(" = 'text' THEN json_extract(").push(&at.column).push(", ");
            self.sqlite_path(sql, at);
            sql.push(") END)");
        }
    }

    /// The value as a number when it is a JSON number, else NULL.
    fn json_number(&self, sql: &mut Sql, at: &JsonAt<'_>) {
        sql.push("(CASE WHEN ");
        self.json_type(sql, at);
        if self.postgres() {
            sql.push(" = 'number' THEN (");
            self.json_value(sql, at);
            sql.push(" #>> '{}')::float8 END)");
        } else {
            sql.push(" IN ('integer', 'real') THEN json_extract(").push(&at.column).push(", ");
            self.sqlite_path(sql, at);
            sql.push(") END)");
        }
    }

    fn computed(&mut self, sql: &mut Sql, name: ComputedTrait, op: Op, value: Option<&Value>) -> Result<()> {
        let column = match name {
            ComputedTrait::FirstSeen => "p.first_seen_at",
            ComputedTrait::LastSeen => "p.last_seen_at",
            ComputedTrait::EventCount => "p.event_count",
            ComputedTrait::Revenue => "p.revenue",
            ComputedTrait::FirstChannel => "p.first_channel",
        };
        let invalid =
            || SegmentsError::invalid(format!("`{}` cannot compare {} that way", op.symbol(), name.as_str()));
        match (op, value) {
            (Op::Exists, _) => {
                sql.push(column).push(" IS NOT NULL");
            }
            (Op::In, Some(Value::List(items))) => {
                sql.push("(false");
                for item in items {
                    sql.push(" OR ");
                    self.computed(sql, name, Op::Eq, Some(item))?;
                }
                sql.push(")");
            }
            (Op::Contains, Some(Value::Text(needle))) => {
                let function = if self.postgres() { "strpos" } else { "instr" };
                sql.push(function).push("(").push(column).push(", ").bind(needle.clone()).push(") > 0");
            }
            (Op::StartsWith, Some(Value::Text(prefix))) => {
                if self.postgres() {
                    sql.push("starts_with(").push(column).push(", ").bind(prefix.clone()).push(")");
                } else {
                    sql.push("substr(")
                        .push(column)
                        .push(", 1, length(")
                        .bind(prefix.clone())
                        .push(")) = ")
                        .bind(prefix.clone());
                }
            }
            (_, Some(Value::Ago { ago })) => {
                sql.push(column).push(" ").push(sql_op(op)).push(" ").bind(self.context.now - ago.duration());
            }
            (_, Some(Value::Text(text)))
                if matches!(name, ComputedTrait::FirstSeen | ComputedTrait::LastSeen) =>
            {
                let moment = parse_moment(text).ok_or_else(invalid)?;
                sql.push(column).push(" ").push(sql_op(op)).push(" ").bind(moment);
            }
            (_, Some(Value::Text(text))) => {
                sql.push(column);
                self.collate(sql, op);
                sql.push(" ").push(sql_op(op)).push(" ").bind(text.clone());
            }
            (_, Some(Value::Number(number))) => {
                sql.push(column).push(" ").push(sql_op(op)).push(" ").bind(*number);
            }
            _ => return Err(invalid()),
        }
        Ok(())
    }

    /// Events of one name: at least once, or measured, within a window.
    fn event(
        &mut self,
        sql: &mut Sql,
        name: &str,
        filters: &[PropertyFilter],
        measure: Option<&Measure>,
        within: Option<Window>,
    ) -> Result<()> {
        let matching = |this: &mut Self, sql: &mut Sql| -> Result<()> {
            sql.push("SELECT e.profile_id FROM events e WHERE e.tenant_id = ")
                .bind(this.context.tenant)
                .push(" AND e.profile_id IS NOT NULL AND e.name = ")
                .bind(name.to_owned());
            if let Some(window) = within {
                sql.push(" AND e.occurred_at >= ").bind(this.context.now - window.duration());
            }
            this.narrow(sql, "e.profile_id");
            this.filters(sql, "e", filters)
        };
        let Some(measure) = measure else {
            sql.push("p.id IN (");
            matching(self, sql)?;
            sql.push(")");
            return Ok(());
        };
        // Someone with no matching event has a count and a sum of 0, and no average, minimum
        // or maximum. When 0 satisfies the comparison, the people in are those not among the
        // ones whose events fail it, which keeps the query a join instead of a count per
        // profile.
        let zero_satisfies = matches!(measure.aggregate, Aggregate::Count | Aggregate::Sum)
            && compare(0.0, measure.op, measure.value);
        sql.push(if zero_satisfies { "p.id NOT IN (" } else { "p.id IN (" });
        matching(self, sql)?;
        sql.push(" GROUP BY e.profile_id HAVING ");
        if zero_satisfies {
            sql.push("NOT (");
        }
        match (measure.aggregate, &measure.property) {
            (Aggregate::Count, _) => {
                sql.push("count(*)");
            }
            (aggregate, Some(property)) => {
                let keys: Vec<&str> = std::iter::once("properties").chain(property.split('.')).collect();
                if aggregate == Aggregate::Sum {
                    sql.push("COALESCE(");
                }
                sql.push(aggregate.as_str()).push("(");
                self.json_number(sql, &JsonAt { column: "e.body".to_owned(), keys });
                sql.push(")");
                if aggregate == Aggregate::Sum {
                    sql.push(", 0)");
                }
            }
            (_, None) => return Err(SegmentsError::invalid("this measure needs a property")),
        }
        sql.push(" ").push(sql_op(measure.op)).push(" ").bind(measure.value);
        if zero_satisfies {
            sql.push(")");
        }
        sql.push(")");
        Ok(())
    }

    fn filters(&mut self, sql: &mut Sql, alias: &str, filters: &[PropertyFilter]) -> Result<()> {
        for filter in filters {
            sql.push(" AND ");
            let keys: Vec<&str> = std::iter::once("properties").chain(filter.property.split('.')).collect();
            let at = JsonAt { column: format!("{alias}.body"), keys };
            self.leaf(sql, |this, sql| this.json_comparison(sql, &at, filter.op, filter.value.as_ref()))?;
        }
        Ok(())
    }

    /// `alias` happened at most `within` after the sequence's first step.
    fn within_of_first(&self, sql: &mut Sql, alias: &str, within: Window) {
        if self.postgres() {
            sql.push(&format!("{alias}.occurred_at <= e0.occurred_at + "))
                .bind(within.seconds())
                .push(" * interval '1 second'");
        } else {
            sql.push(&format!("julianday({alias}.occurred_at) <= julianday(e0.occurred_at) + "))
                .bind(within.seconds() as f64 / 86_400.0);
        }
    }
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Lt => "<",
        Op::Lte => "<=",
        Op::Gt => ">",
        Op::Gte => ">=",
        // Only reached for operators the callers handle themselves.
        Op::In | Op::Contains | Op::StartsWith | Op::Exists => "=",
    }
}

fn compare(left: f64, op: Op, right: f64) -> bool {
    match op {
        Op::Eq => left == right,
        Op::Ne => left != right,
        Op::Lt => left < right,
        Op::Lte => left <= right,
        Op::Gt => left > right,
        Op::Gte => left >= right,
        _ => false,
    }
}
