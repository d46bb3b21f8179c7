//! Customer quality by acquisition channel: are the people a channel brings worth having? For
//! the people first seen in a period, grouped by the channel of their first touch, what they
//! brought in their first 90 days and how many came back. Only people whose 90 days are over
//! count in the rates, so a recent cohort never looks worse than it is.

use crate::conversions::load_conversion;
use crate::service::Measurement;
use crate::touches::load::{Merges, NONE_LABEL, TouchQuery, load_conversions, load_touches};
use crate::touches::settings::load_rules;
use crate::{MeasurementError, Result};
use chrono::{DateTime, Duration, Utc};
use kernel::{ConversionId, WorkspaceId};
use platform::sql::Sql;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// Days after first being seen that a customer's value is measured over.
pub const QUALITY_DAYS: i64 = 90;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelQuality {
    /// The channel of the person's first touch (`(none)` when they came untouched).
    pub channel: String,
    /// People first seen in the period.
    pub people: u64,
    /// Of them, people whose 90 days are over: the rates below are theirs.
    pub mature_people: u64,
    /// Share of mature people who converted at least once in their 90 days.
    pub conversion_rate: f64,
    /// Share of mature people who converted at least twice.
    pub repeat_rate: f64,
    /// Value per mature person in their 90 days.
    pub revenue_per_person: f64,
    pub revenue: f64,
}

impl Measurement {
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn customer_quality(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        conversion: ConversionId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ChannelQuality>> {
        let scope = self.authorize(actor, workspace, Permission::Analyze).await?;
        if to <= from || to - from > Duration::days(crate::reports::attribution::MAX_REPORT_DAYS) {
            return Err(MeasurementError::invalid("`to` must be after `from`, at most 731 days later"));
        }
        let tenant = scope.tenant_id().as_uuid();
        let now = self.now();
        let txn = scope.begin(self.db()).await?;
        let definition = load_conversion(&txn, tenant, conversion).await?;
        let lookback = Duration::days(i64::from(definition.lookback_days));
        let mut statement = Sql::new("SELECT id, first_seen_at FROM profiles WHERE tenant_id = ");
        statement
            .bind(tenant)
            .push(" AND merged_into IS NULL AND first_seen_at >= ")
            .bind(from)
            .push(" AND first_seen_at < ")
            .bind(to);
        let newcomers = statement.fetch_all(&txn).await?;
        let rules = load_rules(&txn, tenant).await?;
        let merges = Merges::load(&txn, tenant).await?;
        let kinds: Vec<String> =
            crate::reports::attribution::DEFAULT_CAMPAIGN_KINDS.iter().map(|k| (*k).to_owned()).collect();
        let query = TouchQuery { tenant, from: from - lookback, to, rules: &rules, campaign_kinds: &kinds };
        let touches = load_touches(&txn, &query, &merges).await?;
        let horizon = to + Duration::days(QUALITY_DAYS);
        let conversions = load_conversions(&txn, tenant, &definition, from, horizon).await?;
        txn.commit().await?;

        let mut groups: BTreeMap<String, ChannelQuality> = BTreeMap::new();
        for row in newcomers {
            let person: Uuid = row.try_get("", "id")?;
            let first_seen: DateTime<Utc> = row.try_get("", "first_seen_at")?;
            // The first touch from a lookback before they were first seen (an ad they saw
            // before visiting) up to their first day.
            let channel = touches
                .by_profile
                .get(&person)
                .and_then(|list| {
                    list.iter()
                        .find(|t| t.at >= first_seen - lookback && t.at <= first_seen + Duration::days(1))
                })
                .map_or(NONE_LABEL, |touch| touches.labels.name(touch.channel));
            let group = groups.entry(channel.to_owned()).or_insert_with(|| ChannelQuality {
                channel: channel.to_owned(),
                people: 0,
                mature_people: 0,
                conversion_rate: 0.0,
                repeat_rate: 0.0,
                revenue_per_person: 0.0,
                revenue: 0.0,
            });
            group.people += 1;
            let end = first_seen + Duration::days(QUALITY_DAYS);
            if end > now {
                continue;
            }
            group.mature_people += 1;
            let (count, value) = conversions
                .by_profile
                .get(&person)
                .map(|list| {
                    list.iter()
                        .filter(|c| c.at >= first_seen && c.at < end)
                        .fold((0u64, 0.0), |(n, v), c| (n + 1, v + c.value))
                })
                .unwrap_or((0, 0.0));
            // Rates are accumulated as counts here and divided below.
            group.conversion_rate += f64::from(u8::from(count >= 1));
            group.repeat_rate += f64::from(u8::from(count >= 2));
            group.revenue += value;
        }
        let mut out: Vec<ChannelQuality> = groups
            .into_values()
            .map(|mut group| {
                if group.mature_people > 0 {
                    let mature = group.mature_people as f64;
                    group.conversion_rate /= mature;
                    group.repeat_rate /= mature;
                    group.revenue_per_person = group.revenue / mature;
                }
                group
            })
            .collect();
        out.sort_by(|a, b| b.people.cmp(&a.people).then_with(|| a.channel.cmp(&b.channel)));
        Ok(out)
    }
}
