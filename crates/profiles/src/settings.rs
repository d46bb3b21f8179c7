//! Per-workspace profile settings: the default phone region, the trait source precedence, the
//! salt of the suppression list, and the identity rules.

use crate::{
    IdentityKind, NormalizationContext, Profiles, ProfilesError,
    rules::{IdentityRule, IdentityRules},
    service::Result,
    sql::{Sql, json},
    traits::SourcePrecedence,
};
use rand::RngCore;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use tenancy::{Actor, Permission};

/// Everything processing needs to know about a workspace.
#[derive(Debug, Clone)]
pub struct WorkspaceProfileSettings {
    pub default_region: Option<String>,
    pub normalization: NormalizationContext,
    pub precedence: SourcePrecedence,
    pub rules: IdentityRules,
    /// Keys the salted hashes of the suppression list; random per workspace, never exported.
    pub(crate) suppression_salt: String,
}

/// A change to the settings (unset fields are left as they are).
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub default_region: Option<String>,
    pub source_precedence: Option<Vec<String>>,
}

/// A rule as staff write it.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub kind: String,
    pub priority: i32,
    pub max_per_profile: u32,
    pub merges: bool,
    pub blocked_values: Vec<String>,
    pub blocked_patterns: Vec<String>,
}

impl RuleInput {
    pub fn parse(self) -> Result<IdentityRule> {
        let kind: IdentityKind = self.kind.parse()?;
        IdentityRule::new(
            kind,
            self.priority,
            self.max_per_profile,
            self.merges,
            self.blocked_values,
            self.blocked_patterns,
        )
    }
}

pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
) -> Result<WorkspaceProfileSettings> {
    let mut select = Sql::new(
        "SELECT default_region, source_precedence, suppression_salt FROM profile_settings WHERE tenant_id = ",
    );
    select.bind(tenant);
    let row = select.fetch_one(conn).await?;
    let (default_region, precedence, salt) = match row {
        Some(row) => {
            let region: String = row.try_get("", "default_region")?;
            let order: Value = row.try_get("", "source_precedence")?;
            let order =
                order.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
            let salt: String = row.try_get("", "suppression_salt")?;
            ((!region.is_empty()).then_some(region), order.map(SourcePrecedence::new), salt)
        }
        None => (None, None, String::new()),
    };
    let normalization = match &default_region {
        Some(region) => NormalizationContext::with_region(region)?,
        None => NormalizationContext { default_region: None },
    };
    let mut rules = IdentityRules::default();
    let mut select = Sql::new(
        "SELECT kind, priority, max_per_profile, merges, blocked_values, blocked_patterns FROM identity_rules \
         WHERE tenant_id = ",
    );
    select.bind(tenant);
    for row in select.fetch_all(conn).await? {
        let strings = |v: Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let kind: String = row.try_get("", "kind")?;
        let max: i32 = row.try_get("", "max_per_profile")?;
        let rule = RuleInput {
            kind,
            priority: row.try_get("", "priority")?,
            max_per_profile: u32::try_from(max).unwrap_or(1),
            merges: row.try_get("", "merges")?,
            blocked_values: strings(row.try_get("", "blocked_values")?),
            blocked_patterns: strings(row.try_get("", "blocked_patterns")?),
        }
        .parse()?;
        rules = rules.with(rule);
    }
    Ok(WorkspaceProfileSettings {
        default_region,
        normalization,
        precedence: precedence.unwrap_or_default(),
        rules,
        suppression_salt: salt,
    })
}

/// The workspace's suppression salt, `None` before its settings row exists (nothing can have
/// been hashed with it yet).
pub(crate) async fn suppression_salt<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
) -> Result<Option<String>> {
    let mut select = Sql::new("SELECT suppression_salt FROM profile_settings WHERE tenant_id = ");
    select.bind(tenant);
    match select.fetch_one(conn).await? {
        Some(row) => Ok(Some(row.try_get("", "suppression_salt")?)),
        None => Ok(None),
    }
}

