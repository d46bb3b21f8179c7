//! The step machine: moves people through a journey version's steps until each waits or ends,
//! deciding sends with every check made at that person's moment. The executor runs it on due
//! enrollments and writes what it decided; a simulation runs it on a sample with simulated
//! clocks and writes nothing. One machine, so a simulation tells what the executor would do.

use crate::channel::{ChannelKind, DeliveryMode};
use crate::channels::Channel;
use crate::error::Result;
use crate::executor::PURPOSE;
use crate::graph::StepKind;
use crate::service::LoadedVersion;
use crate::{assignment, settings};
use chrono::{DateTime, Utc};
use kernel::{ChannelId, ContentId, JourneyId, ProfileId};
use platform::TenantScope;
use profiles::consent::ContactDecision;
use profiles::contact::ContactSheet;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Steps one person may take in one run: every loop passes through a wait, so a run always
/// parks; this only bounds its work.
const MAX_STEPS_PER_RUN: usize = 64;

/// One enrollment as the executor moves it.
pub(crate) struct Run {
    pub(crate) id: Uuid,
    pub(crate) journey: JourneyId,
    pub(crate) version: i32,
    pub(crate) profile: ProfileId,
    pub(crate) step: String,
    pub(crate) sequence: i32,
    pub(crate) status: &'static str,
    pub(crate) due_at: Option<DateTime<Utc>>,
    pub(crate) variant: Option<String>,
    pub(crate) holdout: bool,
    /// The event awaited at a wait-for-event step, and since when.
    pub(crate) waiting_for: Option<String>,
    pub(crate) waiting_since: Option<DateTime<Utc>>,
    pub(crate) parked: bool,
    /// The person's own time: now for the executor, a simulated clock for a simulation.
    pub(crate) clock: DateTime<Utc>,
}

/// A send decided in this round, for the outbox and the touchpoints.
pub(crate) struct QueuedSend {
    pub(crate) key: String,
    pub(crate) enrollment: Uuid,
    pub(crate) journey: JourneyId,
    pub(crate) step: String,
    pub(crate) channel: ChannelId,
    pub(crate) kind: ChannelKind,
    pub(crate) profile: ProfileId,
    pub(crate) variant: Option<String>,
    pub(crate) payload: Value,
}

/// Why someone did not receive a message, recorded for the journey's report.
pub(crate) struct Block {
    pub(crate) journey: JourneyId,
    pub(crate) enrollment: Uuid,
    pub(crate) step: String,
    pub(crate) profile: ProfileId,
    pub(crate) channel: Option<ChannelId>,
    pub(crate) reason: &'static str,
    pub(crate) detail: Option<String>,
}

/// The offer a journey chose for a person on a decision channel (what a website, kiosk or
/// call centre shows them next time it asks).
pub(crate) struct Offer {
    pub(crate) channel: ChannelId,
    pub(crate) profile: ProfileId,
    pub(crate) journey: JourneyId,
    pub(crate) step: String,
    pub(crate) variant: Option<String>,
    pub(crate) content: Value,
}

/// What a run decided.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) steps: usize,
    pub(crate) sends: Vec<QueuedSend>,
    pub(crate) offers: Vec<Offer>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) trait_updates: HashMap<ProfileId, Map<String, Value>>,
    pub(crate) sent_now: settings::SendCounts,
    /// Times each step was taken.
    pub(crate) visits: HashMap<String, usize>,
    /// Per branch step: how many took `then`, how many `else`.
    pub(crate) branches: HashMap<String, (usize, usize)>,
}

/// Everything the machine reads.
pub(crate) struct Machine<'a> {
    pub(crate) versions: &'a HashMap<(JourneyId, i32), Arc<LoadedVersion>>,
    pub(crate) sheets: &'a HashMap<ProfileId, ContactSheet>,
    pub(crate) policy: &'a settings::SendPolicy,
    pub(crate) channels: &'a HashMap<ChannelId, Channel>,
    pub(crate) journey_names: &'a HashMap<JourneyId, String>,
    /// When branch conditions are evaluated (on the data as it is now).
    pub(crate) evaluated_at: DateTime<Utc>,
}

