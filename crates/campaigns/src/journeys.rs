//! Journeys: a draft graph staff edit freely, published into immutable versions once the
//! whole of it checks out (the graph's own rules, the segments and conditions it reads, the
//! channels it sends on, the content each send renders and the traits that content uses).
//! People stay on the version they entered; a new version is for new entrants.

use crate::error::{CampaignsError, Problem, Result};
use crate::graph::{JourneyGraph, StepKind, Trigger};
use crate::service::Campaigns;
use crate::{channels, contents, schedule, settings};
use chrono::{DateTime, Utc};
use kernel::{ChannelId, ContentId, JourneyId, Page, PageRequest, SegmentId, WorkspaceId};
use platform::paging::Order;
use platform::sql::{Sql, json};
use platform::{TenantScope, work_queue};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::Value;
use std::collections::BTreeMap;
use tenancy::{Actor, Permission};

/// The `pending_work` kind of workspaces with active journeys, which the executor visits.
pub const JOURNEYS_WORK: &str = "journeys";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyStatus {
    Draft,
    Active,
    Paused,
    Archived,
}

impl JourneyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStatus::Draft => "draft",
            JourneyStatus::Active => "active",
            JourneyStatus::Paused => "paused",
            JourneyStatus::Archived => "archived",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "draft" => JourneyStatus::Draft,
            "active" => JourneyStatus::Active,
            "paused" => JourneyStatus::Paused,
            "archived" => JourneyStatus::Archived,
            other => return Err(CampaignsError::invalid(format!("unknown journey status {other}"))),
        })
    }
}

/// Whether someone may go through a journey more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reentry {
    /// Once ever.
    Never,
    /// Again once their previous passage has ended.
    AfterExit,
}

