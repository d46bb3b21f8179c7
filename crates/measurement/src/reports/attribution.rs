//! The attribution report: every model side by side on the same paths, built from the
//! workspace's touches and one conversion definition, per channel, campaign or device, for one
//! period and optionally one segment, with return on spend per row and, when asked, the shares
//! month by month with the changes flagged (model stability).

use super::paths::{BuiltPaths, PathWindow, build_paths};
use crate::attribution::{Model, Options, PositionWeights, TimeDecay, run_models};
use crate::cache::REPORT_TTL;
use crate::conversions::load_conversion;
use crate::service::Measurement;
use crate::spend::{SpendSums, spend_sums};
use crate::touches::TouchDimension;
use crate::touches::load::{
    ConversionLog, Merges, TouchLog, TouchQuery, load_campaign_touches, load_conversions, load_event_touches,
};
use crate::touches::settings::load_rules;
use crate::{MeasurementError, Result};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use kernel::{ConversionId, SegmentId, WorkspaceId};
use platform::sql::Sql;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// Longest period a report covers.
pub const MAX_REPORT_DAYS: i64 = 731;
/// Campaign touchpoint kinds that count as touches unless the request says otherwise: the
/// contact itself (a message sent, an offer shown) and a click on it.
pub const DEFAULT_CAMPAIGN_KINDS: [&str; 3] = ["send", "impression", "click"];
const CAMPAIGN_KINDS: [&str; 9] =
    ["send", "accepted", "delivery", "open", "click", "impression", "bounce", "complaint", "unsubscribe"];
/// A month-on-month change of a share at least this large is flagged.
pub const DEFAULT_STABILITY_THRESHOLD: f64 = 0.05;

/// What a report is asked for. Serialised (normalised) into the cache key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionRequest {
    pub conversion: ConversionId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub dimension: TouchDimension,
    /// Model names (see [`Model`]); empty for the standard set.
    pub models: Vec<String>,
    pub segment: Option<SegmentId>,
    /// Campaign touchpoint kinds that count; `None` for [`DEFAULT_CAMPAIGN_KINDS`].
    pub campaign_kinds: Option<Vec<String>>,
    pub position_weights: Option<[f64; 3]>,
    pub half_life_hours: Option<f64>,
    pub direct_channels: Option<Vec<String>>,
    /// Shares month by month, with changes flagged.
    pub monthly: bool,
    /// Share change flagged between two months; default 0.05 (5 points).
    pub stability_threshold: Option<f64>,
}

impl AttributionRequest {
    fn models(&self) -> Result<Vec<Model>> {
        if self.models.is_empty() {
            return Ok(Model::STANDARD.to_vec());
        }
        let mut models = Vec::new();
        for name in &self.models {
            let model: Model = name.parse()?;
            if !models.contains(&model) {
                models.push(model);
            }
        }
        Ok(models)
    }

    fn options(&self) -> Options {
        let mut options = Options::default();
        if let Some([first, middle, last]) = self.position_weights {
            options.position_weights = PositionWeights { first, middle, last };
        }
        if let Some(half_life_hours) = self.half_life_hours {
            options.time_decay = TimeDecay { half_life_hours, ..TimeDecay::default() };
        }
        if let Some(direct) = &self.direct_channels {
            options.direct_channels = direct.iter().map(|c| c.trim().to_lowercase()).collect();
        }
        options
    }

    fn campaign_kinds(&self) -> Result<Vec<String>> {
        let kinds: Vec<String> = match &self.campaign_kinds {
            None => DEFAULT_CAMPAIGN_KINDS.iter().map(|k| (*k).to_owned()).collect(),
            Some(kinds) => kinds.iter().map(|k| k.trim().to_lowercase()).collect(),
        };
        if let Some(unknown) = kinds.iter().find(|k| !CAMPAIGN_KINDS.contains(&k.as_str())) {
            return Err(MeasurementError::invalid(format!(
                "unknown touchpoint kind `{unknown}`; kinds: {}",
                CAMPAIGN_KINDS.join(", ")
            )));
        }
        Ok(kinds)
    }

