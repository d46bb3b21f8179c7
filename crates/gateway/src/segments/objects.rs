//! GraphQL shapes of segment values.

use crate::{
    connection::{into_connection, page_request},
    context::ContextExt,
    error::GqlResult,
    profiles::Profile,
};
use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};

/// A definition in either form; send exactly one.
#[derive(InputObject)]
pub struct SegmentDefinitionInput {
    /// The text form: `trait plan = "pro" and performed "Order Completed" within 30 days`.
    pub text: Option<String>,
    /// The JSON form (the tree `json` returns).
    pub json: Option<Json<serde_json::Value>>,
}

impl SegmentDefinitionInput {
    pub fn into_domain(self) -> async_graphql::Result<segments::DefinitionInput> {
        match (self.text, self.json) {
            (Some(text), None) => Ok(segments::DefinitionInput::Text(text)),
            (None, Some(json)) => Ok(segments::DefinitionInput::Json(json.0)),
            _ => Err(crate::error::coded(
                kernel::ErrorCode::BadUserInput,
                "send the definition as `text` or as `json`, not both",
            )),
        }
    }
}

/// A definition in both forms.
pub struct SegmentDefinition(pub segments::Condition);

#[Object]
impl SegmentDefinition {
    /// The text form, as people read and write it.
    async fn text(&self) -> String {
        segments::dsl::print(&self.0)
    }

    /// The JSON form, for machines.
    async fn json(&self) -> Json<serde_json::Value> {
        Json(self.0.to_json())
    }
}

pub struct Segment(pub segments::Segment);

#[Object]
impl Segment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Incremented by every change of definition.
    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn definition(&self) -> SegmentDefinition {
        SegmentDefinition(self.0.definition.clone())
    }

    /// Members now.
    async fn size(&self) -> i64 {
        self.0.size
    }

    /// When the whole segment was last evaluated.
    async fn evaluated_at(&self) -> Option<DateTime<Utc>> {
        self.0.evaluated_at
    }

    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The size at the end of each of the last `days` days (UTC), with each day's entries and
    /// exits.
    async fn size_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Vec<SegmentSizePoint>> {
        let days = u32::try_from(days).unwrap_or(0);
        let found =
            ctx.segments().size_history(ctx.actor()?, self.0.workspace_id, self.0.id, days).await.gql()?;
        Ok(found
            .into_iter()
            .map(|p| SegmentSizePoint { day: p.day, size: p.size, entered: p.entered, exited: p.exited })
            .collect())
    }

    /// Every version of the definition, newest first.
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SegmentVersion>> {
        let found = ctx.segments().versions(ctx.actor()?, self.0.workspace_id, self.0.id).await.gql()?;
        Ok(found.into_iter().map(SegmentVersion).collect())
    }

    /// Current members, in order of profile id.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, SegmentMembership>> {
        let page = page_request(first, after)?;
        let found = ctx.segments().members(ctx.actor()?, self.0.workspace_id, self.0.id, page).await.gql()?;
        let workspace = self.0.workspace_id;
        Ok(into_connection(found, |m| SegmentMembership { workspace, membership: m }))
    }

    /// Entries and exits, oldest first.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, SegmentChange>> {
        let page = page_request(first, after)?;
        let found =
            ctx.segments().changes(ctx.actor()?, self.0.workspace_id, Some(self.0.id), page).await.gql()?;
        Ok(into_connection(found, SegmentChange))
    }
}

pub struct SegmentVersion(pub segments::SegmentVersion);

#[Object]
impl SegmentVersion {
    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn definition(&self) -> SegmentDefinition {
        SegmentDefinition(self.0.definition.clone())
    }

    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A profile's membership of a segment, since when.
pub struct SegmentMembership {
    pub workspace: kernel::WorkspaceId,
    pub membership: segments::Membership,
}

#[Object]
impl SegmentMembership {
    async fn segment_id(&self) -> ID {
        ID(self.membership.segment_id.to_string())
    }

    async fn profile_id(&self) -> ID {
        ID(self.membership.profile_id.to_string())
    }

    async fn entered_at(&self) -> DateTime<Utc> {
        self.membership.entered_at
    }

    async fn segment(&self, ctx: &Context<'_>) -> async_graphql::Result<Segment> {
        ctx.segments()
            .segment(ctx.actor()?, self.workspace, self.membership.segment_id)
            .await
            .gql()
            .map(Segment)
    }

    async fn profile(&self, ctx: &Context<'_>) -> async_graphql::Result<Profile> {
        ctx.profiles()
            .profile(ctx.actor()?, self.workspace, self.membership.profile_id)
            .await
            .gql()
            .map(Profile)
    }
}

pub struct SegmentChange(pub segments::MembershipChange);

#[Object]
impl SegmentChange {
    async fn segment_id(&self) -> ID {
        ID(self.0.segment_id.to_string())
    }

    /// The definition's version that made the change.
    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn profile_id(&self) -> ID {
        ID(self.0.profile_id.to_string())
    }

    /// `true` for an entry, `false` for an exit.
    async fn entered(&self) -> bool {
        self.0.entered
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// What a definition selects now, without saving it.
pub struct SegmentPreview {
    pub workspace: kernel::WorkspaceId,
    pub preview: segments::Preview,
}

#[Object]
impl SegmentPreview {
    /// The definition read back, in both forms.
    async fn definition(&self) -> SegmentDefinition {
        SegmentDefinition(self.preview.definition.clone())
    }

    async fn count(&self) -> i64 {
        self.preview.count
    }

    /// A few of the people selected, in order of profile id.
    async fn sample(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Profile>> {
        let found =
            ctx.profiles().profiles_by_id(ctx.actor()?, self.workspace, &self.preview.sample).await.gql()?;
        Ok(found.into_iter().map(Profile).collect())
    }
}

#[derive(SimpleObject)]
pub struct SegmentEvaluation {
    pub entered: i32,
    pub exited: i32,
    pub size: i64,
}

impl From<segments::Evaluation> for SegmentEvaluation {
    fn from(e: segments::Evaluation) -> Self {
        Self { entered: e.entered as i32, exited: e.exited as i32, size: e.size }
    }
}

#[derive(SimpleObject)]
pub struct SegmentSizePoint {
    pub day: chrono::NaiveDate,
    pub size: i64,
    pub entered: i64,
    pub exited: i64,
}

/// Two segments side by side: their sizes and the people in both.
pub struct SegmentOverlap(pub segments::reports::Overlap);

#[Object]
impl SegmentOverlap {
    async fn segment_a(&self) -> ID {
        ID(self.0.a.to_string())
    }

    async fn segment_b(&self) -> ID {
        ID(self.0.b.to_string())
    }

    async fn size_a(&self) -> i64 {
        self.0.size_a
    }

    async fn size_b(&self) -> i64 {
        self.0.size_b
    }

    /// People in both.
    async fn both(&self) -> i64 {
        self.0.both
    }

    /// People in both over people in either (0 when both are empty).
    async fn jaccard(&self) -> f64 {
        let either = self.0.size_a + self.0.size_b - self.0.both;
        if either == 0 { 0.0 } else { self.0.both as f64 / either as f64 }
    }
}
