use super::objects::{
    IdentityRuleInput, MergeSuggestion, Profile, ProfileFilterInput, ProfileSettings, RulesPreview,
};
use crate::{
    connection::{into_connection, page_request},
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, Json, Object, connection::Connection};

#[derive(Default)]
pub struct ProfilesQuery;

#[Object]
impl ProfilesQuery {
    /// One profile. The id of a profile since merged into another answers with that one.
    async fn profile(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Profile> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.profiles().profile(ctx.actor()?, workspace, id).await.gql().map(Profile)
    }

    /// Profiles, oldest first, optionally filtered by identifier, trait or text.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn profiles(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        filter: Option<ProfileFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Profile>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let filter = filter
            .map(|f| profiles::read::ProfileFilter {
                identifier: f.identifier.map(|i| (i.kind, i.value)),
                trait_equals: f.trait_equals.map(|t| (t.name, t.value)),
                text: f.text,
            })
            .unwrap_or_default();
        let found = ctx.profiles().profiles(ctx.actor()?, workspace, filter, page).await.gql()?;
        Ok(into_connection(found, Profile))
    }

    /// The workspace's identity rules, default phone region and trait source precedence.
    async fn profile_settings(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<ProfileSettings> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.profiles().settings(ctx.actor()?, workspace).await.gql().map(ProfileSettings::from)
    }

    /// Everything held about a person, as one JSON document (GDPR access and portability).
    /// Admins only.
    async fn profile_export(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.profiles().export_profile(ctx.actor()?, workspace, id).await.gql().map(Json)
    }

    /// A dry run of identity rule changes: how many people they would merge or split, from a
    /// replay of the event history. Nothing is changed.
    async fn preview_identity_rules(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        rules: Vec<IdentityRuleInput>,
    ) -> async_graphql::Result<RulesPreview> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let rules = rules.into_iter().map(Into::into).collect();
        let preview = ctx.profiles().preview_rules(ctx.actor()?, workspace, rules).await.gql()?;
        Ok(RulesPreview {
            events_replayed: preview.events_replayed,
            partial: preview.partial,
            people_under_current_rules: preview.people_under_current_rules,
            people_under_proposed_rules: preview.people_under_proposed_rules,
            would_merge: preview.would_merge,
            would_split: preview.would_split,
        })
    }

    /// Open deduplication suggestions, for staff to accept or reject.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn merge_suggestions(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, MergeSuggestion>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let found = ctx.profiles().merge_suggestions(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(found, MergeSuggestion))
    }

    /// Events dropped because they belonged to erased people.
    async fn suppressed_event_count(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<i64> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.profiles().suppressed_event_count(ctx.actor()?, workspace).await.gql()
    }
}
