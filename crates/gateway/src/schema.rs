use crate::{
    campaigns::{CampaignsMutation, CampaignsQuery},
    limits::QueryGuard,
    measurement::{MeasurementMutation, MeasurementQuery, MeasurementReportsQuery},
    profiles::{
        ImportsMutation, ImportsQuery, ProfilesMutation, ProfilesQuery, SuppressionsMutation,
        SuppressionsQuery,
    },
    segments::{SegmentsMutation, SegmentsQuery},
    tenancy::{TenancyMutation, TenancyQuery},
};
use async_graphql::{EmptySubscription, MergedObject, Schema};
use platform::settings::Limits;

/// One merged object per domain (DESIGN §2); later domains add theirs here.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    TenancyQuery,
    ProfilesQuery,
    ImportsQuery,
    SuppressionsQuery,
    SegmentsQuery,
    CampaignsQuery,
    MeasurementQuery,
    MeasurementReportsQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    TenancyMutation,
    ProfilesMutation,
    ImportsMutation,
    SuppressionsMutation,
    SegmentsMutation,
    CampaignsMutation,
    MeasurementMutation,
);

pub type PasserelleSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema with its limits. Limits are checked while parsing and validating, before any
/// resolver runs.
pub fn build_schema(
    limits: &Limits,
    introspection: bool,
    tenancy: tenancy::Tenancy,
    profiles: profiles::Profiles,
    segments: segments::Segments,
    campaigns: campaigns::Campaigns,
    measurement: measurement::Measurement,
) -> PasserelleSchema {
    let mut builder = Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription)
        .limit_depth(limits.query_depth)
        .limit_complexity(limits.query_complexity)
        .limit_recursive_depth(64)
        .extension(QueryGuard { max_aliases: limits.query_aliases, introspection })
        .data(tenancy)
        .data(profiles)
        .data(segments)
        .data(campaigns)
        .data(measurement);
    if !introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL the frontend contract holds (`frontend-schema/schema.graphql`).
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription).finish().sdl()
}
