//! Reading profiles: one profile, search, identities, the timeline and the merge history.

use crate::{
    Identity, IdentityKind, Profiles, ProfilesError,
    profile_row::{self, ProfileRow},
    service::Result,
    settings,
    sql::Sql,
    traits,
};
use chrono::{DateTime, Utc};
use kernel::{EventId, MergeId, Page, PageRequest, ProfileId, WorkspaceId};
use platform::paging::Order;
use platform::{Backend, TenantScope};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::{Map, Value};
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// A person as the workspace knows them now.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: ProfileId,
    pub workspace_id: WorkspaceId,
    /// Each trait with its value, source and time.
    pub trait_details: Map<String, Value>,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub event_count: i64,
    pub lifetime_revenue: f64,
    pub first_touch_channel: Option<String>,
    pub devices: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Profile {
    pub fn traits(&self) -> Map<String, Value> {
        traits::values(&self.trait_details)
    }

    fn from_row(workspace_id: WorkspaceId, row: ProfileRow) -> Self {
        Self {
            id: row.id,
            workspace_id,
            trait_details: row.traits,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            event_count: row.event_count,
            lifetime_revenue: row.revenue,
            first_touch_channel: row.first_channel,
            devices: row.devices,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProfileIdentity {
    pub kind: String,
    pub value: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TimelineEvent {
    pub id: EventId,
    pub message_id: String,
    pub event_type: String,
    pub name: Option<String>,
    pub channel: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The profile the event was first resolved to (differs from the profile after a merge).
    pub first_profile_id: Option<ProfileId>,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct Merge {
    pub id: MergeId,
    pub survivor_id: ProfileId,
    pub merged_id: ProfileId,
    /// The identifier both profiles held, which caused the merge.
    pub cause_kind: String,
    pub cause_value: String,
    pub event_id: Option<EventId>,
    pub created_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

/// What to look for; all given conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct ProfileFilter {
    pub identifier: Option<(String, String)>,
    pub trait_equals: Option<(String, String)>,
    pub text: Option<String>,
}

const MAX_SEARCH_TEXT: usize = 200;

impl Profiles {
    /// One profile. The id of a profile merged into another answers with the profile it is
    /// part of now, so old links keep working.
    pub async fn profile(&self, actor: &Actor, workspace: WorkspaceId, id: ProfileId) -> Result<Profile> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, &scope, id).await?;
        txn.commit().await?;
        Ok(Profile::from_row(workspace, row))
    }

    /// Several profiles by id in one read, in the order given (a merged id answers with the
    /// profile it is part of now; ids that do not exist are left out).
    pub async fn profiles_by_id(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        ids: &[ProfileId],
    ) -> Result<Vec<Profile>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut rows: std::collections::HashMap<ProfileId, ProfileRow> =
            profile_row::load(&txn, scope.tenant_id().as_uuid(), ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let row = match rows.remove(id) {
                Some(row) if row.merged_into.is_none() => row,
                Some(_) => live_profile(&txn, &scope, *id).await?,
                None => continue,
            };
            found.push(Profile::from_row(workspace, row));
        }
        txn.commit().await?;
        Ok(found)
    }

    pub async fn profiles(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        filter: ProfileFilter,
        page: PageRequest,
    ) -> Result<Page<Profile>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin(self.db()).await?;
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM profiles p WHERE p.tenant_id = ",
            profile_row::qualified_columns("p")
        ));
        sql.bind(tenant).push(" AND p.merged_into IS NULL");
        if let Some((kind, value)) = &filter.identifier {
            let kind: IdentityKind = kind.parse()?;
            let settings = settings::load(&txn, tenant).await?;
            let identity = match kind {
                IdentityKind::Postal => Identity { kind, value: value.trim().to_owned() },
                kind => Identity::parse(kind, value, &settings.normalization)?,
            };
            sql.push(" AND p.id IN (SELECT profile_id FROM identities WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND kind = ")
                .bind(identity.kind.as_str().to_owned())
                .push(" AND value = ")
                .bind(identity.value)
                .push(")");
        }
        if let Some((name, value)) = &filter.trait_equals {
            if name.is_empty() || name.len() > traits::MAX_TRAIT_NAME_BYTES || name.contains(['"', '\\']) {
                return Err(ProfilesError::invalid("the trait name is not valid"));
            }
            match self.db().backend() {
                Backend::Postgres => {
                    sql.push(" AND (p.traits -> ").bind(name.clone()).push(" ->> 'value') = ")
                }
                Backend::Sqlite => sql
                    .push(" AND CAST(json_extract(p.traits, ")
                    .bind(format!("$.\"{name}\".value"))
                    .push(") AS TEXT) = "),
            };
            sql.bind(value.clone());
        }
        if let Some(text) = &filter.text {
            let text = text.trim().to_lowercase();
            if text.is_empty() || text.len() > MAX_SEARCH_TEXT {
                return Err(ProfilesError::invalid(format!(
                    "the search text has 1 to {MAX_SEARCH_TEXT} bytes"
                )));
            }
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            sql.push(" AND p.search_text LIKE ").bind(format!("%{escaped}%")).push(" ESCAPE '\\'");
        }
        sql.keyset("p.id", &page, Order::OldestFirst);
        let rows = sql.fetch_all(&txn).await?;
        txn.commit().await?;
        let rows = rows.iter().map(ProfileRow::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetched(rows, page, |r| r.id.as_uuid())
            .map(|row| Profile::from_row(workspace, row)))
    }

    pub async fn identities(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Vec<ProfileIdentity>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, &scope, profile).await?;
        let mut sql = Sql::new("SELECT kind, value, source, created_at FROM identities WHERE tenant_id = ");
        sql.bind(scope.tenant_id().as_uuid()).push(" AND profile_id = ").bind(row.id.as_uuid());
        sql.push(" ORDER BY kind, value");
        let rows = sql.fetch_all(&txn).await?;
        txn.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ProfileIdentity {
                    kind: r.try_get("", "kind")?,
                    value: r.try_get("", "value")?,
                    source: r.try_get("", "source")?,
                    created_at: r.try_get("", "created_at")?,
                })
            })
            .collect()
    }

    /// The profile's events across channels and devices, newest first.
    pub async fn timeline(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
        page: PageRequest,
    ) -> Result<Page<TimelineEvent>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, &scope, profile).await?;
        let mut sql = Sql::new(
            "SELECT id, message_id, type, name, channel, occurred_at, received_at, first_profile_id, body \
             FROM events WHERE tenant_id = ",
        );
        sql.bind(scope.tenant_id().as_uuid()).push(" AND profile_id = ").bind(row.id.as_uuid());
        sql.keyset("id", &page, Order::NewestFirst);
        let rows = sql.fetch_all(&txn).await?;
        txn.commit().await?;
        let events = rows.iter().map(timeline_event).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(events, page, |e| e.id.as_uuid()))
    }

    /// How this profile came to be: every merge into it or into a profile it absorbed, and
    /// any merge of it into another, newest first.
    pub async fn merges(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Vec<Merge>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, &scope, profile).await?;
        let tree = absorbed_tree(&txn, &scope, row.id).await?;
        let mut sql = Sql::new(&format!("SELECT {MERGE_COLUMNS} FROM profile_merges WHERE tenant_id = "));
        sql.bind(scope.tenant_id().as_uuid())
            .push(" AND (survivor_id IN ")
            .bind_list(tree.iter().map(ProfileId::as_uuid))
            .push(" OR merged_id IN ")
            .bind_list(tree.iter().map(ProfileId::as_uuid))
            .push(") ORDER BY id DESC LIMIT 1000");
        let rows = sql.fetch_all(&txn).await?;
        txn.commit().await?;
        rows.iter().map(merge_from_row).collect()
    }
}

