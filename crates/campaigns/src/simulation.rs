//! Simulation: a journey's draft run against a sample of real profiles with simulated clocks,
//! sending nothing and writing nothing. It uses the executor's own step machine, checks and
//! templates, so it says what the journey would do to these people: how many take each step
//! and each branch, who would be held out, sent to, capped, blocked or deferred, and why.
//! Branch conditions read the data as it is now; a wait for an event assumes the event never
//! comes (the timeout path), and goals, reached only by events, are not taken.

use crate::channels;
use crate::error::{CampaignsError, Result};
use crate::graph::Trigger;
use crate::machine::{Effects, Machine, Run};
use crate::service::{Campaigns, LoadedVersion};
use crate::settings::SendPolicy;
use kernel::{ChannelId, JourneyId, ProfileId, SegmentId, WorkspaceId};
use platform::sql::Sql;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tenancy::{Actor, Permission};
use uuid::Uuid;

pub const MAX_SAMPLE: u32 = 1000;
pub const MAX_HORIZON_DAYS: u32 = 90;
/// Rounds of the machine: each moves everyone to their next wait.
const MAX_ROUNDS: usize = 1000;
/// Profiles named per block reason, so staff can look at examples.
const EXAMPLES: usize = 5;

/// What a journey would do to a sample of people.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    pub people: usize,
    /// Step id → how many times it was taken, in the graph's order.
    pub steps: Vec<(String, usize)>,
    /// Branch step → (took `then`, took `else`).
    pub branches: Vec<(String, usize, usize)>,
    pub variants: Vec<(String, usize)>,
    pub holdout: usize,
    /// Sends by channel kind.
    pub sends: Vec<(String, usize)>,
    /// Messages not sent (or deferred, for quiet hours) by reason, with example profiles.
    pub blocks: Vec<SimulatedBlock>,
    pub completed: usize,
    pub exited: usize,
    /// People still waiting at the end of the horizon, by the step they would take next.
    pub waiting: Vec<(String, usize)>,
}

#[derive(Debug, Clone)]
pub struct SimulatedBlock {
    pub reason: String,
    pub count: usize,
    pub examples: Vec<ProfileId>,
}

