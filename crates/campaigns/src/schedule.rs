//! Scheduled journeys: at a given moment, once or every N days, everyone then in a segment
//! enters (a newsletter, a weekly digest, a one-off broadcast). A repeat keeps the local time
//! of the first occurrence in the workspace's timezone, so "Mondays 09:00 Paris" stays 09:00
//! across daylight saving changes.
//!
//! A run pages through the segment's members by profile id (`schedule_member_cursor`), a
//! thousand per transaction, so a run over a million people survives a restart half-way and
//! never holds a long transaction. The re-entry policy applies as for any entry: with `never`,
//! a person enters a recurring journey once; with `after_exit`, again on each run after they
//! left. An occurrence missed while the journey was paused runs once when it is resumed.

use crate::error::Result;
use crate::executor::{admissible, insert_enrollments};
use crate::graph::Trigger;
use crate::journeys::Reentry;
use crate::service::Campaigns;
use crate::settings;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use kernel::{JourneyId, ProfileId, SegmentId};
use platform::sql::Sql;
use platform::{Backend, TenantScope};
use uuid::Uuid;

/// Members enrolled per journey per transaction.
const MEMBERS_PER_ROUND: u64 = 1000;

/// The first occurrence of the schedule at or after `from`: `at` itself, or for a repeat, `at`
/// plus a whole number of `every_days` days of local calendar time in `timezone`. `None` when a
/// one-off schedule is already past.
pub(crate) fn occurrence_from(
    at: DateTime<Utc>,
    every_days: Option<u32>,
    timezone: Tz,
    from: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if at >= from {
        return Some(at);
    }
    let every = i64::from(every_days?.max(1));
    let local = at.with_timezone(&timezone).naive_local();
    // Start a period before the estimate: local days and UTC days differ by at most an hour.
    let mut periods = ((from - at).num_days() / every - 1).max(0);
    loop {
        let candidate = local + Duration::days(periods * every);
        if let Some(moment) = settings::resolve_local(timezone, candidate)
            && moment >= from
        {
            return Some(moment);
        }
        periods += 1;
    }
}

impl Campaigns {
    /// Starts or continues the runs of scheduled journeys that are due, one page of members
    /// per journey. Returns how many people entered.
    pub(crate) async fn enroll_scheduled(&self, scope: &TenantScope) -> Result<usize> {
        let tenant = scope.tenant_id().as_uuid();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, version, reentry, schedule_next_at, schedule_run_at, schedule_member_cursor FROM journeys \
             WHERE tenant_id = ",
        );
        select
            .bind(tenant)
            .push(" AND status = 'active' AND (schedule_run_at IS NOT NULL OR schedule_next_at <= ")
            .bind(now)
            .push(")");
        if self.db().backend() == Backend::Postgres {
            select.push(" FOR UPDATE SKIP LOCKED");
        }
        let rows = select.fetch_all(&txn).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let timezone = settings::workspace_timezone(&txn, tenant).await?;
        let mut enrolled = 0;
        for row in rows {
            let journey = JourneyId::from_uuid(row.try_get("", "id")?);
            let version: i32 = row.try_get("", "version")?;
            let reentry = Reentry::parse(&row.try_get::<String>("", "reentry")?)?;
            let mut next_at: Option<DateTime<Utc>> = row.try_get("", "schedule_next_at")?;
            let mut run_at: Option<DateTime<Utc>> = row.try_get("", "schedule_run_at")?;
            let cursor: Option<Uuid> = row.try_get("", "schedule_member_cursor")?;
            let loaded = self.version(&txn, scope, journey, version).await?;
            let (segment, at, every_days) = match &loaded.published.graph.entry.trigger {
                Trigger::Schedule { segment, at, every_days } => (*segment, *at, *every_days),
                // The journey was republished with another trigger: nothing more to run.
                _ => {
                    save(&txn, tenant, journey, None, None, None).await?;
                    continue;
                }
            };
            if run_at.is_none() {
                // A new run starts: the following occurrence is the first one after now, so
                // occurrences missed while paused run once, not once each.
                run_at = next_at;
                next_at = occurrence_from(at, every_days, timezone, now + Duration::seconds(1));
            }
            let members = segments::journeys::members_page(
                &txn,
                scope,
                SegmentId::from_uuid(segment),
                cursor.map(ProfileId::from_uuid),
                MEMBERS_PER_ROUND,
            )
            .await?;
            let candidates: Vec<(ProfileId, Option<Uuid>)> = members.iter().map(|p| (*p, None)).collect();
            let people = admissible(&txn, tenant, journey, reentry, &candidates).await?;
            let first_step = loaded.published.graph.entry.next.clone();
            insert_enrollments(&txn, tenant, journey, version, &first_step, &people, now).await?;
            enrolled += people.len();
            let finished = (members.len() as u64) < MEMBERS_PER_ROUND;
            let (run_at, cursor) =
                if finished { (None, None) } else { (run_at, members.last().map(ProfileId::as_uuid)) };
            save(&txn, tenant, journey, next_at, run_at, cursor).await?;
        }
        txn.commit().await?;
        Ok(enrolled)
    }
}

