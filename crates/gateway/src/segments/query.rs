use super::objects::{Segment, SegmentDefinition, SegmentDefinitionInput, SegmentOverlap, SegmentPreview};
use crate::{
    connection::{into_connection, page_request},
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, Object, connection::Connection};

#[derive(Default)]
pub struct SegmentsQuery;

#[Object]
impl SegmentsQuery {
    async fn segment(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Segment> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.segments().segment(ctx.actor()?, workspace, id).await.gql().map(Segment)
    }

    /// The workspace's segments, oldest first.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn segments(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Segment>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let found = ctx.segments().segments(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(found, Segment))
    }

    /// Who a definition selects now — a count and a sample — without saving it: what the
    /// segment builder shows as someone types.
    async fn segment_preview(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        definition: SegmentDefinitionInput,
        #[graphql(default = 10)] sample_size: i32,
    ) -> async_graphql::Result<SegmentPreview> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let definition = definition.into_domain()?;
        let sample = sample_size.clamp(0, segments::MAX_SAMPLE as i32) as usize;
        let preview = ctx.segments().preview(ctx.actor()?, workspace, &definition, sample).await.gql()?;
        Ok(SegmentPreview { workspace, preview })
    }

    /// How the given segments (2 to 10) overlap, pair by pair, by their current members.
    async fn segment_overlap(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<SegmentOverlap>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let ids = ids.iter().map(parse_id).collect::<async_graphql::Result<Vec<_>>>()?;
        let found = ctx.segments().overlap(ctx.actor()?, workspace, &ids).await.gql()?;
        Ok(found.into_iter().map(SegmentOverlap).collect())
    }

    /// Reads a definition in one form and gives it back in both (text ↔ JSON), checking it
    /// without evaluating it. Needs no workspace.
    async fn segment_definition(
        &self,
        ctx: &Context<'_>,
        definition: SegmentDefinitionInput,
    ) -> async_graphql::Result<SegmentDefinition> {
        ctx.actor()?;
        definition.into_domain()?.parse().gql().map(SegmentDefinition)
    }
}
