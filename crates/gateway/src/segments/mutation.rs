use super::objects::{Segment, SegmentDefinitionInput, SegmentEvaluation};
use crate::{
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, InputObject, Object};

#[derive(Default)]
pub struct SegmentsMutation;

#[derive(InputObject)]
pub struct CreateSegmentInput {
    pub workspace_id: Option<ID>,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    pub definition: SegmentDefinitionInput,
}

#[derive(InputObject)]
pub struct UpdateSegmentInput {
    pub workspace_id: Option<ID>,
    pub id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A new definition makes a new version.
    pub definition: Option<SegmentDefinitionInput>,
}

#[Object]
impl SegmentsMutation {
    /// Saves a segment (version 1) and evaluates it at once.
    async fn create_segment(
        &self,
        ctx: &Context<'_>,
        input: CreateSegmentInput,
    ) -> async_graphql::Result<Segment> {
        let workspace = ctx.workspace(input.workspace_id.as_ref())?;
        let new = segments::NewSegment {
            name: input.name,
            description: input.description,
            definition: input.definition.into_domain()?,
        };
        ctx.segments().create(ctx.actor()?, workspace, new).await.gql().map(Segment)
    }

    async fn update_segment(
        &self,
        ctx: &Context<'_>,
        input: UpdateSegmentInput,
    ) -> async_graphql::Result<Segment> {
        let workspace = ctx.workspace(input.workspace_id.as_ref())?;
        let id = parse_id(&input.id)?;
        let changes = segments::SegmentChanges {
            name: input.name,
            description: input.description,
            definition: input.definition.map(SegmentDefinitionInput::into_domain).transpose()?,
        };
        ctx.segments().update(ctx.actor()?, workspace, id, changes).await.gql().map(Segment)
    }

    /// Deletes a segment, its versions and membership. Refused while another segment uses it.
    async fn delete_segment(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<bool> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.segments().delete(ctx.actor()?, workspace, id).await.gql()?;
        Ok(true)
    }

    /// Evaluates a segment now and stores who entered and who left.
    async fn evaluate_segment(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<SegmentEvaluation> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.segments().evaluate(ctx.actor()?, workspace, id).await.gql().map(SegmentEvaluation::from)
    }
}
