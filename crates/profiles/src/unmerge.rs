//! Undoing a merge exactly: identities, events and consents that the merged profile (and the
//! profiles it had absorbed) brought go back to it, its traits return to what they were, and
//! the two are kept apart from then on.

use crate::{
    Profiles, ProfilesError, extract,
    profile_row::{self, ProfileRow},
    read::{MERGE_COLUMNS, Merge, absorbed_tree, merge_from_row},
    service::Result,
    settings,
    sql::Sql,
};
use chrono::{DateTime, Utc};
use kernel::{MergeId, ProfileId, WorkspaceId};
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value};
use tenancy::{Actor, Permission};
use uuid::Uuid;

impl Profiles {
    /// Undoes one merge. The survivor must not have been merged since (undo that merge first).
    /// Trait values set on the survivor after the merge are kept; everything the merged profile
    /// brought returns to it.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, merge = %merge_id))]
    pub async fn undo_merge(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        merge_id: MergeId,
    ) -> Result<Merge> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        let tenant = scope.tenant_id().as_uuid();
        let graph = self.graph_transaction(&scope).await?;
        let txn = &graph.txn;
        let now = self.now();
        let mut select = Sql::new(&format!(
            "SELECT {MERGE_COLUMNS}, survivor_traits_before, merged_traits FROM profile_merges WHERE tenant_id = "
        ));
        select.bind(tenant).push(" AND id = ").bind(merge_id.as_uuid());
        let row = select.fetch_one(txn).await?.ok_or(ProfilesError::NotFound)?;
        let merge = merge_from_row(&row)?;
        if merge.undone_at.is_some() {
            return Err(ProfilesError::Conflict("this merge was already undone".into()));
        }
        let survivor_before: Value = row.try_get("", "survivor_traits_before")?;
        let merged_traits: Value = row.try_get("", "merged_traits")?;
        let rows = profile_row::load(txn, tenant, &[merge.survivor_id, merge.merged_id]).await?;
        let find = |id: ProfileId| rows.iter().find(|r| r.id == id).cloned().ok_or(ProfilesError::NotFound);
        let (mut survivor, mut merged) = (find(merge.survivor_id)?, find(merge.merged_id)?);
        if survivor.merged_into.is_some() {
            return Err(ProfilesError::Conflict(
                "the surviving profile was merged again since; undo that later merge first".into(),
            ));
        }
        if merged.merged_into != Some(survivor.id) {
            return Err(ProfilesError::Conflict(
                "the merged profile is no longer part of the survivor".into(),
            ));
        }
        let returning = absorbed_tree(txn, &scope, merged.id).await?;
        for table in ["identities", "events", "consents"] {
            let mut moved = Sql::new(&format!("UPDATE {table} SET profile_id = "));
            moved
                .bind(merged.id.as_uuid())
                .push(" WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND profile_id = ")
                .bind(survivor.id.as_uuid())
                .push(" AND first_profile_id IN ")
                .bind_list(returning.iter().map(ProfileId::as_uuid));
            moved.execute(txn).await?;
        }
        merged.merged_into = None;
        merged.traits = as_map(merged_traits);
        survivor.traits = restored_traits(as_map(survivor_before), &survivor.traits, merge.created_at);
        let settings = settings::load(txn, tenant).await?;
        for row in [&mut survivor, &mut merged] {
            recompute(txn, tenant, row, &settings.normalization).await?;
            row.updated_at = now;
        }
        profile_row::save_and_record(
            txn,
            tenant,
            &[&survivor, &merged],
            &crate::changes::Topics::everything(),
        )
        .await?;
        let (a, b) =
            if survivor.id <= merged.id { (survivor.id, merged.id) } else { (merged.id, survivor.id) };
        let mut block =
            Sql::new("INSERT INTO merge_blocks (tenant_id, profile_a, profile_b, created_at) VALUES (");
        block
            .bind(tenant)
            .push(", ")
            .bind(a.as_uuid())
            .push(", ")
            .bind(b.as_uuid())
            .push(", ")
            .bind(now)
            .push(") ON CONFLICT (tenant_id, profile_a, profile_b) DO NOTHING");
        block.execute(txn).await?;
        let mut done = Sql::new("UPDATE profile_merges SET undone_at = ");
        done.bind(now).push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(merge_id.as_uuid());
        done.execute(txn).await?;
        graph.commit().await?;
        Ok(Merge { undone_at: Some(now), ..merge })
    }
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The survivor's traits as they were before the merge, plus whatever was set after it.
fn restored_traits(
    mut before: Map<String, Value>,
    now: &Map<String, Value>,
    merged_at: DateTime<Utc>,
) -> Map<String, Value> {
    for (name, entry) in now {
        let at = entry.get("at").and_then(Value::as_str).and_then(crate::message::parse_time);
        if at.is_some_and(|at| at > merged_at) {
            before.insert(name.clone(), entry.clone());
        }
    }
    before
}

/// Recomputes a profile's computed traits from the events it holds.
async fn recompute<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    row: &mut ProfileRow,
    context: &crate::NormalizationContext,
) -> Result<()> {
    let fresh = ProfileRow::new(row.id, row.created_at);
    row.first_seen_at = fresh.first_seen_at;
    row.last_seen_at = fresh.last_seen_at;
    row.event_count = 0;
    row.revenue = 0.0;
    row.first_channel = None;
    row.devices = Vec::new();
    let mut select = Sql::new("SELECT type, name, occurred_at, channel, body FROM events WHERE tenant_id = ");
    select.bind(tenant).push(" AND profile_id = ").bind(row.id.as_uuid()).push(" ORDER BY id");
    for event in select.fetch_all(txn).await? {
        let event_type: String = event.try_get("", "type")?;
        let name: Option<String> = event.try_get("", "name")?;
        let body: Value = event.try_get("", "body")?;
        let channel: Option<String> = event.try_get("", "channel")?;
        let facts = extract::facts(&event_type, name.as_deref(), &body, context);
        row.record_event(
            event.try_get("", "occurred_at")?,
            channel.as_deref(),
            facts.revenue,
            facts.device.as_deref(),
        );
    }
    Ok(())
}