    /// Checks everything a caller can get wrong before any data is read.
    fn validate(&self) -> Result<(Vec<Model>, Options, Vec<String>)> {
        if self.to <= self.from {
            return Err(MeasurementError::invalid("`to` must be after `from`"));
        }
        if self.to - self.from > Duration::days(MAX_REPORT_DAYS) {
            return Err(MeasurementError::invalid(format!("a report covers at most {MAX_REPORT_DAYS} days")));
        }
        if let Some(threshold) = self.stability_threshold
            && !(threshold > 0.0 && threshold < 1.0)
        {
            return Err(MeasurementError::invalid("the stability threshold must be between 0 and 1"));
        }
        let options = self.options();
        options.validate()?;
        Ok((self.models()?, options, self.campaign_kinds()?))
    }
}

/// One row of one model: what a channel (campaign, device) earned, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionRow {
    pub key: String,
    pub conversions: f64,
    pub value: f64,
    /// Share of the attributed conversions.
    pub share: f64,
    /// Spend recorded for this key in the period (channels and campaigns; not devices).
    pub spend: Option<f64>,
    /// Attributed value ÷ spend.
    pub return_on_spend: Option<f64>,
    /// Spend ÷ attributed conversions.
    pub cost_per_acquisition: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub model: String,
    pub rows: Vec<AttributionRow>,
    pub note: Option<String>,
    /// Markov models: the share of conversions lost when each key is removed.
    pub removal_effects: Vec<(String, f64)>,
}

