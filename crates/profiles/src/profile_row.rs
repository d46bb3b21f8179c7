//! A profile row as processing and merging change it in memory before writing it back.

use crate::{sql::Sql, traits, traits::SourcePrecedence};
use chrono::{DateTime, Utc};
use kernel::ProfileId;
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::{Map, Value};
use uuid::Uuid;

pub(crate) const COLUMNS: &str = "id, merged_into, traits, first_seen_at, last_seen_at, event_count, revenue, \
                                  first_channel, devices, search_text, created_at, updated_at";

#[derive(Debug, Clone)]
pub(crate) struct ProfileRow {
    pub id: ProfileId,
    pub merged_into: Option<ProfileId>,
    pub traits: Map<String, Value>,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub event_count: i64,
    pub revenue: f64,
    pub first_channel: Option<String>,
    pub devices: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Read from the database, rather than created in memory: saving it updates the row.
    pub stored: bool,
}

impl ProfileRow {
    pub fn new(id: ProfileId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            merged_into: None,
            traits: Map::new(),
            first_seen_at: None,
            last_seen_at: None,
            event_count: 0,
            revenue: 0.0,
            first_channel: None,
            devices: Vec::new(),
            created_at: now,
            updated_at: now,
            stored: false,
        }
    }

    pub fn from_row(row: &QueryResult) -> Result<Self, sea_orm::DbErr> {
        let traits: Value = row.try_get("", "traits")?;
        let devices: Value = row.try_get("", "devices")?;
        Ok(Self {
            id: ProfileId::from_uuid(row.try_get("", "id")?),
            merged_into: row.try_get::<Option<Uuid>>("", "merged_into")?.map(ProfileId::from_uuid),
            traits: match traits {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            first_seen_at: row.try_get("", "first_seen_at")?,
            last_seen_at: row.try_get("", "last_seen_at")?,
            event_count: row.try_get("", "event_count")?,
            revenue: row.try_get("", "revenue")?,
            first_channel: row.try_get("", "first_channel")?,
            devices: devices
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
            stored: true,
        })
    }

    /// Counts one event into the computed traits.
    pub fn record_event(
        &mut self,
        occurred_at: DateTime<Utc>,
        channel: Option<&str>,
        revenue: f64,
        device: Option<&str>,
    ) {
        let earliest = self.first_seen_at.is_none_or(|first| occurred_at < first);
        if earliest {
            self.first_seen_at = Some(occurred_at);
        }
        if let Some(channel) = channel
            && (earliest || self.first_channel.is_none())
        {
            self.first_channel = Some(channel.to_owned());
        }
        if self.last_seen_at.is_none_or(|last| occurred_at > last) {
            self.last_seen_at = Some(occurred_at);
        }
        self.event_count += 1;
        self.revenue += revenue;
        if let Some(device) = device
            && !self.devices.iter().any(|d| d == device)
            && self.devices.len() < 32
        {
            self.devices.push(device.to_owned());
        }
    }

    /// Folds `merged` into this profile: traits by precedence, computed traits combined.
    pub fn absorb(&mut self, merged: &ProfileRow, precedence: &SourcePrecedence) {
        traits::combine(&mut self.traits, &merged.traits, precedence);
        let merged_first = match (merged.first_seen_at, self.first_seen_at) {
            (Some(theirs), Some(ours)) => theirs < ours,
            (Some(_), None) => true,
            _ => false,
        };
        if merged_first {
            self.first_seen_at = merged.first_seen_at;
            if merged.first_channel.is_some() {
                self.first_channel.clone_from(&merged.first_channel);
            }
        } else if self.first_channel.is_none() {
            self.first_channel.clone_from(&merged.first_channel);
        }
        self.last_seen_at = self.last_seen_at.max(merged.last_seen_at);
        self.event_count += merged.event_count;
        self.revenue += merged.revenue;
        for device in &merged.devices {
            if !self.devices.contains(device) {
                self.devices.push(device.clone());
            }
        }
    }
}

/// [`COLUMNS`] qualified by a table alias, for joins.
pub(crate) fn qualified_columns(alias: &str) -> String {
    COLUMNS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// Loads profile rows by id.
pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    ids: &[ProfileId],
) -> Result<Vec<ProfileRow>, sea_orm::DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM profiles WHERE tenant_id = "));
    sql.bind(tenant).push(" AND id IN ").bind_list(ids.iter().map(ProfileId::as_uuid));
    sql.fetch_all(conn).await?.iter().map(ProfileRow::from_row).collect()
}

/// Writes rows back, 500 per statement: a plain insert for the rows created in memory and an
/// upsert for the stored ones (a plain insert skips PostgreSQL's speculative insertion, which
/// most rows of a chunk of new people would otherwise pay for nothing).
pub(crate) async fn save<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    rows: &[&ProfileRow],
) -> Result<(), sea_orm::DbErr> {
    let (stored, created): (Vec<&ProfileRow>, Vec<&ProfileRow>) = rows.iter().partition(|row| row.stored);
    for chunk in created.chunks(500) {
        insert_values(tenant, chunk).execute(conn).await?;
    }
    for chunk in stored.chunks(500) {
        let mut sql = insert_values(tenant, chunk);
        sql.push(
            " ON CONFLICT (tenant_id, id) DO UPDATE SET merged_into = excluded.merged_into, \
             traits = excluded.traits, first_seen_at = excluded.first_seen_at, \
             last_seen_at = excluded.last_seen_at, event_count = excluded.event_count, \
             revenue = excluded.revenue, first_channel = excluded.first_channel, devices = excluded.devices, \
             search_text = excluded.search_text, updated_at = excluded.updated_at",
        );
        sql.execute(conn).await?;
    }
    Ok(())
}

/// Saves rows and records them in the change feed on `topics` (merged rows included: they
/// leave their segments).
pub(crate) async fn save_and_record<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    rows: &[&ProfileRow],
    topics: &crate::changes::Topics,
) -> Result<(), sea_orm::DbErr> {
    save(conn, tenant, rows).await?;
    let changed: Vec<Uuid> = rows.iter().map(|row| row.id.as_uuid()).collect();
    let now = rows.iter().map(|row| row.updated_at).max().unwrap_or_else(chrono::Utc::now);
    crate::changes::record(conn, tenant, &changed, topics, now).await
}

/// `INSERT INTO profiles … VALUES` with one tuple per row.
fn insert_values(tenant: Uuid, rows: &[&ProfileRow]) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO profiles (tenant_id, {COLUMNS}) VALUES "));
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(tenant)
            .push(", ")
            .bind(row.id.as_uuid())
            .push(", ")
            .bind(row.merged_into.map(|p| p.as_uuid()))
            .push(", ")
            .bind(crate::sql::json(&Value::Object(row.traits.clone())))
            .push(", ")
            .bind(row.first_seen_at)
            .push(", ")
            .bind(row.last_seen_at)
            .push(", ")
            .bind(row.event_count)
            .push(", ")
            .bind(row.revenue)
            .push(", ")
            .bind(row.first_channel.clone())
            .push(", ")
            .bind(crate::sql::json(&serde_json::json!(row.devices)))
            .push(", ")
            .bind(crate::extract::search_text(&row.traits))
            .push(", ")
            .bind(row.created_at)
            .push(", ")
            .bind(row.updated_at)
            .push(")");
    }
    sql
}
