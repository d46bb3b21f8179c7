//! What a journey really did: incrementality from its holdout, and its A/B/n or multivariate
//! experiment from the variants people were assigned.
//!
//! Conversions are measured from events, per conversion definition, in a window after each
//! person entered (the definition's lookback unless the request says otherwise), for the treated
//! and the held-out alike. `journey_enrollments.converted_at` cannot serve: it is set only while
//! an enrollment is active, and the held-out leave at once. The treated group is everyone
//! assigned to treatment, sent to or not (intent to treat), so consent and caps cannot flatter
//! the lift. A person counts once per journey, with their first enrollment.

use crate::conversions::{ConversionDefinition, load_conversion};
use crate::service::Measurement;
use crate::spend::spend_sums;
use crate::stats::{
    ArmSummary, ExperimentAnalysis, ExperimentArm, ExperimentOptions, FactorLevel, Incrementality,
    IncrementalityOptions, SequentialOptions, analyze_experiment, incrementality,
};
use crate::touches::load::{ConversionLog, Merges, load_conversions};
use crate::{MeasurementError, Result};
use campaigns::graph::{JourneyGraph, StepKind};
use chrono::{DateTime, Duration, Utc};
use kernel::{ConversionId, JourneyId, WorkspaceId};
use platform::sql::Sql;
use sea_orm::DatabaseTransaction;
use std::collections::{BTreeMap, HashMap};
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// What a journey report is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyMeasureRequest {
    pub journey: JourneyId,
    pub conversion: ConversionId,
    /// Days after entry in which a conversion counts; the definition's lookback when `None`.
    pub window_days: Option<u32>,
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct HoldoutReport {
    pub journey_name: String,
    pub conversion_name: String,
    pub currency: String,
    pub window_days: u32,
    /// What the journey cost: given, or the spend recorded under the journey's name as campaign.
    pub cost: Option<f64>,
    pub result: Incrementality,
}

#[derive(Debug, Clone)]
pub struct ExperimentReport {
    pub journey_name: String,
    pub conversion_name: String,
    pub window_days: u32,
    pub analysis: ExperimentAnalysis,
}

/// One person's first enrollment in the journey.
struct Entrant {
    entered_at: DateTime<Utc>,
    holdout: bool,
    variant: Option<String>,
}

struct JourneyData {
    name: String,
    definition: ConversionDefinition,
    window: Duration,
    entrants: HashMap<Uuid, Entrant>,
    conversions: ConversionLog,
    spend: Option<f64>,
}

impl Measurement {
    /// Incrementality of a journey with a holdout step.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, journey = %request.journey))]
    pub async fn journey_incrementality(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        request: &JourneyMeasureRequest,
        cost: Option<f64>,
    ) -> Result<HoldoutReport> {
        let data = self.journey_data(actor, workspace, request).await?;
        let (mut treated, mut held_out) = (ArmSummary::default(), ArmSummary::default());
        for (person, entrant) in &data.entrants {
            let arm = if entrant.holdout { &mut held_out } else { &mut treated };
            add_person(arm, value_after(&data, *person, entrant.entered_at));
        }
        if held_out.people == 0 {
            return Err(MeasurementError::invalid(
                "this journey has no one in a holdout: add a holdout step to measure incrementality",
            ));
        }
        let cost = cost.or(data.spend);
        let options = IncrementalityOptions {
            confidence: request.confidence.unwrap_or(crate::stats::DEFAULT_CONFIDENCE),
            cost,
        };
        let result = incrementality(&treated, &held_out, &options)?;
        Ok(HoldoutReport {
            journey_name: data.name,
            conversion_name: data.definition.name,
            currency: data.definition.currency,
            window_days: window_days(data.window),
            cost,
            result,
        })
    }

