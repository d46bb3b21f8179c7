//! What happened to whom: why people did not receive a message, where everyone stands in a
//! journey, and which sends could not be delivered.

use crate::error::Result;
use crate::service::Campaigns;
use chrono::{DateTime, Utc};
use kernel::{ChannelId, JourneyId, Page, PageRequest, ProfileId, WorkspaceId};
use platform::paging::Order;
use platform::sql::Sql;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// Someone who did not receive a message, and why (`no_consent`, `consent_withdrawn`,
/// `minor`, `no_address`, `suppressed` (every address on the suppression list), `frequency_cap`,
/// `quiet_hours` — deferred, not dropped —,
/// `render_failed`, `holdout`).
#[derive(Debug, Clone)]
pub struct SendBlock {
    pub id: Uuid,
    pub journey_id: JourneyId,
    pub step: String,
    pub profile_id: ProfileId,
    pub channel_id: Option<ChannelId>,
    pub reason: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct JourneyReport {
    /// People by status: active, completed, exited.
    pub by_status: Vec<(String, i64)>,
    /// Active people by the step they will take next.
    pub by_step: Vec<(String, i64)>,
    /// People by split variant (assigned when they passed a split).
    pub by_variant: Vec<(String, i64)>,
    pub holdout: i64,
    /// Sends by outbox status: pending, sending, sent, dead.
    pub sends: Vec<(String, i64)>,
    /// Messages not received, by reason.
    pub blocks: Vec<(String, i64)>,
}

/// A send that will not be delivered, with the last error.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: Uuid,
    pub journey_id: JourneyId,
    pub step: String,
    pub profile_id: ProfileId,
    pub channel_id: ChannelId,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A marketing contact with a person, as measurement reads it: `send`, `accepted`,
/// `delivery`, `open`, `click`, `bounce`, `complaint`, `unsubscribe` or `impression`.
#[derive(Debug, Clone)]
pub struct Touchpoint {
    pub id: Uuid,
    pub profile_id: ProfileId,
    pub kind: String,
    /// The channel's kind (`email`, `sms`…).
    pub channel: String,
    pub channel_id: Option<ChannelId>,
    pub journey_id: Option<JourneyId>,
    pub step: Option<String>,
    pub variant: Option<String>,
    pub device: Option<String>,
    pub at: DateTime<Utc>,
}

impl Campaigns {
    /// Touchpoints, newest first, for a journey, a person and/or a kind.
    pub async fn touchpoints(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        journey: Option<JourneyId>,
        profile: Option<ProfileId>,
        kind: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Touchpoint>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, profile_id, kind, channel, channel_id, journey_id, step, variant, device, at FROM touchpoints \
             WHERE tenant_id = ",
        );
        select.bind(workspace.as_uuid());
        if let Some(journey) = journey {
            select.push(" AND journey_id = ").bind(journey.as_uuid());
        }
        if let Some(profile) = profile {
            select.push(" AND profile_id = ").bind(profile.as_uuid());
        }
        if let Some(kind) = kind {
            select.push(" AND kind = ").bind(kind.to_owned());
        }
        select.keyset("id", &page, Order::NewestFirst);
        let touchpoints = select
            .fetch_all(&txn)
            .await?
            .iter()
            .map(|row| {
                Ok(Touchpoint {
                    id: row.try_get("", "id")?,
                    profile_id: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                    kind: row.try_get("", "kind")?,
                    channel: row.try_get("", "channel")?,
                    channel_id: row.try_get::<Option<Uuid>>("", "channel_id")?.map(ChannelId::from_uuid),
                    journey_id: row.try_get::<Option<Uuid>>("", "journey_id")?.map(JourneyId::from_uuid),
                    step: row.try_get("", "step")?,
                    variant: row.try_get("", "variant")?,
                    device: row.try_get("", "device")?,
                    at: row.try_get("", "at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        txn.commit().await?;
        Ok(Page::from_overfetched(touchpoints, page, |t| t.id))
    }

    /// Why people did not receive messages, newest first, for a journey and/or a person.
    pub async fn send_blocks(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        journey: Option<JourneyId>,
        profile: Option<ProfileId>,
        page: PageRequest,
    ) -> Result<Page<SendBlock>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, journey_id, step, profile_id, channel_id, reason, detail, at FROM send_blocks WHERE tenant_id = ",
        );
        select.bind(workspace.as_uuid());
        if let Some(journey) = journey {
            select.push(" AND journey_id = ").bind(journey.as_uuid());
        }
        if let Some(profile) = profile {
            select.push(" AND profile_id = ").bind(profile.as_uuid());
        }
        select.keyset("id", &page, Order::NewestFirst);
        let blocks = select
            .fetch_all(&txn)
            .await?
            .iter()
            .map(|row| {
                Ok(SendBlock {
                    id: row.try_get("", "id")?,
                    journey_id: JourneyId::from_uuid(row.try_get("", "journey_id")?),
                    step: row.try_get("", "step")?,
                    profile_id: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                    channel_id: row.try_get::<Option<Uuid>>("", "channel_id")?.map(ChannelId::from_uuid),
                    reason: row.try_get("", "reason")?,
                    detail: row.try_get("", "detail")?,
                    at: row.try_get("", "at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        txn.commit().await?;
        Ok(Page::from_overfetched(blocks, page, |b| b.id))
    }

    pub async fn journey_report(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
    ) -> Result<JourneyReport> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        crate::journeys::load(&txn, workspace, id).await?;
        let tenant = workspace.as_uuid();
        let journey = id.as_uuid();
        let count = |sql: &str, extra: &str| {
            let mut select = Sql::new(sql);
            select.bind(tenant).push(" AND journey_id = ").bind(journey).push(extra);
            select
        };
        let mut report = JourneyReport {
            by_status: grouped(
                &txn,
                count(
                    "SELECT status AS k, COUNT(*) AS n FROM journey_enrollments WHERE tenant_id = ",
                    " GROUP BY status ORDER BY status",
                ),
            )
            .await?,
            by_step: grouped(
                &txn,
                count(
                    "SELECT step AS k, COUNT(*) AS n FROM journey_enrollments WHERE tenant_id = ",
                    " AND status = 'active' GROUP BY step ORDER BY step",
                ),
            )
            .await?,
            by_variant: grouped(
                &txn,
                count(
                    "SELECT variant AS k, COUNT(*) AS n FROM journey_enrollments WHERE tenant_id = ",
                    " AND variant IS NOT NULL GROUP BY variant ORDER BY variant",
                ),
            )
            .await?,
            holdout: 0,
            sends: grouped(
                &txn,
                count(
                    "SELECT status AS k, COUNT(*) AS n FROM outbox WHERE tenant_id = ",
                    " GROUP BY status ORDER BY status",
                ),
            )
            .await?,
            blocks: grouped(
                &txn,
                count(
                    "SELECT reason AS k, COUNT(*) AS n FROM send_blocks WHERE tenant_id = ",
                    " GROUP BY reason ORDER BY reason",
                ),
            )
            .await?,
        };
        let mut holdout =
            count("SELECT COUNT(*) AS n FROM journey_enrollments WHERE tenant_id = ", " AND holdout = ");
        holdout.bind(true);
        if let Some(row) = holdout.fetch_one(&txn).await? {
            report.holdout = row.try_get("", "n")?;
        }
        txn.commit().await?;
        Ok(report)
    }

    /// Sends that will not be delivered, newest first.
    pub async fn dead_letters(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<DeadLetter>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, journey_id, step, profile_id, channel_id, attempts, last_error, created_at FROM outbox \
             WHERE tenant_id = ",
        );
        select.bind(workspace.as_uuid()).push(" AND status = 'dead'").keyset("id", &page, Order::NewestFirst);
        let letters = select
            .fetch_all(&txn)
            .await?
            .iter()
            .map(|row| {
                Ok(DeadLetter {
                    id: row.try_get("", "id")?,
                    journey_id: JourneyId::from_uuid(row.try_get("", "journey_id")?),
                    step: row.try_get("", "step")?,
                    profile_id: ProfileId::from_uuid(row.try_get("", "profile_id")?),
                    channel_id: ChannelId::from_uuid(row.try_get("", "channel_id")?),
                    attempts: row.try_get("", "attempts")?,
                    last_error: row.try_get("", "last_error")?,
                    created_at: row.try_get("", "created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        txn.commit().await?;
        Ok(Page::from_overfetched(letters, page, |l| l.id))
    }
}

async fn grouped<C: sea_orm::ConnectionTrait>(conn: &C, select: Sql) -> Result<Vec<(String, i64)>> {
    select
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| Ok((row.try_get::<Option<String>>("", "k")?.unwrap_or_default(), row.try_get("", "n")?)))
        .collect()
}
