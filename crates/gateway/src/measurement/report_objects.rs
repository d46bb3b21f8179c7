//! GraphQL shapes of the reports read from a workspace's data, and of what configures them
//! (conversion definitions, channel rules, spend).

use super::objects::{ExperimentAnalysis, Interval, PositionWeightsInput, interval};
use async_graphql::{Enum, InputObject, Json, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use measurement::{conversions, reports, spend, stats, touches};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TouchDimension {
    /// The marketing channel (by the workspace's channel rules; a campaign's channel kind).
    Channel,
    /// The journey of a campaign touch, the UTM campaign of an ingested one.
    Campaign,
    /// The device reached.
    Device,
}

impl From<TouchDimension> for touches::TouchDimension {
    fn from(dimension: TouchDimension) -> Self {
        match dimension {
            TouchDimension::Channel => Self::Channel,
            TouchDimension::Campaign => Self::Campaign,
            TouchDimension::Device => Self::Device,
        }
    }
}

#[derive(InputObject)]
pub struct AttributionInput {
    pub conversion_id: async_graphql::ID,
    /// Conversions from this moment (inclusive)…
    pub from: DateTime<Utc>,
    /// …to this one (exclusive); at most 731 days.
    pub to: DateTime<Utc>,
    #[graphql(default_with = "TouchDimension::Channel")]
    pub by: TouchDimension,
    /// Models (default: all, Markov at order 1): `first_touch`, `last_touch`, `last_non_direct`,
    /// `linear`, `position_based`, `time_decay`, `custom`, `markov_1`…`markov_3`, `shapley`.
    pub models: Option<Vec<String>>,
    /// Only the conversions and journeys of this segment's current members.
    pub segment_id: Option<async_graphql::ID>,
    /// Campaign touchpoint kinds that count (default `send`, `impression`, `click`).
    pub touchpoint_kinds: Option<Vec<String>>,
    pub position_weights: Option<PositionWeightsInput>,
    /// Time-decay half-life in hours (default 168, a week).
    pub half_life_hours: Option<f64>,
    /// Channels `last_non_direct` skips (default `direct`).
    pub direct_channels: Option<Vec<String>>,
    /// Shares month by month, with month-on-month changes flagged.
    #[graphql(default)]
    pub monthly: bool,
    /// Share change (0–1) flagged between two months (default 0.05).
    pub stability_threshold: Option<f64>,
    /// Compute afresh even if a cached report is current.
    #[graphql(default)]
    pub refresh: bool,
}

#[derive(SimpleObject)]
pub struct AttributionRow {
    pub key: String,
    pub conversions: f64,
    pub value: f64,
    /// Share of the attributed conversions (0–1).
    pub share: f64,
    /// Spend recorded for this channel or campaign in the period.
    pub spend: Option<f64>,
    /// Attributed value ÷ spend (return on marketing spend).
    pub return_on_spend: Option<f64>,
    /// Spend ÷ attributed conversions.
    pub cost_per_acquisition: Option<f64>,
}

#[derive(SimpleObject)]
pub struct RemovalEffectRow {
    pub key: String,
    /// Share of conversions lost without this key (Markov).
    pub effect: f64,
}

#[derive(SimpleObject)]
pub struct ModelReport {
    pub model: String,
    pub rows: Vec<AttributionRow>,
    pub note: Option<String>,
    pub removal_effects: Vec<RemovalEffectRow>,
}

#[derive(SimpleObject)]
pub struct MonthlyShare {
    pub model: String,
    pub key: String,
    pub share: f64,
    /// Against the previous month (null in the first).
    pub change: Option<f64>,
    /// The change reaches the stability threshold.
    pub flagged: bool,
}

#[derive(SimpleObject)]
pub struct MonthReport {
    pub month: String,
    pub conversions: u64,
    pub value: f64,
    pub shares: Vec<MonthlyShare>,
}

#[derive(SimpleObject)]
pub struct AttributionReport {
    pub conversion_name: String,
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Conversions in the period, touched or not, and their value.
    pub conversions: u64,
    pub value: f64,
    /// Conversions with no touch in their lookback window (not attributed).
    pub conversions_without_touch: u64,
    pub value_without_touch: f64,
    /// Conversion events in another currency than the definition's, left out.
    pub other_currency_conversions: u64,
    pub converting_paths: u64,
    pub non_converting_paths: u64,
    pub touches: u64,
    /// Spend in the period in the conversion's currency.
    pub spend: f64,
    pub spend_other_currency: f64,
    pub models: Vec<ModelReport>,
    pub months: Vec<MonthReport>,
    /// The month from which no share moved by the threshold (null: still moving, or not asked).
    pub stable_since: Option<String>,
    pub computed_at: DateTime<Utc>,
    /// Served from the cache (still current: the data has not changed since).
    pub cached: bool,
}

impl From<reports::AttributionReport> for AttributionReport {
    fn from(report: reports::AttributionReport) -> Self {
        Self {
            conversion_name: report.conversion_name,
            currency: report.currency,
            from: report.from,
            to: report.to,
            conversions: report.conversions,
            value: report.value,
            conversions_without_touch: report.conversions_without_touch,
            value_without_touch: report.value_without_touch,
            other_currency_conversions: report.other_currency_conversions,
            converting_paths: report.converting_paths,
            non_converting_paths: report.non_converting_paths,
            touches: report.touches,
            spend: report.spend,
            spend_other_currency: report.spend_other_currency,
            models: report
                .models
                .into_iter()
                .map(|model| ModelReport {
                    model: model.model,
                    rows: model
                        .rows
                        .into_iter()
                        .map(|row| AttributionRow {
                            key: row.key,
                            conversions: row.conversions,
                            value: row.value,
                            share: row.share,
                            spend: row.spend,
                            return_on_spend: row.return_on_spend,
                            cost_per_acquisition: row.cost_per_acquisition,
                        })
                        .collect(),
                    note: model.note,
                    removal_effects: model
                        .removal_effects
                        .into_iter()
                        .map(|(key, effect)| RemovalEffectRow { key, effect })
                        .collect(),
                })
                .collect(),
            months: report
                .months
                .into_iter()
                .map(|month| MonthReport {
                    month: month.month,
                    conversions: month.conversions,
                    value: month.value,
                    shares: month
                        .shares
                        .into_iter()
                        .map(|s| MonthlyShare {
                            model: s.model,
                            key: s.key,
                            share: s.share,
                            change: s.change,
                            flagged: s.flagged,
                        })
                        .collect(),
                })
                .collect(),
            stable_since: report.stable_since,
            computed_at: report.computed_at,
            cached: report.cached,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum FilterOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    In,
    Exists,
}

impl From<FilterOp> for conversions::FilterOp {
    fn from(op: FilterOp) -> Self {
        match op {
            FilterOp::Eq => Self::Eq,
            FilterOp::Ne => Self::Ne,
            FilterOp::Gt => Self::Gt,
            FilterOp::Gte => Self::Gte,
            FilterOp::Lt => Self::Lt,
            FilterOp::Lte => Self::Lte,
            FilterOp::Contains => Self::Contains,
            FilterOp::In => Self::In,
            FilterOp::Exists => Self::Exists,
        }
    }
}

impl From<conversions::FilterOp> for FilterOp {
    fn from(op: conversions::FilterOp) -> Self {
        match op {
            conversions::FilterOp::Eq => Self::Eq,
            conversions::FilterOp::Ne => Self::Ne,
            conversions::FilterOp::Gt => Self::Gt,
            conversions::FilterOp::Gte => Self::Gte,
            conversions::FilterOp::Lt => Self::Lt,
            conversions::FilterOp::Lte => Self::Lte,
            conversions::FilterOp::Contains => Self::Contains,
            conversions::FilterOp::In => Self::In,
            conversions::FilterOp::Exists => Self::Exists,
        }
    }
}

#[derive(InputObject, SimpleObject)]
#[graphql(input_name = "PropertyFilterInput")]
pub struct PropertyFilter {
    /// A property of the event (`plan`, or `order.country` inside an object).
    pub property: String,
    pub op: FilterOp,
    /// A string, number or boolean; a list for `IN`; nothing (or false) for `EXISTS`.
    pub value: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct ConversionInput {
    pub name: String,
    /// The `event` of the track calls that count.
    pub event_name: String,
    #[graphql(default)]
    pub filters: Vec<PropertyFilter>,
    /// The property holding the value (`revenue`, `order.total`); none counts without value.
    pub value_property: Option<String>,
    /// ISO 4217; events stating another `currency` are left out.
    pub currency: String,
    /// Days before a conversion a touch may earn credit (default 30, at most 365).
    pub lookback_days: Option<u32>,
}

impl From<ConversionInput> for conversions::ConversionInput {
    fn from(input: ConversionInput) -> Self {
        Self {
            name: input.name,
            event_name: input.event_name,
            filters: input
                .filters
                .into_iter()
                .map(|f| conversions::PropertyFilter {
                    property: f.property,
                    op: f.op.into(),
                    value: f.value.map(|v| v.0).unwrap_or_default(),
                })
                .collect(),
            value_property: input.value_property,
            currency: input.currency,
            lookback_days: input.lookback_days,
        }
    }
}

#[derive(SimpleObject)]
pub struct Conversion {
    pub id: async_graphql::ID,
    pub name: String,
    pub event_name: String,
    pub filters: Vec<PropertyFilter>,
    pub value_property: Option<String>,
    pub currency: String,
    pub lookback_days: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<conversions::ConversionDefinition> for Conversion {
    fn from(d: conversions::ConversionDefinition) -> Self {
        Self {
            id: d.id.to_string().into(),
            name: d.name,
            event_name: d.event_name,
            filters: d
                .filters
                .into_iter()
                .map(|f| PropertyFilter {
                    property: f.property,
                    op: f.op.into(),
                    value: (!f.value.is_null()).then_some(Json(f.value)),
                })
                .collect(),
            value_property: d.value_property,
            currency: d.currency,
            lookback_days: d.lookback_days,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A channel rule: the channel, and regular expressions every one of which must match the whole
/// (lowercase) value, case-insensitively.
#[derive(InputObject, SimpleObject)]
#[graphql(input_name = "ChannelRuleInput")]
pub struct ChannelRule {
    pub channel: String,
    /// UTM source (`context.campaign.source` or `utm_source`).
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    /// The external referrer's host (`google.com`).
    pub referrer: Option<String>,
    /// The channel the event came through (`call_center`, `pos`…).
    pub event_channel: Option<String>,
}

impl From<ChannelRule> for touches::ChannelRuleSpec {
    fn from(r: ChannelRule) -> Self {
        Self {
            channel: r.channel,
            source: r.source,
            medium: r.medium,
            campaign: r.campaign,
            referrer: r.referrer,
            event_channel: r.event_channel,
        }
    }
}

#[derive(SimpleObject)]
pub struct ChannelRules {
    /// The standard rules are in force (the workspace has none of its own).
    pub standard: bool,
    /// In order: the first rule that matches a touch names its channel.
    pub rules: Vec<ChannelRule>,
}

impl From<touches::ChannelRules> for ChannelRules {
    fn from(rules: touches::ChannelRules) -> Self {
        Self {
            standard: rules.is_standard(),
            rules: rules
                .specs()
                .iter()
                .cloned()
                .map(|r| ChannelRule {
                    channel: r.channel,
                    source: r.source,
                    medium: r.medium,
                    campaign: r.campaign,
                    referrer: r.referrer,
                    event_channel: r.event_channel,
                })
                .collect(),
        }
    }
}

#[derive(InputObject)]
pub struct SpendInput {
    pub day: NaiveDate,
    pub channel: String,
    /// Omit for spend on the channel as a whole.
    pub campaign: Option<String>,
    pub amount: f64,
    pub currency: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SpendGrouping {
    Day,
    Channel,
    Campaign,
}

impl From<SpendGrouping> for spend::SpendGrouping {
    fn from(g: SpendGrouping) -> Self {
        match g {
            SpendGrouping::Day => Self::Day,
            SpendGrouping::Channel => Self::Channel,
            SpendGrouping::Campaign => Self::Campaign,
        }
    }
}

#[derive(SimpleObject)]
pub struct SpendTotal {
    pub key: String,
    pub amount: f64,
    pub currency: String,
}

#[derive(SimpleObject)]
pub struct ChannelQuality {
    pub channel: String,
    pub people: u64,
    /// People whose first 90 days are over; the rates are theirs.
    pub mature_people: u64,
    pub conversion_rate: f64,
    pub repeat_rate: f64,
    pub revenue_per_person: f64,
    pub revenue: f64,
}

impl From<reports::ChannelQuality> for ChannelQuality {
    fn from(q: reports::ChannelQuality) -> Self {
        Self {
            channel: q.channel,
            people: q.people,
            mature_people: q.mature_people,
            conversion_rate: q.conversion_rate,
            repeat_rate: q.repeat_rate,
            revenue_per_person: q.revenue_per_person,
            revenue: q.revenue,
        }
    }
}

#[derive(SimpleObject)]
pub struct GroupMetrics {
    pub people: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    pub value: f64,
    pub value_per_person: f64,
}

#[derive(SimpleObject)]
pub struct Comparison {
    pub difference: f64,
    pub difference_interval: Option<Interval>,
    pub relative_lift: Option<f64>,
    pub relative_lift_interval: Option<Interval>,
    pub p_value: Option<f64>,
}

#[derive(SimpleObject)]
pub struct EstimateWithInterval {
    pub value: f64,
    pub interval: Option<Interval>,
}

#[derive(SimpleObject)]
pub struct JourneyIncrementality {
    pub journey_name: String,
    pub conversion_name: String,
    pub currency: String,
    /// Days after entry in which conversions count.
    pub window_days: u32,
    pub treatment: GroupMetrics,
    /// The holdout.
    pub control: GroupMetrics,
    /// Conversion rate, treatment against holdout.
    pub conversion: Comparison,
    /// Value per person, treatment against holdout.
    pub value: Comparison,
    pub incremental_conversions: EstimateWithInterval,
    pub incremental_revenue: EstimateWithInterval,
    /// Given, or the spend recorded under the journey's name as campaign.
    pub cost: Option<f64>,
    pub cost_per_incremental_acquisition: Option<EstimateWithInterval>,
    pub incremental_return_on_spend: Option<EstimateWithInterval>,
    pub confidence: f64,
}

fn estimate(e: stats::Estimate) -> EstimateWithInterval {
    EstimateWithInterval { value: e.value, interval: interval(e.interval) }
}

fn comparison(c: stats::MeanComparison) -> Comparison {
    Comparison {
        difference: c.difference,
        difference_interval: interval(c.difference_interval),
        relative_lift: c.relative_lift,
        relative_lift_interval: interval(c.relative_lift_interval),
        p_value: c.p_value,
    }
}

fn group(g: stats::GroupMetrics) -> GroupMetrics {
    GroupMetrics {
        people: g.people,
        conversions: g.conversions,
        conversion_rate: g.conversion_rate,
        value: g.revenue,
        value_per_person: g.value_per_person,
    }
}

impl From<reports::HoldoutReport> for JourneyIncrementality {
    fn from(report: reports::HoldoutReport) -> Self {
        let r = report.result;
        Self {
            journey_name: report.journey_name,
            conversion_name: report.conversion_name,
            currency: report.currency,
            window_days: report.window_days,
            treatment: group(r.treatment),
            control: group(r.control),
            conversion: comparison(r.conversion),
            value: comparison(r.value),
            incremental_conversions: estimate(r.incremental_conversions),
            incremental_revenue: estimate(r.incremental_revenue),
            cost: report.cost,
            cost_per_incremental_acquisition: r.cost_per_incremental_acquisition.map(estimate),
            incremental_return_on_spend: r.incremental_return_on_spend.map(estimate),
            confidence: r.confidence,
        }
    }
}

#[derive(SimpleObject)]
pub struct JourneyExperiment {
    pub journey_name: String,
    pub conversion_name: String,
    pub window_days: u32,
    pub analysis: ExperimentAnalysis,
}

impl From<reports::ExperimentReport> for JourneyExperiment {
    fn from(report: reports::ExperimentReport) -> Self {
        Self {
            journey_name: report.journey_name,
            conversion_name: report.conversion_name,
            window_days: report.window_days,
            analysis: report.analysis.into(),
        }
    }
}
