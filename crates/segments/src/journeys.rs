//! What journeys ask of segments, inside the journey executor's own transaction: whether a
//! branch condition holds for a batch of people (the batch SQL narrowed to them, so a branch
//! means exactly what the segment language means everywhere else), who entered a segment
//! since a cursor (a journey's entry trigger), and a segment's members (a scheduled entry).

use crate::ast::Condition;
use crate::compile;
use crate::error::{Result, SegmentsError};
use crate::service::load_definitions;
use chrono::{DateTime, Utc};
use kernel::{ProfileId, SegmentId};
use platform::TenantScope;
use platform::sql::Sql;
use sea_orm::ConnectionTrait;
use std::collections::HashSet;
use uuid::Uuid;

/// Checks a condition used outside a segment (a journey's branch): the segments it names must
/// exist in the workspace.
pub async fn check_condition<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    condition: &Condition,
) -> Result<()> {
    condition.validate()?;
    let definitions = load_definitions(conn, scope.tenant_id().as_uuid()).await?;
    for referred in condition.segment_refs() {
        if !definitions.contains_key(&referred) {
            return Err(SegmentsError::invalid(format!("the segment {referred} does not exist")));
        }
    }
    Ok(())
}

/// Which of `profiles` satisfy `condition` at `now`.
pub async fn matching<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    condition: &Condition,
    profiles: &[ProfileId],
    now: DateTime<Utc>,
) -> Result<HashSet<ProfileId>> {
    if profiles.is_empty() {
        return Ok(HashSet::new());
    }
    let tenant = scope.tenant_id().as_uuid();
    let definitions = load_definitions(conn, tenant).await?;
    let context = compile::Context {
        backend: conn.get_database_backend(),
        tenant,
        now,
        segments: &definitions,
        only: Some(profiles),
    };
    let mut select = Sql::new("SELECT p.id FROM profiles p WHERE p.tenant_id = ");
    select
        .bind(tenant)
        .push(" AND p.merged_into IS NULL AND p.id IN ")
        .bind_list(profiles.iter().map(ProfileId::as_uuid))
        .push(" AND ");
    compile::condition(&mut select, condition, &context)?;
    let mut found = HashSet::new();
    for row in select.fetch_all(conn).await? {
        found.insert(ProfileId::from_uuid(row.try_get("", "id")?));
    }
    Ok(found)
}

/// One entry into a segment, in the order entries happened (`id` is its cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: Uuid,
    pub profile: ProfileId,
    pub at: DateTime<Utc>,
}

/// Entries into `segment` after `cursor` (all of them when `None`), oldest first.
pub async fn entries_since<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    segment: SegmentId,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Entry>> {
    let mut select = Sql::new("SELECT id, profile_id, at FROM segment_changes WHERE tenant_id = ");
    select
        .bind(scope.tenant_id().as_uuid())
        .push(" AND segment_id = ")
        .bind(segment.as_uuid())
        .push(" AND entered = ")
        .bind(true);
    if let Some(cursor) = cursor {
        select.push(" AND id > ").bind(cursor);
    }
    select.push(" ORDER BY id LIMIT ").bind(limit.min(i64::MAX as u64) as i64);
    select
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| {
            Ok(Entry {
                id: row.try_get("", "id")?,
                profile: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                at: row.try_get("", "at")?,
            })
        })
        .collect()
}

/// The newest entry's id into `segment`: a journey activated now starts after it, so people
/// who were already members do not flood in as if they had just entered.
pub async fn latest_entry<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    segment: SegmentId,
) -> Result<Option<Uuid>> {
    let mut select = Sql::new("SELECT id FROM segment_changes WHERE tenant_id = ");
    select
        .bind(scope.tenant_id().as_uuid())
        .push(" AND segment_id = ")
        .bind(segment.as_uuid())
        .push(" ORDER BY id DESC LIMIT 1");
    match select.fetch_one(conn).await? {
        Some(row) => Ok(row.try_get("", "id")?),
        None => Ok(None),
    }
}

/// Whether `segment` exists in the workspace.
pub async fn exists<C: ConnectionTrait>(conn: &C, scope: &TenantScope, segment: SegmentId) -> Result<bool> {
    let mut select = Sql::new("SELECT id FROM segments WHERE tenant_id = ");
    select.bind(scope.tenant_id().as_uuid()).push(" AND id = ").bind(segment.as_uuid());
    Ok(select.fetch_one(conn).await?.is_some())
}

/// Which of `names` some live profile of the workspace has as a trait (content checks the
/// variables it uses against them when a journey is published). One indexed probe per name,
/// stopping at the first profile found.
pub async fn traits_in_use<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<HashSet<String>> {
    let tenant = scope.tenant_id().as_uuid();
    let definitions = std::collections::HashMap::new();
    let context = compile::Context {
        backend: conn.get_database_backend(),
        tenant,
        now,
        segments: &definitions,
        only: None,
    };
    let mut found = HashSet::new();
    for name in names {
        let exists = Condition::Trait { name: name.clone(), op: crate::ast::Op::Exists, value: None };
        if exists.validate().is_err() {
            continue;
        }
        let mut select = Sql::new("SELECT p.id FROM profiles p WHERE p.tenant_id = ");
        select.bind(tenant).push(" AND p.merged_into IS NULL AND ");
        compile::condition(&mut select, &exists, &context)?;
        select.push(" LIMIT 1");
        if select.fetch_one(conn).await?.is_some() {
            found.insert(name.clone());
        }
    }
    Ok(found)
}

/// Up to `limit` current members of `segment` after `after`, in profile id order: a
/// simulation's sample, and the pages a scheduled journey enrolls.
pub async fn members_page<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    segment: SegmentId,
    after: Option<ProfileId>,
    limit: u64,
) -> Result<Vec<ProfileId>> {
    let mut select = Sql::new("SELECT profile_id FROM segment_members WHERE tenant_id = ");
    select.bind(scope.tenant_id().as_uuid()).push(" AND segment_id = ").bind(segment.as_uuid());
    if let Some(after) = after {
        select.push(" AND profile_id > ").bind(after.as_uuid());
    }
    select.push(" ORDER BY profile_id LIMIT ").bind(limit.min(i64::MAX as u64) as i64);
    select
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| Ok(ProfileId::from_uuid(row.try_get("", "profile_id")?)))
        .collect()
}