/// One key's share in one month under one model, and how it moved since the month before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyShare {
    pub model: String,
    pub key: String,
    pub share: f64,
    /// Share minus the previous month's (`None` in the first month).
    pub change: Option<f64>,
    /// The change is at least the stability threshold.
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthReport {
    /// `2026-10`.
    pub month: String,
    pub conversions: u64,
    pub value: f64,
    pub shares: Vec<MonthlyShare>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionReport {
    pub conversion_name: String,
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Conversions in the period (and their value), touched or not.
    pub conversions: u64,
    pub value: f64,
    /// Conversions with no touch in their lookback window: not attributed to any key.
    pub conversions_without_touch: u64,
    pub value_without_touch: f64,
    /// Events of the conversion's name that stated another currency, left out.
    pub other_currency_conversions: u64,
    pub converting_paths: u64,
    pub non_converting_paths: u64,
    pub touches: u64,
    pub spend: f64,
    pub spend_other_currency: f64,
    pub models: Vec<ModelReport>,
    pub months: Vec<MonthReport>,
    /// The months from which no share moved by the threshold any more (`None`: still moving,
    /// or not asked).
    pub stable_since: Option<String>,
    pub computed_at: DateTime<Utc>,
    /// Served from the cache.
    pub cached: bool,
}

/// What a report reads from the database, read in one transaction.
struct ReportData {
    conversion_name: String,
    currency: String,
    lookback: Duration,
    touches: TouchLog,
    conversions: ConversionLog,
    members: Option<HashSet<Uuid>>,
    spend: SpendSums,
}

impl Measurement {
    /// The attribution report (see the module documentation). Analysts and above.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, conversion = %request.conversion))]
    pub async fn attribution_report(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        request: AttributionRequest,
        refresh: bool,
    ) -> Result<AttributionReport> {
        let scope = self.authorize(actor, workspace, Permission::Analyze).await?;
        let (models, options, campaign_kinds) = request.validate()?;
        let stamps = self.cache().stamps(workspace).await;
        if let Some(stamps) = &stamps
            && !refresh
            && let Some(mut report) =
                self.cache().get::<AttributionReport>(workspace, stamps, "attribution", &request).await
        {
            report.cached = true;
            return Ok(report);
        }
        let tenant = scope.tenant_id().as_uuid();
        let started = std::time::Instant::now();
        let txn = scope.begin(self.db()).await?;
        let definition = load_conversion(&txn, tenant, request.conversion).await?;
        let lookback = Duration::days(i64::from(definition.lookback_days));
        let members = match request.segment {
            Some(segment) => Some(segment_members(&txn, tenant, segment).await?),
            None => None,
        };
        let rules = load_rules(&txn, tenant).await?;
        let merges = Merges::load(&txn, tenant).await?;
        let spend = spend_sums(&txn, tenant, request.from, request.to, &definition.currency).await?;
        txn.commit().await?;
        let query = TouchQuery {
            tenant,
            from: request.from - lookback,
            to: request.to,
            rules: &rules,
            campaign_kinds: &campaign_kinds,
        };
        // The three large reads run side by side, each in its own tenant-scoped transaction:
        // the database scans while this process decodes.
        let (mut touches, campaign_touches, conversions) = tokio::try_join!(
            async {
                let txn = scope.begin(self.db()).await?;
                let read = load_event_touches(&txn, &query).await?;
                txn.commit().await?;
                Ok::<_, MeasurementError>(read)
            },
            async {
                let txn = scope.begin(self.db()).await?;
                let read = load_campaign_touches(&txn, &query, &merges).await?;
                txn.commit().await?;
                Ok::<_, MeasurementError>(read)
            },
            async {
                // From a lookback earlier, so the first conversion in the period knows the one
                // before it.
                let txn = scope.begin(self.db()).await?;
                let read =
                    load_conversions(&txn, tenant, &definition, request.from - lookback, request.to).await?;
                txn.commit().await?;
                Ok::<_, MeasurementError>(read)
            },
        )?;
        touches.absorb(campaign_touches);
        touches.sort();
        let loaded_ms = started.elapsed().as_millis() as u64;
        let data = ReportData {
            conversion_name: definition.name,
            currency: definition.currency,
            lookback,
            touches,
            conversions,
            members,
            spend,
        };
        let now = self.now();
        let computing = request.clone();
        // Markov and Shapley on large path sets are CPU work: off the async workers.
        let report = tokio::task::spawn_blocking(move || compute(&computing, &models, &options, &data, now))
            .await
            .map_err(|e| Measurement::internal(e.to_string()))??;
        tracing::info!(
            loaded_ms,
            total_ms = started.elapsed().as_millis() as u64,
            touches = report.touches,
            paths = report.converting_paths + report.non_converting_paths,
            "attribution report computed"
        );
        if let Some(stamps) = &stamps {
            self.cache().put(workspace, stamps, "attribution", &request, &report, REPORT_TTL).await;
        }
        Ok(report)
    }
}

async fn segment_members(
    txn: &sea_orm::DatabaseTransaction,
    tenant: Uuid,
    segment: SegmentId,
) -> Result<HashSet<Uuid>> {
    let mut statement = Sql::new("SELECT id FROM segments WHERE tenant_id = ");
    statement.bind(tenant).push(" AND id = ").bind(segment.as_uuid());
    let exists = statement.fetch_all(txn).await?;
    if exists.is_empty() {
        return Err(MeasurementError::NotFound);
    }
    let mut statement = Sql::new("SELECT profile_id FROM segment_members WHERE tenant_id = ");
    statement.bind(tenant).push(" AND segment_id = ").bind(segment.as_uuid());
    let rows = statement.fetch_all(txn).await?;
    rows.iter().map(|row| Ok(row.try_get::<Uuid>("", "profile_id")?)).collect()
}

fn compute(
    request: &AttributionRequest,
    models: &[Model],
    options: &Options,
    data: &ReportData,
    now: DateTime<Utc>,
) -> Result<AttributionReport> {
    let window = PathWindow {
        from: request.from,
        to: request.to,
        lookback: data.lookback,
        dimension: request.dimension,
    };
    let built = build_paths(&data.touches, &data.conversions, &window, data.members.as_ref())?;
    let overall = model_reports(&built, models, options, request.dimension, Some(&data.spend))?;
    let mut report = AttributionReport {
        conversion_name: data.conversion_name.clone(),
        currency: data.currency.clone(),
        from: request.from,
        to: request.to,
        conversions: built.conversions,
        value: built.value,
        conversions_without_touch: built.conversions_without_touch,
        value_without_touch: built.value_without_touch,
        other_currency_conversions: data.conversions.other_currency,
        converting_paths: built.converting_paths,
        non_converting_paths: built.non_converting_paths,
        touches: built.paths.touch_count() as u64,
        spend: data.spend.total,
        spend_other_currency: data.spend.other_currency,
        models: overall,
        months: Vec::new(),
        stable_since: None,
        computed_at: now,
        cached: false,
    };
    if request.monthly {
        let threshold = request.stability_threshold.unwrap_or(DEFAULT_STABILITY_THRESHOLD);
        let mut previous: Option<MonthReport> = None;
        for (start, end) in months(request.from, request.to) {
            let window = PathWindow { from: start, to: end, ..window };
            let built = build_paths(&data.touches, &data.conversions, &window, data.members.as_ref())?;
            let reports = model_reports(&built, models, options, request.dimension, None)?;
            let mut shares = Vec::new();
            for model in &reports {
                for row in &model.rows {
                    let before = previous.as_ref().map(|month| {
                        month
                            .shares
                            .iter()
                            .find(|s| s.model == model.model && s.key == row.key)
                            .map_or(0.0, |s| s.share)
                    });
                    let change = before.map(|before| row.share - before);
                    shares.push(MonthlyShare {
                        model: model.model.clone(),
                        key: row.key.clone(),
                        share: row.share,
                        change,
                        flagged: change.is_some_and(|c| c.abs() >= threshold),
                    });
                }
            }
            let month = MonthReport {
                month: format!("{:04}-{:02}", start.year(), start.month()),
                conversions: built.conversions,
                value: built.value,
                shares,
            };
            // A month without conversions says nothing about the shares: changes are measured
            // against the last month that had some.
            if month.conversions > 0 {
                previous = Some(month.clone());
            }
            report.months.push(month);
        }
        report.stable_since = stable_since(&report.months);
    }
    Ok(report)
}

fn model_reports(
    built: &BuiltPaths,
    models: &[Model],
    options: &Options,
    dimension: TouchDimension,
    spend: Option<&SpendSums>,
) -> Result<Vec<ModelReport>> {
    let results =
        if built.paths.is_empty() { Vec::new() } else { run_models(&built.paths, models, options)? };
    let mut reports = Vec::with_capacity(models.len());
    for (index, model) in models.iter().enumerate() {
        let Some(result) = results.get(index) else {
            reports.push(ModelReport {
                model: model.name().to_owned(),
                rows: Vec::new(),
                note: Some("no touches in the period".into()),
                removal_effects: Vec::new(),
            });
            continue;
        };
        let (total, _) = result.totals();
        let mut rows: Vec<AttributionRow> = result
            .credits
            .iter()
            .map(|credit| {
                let spent = spend.and_then(|spend| {
                    let key = credit.channel.to_lowercase();
                    match dimension {
                        TouchDimension::Channel => spend.by_channel.get(&key).copied(),
                        TouchDimension::Campaign => spend.by_campaign.get(&key).copied(),
                        TouchDimension::Device => None,
                    }
                });
                AttributionRow {
                    key: credit.channel.clone(),
                    conversions: credit.conversions,
                    value: credit.value,
                    share: if total > 0.0 { credit.conversions / total } else { 0.0 },
                    spend: spent,
                    return_on_spend: spent.filter(|s| *s > 0.0).map(|s| credit.value / s),
                    cost_per_acquisition: spent
                        .filter(|_| credit.conversions > 0.0)
                        .map(|s| s / credit.conversions),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.conversions.total_cmp(&a.conversions).then_with(|| a.key.cmp(&b.key)));
        let removal_effects = result
            .markov
            .as_ref()
            .map(|markov| markov.removal_effects.iter().map(|e| (e.channel.clone(), e.conversions)).collect())
            .unwrap_or_default();
        reports.push(ModelReport {
            model: model.name().to_owned(),
            rows,
            note: result.note.clone(),
            removal_effects,
        });
    }
    Ok(reports)
}

/// The first month with conversions after the last month a share moved by the threshold; with
/// no move at all, the second month with conversions (one month alone shows no stability).
/// `None` while the latest months still move, or without conversions to judge by.
fn stable_since(months: &[MonthReport]) -> Option<String> {
    let judged: Vec<&MonthReport> = months.iter().filter(|m| m.conversions > 0).collect();
    let next = match judged.iter().rposition(|m| m.shares.iter().any(|s| s.flagged)) {
        Some(index) => index + 1,
        None => 1,
    };
    judged.get(next).map(|m| m.month.clone())
}

/// Calendar months (UTC) covering `[from, to)`, clipped to it.
fn months(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let (year, month) =
            if start.month() == 12 { (start.year() + 1, 1) } else { (start.year(), start.month() + 1) };
        let next = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single().unwrap_or(to).min(to);
        out.push((start, next));
        start = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months_clipped_to_the_period() {
        let from = Utc.with_ymd_and_hms(2026, 11, 15, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2027, 1, 10, 0, 0, 0).unwrap();
        let found = months(from, to);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0], (from, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()));
        assert_eq!(found[2], (Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(), to));
    }

    fn month(name: &str, conversions: u64, flagged: bool) -> MonthReport {
        let share =
            MonthlyShare { model: "linear".into(), key: "email".into(), share: 1.0, change: None, flagged };
        MonthReport { month: name.into(), conversions, value: 0.0, shares: vec![share] }
    }

    #[test]
    fn stability_is_judged_on_months_with_conversions() {
        let months = [month("08", 5, false), month("09", 5, true), month("10", 0, false)];
        assert_eq!(stable_since(&months), None, "an empty month does not settle a moving model");
        let months = [month("08", 5, false), month("09", 5, true), month("10", 3, false)];
        assert_eq!(stable_since(&months).as_deref(), Some("10"));
        let months = [month("08", 5, false), month("09", 0, false), month("10", 3, false)];
        assert_eq!(stable_since(&months).as_deref(), Some("10"));
        assert_eq!(stable_since(&[month("08", 5, false)]), None, "one month alone shows nothing");
    }

    #[test]
    fn requests_are_checked_before_reading_anything() {
        let from = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let good = AttributionRequest {
            conversion: ConversionId::new(),
            from,
            to: from + Duration::days(30),
            dimension: TouchDimension::Channel,
            models: vec!["markov".into(), "Markov_1".into(), "shapley".into()],
            segment: None,
            campaign_kinds: None,
            position_weights: None,
            half_life_hours: None,
            direct_channels: None,
            monthly: false,
            stability_threshold: None,
        };
        let (models, _, kinds) = good.validate().unwrap();
        assert_eq!(models.len(), 2, "a model named twice runs once");
        assert_eq!(kinds, ["send", "impression", "click"]);
        let bad = |request: AttributionRequest| request.validate().unwrap_err().to_string();
        assert!(bad(AttributionRequest { to: from, ..good.clone() }).contains("after"));
        assert!(
            bad(AttributionRequest { to: from + Duration::days(800), ..good.clone() }).contains("at most")
        );
        assert!(
            bad(AttributionRequest { models: vec!["magic".into()], ..good.clone() })
                .contains("unknown attribution model")
        );
        assert!(
            bad(AttributionRequest { position_weights: Some([0.5, 0.5, 0.5]), ..good.clone() })
                .contains("sum to 1")
        );
        assert!(
            bad(AttributionRequest { campaign_kinds: Some(vec!["hug".into()]), ..good.clone() })
                .contains("hug")
        );
        assert!(bad(AttributionRequest { stability_threshold: Some(2.0), ..good }).contains("threshold"));
    }
}
