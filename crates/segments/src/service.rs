//! The segments service: definitions with their versions, previews, and evaluation into
//! stored membership.

use crate::ast::Condition;
use crate::cache::{CacheStats, SegmentsCache};
use crate::error::{Result, SegmentsError};
use crate::membership::{self, Evaluation};
use crate::{compile, dsl};
use chrono::{DateTime, Utc};
use kernel::{Clock, Page, PageRequest, ProfileId, SegmentId, WorkspaceId};
use platform::paging::Order;
use platform::sql::{Sql, json};
use platform::{Backend, Cache, Db, TenantScope};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tenancy::{Actor, Permission, Tenancy};
use uuid::Uuid;

/// Longest segment name.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Most profiles a preview's sample shows.
pub const MAX_SAMPLE: usize = 100;
/// How long cached answers live (they are unreachable as soon as the data changes anyway).
const PREVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(300);
const PREVIEW_TTL_RELATIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// A definition as a client sends it: exactly one of the two forms.
#[derive(Debug, Clone)]
pub enum DefinitionInput {
    Text(String),
    Json(serde_json::Value),
}

impl DefinitionInput {
    /// Reads either form into the normalised tree.
    pub fn parse(&self) -> Result<Condition> {
        let condition = match self {
            DefinitionInput::Text(text) => dsl::parse(text)?,
            DefinitionInput::Json(value) => Condition::from_json(&value.to_string())?,
        };
        Ok(condition.normalized())
    }
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub id: SegmentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    pub version: i32,
    pub definition: Condition,
    /// Members at the last evaluation.
    pub size: i64,
    pub evaluated_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SegmentVersion {
    pub version: i32,
    pub definition: Condition,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub description: String,
    pub definition: DefinitionInput,
}

#[derive(Debug, Clone, Default)]
pub struct SegmentChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub definition: Option<DefinitionInput>,
}

/// What a definition would select now, without saving anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preview {
    pub definition: Condition,
    pub count: i64,
    pub sample: Vec<ProfileId>,
}

/// A current member and since when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    pub segment_id: SegmentId,
    pub profile_id: ProfileId,
    pub entered_at: DateTime<Utc>,
}

/// One entry or exit, as journeys see it.
#[derive(Debug, Clone)]
pub struct MembershipChange {
    pub id: Uuid,
    pub segment_id: SegmentId,
    pub version: i32,
    pub profile_id: ProfileId,
    pub entered: bool,
    pub at: DateTime<Utc>,
}

/// The segments service. Cheap to clone.
/// Whether someone waits for an evaluation (the API) or not (the scheduled refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    Interactive,
    Background,
}

#[derive(Clone)]
pub struct Segments {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    cache: SegmentsCache,
    /// Segment evaluations of the real-time path since the process started.
    realtime_evaluations: std::sync::atomic::AtomicU64,
    tenancy: Tenancy,
    profiles: profiles::Profiles,
    clock: Arc<dyn Clock>,
}

