use super::objects::{
    AudienceFile, Content, CreatedChannel, Decision, Journey, JourneyStatus, SendFeedback, SendSettings,
};
use crate::{
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, InputObject, Json, Object};

#[derive(Default)]
pub struct CampaignsMutation;

#[derive(InputObject)]
pub struct CreateChannelInput {
    pub workspace_id: Option<ID>,
    pub name: String,
    /// A channel kind: `email`, `sms`, `push`, `display`, `web`, `call_center`, `direct_mail`…
    pub kind: String,
    /// `{"adapter": "webhook", "url": …}`, `{"adapter": "smtp", "host", "port", "from"}`,
    /// `{"adapter": "audience_file", "directory"}` or `{"adapter": "decision"}`.
    pub delivery: Json<serde_json::Value>,
}

#[derive(InputObject)]
pub struct CreateJourneyInput {
    pub workspace_id: Option<ID>,
    pub name: String,
    /// The draft graph: `{"entry": {"trigger": …, "next": …}, "steps": […]}`.
    pub graph: Json<serde_json::Value>,
    /// `never` (default) or `after_exit`.
    pub reentry: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateJourneyInput {
    pub workspace_id: Option<ID>,
    pub id: ID,
    pub name: Option<String>,
    pub graph: Option<Json<serde_json::Value>>,
    pub reentry: Option<String>,
}

#[Object]
impl CampaignsMutation {
    /// Adds a channel. A webhook channel's signing secret is returned this once.
    async fn create_channel(
        &self,
        ctx: &Context<'_>,
        input: CreateChannelInput,
    ) -> async_graphql::Result<CreatedChannel> {
        let workspace = ctx.workspace(input.workspace_id.as_ref())?;
        let new = campaigns::channels::NewChannel {
            name: input.name,
            kind: input.kind,
            delivery: input.delivery.0,
        };
        ctx.campaigns().create_channel(ctx.actor()?, workspace, new).await.gql().map(CreatedChannel)
    }

    /// Creates or replaces a reusable block, included in templates as `{% include "NAME" %}`.
    async fn set_content_block(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        name: String,
        body: String,
    ) -> async_graphql::Result<bool> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.campaigns().set_content_block(ctx.actor()?, workspace, &name, &body).await.gql()?;
        Ok(true)
    }

    async fn create_content(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        name: String,
        template: Json<serde_json::Value>,
    ) -> async_graphql::Result<Content> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.campaigns().create_content(ctx.actor()?, workspace, &name, template.0).await.gql().map(Content)
    }

    async fn update_content(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
        name: Option<String>,
        template: Option<Json<serde_json::Value>>,
    ) -> async_graphql::Result<Content> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        let template = template.map(|t| t.0);
        ctx.campaigns()
            .update_content(ctx.actor()?, workspace, id, name.as_deref(), template)
            .await
            .gql()
            .map(Content)
    }

    /// Saves a journey as a draft.
    async fn create_journey(
        &self,
        ctx: &Context<'_>,
        input: CreateJourneyInput,
    ) -> async_graphql::Result<Journey> {
        let workspace = ctx.workspace(input.workspace_id.as_ref())?;
        let new = campaigns::journeys::NewJourney {
            name: input.name,
            graph: input.graph.0,
            reentry: input.reentry,
        };
        ctx.campaigns().create_journey(ctx.actor()?, workspace, new).await.gql().map(Journey)
    }

    /// Changes the draft; published versions never change.
    async fn update_journey(
        &self,
        ctx: &Context<'_>,
        input: UpdateJourneyInput,
    ) -> async_graphql::Result<Journey> {
        let workspace = ctx.workspace(input.workspace_id.as_ref())?;
        let id = parse_id(&input.id)?;
        let changes = campaigns::journeys::JourneyChanges {
            name: input.name,
            graph: input.graph.map(|g| g.0),
            reentry: input.reentry,
        };
        ctx.campaigns().update_journey(ctx.actor()?, workspace, id, changes).await.gql().map(Journey)
    }

    /// Publishes the draft as a new version (refused with every problem listed in
    /// `extensions.problems` when it is not ready) and activates a draft journey.
    async fn publish_journey(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Journey> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.campaigns().publish_journey(ctx.actor()?, workspace, id).await.gql().map(Journey)
    }

    /// Pauses, resumes (`ACTIVE`) or archives a journey.
    async fn set_journey_status(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
        status: JourneyStatus,
    ) -> async_graphql::Result<Journey> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.campaigns()
            .set_journey_status(ctx.actor()?, workspace, id, status.into())
            .await
            .gql()
            .map(Journey)
    }

    /// Records what a provider reports about a send, by the `Idempotency-Key` (webhooks) or
    /// `Message-ID` key it received: a touchpoint for measurement; an unsubscribe or a complaint
    /// also withdraws consent for that channel. Answers the profile the send was for.
    async fn record_send_feedback(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        key: String,
        kind: SendFeedback,
        device: Option<String>,
    ) -> async_graphql::Result<ID> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let profile = ctx
            .campaigns()
            .record_feedback(ctx.actor()?, workspace, &key, kind.into(), device.as_deref())
            .await
            .gql()?;
        Ok(ID(profile.to_string()))
    }

    /// What a decision channel (website, kiosk, POS, call centre) should show this person now:
    /// the offer their journey last chose for it, or null for the default. Consent is checked
    /// at this moment; what is shown is recorded as an impression.
    async fn decide(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        channel_id: ID,
        profile_id: ID,
        device: Option<String>,
    ) -> async_graphql::Result<Option<Decision>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let channel = parse_id(&channel_id)?;
        let profile = parse_id(&profile_id)?;
        let decision = ctx
            .campaigns()
            .decide(ctx.actor()?, workspace, channel, profile, device.as_deref())
            .await
            .gql()?;
        Ok(decision.map(Decision))
    }

    /// Writes a segment's contactable members as a CSV file in an audience channel's directory
    /// (`hashed`, `postal` or `phone`; by default the one the channel's kind takes).
    async fn sync_audience(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        channel_id: ID,
        segment_id: ID,
        format: Option<String>,
    ) -> async_graphql::Result<AudienceFile> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let channel = parse_id(&channel_id)?;
        let segment = parse_id(&segment_id)?;
        let file = ctx
            .campaigns()
            .sync_audience(ctx.actor()?, workspace, channel, segment, format.as_deref())
            .await
            .gql()?;
        Ok(AudienceFile { name: file.name, rows: file.rows as i64, bytes: file.bytes as i64 })
    }

    /// Replaces the workspace's timezone, quiet hours and frequency caps.
    async fn set_send_settings(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        settings: SendSettings,
    ) -> async_graphql::Result<SendSettings> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let settings = settings.into_domain()?;
        ctx.campaigns()
            .set_send_settings(ctx.actor()?, workspace, settings)
            .await
            .gql()
            .map(SendSettings::from)
    }
}
