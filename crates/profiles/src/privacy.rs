//! GDPR: export everything about a person, and erase them across the identity graph, leaving
//! only salted hashes of their identifiers so that later data about them is dropped.

use crate::Identity;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The suppression-list form of an identifier: HMAC-SHA256 keyed by the workspace's salt, so
/// the list cannot be reversed by hashing a dictionary of emails without the salt.
pub(crate) fn identity_hash(salt: &str, identity: &Identity) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(salt.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm is unreachable but keeps the code total.
        Err(_) => return String::new(),
    };
    mac.update(identity.kind.as_str().as_bytes());
    mac.update(b":");
    mac.update(identity.value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

use crate::{
    Profiles, ProfilesError,
    read::{absorbed_tree, live_profile},
    service::Result,
    settings,
    sql::Sql,
};
use kernel::{ProfileId, WorkspaceId};
use serde_json::{Value, json};
use tenancy::{Actor, AuditAction, Permission};

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    pub profiles: u64,
    pub identities: u64,
    pub events: u64,
}

/// Erasure is rare and destructive: it refuses people with more events than this in one call
/// rather than hold the graph lock for minutes (raise it deliberately if needed).
const MAX_ERASED_EVENTS: i64 = 1_000_000;

impl Profiles {
    /// Everything the workspace holds about a person, as one JSON document (GDPR art. 15/20).
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn export_profile(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Value> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Administer).await?;
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, &scope, profile).await?;
        let tree = absorbed_tree(&txn, &scope, row.id).await?;
        let ids = || tree.iter().map(ProfileId::as_uuid);
        let mut identities =
            Sql::new("SELECT kind, value, source, created_at FROM identities WHERE tenant_id = ");
        identities.bind(tenant).push(" AND profile_id IN ").bind_list(ids());
        let mut events = Sql::new(
            "SELECT id, message_id, type, name, channel, occurred_at, received_at, body FROM events WHERE tenant_id = ",
        );
        events.bind(tenant).push(" AND profile_id IN ").bind_list(ids()).push(" ORDER BY id");
        let mut consents = Sql::new(
            "SELECT purpose, channel, granted, source, recorded_at FROM consents WHERE tenant_id = ",
        );
        consents.bind(tenant).push(" AND profile_id IN ").bind_list(ids()).push(" ORDER BY id");
        let identities = identities.fetch_all(&txn).await?;
        let events = events.fetch_all(&txn).await?;
        let consents = consents.fetch_all(&txn).await?;
        txn.commit().await?;
        // No export leaves without its audit entry.
        self.tenancy()
            .audit_data_access(
                self.db().connection(),
                actor,
                workspace,
                AuditAction::ProfileExported,
                row.id.as_uuid(),
            )
            .await?;
        let text = |r: &sea_orm::QueryResult, c: &str| r.try_get::<Option<String>>("", c).ok().flatten();
        let time = |r: &sea_orm::QueryResult, c: &str| {
            r.try_get::<chrono::DateTime<chrono::Utc>>("", c).ok().map(|t| t.to_rfc3339())
        };
        Ok(json!({
            "profileId": row.id.to_string(),
            "exportedAt": self.now().to_rfc3339(),
            "traits": Value::Object(row.traits.clone()),
            "computed": {
                "firstSeenAt": row.first_seen_at.map(|t| t.to_rfc3339()),
                "lastSeenAt": row.last_seen_at.map(|t| t.to_rfc3339()),
                "eventCount": row.event_count,
                "lifetimeRevenue": row.revenue,
                "firstTouchChannel": row.first_channel,
                "devices": row.devices,
            },
            "identities": identities.iter().map(|r| json!({
                "kind": text(r, "kind"), "value": text(r, "value"), "source": text(r, "source"),
                "createdAt": time(r, "created_at"),
            })).collect::<Vec<_>>(),
            "consents": consents.iter().map(|r| json!({
                "purpose": text(r, "purpose"), "channel": text(r, "channel"),
                "granted": r.try_get::<bool>("", "granted").ok(), "source": text(r, "source"),
                "recordedAt": time(r, "recorded_at"),
            })).collect::<Vec<_>>(),
            "events": events.iter().map(|r| json!({
                "messageId": text(r, "message_id"), "type": text(r, "type"), "name": text(r, "name"),
                "channel": text(r, "channel"), "occurredAt": time(r, "occurred_at"),
                "receivedAt": time(r, "received_at"), "body": r.try_get::<Value>("", "body").ok(),
            })).collect::<Vec<_>>(),
        }))
    }

    /// Erases a person across the identity graph: the profile and every profile merged into
    /// it, their identities, events, consents and merge history. Only salted hashes of the
    /// identifiers remain, in the suppression list, so later events for them are dropped.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn erase_profile(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Erasure> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Administer).await?;
        let tenant = scope.tenant_id().as_uuid();
        let graph = self.graph_transaction(&scope).await?;
        let txn = &graph.txn;
        let now = self.now();
        let salt = settings::ensure_row(txn, tenant, now).await?;
        let row = live_profile(txn, &scope, profile).await?;
        let tree = absorbed_tree(txn, &scope, row.id).await?;
        let ids = || tree.iter().map(ProfileId::as_uuid);
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM events WHERE tenant_id = ");
        count.bind(tenant).push(" AND profile_id IN ").bind_list(ids());
        let events: i64 = match count.fetch_one(txn).await? {
            Some(r) => r.try_get("", "n")?,
            None => 0,
        };
        if events > MAX_ERASED_EVENTS {
            return Err(ProfilesError::Conflict(format!(
                "this person has {events} events, more than one erasure removes ({MAX_ERASED_EVENTS})"
            )));
        }
        let mut select = Sql::new("SELECT kind, value FROM identities WHERE tenant_id = ");
        select.bind(tenant).push(" AND profile_id IN ").bind_list(ids());
        let identities = select.fetch_all(txn).await?;
        for chunk in identities.chunks(500) {
            let mut insert = Sql::new(
                "INSERT INTO suppressions (tenant_id, identity_hash, dropped_events, created_at) VALUES ",
            );
            for (i, r) in chunk.iter().enumerate() {
                let kind: String = r.try_get("", "kind")?;
                let identity = crate::Identity { kind: kind.parse()?, value: r.try_get("", "value")? };
                if i > 0 {
                    insert.push(", ");
                }
                insert
                    .push("(")
                    .bind(tenant)
                    .push(", ")
                    .bind(identity_hash(&salt, &identity))
                    .push(", 0, ")
                    .bind(now)
                    .push(")");
            }
            insert.push(" ON CONFLICT (tenant_id, identity_hash) DO NOTHING");
            insert.execute(txn).await?;
        }
        let mut removed = [0u64; 3];
        let deletions: [(&str, &str, Option<usize>); 6] = [
            ("events", "profile_id", Some(2)),
            ("identities", "profile_id", Some(1)),
            ("consents", "profile_id", None),
            ("profile_merges", "survivor_id", None),
            ("profile_merges", "merged_id", None),
            ("profiles", "id", Some(0)),
        ];
        for (table, column, counter) in deletions {
            let mut delete = Sql::new(&format!("DELETE FROM {table} WHERE tenant_id = "));
            delete.bind(tenant).push(&format!(" AND {column} IN ")).bind_list(ids());
            let n = delete.execute(txn).await?;
            if let Some(i) = counter {
                removed[i] += n;
            }
        }
        let mut blocks = Sql::new("DELETE FROM merge_blocks WHERE tenant_id = ");
        blocks
            .bind(tenant)
            .push(" AND (profile_a IN ")
            .bind_list(ids())
            .push(" OR profile_b IN ")
            .bind_list(ids())
            .push(")");
        blocks.execute(txn).await?;
        // Consumers of the feed see the erased ids disappear (segments drop them).
        let erased: Vec<uuid::Uuid> = ids().collect();
        crate::changes::record(txn, tenant, &erased, &crate::changes::Topics::everything(), now).await?;
        self.tenancy()
            .audit_data_access(txn, actor, workspace, AuditAction::ProfileErased, row.id.as_uuid())
            .await?;
        graph.commit().await?;
        tracing::info!(profiles = removed[0], identities = removed[1], events = removed[2], "profile erased");
        Ok(Erasure { profiles: removed[0], identities: removed[1], events: removed[2] })
    }

    /// How many events were dropped because they belonged to erased people.
    pub async fn suppressed_event_count(&self, actor: &Actor, workspace: WorkspaceId) -> Result<i64> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut sum = Sql::new(
            "SELECT CAST(COALESCE(SUM(dropped_events), 0) AS bigint) AS n FROM suppressions WHERE tenant_id = ",
        );
        sum.bind(scope.tenant_id().as_uuid());
        let n = match sum.fetch_one(&txn).await? {
            Some(r) => r.try_get::<i64>("", "n")?,
            None => 0,
        };
        txn.commit().await?;
        Ok(n)
    }
}
