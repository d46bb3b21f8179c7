//! The ingestion processor: takes pending events of one workspace in order, resolves their
//! identities, merges profiles where the rules allow, updates traits and computed traits,
//! and drops events of erased people. One chunk is one transaction under the tenant's graph
//! lock, so a crash leaves events pending, never half-applied.

use crate::{
    Identity, IdentityKind, Profiles,
    changes::Topics,
    extract::{self, EventFacts},
    imports::{self, ImportKind},
    privacy::identity_hash,
    profile_row::{self, ProfileRow},
    resolver::{GraphState, MergeStep},
    service::Result,
    settings::{self, WorkspaceProfileSettings},
    sql::{Sql, json},
    traits,
};
use chrono::{DateTime, Utc};
use kernel::{ImportId, MergeId, ProfileId};
use platform::TenantScope;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Events per transaction: large enough to amortise the round trips, small enough that the
/// graph lock is held briefly and a chunk's statements stay under the parameter limits.
pub(crate) const CHUNK_EVENTS: u64 = 2000;

struct PendingEvent {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    channel: Option<String>,
    /// The trait source of what it says: `events`, or the import it came from.
    source: String,
    /// The import job of a CSV row.
    import: Option<(ImportKind, ImportId)>,
    /// Its name, or its type when it has none (`identify`): what the change feed says of it.
    name_or_type: String,
    facts: EventFacts,
}

impl PendingEvent {
    /// Applies what the event says about its person under its source's precedence.
    fn apply_traits(&self, row: &mut ProfileRow, settings: &WorkspaceProfileSettings, now: DateTime<Utc>) {
        traits::apply(
            &mut row.traits,
            &self.facts.trait_updates,
            &self.source,
            self.occurred_at,
            &settings.precedence,
        );
        row.updated_at = now;
    }
}

/// What a chunk did to one import job's rows.
#[derive(Default)]
struct ImportTally {
    processed: i64,
    unmatched: i64,
    suppressed: i64,
}

/// The chunk's tallies, per import job.
#[derive(Default)]
struct ImportTallies(HashMap<ImportId, ImportTally>);

impl ImportTallies {
    /// Counts one row under `outcome` when the event came from an import.
    fn count(&mut self, import: Option<(ImportKind, ImportId)>, outcome: fn(&mut ImportTally) -> &mut i64) {
        if let Some((_, job)) = import {
            *outcome(self.0.entry(job).or_default()) += 1;
        }
    }
}

/// What processing one chunk did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessOutcome {
    pub processed: usize,
    pub suppressed: usize,
    pub merges: usize,
    /// When the longest-waiting event processed was accepted (for the ingestion lag).
    pub oldest_received_at: Option<DateTime<Utc>>,
}