impl Campaigns {
    /// Runs the journey's draft against up to `sample` people it would start with (members of
    /// its segment, or the latest performers of its event) for `horizon_days` of simulated time.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, journey = %id))]
    pub async fn simulate_journey(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: JourneyId,
        sample: u32,
        horizon_days: u32,
    ) -> Result<Simulation> {
        if !(1..=MAX_SAMPLE).contains(&sample) || !(1..=MAX_HORIZON_DAYS).contains(&horizon_days) {
            return Err(CampaignsError::invalid(format!(
                "simulate 1 to {MAX_SAMPLE} people over 1 to {MAX_HORIZON_DAYS} days"
            )));
        }
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let tenant = workspace.as_uuid();
        let now = self.now();
        let txn = scope.begin(self.db()).await?;
        let journey = crate::journeys::load(&txn, workspace, id).await?;
        let published =
            self.check_publishable(&txn, &scope, &journey.draft).await?.map_err(CampaignsError::Invalid)?;
        let loaded = Arc::new(LoadedVersion::prepare(published)?);
        let graph = &loaded.published.graph;
        let people: Vec<ProfileId> = match &graph.entry.trigger {
            Trigger::SegmentEntered { segment } | Trigger::Schedule { segment, .. } => {
                segments::journeys::members_page(
                    &txn,
                    &scope,
                    SegmentId::from_uuid(*segment),
                    None,
                    u64::from(sample),
                )
                .await?
            }
            Trigger::EventPerformed { event } => {
                let mut select = Sql::new("SELECT profile_id FROM events WHERE tenant_id = ");
                select
                    .bind(tenant)
                    .push(" AND name = ")
                    .bind(event.clone())
                    .push(" AND profile_id IS NOT NULL GROUP BY profile_id ORDER BY MAX(occurred_at) DESC LIMIT ")
                    .bind(i64::from(sample));
                select
                    .fetch_all(&txn)
                    .await?
                    .iter()
                    .map(|row| Ok(ProfileId::from_uuid(row.try_get("", "profile_id")?)))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let sheets = profiles::contact::contact_sheets(&txn, &scope, &people).await?;
        let policy = SendPolicy::load(&txn, tenant, now, &people).await?;
        let channel_ids: Vec<ChannelId> =
            graph.sends().map(|(_, channel, _)| ChannelId::from_uuid(channel)).collect();
        let channels_by_id = channels::load_many(&txn, workspace, channel_ids).await?;
        // The draft runs as version 0: no published version has that number.
        let versions = HashMap::from([((id, 0), loaded.clone())]);
        let names = HashMap::from([(id, journey.name.clone())]);
        let machine = Machine {
            versions: &versions,
            sheets: &sheets,
            policy: &policy,
            channels: &channels_by_id,
            journey_names: &names,
            evaluated_at: now,
        };
        let mut runs: Vec<Run> = people
            .iter()
            .map(|profile| Run {
                id: Uuid::now_v7(),
                journey: id,
                version: 0,
                profile: *profile,
                step: graph.entry.next.clone(),
                sequence: 0,
                status: "active",
                due_at: None,
                variant: None,
                holdout: false,
                waiting_for: None,
                waiting_since: None,
                parked: false,
                clock: now,
            })
            .collect();
        let horizon = now + chrono::Duration::days(i64::from(horizon_days));
        let mut effects = Effects::default();
        for _ in 0..MAX_ROUNDS {
            machine.run(&txn, &scope, &mut runs, &mut effects).await?;
            let mut moving = false;
            for run in runs.iter_mut().filter(|r| r.status == "active") {
                match run.due_at.take() {
                    // Time passes for this person alone.
                    Some(due) if due <= horizon => {
                        run.clock = due.max(run.clock);
                        run.parked = false;
                        moving = true;
                    }
                    Some(due) => run.due_at = Some(due),
                    None if !run.parked => moving = true,
                    None => {}
                }
            }
            if !moving {
                break;
            }
        }
        txn.commit().await?;
        Ok(summarise(graph.steps.iter().map(|s| s.id.as_str()), &runs, effects))
    }
}

fn summarise<'a>(order: impl Iterator<Item = &'a str>, runs: &[Run], effects: Effects) -> Simulation {
    let order: Vec<&str> = order.collect();
    let position = |step: &str| order.iter().position(|s| *s == step).unwrap_or(usize::MAX);
    let mut steps: Vec<(String, usize)> = effects.visits.into_iter().filter(|(_, n)| *n > 0).collect();
    steps.sort_by_key(|(step, _)| position(step));
    let mut branches: Vec<(String, usize, usize)> =
        effects.branches.into_iter().map(|(step, (then, otherwise))| (step, then, otherwise)).collect();
    branches.sort_by_key(|(step, _, _)| position(step));
    let mut variants: BTreeMap<String, usize> = BTreeMap::new();
    let mut waiting: BTreeMap<String, usize> = BTreeMap::new();
    let (mut holdout, mut completed, mut exited) = (0, 0, 0);
    for run in runs {
        if let Some(variant) = &run.variant {
            *variants.entry(variant.clone()).or_default() += 1;
        }
        holdout += usize::from(run.holdout);
        match run.status {
            "completed" => completed += 1,
            "exited" => exited += 1,
            _ => *waiting.entry(run.step.clone()).or_default() += 1,
        }
    }
    let mut sends: BTreeMap<String, usize> = BTreeMap::new();
    for send in &effects.sends {
        *sends.entry(send.kind.as_str().to_owned()).or_default() += 1;
    }
    let mut blocks: BTreeMap<String, SimulatedBlock> = BTreeMap::new();
    for block in &effects.blocks {
        let entry = blocks.entry(block.reason.to_owned()).or_insert_with(|| SimulatedBlock {
            reason: block.reason.to_owned(),
            count: 0,
            examples: Vec::new(),
        });
        entry.count += 1;
        if entry.examples.len() < EXAMPLES && !entry.examples.contains(&block.profile) {
            entry.examples.push(block.profile);
        }
    }
    Simulation {
        people: runs.len(),
        steps,
        branches,
        variants: variants.into_iter().collect(),
        holdout,
        sends: sends.into_iter().collect(),
        blocks: blocks.into_values().collect(),
        completed,
        exited,
        waiting: waiting.into_iter().collect(),
    }
}
