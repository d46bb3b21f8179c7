//! The journey executor: enrolls people who entered a journey's segment, then moves every due
//! enrollment through its version's steps until it waits or ends. Due work is taken with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers), so any number of
//! workers share it. A send is decided here, with every check made at this moment (consent,
//! the minors rule, frequency caps across all journeys, quiet hours), and queued in the outbox
//! in the same transaction that moves the person on, under a key that makes it happen once.

use crate::channels::{self, Channel};
use crate::error::Result;
use crate::graph::Trigger;
use crate::journeys::{JOURNEYS_WORK, PublishedVersion, Reentry};
use crate::machine::{Block, Effects, Machine, QueuedSend, Run};
use crate::service::{Campaigns, LoadedVersion};
use crate::settings;
use chrono::{DateTime, Utc};
use kernel::{ChannelId, JourneyId, ProfileId, SegmentId, WorkspaceId};
use platform::sql::{Sql, json};
use platform::{Backend, TenantScope, work_queue};
use profiles::contact::contact_sheets;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Enrollments taken per transaction.
const BATCH: i64 = 500;
/// Segment entries enrolled per journey per transaction.
const ENTRIES_PER_ROUND: u64 = 1000;
/// The consent purpose of journey messages.
pub const PURPOSE: &str = "marketing";

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionRound {
    pub enrolled: usize,
    pub steps: usize,
    pub sends: usize,
}

impl std::ops::AddAssign for ExecutionRound {
    fn add_assign(&mut self, other: Self) {
        self.enrolled += other.enrolled;
        self.steps += other.steps;
        self.sends += other.sends;
    }
}

