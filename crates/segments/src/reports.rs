//! What staff ask of segments besides their members: size over time, from the entries and
//! exits, and how segments overlap.

use crate::error::{Result, SegmentsError};
use crate::service::Segments;
use chrono::{Duration, NaiveDate};
use kernel::{SegmentId, WorkspaceId};
use platform::Backend;
use platform::sql::Sql;
use std::collections::{BTreeMap, HashMap};
use tenancy::{Actor, Permission};

/// Most days a size history covers, and most segments one overlap compares.
pub const MAX_HISTORY_DAYS: u32 = 366;
pub const MAX_OVERLAP_SEGMENTS: usize = 10;

/// The size at the end of a day (UTC), with that day's entries and exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizePoint {
    pub day: NaiveDate,
    pub size: i64,
    pub entered: i64,
    pub exited: i64,
}

/// Two segments' sizes and how many people are in both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub a: SegmentId,
    pub b: SegmentId,
    pub size_a: i64,
    pub size_b: i64,
    pub both: i64,
}

impl Segments {
    /// The size at the end of each of the last `days` days, today included.
    pub async fn size_history(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: SegmentId,
        days: u32,
    ) -> Result<Vec<SizePoint>> {
        if days == 0 || days > MAX_HISTORY_DAYS {
            return Err(SegmentsError::invalid(format!(
                "a size history covers 1 to {MAX_HISTORY_DAYS} days"
            )));
        }
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        crate::service::load(&txn, workspace, id).await?;
        let day = match self.db().backend() {
            Backend::Postgres => "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            // Stored as RFC 3339 in UTC: the date is the first ten characters.
            Backend::Sqlite => "substr(at, 1, 10)",
        };
        let mut select = Sql::new(&format!(
            "SELECT {day} AS day, SUM(CASE WHEN entered THEN 1 ELSE 0 END) AS entered, \
             SUM(CASE WHEN entered THEN 0 ELSE 1 END) AS exited FROM segment_changes WHERE tenant_id = "
        ));
        select.bind(workspace.as_uuid()).push(" AND segment_id = ").bind(id.as_uuid()).push(" GROUP BY 1");
        let mut by_day: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
        for row in select.fetch_all(&txn).await? {
            let day: String = row.try_get("", "day")?;
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| SegmentsError::Internal(Box::new(e)))?;
            by_day.insert(day, (row.try_get("", "entered")?, row.try_get("", "exited")?));
        }
        txn.commit().await?;
        let today = self.now().date_naive();
        let first = today - Duration::days(i64::from(days) - 1);
        let mut size: i64 = by_day.range(..first).map(|(_, (entered, exited))| entered - exited).sum();
        let mut points = Vec::with_capacity(days as usize);
        let mut day = first;
        while day <= today {
            let (entered, exited) = by_day.get(&day).copied().unwrap_or_default();
            size += entered - exited;
            points.push(SizePoint { day, size, entered, exited });
            day += Duration::days(1);
        }
        Ok(points)
    }

    /// For every pair of the given segments, how many people are in both (current members).
    pub async fn overlap(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        ids: &[SegmentId],
    ) -> Result<Vec<Overlap>> {
        let mut unique: Vec<SegmentId> = Vec::new();
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        if unique.len() < 2 || unique.len() > MAX_OVERLAP_SEGMENTS {
            return Err(SegmentsError::invalid(format!(
                "an overlap compares 2 to {MAX_OVERLAP_SEGMENTS} different segments"
            )));
        }
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut sizes: HashMap<SegmentId, i64> = HashMap::new();
        for id in &unique {
            sizes.insert(*id, crate::service::load(&txn, workspace, *id).await?.size);
        }
        let tenant = workspace.as_uuid();
        let mut select = Sql::new(
            "SELECT a.segment_id AS a, b.segment_id AS b, COUNT(*) AS n FROM segment_members a \
             JOIN segment_members b ON b.tenant_id = a.tenant_id AND b.profile_id = a.profile_id \
             AND b.segment_id <> a.segment_id WHERE a.tenant_id = ",
        );
        select
            .bind(tenant)
            .push(" AND a.segment_id IN ")
            .bind_list(unique.iter().map(SegmentId::as_uuid))
            .push(" AND b.segment_id IN ")
            .bind_list(unique.iter().map(SegmentId::as_uuid))
            .push(" GROUP BY a.segment_id, b.segment_id");
        let mut both: HashMap<(SegmentId, SegmentId), i64> = HashMap::new();
        for row in select.fetch_all(&txn).await? {
            let key =
                (SegmentId::from_uuid(row.try_get("", "a")?), SegmentId::from_uuid(row.try_get("", "b")?));
            both.insert(key, row.try_get("", "n")?);
        }
        txn.commit().await?;
        let mut pairs = Vec::new();
        for (i, a) in unique.iter().enumerate() {
            for b in &unique[i + 1..] {
                pairs.push(Overlap {
                    a: *a,
                    b: *b,
                    size_a: sizes.get(a).copied().unwrap_or_default(),
                    size_b: sizes.get(b).copied().unwrap_or_default(),
                    both: both.get(&(*a, *b)).copied().unwrap_or_default(),
                });
            }
        }
        Ok(pairs)
    }
}
