//! Reading touches, conversions and merges for a report, streamed row by row so a report over
//! millions of events never holds them all as database rows.

use super::rules::{ChannelRules, TouchFacts};
use crate::Result;
use crate::conversions::{ConversionDefinition, Worth};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use platform::sql::Sql;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, QueryResult, StreamTrait};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// What a report's touches are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchDimension {
    /// The marketing channel (by the workspace's rules, or the campaign's channel kind).
    Channel,
    /// The journey for campaign touches, the UTM campaign for ingested ones.
    Campaign,
    /// The device the touch reached (`ios`, `android`, `web`…).
    Device,
}

/// Joins the marketing context's columns in one text: the unit separator, a control character
/// ingestion strips from UTM values and referrers.
const CONTEXT_SEPARATOR: char = '\u{1f}';

/// Label of a touch with no campaign or device.
pub const NONE_LABEL: &str = "(none)";

/// Interned labels: a report handles millions of touches but a few hundred distinct names.
#[derive(Debug, Default)]
pub struct Labels {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Labels {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or(NONE_LABEL, String::as_str)
    }
}

/// One touch of one person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    pub at: DateTime<Utc>,
    pub channel: u32,
    pub campaign: u32,
    pub device: u32,
}

impl Touch {
    pub fn label(&self, dimension: TouchDimension) -> u32 {
        match dimension {
            TouchDimension::Channel => self.channel,
            TouchDimension::Campaign => self.campaign,
            TouchDimension::Device => self.device,
        }
    }
}

/// One conversion of one person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// Everyone's touches in a window, each person's in time order.
#[derive(Debug, Default)]
pub struct TouchLog {
    pub labels: Labels,
    pub by_profile: HashMap<Uuid, Vec<Touch>>,
}

/// Conversions in a window, each person's in time order.
#[derive(Debug, Default)]
pub struct ConversionLog {
    pub by_profile: HashMap<Uuid, Vec<Conversion>>,
    /// Events of the right name that stated another currency.
    pub other_currency: u64,
}

/// Profiles merged into others: events already point at the survivor, but campaign touchpoints
/// and enrollments keep the id they had.
#[derive(Debug, Default)]
pub struct Merges(HashMap<Uuid, Uuid>);

impl Merges {
    pub async fn load<C: ConnectionTrait>(txn: &C, tenant: Uuid) -> Result<Self> {
        let mut statement = Sql::new("SELECT id, merged_into FROM profiles WHERE tenant_id = ");
        statement.bind(tenant).push(" AND merged_into IS NOT NULL");
        let rows = statement.fetch_all(txn).await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            map.insert(row.try_get::<Uuid>("", "id")?, row.try_get::<Uuid>("", "merged_into")?);
        }
        Ok(Self(map))
    }

    /// The profile that holds this one's data now (following chains of merges).
    pub fn current(&self, mut profile: Uuid) -> Uuid {
        for _ in 0..=self.0.len() {
            match self.0.get(&profile) {
                Some(next) => profile = *next,
                None => break,
            }
        }
        profile
    }
}

/// What a report reads touches for.
pub struct TouchQuery<'a> {
    pub tenant: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rules: &'a ChannelRules,
    /// Campaign touchpoint kinds that count (`send`, `impression`, `click`…).
    pub campaign_kinds: &'a [String],
}

/// Reads ingested and campaign touches in `[from, to)`, each person's in time order.
pub async fn load_touches(
    txn: &DatabaseTransaction,
    query: &TouchQuery<'_>,
    merges: &Merges,
) -> Result<TouchLog> {
    let mut log = load_event_touches(txn, query).await?;
    log.absorb(load_campaign_touches(txn, query, merges).await?);
    log.sort();
    Ok(log)
}

impl TouchLog {
    /// Adds another log's touches (read apart, e.g. concurrently), translating its labels.
    pub fn absorb(&mut self, other: TouchLog) {
        let labels: Vec<u32> = other.labels.names.iter().map(|name| self.labels.intern(name)).collect();
        let relabel = |id: u32| labels.get(id as usize).copied().unwrap_or(id);
        for (profile, touches) in other.by_profile {
            let mine = self.by_profile.entry(profile).or_default();
            mine.extend(touches.into_iter().map(|touch| Touch {
                at: touch.at,
                channel: relabel(touch.channel),
                campaign: relabel(touch.campaign),
                device: relabel(touch.device),
            }));
        }
    }

