//! GraphQL shapes of tenancy values. Plain data: no resolver here touches the database except
//! `Workspace.apiKeys` and `User.memberships`, which call the service with the caller's actor.

use crate::{
    connection::{into_connection, page_request},
    context::ContextExt,
    error::GqlResult,
};
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role")]
pub enum RoleGql {
    Owner,
    Admin,
    Marketer,
    Analyst,
    Viewer,
}

impl From<RoleGql> for tenancy::Role {
    fn from(r: RoleGql) -> Self {
        match r {
            RoleGql::Owner => Self::Owner,
            RoleGql::Admin => Self::Admin,
            RoleGql::Marketer => Self::Marketer,
            RoleGql::Analyst => Self::Analyst,
            RoleGql::Viewer => Self::Viewer,
        }
    }
}

impl From<tenancy::Role> for RoleGql {
    fn from(r: tenancy::Role) -> Self {
        match r {
            tenancy::Role::Owner => Self::Owner,
            tenancy::Role::Admin => Self::Admin,
            tenancy::Role::Marketer => Self::Marketer,
            tenancy::Role::Analyst => Self::Analyst,
            tenancy::Role::Viewer => Self::Viewer,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ApiKeyKind")]
pub enum ApiKeyKindGql {
    /// Event ingestion only; safe in a browser or an app.
    Write,
    /// Server-side integrations, limited by scopes.
    Secret,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ApiKeyScope")]
pub enum ApiKeyScopeGql {
    Read,
    Write,
    Admin,
}

impl From<ApiKeyScopeGql> for tenancy::ApiKeyScope {
    fn from(s: ApiKeyScopeGql) -> Self {
        match s {
            ApiKeyScopeGql::Read => Self::Read,
            ApiKeyScopeGql::Write => Self::Write,
            ApiKeyScopeGql::Admin => Self::Admin,
        }
    }
}

impl From<tenancy::ApiKeyScope> for ApiKeyScopeGql {
    fn from(s: tenancy::ApiKeyScope) -> Self {
        match s {
            tenancy::ApiKeyScope::Read => Self::Read,
            tenancy::ApiKeyScope::Write => Self::Write,
            tenancy::ApiKeyScope::Admin => Self::Admin,
        }
    }
}

/// Tokens from `login`, `refreshToken` and `acceptInvitation`. The refresh token works once.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

impl From<tenancy::TokenPair> for AuthPayload {
    fn from(p: tenancy::TokenPair) -> Self {
        Self { access_token: p.access_token, refresh_token: p.refresh_token, expires_at: p.expires_at }
    }
}

pub struct Workspace(pub tenancy::Workspace);

/// A client workspace: the unit of data isolation.
#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The workspace's API keys (admins only).
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ApiKey>> {
        let page = page_request(first, after)?;
        let keys = ctx.tenancy().api_keys(ctx.actor()?, self.0.id, page).await.gql()?;
        Ok(into_connection(keys, ApiKey))
    }
}

pub struct ApiKey(pub tenancy::ApiKey);

/// A workspace API key. The secret itself is only ever returned by `createApiKey`.
#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn workspace_id(&self) -> ID {
        ID(self.0.workspace_id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> ApiKeyKindGql {
        match self.0.kind {
            tenancy::ApiKeyKind::Write => ApiKeyKindGql::Write,
            tenancy::ApiKeyKind::Secret => ApiKeyKindGql::Secret,
        }
    }
    async fn scopes(&self) -> Vec<ApiKeyScopeGql> {
        self.0.scopes.iter().copied().map(ApiKeyScopeGql::from).collect()
    }
    /// The visible start of the key, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// The full key. Shown this once: store it now.
    pub secret: String,
    pub key: ApiKey,
}

pub struct User(pub tenancy::StaffUser);

/// An agency staff member.
#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn agency_id(&self) -> ID {
        ID(self.0.agency_id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn invitation_pending(&self) -> bool {
        self.0.invitation_pending
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Roles the user holds, agency-wide (no workspace) or per workspace.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn memberships(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Membership>> {
        let page = page_request(first, after)?;
        let memberships = ctx.tenancy().memberships(ctx.actor()?, self.0.id, page).await.gql()?;
        Ok(into_connection(memberships, Membership::from))
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Membership {
    pub id: ID,
    pub user_id: ID,
    /// `null` for an agency-wide role.
    pub workspace_id: Option<ID>,
    pub role: RoleGql,
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl Membership {
    /// Whether the role covers every workspace of the agency.
    async fn agency_wide(&self) -> bool {
        self.workspace_id.is_none()
    }
}

impl From<tenancy::Membership> for Membership {
    fn from(m: tenancy::Membership) -> Self {
        Self {
            id: ID(m.id.to_string()),
            user_id: ID(m.user_id.to_string()),
            workspace_id: m.workspace_id.map(|w| ID(w.to_string())),
            role: m.role.into(),
            created_at: m.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct CreateUserPayload {
    pub user: User,
    /// For an invited user: the one-time token for `acceptInvitation`. Shown once.
    pub invitation_token: Option<String>,
}

#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    /// e.g. `login.failed`, `api_key.created`, `role.granted`, `user.deactivated`.
    pub action: String,
    pub workspace_id: Option<ID>,
    pub actor_user_id: Option<ID>,
    pub actor_api_key_id: Option<ID>,
    pub target_id: Option<ID>,
    pub details: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<tenancy::AuditEntry> for AuditEntry {
    fn from(e: tenancy::AuditEntry) -> Self {
        Self {
            id: ID(e.id.to_string()),
            action: e.action,
            workspace_id: e.workspace_id.map(|w| ID(w.to_string())),
            actor_user_id: e.actor_user_id.map(|u| ID(u.to_string())),
            actor_api_key_id: e.actor_api_key_id.map(|k| ID(k.to_string())),
            target_id: e.target_id.map(|t| ID(t.to_string())),
            details: Json(e.details),
            created_at: e.created_at,
        }
    }
}