impl Reentry {
    pub fn as_str(self) -> &'static str {
        match self {
            Reentry::Never => "never",
            Reentry::AfterExit => "after_exit",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "never" => Ok(Reentry::Never),
            "after_exit" => Ok(Reentry::AfterExit),
            other => Err(CampaignsError::invalid(format!(
                "\"{other}\" is not a re-entry policy; use never or after_exit"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Journey {
    pub id: JourneyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub status: JourneyStatus,
    /// The draft graph as last saved (it may not be valid yet).
    pub draft: Value,
    /// The latest published version (0 before the first publish).
    pub version: i32,
    pub reentry: Reentry,
    /// For a scheduled journey: when its next run starts (`None` once a one-off has run).
    pub next_scheduled_run: Option<DateTime<Utc>>,
    /// For a scheduled journey: the run now enrolling its segment's members, if any.
    pub scheduled_run_in_progress: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct JourneyVersion {
    pub version: i32,
    pub graph: Value,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewJourney {
    pub name: String,
    pub graph: Value,
    pub reentry: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct JourneyChanges {
    pub name: Option<String>,
    pub graph: Option<Value>,
    pub reentry: Option<String>,
}

/// A published version as the executor runs it: the graph, and the content of each send step
/// frozen at publish time, so editing content later never changes what a version sends.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PublishedVersion {
    pub graph: JourneyGraph,
    pub contents: BTreeMap<ContentId, contents::ContentSnapshot>,
}

/// The draft graph may be large but not unbounded.
const MAX_GRAPH_BYTES: usize = 512 * 1024;

impl Campaigns {
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn create_journey(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        input: NewJourney,
    ) -> Result<Journey> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let name = crate::check_name(&input.name, "journey")?;
        check_size(&input.graph)?;
        let reentry = Reentry::parse(input.reentry.as_deref().unwrap_or("never"))?;
        let now = self.now();
        let journey = Journey {
            id: JourneyId::new(),
            workspace_id: workspace,
            name,
            status: JourneyStatus::Draft,
            draft: input.graph,
            version: 0,
            reentry,
            next_scheduled_run: None,
            scheduled_run_in_progress: None,
            created_at: now,
            updated_at: now,
        };
        let txn = scope.begin_write(self.db()).await?;
        crate::ensure_name_free(&txn, crate::Named::Journey, workspace, &journey.name, None).await?;
        let mut insert = Sql::new(
            "INSERT INTO journeys (tenant_id, id, name, status, draft, version, reentry, entry_cursor, created_at, updated_at) VALUES (",
        );
        insert
            .bind(workspace.as_uuid())
            .push(", ")
            .bind(journey.id.as_uuid())
            .push(", ")
            .bind(journey.name.clone())
            .push(", ")
            .bind(journey.status.as_str())
            .push(", ")
            .bind(json(&journey.draft))
            .push(", ")
            .bind(0)
            .push(", ")
            .bind(journey.reentry.as_str())
            .push(", NULL, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&txn).await?;
        txn.commit().await?;
        Ok(journey)
    }

    /// Saves changes to the draft (the published versions never change).
    #[tracing::instrument(skip_all, fields(workspace = %workspace, journey = %id))]
    pub async fn update_journey(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
        changes: JourneyChanges,
    ) -> Result<Journey> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let txn = scope.begin_write(self.db()).await?;
        let mut journey = load(&txn, workspace, id).await?;
        if journey.status == JourneyStatus::Archived {
            return Err(CampaignsError::Conflict("an archived journey cannot be changed".into()));
        }
        if let Some(name) = changes.name {
            journey.name = crate::check_name(&name, "journey")?;
            crate::ensure_name_free(
                &txn,
                crate::Named::Journey,
                workspace,
                &journey.name,
                Some(id.as_uuid()),
            )
            .await?;
        }
        if let Some(graph) = changes.graph {
            check_size(&graph)?;
            journey.draft = graph;
        }
        if let Some(reentry) = changes.reentry {
            journey.reentry = Reentry::parse(&reentry)?;
        }
        journey.updated_at = self.now();
        let mut update = Sql::new("UPDATE journeys SET name = ");
        update
            .bind(journey.name.clone())
            .push(", draft = ")
            .bind(json(&journey.draft))
            .push(", reentry = ")
            .bind(journey.reentry.as_str())
            .push(", updated_at = ")
            .bind(journey.updated_at)
            .push(" WHERE tenant_id = ")
            .bind(workspace.as_uuid())
            .push(" AND id = ")
            .bind(id.as_uuid());
        update.execute(&txn).await?;
        txn.commit().await?;
        Ok(journey)
    }

    /// Everything that would stop the draft from being published, without publishing.
    pub async fn validate_journey(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
    ) -> Result<Vec<Problem>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let journey = load(&txn, workspace, id).await?;
        let outcome = self.check_publishable(&txn, &scope, &journey.draft).await?;
        txn.commit().await?;
        Ok(outcome.err().unwrap_or_default())
    }

    /// Publishes the draft as a new immutable version and activates the journey (a paused one
    /// stays paused). New entrants get this version; people inside stay on theirs.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, journey = %id))]
    pub async fn publish_journey(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
    ) -> Result<Journey> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let txn = scope.begin_write(self.db()).await?;
        let mut journey = load_for_update(&txn, workspace, id).await?;
        if journey.status == JourneyStatus::Archived {
            return Err(CampaignsError::Conflict("an archived journey cannot be published".into()));
        }
        let published =
            self.check_publishable(&txn, &scope, &journey.draft).await?.map_err(CampaignsError::Invalid)?;
        let now = self.now();
        journey.version += 1;
        let mut insert = Sql::new(
            "INSERT INTO journey_versions (tenant_id, journey_id, version, graph, contents, published_by, published_at) VALUES (",
        );
        insert
            .bind(workspace.as_uuid())
            .push(", ")
            .bind(id.as_uuid())
            .push(", ")
            .bind(journey.version)
            .push(", ")
            .bind(json(&serde_json::to_value(&published.graph)?))
            .push(", ")
            .bind(json(&serde_json::to_value(&published.contents)?))
            .push(", ")
            .bind(actor.label())
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&txn).await?;
        let first_activation = journey.status == JourneyStatus::Draft;
        if first_activation {
            journey.status = JourneyStatus::Active;
        }
        let mut update = Sql::new("UPDATE journeys SET version = ");
        update.bind(journey.version).push(", status = ").bind(journey.status.as_str());
        // Once any version waits for an event or has a goal, the executor listens for the
        // events of the people inside, whichever version they are on.
        let awaits = published
            .graph
            .steps
            .iter()
            .any(|step| matches!(step.kind, StepKind::WaitForEvent { .. } | StepKind::Goal { .. }));
        if awaits {
            update.push(", awaits_events = ").bind(true);
        }
        // The schedule follows the version just published (a run in progress finishes).
        let next_run = match &published.graph.entry.trigger {
            Trigger::Schedule { at, every_days, .. } => {
                let timezone = settings::workspace_timezone(&txn, workspace.as_uuid()).await?;
                schedule::occurrence_from(*at, *every_days, timezone, now)
            }
            _ => None,
        };
        update.push(", schedule_next_at = ").bind(next_run);
        if first_activation && let Trigger::SegmentEntered { segment } = &published.graph.entry.trigger {
            // People already in the segment did not just enter it: start after its latest entry.
            let cursor =
                segments::journeys::latest_entry(&txn, &scope, SegmentId::from_uuid(*segment)).await?;
            update.push(", entry_cursor = ").bind(cursor);
        }
        update
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(workspace.as_uuid())
            .push(" AND id = ")
            .bind(id.as_uuid());
        update.execute(&txn).await?;
        work_queue::mark(&txn, JOURNEYS_WORK, workspace.as_uuid(), now).await?;
        txn.commit().await?;
        journey.updated_at = now;
        journey.next_scheduled_run = next_run;
        Ok(journey)
    }

    /// Pauses (nobody enters or moves on), resumes, or archives (everyone inside leaves).
    #[tracing::instrument(skip_all, fields(workspace = %workspace, journey = %id))]
    pub async fn set_journey_status(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
        status: JourneyStatus,
    ) -> Result<Journey> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let txn = scope.begin_write(self.db()).await?;
        let mut journey = load_for_update(&txn, workspace, id).await?;
        let allowed = match (journey.status, status) {
            (JourneyStatus::Active, JourneyStatus::Paused)
            | (JourneyStatus::Paused, JourneyStatus::Active) => true,
            (current, JourneyStatus::Archived) => current != JourneyStatus::Archived,
            _ => false,
        };
        if !allowed {
            return Err(CampaignsError::Conflict(format!(
                "a {} journey cannot become {} (publish a draft to activate it)",
                journey.status.as_str(),
                status.as_str()
            )));
        }
        let now = self.now();
        journey.status = status;
        journey.updated_at = now;
        let mut update = Sql::new("UPDATE journeys SET status = ");
        update
            .bind(status.as_str())
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(workspace.as_uuid())
            .push(" AND id = ")
            .bind(id.as_uuid());
        update.execute(&txn).await?;
        if status == JourneyStatus::Archived {
            let mut exit =
                Sql::new("UPDATE journey_enrollments SET status = 'exited', due_at = NULL, updated_at = ");
            exit.bind(now)
                .push(" WHERE tenant_id = ")
                .bind(workspace.as_uuid())
                .push(" AND journey_id = ")
                .bind(id.as_uuid())
                .push(" AND status = 'active'");
            exit.execute(&txn).await?;
            // Sends not yet handed over are not made for an archived journey; one in flight
            // finishes.
            let mut cancel = Sql::new(
                "UPDATE outbox SET status = 'cancelled', last_error = 'the journey was archived' WHERE tenant_id = ",
            );
            cancel
                .bind(workspace.as_uuid())
                .push(" AND journey_id = ")
                .bind(id.as_uuid())
                .push(" AND status = 'pending'");
            cancel.execute(&txn).await?;
        }
        if status == JourneyStatus::Active {
            work_queue::mark(&txn, JOURNEYS_WORK, workspace.as_uuid(), now).await?;
        }
        txn.commit().await?;
        Ok(journey)
    }

    pub async fn journey(&self, actor: &Actor, workspace: WorkspaceId, id: JourneyId) -> Result<Journey> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let journey = load(&txn, workspace, id).await?;
        txn.commit().await?;
        Ok(journey)
    }

    pub async fn journeys(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Journey>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM journeys WHERE tenant_id = "));
        select.bind(workspace.as_uuid()).keyset("id", &page, Order::OldestFirst);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let journeys = rows.iter().map(journey_from).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(journeys, page, |j| j.id.as_uuid()))
    }

