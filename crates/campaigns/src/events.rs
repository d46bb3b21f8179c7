//! Journeys and events: starting a journey when someone performs an event, moving on when an
//! awaited event happens, and jumping to a goal (a conversion) when its event happens. The
//! executor reads the workspace's processed events after a cursor, in id order (the order they
//! arrived, which is the order the ingestion worker processes them in), a few seconds back so
//! an event committed late by a slow gateway is not missed; re-reading is harmless, because an
//! event starts a journey at most once (`trigger_event_id`) and a wait or a goal moves a person
//! only from where they stand.

use crate::error::Result;
use crate::graph::{StepKind, Trigger};
use crate::journeys::Reentry;
use crate::service::{Campaigns, LoadedVersion};
use chrono::{DateTime, Utc};
use kernel::{JourneyId, ProfileId};
use platform::sql::Sql;
use platform::{Backend, TenantScope};
use sea_orm::ConnectionTrait;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// Events read per round.
const EVENTS_PER_ROUND: i64 = 5000;
/// How far back behind the cursor each round looks again.
const LATE_ARRIVAL_MS: u64 = 5_000;

/// A processed event a journey may care about.
struct Performed {
    id: Uuid,
    profile: ProfileId,
    name: String,
    occurred_at: DateTime<Utc>,
}

/// What the workspace's journeys listen for.
#[derive(Default)]
struct Listeners {
    /// Active journeys that start on an event: (journey, version, reentry, first step).
    triggers: HashMap<String, Vec<(JourneyId, i32, Reentry, String)>>,
    names: BTreeSet<String>,
}

impl Campaigns {
    /// Applies the events processed since the workspace's cursor. Returns how many people
    /// entered a journey.
    pub(crate) async fn react_to_events(&self, scope: &TenantScope) -> Result<usize> {
        let tenant = scope.tenant_id().as_uuid();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        let (listeners, versions) = self.listeners(&txn, scope).await?;
        if listeners.names.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let mut cursor_row = Sql::new("SELECT event_cursor FROM journey_event_cursors WHERE tenant_id = ");
        cursor_row.bind(tenant);
        if self.db().backend() == Backend::Postgres {
            cursor_row.push(" FOR UPDATE");
        }
        let cursor: Option<Uuid> = match cursor_row.fetch_one(&txn).await? {
            Some(row) => row.try_get("", "event_cursor")?,
            None => {
                // The first listening round starts now: history does not start journeys.
                let start = Uuid::now_v7();
                let mut insert = Sql::new(
                    "INSERT INTO journey_event_cursors (tenant_id, event_cursor, updated_at) VALUES (",
                );
                insert.bind(tenant).push(", ").bind(start).push(", ").bind(now).push(")");
                insert.execute(&txn).await?;
                txn.commit().await?;
                return Ok(0);
            }
        };
        let from = cursor.map(rewind);
        let mut select = Sql::new("SELECT id, profile_id, name, occurred_at FROM events WHERE tenant_id = ");
        select
            .bind(tenant)
            .push(" AND status = 'processed' AND name IN ")
            .bind_list(listeners.names.iter().cloned());
        if let Some(from) = from {
            select.push(" AND id > ").bind(from);
        }
        select.push(" ORDER BY id LIMIT ").bind(EVENTS_PER_ROUND);
        let mut events = Vec::new();
        for row in select.fetch_all(&txn).await? {
            events.push(Performed {
                id: row.try_get("", "id")?,
                profile: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                name: row.try_get("", "name")?,
                occurred_at: row.try_get("", "occurred_at")?,
            });
        }
        // The cursor moves to the last event read, or, when the round read them all, to the
        // newest processed event, so rounds without matching events do not rescan.
        let next_cursor = if events.len() as i64 == EVENTS_PER_ROUND {
            events.last().map(|e| e.id)
        } else {
            let mut newest = Sql::new("SELECT id FROM events WHERE tenant_id = ");
            newest.bind(tenant).push(" AND status = 'processed' ORDER BY id DESC LIMIT 1");
            newest.fetch_one(&txn).await?.map(|row| row.try_get("", "id")).transpose()?
        };
        let entered = self.start_journeys(&txn, tenant, &listeners, &events, now).await?;
        self.resume_waiting(&txn, tenant, &versions, &events, now).await?;
        if let Some(next) = next_cursor.filter(|next| cursor.is_none_or(|c| *next > c)) {
            let mut advance = Sql::new("UPDATE journey_event_cursors SET event_cursor = ");
            advance.bind(next).push(", updated_at = ").bind(now).push(" WHERE tenant_id = ").bind(tenant);
            advance.execute(&txn).await?;
        }
        txn.commit().await?;
        Ok(entered)
    }