async fn save<C: sea_orm::ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    journey: JourneyId,
    next_at: Option<DateTime<Utc>>,
    run_at: Option<DateTime<Utc>>,
    cursor: Option<Uuid>,
) -> Result<()> {
    let mut update = Sql::new("UPDATE journeys SET schedule_next_at = ");
    update
        .bind(next_at)
        .push(", schedule_run_at = ")
        .bind(run_at)
        .push(", schedule_member_cursor = ")
        .bind(cursor)
        .push(" WHERE tenant_id = ")
        .bind(tenant)
        .push(" AND id = ")
        .bind(journey.as_uuid());
    update.execute(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_one_off_schedule_runs_at_its_time_and_never_after() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let when = at("2026-03-02T08:00:00Z");
        assert_eq!(occurrence_from(when, None, paris, at("2026-03-01T00:00:00Z")), Some(when));
        assert_eq!(occurrence_from(when, None, paris, when), Some(when));
        assert_eq!(occurrence_from(when, None, paris, at("2026-03-02T08:00:01Z")), None);
    }

    #[test]
    fn a_weekly_schedule_keeps_its_local_time_across_daylight_saving() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // Monday 2 March 2026, 09:00 in Paris (UTC+1).
        let first = at("2026-03-02T08:00:00Z");
        // Paris moves to UTC+2 on 29 March: Monday 30 March 09:00 is 07:00 UTC.
        assert_eq!(
            occurrence_from(first, Some(7), paris, at("2026-03-24T00:00:00Z")),
            Some(at("2026-03-30T07:00:00Z"))
        );
        // The week before is still UTC+1.
        assert_eq!(
            occurrence_from(first, Some(7), paris, at("2026-03-16T08:00:01Z")),
            Some(at("2026-03-23T08:00:00Z"))
        );
        // Exactly on an occurrence, that occurrence.
        assert_eq!(
            occurrence_from(first, Some(7), paris, at("2026-03-09T08:00:00Z")),
            Some(at("2026-03-09T08:00:00Z"))
        );
    }

    #[test]
    fn a_daily_schedule_far_in_the_future_is_found_without_walking_day_by_day() {
        let first = at("2020-01-01T06:30:00Z");
        assert_eq!(
            occurrence_from(first, Some(1), Tz::UTC, at("2026-11-24T07:00:00Z")),
            Some(at("2026-11-25T06:30:00Z"))
        );
        assert_eq!(
            occurrence_from(first, Some(3), Tz::UTC, at("2020-01-02T00:00:00Z")),
            Some(at("2020-01-04T06:30:00Z"))
        );
    }

    #[test]
    fn a_time_that_does_not_exist_on_the_day_moves_an_hour_later() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // Daily at 02:30 Paris; on 29 March 2026 clocks jump from 02:00 to 03:00.
        let first = at("2026-03-27T01:30:00Z");
        assert_eq!(
            occurrence_from(first, Some(1), paris, at("2026-03-28T23:00:00Z")),
            Some(at("2026-03-29T01:30:00Z"))
        );
    }
}
