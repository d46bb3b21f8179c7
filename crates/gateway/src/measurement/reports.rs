//! Reports from the workspace's data (analysts and above) and their configuration: conversion
//! definitions, channel rules and spend (marketers and above).

use super::report_objects::{
    AttributionInput, AttributionReport, ChannelQuality, ChannelRule, ChannelRules, Conversion,
    ConversionInput, JourneyExperiment, JourneyIncrementality, SpendGrouping, SpendInput, SpendTotal,
};
use crate::{
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, NaiveDate, Utc};
use measurement::{reports, spend::SpendRow};

#[derive(Default)]
pub struct MeasurementReportsQuery;

#[Object]
impl MeasurementReportsQuery {
    /// Attribution of one conversion over a period: every model side by side on the same
    /// paths, per channel, campaign or device, with return on spend, and month by month when
    /// asked. Cached until new conversions or spend arrive.
    async fn attribution(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        input: AttributionInput,
    ) -> async_graphql::Result<AttributionReport> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let request = reports::AttributionRequest {
            conversion: parse_id(&input.conversion_id)?,
            from: input.from,
            to: input.to,
            dimension: input.by.into(),
            models: input.models.unwrap_or_default(),
            segment: input.segment_id.as_ref().map(parse_id).transpose()?,
            campaign_kinds: input.touchpoint_kinds,
            position_weights: input.position_weights.map(|w| [w.first, w.middle, w.last]),
            half_life_hours: input.half_life_hours,
            direct_channels: input.direct_channels,
            monthly: input.monthly,
            stability_threshold: input.stability_threshold,
        };
        let report = ctx
            .measurement()
            .attribution_report(ctx.actor()?, workspace, request, input.refresh)
            .await
            .gql()?;
        Ok(report.into())
    }

    /// The workspace's conversion definitions, by name.
    async fn conversions(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Conversion>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let found = ctx.measurement().conversions(ctx.actor()?, workspace).await.gql()?;
        Ok(found.into_iter().map(Conversion::from).collect())
    }

    async fn conversion(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Conversion> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let found = ctx.measurement().conversion(ctx.actor()?, workspace, parse_id(&id)?).await.gql()?;
        Ok(found.into())
    }

    /// The channel rules in force: the workspace's own, or the standard ones.
    async fn channel_rules(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<ChannelRules> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        Ok(ctx.measurement().channel_rules(ctx.actor()?, workspace).await.gql()?.into())
    }

    /// Spend in `[from, to)`, summed by day, channel or campaign, per currency.
    async fn spend(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        from: NaiveDate,
        to: NaiveDate,
        #[graphql(default_with = "SpendGrouping::Channel")] group_by: SpendGrouping,
    ) -> async_graphql::Result<Vec<SpendTotal>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let totals =
            ctx.measurement().spend(ctx.actor()?, workspace, from, to, group_by.into()).await.gql()?;
        Ok(totals
            .into_iter()
            .map(|t| SpendTotal { key: t.key, amount: t.amount, currency: t.currency })
            .collect())
    }

    /// The people first seen in `[from, to)`, by the channel of their first touch: conversion
    /// rate, repeat rate and value in their first 90 days.
    async fn customer_quality(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        conversion_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<ChannelQuality>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let found = ctx
            .measurement()
            .customer_quality(ctx.actor()?, workspace, parse_id(&conversion_id)?, from, to)
            .await
            .gql()?;
        Ok(found.into_iter().map(ChannelQuality::from).collect())
    }

    /// What a journey did against its holdout: conversions after entry, per person, treated
    /// (intent to treat) against held out.
    #[allow(clippy::too_many_arguments)]
    async fn journey_incrementality(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        journey_id: ID,
        conversion_id: ID,
        #[graphql(desc = "Days after entry in which a conversion counts (default: the lookback).")]
        window_days: Option<u32>,
        confidence: Option<f64>,
        #[graphql(desc = "What the journey cost (default: spend recorded under its name).")] cost: Option<
            f64,
        >,
    ) -> async_graphql::Result<JourneyIncrementality> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let request = journey_request(&journey_id, &conversion_id, window_days, confidence)?;
        let report =
            ctx.measurement().journey_incrementality(ctx.actor()?, workspace, &request, cost).await.gql()?;
        Ok(report.into())
    }

    /// The journey's A/B/n or multivariate experiment, arm by arm, from the variants people
    /// were assigned and their conversions after entry.
    #[allow(clippy::too_many_arguments)]
    async fn journey_experiment(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        journey_id: ID,
        conversion_id: ID,
        window_days: Option<u32>,
        confidence: Option<f64>,
        #[graphql(desc = "The control arm (default: the first by name).")] control: Option<String>,
        #[graphql(desc = "Add always-valid (mSPRT) p-values, for those who peek.", default)] sequential: bool,
    ) -> async_graphql::Result<JourneyExperiment> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let request = journey_request(&journey_id, &conversion_id, window_days, confidence)?;
        let report = ctx
            .measurement()
            .journey_experiment(ctx.actor()?, workspace, &request, control, sequential)
            .await
            .gql()?;
        Ok(report.into())
    }
}