    /// Puts each person's touches in time order.
    pub fn sort(&mut self) {
        for touches in self.by_profile.values_mut() {
            touches.sort_by_key(|touch| touch.at);
        }
    }
}

/// Reads the ingested events that are touches in `[from, to)` (not sorted).
pub async fn load_event_touches(txn: &DatabaseTransaction, query: &TouchQuery<'_>) -> Result<TouchLog> {
    let mut log = TouchLog::default();
    // Distinct marketing contexts are few: classify each once.
    // The marketing context comes as one text (the six columns joined by a separator that no
    // normalised value holds): one string to decode and one lookup per row, and the few
    // distinct contexts are classified once each.
    let mut classified: HashMap<String, (u32, u32, u32)> = HashMap::new();
    let mut events = Sql::new(&format!(
        "SELECT profile_id, occurred_at, coalesce(channel, '') || '{CONTEXT_SEPARATOR}' || coalesce(utm_source, '') \
         || '{CONTEXT_SEPARATOR}' || coalesce(utm_medium, '') || '{CONTEXT_SEPARATOR}' || coalesce(utm_campaign, '') \
         || '{CONTEXT_SEPARATOR}' || coalesce(referrer_host, '') || '{CONTEXT_SEPARATOR}' || coalesce(device, '') \
         AS context FROM events WHERE tenant_id = "
    ));
    events
        .bind(query.tenant)
        .push(" AND touch AND occurred_at >= ")
        .bind(query.from)
        .push(" AND occurred_at < ")
        .bind(query.to)
        .push(" AND profile_id IS NOT NULL");
    let mut rows = txn.stream_raw(events.statement(ConnectionTrait::get_database_backend(txn))).await?;
    while let Some(row) = rows.try_next().await? {
        let (profile, at, context) = touch_row(&row)?;
        let (channel, campaign, device) = match classified.get(context.as_ref()) {
            Some(&labels) => labels,
            None => {
                let parts: Vec<Option<&str>> = context
                    .split(CONTEXT_SEPARATOR)
                    .map(|part| Some(part).filter(|p| !p.is_empty()))
                    .collect();
                let part = |i: usize| parts.get(i).copied().flatten();
                let facts = TouchFacts {
                    event_channel: part(0),
                    source: part(1),
                    medium: part(2),
                    campaign: part(3),
                    referrer: part(4),
                };
                let labels = (
                    log.labels.intern(query.rules.classify(&facts)),
                    log.labels.intern(part(3).unwrap_or(NONE_LABEL)),
                    log.labels.intern(part(5).unwrap_or(NONE_LABEL)),
                );
                classified.insert(context.clone().into_owned(), labels);
                labels
            }
        };
        log.by_profile.entry(profile).or_default().push(Touch { at, channel, campaign, device });
    }
    drop(rows);
    Ok(log)
}

/// Reads the campaign touchpoints in `[from, to)`, on the profiles that hold them now (not
/// sorted).
pub async fn load_campaign_touches(
    txn: &DatabaseTransaction,
    query: &TouchQuery<'_>,
    merges: &Merges,
) -> Result<TouchLog> {
    let mut log = TouchLog::default();
    if !query.campaign_kinds.is_empty() {
        // As for events: the labels come as one text, classified once per distinct value.
        let mut touchpoints = Sql::new(&format!(
            "SELECT t.profile_id, t.at, t.channel || '{CONTEXT_SEPARATOR}' || coalesce(j.name, '') || \
             '{CONTEXT_SEPARATOR}' || coalesce(t.device, '') AS context FROM touchpoints t LEFT JOIN journeys j \
             ON j.tenant_id = t.tenant_id AND j.id = t.journey_id WHERE t.tenant_id = "
        ));
        touchpoints
            .bind(query.tenant)
            .push(" AND t.at >= ")
            .bind(query.from)
            .push(" AND t.at < ")
            .bind(query.to)
            .push(" AND t.kind IN ")
            .bind_list(query.campaign_kinds.iter().cloned());
        let mut classified: HashMap<String, (u32, u32, u32)> = HashMap::new();
        let mut rows =
            txn.stream_raw(touchpoints.statement(ConnectionTrait::get_database_backend(txn))).await?;
        while let Some(row) = rows.try_next().await? {
            let (profile, at, context) = touch_row(&row)?;
            let (channel, campaign, device) = match classified.get(context.as_ref()) {
                Some(&labels) => labels,
                None => {
                    let mut parts =
                        context.split(CONTEXT_SEPARATOR).map(|part| Some(part).filter(|p| !p.is_empty()));
                    let mut label = || log.labels.intern(parts.next().flatten().unwrap_or(NONE_LABEL));
                    let labels = (label(), label(), label());
                    classified.insert(context.clone().into_owned(), labels);
                    labels
                }
            };
            log.by_profile.entry(merges.current(profile)).or_default().push(Touch {
                at,
                channel,
                campaign,
                device,
            });
        }
    }
    Ok(log)
}

