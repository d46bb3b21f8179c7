//! Conversion definitions: which tracked event counts as a conversion (its name and property
//! filters), what it is worth (a value property, in one currency), and how far back touches
//! may earn credit for it (the lookback window, 30 days unless set).

use crate::service::Measurement;
use crate::{MeasurementError, Result};
use chrono::{DateTime, Utc};
use kernel::{ConversionId, WorkspaceId};
use platform::sql::{Sql, json};
use sea_orm::QueryResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenancy::{Actor, Permission};
use uuid::Uuid;

pub const DEFAULT_LOOKBACK_DAYS: u32 = 30;
pub const MAX_LOOKBACK_DAYS: u32 = 365;
const MAX_FILTERS: usize = 20;
const MAX_NAME_CHARS: usize = 200;

/// How a filter compares a property with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    In,
    Exists,
}

/// One condition on the event's `properties` (a dotted path reads inside objects).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyFilter {
    pub property: String,
    pub op: FilterOp,
    #[serde(default)]
    pub value: Value,
}

impl PropertyFilter {
    fn validate(&self, position: usize) -> Result<()> {
        let property = self.property.trim();
        if property.is_empty() || property.len() > MAX_NAME_CHARS {
            return Err(MeasurementError::invalid(format!(
                "filter {position}: the property must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let fits = match self.op {
            FilterOp::Exists => self.value.is_null() || self.value.is_boolean(),
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => self.value.is_number(),
            FilterOp::Contains => self.value.is_string(),
            FilterOp::In => {
                self.value.as_array().is_some_and(|values| !values.is_empty() && values.len() <= 1000)
            }
            FilterOp::Eq | FilterOp::Ne => !self.value.is_null() && !self.value.is_object(),
        };
        if !fits {
            return Err(MeasurementError::invalid(format!(
                "filter {position} ({property}): {} needs {}",
                op_name(self.op),
                match self.op {
                    FilterOp::Exists => "no value (or true/false)",
                    FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => "a number",
                    FilterOp::Contains => "a string",
                    FilterOp::In => "a list of 1 to 1000 values",
                    _ => "a string, number or boolean",
                }
            )));
        }
        Ok(())
    }

    /// Whether the properties pass this filter. A missing property passes only `ne` and
    /// `exists: false`.
    pub fn matches(&self, properties: &Value) -> bool {
        let found = self.property.trim().split('.').try_fold(properties, |value, key| value.get(key));
        match (self.op, found) {
            (FilterOp::Exists, found) => {
                found.is_some_and(|v| !v.is_null()) == self.value.as_bool().unwrap_or(true)
            }
            (FilterOp::Ne, None) => true,
            (_, None) => false,
            (FilterOp::Eq, Some(found)) => same(found, &self.value),
            (FilterOp::Ne, Some(found)) => !same(found, &self.value),
            (FilterOp::In, Some(found)) => {
                self.value.as_array().is_some_and(|values| values.iter().any(|v| same(found, v)))
            }
            (FilterOp::Contains, Some(found)) => match (found.as_str(), self.value.as_str()) {
                (Some(text), Some(needle)) => text.to_lowercase().contains(&needle.to_lowercase()),
                _ => false,
            },
            (op, Some(found)) => match (number(found), self.value.as_f64()) {
                (Some(left), Some(right)) => match op {
                    FilterOp::Gt => left > right,
                    FilterOp::Gte => left >= right,
                    FilterOp::Lt => left < right,
                    _ => left <= right,
                },
                _ => false,
            },
        }
    }
}

fn op_name(op: FilterOp) -> &'static str {
    match op {
        FilterOp::Eq => "eq",
        FilterOp::Ne => "ne",
        FilterOp::Gt => "gt",
        FilterOp::Gte => "gte",
        FilterOp::Lt => "lt",
        FilterOp::Lte => "lte",
        FilterOp::Contains => "contains",
        FilterOp::In => "in",
        FilterOp::Exists => "exists",
    }
}

/// Equality as a marketer means it: strings case-insensitively, numbers by value (`"10"` is 10).
fn same(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::String(a), Value::String(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (a, b) if b.is_number() => number(a).zip(b.as_f64()).is_some_and(|(a, b)| a == b),
        (a, b) => a == b,
    }
}

/// A number, or a string holding one.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionDefinition {
    pub id: ConversionId,
    pub name: String,
    /// The `event` of the track calls that count.
    pub event_name: String,
    pub filters: Vec<PropertyFilter>,
    /// The property holding the conversion's value; `None` counts conversions without value.
    pub value_property: Option<String>,
    /// ISO 4217 code; events that state another `currency` are left out (and counted).
    pub currency: String,
    pub lookback_days: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A conversion definition as a caller gives it.
#[derive(Debug, Clone, Default)]
pub struct ConversionInput {
    pub name: String,
    pub event_name: String,
    pub filters: Vec<PropertyFilter>,
    pub value_property: Option<String>,
    pub currency: String,
    pub lookback_days: Option<u32>,
}

/// What one event is worth under a definition, or why it does not count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Worth {
    Counts(f64),
    FilteredOut,
    OtherCurrency,
}

impl ConversionDefinition {
    /// What an event of the right name is worth, from its `properties`.
    pub fn worth(&self, properties: &Value) -> Worth {
        if !self.filters.iter().all(|filter| filter.matches(properties)) {
            return Worth::FilteredOut;
        }
        if let Some(currency) = properties.get("currency").and_then(Value::as_str)
            && !currency.trim().eq_ignore_ascii_case(&self.currency)
        {
            return Worth::OtherCurrency;
        }
        let value = self
            .value_property
            .as_deref()
            .and_then(|path| path.split('.').try_fold(properties, |value, key| value.get(key)))
            .and_then(number)
            .filter(|value| *value >= 0.0)
            .unwrap_or(0.0);
        Worth::Counts(value)
    }
}

impl ConversionInput {
    fn validate(mut self) -> Result<Self> {
        self.name = self.name.trim().to_owned();
        self.event_name = self.event_name.trim().to_owned();
        if self.name.is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return Err(MeasurementError::invalid(format!(
                "the name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        if self.event_name.is_empty() || self.event_name.chars().count() > MAX_NAME_CHARS {
            return Err(MeasurementError::invalid(format!(
                "the event name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        if self.filters.len() > MAX_FILTERS {
            return Err(MeasurementError::invalid(format!("at most {MAX_FILTERS} filters")));
        }
        for (index, filter) in self.filters.iter().enumerate() {
            filter.validate(index + 1)?;
        }
        self.value_property = self.value_property.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
        if self.value_property.as_ref().is_some_and(|p| p.len() > MAX_NAME_CHARS) {
            return Err(MeasurementError::invalid("the value property is too long"));
        }
        self.currency = self.currency.trim().to_ascii_uppercase();
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(MeasurementError::invalid(format!(
                "the currency must be a three-letter ISO 4217 code, got {:?}",
                self.currency
            )));
        }
        let lookback = self.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS);
        if !(1..=MAX_LOOKBACK_DAYS).contains(&lookback) {
            return Err(MeasurementError::invalid(format!(
                "the lookback window must be 1 to {MAX_LOOKBACK_DAYS} days, got {lookback}"
            )));
        }
        self.lookback_days = Some(lookback);
        Ok(self)
    }
}

const COLUMNS: &str =
    "id, name, event_name, filters, value_property, currency, lookback_days, created_at, updated_at";

fn from_row(row: &QueryResult) -> Result<ConversionDefinition> {
    let filters: Value = row.try_get("", "filters")?;
    let lookback: i32 = row.try_get("", "lookback_days")?;
    Ok(ConversionDefinition {
        id: ConversionId::from_uuid(row.try_get("", "id")?),
        name: row.try_get("", "name")?,
        event_name: row.try_get("", "event_name")?,
        filters: serde_json::from_value(filters).map_err(|e| Measurement::internal(e.to_string()))?,
        value_property: row.try_get("", "value_property")?,
        currency: row.try_get("", "currency")?,
        lookback_days: u32::try_from(lookback).unwrap_or(DEFAULT_LOOKBACK_DAYS),
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

impl Measurement {
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn create_conversion(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        input: ConversionInput,
    ) -> Result<ConversionDefinition> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let input = input.validate()?;
        let txn = scope.begin_write(self.db()).await?;
        let now = self.now();
        let id = ConversionId::new();
        let mut insert =
            Sql::new(&format!("INSERT INTO conversion_definitions (tenant_id, {COLUMNS}) VALUES "));
        insert.values([vec![
            scope.tenant_id().as_uuid().into(),
            id.as_uuid().into(),
            input.name.clone().into(),
            input.event_name.clone().into(),
            json(&serde_json::to_value(&input.filters).unwrap_or_default()),
            input.value_property.clone().into(),
            input.currency.clone().into(),
            i32::try_from(input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS)).unwrap_or(30).into(),
            now.into(),
            now.into(),
        ]]);
        insert.push(" ON CONFLICT (tenant_id, name) DO NOTHING");
        if insert.execute(&txn).await? == 0 {
            return Err(MeasurementError::Conflict(format!(
                "a conversion named {:?} already exists",
                input.name
            )));
        }
        txn.commit().await?;
        self.cache().measurement_changed(workspace).await;
        Ok(ConversionDefinition {
            id,
            name: input.name,
            event_name: input.event_name,
            filters: input.filters,
            value_property: input.value_property,
            currency: input.currency,
            lookback_days: input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS),
            created_at: now,
            updated_at: now,
        })
    }

    #[tracing::instrument(skip_all, fields(workspace = %workspace, conversion = %id))]
    pub async fn update_conversion(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ConversionId,
        input: ConversionInput,
    ) -> Result<ConversionDefinition> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let input = input.validate()?;
        let txn = scope.begin_write(self.db()).await?;
        let mut statement = Sql::new("SELECT id FROM conversion_definitions WHERE tenant_id = ");
        statement
            .bind(scope.tenant_id().as_uuid())
            .push(" AND name = ")
            .bind(input.name.clone())
            .push(" AND id <> ")
            .bind(id.as_uuid());
        let clash = statement.fetch_all(&txn).await?;
        if !clash.is_empty() {
            return Err(MeasurementError::Conflict(format!(
                "a conversion named {:?} already exists",
                input.name
            )));
        }
        let mut update = Sql::new("UPDATE conversion_definitions SET name = ");
        update
            .bind(input.name.clone())
            .push(", event_name = ")
            .bind(input.event_name.clone())
            .push(", filters = ")
            .bind(json(&serde_json::to_value(&input.filters).unwrap_or_default()))
            .push(", value_property = ")
            .bind(input.value_property.clone())
            .push(", currency = ")
            .bind(input.currency.clone())
            .push(", lookback_days = ")
            .bind(i32::try_from(input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS)).unwrap_or(30))
            .push(", updated_at = ")
            .bind(self.now())
            .push(" WHERE tenant_id = ")
            .bind(scope.tenant_id().as_uuid())
            .push(" AND id = ")
            .bind(id.as_uuid());
        if update.execute(&txn).await? == 0 {
            return Err(MeasurementError::NotFound);
        }
        let updated = load_conversion(&txn, scope.tenant_id().as_uuid(), id).await?;
        txn.commit().await?;
        self.cache().measurement_changed(workspace).await;
        Ok(updated)
    }

    pub async fn delete_conversion(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ConversionId,
    ) -> Result<()> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let txn = scope.begin_write(self.db()).await?;
        let mut statement = Sql::new("DELETE FROM conversion_definitions WHERE tenant_id = ");
        statement.bind(scope.tenant_id().as_uuid()).push(" AND id = ").bind(id.as_uuid());
        let deleted = statement.execute(&txn).await?;
        if deleted == 0 {
            return Err(MeasurementError::NotFound);
        }
        txn.commit().await?;
        self.cache().measurement_changed(workspace).await;
        Ok(())
    }