impl Segments {
    pub fn new(
        db: Db,
        cache: Cache,
        tenancy: Tenancy,
        profiles: profiles::Profiles,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                cache: SegmentsCache::new(cache),
                realtime_evaluations: Default::default(),
                tenancy,
                profiles,
                clock,
            }),
        }
    }

    pub(crate) fn cache(&self) -> &SegmentsCache {
        &self.inner.cache
    }

    /// Segments evaluated by the real-time path since the process started (one per segment
    /// and group of changed profiles).
    pub fn realtime_evaluations(&self) -> u64 {
        self.inner.realtime_evaluations.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_realtime_evaluation(&self) {
        self.inner.realtime_evaluations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Hits and misses of the answer cache since the process started.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn tenancy(&self) -> &Tenancy {
        &self.inner.tenancy
    }

    pub(crate) fn profiles(&self) -> &profiles::Profiles {
        &self.inner.profiles
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    async fn authorize(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        permission: Permission,
    ) -> Result<TenantScope> {
        Ok(self.inner.tenancy.authorize(actor, workspace, permission).await?)
    }

    /// Saves a new segment as version 1 and evaluates it, so it has members at once.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn create(&self, actor: &Actor, workspace: WorkspaceId, input: NewSegment) -> Result<Segment> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let name = check_name(&input.name)?;
        let description = check_description(&input.description)?;
        let definition = input.definition.parse()?;
        // First, so that every change after the evaluation below reaches the real-time path.
        self.profiles().subscribe_to_changes(&scope, "segments").await?;
        let id = SegmentId::new();
        let now = self.now();
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        let definitions = load_definitions(&txn, tenant).await?;
        check_references(id, &definition, &definitions)?;
        ensure_name_free(&txn, tenant, &name, None).await?;
        let mut insert = Sql::new(
            "INSERT INTO segments (tenant_id, id, name, description, version, definition, time_relative, size, \
             created_by, created_at, updated_at) VALUES (",
        );
        insert
            .bind(tenant)
            .push(", ")
            .bind(id.as_uuid())
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(description)
            .push(", 1, ")
            .bind(json(&definition.to_json()))
            .push(", ")
            .bind(definition.is_time_relative())
            .push(", 0, ")
            .bind(actor.label())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&txn).await?;
        insert_version(&txn, tenant, id, 1, &definition, &actor.label(), now).await?;
        let mut definitions = definitions;
        definitions.insert(id, definition.clone());
        membership::evaluate(&txn, tenant, id, 1, &definition, &definitions, now, None).await?;
        let segment = load(&txn, workspace, id).await?;
        txn.commit().await?;
        self.cache().segments_changed(workspace).await;
        Ok(segment)
    }

    /// Renames, describes or redefines a segment. A new definition is a new version, and the
    /// membership follows it at once (people who no longer match leave, with the new version
    /// on their exit).
    #[tracing::instrument(skip_all, fields(workspace = %workspace, segment = %id))]
    pub async fn update(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: SegmentId,
        changes: SegmentChanges,
    ) -> Result<Segment> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let name = changes.name.as_deref().map(check_name).transpose()?;
        let description = changes.description.as_deref().map(check_description).transpose()?;
        let definition = changes.definition.as_ref().map(DefinitionInput::parse).transpose()?;
        let now = self.now();
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        let current = load(&txn, workspace, id).await?;
        let mut set = Sql::new("UPDATE segments SET updated_at = ");
        set.bind(now);
        if let Some(name) = name {
            ensure_name_free(&txn, tenant, &name, Some(id)).await?;
            set.push(", name = ").bind(name);
        }
        if let Some(description) = description {
            set.push(", description = ").bind(description);
        }
        let redefined = definition.filter(|d| *d != current.definition);
        let version = current.version + i32::from(redefined.is_some());
        if let Some(definition) = &redefined {
            let mut definitions = load_definitions(&txn, tenant).await?;
            check_references(id, definition, &definitions)?;
            definitions.insert(id, definition.clone());
            set.push(", version = ")
                .bind(version)
                .push(", definition = ")
                .bind(json(&definition.to_json()))
                .push(", time_relative = ")
                .bind(definition.is_time_relative());
            insert_version(&txn, tenant, id, version, definition, &actor.label(), now).await?;
            set.push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(id.as_uuid());
            set.execute(&txn).await?;
            membership::evaluate(&txn, tenant, id, version, definition, &definitions, now, None).await?;
        } else {
            set.push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(id.as_uuid());
            set.execute(&txn).await?;
        }
        let segment = load(&txn, workspace, id).await?;
        txn.commit().await?;
        self.cache().segments_changed(workspace).await;
        Ok(segment)
    }

    /// Deletes a segment with its versions and membership. Refused while another segment
    /// refers to it.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, segment = %id))]
    pub async fn delete(&self, actor: &Actor, workspace: WorkspaceId, id: SegmentId) -> Result<()> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        load(&txn, workspace, id).await?;
        let definitions = load_definitions(&txn, tenant).await?;
        let mut users: Vec<String> = Vec::new();
        for (other, definition) in &definitions {
            if *other != id && definition.segment_refs().contains(&id) {
                users.push(other.to_string());
            }
        }
        if !users.is_empty() {
            users.sort();
            return Err(SegmentsError::Conflict(format!(
                "other segments use this one: {}; change them first",
                users.join(", ")
            )));
        }
        for table in ["segment_members", "segment_versions"] {
            let mut delete = Sql::new(&format!("DELETE FROM {table} WHERE tenant_id = "));
            delete.bind(tenant).push(" AND segment_id = ").bind(id.as_uuid());
            delete.execute(&txn).await?;
        }
        let mut delete = Sql::new("DELETE FROM segments WHERE tenant_id = ");
        delete.bind(tenant).push(" AND id = ").bind(id.as_uuid());
        delete.execute(&txn).await?;
        txn.commit().await?;
        self.cache().segments_changed(workspace).await;
        Ok(())
    }

    pub async fn segment(&self, actor: &Actor, workspace: WorkspaceId, id: SegmentId) -> Result<Segment> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let segment = load(&txn, workspace, id).await?;
        txn.commit().await?;
        Ok(segment)
    }

    /// The workspace's segments, oldest first.
    pub async fn segments(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Segment>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE tenant_id = "));
        select.bind(scope.tenant_id().as_uuid()).keyset("id", &page, Order::OldestFirst);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let segments = rows.iter().map(|row| segment_from(workspace, row)).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(segments, page, |s| s.id.as_uuid()))
    }

    pub async fn versions(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: SegmentId,
    ) -> Result<Vec<SegmentVersion>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(
            "SELECT version, definition, created_by, created_at FROM segment_versions WHERE tenant_id = ",
        );
        select
            .bind(scope.tenant_id().as_uuid())
            .push(" AND segment_id = ")
            .bind(id.as_uuid())
            .push(" ORDER BY version DESC");
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(SegmentVersion {
                    version: row.try_get("", "version")?,
                    definition: definition_from(row)?,
                    created_by: row.try_get("", "created_by")?,
                    created_at: row.try_get("", "created_at")?,
                })
            })
            .collect()
    }

    /// Counts who a definition selects now and shows a sample, saving nothing: what the
    /// segment builder shows while someone types.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn preview(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        definition: &DefinitionInput,
        sample: usize,
    ) -> Result<Preview> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let definition = definition.parse()?;
        let sample = sample.min(MAX_SAMPLE);
        let stamps = self.cache().stamps(workspace).await;
        let request = (&definition, sample);
        if let Some(stamps) = &stamps
            && let Some(preview) = self.cache().get::<Preview>(workspace, stamps, "preview", &request).await
        {
            return Ok(preview);
        }
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin(self.db()).await?;
        let definitions = load_definitions(&txn, tenant).await?;
        check_references(SegmentId::from_uuid(Uuid::nil()), &definition, &definitions)?;
        let now = self.now();
        let context = compile::Context {
            backend: txn.get_database_backend(),
            tenant,
            now,
            segments: &definitions,
            only: None,
        };
        // One evaluation gives both the count and the sample: the matching ids are
        // materialised once, then counted and the first few taken. (Ordering the profiles
        // themselves by id would make the database walk them in index order, a random read of
        // the whole table, instead of scanning it.)
        let mut select =
            Sql::new("WITH matching AS MATERIALIZED (SELECT p.id FROM profiles p WHERE p.tenant_id = ");
        select.bind(tenant).push(" AND p.merged_into IS NULL AND ");
        compile::condition(&mut select, &definition, &context)?;
        if sample == 0 {
            select.push(") SELECT NULL AS id, (SELECT COUNT(*) FROM matching) AS n");
        } else {
            select
                .push(") SELECT id, (SELECT COUNT(*) FROM matching) AS n FROM matching ORDER BY id LIMIT ")
                .bind(sample as i64);
        }
        let rows = select.fetch_all(&txn).await?;
        let count: i64 = match rows.first() {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        let sample_ids = if sample == 0 {
            Vec::new()
        } else {
            rows.iter()
                .map(|row| Ok(ProfileId::from_uuid(row.try_get("", "id")?)))
                .collect::<Result<Vec<_>>>()?
        };
        txn.commit().await?;
        let preview = Preview { definition, count, sample: sample_ids };
        if let Some(stamps) = &stamps {
            // A definition relative to now changes with the clock alone: kept briefly.
            let ttl = if preview.definition.is_time_relative() { PREVIEW_TTL_RELATIVE } else { PREVIEW_TTL };
            self.cache()
                .put(workspace, stamps, "preview", &(&preview.definition, sample), &preview, ttl)
                .await;
        }
        Ok(preview)
    }

    /// Evaluates a segment now: who entered, who left, and the new size.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, segment = %id))]
    pub async fn evaluate(&self, actor: &Actor, workspace: WorkspaceId, id: SegmentId) -> Result<Evaluation> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        self.evaluate_in_scope(&scope, id, Urgency::Interactive).await
    }

    /// Evaluates a whole segment into stored membership. A `Background` evaluation (the
    /// scheduled refresh) runs without parallel workers on PostgreSQL: it takes one core for
    /// longer instead of every core at once, so the real-time path keeps running beside it.
    pub(crate) async fn evaluate_in_scope(
        &self,
        scope: &TenantScope,
        id: SegmentId,
        urgency: Urgency,
    ) -> Result<Evaluation> {
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        if urgency == Urgency::Background && self.db().backend() == Backend::Postgres {
            Sql::new("SET LOCAL max_parallel_workers_per_gather = 0").execute(&txn).await?;
        }
        let segment = load(&txn, WorkspaceId::from_uuid(tenant), id).await?;
        let definitions = load_definitions(&txn, tenant).await?;
        let evaluation = membership::evaluate(
            &txn,
            tenant,
            id,
            segment.version,
            &segment.definition,
            &definitions,
            self.now(),
            None,
        )
        .await?;
        txn.commit().await?;
        if evaluation.entered + evaluation.exited > 0 {
            self.cache().segments_changed(WorkspaceId::from_uuid(tenant)).await;
        }
        Ok(evaluation)
    }

    /// Current members, in order of profile id.
    pub async fn members(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: SegmentId,
        page: PageRequest,
    ) -> Result<Page<Membership>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        load(&txn, workspace, id).await?;
        let mut select =
            Sql::new("SELECT segment_id, profile_id, entered_at FROM segment_members WHERE tenant_id = ");
        select.bind(scope.tenant_id().as_uuid()).push(" AND segment_id = ").bind(id.as_uuid()).keyset(
            "profile_id",
            &page,
            Order::OldestFirst,
        );
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let members = rows.iter().map(membership_from).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(members, page, |m| m.profile_id.as_uuid()))
    }

    /// The segments a profile is in, and since when.
    pub async fn profile_segments(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Vec<Membership>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let stamps = self.cache().stamps(workspace).await;
        if let Some(stamps) = &stamps
            && let Some(found) =
                self.cache().get::<Vec<Membership>>(workspace, stamps, "profile", &profile).await
        {
            return Ok(found);
        }
        let txn = scope.begin(self.db()).await?;
        let mut select =
            Sql::new("SELECT segment_id, profile_id, entered_at FROM segment_members WHERE tenant_id = ");
        select
            .bind(scope.tenant_id().as_uuid())
            .push(" AND profile_id = ")
            .bind(profile.as_uuid())
            .push(" ORDER BY entered_at, segment_id");
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let found = rows.iter().map(membership_from).collect::<Result<Vec<_>>>()?;
        if let Some(stamps) = &stamps {
            self.cache().put(workspace, stamps, "profile", &profile, &found, PREVIEW_TTL).await;
        }
        Ok(found)
    }

    /// Entries and exits, oldest first: of one segment, or of every segment of the workspace.
    pub async fn changes(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        segment: Option<SegmentId>,
        page: PageRequest,
    ) -> Result<Page<MembershipChange>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, segment_id, version, profile_id, entered, at FROM segment_changes WHERE tenant_id = ",
        );
        select.bind(scope.tenant_id().as_uuid());
        if let Some(segment) = segment {
            select.push(" AND segment_id = ").bind(segment.as_uuid());
        }
        select.keyset("id", &page, Order::OldestFirst);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let changes = rows
            .iter()
            .map(|row| {
                Ok(MembershipChange {
                    id: row.try_get("", "id")?,
                    segment_id: SegmentId::from_uuid(row.try_get("", "segment_id")?),
                    version: row.try_get("", "version")?,
                    profile_id: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                    entered: row.try_get("", "entered")?,
                    at: row.try_get("", "at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(changes, page, |c| c.id))
    }
}

const SEGMENT_COLUMNS: &str =
    "id, name, description, version, definition, size, evaluated_at, created_by, created_at, updated_at";

/// The segment, or `NOT_FOUND` (also for another workspace's id).
pub(crate) async fn load<C: ConnectionTrait>(
    txn: &C,
    workspace: WorkspaceId,
    id: SegmentId,
) -> Result<Segment> {
    let mut select = Sql::new(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE tenant_id = "));
    select.bind(workspace.as_uuid()).push(" AND id = ").bind(id.as_uuid());
    let row = select.fetch_one(txn).await?.ok_or(SegmentsError::NotFound)?;
    segment_from(workspace, &row)
}

fn segment_from(workspace: WorkspaceId, row: &QueryResult) -> Result<Segment> {
    Ok(Segment {
        id: SegmentId::from_uuid(row.try_get("", "id")?),
        workspace_id: workspace,
        name: row.try_get("", "name")?,
        description: row.try_get("", "description")?,
        version: row.try_get("", "version")?,
        definition: definition_from(row)?,
        size: row.try_get("", "size")?,
        evaluated_at: row.try_get("", "evaluated_at")?,
        created_by: row.try_get("", "created_by")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

fn definition_from(row: &QueryResult) -> Result<Condition> {
    let value: serde_json::Value = row.try_get("", "definition")?;
    Ok(serde_json::from_value(value)?)
}

fn membership_from(row: &QueryResult) -> Result<Membership> {
    Ok(Membership {
        segment_id: SegmentId::from_uuid(row.try_get("", "segment_id")?),
        profile_id: ProfileId::from_uuid(row.try_get("", "profile_id")?),
        entered_at: row.try_get("", "entered_at")?,
    })
}

/// Every segment's current definition, for references between segments.
pub(crate) async fn load_definitions<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
) -> Result<HashMap<SegmentId, Condition>> {
    let mut select = Sql::new("SELECT id, definition FROM segments WHERE tenant_id = ");
    select.bind(tenant);
    let mut definitions = HashMap::new();
    for row in select.fetch_all(txn).await? {
        definitions.insert(SegmentId::from_uuid(row.try_get("", "id")?), definition_from(&row)?);
    }
    Ok(definitions)
}

/// Every segment referred to exists (in this workspace: the others' ids look the same as ids
/// that do not exist), and following references from `id`'s new definition never comes back
/// to `id`.
fn check_references(
    id: SegmentId,
    definition: &Condition,
    definitions: &HashMap<SegmentId, Condition>,
) -> Result<()> {
    let mut stack: Vec<(SegmentId, Vec<SegmentId>)> =
        definition.segment_refs().into_iter().map(|r| (r, vec![id, r])).collect();
    let mut seen: HashSet<SegmentId> = HashSet::new();
    while let Some((current, path)) = stack.pop() {
        if current == id {
            let path: Vec<String> = path.iter().map(ToString::to_string).collect();
            return Err(SegmentsError::invalid(format!(
                "segments would refer to each other in a cycle: {}",
                path.join(" → ")
            )));
        }
        let referred = definitions
            .get(&current)
            .ok_or_else(|| SegmentsError::invalid(format!("the segment {current} does not exist")))?;
        if !seen.insert(current) {
            continue;
        }
        for next in referred.segment_refs() {
            let mut next_path = path.clone();
            next_path.push(next);
            stack.push((next, next_path));
        }
    }
    Ok(())
}

async fn ensure_name_free<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    name: &str,
    except: Option<SegmentId>,
) -> Result<()> {
    let mut select = Sql::new("SELECT id FROM segments WHERE tenant_id = ");
    select.bind(tenant).push(" AND name = ").bind(name.to_owned());
    if let Some(row) = select.fetch_one(txn).await? {
        let existing = SegmentId::from_uuid(row.try_get("", "id")?);
        if Some(existing) != except {
            return Err(SegmentsError::Conflict(format!("a segment named \"{name}\" already exists")));
        }
    }
    Ok(())
}

async fn insert_version<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    id: SegmentId,
    version: i32,
    definition: &Condition,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut insert = Sql::new(
        "INSERT INTO segment_versions (tenant_id, segment_id, version, definition, created_by, created_at) VALUES (",
    );
    insert
        .bind(tenant)
        .push(", ")
        .bind(id.as_uuid())
        .push(", ")
        .bind(version)
        .push(", ")
        .bind(json(&definition.to_json()))
        .push(", ")
        .bind(created_by.to_owned())
        .push(", ")
        .bind(now)
        .push(")");
    insert.execute(txn).await?;
    Ok(())
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(SegmentsError::invalid(format!(
            "a segment name is 1 to {MAX_NAME_CHARS} characters, without control characters"
        )));
    }
    Ok(name.to_owned())
}

fn check_description(description: &str) -> Result<String> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(SegmentsError::invalid(format!(
            "a description is at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(description.trim().to_owned())
}