    /// The events the workspace's journeys listen for, and the versions people are on.
    async fn listeners<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &TenantScope,
    ) -> Result<(Listeners, HashMap<(JourneyId, i32), Arc<LoadedVersion>>)> {
        let tenant = scope.tenant_id().as_uuid();
        let mut listeners = Listeners::default();
        let mut versions = HashMap::new();
        let mut active = Sql::new("SELECT id, version, reentry FROM journeys WHERE tenant_id = ");
        active.bind(tenant).push(" AND status = 'active'");
        for row in active.fetch_all(conn).await? {
            let journey = JourneyId::from_uuid(row.try_get("", "id")?);
            let version: i32 = row.try_get("", "version")?;
            let reentry = Reentry::parse(&row.try_get::<String>("", "reentry")?)?;
            let loaded = self.version(conn, scope, journey, version).await?;
            if let Trigger::EventPerformed { event } = &loaded.published.graph.entry.trigger {
                listeners.names.insert(event.clone());
                listeners.triggers.entry(event.clone()).or_default().push((
                    journey,
                    version,
                    reentry,
                    loaded.published.graph.entry.next.clone(),
                ));
            }
            versions.insert((journey, version), loaded);
        }
        // Older versions people still stand in may wait for events too: only journeys that
        // ever had such a step are looked at.
        let mut awaiting = Sql::new("SELECT id FROM journeys WHERE tenant_id = ");
        awaiting.bind(tenant).push(" AND awaits_events = ").bind(true);
        let awaiting: Vec<Uuid> = awaiting
            .fetch_all(conn)
            .await?
            .iter()
            .map(|row| row.try_get("", "id"))
            .collect::<Result<_, _>>()?;
        if awaiting.is_empty() {
            return Ok((listeners, versions));
        }
        let mut in_use = Sql::new(
            "SELECT DISTINCT e.journey_id, e.version FROM journey_enrollments e WHERE e.tenant_id = ",
        );
        in_use.bind(tenant).push(" AND e.status = 'active' AND e.journey_id IN ").bind_list(awaiting);
        for row in in_use.fetch_all(conn).await? {
            let key =
                (JourneyId::from_uuid(row.try_get("", "journey_id")?), row.try_get::<i32>("", "version")?);
            if let std::collections::hash_map::Entry::Vacant(slot) = versions.entry(key) {
                slot.insert(self.version(conn, scope, key.0, key.1).await?);
            }
        }
        for loaded in versions.values() {
            for step in &loaded.published.graph.steps {
                match &step.kind {
                    StepKind::WaitForEvent { event, .. } | StepKind::Goal { event, .. } => {
                        listeners.names.insert(event.clone());
                    }
                    _ => {}
                }
            }
        }
        Ok((listeners, versions))
    }

    /// Enrolls the performers of trigger events (each event at most once per journey).
    async fn start_journeys<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: Uuid,
        listeners: &Listeners,
        events: &[Performed],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut entered = 0;
        // Per journey: one read of what its performers already have, then the events in order.
        let mut by_journey: HashMap<JourneyId, (i32, Reentry, &str, Vec<&Performed>)> = HashMap::new();
        for event in events {
            for (journey, version, reentry, first_step) in
                listeners.triggers.get(&event.name).into_iter().flatten()
            {
                by_journey
                    .entry(*journey)
                    .or_insert_with(|| (*version, *reentry, first_step.as_str(), Vec::new()))
                    .3
                    .push(event);
            }
        }
        for (journey, (version, reentry, first_step, performed)) in by_journey {
            let candidates: Vec<(ProfileId, Option<Uuid>)> =
                performed.iter().map(|event| (event.profile, Some(event.id))).collect();
            let starting = crate::executor::admissible(conn, tenant, journey, reentry, &candidates).await?;
            crate::executor::insert_enrollments(conn, tenant, journey, version, first_step, &starting, now)
                .await?;
            entered += starting.len();
        }
        Ok(entered)
    }

    /// Moves on the people waiting for these events, and those whose goal they are.
    async fn resume_waiting<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: Uuid,
        versions: &HashMap<(JourneyId, i32), Arc<LoadedVersion>>,
        events: &[Performed],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut by_profile: HashMap<ProfileId, Vec<&Performed>> = HashMap::new();
        for event in events {
            by_profile.entry(event.profile).or_default().push(event);
        }
        let mut select = Sql::new(
            "SELECT id, journey_id, version, profile_id, step, waiting_for, waiting_since, entered_at \
             FROM journey_enrollments WHERE tenant_id = ",
        );
        select
            .bind(tenant)
            .push(" AND status = 'active' AND profile_id IN ")
            .bind_list(by_profile.keys().map(ProfileId::as_uuid));
        if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Wait for an executor round that holds one of them, then decide on what it left.
            select.push(" FOR UPDATE");
        }
        for row in select.fetch_all(conn).await? {
            let id: Uuid = row.try_get("", "id")?;
            let key =
                (JourneyId::from_uuid(row.try_get("", "journey_id")?), row.try_get::<i32>("", "version")?);
            let Some(loaded) = versions.get(&key) else { continue };
            let profile = ProfileId::from_uuid(row.try_get("", "profile_id")?);
            let step: String = row.try_get("", "step")?;
            let waiting_for: Option<String> = row.try_get("", "waiting_for")?;
            let waiting_since: Option<DateTime<Utc>> = row.try_get("", "waiting_since")?;
            let entered_at: DateTime<Utc> = row.try_get("", "entered_at")?;
            let performed = by_profile.get(&profile).map(Vec::as_slice).unwrap_or_default();
            // A goal wins over a wait: the person converted.
            let goal =
                loaded.published.graph.goals().find(|(_, event)| {
                    performed.iter().any(|p| p.name == *event && p.occurred_at >= entered_at)
                });
            let (next, converted) = if let Some((goal_step, _)) = goal {
                if goal_step == step {
                    continue;
                }
                (goal_step.to_owned(), true)
            } else {
                let Some(StepKind::WaitForEvent { event, next, .. }) =
                    loaded.published.graph.step(&step).map(|s| &s.kind)
                else {
                    continue;
                };
                let since = waiting_since.unwrap_or(entered_at);
                let arrived = waiting_for.as_deref() == Some(event.as_str())
                    && performed.iter().any(|p| p.name == *event && p.occurred_at >= since);
                if !arrived {
                    continue;
                }
                (next.clone(), false)
            };
            let mut update = Sql::new("UPDATE journey_enrollments SET step = ");
            update
                .bind(next)
                .push(", due_at = ")
                .bind(now)
                .push(", waiting_for = NULL, waiting_since = NULL, updated_at = ")
                .bind(now);
            if converted {
                update.push(", converted_at = ").bind(now);
            }
            update.push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(id);
            update.execute(conn).await?;
        }
        Ok(())
    }
}

/// The cursor moved back by [`LATE_ARRIVAL_MS`] (a UUIDv7 starts with its millisecond).
fn rewind(cursor: Uuid) -> Uuid {
    let millis = (cursor.as_u128() >> 80) as u64;
    Uuid::from_u128(u128::from(millis.saturating_sub(LATE_ARRIVAL_MS)) << 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewinding_a_cursor_goes_five_seconds_back() {
        let now = Uuid::now_v7();
        let back = rewind(now);
        let millis = |id: Uuid| (id.as_u128() >> 80) as u64;
        assert_eq!(millis(now) - millis(back), LATE_ARRIVAL_MS);
        assert!(back < now);
    }
}