    /// The A/B/n or multivariate experiment of a journey, arm by arm (the held-out and people
    /// who never reached the split are not in any arm).
    #[tracing::instrument(skip_all, fields(workspace = %workspace, journey = %request.journey))]
    pub async fn journey_experiment(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        request: &JourneyMeasureRequest,
        control: Option<String>,
        sequential: bool,
    ) -> Result<ExperimentReport> {
        let data = self.journey_data(actor, workspace, request).await?;
        let planned = self.planned_weights(actor, workspace, request.journey).await?;
        let mut arms: BTreeMap<String, ArmSummary> = BTreeMap::new();
        for (person, entrant) in &data.entrants {
            let Some(variant) = entrant.variant.as_ref().filter(|_| !entrant.holdout) else { continue };
            add_person(
                arms.entry(variant.clone()).or_default(),
                value_after(&data, *person, entrant.entered_at),
            );
        }
        if arms.len() < 2 {
            return Err(MeasurementError::invalid(format!(
                "an experiment needs people in at least two variants; this journey has {}",
                arms.len()
            )));
        }
        let experiment_arms: Vec<ExperimentArm> = arms
            .into_iter()
            .map(|(label, summary)| {
                let factors = factor_levels(&label);
                let planned_weight = match &planned {
                    Planned::Split(weights) => weights.get(&label).copied(),
                    Planned::Even => Some(1.0),
                    Planned::Unknown => None,
                };
                ExperimentArm { label, summary, planned_weight, factors }
            })
            .collect();
        // Planned weights are all or nothing: an arm the graph no longer names drops them all.
        let all_planned = experiment_arms.iter().all(|arm| arm.planned_weight.is_some());
        let experiment_arms: Vec<ExperimentArm> = experiment_arms
            .into_iter()
            .map(|arm| ExperimentArm { planned_weight: arm.planned_weight.filter(|_| all_planned), ..arm })
            .collect();
        let options = ExperimentOptions {
            control,
            confidence: request.confidence.unwrap_or(crate::stats::DEFAULT_CONFIDENCE),
            sequential: sequential.then(SequentialOptions::default),
            ..ExperimentOptions::default()
        };
        let analysis = analyze_experiment(&experiment_arms, &options)?;
        Ok(ExperimentReport {
            journey_name: data.name,
            conversion_name: data.definition.name,
            window_days: window_days(data.window),
            analysis,
        })
    }

    async fn journey_data(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        request: &JourneyMeasureRequest,
    ) -> Result<JourneyData> {
        let scope = self.authorize(actor, workspace, Permission::Analyze).await?;
        if let Some(days) = request.window_days
            && !(1..=crate::conversions::MAX_LOOKBACK_DAYS).contains(&days)
        {
            return Err(MeasurementError::invalid(format!(
                "the window must be 1 to {} days",
                crate::conversions::MAX_LOOKBACK_DAYS
            )));
        }
        let journey = self.campaigns().journey(actor, workspace, request.journey).await?;
        let tenant = scope.tenant_id().as_uuid();
        let txn = scope.begin(self.db()).await?;
        let definition = load_conversion(&txn, tenant, request.conversion).await?;
        let window = Duration::days(i64::from(request.window_days.unwrap_or(definition.lookback_days)));
        let merges = Merges::load(&txn, tenant).await?;
        let entrants = entrants(&txn, tenant, request.journey, &merges).await?;
        let (first, last) = entrants.values().fold(
            (None, None),
            |(first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>), e| {
                (
                    Some(first.map_or(e.entered_at, |f| f.min(e.entered_at))),
                    Some(last.map_or(e.entered_at, |l| l.max(e.entered_at))),
                )
            },
        );
        let (Some(first), Some(last)) = (first, last) else {
            return Err(MeasurementError::invalid("no one has entered this journey yet"));
        };
        let conversions =
            load_conversions(&txn, tenant, &definition, first, last + window + Duration::seconds(1)).await?;
        let spend =
            spend_sums(&txn, tenant, first - Duration::days(1), last + window, &definition.currency).await?;
        txn.commit().await?;
        Ok(JourneyData {
            spend: spend.by_campaign.get(&journey.name.to_lowercase()).copied(),
            name: journey.name,
            definition,
            window,
            entrants,
            conversions,
        })
    }

