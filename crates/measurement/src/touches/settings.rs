//! The workspace's channel rules, stored as one ordered list (they are read and replaced whole,
//! since their order is their meaning).

use super::rules::{ChannelRuleSpec, ChannelRules};
use crate::Result;
use crate::service::Measurement;
use kernel::WorkspaceId;
use platform::sql::{Sql, json};
use sea_orm::ConnectionTrait;
use tenancy::{Actor, Permission};
use uuid::Uuid;

impl Measurement {
    /// The rules in force: the workspace's own, or the standard ones.
    pub async fn channel_rules(&self, actor: &Actor, workspace: WorkspaceId) -> Result<ChannelRules> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let rules = load_rules(&txn, scope.tenant_id().as_uuid()).await?;
        txn.commit().await?;
        Ok(rules)
    }

    /// Replaces the workspace's rules; an empty list returns to the standard rules.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, rules = specs.len()))]
    pub async fn set_channel_rules(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        specs: Vec<ChannelRuleSpec>,
    ) -> Result<ChannelRules> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let rules = if specs.is_empty() { ChannelRules::standard() } else { ChannelRules::parse(specs)? };
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        if rules.is_standard() {
            let mut delete = Sql::new("DELETE FROM measurement_settings WHERE tenant_id = ");
            delete.bind(tenant);
            delete.execute(&txn).await?;
        } else {
            let stored =
                serde_json::to_value(rules.specs()).map_err(|e| Measurement::internal(e.to_string()))?;
            let mut upsert =
                Sql::new("INSERT INTO measurement_settings (tenant_id, channel_rules, updated_at) VALUES ");
            upsert.values([vec![tenant.into(), json(&stored), self.now().into()]]);
            upsert.push(
                " ON CONFLICT (tenant_id) DO UPDATE SET channel_rules = excluded.channel_rules, \
                 updated_at = excluded.updated_at",
            );
            upsert.execute(&txn).await?;
        }
        txn.commit().await?;
        self.cache().measurement_changed(workspace).await;
        Ok(rules)
    }
}

pub(crate) async fn load_rules<C: ConnectionTrait>(txn: &C, tenant: Uuid) -> Result<ChannelRules> {
    let mut statement = Sql::new("SELECT channel_rules FROM measurement_settings WHERE tenant_id = ");
    statement.bind(tenant);
    let rows = statement.fetch_all(txn).await?;
    let Some(row) = rows.first() else { return Ok(ChannelRules::standard()) };
    let stored: serde_json::Value = row.try_get("", "channel_rules")?;
    let specs: Vec<ChannelRuleSpec> =
        serde_json::from_value(stored).map_err(|e| Measurement::internal(e.to_string()))?;
    ChannelRules::parse(specs)
}