pub(crate) const MERGE_COLUMNS: &str =
    "id, survivor_id, merged_id, cause_kind, cause_value, event_id, created_at, undone_at";

pub(crate) fn merge_from_row(r: &QueryResult) -> Result<Merge> {
    Ok(Merge {
        id: MergeId::from_uuid(r.try_get("", "id")?),
        survivor_id: ProfileId::from_uuid(r.try_get("", "survivor_id")?),
        merged_id: ProfileId::from_uuid(r.try_get("", "merged_id")?),
        cause_kind: r.try_get("", "cause_kind")?,
        cause_value: r.try_get("", "cause_value")?,
        event_id: r.try_get::<Option<Uuid>>("", "event_id")?.map(EventId::from_uuid),
        created_at: r.try_get("", "created_at")?,
        undone_at: r.try_get("", "undone_at")?,
    })
}

fn timeline_event(r: &QueryResult) -> Result<TimelineEvent> {
    Ok(TimelineEvent {
        id: EventId::from_uuid(r.try_get("", "id")?),
        message_id: r.try_get("", "message_id")?,
        event_type: r.try_get("", "type")?,
        name: r.try_get("", "name")?,
        channel: r.try_get("", "channel")?,
        occurred_at: r.try_get("", "occurred_at")?,
        received_at: r.try_get("", "received_at")?,
        first_profile_id: r.try_get::<Option<Uuid>>("", "first_profile_id")?.map(ProfileId::from_uuid),
        body: r.try_get("", "body")?,
    })
}

/// The live profile an id stands for now: itself, or the one it was merged into (followed to
/// the end of the chain). `NotFound` for ids of other workspaces, as for ids that never were.
pub(crate) async fn live_profile<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    id: ProfileId,
) -> Result<ProfileRow> {
    let mut current = id;
    for _ in 0..64 {
        let rows = crate::profile_row::load(conn, scope.tenant_id().as_uuid(), &[current]).await?;
        let row = rows.into_iter().next().ok_or(ProfilesError::NotFound)?;
        match row.merged_into {
            None => return Ok(row),
            Some(next) => current = next,
        }
    }
    Err(ProfilesError::Internal("merge chain longer than 64".into()))
}

/// `root` and every profile merged into it, directly or through others.
pub(crate) async fn absorbed_tree<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    root: ProfileId,
) -> Result<Vec<ProfileId>> {
    let mut tree = vec![root];
    let mut frontier = vec![root];
    while !frontier.is_empty() && tree.len() < 100_000 {
        let mut sql = Sql::new("SELECT id FROM profiles WHERE tenant_id = ");
        sql.bind(scope.tenant_id().as_uuid())
            .push(" AND merged_into IN ")
            .bind_list(frontier.iter().map(ProfileId::as_uuid));
        frontier = sql
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id").map(ProfileId::from_uuid))
            .collect::<Result<_, _>>()?;
        tree.extend(frontier.iter().copied());
    }
    Ok(tree)
}
