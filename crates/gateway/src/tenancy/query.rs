use super::objects::{AuditEntry, User, Workspace};
use crate::{
    connection::{into_connection, page_request},
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, Object, connection::Connection};

#[derive(Default)]
pub struct TenancyQuery;

#[Object]
impl TenancyQuery {
    /// The signed-in staff member.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        ctx.tenancy().me(ctx.actor()?).await.gql().map(User)
    }

    /// The workspaces the caller may see.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn workspaces(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Workspace>> {
        let page = page_request(first, after)?;
        let workspaces = ctx.tenancy().workspaces(ctx.actor()?, page).await.gql()?;
        Ok(into_connection(workspaces, Workspace))
    }

    /// One workspace; `NOT_FOUND` when it does not exist or is not the caller's.
    async fn workspace(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Workspace> {
        let id = parse_id(&id)?;
        ctx.tenancy().workspace(ctx.actor()?, id).await.gql().map(Workspace)
    }

    /// The agency's staff (admins).
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, User>> {
        let page = page_request(first, after)?;
        let users = ctx.tenancy().staff_users(ctx.actor()?, page).await.gql()?;
        Ok(into_connection(users, User))
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let id = parse_id(&id)?;
        ctx.tenancy().staff_user(ctx.actor()?, id).await.gql().map(User)
    }

    /// API keys of a workspace (`workspaceId`, else the `X-Workspace-Id` header).
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, super::objects::ApiKey>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let keys = ctx.tenancy().api_keys(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(keys, super::objects::ApiKey))
    }

    /// Security-relevant actions, newest first: the whole agency for agency admins, or one
    /// workspace's (`workspaceId` or the `X-Workspace-Id` header).
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AuditEntry>> {
        let workspace = match workspace_id {
            Some(id) => Some(parse_id(&id)?),
            None => ctx.request().workspace_header,
        };
        let page = page_request(first, after)?;
        let entries = ctx.tenancy().audit_log(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(entries, AuditEntry::from))
    }
}