    async fn planned_weights(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        journey: JourneyId,
    ) -> Result<Planned> {
        let versions = self.campaigns().journey_versions(actor, workspace, journey).await?;
        let Some(latest) = versions.iter().max_by_key(|v| v.version) else { return Ok(Planned::Unknown) };
        let Ok(graph) = serde_json::from_value::<JourneyGraph>(latest.graph.clone()) else {
            return Ok(Planned::Unknown);
        };
        for step in &graph.steps {
            match &step.kind {
                StepKind::Split { variants } => {
                    return Ok(Planned::Split(
                        variants.iter().map(|v| (v.name.clone(), f64::from(v.weight))).collect(),
                    ));
                }
                StepKind::Multivariate { .. } => return Ok(Planned::Even),
                _ => {}
            }
        }
        Ok(Planned::Unknown)
    }
}

/// The traffic shares the journey planned, for the sample-ratio check.
enum Planned {
    Split(HashMap<String, f64>),
    /// Multivariate: every combination equally likely.
    Even,
    Unknown,
}

fn window_days(window: Duration) -> u32 {
    u32::try_from(window.num_days()).unwrap_or(0)
}

/// The person's total conversion value in the window after entry; `None` if they did not convert.
fn value_after(data: &JourneyData, person: Uuid, entered_at: DateTime<Utc>) -> Option<f64> {
    let conversions = data.conversions.by_profile.get(&person)?;
    let end = entered_at + data.window;
    let mut found = None;
    for conversion in conversions.iter().filter(|c| c.at > entered_at && c.at <= end) {
        found = Some(found.unwrap_or(0.0) + conversion.value);
    }
    found
}

fn add_person(arm: &mut ArmSummary, value: Option<f64>) {
    arm.people += 1;
    if let Some(value) = value {
        arm.conversions += 1;
        arm.value_sum += value;
        arm.value_sum_sq += value * value;
    }
}

/// `subject=short,colour=red` → its factor levels; a plain arm name has none.
fn factor_levels(label: &str) -> Vec<FactorLevel> {
    if !label.contains('=') {
        return Vec::new();
    }
    label
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(factor, level)| FactorLevel {
            factor: factor.trim().to_owned(),
            level: level.trim().to_owned(),
        })
        .collect()
}

async fn entrants(
    txn: &DatabaseTransaction,
    tenant: Uuid,
    journey: JourneyId,
    merges: &Merges,
) -> Result<HashMap<Uuid, Entrant>> {
    let mut statement = Sql::new(
        "SELECT profile_id, entered_at, holdout, variant FROM journey_enrollments WHERE tenant_id = ",
    );
    statement.bind(tenant).push(" AND journey_id = ").bind(journey.as_uuid());
    let rows = statement.fetch_all(txn).await?;
    let mut entrants: HashMap<Uuid, Entrant> = HashMap::with_capacity(rows.len());
    for row in rows {
        let person = merges.current(row.try_get("", "profile_id")?);
        let entrant = Entrant {
            entered_at: row.try_get("", "entered_at")?,
            holdout: row.try_get("", "holdout")?,
            variant: row.try_get("", "variant")?,
        };
        match entrants.get(&person) {
            Some(first) if first.entered_at <= entrant.entered_at => {}
            _ => {
                entrants.insert(person, entrant);
            }
        }
    }
    Ok(entrants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multivariate_labels_become_factor_levels() {
        let levels = factor_levels("subject=short, colour=red");
        assert_eq!(levels.len(), 2);
        assert_eq!((levels[1].factor.as_str(), levels[1].level.as_str()), ("colour", "red"));
        assert!(factor_levels("A").is_empty());
    }

    #[test]
    fn a_person_counts_once_with_their_total_value() {
        let mut arm = ArmSummary::default();
        add_person(&mut arm, Some(30.0));
        add_person(&mut arm, None);
        add_person(&mut arm, Some(10.0));
        assert_eq!(arm, ArmSummary { people: 3, conversions: 2, value_sum: 40.0, value_sum_sq: 1000.0 });
    }
}
