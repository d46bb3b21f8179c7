//! The change feed: every profile whose data changed is recorded in `profile_changes` in the
//! transaction that changed it, and the workspace is marked in `pending_work`, so consumers
//! (real-time segments) see exactly the committed changes, even those of other replicas. A
//! profile changed again before a consumer took it keeps one row with a new `change_id`.

use crate::sql::Sql;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

/// The queue name of the change feed in `pending_work`.
pub const CHANGES_WORK: &str = "profile_changes";

/// Rows per statement.
const BATCH: usize = 1000;

/// Records that `profiles` changed at `now`, if anyone has subscribed to the workspace's feed.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    profiles: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    if profiles.is_empty() {
        return Ok(());
    }
    let mut subscribed = Sql::new("SELECT 1 AS one FROM change_feed_subscriptions WHERE tenant_id = ");
    subscribed.bind(tenant).push(" LIMIT 1");
    if subscribed.fetch_one(conn).await?.is_none() {
        return Ok(());
    }
    for chunk in profiles.chunks(BATCH) {
        let mut insert =
            Sql::new("INSERT INTO profile_changes (tenant_id, profile_id, change_id, changed_at) VALUES ");
        for (i, profile) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(*profile)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(now)
                .push(")");
        }
        insert.push(
            " ON CONFLICT (tenant_id, profile_id) DO UPDATE SET change_id = excluded.change_id, \
             changed_at = excluded.changed_at",
        );
        insert.execute(conn).await?;
    }
    let mut mark = Sql::new("INSERT INTO pending_work (kind, tenant_id, since) VALUES (");
    mark.bind(CHANGES_WORK)
        .push(", ")
        .bind(tenant)
        .push(", ")
        .bind(now)
        .push(") ON CONFLICT (kind, tenant_id) DO NOTHING");
    mark.execute(conn).await?;
    Ok(())
}

impl crate::Profiles {
    /// Subscribes `consumer` to the workspace's change feed: from this commit on, every change
    /// to a profile of the workspace is recorded. Subscribe before reading the data in full, so
    /// no change falls between the two.
    pub async fn subscribe_to_changes(
        &self,
        scope: &platform::TenantScope,
        consumer: &str,
    ) -> crate::Result<()> {
        let txn = scope.begin_write(self.db()).await?;
        let mut insert =
            Sql::new("INSERT INTO change_feed_subscriptions (tenant_id, consumer, created_at) VALUES (");
        insert
            .bind(scope.tenant_id().as_uuid())
            .push(", ")
            .bind(consumer.to_owned())
            .push(", ")
            .bind(self.now())
            .push(") ON CONFLICT (tenant_id, consumer) DO NOTHING");
        insert.execute(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}
