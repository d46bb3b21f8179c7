//! The journey executor: enrolls people who entered a journey's segment, then moves every due
//! enrollment through its version's steps until it waits or ends. Due work is taken with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers), so any number of
//! workers share it. A send is decided here, with every check made at this moment (consent,
//! the minors rule, frequency caps across all journeys, quiet hours), and queued in the outbox
//! in the same transaction that moves the person on, under a key that makes it happen once.

use crate::channels;
use crate::error::Result;
use crate::graph::Trigger;
use crate::journeys::{JOURNEYS_WORK, PublishedVersion, Reentry};
use crate::machine::{Block, Effects, Machine, QueuedSend, Run};
use crate::service::{Campaigns, LoadedVersion};
use crate::settings;
use chrono::{DateTime, Utc};
use kernel::{ChannelId, JourneyId, ProfileId, SegmentId, WorkspaceId};
use platform::sql::{Sql, json};
use platform::{Backend, TenantScope, metrics::Metrics, work_queue};
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
    /// Enrollments that were due and taken.
    pub due: usize,
    pub steps: usize,
    pub sends: usize,
    /// When the most overdue enrollment taken was due.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

impl std::ops::AddAssign for ExecutionRound {
    fn add_assign(&mut self, other: Self) {
        self.enrolled += other.enrolled;
        self.due += other.due;
        self.steps += other.steps;
        self.sends += other.sends;
        self.oldest_due_at = match (self.oldest_due_at, other.oldest_due_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Campaigns {
    /// Runs the executor until `shutdown` turns true. Errors are logged and retried.
    /// Each round's work is reported into `metrics`.
    pub async fn run_executor(self, mut shutdown: tokio::sync::watch::Receiver<bool>, metrics: Metrics) {
        let mut round: u32 = 0;
        loop {
            let sweep = round.is_multiple_of(50);
            round = round.wrapping_add(1);
            match self.execute_with(sweep).await {
                Ok(done) => self.report(&done, &metrics),
                Err(error) => tracing::error!(error = %error, "journey executor round failed"),
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

    fn report(&self, round: &ExecutionRound, metrics: &Metrics) {
        metrics.journey_enrollments.inc_by(round.enrolled as u64);
        metrics.journey_steps.inc_by(round.steps as u64);
        metrics.journey_sends.with_label_values(&["queued"]).inc_by(round.sends as u64);
        metrics.journey_due.set(i64::try_from(round.due).unwrap_or(i64::MAX));
        let lag = round
            .oldest_due_at
            .map_or(0.0, |due| (self.now() - due).to_std().map_or(0.0, |late| late.as_secs_f64()));
        metrics.journey_lag.set(lag);
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
            total.enrolled += self.enroll_scheduled(&scope).await?;
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
            let candidates: Vec<(ProfileId, Option<Uuid>)> =
                entries.iter().map(|e| (e.profile, None)).collect();
            let people = admissible(&txn, tenant, journey, reentry, &candidates).await?;
            let first_step = loaded.published.graph.entry.next.clone();
            insert_enrollments(&txn, tenant, journey, version, &first_step, &people, now).await?;
            enrolled += people.len();
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
             waiting_since, due_at FROM journey_enrollments WHERE tenant_id = ",
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
        // Taken in due order: the first is the most overdue.
        let oldest_due_at: Option<DateTime<Utc>> = rows[0].try_get("", "due_at")?;
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
        for run in &runs {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                versions.entry((run.journey, run.version))
            {
                slot.insert(self.version(&txn, scope, run.journey, run.version).await?);
            }
        }
        let channel_ids: Vec<ChannelId> = versions
            .values()
            .flat_map(|loaded| {
                loaded.published.graph.sends().map(|(_, channel, _)| ChannelId::from_uuid(channel))
            })
            .collect();
        let channels_by_id = channels::load_many(&txn, workspace, channel_ids).await?;
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
        let round = ExecutionRound {
            enrolled: 0,
            due: runs.len(),
            steps: effects.steps,
            sends: effects.sends.len(),
            oldest_due_at,
        };
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

/// Who among `candidates` (a person, and the event that would start them, if any) may enter
/// `journey` now, in order: never twice for one event, and by the re-entry policy — never
/// again, or again once their previous passage has ended. A passage started here blocks the
/// same person's later candidates too.
pub(crate) async fn admissible<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    journey: JourneyId,
    reentry: Reentry,
    candidates: &[(ProfileId, Option<Uuid>)],
) -> Result<Vec<(ProfileId, Option<Uuid>)>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut existing =
        Sql::new("SELECT profile_id, status, trigger_event_id FROM journey_enrollments WHERE tenant_id = ");
    existing
        .bind(tenant)
        .push(" AND journey_id = ")
        .bind(journey.as_uuid())
        .push(" AND profile_id IN ")
        .bind_list(candidates.iter().map(|(profile, _)| profile.as_uuid()));
    let mut blocked: HashSet<ProfileId> = HashSet::new();
    let mut used: HashSet<Uuid> = HashSet::new();
    for row in existing.fetch_all(conn).await? {
        if let Some(trigger) = row.try_get::<Option<Uuid>>("", "trigger_event_id")? {
            used.insert(trigger);
        }
        let status: String = row.try_get("", "status")?;
        if reentry == Reentry::Never || status == "active" {
            blocked.insert(ProfileId::from_uuid(row.try_get("", "profile_id")?));
        }
    }
    Ok(candidates
        .iter()
        .filter(|(profile, trigger)| !trigger.is_some_and(|t| used.contains(&t)) && blocked.insert(*profile))
        .copied()
        .collect())
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
        insert.values(chunk.iter().map(|(profile, trigger)| {
            let none: Option<String> = None;
            let never: Option<DateTime<Utc>> = None;
            vec![
                tenant.into(),
                Uuid::now_v7().into(),
                journey.as_uuid().into(),
                version.into(),
                profile.as_uuid().into(),
                first_step.into(),
                0i32.into(),
                "active".into(),
                now.into(),
                none.clone().into(),
                never.into(),
                none.into(),
                false.into(),
                never.into(),
                now.into(),
                now.into(),
                (*trigger).into(),
            ]
        }));
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
        outbox.values(chunk.iter().map(|send| {
            let never: Option<DateTime<Utc>> = None;
            vec![
                tenant.into(),
                Uuid::now_v7().into(),
                send.key.clone().into(),
                send.enrollment.into(),
                send.journey.as_uuid().into(),
                send.step.clone().into(),
                send.channel.as_uuid().into(),
                send.kind.as_str().into(),
                send.variant.clone().into(),
                send.profile.as_uuid().into(),
                json(&send.payload),
                "pending".into(),
                0i32.into(),
                now.into(),
                Option::<String>::None.into(),
                now.into(),
                never.into(),
            ]
        }));
        // The same key again is the same send (a round retried after a crash): once only.
        outbox.push(" ON CONFLICT (tenant_id, idempotency_key) DO NOTHING");
        outbox.execute(conn).await?;
        let touches = chunk.iter().map(|send| Touch {
            profile: send.profile,
            kind: "send",
            channel: send.kind.as_str().to_owned(),
            channel_id: send.channel,
            journey: send.journey,
            step: send.step.clone(),
            variant: send.variant.clone(),
            device: None,
        });
        insert_touchpoints(conn, tenant, touches, now).await?;
    }
    Ok(())
}

/// A touchpoint of a journey's send: the send itself, its acceptance by the provider, what the
/// provider reports after, an impression on a decision channel.
pub(crate) struct Touch {
    pub(crate) profile: ProfileId,
    pub(crate) kind: &'static str,
    pub(crate) channel: String,
    pub(crate) channel_id: ChannelId,
    pub(crate) journey: JourneyId,
    pub(crate) step: String,
    pub(crate) variant: Option<String>,
    pub(crate) device: Option<String>,
}

/// Records touchpoints in one statement.
pub(crate) async fn insert_touchpoints<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    touches: impl IntoIterator<Item = Touch>,
    at: DateTime<Utc>,
) -> Result<()> {
    let rows: Vec<Vec<sea_orm::Value>> = touches
        .into_iter()
        .map(|touch| {
            vec![
                tenant.into(),
                Uuid::now_v7().into(),
                touch.profile.as_uuid().into(),
                touch.kind.into(),
                touch.channel.into(),
                touch.channel_id.as_uuid().into(),
                touch.journey.as_uuid().into(),
                touch.step.into(),
                touch.variant.into(),
                touch.device.into(),
                at.into(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = Sql::new(
        "INSERT INTO touchpoints (tenant_id, id, profile_id, kind, channel, channel_id, journey_id, step, \
         variant, device, at) VALUES ",
    );
    insert.values(rows);
    insert.execute(conn).await?;
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
        insert.values(chunk.iter().map(|block| {
            vec![
                tenant.into(),
                Uuid::now_v7().into(),
                block.journey.as_uuid().into(),
                block.enrollment.into(),
                block.step.clone().into(),
                block.profile.as_uuid().into(),
                block.channel.map(|c| c.as_uuid()).into(),
                block.reason.into(),
                block.detail.clone().into(),
                now.into(),
            ]
        }));
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
        update.values(chunk.iter().map(|run| {
            let due_at = if run.status == "active" { run.due_at } else { None };
            vec![
                run.id.into(),
                run.step.clone().into(),
                run.sequence.into(),
                run.status.into(),
                due_at.into(),
                run.variant.clone().into(),
                run.holdout.into(),
                run.waiting_for.clone().into(),
                run.waiting_since.into(),
            ]
        }));
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