impl Campaigns {
    /// Runs the executor until `shutdown` turns true. Errors are logged and retried.
    pub async fn run_executor(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut round: u32 = 0;
        loop {
            let sweep = round.is_multiple_of(50);
            round = round.wrapping_add(1);
            if let Err(error) = self.execute_with(sweep).await {
                tracing::error!(error = %error, "journey executor round failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One round over every workspace with journeys: enrolls new entrants and moves everyone
    /// due. Tests call it to run the executor in step with their clock.
    pub async fn execute_due(&self) -> Result<ExecutionRound> {
        self.execute_with(true).await
    }

    async fn execute_with(&self, sweep: bool) -> Result<ExecutionRound> {
        let mut total = ExecutionRound::default();
        for workspace in work_queue::marked(self.db().connection(), JOURNEYS_WORK, sweep).await? {
            let scope = self.tenancy().queued_work_scope(workspace).await?;
            total.enrolled += self.enroll(&scope).await?;
            total.enrolled += self.react_to_events(&scope).await?;
            loop {
                let (round, taken) = self.advance_batch(&scope).await?;
                total += round;
                if taken < BATCH as usize {
                    break;
                }
            }
        }
        if total.sends > 0 {
            self.sends_ready().notify_one();
        }
        Ok(total)
    }

    /// Enrolls the people who entered each active journey's segment since its cursor.
    async fn enroll(&self, scope: &TenantScope) -> Result<usize> {
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        let mut select =
            Sql::new("SELECT id, version, reentry, entry_cursor FROM journeys WHERE tenant_id = ");
        select.bind(tenant).push(" AND status = 'active'");
        if self.db().backend() == Backend::Postgres {
            select.push(" FOR UPDATE SKIP LOCKED");
        }
        let now = self.now();
        let mut enrolled = 0;
        for row in select.fetch_all(&txn).await? {
            let journey = JourneyId::from_uuid(row.try_get("", "id")?);
            let version: i32 = row.try_get("", "version")?;
            let reentry = Reentry::parse(&row.try_get::<String>("", "reentry")?)?;
            let cursor: Option<Uuid> = row.try_get("", "entry_cursor")?;
            let loaded = self.version(&txn, scope, journey, version).await?;
            let Trigger::SegmentEntered { segment } = &loaded.published.graph.entry.trigger else { continue };
            let entries = segments::journeys::entries_since(
                &txn,
                scope,
                SegmentId::from_uuid(*segment),
                cursor,
                ENTRIES_PER_ROUND,
            )
            .await?;
            let Some(last) = entries.last().map(|e| e.id) else { continue };
            let profiles: Vec<ProfileId> = entries.iter().map(|e| e.profile).collect();
            let mut existing =
                Sql::new("SELECT profile_id, status FROM journey_enrollments WHERE tenant_id = ");
            existing
                .bind(tenant)
                .push(" AND journey_id = ")
                .bind(journey.as_uuid())
                .push(" AND profile_id IN ")
                .bind_list(profiles.iter().map(ProfileId::as_uuid));
            let mut blocked: HashSet<ProfileId> = HashSet::new();
            for row in existing.fetch_all(&txn).await? {
                let status: String = row.try_get("", "status")?;
                if reentry == Reentry::Never || status == "active" {
                    blocked.insert(ProfileId::from_uuid(row.try_get("", "profile_id")?));
                }
            }
            let first_step = loaded.published.graph.entry.next.clone();
            let mut new: Vec<ProfileId> = Vec::new();
            for profile in profiles {
                if blocked.insert(profile) {
                    new.push(profile);
                }
            }
            let people: Vec<(ProfileId, Option<Uuid>)> = new.iter().map(|p| (*p, None)).collect();
            insert_enrollments(&txn, tenant, journey, version, &first_step, &people, now).await?;
            enrolled += new.len();
            let mut advance = Sql::new("UPDATE journeys SET entry_cursor = ");
            advance
                .bind(last)
                .push(" WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND id = ")
                .bind(journey.as_uuid());
            advance.execute(&txn).await?;
        }
        txn.commit().await?;
        Ok(enrolled)
    }

    /// Takes up to [`BATCH`] due enrollments and moves each until it waits or ends. Returns
    /// what it did and how many enrollments it took.
    async fn advance_batch(&self, scope: &TenantScope) -> Result<(ExecutionRound, usize)> {
        let tenant = scope.tenant_id().as_uuid();
        let workspace = WorkspaceId::from_uuid(tenant);
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, journey_id, version, profile_id, step, sequence, variant, holdout, waiting_for, \
             waiting_since FROM journey_enrollments WHERE tenant_id = ",
        );
        select
            .bind(tenant)
            .push(" AND status = 'active' AND due_at <= ")
            .bind(now)
            .push(" AND journey_id IN (SELECT id FROM journeys WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND status = 'active') ORDER BY due_at LIMIT ")
            .bind(BATCH);
        if self.db().backend() == Backend::Postgres {
            select.push(" FOR UPDATE SKIP LOCKED");
        }
        let rows = select.fetch_all(&txn).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok((ExecutionRound::default(), 0));
        }
        let mut runs: Vec<Run> = Vec::with_capacity(rows.len());
        for row in &rows {
            runs.push(Run {
                id: row.try_get("", "id")?,
                journey: JourneyId::from_uuid(row.try_get("", "journey_id")?),
                version: row.try_get("", "version")?,
                profile: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                step: row.try_get("", "step")?,
                sequence: row.try_get("", "sequence")?,
                status: "active",
                due_at: None,
                variant: row.try_get("", "variant")?,
                holdout: row.try_get("", "holdout")?,
                waiting_for: row.try_get("", "waiting_for")?,
                waiting_since: row.try_get("", "waiting_since")?,
                parked: false,
                clock: now,
            });
        }
        let mut profiles: Vec<ProfileId> = runs.iter().map(|r| r.profile).collect();
        profiles.sort_unstable();
        profiles.dedup();
        // Caps hold across journeys and workers: whoever decides sends for a person holds
        // that person until its sends are committed, so the next one counts them.
        lock_people(&txn, tenant, &profiles).await?;
        let sheets = contact_sheets(&txn, scope, &profiles).await?;
        let policy = settings::SendPolicy::load(&txn, tenant, now, &profiles).await?;
        let mut versions: HashMap<(JourneyId, i32), Arc<LoadedVersion>> = HashMap::new();
        let mut channels_by_id: HashMap<ChannelId, Channel> = HashMap::new();
        for run in &runs {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                versions.entry((run.journey, run.version))
            {
                slot.insert(self.version(&txn, scope, run.journey, run.version).await?);
            }
        }
        for loaded in versions.values() {
            for (_, channel, _) in loaded.published.graph.sends() {
                let channel = ChannelId::from_uuid(channel);
                if let std::collections::hash_map::Entry::Vacant(slot) = channels_by_id.entry(channel) {
                    slot.insert(channels::load(&txn, workspace, channel).await?);
                }
            }
        }
        let journey_names = journey_names(&txn, tenant, &versions).await?;

        let machine = Machine {
            versions: &versions,
            sheets: &sheets,
            policy: &policy,
            channels: &channels_by_id,
            journey_names: &journey_names,
            evaluated_at: now,
        };
        let mut effects = Effects::default();
        machine.run(&txn, scope, &mut runs, &mut effects).await?;
        // Anyone still moving after the step bound goes on next round.
        for run in runs.iter_mut().filter(|r| !r.parked) {
            run.due_at = Some(now);
        }
        let round = ExecutionRound { enrolled: 0, steps: effects.steps, sends: effects.sends.len() };
        let (sends, offers, blocks, trait_updates) =
            (effects.sends, effects.offers, effects.blocks, effects.trait_updates);

        let updates: Vec<(ProfileId, Map<String, Value>)> = trait_updates.into_iter().collect();
        // Trait changes go through the profiles' graph lock, in their own transaction. On
        // PostgreSQL they are made before this round commits: a crash in between replays the
        // round, and setting a trait twice is harmless. SQLite allows one writer, which this
        // round's transaction is, so there they follow the commit.
        let before_commit = self.db().backend() == Backend::Postgres;
        if before_commit && !updates.is_empty() {
            self.profiles().set_traits(scope, &updates, profiles::traits::source::JOURNEY).await?;
        }
        write_sends(&txn, tenant, &sends, now).await?;
        write_blocks(&txn, tenant, &blocks, now).await?;
        crate::decisions::write_offers(&txn, tenant, &offers, now).await?;
        write_runs(&txn, tenant, &runs, now).await?;
        txn.commit().await?;
        if !before_commit && !updates.is_empty() {
            self.profiles().set_traits(scope, &updates, profiles::traits::source::JOURNEY).await?;
        }
        Ok((round, runs.len()))
    }

    /// A published version, parsed and with its templates prepared, cached: versions never change.
    pub(crate) async fn version<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &TenantScope,
        journey: JourneyId,
        version: i32,
    ) -> Result<Arc<LoadedVersion>> {
        let key = (scope.tenant_id().as_uuid(), journey, version);
        if let Some(loaded) = self.cached_version(&key) {
            return Ok(loaded);
        }
        let mut select = Sql::new("SELECT graph, contents FROM journey_versions WHERE tenant_id = ");
        select
            .bind(key.0)
            .push(" AND journey_id = ")
            .bind(journey.as_uuid())
            .push(" AND version = ")
            .bind(version);
        let row = select.fetch_one(conn).await?.ok_or(crate::CampaignsError::NotFound)?;
        let published = PublishedVersion {
            graph: serde_json::from_value(row.try_get("", "graph")?)?,
            contents: serde_json::from_value(row.try_get("", "contents")?)?,
        };
        let loaded = Arc::new(LoadedVersion::prepare(published)?);
        self.cache_version(key, loaded.clone());
        Ok(loaded)
    }
}

async fn journey_names<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    versions: &HashMap<(JourneyId, i32), Arc<LoadedVersion>>,
) -> Result<HashMap<JourneyId, String>> {
    let ids: HashSet<Uuid> = versions.keys().map(|(j, _)| j.as_uuid()).collect();
    let mut select = Sql::new("SELECT id, name FROM journeys WHERE tenant_id = ");
    select.bind(tenant).push(" AND id IN ").bind_list(ids);
    let mut names = HashMap::new();
    for row in select.fetch_all(conn).await? {
        names.insert(JourneyId::from_uuid(row.try_get("", "id")?), row.try_get("", "name")?);
    }
    Ok(names)
}