/// A touch row's profile, time and context (columns 0, 1 and 2). On PostgreSQL the context is
/// borrowed from the row: millions of rows, a few distinct contexts, so no copy unless new.
fn touch_row(row: &QueryResult) -> Result<(Uuid, DateTime<Utc>, std::borrow::Cow<'_, str>)> {
    if let Some(row) = row.try_as_pg_row() {
        use sea_orm::sqlx::Row as _;
        let read = |e: sea_orm::sqlx::Error| crate::MeasurementError::Internal(Box::new(e));
        let context: &str = row.try_get(2).map_err(read)?;
        return Ok((row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?, context.into()));
    }
    Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index::<String>(2)?.into()))
}

/// Reads the conversions of `definition` in `[from, to)`.
pub async fn load_conversions(
    txn: &DatabaseTransaction,
    tenant: Uuid,
    definition: &ConversionDefinition,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ConversionLog> {
    let backend = ConnectionTrait::get_database_backend(txn);
    let mut select = Sql::new("SELECT profile_id, occurred_at, ");
    match backend {
        DbBackend::Postgres => select.push("body->'properties'"),
        // The path is bound: a literal `$` would be read as a parameter marker.
        _ => select.push("json_extract(body, ").bind("$.properties").push(")"),
    };
    select.push(" AS properties FROM events WHERE tenant_id = ");
    select
        .bind(tenant)
        .push(" AND type = 'track' AND name = ")
        .bind(definition.event_name.clone())
        .push(" AND occurred_at >= ")
        .bind(from)
        .push(" AND occurred_at < ")
        .bind(to)
        .push(" AND profile_id IS NOT NULL");
    let mut log = ConversionLog::default();
    let mut rows = txn.stream_raw(select.statement(backend)).await?;
    while let Some(row) = rows.try_next().await? {
        let properties = json_column(&row, "properties");
        match definition.worth(&properties) {
            Worth::Counts(value) => {
                let profile: Uuid = row.try_get("", "profile_id")?;
                let at: DateTime<Utc> = row.try_get("", "occurred_at")?;
                log.by_profile.entry(profile).or_default().push(Conversion { at, value });
            }
            Worth::OtherCurrency => log.other_currency += 1,
            Worth::FilteredOut => {}
        }
    }
    drop(rows);
    for conversions in log.by_profile.values_mut() {
        conversions.sort_by_key(|conversion| conversion.at);
    }
    Ok(log)
}

/// A JSON column or expression: `jsonb` on PostgreSQL, JSON text on SQLite; `Null` when absent.
fn json_column(row: &QueryResult, column: &str) -> Value {
    if let Ok(Some(value)) = row.try_get::<Option<Value>>("", column) {
        return value;
    }
    row.try_get::<Option<String>>("", column)
        .ok()
        .flatten()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_chains_and_stop_on_cycles() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let merges = Merges(HashMap::from([(a, b), (b, c)]));
        assert_eq!(merges.current(a), c);
        assert_eq!(merges.current(c), c);
        let cycle = Merges(HashMap::from([(a, b), (b, a)]));
        let end = cycle.current(a);
        assert!(end == a || end == b, "a corrupt cycle ends instead of looping");
    }

    #[test]
    fn labels_are_interned_once() {
        let mut labels = Labels::default();
        let email = labels.intern("email");
        assert_eq!(labels.intern("sms"), email + 1);
        assert_eq!(labels.intern("email"), email);
        assert_eq!(labels.name(email), "email");
    }
}
