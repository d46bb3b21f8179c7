//! The durable inbox: accepted events are committed in one multi-row insert, deduplicated by
//! `messageId` per workspace, and processed afterwards by the ingestion worker.

use crate::{
    Profiles,
    message::IncomingEvent,
    service::Result,
    sql::{Sql, json},
};
use chrono::{DateTime, Utc};
use kernel::WorkspaceId;
use platform::TenantScope;
use sea_orm::ConnectionTrait;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// The queue name of ingestion work in `pending_work`.
pub(crate) const INGEST_WORK: &str = "ingest";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// Newly stored events.
    pub accepted: usize,
    /// Events whose `messageId` was already stored (a retry): acknowledged, not stored twice.
    pub duplicates: usize,
}

/// Rows per multi-row insert into the inbox.
const INSERT_ROWS: usize = 1_000;

impl Profiles {
    /// Stores events durably. Returns once they are committed; the identity graph and the
    /// profiles follow asynchronously (see [`crate::worker`]).
    #[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id(), events = events.len()))]
    pub async fn ingest(
        &self,
        scope: &TenantScope,
        source: &str,
        events: &[IncomingEvent],
    ) -> Result<IngestOutcome> {
        if events.is_empty() {
            return Ok(IngestOutcome::default());
        }
        let txn = scope.begin(self.db()).await?;
        let stored = self.store_events(&txn, scope, source, events).await?;
        txn.commit().await?;
        if stored > 0 {
            self.inner.work_ready.notify_one();
        }
        Ok(IngestOutcome { accepted: stored, duplicates: events.len() - stored })
    }

    /// Inserts events into the inbox within `txn` and marks the workspace as having work.
    /// Returns how many were new (the others were already stored under their `messageId`).
    /// The caller commits, then wakes the worker.
    pub(crate) async fn store_events<C: ConnectionTrait>(
        &self,
        txn: &C,
        scope: &TenantScope,
        source: &str,
        events: &[IncomingEvent],
    ) -> Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let tenant = scope.tenant_id().as_uuid();
        let mut stored = 0;
        // 17 parameters a row: 1,000 rows stay under both backends' parameter limits (SQLite
        // 32,766, PostgreSQL 65,535) however small the messages of a 500 KB batch are.
        for rows in events.chunks(INSERT_ROWS) {
            let mut insert = Sql::new(
                "INSERT INTO events (tenant_id, id, message_id, type, name, status, occurred_at, received_at, \
                 source, body, channel, touch, utm_source, utm_medium, utm_campaign, referrer_host, device) VALUES ",
            );
            insert.values(rows.iter().map(|event| -> Vec<sea_orm::Value> {
                let marketing = &event.marketing;
                vec![
                    tenant.into(),
                    event_id(event.occurred_at).into(),
                    event.message_id.clone().into(),
                    event.event_type.as_str().into(),
                    event.name.clone().into(),
                    "pending".into(),
                    event.occurred_at.into(),
                    event.received_at.into(),
                    source.to_owned().into(),
                    json(&event.body),
                    event.channel.clone().into(),
                    marketing.touch.into(),
                    marketing.utm_source.clone().into(),
                    marketing.utm_medium.clone().into(),
                    marketing.utm_campaign.clone().into(),
                    marketing.referrer_host.clone().into(),
                    marketing.device.clone().into(),
                ]
            }));
            insert.push(" ON CONFLICT (tenant_id, message_id) DO NOTHING");
            stored += insert.execute(txn).await? as usize;
        }
        if stored > 0 {
            platform::work_queue::mark(txn, INGEST_WORK, tenant, self.now()).await?;
        }
        Ok(stored)
    }

    /// Ingestion for integrations that prefer GraphQL: a staff member who may write, or a
    /// secret key with the `write` scope.
    pub async fn ingest_as(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        events: &[IncomingEvent],
    ) -> Result<IngestOutcome> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        self.ingest(&scope, "graphql", events).await
    }
}

/// Event ids are UUIDv7 stamped with when the event happened, so the id order is the
/// timeline order and doubles as its cursor.
fn event_id(occurred_at: DateTime<Utc>) -> Uuid {
    let seconds = u64::try_from(occurred_at.timestamp()).unwrap_or(0);
    let timestamp =
        uuid::Timestamp::from_unix(uuid::NoContext, seconds, occurred_at.timestamp_subsec_nanos());
    Uuid::new_v7(timestamp)
}
