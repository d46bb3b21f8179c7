use super::objects::{
    Channel, Content, ContentBlock, DeadLetter, Journey, JourneyReport, JourneySimulation, JourneyVersion,
    Problem, RenderedContent, SendBlock, SendSettings, Touchpoint,
};
use crate::{
    connection::{into_connection, page_request},
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, Json, Object, connection::Connection};

#[derive(Default)]
pub struct CampaignsQuery;

#[Object]
impl CampaignsQuery {
    /// The workspace's channels, by name.
    async fn channels(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Channel>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let found = ctx.campaigns().channels(ctx.actor()?, workspace).await.gql()?;
        Ok(found.into_iter().map(Channel).collect())
    }

    async fn content_blocks(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<Vec<ContentBlock>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let blocks = ctx.campaigns().content_blocks(ctx.actor()?, workspace).await.gql()?;
        Ok(blocks.into_iter().map(|(name, body)| ContentBlock { name, body }).collect())
    }

    async fn content(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Content> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.campaigns().content(ctx.actor()?, workspace, id).await.gql().map(Content)
    }

    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn contents(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Content>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let found = ctx.campaigns().contents(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(found, Content))
    }

    /// A content's variant (`email`, `sms`, `push`, `ad`, `call_center`, `direct_mail`, `web`)
    /// rendered for a real profile, as a send would render it.
    async fn content_preview(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
        variant: String,
        profile_id: ID,
    ) -> async_graphql::Result<RenderedContent> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        let profile = parse_id(&profile_id)?;
        let rendered =
            ctx.campaigns().preview_content(ctx.actor()?, workspace, id, &variant, profile).await.gql()?;
        let fields = rendered.fields.into_iter().map(|(name, text)| (name.to_owned(), text)).collect();
        Ok(RenderedContent { fields: Json(fields) })
    }

    async fn journey(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Journey> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.campaigns().journey(ctx.actor()?, workspace, id).await.gql().map(Journey)
    }

    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn journeys(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Journey>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let found = ctx.campaigns().journeys(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(found, Journey))
    }

    async fn journey_versions(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Vec<JourneyVersion>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        let versions = ctx.campaigns().journey_versions(ctx.actor()?, workspace, id).await.gql()?;
        Ok(versions.into_iter().map(JourneyVersion).collect())
    }

    /// Everything that would stop the journey's draft from being published (empty: ready).
    async fn journey_problems(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Vec<Problem>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        let problems = ctx.campaigns().validate_journey(ctx.actor()?, workspace, id).await.gql()?;
        Ok(problems.into_iter().map(Problem::from).collect())
    }

    /// Where everyone stands in a journey, what was sent and what was not, and why.
    async fn journey_report(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<JourneyReport> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.campaigns().journey_report(ctx.actor()?, workspace, id).await.gql().map(JourneyReport::from)
    }

    /// Runs the journey's draft against up to `sample` people it would start with, over
    /// `horizonDays` of simulated time, sending and writing nothing: how many take each step
    /// and branch, who would be held out, sent to, capped, blocked or deferred, and why.
    async fn journey_simulation(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
        #[graphql(default = 100)] sample: i32,
        #[graphql(default = 30)] horizon_days: i32,
    ) -> async_graphql::Result<JourneySimulation> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        let sample = u32::try_from(sample).unwrap_or(0);
        let horizon = u32::try_from(horizon_days).unwrap_or(0);
        let simulation =
            ctx.campaigns().simulate_journey(ctx.actor()?, workspace, id, sample, horizon).await.gql()?;
        Ok(JourneySimulation::from(simulation))
    }

    /// Why people did not receive messages, newest first; for a journey and/or a profile.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn send_blocks(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        journey_id: Option<ID>,
        profile_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, SendBlock>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let journey = journey_id.as_ref().map(parse_id).transpose()?;
        let profile = profile_id.as_ref().map(parse_id).transpose()?;
        let page = page_request(first, after)?;
        let found =
            ctx.campaigns().send_blocks(ctx.actor()?, workspace, journey, profile, page).await.gql()?;
        Ok(into_connection(found, SendBlock))
    }

    /// Touchpoints (sends, deliveries, opens, clicks, bounces…), newest first; for a journey,
    /// a profile and/or a kind (`send`, `click`…).
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    // Each parameter after the context is a GraphQL argument: three filters and the page.
    #[allow(clippy::too_many_arguments)]
    async fn touchpoints(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        journey_id: Option<ID>,
        profile_id: Option<ID>,
        kind: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Touchpoint>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let journey = journey_id.as_ref().map(parse_id).transpose()?;
        let profile = profile_id.as_ref().map(parse_id).transpose()?;
        let page = page_request(first, after)?;
        let found = ctx
            .campaigns()
            .touchpoints(ctx.actor()?, workspace, journey, profile, kind.as_deref(), page)
            .await
            .gql()?;
        Ok(into_connection(found, Touchpoint))
    }

    /// Sends that will not be delivered, with the last error.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, DeadLetter>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let found = ctx.campaigns().dead_letters(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(found, DeadLetter))
    }

    async fn send_settings(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<SendSettings> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.campaigns().send_settings(ctx.actor()?, workspace).await.gql().map(SendSettings::from)
    }
}