impl Machine<'_> {
    /// Moves every unparked run until it waits, ends, or takes [`MAX_STEPS_PER_RUN`] steps.
    pub(crate) async fn run<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &TenantScope,
        runs: &mut [Run],
        effects: &mut Effects,
    ) -> Result<()> {
        for _ in 0..MAX_STEPS_PER_RUN {
            // Branches are decided together, one query per condition, after the other steps.
            let mut branching: HashMap<(JourneyId, i32, String), Vec<usize>> = HashMap::new();
            let mut moved = false;
            for (index, run) in runs.iter_mut().enumerate() {
                if run.parked {
                    continue;
                }
                let loaded = &self.versions[&(run.journey, run.version)];
                let Some(step) = loaded.published.graph.step(&run.step) else {
                    // Validation makes this impossible; end the passage rather than loop.
                    run.status = "completed";
                    run.parked = true;
                    continue;
                };
                let sheet = self.sheets.get(&run.profile);
                if sheet.is_none() {
                    // Erased or never existed: nothing more to do for them.
                    run.status = "exited";
                    run.parked = true;
                    continue;
                }
                effects.steps += 1;
                *effects.visits.entry(run.step.clone()).or_default() += 1;
                run.sequence += 1;
                moved = true;
                match &step.kind {
                    StepKind::Wait { seconds, next } => {
                        run.step = next.clone();
                        run.due_at = Some(run.clock + chrono::Duration::seconds(*seconds as i64));
                        run.parked = true;
                    }
                    StepKind::WaitUntil { time, next } => {
                        let timezone = self.policy.timezone_of(sheet.map(|s| &s.traits));
                        run.step = next.clone();
                        run.due_at = Some(settings::next_time_of_day(time, timezone, run.clock));
                        run.parked = true;
                    }
                    StepKind::Branch { .. } => {
                        run.sequence -= 1;
                        effects.steps -= 1;
                        *effects.visits.entry(run.step.clone()).or_default() -= 1;
                        branching
                            .entry((run.journey, run.version, run.step.clone()))
                            .or_default()
                            .push(index);
                    }
                    StepKind::Split { variants } => {
                        let weights: Vec<u32> = variants.iter().map(|v| v.weight).collect();
                        let seed = format!("{}:{}", run.journey, step.id);
                        let chosen = assignment::choose(&seed, run.profile.as_uuid(), &weights).unwrap_or(0);
                        if let Some(variant) = variants.get(chosen) {
                            run.variant = Some(variant.name.clone());
                            run.step = variant.next.clone();
                        }
                    }
                    StepKind::Multivariate { factors, next } => {
                        let levels: Vec<String> = factors
                            .iter()
                            .map(|factor| {
                                // One independent draw per factor: its own seed.
                                let seed = format!("{}:{}:{}", run.journey, step.id, factor.name);
                                let weights = vec![1; factor.levels.len()];
                                let chosen =
                                    assignment::choose(&seed, run.profile.as_uuid(), &weights).unwrap_or(0);
                                format!(
                                    "{}={}",
                                    factor.name,
                                    factor.levels.get(chosen).map_or("", |l| l.as_str())
                                )
                            })
                            .collect();
                        run.variant = Some(levels.join(","));
                        run.step = next.clone();
                    }
                    StepKind::Holdout { percent, next } => {
                        let seed = format!("{}:{}", run.journey, step.id);
                        if assignment::in_holdout(&seed, run.profile.as_uuid(), *percent) {
                            run.holdout = true;
                            run.status = "exited";
                            run.parked = true;
                            effects.blocks.push(Block {
                                journey: run.journey,
                                enrollment: run.id,
                                step: step.id.clone(),
                                profile: run.profile,
                                channel: None,
                                reason: "holdout",
                                detail: None,
                            });
                        } else {
                            run.step = next.clone();
                        }
                    }
                    StepKind::Send { channel, content, next } => {
                        let channel = &self.channels[&ChannelId::from_uuid(*channel)];
                        let Some(sheet) = sheet else { continue };
                        let decision = decide_send(self.policy, &effects.sent_now, sheet, channel, run.clock);
                        match decision {
                            SendDecision::Defer(until) => {
                                run.due_at = Some(until);
                                run.parked = true;
                                effects.blocks.push(block(
                                    run,
                                    &step.id,
                                    channel,
                                    "quiet_hours",
                                    Some(until.to_rfc3339()),
                                ));
                                continue;
                            }
                            SendDecision::Block(reason) => {
                                effects.blocks.push(block(run, &step.id, channel, reason, None));
                            }
                            SendDecision::Send => {
                                let context = render_context(sheet, self.journey_names, run, &step.id);
                                let content = ContentId::from_uuid(*content);
                                match loaded.render(content, channel.kind, &context) {
                                    Ok(rendered) if channel.delivery.mode() == DeliveryMode::Decision => {
                                        effects.offers.push(Offer {
                                            channel: channel.id,
                                            profile: run.profile,
                                            journey: run.journey,
                                            step: step.id.clone(),
                                            variant: run.variant.clone(),
                                            content: serde_json::to_value(&rendered.fields)
                                                .unwrap_or_default(),
                                        });
                                    }
                                    Ok(rendered) => {
                                        effects.sent_now.add(run.profile, channel.kind, run.clock);
                                        effects.sends.push(QueuedSend {
                                            key: format!("{}:{}", run.id, run.sequence),
                                            enrollment: run.id,
                                            journey: run.journey,
                                            step: step.id.clone(),
                                            channel: channel.id,
                                            kind: channel.kind,
                                            profile: run.profile,
                                            variant: run.variant.clone(),
                                            payload: payload(sheet, channel, rendered),
                                        });
                                    }
                                    Err(error) => {
                                        let detail = Some(error.to_string());
                                        effects.blocks.push(block(
                                            run,
                                            &step.id,
                                            channel,
                                            "render_failed",
                                            detail,
                                        ));
                                    }
                                }
                            }
                        }
                        run.step = next.clone();
                    }
                    StepKind::UpdateTrait { name, value, next } => {
                        effects
                            .trait_updates
                            .entry(run.profile)
                            .or_default()
                            .insert(name.clone(), value.clone());
                        run.step = next.clone();
                    }
                    StepKind::Goal { next, .. } => match next {
                        Some(next) => run.step = next.clone(),
                        None => {
                            run.status = "completed";
                            run.parked = true;
                        }
                    },
                    StepKind::WaitForEvent { event, timeout_seconds, timeout_next, .. } => {
                        if run.waiting_for.is_none() {
                            // Start waiting; the event moves them on (see `events`), else
                            // the timeout brings them back here.
                            run.waiting_for = Some(event.clone());
                            run.waiting_since = Some(run.clock);
                            run.due_at = Some(run.clock + chrono::Duration::seconds(*timeout_seconds as i64));
                            run.parked = true;
                        } else {
                            run.waiting_for = None;
                            run.waiting_since = None;
                            run.step = timeout_next.clone();
                        }
                    }
                    StepKind::Exit => {
                        run.status = "completed";
                        run.parked = true;
                    }
                }
            }
            for ((journey, version, step_id), indexes) in branching {
                let loaded = &self.versions[&(journey, version)];
                let Some(StepKind::Branch { then, otherwise, .. }) =
                    loaded.published.graph.step(&step_id).map(|s| &s.kind)
                else {
                    continue;
                };
                let condition = loaded.condition(&step_id)?;
                let people: Vec<ProfileId> = indexes.iter().map(|&i| runs[i].profile).collect();
                let matching =
                    segments::journeys::matching(conn, scope, condition, &people, self.evaluated_at).await?;
                for i in indexes {
                    let run = &mut runs[i];
                    run.step = if matching.contains(&run.profile) { then.clone() } else { otherwise.clone() };
                    run.sequence += 1;
                    effects.steps += 1;
                    *effects.visits.entry(step_id.clone()).or_default() += 1;
                    let outcome = effects.branches.entry(step_id.clone()).or_default();
                    if matching.contains(&run.profile) {
                        outcome.0 += 1
                    } else {
                        outcome.1 += 1
                    }
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }
}

enum SendDecision {
    Send,
    Block(&'static str),
    Defer(DateTime<Utc>),
}

/// Every check a send must pass at the moment it is made, in the order a marketer reads them.
fn decide_send(
    policy: &settings::SendPolicy,
    sent_now: &settings::SendCounts,
    sheet: &ContactSheet,
    channel: &Channel,
    now: DateTime<Utc>,
) -> SendDecision {
    match sheet.decision(PURPOSE, channel.kind.as_str(), now) {
        ContactDecision::Allowed => {}
        ContactDecision::Minor => return SendDecision::Block("minor"),
        ContactDecision::NoConsent => return SendDecision::Block("no_consent"),
        ContactDecision::ConsentWithdrawn => return SendDecision::Block("consent_withdrawn"),
    }
    // Suppressed addresses (hard bounces, complaints, do-not-contact lists) are already left
    // out of the sheet; they are counted so the report can tell why nobody was reachable.
    if let Some(kind) = channel.kind.address_kind()
        && let (usable, suppressed) = sheet.addresses(&kind)
        && usable.is_empty()
    {
        return SendDecision::Block(if suppressed > 0 { "suppressed" } else { "no_address" });
    }
    // An inbound channel shows the offer when the person is there and asks: no contact is
    // made, so caps and quiet hours do not apply.
    if channel.delivery.mode() == DeliveryMode::Decision {
        return SendDecision::Send;
    }
    if policy.capped(sheet.id, channel.kind, sent_now, now) {
        return SendDecision::Block("frequency_cap");
    }
    if let Some(until) = policy.quiet_until(&sheet.traits, now) {
        return SendDecision::Defer(until);
    }
    SendDecision::Send
}

fn block(run: &Run, step: &str, channel: &Channel, reason: &'static str, detail: Option<String>) -> Block {
    Block {
        journey: run.journey,
        enrollment: run.id,
        step: step.to_owned(),
        profile: run.profile,
        channel: Some(channel.id),
        reason,
        detail,
    }
}

fn render_context(sheet: &ContactSheet, names: &HashMap<JourneyId, String>, run: &Run, step: &str) -> Value {
    let mut profile = sheet.traits.clone();
    profile.insert("id".into(), Value::String(sheet.id.to_string()));
    serde_json::json!({
        "profile": profile,
        "journey": {"name": names.get(&run.journey).cloned().unwrap_or_default(), "step": step},
        "experiment": experiment_levels(run.variant.as_deref()),
    })
}

/// The levels of a multivariate variant (`subject=short,image=b`) as `experiment.<factor>`;
/// empty for an A/B/n arm or no experiment, so a template using a factor the person was not
/// assigned fails to render rather than showing a blank.
pub(crate) fn experiment_levels(variant: Option<&str>) -> Map<String, Value> {
    variant
        .into_iter()
        .flat_map(|variant| variant.split(','))
        .filter_map(|pair| pair.split_once('='))
        .map(|(factor, level)| (factor.to_owned(), Value::String(level.to_owned())))
        .collect()
}

/// What an adapter receives: who, where, and the rendered content.
fn payload(sheet: &ContactSheet, channel: &Channel, rendered: crate::content::Rendered) -> Value {
    serde_json::json!({
        "channel": channel.kind.as_str(),
        "profile": {
            "id": sheet.id.to_string(),
            "email": sheet.emails.first(),
            "phone": sheet.phones.first(),
        },
        "content": rendered.fields,
    })
}