/// Puts people at the first step of a journey's version, due now; `Some(event)` when an event
/// started it for them.
pub(crate) async fn insert_enrollments<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    journey: JourneyId,
    version: i32,
    first_step: &str,
    people: &[(ProfileId, Option<Uuid>)],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in people.chunks(200) {
        let mut insert = Sql::new(
            "INSERT INTO journey_enrollments (tenant_id, id, journey_id, version, profile_id, step, sequence, \
             status, due_at, waiting_for, waiting_since, variant, holdout, converted_at, entered_at, updated_at, \
             trigger_event_id) VALUES ",
        );
        for (i, (profile, trigger)) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(journey.as_uuid())
                .push(", ")
                .bind(version)
                .push(", ")
                .bind(profile.as_uuid())
                .push(", ")
                .bind(first_step.to_owned())
                .push(", 0, 'active', ")
                .bind(now)
                .push(", NULL, NULL, NULL, ")
                .bind(false)
                .push(", NULL, ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(*trigger)
                .push(")");
        }
        insert.execute(conn).await?;
    }
    Ok(())
}

/// Holds each person (a transaction-scoped advisory lock per profile, in a fixed order so two
/// workers never deadlock) until this transaction's sends are committed. SQLite has one writer.
async fn lock_people<C: ConnectionTrait>(conn: &C, tenant: Uuid, people: &[ProfileId]) -> Result<()> {
    if conn.get_database_backend() != sea_orm::DbBackend::Postgres || people.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<i64> = people
        .iter()
        .map(|p| {
            let (high, low) = p.as_uuid().as_u64_pair();
            let (t_high, t_low) = tenant.as_u64_pair();
            // A namespace pattern apart from the identity graph's lock on the same tenant.
            (high ^ low ^ t_high ^ t_low ^ 0x6a6f_7572_6e65_7973) as i64
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut lock = Sql::new("SELECT pg_advisory_xact_lock(k) FROM unnest(");
    lock.bind(sea_orm::Value::Array(
        sea_orm::sea_query::ArrayType::BigInt,
        Some(Box::new(keys.into_iter().map(|k| sea_orm::Value::BigInt(Some(k))).collect())),
    ))
    .push("::bigint[]) AS k ORDER BY k");
    lock.fetch_all(conn).await?;
    Ok(())
}

async fn write_sends<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    sends: &[QueuedSend],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in sends.chunks(100) {
        let mut outbox = Sql::new(
            "INSERT INTO outbox (tenant_id, id, idempotency_key, enrollment_id, journey_id, step, channel_id, \
             channel, variant, profile_id, payload, status, attempts, next_attempt_at, last_error, created_at, \
             sent_at) VALUES ",
        );
        let mut touchpoints = Sql::new(
            "INSERT INTO touchpoints (tenant_id, id, profile_id, kind, channel, channel_id, journey_id, step, \
             variant, device, at) VALUES ",
        );
        for (i, send) in chunk.iter().enumerate() {
            if i > 0 {
                outbox.push(", ");
                touchpoints.push(", ");
            }
            outbox
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(send.key.clone())
                .push(", ")
                .bind(send.enrollment)
                .push(", ")
                .bind(send.journey.as_uuid())
                .push(", ")
                .bind(send.step.clone())
                .push(", ")
                .bind(send.channel.as_uuid())
                .push(", ")
                .bind(send.kind.as_str())
                .push(", ")
                .bind(send.variant.clone())
                .push(", ")
                .bind(send.profile.as_uuid())
                .push(", ")
                .bind(json(&send.payload))
                .push(", 'pending', 0, ")
                .bind(now)
                .push(", NULL, ")
                .bind(now)
                .push(", NULL)");
            touchpoints
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(send.profile.as_uuid())
                .push(", 'send', ")
                .bind(send.kind.as_str())
                .push(", ")
                .bind(send.channel.as_uuid())
                .push(", ")
                .bind(send.journey.as_uuid())
                .push(", ")
                .bind(send.step.clone())
                .push(", ")
                .bind(send.variant.clone())
                .push(", NULL, ")
                .bind(now)
                .push(")");
        }
        // The same key again is the same send (a round retried after a crash): once only.
        outbox.push(" ON CONFLICT (tenant_id, idempotency_key) DO NOTHING");
        outbox.execute(conn).await?;
        touchpoints.execute(conn).await?;
    }
    Ok(())
}

async fn write_blocks<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    blocks: &[Block],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in blocks.chunks(200) {
        let mut insert = Sql::new(
            "INSERT INTO send_blocks (tenant_id, id, journey_id, enrollment_id, step, profile_id, channel_id, \
             reason, detail, at) VALUES ",
        );
        for (i, block) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(block.journey.as_uuid())
                .push(", ")
                .bind(block.enrollment)
                .push(", ")
                .bind(block.step.clone())
                .push(", ")
                .bind(block.profile.as_uuid())
                .push(", ")
                .bind(block.channel.map(|c| c.as_uuid()))
                .push(", ")
                .bind(block.reason)
                .push(", ")
                .bind(block.detail.clone())
                .push(", ")
                .bind(now)
                .push(")");
        }
        insert.execute(conn).await?;
    }
    Ok(())
}