    pub async fn conversion(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ConversionId,
    ) -> Result<ConversionDefinition> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let found = load_conversion(&txn, scope.tenant_id().as_uuid(), id).await?;
        txn.commit().await?;
        Ok(found)
    }

    /// Every conversion definition of the workspace, by name (a workspace has a handful).
    pub async fn conversions(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<ConversionDefinition>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut statement =
            Sql::new(&format!("SELECT {COLUMNS} FROM conversion_definitions WHERE tenant_id = "));
        statement.bind(scope.tenant_id().as_uuid()).push(" ORDER BY name");
        let rows = statement.fetch_all(&txn).await?;
        txn.commit().await?;
        rows.iter().map(from_row).collect()
    }
}

pub(crate) async fn load_conversion<C: sea_orm::ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    id: ConversionId,
) -> Result<ConversionDefinition> {
    let mut statement = Sql::new(&format!("SELECT {COLUMNS} FROM conversion_definitions WHERE tenant_id = "));
    statement.bind(tenant).push(" AND id = ").bind(id.as_uuid());
    let rows = statement.fetch_all(txn).await?;
    rows.first().map(from_row).transpose()?.ok_or(MeasurementError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(property: &str, op: FilterOp, value: Value) -> PropertyFilter {
        PropertyFilter { property: property.into(), op, value }
    }

    fn definition(filters: Vec<PropertyFilter>) -> ConversionDefinition {
        ConversionDefinition {
            id: ConversionId::new(),
            name: "orders".into(),
            event_name: "Order Completed".into(),
            filters,
            value_property: Some("order.total".into()),
            currency: "EUR".into(),
            lookback_days: 30,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn filters_compare_as_a_marketer_means() {
        let properties = json!({"plan": "Gold", "items": "12", "coupon": null, "address": {"country": "FR"}});
        for (f, expected) in [
            (filter("plan", FilterOp::Eq, json!("gold")), true),
            (filter("items", FilterOp::Eq, json!(12)), true),
            (filter("items", FilterOp::Gt, json!(10)), true),
            (filter("items", FilterOp::Lte, json!(11.5)), false),
            (filter("address.country", FilterOp::In, json!(["DE", "fr"])), true),
            (filter("plan", FilterOp::Contains, json!("OL")), true),
            (filter("coupon", FilterOp::Exists, Value::Null), false),
            (filter("coupon", FilterOp::Exists, json!(false)), true),
            (filter("missing", FilterOp::Ne, json!("x")), true),
            (filter("missing", FilterOp::Eq, json!("x")), false),
            (filter("plan", FilterOp::Gt, json!(1)), false),
        ] {
            assert_eq!(f.matches(&properties), expected, "{f:?}");
        }
    }

    #[test]
    fn worth_reads_the_value_and_leaves_out_other_currencies() {
        let def = definition(vec![filter("plan", FilterOp::Ne, json!("trial"))]);
        assert_eq!(def.worth(&json!({"order": {"total": "99.5"}})), Worth::Counts(99.5));
        assert_eq!(def.worth(&json!({"order": {"total": 10}, "currency": "eur"})), Worth::Counts(10.0));
        assert_eq!(def.worth(&json!({"order": {"total": 10}, "currency": "USD"})), Worth::OtherCurrency);
        assert_eq!(def.worth(&json!({"plan": "trial"})), Worth::FilteredOut);
        assert_eq!(def.worth(&json!({"order": {"total": -5}})), Worth::Counts(0.0), "refunds are not value");
        assert_eq!(def.worth(&json!({})), Worth::Counts(0.0));
    }

    #[test]
    fn inputs_are_checked_and_normalised() {
        let good = ConversionInput {
            name: " Orders ".into(),
            event_name: "Order Completed".into(),
            currency: "eur".into(),
            ..Default::default()
        };
        let checked = good.clone().validate().unwrap();
        assert_eq!((checked.name.as_str(), checked.currency.as_str()), ("Orders", "EUR"));
        assert_eq!(checked.lookback_days, Some(DEFAULT_LOOKBACK_DAYS));
        let bad = |input: ConversionInput| input.validate().unwrap_err().to_string();
        assert!(bad(ConversionInput { currency: "euro".into(), ..good.clone() }).contains("ISO 4217"));
        assert!(bad(ConversionInput { lookback_days: Some(0), ..good.clone() }).contains("lookback"));
        assert!(bad(ConversionInput { event_name: " ".into(), ..good.clone() }).contains("event name"));
        assert!(
            bad(ConversionInput { filters: vec![filter("x", FilterOp::Gt, json!("a"))], ..good.clone() })
                .contains("filter 1 (x): gt needs a number")
        );
        assert!(
            bad(ConversionInput { filters: vec![filter("x", FilterOp::In, json!([]))], ..good })
                .contains("a list of 1 to 1000 values")
        );
    }
}
