//! Real-time membership: the worker takes changed profiles from the profiles' change feed
//! and re-evaluates the workspace's segments for those profiles only, with the same compiled
//! SQL as the batch path (restricted to their ids), so both paths always agree. Segments that
//! depend on the time are evaluated in full on a schedule, so people leave a 30-day window
//! when their last order falls out of it, without any new event.

use crate::ast::Condition;
use crate::error::Result;
use crate::membership;
use crate::service::{Segments, Urgency, load_definitions};
use kernel::{ProfileId, SegmentId};
use platform::sql::Sql;
use platform::{Backend, TenantScope, work_queue};
use profiles::changes::{CHANGES_WORK, Topics};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

const POLL: Duration = Duration::from_millis(200);
/// Every this many rounds the worker looks at every workspace, not only the marked ones, so a
/// lost mark delays a change by seconds, never forever.
const SWEEP_EVERY: u32 = 50;
/// Changed profiles taken per transaction.
const BATCH: i64 = 500;

impl Segments {
    /// Runs until `shutdown` turns true: applies the change feed as it arrives, and refreshes
    /// time-dependent segments every `refresh`. Errors are logged and retried next round.
    pub async fn run_worker(self, refresh: Duration, shutdown: watch::Receiver<bool>) {
        // Two loops, so a full refresh of a large segment never holds up the real-time path.
        tokio::join!(self.run_change_loop(shutdown.clone()), self.run_refresh_loop(refresh, shutdown));
    }