/// Writes every enrollment's new place in one statement per 500.
async fn write_runs<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    runs: &[Run],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in runs.chunks(500) {
        let mut update = Sql::new(
            "WITH v (id, step, sequence, status, due_at, variant, holdout, waiting_for, waiting_since) AS (VALUES ",
        );
        for (i, run) in chunk.iter().enumerate() {
            if i > 0 {
                update.push(", ");
            }
            update
                .push("(")
                .bind(run.id)
                .push(", ")
                .bind(run.step.clone())
                .push(", ")
                .bind(run.sequence)
                .push(", ")
                .bind(run.status)
                .push(", ")
                .bind(if run.status == "active" { run.due_at } else { None })
                .push(", ")
                .bind(run.variant.clone())
                .push(", ")
                .bind(run.holdout)
                .push(", ")
                .bind(run.waiting_for.clone())
                .push(", ")
                .bind(run.waiting_since)
                .push(")");
        }
        update
            .push(
                ") UPDATE journey_enrollments SET step = v.step, sequence = v.sequence, status = v.status, \
                 due_at = v.due_at, variant = v.variant, holdout = v.holdout, waiting_for = v.waiting_for, \
                 waiting_since = v.waiting_since, updated_at = ",
            )
            .bind(now)
            .push(" FROM v WHERE journey_enrollments.tenant_id = ")
            .bind(tenant)
            .push(" AND journey_enrollments.id = v.id");
        update.execute(conn).await?;
    }
    Ok(())
}
