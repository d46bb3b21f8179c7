use super::objects::{
    ApiKey, ApiKeyKindGql, ApiKeyScopeGql, AuthPayload, CreateUserPayload, CreatedApiKey, Membership,
    RoleGql, User, Workspace,
};
use crate::{
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, InputObject, Object};

#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    pub name: String,
}

#[derive(InputObject)]
pub struct RenameWorkspaceInput {
    pub id: ID,
    pub name: String,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub workspace_id: ID,
    pub name: String,
    pub kind: ApiKeyKindGql,
    /// For secret keys; write keys take none.
    #[graphql(default)]
    pub scopes: Vec<ApiKeyScopeGql>,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    pub workspace_id: ID,
    pub id: ID,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub email: String,
    pub display_name: Option<String>,
    /// Omit to invite: the payload then carries a one-time invitation token.
    pub password: Option<String>,
    pub role: RoleGql,
    /// Omit for an agency-wide role.
    pub workspace_id: Option<ID>,
}

#[derive(InputObject)]
pub struct GrantRoleInput {
    pub user_id: ID,
    pub role: RoleGql,
    /// Omit for an agency-wide role.
    pub workspace_id: Option<ID>,
}

#[derive(Default)]
pub struct TenancyMutation;

#[Object]
impl TenancyMutation {
    /// Signs a staff member in. Repeated failures lock the email out for a growing time.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<AuthPayload> {
        let input = tenancy::LoginInput { email, password };
        ctx.tenancy().login(input).await.gql().map(AuthPayload::from)
    }

    /// Trades a refresh token for a new pair. Each refresh token works once; presenting a
    /// spent one revokes the whole session.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        ctx.tenancy().refresh(&refresh_token).await.gql().map(AuthPayload::from)
    }

    /// Ends the current session (and the one of `refreshToken`, if given).
    async fn logout(&self, ctx: &Context<'_>, refresh_token: Option<String>) -> async_graphql::Result<bool> {
        ctx.tenancy().logout(ctx.actor()?, refresh_token.as_deref()).await.gql().map(|()| true)
    }

    /// An invited user sets their password with the one-time token and is signed in.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> async_graphql::Result<AuthPayload> {
        ctx.tenancy().accept_invitation(&token, &password).await.gql().map(AuthPayload::from)
    }

    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkspaceInput,
    ) -> async_graphql::Result<Workspace> {
        ctx.tenancy().create_workspace(ctx.actor()?, &input.name).await.gql().map(Workspace)
    }

    async fn rename_workspace(
        &self,
        ctx: &Context<'_>,
        input: RenameWorkspaceInput,
    ) -> async_graphql::Result<Workspace> {
        let id = parse_id(&input.id)?;
        ctx.tenancy().rename_workspace(ctx.actor()?, id, &input.name).await.gql().map(Workspace)
    }

    /// Creates a key. The `secret` in the result is shown this once.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        let new_key = tenancy::NewApiKey {
            workspace_id: parse_id(&input.workspace_id)?,
            name: input.name,
            kind: match input.kind {
                ApiKeyKindGql::Write => tenancy::ApiKeyKind::Write,
                ApiKeyKindGql::Secret => tenancy::ApiKeyKind::Secret,
            },
            scopes: input.scopes.into_iter().map(Into::into).collect(),
        };
        let created = ctx.tenancy().create_api_key(ctx.actor()?, new_key).await.gql()?;
        Ok(CreatedApiKey { secret: created.secret, key: ApiKey(created.key) })
    }

    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> async_graphql::Result<ApiKey> {
        let workspace = parse_id(&input.workspace_id)?;
        let id = parse_id(&input.id)?;
        ctx.tenancy().revoke_api_key(ctx.actor()?, workspace, id).await.gql().map(ApiKey)
    }

    /// Creates a staff user with a password, or invites them when `password` is omitted.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<CreateUserPayload> {
        let new_staff = tenancy::NewStaff {
            email: input.email,
            display_name: input.display_name,
            password: input.password,
            role: input.role.into(),
            workspace_id: input.workspace_id.as_ref().map(parse_id).transpose()?,
        };
        let created = ctx.tenancy().create_staff(ctx.actor()?, new_staff).await.gql()?;
        Ok(CreateUserPayload { user: User(created.user), invitation_token: created.invitation_token })
    }

    /// Gives a user a role, agency-wide or in one workspace, replacing their role at that level.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        input: GrantRoleInput,
    ) -> async_graphql::Result<Membership> {
        let user = parse_id(&input.user_id)?;
        let workspace = input.workspace_id.as_ref().map(parse_id).transpose()?;
        ctx.tenancy()
            .grant_role(ctx.actor()?, user, workspace, input.role.into())
            .await
            .gql()
            .map(Membership::from)
    }

    async fn revoke_role(&self, ctx: &Context<'_>, membership_id: ID) -> async_graphql::Result<Membership> {
        let id = parse_id(&membership_id)?;
        ctx.tenancy().revoke_role(ctx.actor()?, id).await.gql().map(Membership::from)
    }

    /// Blocks a user from signing in and ends all their sessions at once.
    async fn deactivate_user(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<User> {
        let id = parse_id(&user_id)?;
        ctx.tenancy().deactivate_user(ctx.actor()?, id).await.gql().map(User)
    }
}
