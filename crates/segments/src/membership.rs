//! Evaluation into stored membership: who matches now against who was in, entries and exits
//! written as changes (the internal events journeys trigger on), and the segment's size.

use crate::ast::Condition;
use crate::compile;
use crate::error::Result;
use chrono::{DateTime, Utc};
use kernel::{ProfileId, SegmentId};
use platform::sql::Sql;
use sea_orm::ConnectionTrait;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What one evaluation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub entered: usize,
    pub exited: usize,
    /// Members after the evaluation.
    pub size: i64,
}

/// Rows per multi-row insert, under both backends' parameter limits.
const BATCH: usize = 500;

/// Evaluates `definition` for the whole workspace, or for `only` those profiles, and stores
/// the difference. Runs inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn evaluate<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    segment: SegmentId,
    version: i32,
    definition: &Condition,
    definitions: &HashMap<SegmentId, Condition>,
    now: DateTime<Utc>,
    only: Option<&[ProfileId]>,
) -> Result<Evaluation> {
    let context =
        compile::Context { backend: txn.get_database_backend(), tenant, now, segments: definitions, only };
    let mut select = Sql::new("SELECT p.id FROM profiles p WHERE p.tenant_id = ");
    select.bind(tenant).push(" AND p.merged_into IS NULL");
    if let Some(only) = only {
        select.push(" AND p.id IN ").bind_list(only.iter().map(ProfileId::as_uuid));
    }
    select.push(" AND ");
    compile::condition(&mut select, definition, &context)?;
    let mut matching: HashSet<Uuid> = HashSet::new();
    for row in select.fetch_all(txn).await? {
        matching.insert(row.try_get("", "id")?);
    }

    let mut current = Sql::new("SELECT profile_id FROM segment_members WHERE tenant_id = ");
    current.bind(tenant).push(" AND segment_id = ").bind(segment.as_uuid());
    if let Some(only) = only {
        current.push(" AND profile_id IN ").bind_list(only.iter().map(ProfileId::as_uuid));
    }
    let mut members: HashSet<Uuid> = HashSet::new();
    for row in current.fetch_all(txn).await? {
        members.insert(row.try_get("", "profile_id")?);
    }

    // Sorted so that changes are written, and read back, in a stable order.
    let mut entered: Vec<Uuid> = matching.difference(&members).copied().collect();
    let mut exited: Vec<Uuid> = members.difference(&matching).copied().collect();
    entered.sort_unstable();
    exited.sort_unstable();

    for chunk in entered.chunks(BATCH) {
        let mut insert =
            Sql::new("INSERT INTO segment_members (tenant_id, segment_id, profile_id, entered_at) VALUES ");
        for (i, profile) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(segment.as_uuid())
                .push(", ")
                .bind(*profile)
                .push(", ")
                .bind(now)
                .push(")");
        }
        // A full refresh and the real-time path may add the same person at the same moment.
        insert.push(" ON CONFLICT (tenant_id, segment_id, profile_id) DO NOTHING");
        insert.execute(txn).await?;
    }
    for chunk in exited.chunks(BATCH) {
        let mut delete = Sql::new("DELETE FROM segment_members WHERE tenant_id = ");
        delete
            .bind(tenant)
            .push(" AND segment_id = ")
            .bind(segment.as_uuid())
            .push(" AND profile_id IN ")
            .bind_list(chunk.iter().copied());
        delete.execute(txn).await?;
    }
    let changes: Vec<(Uuid, bool)> =
        entered.iter().map(|p| (*p, true)).chain(exited.iter().map(|p| (*p, false))).collect();
    for chunk in changes.chunks(BATCH) {
        let mut insert = Sql::new(
            "INSERT INTO segment_changes (tenant_id, id, segment_id, version, profile_id, entered, at) VALUES ",
        );
        for (i, (profile, entered)) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(segment.as_uuid())
                .push(", ")
                .bind(version)
                .push(", ")
                .bind(*profile)
                .push(", ")
                .bind(*entered)
                .push(", ")
                .bind(now)
                .push(")");
        }
        insert.execute(txn).await?;
    }

    // A full evaluation counts the members; the real-time path adds its difference, so its cost
    // follows the changed profiles and not the segment's size.
    let size: i64 = if only.is_none() {
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM segment_members WHERE tenant_id = ");
        count.bind(tenant).push(" AND segment_id = ").bind(segment.as_uuid());
        let size = match count.fetch_one(txn).await? {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        let mut update = Sql::new("UPDATE segments SET size = ");
        update.bind(size).push(", evaluated_at = ").bind(now);
        update.push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(segment.as_uuid());
        update.execute(txn).await?;
        size
    } else {
        let delta = entered.len() as i64 - exited.len() as i64;
        let mut update = Sql::new("UPDATE segments SET size = size + ");
        update
            .bind(delta)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(segment.as_uuid())
            .push(" RETURNING size");
        match update.fetch_one(txn).await? {
            Some(row) => row.try_get("", "size")?,
            None => 0,
        }
    };
    Ok(Evaluation { entered: entered.len(), exited: exited.len(), size })
}