impl std::ops::AddAssign for ProcessOutcome {
    fn add_assign(&mut self, other: Self) {
        self.processed += other.processed;
        self.suppressed += other.suppressed;
        self.merges += other.merges;
        self.oldest_received_at = match (self.oldest_received_at, other.oldest_received_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

pub(crate) struct ChunkMerge {
    pub id: MergeId,
    pub step: MergeStep,
    pub event_id: Option<Uuid>,
    pub survivor_traits_before: Value,
    pub merged_traits: Value,
}

impl Profiles {
    /// Processes the workspace's pending events until none is left.
    #[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id()))]
    pub async fn process_pending(&self, scope: &TenantScope) -> Result<ProcessOutcome> {
        let (_never, running) = tokio::sync::watch::channel(false);
        self.process_pending_until(scope, &running, None).await
    }

    /// Chunk by chunk until none is left or `shutdown`; each chunk reported into `metrics`.
    pub(crate) async fn process_pending_until(
        &self,
        scope: &TenantScope,
        shutdown: &tokio::sync::watch::Receiver<bool>,
        metrics: Option<&platform::metrics::Metrics>,
    ) -> Result<ProcessOutcome> {
        let mut total = ProcessOutcome::default();
        loop {
            if *shutdown.borrow() {
                return Ok(total);
            }
            let outcome = self.process_chunk(scope).await?;
            if let Some(metrics) = metrics {
                self.report_chunk(&outcome, metrics);
            }
            total += outcome;
            if outcome.processed + outcome.suppressed < CHUNK_EVENTS as usize {
                return Ok(total);
            }
        }
    }

    async fn process_chunk(&self, scope: &TenantScope) -> Result<ProcessOutcome> {
        let started = std::time::Instant::now();
        let graph = self.graph_transaction(scope).await?;
        let txn = &graph.txn;
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            // The events were durable when accepted; what a chunk derives from them is not
            // acknowledged to anyone, so its commit need not wait for the disk. A crash loses
            // at most the last chunks whole (the transaction is atomic): their events are still
            // pending and are processed again.
            Sql::new("SET LOCAL synchronous_commit = off").execute(txn).await?;
        }
        let tenant = scope.tenant_id().as_uuid();
        let now = self.now();
        let mut select = Sql::new(
            "SELECT id, type, name, occurred_at, received_at, channel, source, body FROM events WHERE \
             tenant_id = ",
        );
        select.bind(tenant).push(" AND status = 'pending' ORDER BY id LIMIT ").bind(CHUNK_EVENTS as i64);
        let rows = select.fetch_all(txn).await?;
        if rows.is_empty() {
            graph.commit().await?;
            return Ok(ProcessOutcome::default());
        }
        settings::ensure_row(txn, tenant, now).await?;
        let settings = settings::load(txn, tenant).await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut oldest_received_at: Option<DateTime<Utc>> = None;
        for row in rows {
            let received_at: DateTime<Utc> = row.try_get("", "received_at")?;
            oldest_received_at = Some(oldest_received_at.map_or(received_at, |o| o.min(received_at)));
            let event_type: String = row.try_get("", "type")?;
            let name: Option<String> = row.try_get("", "name")?;
            let body: Value = row.try_get("", "body")?;
            let facts = extract::facts(&event_type, name.as_deref(), &body, &settings.normalization);
            let source: String = row.try_get("", "source")?;
            let import = imports::job_of_source(&source);
            events.push(PendingEvent {
                name_or_type: name.clone().unwrap_or_else(|| event_type.clone()),
                id: row.try_get("", "id")?,
                occurred_at: row.try_get("", "occurred_at")?,
                channel: row.try_get("", "channel")?,
                source: if import.is_some() { source } else { traits::source::EVENTS.to_owned() },
                import,
                facts,
            });
        }

        let read_at = started.elapsed();
        let suppressed = suppressed_events(txn, tenant, &settings, &events).await?;
        let mut state = GraphState::default();
        let owners = load_graph(txn, tenant, &events, &mut state).await?;
        let mut rows: HashMap<ProfileId, ProfileRow> =
            profile_row::load(txn, tenant, &owners).await?.into_iter().map(|row| (row.id, row)).collect();

        let loaded_at = started.elapsed();
        let mut assignments: Vec<(Uuid, Option<ProfileId>)> = Vec::with_capacity(events.len());
        let mut attached: Vec<(Identity, ProfileId, &'static str)> = Vec::new();
        let mut tallies = ImportTallies::default();
        let mut unmatched_enrichment: Vec<Uuid> = Vec::new();
        let mut merges: Vec<ChunkMerge> = Vec::new();
        let mut redirects: HashMap<ProfileId, ProfileId> = HashMap::new();
        // What the chunk changed, for the change feed's readers (one set for the chunk: a
        // safe over-approximation for each of its profiles).
        let mut topics = Topics::default();
        for event in &mut events {
            if suppressed.contains(&event.id) {
                tallies.count(event.import, |t| &mut t.suppressed);
                continue;
            }
            if let Some((ImportKind::Enrichment, _)) = event.import {
                // Enrichment adds to people already known; it never creates, links or merges.
                let owner = event.facts.identities.iter().find_map(|i| state.owner(i));
                let row = owner.map(|p| current(p, &redirects)).and_then(|p| rows.get_mut(&p));
                match row {
                    Some(row) => {
                        topics.add(Topics::TRAITS);
                        event.apply_traits(row, &settings, now);
                        assignments.push((event.id, Some(row.id)));
                        tallies.count(event.import, |t| &mut t.processed);
                    }
                    None => {
                        unmatched_enrichment.push(event.id);
                        tallies.count(event.import, |t| &mut t.unmatched);
                    }
                }
                continue;
            }
            if let Some(previous) = event.facts.previous_id.take() {
                let as_user = Identity { kind: IdentityKind::UserId, value: previous.clone() };
                let kind = if state.owner(&as_user).is_some() {
                    IdentityKind::UserId
                } else {
                    IdentityKind::AnonymousId
                };
                if let Ok(identity) = Identity::parse(kind, &previous, &settings.normalization) {
                    event.facts.identities.push(identity);
                }
            }
            let resolution = state.resolve(&event.facts.identities, &settings.rules, ProfileId::new);
            let Some(resolution) = resolution else {
                assignments.push((event.id, None));
                tallies.count(event.import, |t| &mut t.unmatched);
                continue;
            };
            if resolution.created {
                rows.insert(resolution.profile, ProfileRow::new(resolution.profile, now));
            }
            for step in resolution.merges {
                merges.push(merge_rows(&mut rows, step, Some(event.id), now, &settings)?);
                let last = merges.last().map(|m| (m.step.merged, m.step.survivor));
                if let Some((merged, survivor)) = last {
                    redirects.insert(merged, survivor);
                }
            }
            if !resolution.attached.is_empty() {
                topics.add(Topics::IDENTITIES);
            }
            let identity_source =
                if event.import.is_some() { traits::source::IMPORT } else { traits::source::EVENTS };
            attached.extend(
                resolution
                    .attached
                    .into_iter()
                    .map(|identity| (identity, resolution.profile, identity_source)),
            );
            if !event.facts.trait_updates.is_empty() {
                topics.add(Topics::TRAITS);
            }
            if event.import.is_none() {
                topics.add_event(&event.name_or_type);
            }
            if let Some(row) = rows.get_mut(&resolution.profile) {
                event.apply_traits(row, &settings, now);
                // A CRM record is not behaviour: it does not count as a visit or a touch.
                if event.import.is_none() {
                    row.record_event(
                        event.occurred_at,
                        event.channel.as_deref(),
                        event.facts.revenue,
                        event.facts.device.as_deref(),
                    );
                }
            }
            tallies.count(event.import, |t| &mut t.processed);
            assignments.push((event.id, Some(resolution.profile)));
        }

        let resolved_at = started.elapsed();
        for merge in &merges {
            apply_merge(txn, tenant, merge, now).await?;
        }
        if !merges.is_empty() {
            topics = Topics::everything();
        }
        let dirty: Vec<&ProfileRow> = rows.values().collect();
        profile_row::save_and_record(txn, tenant, &dirty, &topics).await?;
        insert_identities(txn, tenant, &attached, &redirects, now).await?;
        // An event counts as processed when its chunk's results are written, not when the
        // chunk started: downstream delays (real-time segments) are measured from here.
        update_events(txn, tenant, &assignments, &redirects, self.now()).await?;
        // Events of erased people go; so does third-party data about people nobody knows.
        let dropped: Vec<Uuid> = suppressed.iter().chain(&unmatched_enrichment).copied().collect();
        for chunk in dropped.chunks(1000) {
            let mut delete = Sql::new("DELETE FROM events WHERE tenant_id = ");
            delete.bind(tenant).push(" AND id IN ").bind_list(chunk.iter().copied());
            delete.execute(txn).await?;
        }
        update_import_jobs(txn, tenant, &tallies, now).await?;
        let written_at = started.elapsed();
        graph.commit().await?;
        // Where a chunk's time goes, for tuning: reading the events, loading the graph and
        // profiles they touch, resolving in memory, writing, committing.
        tracing::debug!(
            events = events.len(),
            read_ms = read_at.as_secs_f64() * 1e3,
            load_ms = (loaded_at - read_at).as_secs_f64() * 1e3,
            resolve_ms = (resolved_at - loaded_at).as_secs_f64() * 1e3,
            write_ms = (written_at - resolved_at).as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - written_at).as_secs_f64() * 1e3,
            "chunk processed"
        );
        Ok(ProcessOutcome {
            processed: assignments.len() + unmatched_enrichment.len(),
            suppressed: suppressed.len(),
            merges: merges.len(),
            oldest_received_at,
        })
    }
}

/// Follows in-chunk merges to the profile that holds everything now.
fn current(mut profile: ProfileId, redirects: &HashMap<ProfileId, ProfileId>) -> ProfileId {
    let mut hops = 0;
    while let Some(next) = redirects.get(&profile) {
        profile = *next;
        hops += 1;
        if hops > redirects.len() {
            break;
        }
    }
    profile
}

/// Folds `step.merged` into `step.survivor` in memory, keeping what an undo needs.
pub(crate) fn merge_rows(
    rows: &mut HashMap<ProfileId, ProfileRow>,
    step: MergeStep,
    event_id: Option<Uuid>,
    now: DateTime<Utc>,
    settings: &WorkspaceProfileSettings,
) -> Result<ChunkMerge> {
    let merged = rows
        .get_mut(&step.merged)
        .ok_or_else(|| crate::ProfilesError::Internal("merged profile not loaded".into()))?;
    merged.merged_into = Some(step.survivor);
    merged.updated_at = now;
    let merged = merged.clone();
    let survivor = rows
        .get_mut(&step.survivor)
        .ok_or_else(|| crate::ProfilesError::Internal("survivor profile not loaded".into()))?;
    let survivor_traits_before = Value::Object(survivor.traits.clone());
    survivor.absorb(&merged, &settings.precedence);
    survivor.updated_at = now;
    Ok(ChunkMerge {
        id: MergeId::new(),
        step,
        event_id,
        survivor_traits_before,
        merged_traits: Value::Object(merged.traits),
    })
}

/// Drops the events of erased people: any identifier on the suppression list.
async fn suppressed_events<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    settings: &WorkspaceProfileSettings,
    events: &[PendingEvent],
) -> Result<HashSet<Uuid>> {
    let mut by_hash: HashMap<String, Vec<Uuid>> = HashMap::new();
    for event in events {
        for identity in &event.facts.identities {
            by_hash.entry(identity_hash(&settings.suppression_salt, identity)).or_default().push(event.id);
        }
    }
    if by_hash.is_empty() {
        return Ok(HashSet::new());
    }
    let mut select = Sql::new("SELECT identity_hash FROM suppressions WHERE tenant_id = ");
    select.bind(tenant).push(" AND identity_hash IN ").bind_list(by_hash.keys().cloned());
    let mut dropped = HashSet::new();
    for row in select.fetch_all(txn).await? {
        let hash: String = row.try_get("", "identity_hash")?;
        let ids = by_hash.get(&hash).map(Vec::as_slice).unwrap_or_default();
        dropped.extend(ids.iter().copied());
        let mut count = Sql::new("UPDATE suppressions SET dropped_events = dropped_events + ");
        count
            .bind(ids.len() as i64)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND identity_hash = ")
            .bind(hash);
        count.execute(txn).await?;
    }
    Ok(dropped)
}

/// Loads the owners of the chunk's identifiers, their profiles' identity counts and their
/// blocked pairs. Returns the profiles involved.
async fn load_graph<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    events: &[PendingEvent],
    state: &mut GraphState,
) -> Result<Vec<ProfileId>> {
    let mut wanted: HashSet<&Identity> = HashSet::new();
    let mut values: HashSet<&str> = HashSet::new();
    for event in events {
        for identity in &event.facts.identities {
            wanted.insert(identity);
            values.insert(&identity.value);
        }
        if let Some(previous) = &event.facts.previous_id {
            values.insert(previous);
        }
    }
    let mut profiles: HashSet<ProfileId> = HashSet::new();
    let values: Vec<String> = values.into_iter().map(str::to_owned).collect();
    for chunk in values.chunks(1000) {
        let mut select = Sql::new("SELECT kind, value, profile_id FROM identities WHERE tenant_id = ");
        select.bind(tenant).push(" AND value IN ").bind_list(chunk.iter().cloned());
        for row in select.fetch_all(txn).await? {
            let kind: String = row.try_get("", "kind")?;
            let Ok(kind) = kind.parse::<IdentityKind>() else { continue };
            let identity = Identity { kind, value: row.try_get("", "value")? };
            let is_previous_id = matches!(identity.kind, IdentityKind::UserId | IdentityKind::AnonymousId);
            if wanted.contains(&identity) || is_previous_id {
                let profile = ProfileId::from_uuid(row.try_get("", "profile_id")?);
                state.know_owner(identity, profile);
                profiles.insert(profile);
            }
        }
    }
    let profiles: Vec<ProfileId> = profiles.into_iter().collect();
    for chunk in profiles.chunks(1000) {
        let ids: Vec<Uuid> = chunk.iter().map(ProfileId::as_uuid).collect();
        let mut counts =
            Sql::new("SELECT profile_id, kind, COUNT(*) AS n FROM identities WHERE tenant_id = ");
        counts
            .bind(tenant)
            .push(" AND profile_id IN ")
            .bind_list(ids.iter().copied())
            .push(" GROUP BY profile_id, kind");
        for row in counts.fetch_all(txn).await? {
            let kind: String = row.try_get("", "kind")?;
            let n: i64 = row.try_get("", "n")?;
            if let Ok(kind) = kind.parse() {
                state.know_count(ProfileId::from_uuid(row.try_get("", "profile_id")?), kind, n as u32);
            }
        }
        let mut blocks = Sql::new("SELECT profile_a, profile_b FROM merge_blocks WHERE tenant_id = ");
        blocks
            .bind(tenant)
            .push(" AND (profile_a IN ")
            .bind_list(ids.iter().copied())
            .push(" OR profile_b IN ")
            .bind_list(ids.iter().copied())
            .push(")");
        for row in blocks.fetch_all(txn).await? {
            state.know_blocked_pair(
                ProfileId::from_uuid(row.try_get("", "profile_a")?),
                ProfileId::from_uuid(row.try_get("", "profile_b")?),
            );
        }
    }
    Ok(profiles)
}