    pub async fn journey_versions(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
    ) -> Result<Vec<JourneyVersion>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        load(&txn, workspace, id).await?;
        let mut select = Sql::new(
            "SELECT version, graph, published_by, published_at FROM journey_versions WHERE tenant_id = ",
        );
        select
            .bind(workspace.as_uuid())
            .push(" AND journey_id = ")
            .bind(id.as_uuid())
            .push(" ORDER BY version");
        let versions = select
            .fetch_all(&txn)
            .await?
            .iter()
            .map(|row| {
                Ok(JourneyVersion {
                    version: row.try_get("", "version")?,
                    graph: row.try_get("", "graph")?,
                    published_by: row.try_get("", "published_by")?,
                    published_at: row.try_get("", "published_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        txn.commit().await?;
        Ok(versions)
    }

    /// The publishable form of `draft`, or every problem with it.
    pub(crate) async fn check_publishable<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &TenantScope,
        draft: &Value,
    ) -> Result<std::result::Result<PublishedVersion, Vec<Problem>>> {
        let graph = match JourneyGraph::parse(draft) {
            Ok(graph) => graph,
            Err(problems) => return Ok(Err(problems.into_iter().map(Problem::from).collect())),
        };
        let mut problems: Vec<Problem> = match graph.validate() {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_iter().map(Problem::from).collect(),
        };
        let workspace = WorkspaceId::from_uuid(scope.tenant_id().as_uuid());
        let entry_segment = match &graph.entry.trigger {
            Trigger::SegmentEntered { segment } | Trigger::Schedule { segment, .. } => Some(*segment),
            Trigger::EventPerformed { .. } => None,
        };
        if let Some(segment) = entry_segment
            && !segments::journeys::exists(conn, scope, SegmentId::from_uuid(segment)).await?
        {
            problems.push(problem(
                "unknown_segment",
                None,
                format!("The entry segment {segment} does not exist."),
            ));
        }
        if let Trigger::Schedule { at, every_days: None, .. } = &graph.entry.trigger
            && *at < self.now()
        {
            problems.push(problem(
                "schedule_in_past",
                None,
                format!("The schedule's time {at} has passed; choose a later time or a repeat."),
            ));
        }
        let mut published_contents = BTreeMap::new();
        let factors: std::collections::BTreeSet<&str> = graph
            .steps
            .iter()
            .filter_map(|step| match &step.kind {
                StepKind::Multivariate { factors, .. } => Some(factors.iter().map(|f| f.name.as_str())),
                _ => None,
            })
            .flatten()
            .collect();
        for step in &graph.steps {
            match &step.kind {
                StepKind::Branch { condition, .. } => {
                    let parsed = match condition {
                        Value::String(text) => segments::DefinitionInput::Text(text.clone()).parse(),
                        other => segments::DefinitionInput::Json(other.clone()).parse(),
                    };
                    let checked = match parsed {
                        Ok(condition) => segments::journeys::check_condition(conn, scope, &condition).await,
                        Err(error) => Err(error),
                    };
                    if let Err(error) = checked {
                        if error.code() == kernel::ErrorCode::Internal {
                            return Err(error.into());
                        }
                        problems.push(problem(
                            "invalid_condition",
                            Some(&step.id),
                            format!("The condition of step \"{}\" is not valid: {error}", step.id),
                        ));
                    }
                }
                StepKind::Send { channel, content, .. } => {
                    let channel = match channels::load(conn, workspace, ChannelId::from_uuid(*channel)).await
                    {
                        Ok(channel) => channel,
                        Err(CampaignsError::NotFound) => {
                            problems.push(problem(
                                "unknown_channel",
                                Some(&step.id),
                                format!("Step \"{}\" sends on a channel that does not exist.", step.id),
                            ));
                            continue;
                        }
                        Err(error) => return Err(error),
                    };
                    if channel.delivery.mode() == crate::channel::DeliveryMode::Audience {
                        problems.push(problem(
                            "unsupported_channel",
                            Some(&step.id),
                            format!(
                                "Step \"{}\" sends on \"{}\", which delivers by {}; journeys send messages and offers only for now.",
                                step.id,
                                channel.name,
                                channel.delivery.mode().as_str()
                            ),
                        ));
                    }
                    let content_id = ContentId::from_uuid(*content);
                    match self.snapshot_for_send(conn, scope, content_id, channel.kind, &factors).await? {
                        Ok(snapshot) => {
                            published_contents.insert(content_id, snapshot);
                        }
                        Err(content_problems) => {
                            problems.extend(content_problems.into_iter().map(|mut p| {
                                p.location = Some(match p.location {
                                    Some(inner) => format!("{}: {inner}", step.id),
                                    None => step.id.clone(),
                                });
                                p
                            }))
                        }
                    }
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(Ok(PublishedVersion { graph, contents: published_contents }))
        } else {
            Ok(Err(problems))
        }
    }
}

fn problem(code: &str, step: Option<&str>, message: String) -> Problem {
    Problem { code: code.to_owned(), location: step.map(str::to_owned), message }
}

impl From<crate::graph::GraphProblem> for Problem {
    fn from(p: crate::graph::GraphProblem) -> Self {
        Problem { code: p.code.to_owned(), location: p.step, message: p.message }
    }
}

fn check_size(graph: &Value) -> Result<()> {
    if graph.to_string().len() > MAX_GRAPH_BYTES {
        return Err(CampaignsError::invalid("a journey graph must be under 512 KB"));
    }
    Ok(())
}

const COLUMNS: &str = "tenant_id, id, name, status, draft, version, reentry, schedule_next_at, schedule_run_at, created_at, updated_at";

pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    id: JourneyId,
) -> Result<Journey> {
    select_journey(conn, workspace, id, false).await
}

/// Like [`load`], holding the row so concurrent publishes get consecutive versions.
async fn load_for_update<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    id: JourneyId,
) -> Result<Journey> {
    select_journey(conn, workspace, id, conn.get_database_backend() == sea_orm::DbBackend::Postgres).await
}

async fn select_journey<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    id: JourneyId,
    for_update: bool,
) -> Result<Journey> {
    let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM journeys WHERE tenant_id = "));
    select.bind(workspace.as_uuid()).push(" AND id = ").bind(id.as_uuid());
    if for_update {
        select.push(" FOR UPDATE");
    }
    match select.fetch_one(conn).await? {
        Some(row) => journey_from(&row),
        None => Err(CampaignsError::NotFound),
    }
}

fn journey_from(row: &QueryResult) -> Result<Journey> {
    let status: String = row.try_get("", "status")?;
    let reentry: String = row.try_get("", "reentry")?;
    Ok(Journey {
        id: JourneyId::from_uuid(row.try_get("", "id")?),
        workspace_id: WorkspaceId::from_uuid(row.try_get("", "tenant_id")?),
        name: row.try_get("", "name")?,
        status: JourneyStatus::parse(&status)?,
        draft: row.try_get("", "draft")?,
        version: row.try_get("", "version")?,
        reentry: Reentry::parse(&reentry)?,
        next_scheduled_run: row.try_get("", "schedule_next_at")?,
        scheduled_run_in_progress: row.try_get("", "schedule_run_at")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}