fn journey_request(
    journey_id: &ID,
    conversion_id: &ID,
    window_days: Option<u32>,
    confidence: Option<f64>,
) -> async_graphql::Result<reports::JourneyMeasureRequest> {
    Ok(reports::JourneyMeasureRequest {
        journey: parse_id(journey_id)?,
        conversion: parse_id(conversion_id)?,
        window_days,
        confidence,
    })
}

#[derive(Default)]
pub struct MeasurementMutation;

#[Object]
impl MeasurementMutation {
    async fn create_conversion(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        input: ConversionInput,
    ) -> async_graphql::Result<Conversion> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        Ok(ctx.measurement().create_conversion(ctx.actor()?, workspace, input.into()).await.gql()?.into())
    }

    async fn update_conversion(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
        input: ConversionInput,
    ) -> async_graphql::Result<Conversion> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let updated = ctx
            .measurement()
            .update_conversion(ctx.actor()?, workspace, parse_id(&id)?, input.into())
            .await
            .gql()?;
        Ok(updated.into())
    }

    async fn delete_conversion(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<bool> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.measurement().delete_conversion(ctx.actor()?, workspace, parse_id(&id)?).await.gql()?;
        Ok(true)
    }

    /// Replaces the workspace's channel rules (in order; an empty list returns to the standard
    /// rules). Applies to past touches too: reports read touches through the rules.
    async fn set_channel_rules(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        rules: Vec<ChannelRule>,
    ) -> async_graphql::Result<ChannelRules> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let specs = rules.into_iter().map(Into::into).collect();
        Ok(ctx.measurement().set_channel_rules(ctx.actor()?, workspace, specs).await.gql()?.into())
    }

    /// Records spend rows (at most 50,000), replacing the figure already held for a day,
    /// channel and campaign. Returns the rows written.
    async fn record_spend(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        rows: Vec<SpendInput>,
    ) -> async_graphql::Result<u64> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let rows = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                SpendRow::parse(
                    &format!("spend row {}", i + 1),
                    r.day,
                    &r.channel,
                    r.campaign.as_deref(),
                    r.amount,
                    &r.currency,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let written = ctx.measurement().record_spend(ctx.actor()?, workspace, rows).await.gql()?;
        Ok(written as u64)
    }

    /// Records a spend CSV (`day,channel,campaign,amount,currency`, in any order; `date`, `spend`
    /// and `cost` are understood; `;` or tab separated files too). `currency` applies to rows
    /// without one. The whole file or nothing: a bad row fails it with its line.
    async fn import_spend(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        csv: String,
        currency: Option<String>,
    ) -> async_graphql::Result<u64> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let written = ctx
            .measurement()
            .import_spend_csv(ctx.actor()?, workspace, &csv, currency.as_deref())
            .await
            .gql()?;
        Ok(written as u64)
    }
}