/// Writes a merge: moves identities, events and consents, and records it for explaining and
/// undoing. The profile rows themselves are saved by the caller.
pub(crate) async fn apply_merge<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    merge: &ChunkMerge,
    now: DateTime<Utc>,
) -> Result<()> {
    let (survivor, merged) = (merge.step.survivor.as_uuid(), merge.step.merged.as_uuid());
    for table in ["identities", "events", "consents"] {
        let mut moved = Sql::new(&format!("UPDATE {table} SET profile_id = "));
        moved.bind(survivor).push(" WHERE tenant_id = ").bind(tenant).push(" AND profile_id = ").bind(merged);
        moved.execute(txn).await?;
    }
    let mut insert = Sql::new(
        "INSERT INTO profile_merges (tenant_id, id, survivor_id, merged_id, cause_kind, cause_value, event_id, \
         survivor_traits_before, merged_traits, created_at) VALUES (",
    );
    insert
        .bind(tenant)
        .push(", ")
        .bind(merge.id.as_uuid())
        .push(", ")
        .bind(survivor)
        .push(", ")
        .bind(merged)
        .push(", ")
        .bind(merge.step.cause.kind.as_str().to_owned())
        .push(", ")
        .bind(merge.step.cause.value.clone())
        .push(", ")
        .bind(merge.event_id)
        .push(", ")
        .bind(json(&merge.survivor_traits_before))
        .push(", ")
        .bind(json(&merge.merged_traits))
        .push(", ")
        .bind(now)
        .push(")");
    insert.execute(txn).await?;
    Ok(())
}