    async fn run_change_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut round: u32 = 0;
        loop {
            let sweep = round.is_multiple_of(SWEEP_EVERY);
            round = round.wrapping_add(1);
            if let Err(error) = self.apply_changes_with(sweep).await {
                tracing::error!(error = %error, "real-time segments round failed");
            }
            tokio::select! {
                _ = self.profiles().changes_ready().notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn run_refresh_loop(&self, refresh: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.refresh_time_relative().await {
                tracing::error!(error = %error, "refreshing time-dependent segments failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(refresh) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Applies every change committed so far, in every workspace, waiting for changes another
    /// worker is applying at the same moment: when it returns, membership reflects all of
    /// them. Returns how many profiles it re-evaluated itself.
    pub async fn apply_changes(&self) -> Result<usize> {
        self.apply_changes_with(true).await
    }

    /// One round of the change feed. Sweeping looks at every workspace and waits for rows
    /// other workers hold; otherwise only marked workspaces, skipping rows held elsewhere.
    async fn apply_changes_with(&self, sweep: bool) -> Result<usize> {
        let conn = self.db().connection();
        let mut applied = 0;
        for workspace in work_queue::marked(conn, CHANGES_WORK, sweep).await? {
            // The mark goes first: changes committed from now on set it again.
            work_queue::take(conn, CHANGES_WORK, workspace).await?;
            let scope = self.tenancy().queued_work_scope(workspace).await?;
            loop {
                let n = self.apply_change_batch(&scope, !sweep).await?;
                applied += n;
                if n < BATCH as usize {
                    break;
                }
            }
        }
        Ok(applied)
    }

    async fn apply_change_batch(&self, scope: &TenantScope, skip_locked: bool) -> Result<usize> {
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        let mut select =
            Sql::new("SELECT profile_id, change_id, topics FROM profile_changes WHERE tenant_id = ");
        select.bind(tenant).push(" ORDER BY profile_id LIMIT ").bind(BATCH);
        if self.db().backend() == Backend::Postgres {
            // Several workers share the feed: each takes rows the others are not working on,
            // or, when sweeping, waits for them (rows they delete meanwhile are skipped).
            select.push(if skip_locked { " FOR UPDATE SKIP LOCKED" } else { " FOR UPDATE" });
        }
        let rows = select.fetch_all(&txn).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let mut profiles = Vec::with_capacity(rows.len());
        let mut seen = Vec::with_capacity(rows.len());
        let mut topics: Vec<String> = Vec::with_capacity(rows.len());
        for row in &rows {
            profiles.push(ProfileId::from_uuid(row.try_get("", "profile_id")?));
            seen.push(row.try_get::<Uuid>("", "change_id")?);
            topics.push(row.try_get("", "topics")?);
        }
        let definitions = load_definitions(&txn, tenant).await?;
        let mut versions = Sql::new("SELECT id, version FROM segments WHERE tenant_id = ");
        versions.bind(tenant);
        let mut segments = Vec::new();
        for row in versions.fetch_all(&txn).await? {
            let id = SegmentId::from_uuid(row.try_get("", "id")?);
            let version: i32 = row.try_get("", "version")?;
            if let Some(definition) = definitions.get(&id) {
                segments.push((id, version, definition, reads(definition, &definitions, 0)));
            }
        }
        // Profiles changed on the same topics are evaluated together, against the segments
        // those topics can affect only.
        let mut by_topics: BTreeMap<&str, Vec<ProfileId>> = BTreeMap::new();
        for (profile, topics) in profiles.iter().zip(&topics) {
            by_topics.entry(topics.as_str()).or_default().push(*profile);
        }
        let now = self.now();
        for (topics, group) in &by_topics {
            let topics = Topics::decode(topics);
            for (id, version, definition, reads) in &segments {
                if reads.iter().any(|topic| topics.touches(topic)) {
                    membership::evaluate(
                        &txn,
                        tenant,
                        *id,
                        *version,
                        definition,
                        &definitions,
                        now,
                        Some(group),
                    )
                    .await?;
                    self.count_realtime_evaluation();
                }
            }
        }
        forget_erased(&txn, tenant, &profiles).await?;
        // By profile (the primary key finds the rows) and by the change seen (a change made
        // meanwhile has a new id and stays for the next round).
        let mut done = Sql::new("DELETE FROM profile_changes WHERE tenant_id = ");
        done.bind(tenant)
            .push(" AND profile_id IN ")
            .bind_list(profiles.iter().map(ProfileId::as_uuid))
            .push(" AND change_id IN ")
            .bind_list(seen);
        done.execute(&txn).await?;
        txn.commit().await?;
        self.cache().segments_changed(scope.tenant_id().into()).await;
        Ok(rows.len())
    }

    /// Evaluates in full every segment whose membership depends on the time.
    pub async fn refresh_time_relative(&self) -> Result<usize> {
        let mut refreshed = 0;
        for workspace in work_queue::every_workspace(self.db().connection()).await? {
            let scope = self.tenancy().queued_work_scope(workspace).await?;
            let txn = scope.begin(self.db()).await?;
            let mut select = Sql::new("SELECT id FROM segments WHERE tenant_id = ");
            select.bind(workspace.as_uuid()).push(" AND time_relative = ").bind(true);
            let ids = select
                .fetch_all(&txn)
                .await?
                .iter()
                .map(|row| Ok(SegmentId::from_uuid(row.try_get("", "id")?)))
                .collect::<Result<Vec<_>>>()?;
            txn.commit().await?;
            for id in ids {
                self.evaluate_in_scope(&scope, id, Urgency::Background).await?;
                refreshed += 1;
            }
        }
        Ok(refreshed)
    }
}

/// Profiles that no longer exist were erased: their entries and exits go too, so nothing
/// about them stays behind.
async fn forget_erased<C: sea_orm::ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    profiles: &[ProfileId],
) -> Result<()> {
    let mut select = Sql::new("SELECT id FROM profiles WHERE tenant_id = ");
    select.bind(tenant).push(" AND id IN ").bind_list(profiles.iter().map(ProfileId::as_uuid));
    let mut existing: HashSet<Uuid> = HashSet::new();
    for row in select.fetch_all(txn).await? {
        existing.insert(row.try_get("", "id")?);
    }
    let erased: Vec<Uuid> =
        profiles.iter().map(ProfileId::as_uuid).filter(|id| !existing.contains(id)).collect();
    if erased.is_empty() {
        return Ok(());
    }
    for table in ["segment_members", "segment_changes"] {
        let mut delete = Sql::new(&format!("DELETE FROM {table} WHERE tenant_id = "));
        delete.bind(tenant).push(" AND profile_id IN ").bind_list(erased.iter().copied());
        delete.execute(txn).await?;
    }
    Ok(())
}

/// The change-feed topics a definition reads (see `profiles::changes::Topics`): a change on
/// none of them cannot change its membership.
pub(crate) fn reads(
    condition: &Condition,
    definitions: &HashMap<SegmentId, Condition>,
    depth: usize,
) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    let mut add = |topic: String| {
        topics.insert(topic);
    };
    match condition {
        Condition::And { conditions } | Condition::Or { conditions } => {
            for c in conditions {
                reads(c, definitions, depth + 1).into_iter().for_each(&mut add);
            }
        }
        Condition::Not { condition } => reads(condition, definitions, depth + 1).into_iter().for_each(add),
        Condition::Trait { .. } => add(Topics::TRAITS.to_owned()),
        // Computed traits, channels and devices follow every event.
        Condition::Computed { .. } | Condition::Channel { .. } | Condition::Device { .. } => {
            add("event:*".to_owned())
        }
        Condition::Event { name, .. } => add(format!("event:{name}")),
        Condition::Sequence { steps, .. } => {
            steps.iter().for_each(|step| add(format!("event:{}", step.name)))
        }
        Condition::Identity { .. } => add(Topics::IDENTITIES.to_owned()),
        Condition::Consent { .. } => add(Topics::CONSENT.to_owned()),
        Condition::Segment { id } => match definitions.get(id) {
            Some(nested) if depth < crate::ast::MAX_DEPTH => {
                reads(nested, definitions, depth + 1).into_iter().for_each(add)
            }
            // A missing or too deep reference: read everything rather than miss a change.
            _ => add("*".to_owned()),
        },
    }
    topics
}