/// Makes sure the settings row exists (with a fresh suppression salt) and returns the salt.
pub(crate) async fn ensure_row<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String> {
    if let Some(salt) = suppression_salt(conn, tenant).await? {
        return Ok(salt);
    }
    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = hex::encode(salt);
    let mut insert = Sql::new(
        "INSERT INTO profile_settings (tenant_id, default_region, source_precedence, suppression_salt, \
         updated_at) VALUES (",
    );
    insert
        .bind(tenant)
        .push(", '', ")
        .bind(json(&serde_json::json!(SourcePrecedence::default().order())))
        .push(", ")
        .bind(salt.clone())
        .push(", ")
        .bind(now)
        .push(") ON CONFLICT (tenant_id) DO NOTHING");
    insert.execute(conn).await?;
    // Another transaction may have won the insert; read whichever salt is stored.
    suppression_salt(conn, tenant)
        .await?
        .ok_or_else(|| ProfilesError::Internal("profile settings row missing after insert".into()))
}

impl Profiles {
    pub async fn settings(
        &self,
        actor: &Actor,
        workspace: kernel::WorkspaceId,
    ) -> Result<WorkspaceProfileSettings> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let settings = load(&txn, scope.tenant_id().as_uuid()).await?;
        txn.commit().await?;
        Ok(settings)
    }

    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn update_settings(
        &self,
        actor: &Actor,
        workspace: kernel::WorkspaceId,
        update: SettingsUpdate,
    ) -> Result<WorkspaceProfileSettings> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Administer).await?;
        if let Some(region) = &update.default_region
            && !region.is_empty()
        {
            NormalizationContext::with_region(region)?;
        }
        if let Some(order) = &update.source_precedence
            && (order.len() > 50 || order.iter().any(|s| s.is_empty() || s.len() > 64))
        {
            return Err(ProfilesError::invalid(
                "the source precedence lists at most 50 names of 1 to 64 bytes",
            ));
        }
        let graph = self.graph_transaction(&scope).await?;
        ensure_row(&graph.txn, scope.tenant_id().as_uuid(), self.now()).await?;
        if let Some(region) = update.default_region {
            let mut sql = Sql::new("UPDATE profile_settings SET default_region = ");
            sql.bind(region.trim().to_ascii_uppercase())
                .push(" WHERE tenant_id = ")
                .bind(scope.tenant_id().as_uuid());
            sql.execute(&graph.txn).await?;
        }
        if let Some(order) = update.source_precedence {
            let mut sql = Sql::new("UPDATE profile_settings SET source_precedence = ");
            sql.bind(json(&serde_json::json!(order)))
                .push(" WHERE tenant_id = ")
                .bind(scope.tenant_id().as_uuid());
            sql.execute(&graph.txn).await?;
        }
        let settings = load(&graph.txn, scope.tenant_id().as_uuid()).await?;
        graph.commit().await?;
        Ok(settings)
    }

    /// Sets the rule of one identity kind. Applies to events processed from now on; use
    /// [`Profiles::preview_rules`] first to see what it would change.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn set_identity_rule(
        &self,
        actor: &Actor,
        workspace: kernel::WorkspaceId,
        input: RuleInput,
    ) -> Result<IdentityRule> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Administer).await?;
        let rule = input.parse()?;
        let graph = self.graph_transaction(&scope).await?;
        let mut sql = Sql::new(
            "INSERT INTO identity_rules (tenant_id, kind, priority, max_per_profile, merges, blocked_values, \
             blocked_patterns, updated_at) VALUES (",
        );
        sql.bind(scope.tenant_id().as_uuid())
            .push(", ")
            .bind(rule.kind.as_str().to_owned())
            .push(", ")
            .bind(rule.priority)
            .push(", ")
            .bind(i32::try_from(rule.max_per_profile).unwrap_or(i32::MAX))
            .push(", ")
            .bind(rule.merges)
            .push(", ")
            .bind(json(&serde_json::json!(rule.blocked_values)))
            .push(", ")
            .bind(json(&serde_json::json!(rule.blocked_patterns)))
            .push(", ")
            .bind(self.now())
            .push(
                ") ON CONFLICT (tenant_id, kind) DO UPDATE SET priority = excluded.priority, \
                 max_per_profile = excluded.max_per_profile, merges = excluded.merges, \
                 blocked_values = excluded.blocked_values, blocked_patterns = excluded.blocked_patterns, \
                 updated_at = excluded.updated_at",
            );
        sql.execute(&graph.txn).await?;
        graph.commit().await?;
        Ok(rule)
    }
}