async fn insert_identities<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    attached: &[(Identity, ProfileId, &'static str)],
    redirects: &HashMap<ProfileId, ProfileId>,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in attached.chunks(500) {
        let mut insert = Sql::new(
            "INSERT INTO identities (tenant_id, id, kind, value, profile_id, first_profile_id, source, created_at) \
             VALUES ",
        );
        for (i, (identity, first, source)) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(identity.kind.as_str().to_owned())
                .push(", ")
                .bind(identity.value.clone())
                .push(", ")
                .bind(current(*first, redirects).as_uuid())
                .push(", ")
                .bind(first.as_uuid())
                .push(", ")
                .bind(*source)
                .push(", ")
                .bind(now)
                .push(")");
        }
        insert.push(" ON CONFLICT (tenant_id, value, kind) DO NOTHING");
        insert.execute(txn).await?;
    }
    Ok(())
}

/// Marks the chunk's events processed, each with the profile it was resolved to first and the
/// one it belongs to after the chunk's merges, in one set-based statement per 500 events.
async fn update_events<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    assignments: &[(Uuid, Option<ProfileId>)],
    redirects: &HashMap<ProfileId, ProfileId>,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in assignments.chunks(500) {
        let mut sql = Sql::new("WITH v (id, first_profile_id, profile_id, status) AS (VALUES ");
        for (i, (id, profile)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let status = if profile.is_some() { "processed" } else { "unresolved" };
            sql.push("(")
                .bind(*id)
                .push(", ")
                .bind(profile.map(|p| p.as_uuid()))
                .push(", ")
                .bind(profile.map(|p| current(p, redirects).as_uuid()))
                .push(", ")
                .bind(status)
                .push(")");
        }
        sql.push(
            ") UPDATE events SET first_profile_id = v.first_profile_id, profile_id = v.profile_id, \
             status = v.status, processed_at = ",
        )
        .bind(now)
        .push(" FROM v WHERE events.tenant_id = ")
        .bind(tenant)
        .push(" AND events.id = v.id");
        sql.execute(txn).await?;
    }
    Ok(())
}

/// Adds a chunk's outcome to the import jobs its rows came from, completing those whose
/// upload is over and whose rows are all accounted for.
async fn update_import_jobs<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    tallies: &ImportTallies,
    now: DateTime<Utc>,
) -> Result<()> {
    for (job, tally) in &tallies.0 {
        let added = tally.processed + tally.unmatched + tally.suppressed;
        let update = imports::job_update(tenant, *job, |set| {
            set.push("rows_processed = rows_processed + ")
                .bind(tally.processed)
                .push(", rows_unmatched = rows_unmatched + ")
                .bind(tally.unmatched)
                .push(", rows_suppressed = rows_suppressed + ")
                .bind(tally.suppressed)
                .push(", ");
            imports::push_completion(set, now, added, false);
        });
        update.execute(txn).await?;
    }
    Ok(())
}
