//! A marketing journey as a graph of steps.
//!
//! The builder UI saves a journey as JSON. [`JourneyGraph::parse`] only checks that the JSON has
//! the right shape, so unfinished drafts can still be stored; [`JourneyGraph::validate`] is the
//! gate before publishing and reports *every* problem at once, because the builder highlights
//! all of them on the canvas instead of making the marketer fix one error per save.
//!
//! The structural rules exist to protect the executor: every person who enters must be able to
//! leave (`never_ends`), and nobody may spin through a loop without pausing
//! (`loop_without_wait`), otherwise one profile could send unlimited messages in a tight loop.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Largest journey the builder may publish; bounds the executor's per-journey work.
pub const MAX_STEPS: usize = 200;
/// Step ids appear in URLs, logs and analytics keys, so they stay short.
pub const MAX_STEP_ID_CHARS: usize = 64;
/// Longest single pause (a leap year). Longer waits are almost always a typo in the unit.
pub const MAX_WAIT_SECONDS: u64 = 366 * 86_400;
/// Factors of one multivariate step.
pub const MAX_FACTORS: usize = 4;
/// Levels of one factor.
pub const MAX_FACTOR_LEVELS: usize = 6;
/// The longest period of a repeating schedule.
pub const MAX_SCHEDULE_EVERY_DAYS: u32 = 366;
/// A split needs at least two variants to be an experiment.
pub const MIN_SPLIT_VARIANTS: usize = 2;
/// More variants than this would leave each one too few people to learn anything.
pub const MAX_SPLIT_VARIANTS: usize = 10;
/// Weights are relative; capping the total keeps them human-sized (percentages, basis points).
pub const MAX_SPLIT_TOTAL_WEIGHT: u64 = 10_000;
/// Variant names show up in reports and as experiment labels.
pub const MAX_VARIANT_NAME_CHARS: usize = 64;
/// Event names are matched against tracked events, which share this limit.
pub const MAX_EVENT_NAME_CHARS: usize = 200;
/// Trait names share the profile trait naming rules.
pub const MAX_TRAIT_NAME_CHARS: usize = 64;
/// Objects/arrays nested deeper than this are not usable in segment conditions.
pub const MAX_TRAIT_VALUE_NESTING: usize = 3;
/// A trait value is stored on every profile the step touches, so it must stay small.
pub const MAX_TRAIT_VALUE_BYTES: usize = 4 * 1024;

/// Stable machine-readable problem codes. The builder UI and API clients match on these, so they
/// must never be renamed.
pub mod codes {
    /// The JSON does not have the shape of a journey (unknown step type, missing field, ...).
    pub const MALFORMED: &str = "malformed";
    /// More than [`super::MAX_STEPS`] steps.
    pub const TOO_MANY_STEPS: &str = "too_many_steps";
    /// A step id is empty, too long or uses characters other than `[a-z0-9_-]`.
    pub const INVALID_STEP_ID: &str = "invalid_step_id";
    /// Two steps share an id.
    pub const DUPLICATE_STEP: &str = "duplicate_step";
    /// A step (or the entry) points to an id that no step has.
    pub const UNKNOWN_STEP: &str = "unknown_step";
    /// The entry points straight at a goal step.
    pub const ENTRY_IS_GOAL: &str = "entry_is_goal";
    /// A step can never be reached from the entry (and is not a goal).
    pub const ORPHAN_STEP: &str = "orphan_step";
    /// From this step no exit (or ending goal) can be reached.
    pub const NEVER_ENDS: &str = "never_ends";
    /// A cycle in the graph contains no wait step.
    pub const LOOP_WITHOUT_WAIT: &str = "loop_without_wait";
    /// A wait (or a wait-for-event timeout) is outside 1 second ..= 366 days.
    pub const INVALID_WAIT: &str = "invalid_wait";
    /// A wait-until time is not `HH:MM`.
    pub const INVALID_TIME: &str = "invalid_time";
    /// A split has a bad variant count, weight or variant name.
    pub const INVALID_SPLIT: &str = "invalid_split";
    /// A holdout percentage is outside 1 ..= 99.
    pub const INVALID_HOLDOUT: &str = "invalid_holdout";
    /// An event name is empty, too long or contains control characters.
    pub const INVALID_EVENT: &str = "invalid_event";
    /// An update-trait step has a bad trait name or an oversized/too deeply nested value.
    pub const INVALID_TRAIT: &str = "invalid_trait";
    /// Two goal steps listen for the same event.
    pub const DUPLICATE_GOAL: &str = "duplicate_goal";
    /// A schedule that repeats more often than daily or less often than yearly.
    pub const INVALID_SCHEDULE: &str = "invalid_schedule";
}

/// One problem found while parsing or validating a journey.
///
/// `code` is for programs, `message` is for the marketer, `step` lets the builder highlight the
/// offending node (`None` means the journey as a whole or its entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct GraphProblem {
    /// One of the constants in [`codes`].
    pub code: &'static str,
    /// The id of the step the problem is about, if any.
    pub step: Option<String>,
    /// A complete sentence a marketer can act on.
    pub message: String,
}

/// A journey: how people enter, and the steps they walk through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyGraph {
    pub entry: Entry,
    pub steps: Vec<Step>,
}

/// How people enter a journey and where they go first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub trigger: Trigger,
    /// Id of the first step.
    pub next: String,
}

/// What makes a person enter the journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Someone enters a segment.
    SegmentEntered { segment: Uuid },
    /// Someone performs an event.
    EventPerformed { event: String },
    /// Everyone in a segment at a given time, once or every `every_days` days at the same local
    /// time in the workspace's timezone (see [`crate::schedule`]).
    Schedule {
        at: DateTime<Utc>,
        segment: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_days: Option<u32>,
    },
}

/// One node of the journey. The JSON is flat: `{"id": "...", "type": "wait", "seconds": 60, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// What a step does. Every variant except [`StepKind::Exit`] names the step(s) that follow.
///
/// `deny_unknown_fields` here also covers [`Step`], because a flattened enum receives every key
/// the step itself does not consume (serde does not support the attribute on `Step` directly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepKind {
    /// Pause for a fixed duration.
    Wait { seconds: u64, next: String },
    /// Pause until the next occurrence of a time of day (`"HH:MM"`, 24h) in the profile's timezone.
    WaitUntil { time: String, next: String },
    /// Pause until the person performs `event`, or until the timeout elapses.
    WaitForEvent { event: String, timeout_seconds: u64, next: String, timeout_next: String },
    /// Go to `then` if the person matches the segment condition, else to `otherwise`.
    /// The condition is validated by the segments module, not here.
    Branch {
        condition: serde_json::Value,
        then: String,
        #[serde(rename = "else")]
        otherwise: String,
    },
    /// A/B/n random split (see [`crate::assignment::choose`]).
    Split { variants: Vec<SplitVariant> },
    /// A multivariate test: each factor's level is drawn independently and evenly, so every
    /// combination is equally likely. Content reads the person's levels as
    /// `experiment.<factor>`; the person's variant is recorded as `factor=level,…`.
    Multivariate { factors: Vec<Factor>, next: String },
    /// `percent` of people are a control group that leaves here (and is recorded as such);
    /// the rest go to `next`.
    Holdout { percent: u8, next: String },
    /// Send `content` over `channel`.
    Send { channel: Uuid, content: Uuid, next: String },
    /// Set a profile trait.
    UpdateTrait { name: String, value: serde_json::Value, next: String },
    /// A conversion: when the person performs `event` while in the journey they jump here.
    /// `next: None` ends the journey.
    Goal {
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Leave the journey.
    Exit,
}

/// One factor of a [`StepKind::Multivariate`] and its levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factor {
    pub name: String,
    pub levels: Vec<String>,
}

/// One arm of a [`StepKind::Split`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitVariant {
    pub name: String,
    /// Relative weight; the chance of this arm is `weight / sum of weights`.
    pub weight: u32,
    pub next: String,
}

impl StepKind {
    /// The ids this step can lead to via an edge, in a stable order (for goals: only `next`;
    /// the goal itself is entered by its event, not by an edge).
    #[must_use]
    pub fn successors(&self) -> Vec<&str> {
        self.labelled_references().into_iter().map(|(_, target)| target).collect()
    }

    /// Whether people pause on this step. Loops are only allowed through such steps.
    #[must_use]
    pub fn is_wait(&self) -> bool {
        matches!(self, Self::Wait { .. } | Self::WaitUntil { .. } | Self::WaitForEvent { .. })
    }

    /// Whether reaching this step ends the journey for the person.
    #[must_use]
    pub fn ends_journey(&self) -> bool {
        matches!(self, Self::Exit | Self::Goal { next: None, .. })
    }

    /// Every outgoing reference with a phrase describing it, for error messages.
    fn labelled_references(&self) -> Vec<(ReferenceLabel<'_>, &str)> {
        match self {
            Self::Wait { next, .. }
            | Self::WaitUntil { next, .. }
            | Self::Holdout { next, .. }
            | Self::Multivariate { next, .. }
            | Self::Send { next, .. }
            | Self::UpdateTrait { next, .. } => vec![(ReferenceLabel::Next, next.as_str())],
            Self::WaitForEvent { next, timeout_next, .. } => {
                vec![
                    (ReferenceLabel::Next, next.as_str()),
                    (ReferenceLabel::OnTimeout, timeout_next.as_str()),
                ]
            }
            Self::Branch { then, otherwise, .. } => {
                vec![(ReferenceLabel::Then, then.as_str()), (ReferenceLabel::Else, otherwise.as_str())]
            }
            Self::Split { variants } => variants
                .iter()
                .map(|variant| (ReferenceLabel::Variant(variant.name.as_str()), variant.next.as_str()))
                .collect(),
            Self::Goal { next, .. } => {
                next.iter().map(|next| (ReferenceLabel::Next, next.as_str())).collect()
            }
            Self::Exit => Vec::new(),
        }
    }
}

/// Which edge of a step a reference is, so an `unknown_step` message can say which arm is wrong.
enum ReferenceLabel<'a> {
    Next,
    OnTimeout,
    Then,
    Else,
    Variant(&'a str),
}

impl ReferenceLabel<'_> {
    fn describe(&self) -> String {
        match self {
            Self::Next => String::new(),
            Self::OnTimeout => " (on timeout)".to_owned(),
            Self::Then => " (when the condition matches)".to_owned(),
            Self::Else => " (when the condition does not match)".to_owned(),
            Self::Variant(name) => format!(" (variant {name:?})"),
        }
    }
}

/// Parses a wait-until time: exactly `HH:MM`, 24-hour, `00:00` ..= `23:59`.
///
/// Deliberately strict (no `9:30`, no seconds, no `am/pm`) so that what the builder shows is
/// exactly what the executor schedules.
#[must_use]
pub fn parse_time_of_day(text: &str) -> Option<NaiveTime> {
    let &[hour_tens, hour_units, b':', minute_tens, minute_units] = text.as_bytes() else {
        return None;
    };
    let hours = two_digit_number(hour_tens, hour_units)?;
    let minutes = two_digit_number(minute_tens, minute_units)?;
    NaiveTime::from_hms_opt(hours, minutes, 0)
}

fn two_digit_number(tens: u8, units: u8) -> Option<u32> {
    (tens.is_ascii_digit() && units.is_ascii_digit())
        .then(|| u32::from(tens - b'0') * 10 + u32::from(units - b'0'))
}

impl JourneyGraph {
    /// Reads a journey from JSON. Only the shape is checked; call [`Self::validate`] before
    /// publishing. A shape error is returned as a single `malformed` problem so callers can
    /// treat parse and validation failures the same way.
    ///
    /// # Errors
    ///
    /// A single [`codes::MALFORMED`] problem carrying serde's explanation.
    pub fn parse(json: &serde_json::Value) -> Result<Self, Vec<GraphProblem>> {
        Self::deserialize(json).map_err(|error| vec![malformed_problem(json, &error)])
    }

    /// [`Self::parse`] followed by [`Self::validate`]: what the publish endpoint needs.
    ///
    /// # Errors
    ///
    /// The errors of whichever of the two steps fails first.
    pub fn parse_and_validate(json: &serde_json::Value) -> Result<Self, Vec<GraphProblem>> {
        let graph = Self::parse(json)?;
        graph.validate()?;
        Ok(graph)
    }

    /// Checks every publishing rule and returns all problems found.
    ///
    /// Problems are ordered by where they are: journey-wide and entry problems first, then by
    /// the position of the step in `steps`, then by code; problems with the same position and
    /// code keep the order in which they were found (e.g. split variants in order). The order is
    /// therefore stable for a given journey.
    ///
    /// # Errors
    ///
    /// Every problem found, never an empty list.
    pub fn validate(&self) -> Result<(), Vec<GraphProblem>> {
        let mut report = ProblemReport::default();
        let index = StepIndex::build(self, &mut report);
        self.check_trigger(&mut report);
        self.check_references(&index, &mut report);
        for (position, step) in self.steps.iter().enumerate() {
            check_step_settings(position, step, &mut report);
        }
        self.check_duplicate_goals(&mut report);
        let topology = Topology::build(self, &index);
        topology.check_reachable_from_entry(self, &index, &mut report);
        topology.check_every_path_ends(self, &mut report);
        topology.check_loops_contain_a_wait(self, &mut report);
        report.into_result()
    }

    /// The step with this id (the first one, should a not-yet-validated draft repeat an id).
    #[must_use]
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id == id)
    }

    /// The step people go to when they enter.
    #[must_use]
    pub fn first_step(&self) -> Option<&Step> {
        self.step(&self.entry.next)
    }

    /// `(goal step id, event)` for every goal; the executor listens for these events while a
    /// person is in the journey.
    pub fn goals(&self) -> impl Iterator<Item = (&str, &str)> {
        self.steps.iter().filter_map(|step| match &step.kind {
            StepKind::Goal { event, .. } => Some((step.id.as_str(), event.as_str())),
            _ => None,
        })
    }

    /// `(step id, channel, content)` for every send step, e.g. to check that channels and
    /// contents exist and belong to the workspace before publishing.
    pub fn sends(&self) -> impl Iterator<Item = (&str, Uuid, Uuid)> {
        self.steps.iter().filter_map(|step| match &step.kind {
            StepKind::Send { channel, content, .. } => Some((step.id.as_str(), *channel, *content)),
            _ => None,
        })
    }

    /// `(step id, condition)` for every branch, so the segments module can validate conditions.
    pub fn branch_conditions(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.steps.iter().filter_map(|step| match &step.kind {
            StepKind::Branch { condition, .. } => Some((step.id.as_str(), condition)),
            _ => None,
        })
    }

    fn check_trigger(&self, report: &mut ProblemReport) {
        if let Trigger::EventPerformed { event } = &self.entry.trigger
            && let Some(reason) = event_name_problem(event)
        {
            report.journey_wide(codes::INVALID_EVENT, format!("The entry event name {reason}."));
        }
        if let Trigger::Schedule { every_days: Some(days), .. } = &self.entry.trigger
            && !(1..=MAX_SCHEDULE_EVERY_DAYS).contains(days)
        {
            report.journey_wide(
                codes::INVALID_SCHEDULE,
                format!("A schedule repeats every 1 to {MAX_SCHEDULE_EVERY_DAYS} days, not {days}."),
            );
        }
    }

    fn check_references(&self, index: &StepIndex<'_>, report: &mut ProblemReport) {
        let entry_target = self.entry.next.as_str();
        match index.position_of(entry_target) {
            None => report.journey_wide(
                codes::UNKNOWN_STEP,
                format!("The entry points to step {entry_target:?}, which does not exist."),
            ),
            Some(position) if matches!(self.steps[position].kind, StepKind::Goal { .. }) => report
                .journey_wide(
                    codes::ENTRY_IS_GOAL,
                    format!(
                        "The entry points to goal step {entry_target:?}; goals are reached when someone \
                         performs their event, so the entry must lead to another step."
                    ),
                ),
            Some(_) => {}
        }
        for (position, step) in self.steps.iter().enumerate() {
            for (label, target) in step.kind.labelled_references() {
                if index.position_of(target).is_none() {
                    report.at_step(
                        position,
                        &step.id,
                        codes::UNKNOWN_STEP,
                        format!(
                            "Step {:?}{} points to step {target:?}, which does not exist.",
                            step.id,
                            label.describe()
                        ),
                    );
                }
            }
        }
    }

    fn check_duplicate_goals(&self, report: &mut ProblemReport) {
        let mut first_goal_for_event: HashMap<&str, &str> = HashMap::new();
        for (position, step) in self.steps.iter().enumerate() {
            let StepKind::Goal { event, .. } = &step.kind else { continue };
            match first_goal_for_event.get(event.as_str()) {
                Some(first_goal) => report.at_step(
                    position,
                    &step.id,
                    codes::DUPLICATE_GOAL,
                    format!(
                        "Steps {first_goal:?} and {:?} are both goals for the event {event:?}; each event \
                         can be the goal of only one step.",
                        step.id
                    ),
                ),
                None => {
                    first_goal_for_event.insert(event, &step.id);
                }
            }
        }
    }
}

/// Turns a serde error into the single `malformed` problem. serde's message does not say which
/// step is broken, so the steps are re-read one by one to find the first bad one and name it.
fn malformed_problem(json: &serde_json::Value, whole_journey_error: &serde_json::Error) -> GraphProblem {
    let raw_steps = json.get("steps").and_then(serde_json::Value::as_array).into_iter().flatten();
    for (number, raw_step) in (1..).zip(raw_steps) {
        let Err(step_error) = Step::deserialize(raw_step) else { continue };
        let id = raw_step.get("id").and_then(serde_json::Value::as_str);
        let message = match id {
            Some(id) => format!("Step {id:?} could not be read: {step_error}."),
            None => format!("Step number {number} could not be read: {step_error}."),
        };
        return GraphProblem { code: codes::MALFORMED, step: id.map(str::to_owned), message };
    }
    GraphProblem {
        code: codes::MALFORMED,
        step: None,
        message: format!("The journey could not be read: {whole_journey_error}."),
    }
}

/// Checks of a single step's own settings (everything that does not need the rest of the graph).
fn check_step_settings(position: usize, step: &Step, report: &mut ProblemReport) {
    let id = step.id.as_str();
    match &step.kind {
        StepKind::Wait { seconds, .. } => {
            if !is_valid_wait(*seconds) {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_WAIT,
                    format!(
                        "Step {id:?} waits {seconds} seconds; a wait must last between 1 second and 366 days."
                    ),
                );
            }
        }
        StepKind::WaitUntil { time, .. } => {
            if parse_time_of_day(time).is_none() {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_TIME,
                    format!(
                        "Step {id:?} waits until {time:?}, which is not a time of day in 24-hour HH:MM form \
                         (for example \"09:30\")."
                    ),
                );
            }
        }
        StepKind::WaitForEvent { event, timeout_seconds, .. } => {
            if let Some(reason) = event_name_problem(event) {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_EVENT,
                    format!("The event that step {id:?} waits for {reason}."),
                );
            }
            if !is_valid_wait(*timeout_seconds) {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_WAIT,
                    format!(
                        "Step {id:?} waits up to {timeout_seconds} seconds for the event; the timeout must be \
                         between 1 second and 366 days."
                    ),
                );
            }
        }
        StepKind::Split { variants } => check_split(position, id, variants, report),
        StepKind::Multivariate { factors, .. } => check_factors(position, id, factors, report),
        StepKind::Holdout { percent, .. } => {
            if !(1..=99).contains(percent) {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_HOLDOUT,
                    format!(
                        "Step {id:?} holds out {percent}% of people; a holdout must be between 1% and 99%."
                    ),
                );
            }
        }
        StepKind::UpdateTrait { name, value, .. } => check_update_trait(position, id, name, value, report),
        StepKind::Goal { event, .. } => {
            if let Some(reason) = event_name_problem(event) {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_EVENT,
                    format!("The goal event of step {id:?} {reason}."),
                );
            }
        }
        StepKind::Branch { .. } | StepKind::Send { .. } | StepKind::Exit => {}
    }
}

fn is_valid_wait(seconds: u64) -> bool {
    (1..=MAX_WAIT_SECONDS).contains(&seconds)
}

fn check_split(position: usize, id: &str, variants: &[SplitVariant], report: &mut ProblemReport) {
    let mut problem = |message: String| report.at_step(position, id, codes::INVALID_SPLIT, message);
    if !(MIN_SPLIT_VARIANTS..=MAX_SPLIT_VARIANTS).contains(&variants.len()) {
        problem(format!(
            "Step {id:?} splits people into {} variant(s); a split needs between {MIN_SPLIT_VARIANTS} and \
             {MAX_SPLIT_VARIANTS} variants.",
            variants.len()
        ));
    }
    let mut seen_names = HashSet::new();
    for (number, variant) in (1..).zip(variants) {
        let name = variant.name.as_str();
        if name.trim().is_empty() {
            problem(format!("Variant {number} of step {id:?} has no name."));
        } else if name.chars().count() > MAX_VARIANT_NAME_CHARS {
            problem(format!(
                "Variant name {name:?} of step {id:?} is longer than {MAX_VARIANT_NAME_CHARS} characters."
            ));
        } else if !seen_names.insert(name) {
            problem(format!(
                "Step {id:?} has more than one variant named {name:?}; variant names must be unique."
            ));
        }
        if variant.weight == 0 {
            problem(format!(
                "Variant {number} of step {id:?} has a weight of 0; every variant needs a weight of at least 1."
            ));
        }
    }
    let total_weight: u64 = variants.iter().map(|variant| u64::from(variant.weight)).sum();
    if total_weight > MAX_SPLIT_TOTAL_WEIGHT {
        problem(format!(
            "The variant weights of step {id:?} add up to {total_weight}; the total must be at most \
             {MAX_SPLIT_TOTAL_WEIGHT}."
        ));
    }
}

/// Factor and level names become template variables and the recorded variant
/// (`factor=level,…`), so they are identifiers.
fn check_factors(position: usize, id: &str, factors: &[Factor], report: &mut ProblemReport) {
    let mut problem = |message: String| report.at_step(position, id, codes::INVALID_SPLIT, message);
    if !(1..=MAX_FACTORS).contains(&factors.len()) {
        problem(format!(
            "Step {id:?} has {} factor(s); a multivariate test has 1 to {MAX_FACTORS} factors.",
            factors.len()
        ));
    }
    let mut seen_factors = HashSet::new();
    for factor in factors {
        let name = factor.name.as_str();
        if !is_valid_trait_name(name) {
            problem(format!(
                "Factor {name:?} of step {id:?}: factor names are 1 to {MAX_TRAIT_NAME_CHARS} letters, digits                  or underscores, not starting with a digit."
            ));
        } else if !seen_factors.insert(name) {
            problem(format!("Step {id:?} has more than one factor named {name:?}."));
        }
        if !(MIN_SPLIT_VARIANTS..=MAX_FACTOR_LEVELS).contains(&factor.levels.len()) {
            problem(format!(
                "Factor {name:?} of step {id:?} has {} level(s); a factor has {MIN_SPLIT_VARIANTS} to                  {MAX_FACTOR_LEVELS} levels.",
                factor.levels.len()
            ));
        }
        let mut seen_levels = HashSet::new();
        for level in &factor.levels {
            if !is_valid_trait_name(level) {
                problem(format!(
                    "Level {level:?} of factor {name:?} (step {id:?}): levels are 1 to {MAX_TRAIT_NAME_CHARS}                      letters, digits or underscores, not starting with a digit."
                ));
            } else if !seen_levels.insert(level.as_str()) {
                problem(format!("Factor {name:?} of step {id:?} lists the level {level:?} twice."));
            }
        }
    }
}

fn check_update_trait(
    position: usize,
    id: &str,
    name: &str,
    value: &serde_json::Value,
    report: &mut ProblemReport,
) {
    if !is_valid_trait_name(name) {
        report.at_step(
            position,
            id,
            codes::INVALID_TRAIT,
            format!(
                "Step {id:?} updates the trait {name:?}; trait names must be 1 to {MAX_TRAIT_NAME_CHARS} \
                 letters, digits or underscores and must not start with a digit."
            ),
        );
    }
    if nests_deeper_than(value, MAX_TRAIT_VALUE_NESTING) {
        report.at_step(
            position,
            id,
            codes::INVALID_TRAIT,
            format!(
                "The value that step {id:?} sets is nested more than {MAX_TRAIT_VALUE_NESTING} levels deep."
            ),
        );
    } else {
        // Only measured once the nesting is known to be shallow, so a hostile value cannot make
        // serialisation recurse deeply.
        let serialized_bytes = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
        if serialized_bytes > MAX_TRAIT_VALUE_BYTES {
            report.at_step(
                position,
                id,
                codes::INVALID_TRAIT,
                format!(
                    "The value that step {id:?} sets is {serialized_bytes} bytes long; the limit is \
                     {MAX_TRAIT_VALUE_BYTES} bytes."
                ),
            );
        }
    }
}

/// Why an event name is unusable, as the end of a sentence, or `None` if it is fine.
fn event_name_problem(event: &str) -> Option<String> {
    if event.trim().is_empty() {
        Some("is empty".to_owned())
    } else if event.chars().count() > MAX_EVENT_NAME_CHARS {
        Some(format!("is longer than {MAX_EVENT_NAME_CHARS} characters"))
    } else if event.chars().any(char::is_control) {
        Some(format!("{event:?} contains control characters such as line breaks or tabs"))
    } else {
        None
    }
}

fn is_valid_step_id(id: &str) -> bool {
    (1..=MAX_STEP_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_')
}

fn is_valid_trait_name(name: &str) -> bool {
    (1..=MAX_TRAIT_NAME_CHARS).contains(&name.len())
        && !name.starts_with(|first: char| first.is_ascii_digit())
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// Whether `value` has more than `max_levels` levels of objects/arrays (a scalar has 0 levels,
/// `[1]` has 1). Recursion stops after `max_levels + 1` levels, so arbitrarily deep input is safe.
fn nests_deeper_than(value: &serde_json::Value, max_levels: usize) -> bool {
    let mut children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
        serde_json::Value::Array(items) => Box::new(items.iter()),
        serde_json::Value::Object(fields) => Box::new(fields.values()),
        _ => return false,
    };
    match max_levels.checked_sub(1) {
        None => true,
        Some(remaining_levels) => children.any(|child| nests_deeper_than(child, remaining_levels)),
    }
}

/// Problems collected during validation, with their position for stable ordering.
#[derive(Default)]
struct ProblemReport {
    /// Each problem with its sort position: 0 for journey-wide ones, step position + 1 otherwise.
    problems: Vec<(usize, GraphProblem)>,
}

impl ProblemReport {
    fn journey_wide(&mut self, code: &'static str, message: String) {
        self.problems.push((0, GraphProblem { code, step: None, message }));
    }

    fn at_step(&mut self, position: usize, step_id: &str, code: &'static str, message: String) {
        self.problems.push((position + 1, GraphProblem { code, step: Some(step_id.to_owned()), message }));
    }

    fn into_result(mut self) -> Result<(), Vec<GraphProblem>> {
        if self.problems.is_empty() {
            return Ok(());
        }
        // `sort_by` is stable, so equal keys keep discovery order.
        self.problems.sort_by(|(left_position, left), (right_position, right)| {
            left_position.cmp(right_position).then_with(|| left.code.cmp(right.code))
        });
        let mut problems: Vec<GraphProblem> = self.problems.into_iter().map(|(_, problem)| problem).collect();
        // E.g. two split variants pointing at the same missing step say the same thing twice.
        problems.dedup();
        Err(problems)
    }
}

/// Maps step ids to positions, reporting journey size, id syntax and duplicate ids on the way.
struct StepIndex<'graph> {
    /// Id → position of the *first* step with that id; references resolve to that step.
    first_position_by_id: HashMap<&'graph str, usize>,
    /// `false` for steps whose id repeats an earlier one. Nothing can point at them, so they are
    /// reported as `duplicate_step` only, not also as orphans or as never ending.
    is_first_with_its_id: Vec<bool>,
}

impl<'graph> StepIndex<'graph> {
    fn build(graph: &'graph JourneyGraph, report: &mut ProblemReport) -> Self {
        if graph.steps.len() > MAX_STEPS {
            report.journey_wide(
                codes::TOO_MANY_STEPS,
                format!("The journey has {} steps; the limit is {MAX_STEPS}.", graph.steps.len()),
            );
        }
        let mut first_position_by_id = HashMap::with_capacity(graph.steps.len());
        let mut is_first_with_its_id = Vec::with_capacity(graph.steps.len());
        for (position, step) in graph.steps.iter().enumerate() {
            let id = step.id.as_str();
            if !is_valid_step_id(id) {
                report.at_step(
                    position,
                    id,
                    codes::INVALID_STEP_ID,
                    format!(
                        "The step id {id:?} is not valid; ids must be 1 to {MAX_STEP_ID_CHARS} characters of \
                         lowercase letters, digits, \"-\" or \"_\"."
                    ),
                );
            }
            let is_first = !first_position_by_id.contains_key(id);
            if is_first {
                first_position_by_id.insert(id, position);
            } else {
                report.at_step(
                    position,
                    id,
                    codes::DUPLICATE_STEP,
                    format!("More than one step has the id {id:?}; step ids must be unique."),
                );
            }
            is_first_with_its_id.push(is_first);
        }
        Self { first_position_by_id, is_first_with_its_id }
    }

    fn position_of(&self, id: &str) -> Option<usize> {
        self.first_position_by_id.get(id).copied()
    }
}

/// The journey as an adjacency list over step positions, for the structural checks.
struct Topology {
    /// Successor positions of each step; references to unknown ids are left out.
    successors: Vec<Vec<usize>>,
    /// Steps with at least one reference to an unknown id. They are treated as if they could
    /// end, so a typo yields one `unknown_step` problem instead of a cascade of `never_ends`.
    has_unknown_reference: Vec<bool>,
    /// Mirrors [`StepIndex::is_first_with_its_id`].
    is_reportable: Vec<bool>,
}

impl Topology {
    fn build(graph: &JourneyGraph, index: &StepIndex<'_>) -> Self {
        let mut successors = Vec::with_capacity(graph.steps.len());
        let mut has_unknown_reference = Vec::with_capacity(graph.steps.len());
        for step in &graph.steps {
            let targets = step.kind.successors();
            let known: Vec<usize> = targets.iter().filter_map(|target| index.position_of(target)).collect();
            has_unknown_reference.push(known.len() < targets.len());
            successors.push(known);
        }
        Self { successors, has_unknown_reference, is_reportable: index.is_first_with_its_id.clone() }
    }

    /// `orphan_step`: a step nobody can arrive at is almost always a forgotten connection.
    /// Goals count as roots because people jump to them when they perform the goal event.
    fn check_reachable_from_entry(
        &self,
        graph: &JourneyGraph,
        index: &StepIndex<'_>,
        report: &mut ProblemReport,
    ) {
        let goal_positions = graph
            .steps
            .iter()
            .enumerate()
            .filter(|(_, step)| matches!(step.kind, StepKind::Goal { .. }))
            .map(|(position, _)| position);
        let roots: Vec<usize> =
            index.position_of(&graph.entry.next).into_iter().chain(goal_positions).collect();
        let reached = reachable_from(&roots, &self.successors);
        for (position, step) in graph.steps.iter().enumerate() {
            if !reached[position] && self.is_reportable[position] {
                report.at_step(
                    position,
                    &step.id,
                    codes::ORPHAN_STEP,
                    format!("Step {:?} is not reachable from the entry.", step.id),
                );
            }
        }
    }

    /// `never_ends`: every person must be able to leave, so from each step some terminal step
    /// (an exit, or a goal without `next`) must be reachable.
    fn check_every_path_ends(&self, graph: &JourneyGraph, report: &mut ProblemReport) {
        let mut predecessors = vec![Vec::new(); self.successors.len()];
        for (position, successors) in self.successors.iter().enumerate() {
            for &successor in successors {
                predecessors[successor].push(position);
            }
        }
        let ends: Vec<usize> = graph
            .steps
            .iter()
            .enumerate()
            .filter(|(position, step)| step.kind.ends_journey() || self.has_unknown_reference[*position])
            .map(|(position, _)| position)
            .collect();
        let can_end = reachable_from(&ends, &predecessors);
        for (position, step) in graph.steps.iter().enumerate() {
            if !can_end[position] && self.is_reportable[position] {
                report.at_step(
                    position,
                    &step.id,
                    codes::NEVER_ENDS,
                    format!(
                        "People at step {:?} can never leave the journey: no path from it reaches an exit or a \
                         goal that ends the journey.",
                        step.id
                    ),
                );
            }
        }
    }

    /// `loop_without_wait`: a cycle without a pause would let the executor run (and send) forever
    /// for one person. With wait steps removed, any strongly connected component with more than
    /// one step, or a step pointing at itself, is such a cycle. One problem per component.
    fn check_loops_contain_a_wait(&self, graph: &JourneyGraph, report: &mut ProblemReport) {
        let is_wait: Vec<bool> = graph.steps.iter().map(|step| step.kind.is_wait()).collect();
        let successors_without_waits: Vec<Vec<usize>> = self
            .successors
            .iter()
            .enumerate()
            .map(|(position, successors)| {
                if is_wait[position] {
                    Vec::new()
                } else {
                    successors.iter().copied().filter(|&successor| !is_wait[successor]).collect()
                }
            })
            .collect();
        let mut looping_components: Vec<Vec<usize>> =
            strongly_connected_components(&successors_without_waits)
                .into_iter()
                .filter(|component| match component.as_slice() {
                    [single] => successors_without_waits[*single].contains(single),
                    _ => true,
                })
                .collect();
        for component in &mut looping_components {
            component.sort_unstable();
        }
        for component in looping_components {
            let mut in_component = vec![false; graph.steps.len()];
            for &member in &component {
                in_component[member] = true;
            }
            // Name the first step of the loop in document order: the builder lists steps that way.
            let Some(&named_position) = component.first() else { continue };
            let cycle = shortest_cycle_through(named_position, &successors_without_waits, &in_component);
            let cycle_ids: Vec<&str> =
                cycle.iter().map(|&position| graph.steps[position].id.as_str()).collect();
            let named_id = &graph.steps[named_position].id;
            report.at_step(
                named_position,
                named_id,
                codes::LOOP_WITHOUT_WAIT,
                format!(
                    "The steps {} form a loop without a wait, so people could go round it endlessly; add a \
                     Wait, Wait until or Wait for event step to the loop.",
                    describe_path(&cycle_ids)
                ),
            );
        }
    }
}

/// `"a" → "b" → "a"`; long paths keep their start and end and elide the middle, so a message
/// stays readable in the builder's problem list.
fn describe_path(ids: &[&str]) -> String {
    const MAX_SHOWN: usize = 8;
    let quoted = |id: &&str| format!("{id:?}");
    match ids {
        [.., last] if ids.len() > MAX_SHOWN => {
            let mut shown: Vec<String> = ids.iter().take(MAX_SHOWN - 1).map(quoted).collect();
            shown.push("…".to_owned());
            shown.push(quoted(last));
            shown.join(" → ")
        }
        _ => ids.iter().map(quoted).collect::<Vec<_>>().join(" → "),
    }
}

/// Breadth-first reachability over an adjacency list.
fn reachable_from(roots: &[usize], successors: &[Vec<usize>]) -> Vec<bool> {
    let mut reached = vec![false; successors.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for &root in roots {
        if !reached[root] {
            reached[root] = true;
            queue.push_back(root);
        }
    }
    while let Some(node) = queue.pop_front() {
        for &successor in &successors[node] {
            if !reached[successor] {
                reached[successor] = true;
                queue.push_back(successor);
            }
        }
    }
    reached
}

/// Tarjan's algorithm, iterative so that a hostile, very long chain cannot overflow the stack.
fn strongly_connected_components(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let node_count = successors.len();
    let mut discovery_order = vec![UNVISITED; node_count];
    let mut low_link = vec![0; node_count];
    let mut on_component_stack = vec![false; node_count];
    let mut component_stack = Vec::new();
    let mut components = Vec::new();
    let mut next_discovery = 0;
    // Simulated recursion: (node, index of the next successor to explore).
    let mut call_stack: Vec<(usize, usize)> = Vec::new();

    for root in 0..node_count {
        if discovery_order[root] != UNVISITED {
            continue;
        }
        discovery_order[root] = next_discovery;
        low_link[root] = next_discovery;
        next_discovery += 1;
        component_stack.push(root);
        on_component_stack[root] = true;
        call_stack.push((root, 0));

        while let Some(frame) = call_stack.last_mut() {
            let (node, successor_index) = *frame;
            if let Some(&successor) = successors[node].get(successor_index) {
                frame.1 += 1;
                if discovery_order[successor] == UNVISITED {
                    discovery_order[successor] = next_discovery;
                    low_link[successor] = next_discovery;
                    next_discovery += 1;
                    component_stack.push(successor);
                    on_component_stack[successor] = true;
                    call_stack.push((successor, 0));
                } else if on_component_stack[successor] {
                    low_link[node] = low_link[node].min(discovery_order[successor]);
                }
                continue;
            }
            call_stack.pop();
            if let Some(&(parent, _)) = call_stack.last() {
                low_link[parent] = low_link[parent].min(low_link[node]);
            }
            if low_link[node] == discovery_order[node] {
                let mut component = Vec::new();
                while let Some(member) = component_stack.pop() {
                    on_component_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

/// The shortest cycle `start → … → start` using only nodes with `allowed[node]`, as a list that
/// begins and ends with `start`. Returns just `[start]` if there is none (not expected: callers
/// pass a node of a cyclic component).
fn shortest_cycle_through(start: usize, successors: &[Vec<usize>], allowed: &[bool]) -> Vec<usize> {
    let mut previous: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &successor in &successors[node] {
            if !allowed[successor] {
                continue;
            }
            if successor == start {
                let mut path = vec![start, node];
                let mut cursor = node;
                while cursor != start {
                    let Some(&before) = previous.get(&cursor) else { break };
                    path.push(before);
                    cursor = before;
                }
                path.reverse();
                // `path` is now start, …, node, start — except when `node == start` (a self-loop),
                // where the loop above pushed nothing and the result is [start, start].
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = previous.entry(successor) {
                slot.insert(node);
                queue.push_back(successor);
            }
        }
    }
    vec![start]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;

    const EMAIL_CHANNEL: &str = "0190f5a8-0000-7000-8000-000000000001";
    const SMS_CHANNEL: &str = "0190f5a8-0000-7000-8000-000000000002";
    const EMAIL_CONTENT: &str = "0190f5a8-0000-7000-8000-000000000003";
    const SMS_CONTENT: &str = "0190f5a8-0000-7000-8000-000000000004";
    const SEGMENT: &str = "0190f5a8-0000-7000-8000-000000000005";

    /// Segment entered → holdout 10% → split A/B → email / SMS → wait 2 days → branch → exit,
    /// with a goal on "Order Completed".
    fn realistic_journey() -> Value {
        json!({
            "entry": { "trigger": { "type": "segment_entered", "segment": SEGMENT }, "next": "holdout" },
            "steps": [
                { "id": "holdout", "type": "holdout", "percent": 10, "next": "split" },
                { "id": "split", "type": "split", "variants": [
                    { "name": "A", "weight": 50, "next": "send-email" },
                    { "name": "B", "weight": 50, "next": "send-sms" }
                ]},
                { "id": "send-email", "type": "send", "channel": EMAIL_CHANNEL, "content": EMAIL_CONTENT,
                  "next": "wait-2-days" },
                { "id": "send-sms", "type": "send", "channel": SMS_CHANNEL, "content": SMS_CONTENT,
                  "next": "wait-2-days" },
                { "id": "wait-2-days", "type": "wait", "seconds": 172_800, "next": "opened-email" },
                { "id": "opened-email", "type": "branch",
                  "condition": { "event": "Email Opened", "within_days": 2 },
                  "then": "exit", "else": "mark-unengaged" },
                { "id": "mark-unengaged", "type": "update_trait", "name": "unengaged", "value": true,
                  "next": "exit" },
                { "id": "exit", "type": "exit" },
                { "id": "converted", "type": "goal", "event": "Order Completed" }
            ]
        })
    }

    /// A journey entering on an event and going to step "start"; `steps` must contain it.
    fn journey_with_steps(steps: Value) -> Value {
        json!({
            "entry": { "trigger": { "type": "event_performed", "event": "Signed Up" }, "next": "start" },
            "steps": steps
        })
    }

    fn parse(json: &Value) -> JourneyGraph {
        JourneyGraph::parse(json).expect("test journeys are well-formed")
    }

    fn assert_valid(json: &Value) {
        assert_eq!(parse(json).validate(), Ok(()), "expected {json:#} to be valid");
    }

    /// `(code, step)` of every problem, in report order.
    fn problems(json: &Value) -> Vec<(&'static str, Option<String>)> {
        let problems = parse(json).validate().expect_err("expected the journey to be invalid");
        for problem in &problems {
            assert!(!problem.message.is_empty());
            assert!(problem.message.ends_with('.'), "message should be a sentence: {}", problem.message);
        }
        problems.into_iter().map(|problem| (problem.code, problem.step)).collect()
    }

    fn at(code: &'static str, step: &str) -> (&'static str, Option<String>) {
        (code, Some(step.to_owned()))
    }

    fn journey_wide(code: &'static str) -> (&'static str, Option<String>) {
        (code, None)
    }

    fn wait_step(id: &str, seconds: u64, next: &str) -> Value {
        json!({ "id": id, "type": "wait", "seconds": seconds, "next": next })
    }

    fn exit_step(id: &str) -> Value {
        json!({ "id": id, "type": "exit" })
    }

    fn send_step(id: &str, next: &str) -> Value {
        json!({ "id": id, "type": "send", "channel": EMAIL_CHANNEL, "content": EMAIL_CONTENT, "next": next })
    }

    fn goal_step(id: &str, event: &str, next: Option<&str>) -> Value {
        json!({ "id": id, "type": "goal", "event": event, "next": next })
    }

    fn split_step(id: &str, variants: &[(&str, u32, &str)]) -> Value {
        let variants: Vec<Value> = variants
            .iter()
            .map(|(name, weight, next)| json!({ "name": name, "weight": weight, "next": next }))
            .collect();
        json!({ "id": id, "type": "split", "variants": variants })
    }

    fn update_trait_step(name: &str, value: Value) -> Value {
        json!({ "id": "start", "type": "update_trait", "name": name, "value": value, "next": "exit" })
    }

    // ----- parsing and serialisation -------------------------------------------------------

    #[test]
    fn realistic_journey_is_valid() {
        let json = realistic_journey();
        let graph = JourneyGraph::parse_and_validate(&json).unwrap();
        assert_eq!(graph.steps.len(), 9);
        assert_eq!(graph.first_step().map(|step| step.id.as_str()), Some("holdout"));
    }

    #[test]
    fn json_round_trips_exactly() {
        let json = realistic_journey();
        let graph = parse(&json);
        let serialized = serde_json::to_value(&graph).unwrap();
        assert_eq!(serialized, json);
        assert_eq!(parse(&serialized), graph);
    }

    #[test]
    fn multivariate_factors_and_schedules_are_checked() {
        let journey = |factors: Value, every_days: u32| {
            json!({
                "entry": { "trigger": { "type": "schedule", "at": "2025-03-01T09:00:00Z", "segment": SEGMENT,
                                        "every_days": every_days }, "next": "mvt" },
                "steps": [
                    { "id": "mvt", "type": "multivariate", "factors": factors, "next": "exit" },
                    { "id": "exit", "type": "exit" } ]
            })
        };
        let good = json!([{ "name": "subject", "levels": ["short", "long"] }]);
        assert!(JourneyGraph::parse_and_validate(&journey(good.clone(), 7)).is_ok());
        let codes_of = |json: Value| -> Vec<&'static str> {
            JourneyGraph::parse_and_validate(&json).unwrap_err().into_iter().map(|p| p.code).collect()
        };
        assert_eq!(codes_of(journey(good, 0)), vec![codes::INVALID_SCHEDULE]);
        for bad in [
            json!([]),
            json!([{ "name": "subject", "levels": ["only"] }]),
            json!([{ "name": "subject", "levels": ["a", "a"] }]),
            json!([{ "name": "sub,ject", "levels": ["a", "b"] }]),
            json!([{ "name": "subject", "levels": ["a=1", "b"] }]),
            json!([{ "name": "s", "levels": ["a", "b"] }, { "name": "s", "levels": ["a", "b"] }]),
        ] {
            assert_eq!(codes_of(journey(bad.clone(), 1)), vec![codes::INVALID_SPLIT], "{bad}");
        }
    }

    #[test]
    fn every_step_kind_and_trigger_round_trips() {
        let json = json!({
            "entry": { "trigger": { "type": "schedule", "at": "2025-03-01T09:00:00Z", "segment": SEGMENT,
                                    "every_days": 7 },
                       "next": "start" },
            "steps": [
                { "id": "start", "type": "wait", "seconds": 60, "next": "until" },
                { "id": "until", "type": "wait_until", "time": "09:30", "next": "for-event" },
                { "id": "for-event", "type": "wait_for_event", "event": "Cart Viewed", "timeout_seconds": 3600,
                  "next": "branch", "timeout_next": "exit" },
                { "id": "branch", "type": "branch", "condition": { "all": [] }, "then": "split", "else": "exit" },
                { "id": "split", "type": "split", "variants": [
                    { "name": "a", "weight": 1, "next": "holdout" }, { "name": "b", "weight": 3, "next": "exit" } ] },
                { "id": "holdout", "type": "holdout", "percent": 5, "next": "mvt" },
                { "id": "mvt", "type": "multivariate", "factors": [
                    { "name": "subject", "levels": ["short", "long"] },
                    { "name": "image", "levels": ["a", "b", "c"] } ], "next": "send" },
                { "id": "send", "type": "send", "channel": EMAIL_CHANNEL, "content": EMAIL_CONTENT,
                  "next": "trait" },
                { "id": "trait", "type": "update_trait", "name": "vip", "value": { "tier": [1, 2] },
                  "next": "exit" },
                { "id": "goal-continues", "type": "goal", "event": "Trial Started", "next": "exit" },
                { "id": "goal-ends", "type": "goal", "event": "Order Completed" },
                { "id": "exit", "type": "exit" }
            ]
        });
        let graph = JourneyGraph::parse_and_validate(&json).unwrap();
        let serialized = serde_json::to_value(&graph).unwrap();
        assert_eq!(serialized, json);
        assert_eq!(parse(&serialized), graph);

        let event_trigger = json!({ "type": "event_performed", "event": "Signed Up" });
        let trigger: Trigger = serde_json::from_value(event_trigger.clone()).unwrap();
        assert_eq!(serde_json::to_value(&trigger).unwrap(), event_trigger);
    }

    #[test]
    fn goal_without_next_accepts_explicit_null() {
        let graph = parse(&journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            { "id": "goal", "type": "goal", "event": "Paid", "next": null }
        ])));
        assert_eq!(
            graph.step("goal").map(|step| &step.kind),
            Some(&StepKind::Goal { event: "Paid".to_owned(), next: None })
        );
    }

    #[test]
    fn malformed_json_is_one_problem() {
        let entry = json!({ "trigger": { "type": "segment_entered", "segment": SEGMENT }, "next": "start" });
        let journey_level = [
            json!({ "entry": entry }),
            json!({ "entry": { "trigger": { "type": "teleport" }, "next": "start" }, "steps": [] }),
            json!({ "entry": { "trigger": { "type": "segment_entered", "segment": SEGMENT }, "next": "start",
                               "delay": 5 }, "steps": [] }),
            json!({ "entry": entry, "steps": [], "version": 2 }),
            json!({ "entry": entry, "steps": {} }),
            json!([]),
        ];
        for json in journey_level {
            let problems = JourneyGraph::parse(&json).expect_err(&format!("{json} should not parse"));
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].code, codes::MALFORMED);
            assert_eq!(problems[0].step, None);
            assert!(problems[0].message.starts_with("The journey could not be read: "), "{}", problems[0]);
        }

        let step_level = [
            json!({ "id": "start", "type": "jump", "next": "exit" }),
            json!({ "id": "start", "next": "exit" }),
            json!({ "id": "start", "type": "wait", "seconds": 60 }),
            json!({ "id": "start", "type": "wait", "seconds": 60, "nxt": "exit" }),
            json!({ "id": "start", "type": "wait", "seconds": -1, "next": "exit" }),
            json!({ "id": "start", "type": "holdout", "percent": 300, "next": "exit" }),
            json!({ "id": "start", "type": "send", "channel": "not-a-uuid", "content": EMAIL_CONTENT,
                    "next": "exit" }),
            json!({ "id": "start", "type": "split", "variants": [
                { "name": "a", "weight": 1, "next": "exit", "colour": "red" } ] }),
        ];
        for raw_step in step_level {
            let json = journey_with_steps(json!([exit_step("exit"), raw_step]));
            let problems = JourneyGraph::parse(&json).expect_err(&format!("{json} should not parse"));
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].code, codes::MALFORMED);
            assert_eq!(problems[0].step.as_deref(), Some("start"));
            assert!(problems[0].message.starts_with("Step \"start\" could not be read: "), "{}", problems[0]);
        }

        let without_id = journey_with_steps(json!([exit_step("exit"), { "type": "exit" }]));
        let problems = JourneyGraph::parse(&without_id).unwrap_err();
        assert_eq!(problems[0].step, None);
        assert_eq!(problems[0].message, "Step number 2 could not be read: missing field `id`.");
    }

    #[test]
    fn extra_fields_on_an_exit_step_are_ignored() {
        // serde cannot deny unknown fields on a unit variant; a stray `next` on an exit is
        // harmless because the step it names is then reported as `orphan_step`.
        let json = journey_with_steps(json!([
            send_step("start", "exit"),
            { "id": "exit", "type": "exit", "next": "later" },
            exit_step("later")
        ]));
        assert_eq!(problems(&json), vec![at(codes::ORPHAN_STEP, "later")]);
    }

    #[test]
    fn parse_and_validate_reports_validation_problems() {
        let json = journey_with_steps(json!([wait_step("start", 0, "exit"), exit_step("exit")]));
        let problems = JourneyGraph::parse_and_validate(&json).unwrap_err();
        assert_eq!(problems[0].code, codes::INVALID_WAIT);
    }

    #[test]
    fn problem_display_is_the_message_and_serializes_for_the_api() {
        let problem = GraphProblem {
            code: codes::ORPHAN_STEP,
            step: Some("wait-2".to_owned()),
            message: "Step \"wait-2\" is not reachable from the entry.".to_owned(),
        };
        assert_eq!(problem.to_string(), "Step \"wait-2\" is not reachable from the entry.");
        let as_error: &dyn std::error::Error = &problem;
        assert!(as_error.source().is_none());
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            json!({ "code": "orphan_step", "step": "wait-2",
                    "message": "Step \"wait-2\" is not reachable from the entry." })
        );
    }

    // ----- accessors ---------------------------------------------------------------------------

    #[test]
    fn accessors_expose_what_the_executor_needs() {
        let graph = parse(&realistic_journey());
        assert_eq!(
            graph.step("split").map(|step| step.kind.successors()),
            Some(vec!["send-email", "send-sms"])
        );
        assert!(graph.step("missing").is_none());
        assert_eq!(graph.goals().collect::<Vec<_>>(), vec![("converted", "Order Completed")]);
        let sends: Vec<_> = graph.sends().collect();
        assert_eq!(
            sends,
            vec![
                ("send-email", EMAIL_CHANNEL.parse().unwrap(), EMAIL_CONTENT.parse().unwrap()),
                ("send-sms", SMS_CHANNEL.parse().unwrap(), SMS_CONTENT.parse().unwrap()),
            ]
        );
        let conditions: Vec<_> = graph.branch_conditions().collect();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].0, "opened-email");
        assert_eq!(conditions[0].1, &json!({ "event": "Email Opened", "within_days": 2 }));
    }

    #[test]
    fn successors_is_wait_and_ends_journey_per_kind() {
        let next = || "n".to_owned();
        let cases: Vec<(StepKind, Vec<&str>, bool, bool)> = vec![
            (StepKind::Wait { seconds: 1, next: next() }, vec!["n"], true, false),
            (StepKind::WaitUntil { time: "09:00".to_owned(), next: next() }, vec!["n"], true, false),
            (
                StepKind::WaitForEvent {
                    event: "e".to_owned(),
                    timeout_seconds: 1,
                    next: next(),
                    timeout_next: "t".to_owned(),
                },
                vec!["n", "t"],
                true,
                false,
            ),
            (
                StepKind::Branch { condition: Value::Null, then: "y".to_owned(), otherwise: "z".to_owned() },
                vec!["y", "z"],
                false,
                false,
            ),
            (
                StepKind::Split {
                    variants: vec![
                        SplitVariant { name: "a".to_owned(), weight: 1, next: "x".to_owned() },
                        SplitVariant { name: "b".to_owned(), weight: 1, next: "y".to_owned() },
                    ],
                },
                vec!["x", "y"],
                false,
                false,
            ),
            (StepKind::Holdout { percent: 10, next: next() }, vec!["n"], false, false),
            (
                StepKind::Send { channel: Uuid::nil(), content: Uuid::nil(), next: next() },
                vec!["n"],
                false,
                false,
            ),
            (
                StepKind::UpdateTrait { name: "t".to_owned(), value: Value::Null, next: next() },
                vec!["n"],
                false,
                false,
            ),
            (StepKind::Goal { event: "e".to_owned(), next: Some(next()) }, vec!["n"], false, false),
            (StepKind::Goal { event: "e".to_owned(), next: None }, vec![], false, true),
            (StepKind::Exit, vec![], false, true),
        ];
        for (kind, successors, is_wait, ends) in cases {
            assert_eq!(kind.successors(), successors, "{kind:?}");
            assert_eq!(kind.is_wait(), is_wait, "{kind:?}");
            assert_eq!(kind.ends_journey(), ends, "{kind:?}");
        }
    }

    #[test]
    fn time_of_day_parsing_is_strict_hh_mm() {
        assert_eq!(parse_time_of_day("00:00"), NaiveTime::from_hms_opt(0, 0, 0));
        assert_eq!(parse_time_of_day("09:30"), NaiveTime::from_hms_opt(9, 30, 0));
        assert_eq!(parse_time_of_day("23:59"), NaiveTime::from_hms_opt(23, 59, 0));
        for invalid in [
            "", "9:30", "09:3", "24:00", "23:60", "09-30", "09:30:00", " 9:30", "０9:30", "ab:cd", "+9:30",
            "9:5 ",
        ] {
            assert_eq!(parse_time_of_day(invalid), None, "{invalid:?}");
        }
    }

    // ----- one rule at a time ---------------------------------------------------------------

    #[test]
    fn too_many_steps() {
        let chain = |count: usize| {
            let mut steps: Vec<Value> = (0..count - 1)
                .map(|number| {
                    let id = if number == 0 { "start".to_owned() } else { format!("send-{number}") };
                    send_step(&id, &format!("send-{}", number + 1))
                })
                .collect();
            steps.push(exit_step(&format!("send-{}", count - 1)));
            journey_with_steps(Value::Array(steps))
        };
        assert_valid(&chain(MAX_STEPS));
        assert_eq!(problems(&chain(MAX_STEPS + 1)), vec![journey_wide(codes::TOO_MANY_STEPS)]);
    }

    #[test]
    fn invalid_step_id() {
        let with_id = |id: &str| journey_with_steps(json!([send_step("start", id), exit_step(id)]));
        assert_valid(&with_id("exit_2-b"));
        assert_valid(&with_id(&"x".repeat(MAX_STEP_ID_CHARS)));
        for invalid in ["", "Exit", "exit 2", "exit.2", "é", "exit\n", &"x".repeat(MAX_STEP_ID_CHARS + 1)] {
            assert_eq!(problems(&with_id(invalid)), vec![at(codes::INVALID_STEP_ID, invalid)], "{invalid:?}");
        }
    }

    #[test]
    fn duplicate_step() {
        assert_valid(&journey_with_steps(json!([send_step("start", "exit"), exit_step("exit")])));
        let json =
            journey_with_steps(json!([send_step("start", "exit"), exit_step("exit"), exit_step("exit")]));
        assert_eq!(problems(&json), vec![at(codes::DUPLICATE_STEP, "exit")]);
    }

    #[test]
    fn unknown_step_from_entry() {
        let json = json!({
            "entry": { "trigger": { "type": "event_performed", "event": "Signed Up" }, "next": "strat" },
            "steps": [send_step("start", "exit"), exit_step("exit")]
        });
        // Nothing is reachable, but the typo is the one thing to fix.
        let found = problems(&json);
        assert_eq!(found[0], journey_wide(codes::UNKNOWN_STEP));
        assert_eq!(found[1..], [at(codes::ORPHAN_STEP, "start"), at(codes::ORPHAN_STEP, "exit")]);
    }

    #[test]
    fn unknown_step_from_every_kind_of_reference() {
        let only_way_to_exit_broken =
            journey_with_steps(json!([send_step("start", "nowhere"), exit_step("exit")]));
        assert_eq!(
            problems(&only_way_to_exit_broken),
            vec![at(codes::UNKNOWN_STEP, "start"), at(codes::ORPHAN_STEP, "exit")]
        );
        let cases = [
            json!({ "id": "start", "type": "wait_for_event", "event": "Opened", "timeout_seconds": 60,
                    "next": "exit", "timeout_next": "nowhere" }),
            json!({ "id": "start", "type": "branch", "condition": {}, "then": "nowhere", "else": "exit" }),
            json!({ "id": "start", "type": "branch", "condition": {}, "then": "exit", "else": "nowhere" }),
            split_step("start", &[("a", 1, "exit"), ("b", 1, "nowhere")]),
        ];
        for step in cases {
            let json = journey_with_steps(json!([step, exit_step("exit")]));
            // A dangling reference does not also cause `never_ends`, nor an orphaned "exit".
            assert_eq!(problems(&json), vec![at(codes::UNKNOWN_STEP, "start")], "{step}");
        }
        let goal = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            goal_step("goal", "Paid", Some("nowhere"))
        ]));
        assert_eq!(problems(&goal), vec![at(codes::UNKNOWN_STEP, "goal")]);
    }

    #[test]
    fn unknown_step_message_names_the_arm() {
        let json = journey_with_steps(json!([
            split_step(
                "start",
                &[("control", 1, "exit"), ("treatment", 1, "nowhere"), ("other", 1, "nowhere")]
            ),
            exit_step("exit")
        ]));
        let found = parse(&json).validate().unwrap_err();
        let messages: Vec<&str> = found.iter().map(|problem| problem.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "Step \"start\" (variant \"treatment\") points to step \"nowhere\", which does not exist.",
                "Step \"start\" (variant \"other\") points to step \"nowhere\", which does not exist.",
            ]
        );
        let timeout = journey_with_steps(json!([
            { "id": "start", "type": "wait_for_event", "event": "Opened", "timeout_seconds": 60,
              "next": "exit", "timeout_next": "nowhere" },
            exit_step("exit")
        ]));
        let found = parse(&timeout).validate().unwrap_err();
        assert_eq!(
            found[0].message,
            "Step \"start\" (on timeout) points to step \"nowhere\", which does not exist."
        );
    }

    #[test]
    fn identical_problems_are_reported_once() {
        // Two variants with the same name and the same missing target say the same thing twice.
        let json = journey_with_steps(json!([
            split_step("start", &[("a", 1, "exit"), ("b", 1, "nowhere"), ("b", 1, "nowhere")]),
            exit_step("exit")
        ]));
        assert_eq!(
            problems(&json),
            vec![at(codes::INVALID_SPLIT, "start"), at(codes::UNKNOWN_STEP, "start")]
        );
    }

    #[test]
    fn entry_is_goal() {
        let json = json!({
            "entry": { "trigger": { "type": "event_performed", "event": "Signed Up" }, "next": "goal" },
            "steps": [goal_step("goal", "Paid", None)]
        });
        assert_eq!(problems(&json), vec![journey_wide(codes::ENTRY_IS_GOAL)]);
        assert_valid(&journey_with_steps(json!([
            send_step("start", "goal"),
            goal_step("goal", "Paid", None)
        ])));
    }

    #[test]
    fn orphan_step() {
        let valid = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            // Goals are roots: people jump to them by performing the event.
            goal_step("goal", "Paid", Some("thank-you")),
            send_step("thank-you", "exit")
        ]));
        assert_valid(&valid);
        let json = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            wait_step("wait-2", 60, "exit")
        ]));
        assert_eq!(problems(&json), vec![at(codes::ORPHAN_STEP, "wait-2")]);
        let found = parse(&json).validate().unwrap_err();
        assert_eq!(found[0].message, "Step \"wait-2\" is not reachable from the entry.");
    }

    #[test]
    fn never_ends() {
        let json = journey_with_steps(json!([
            json!({ "id": "start", "type": "branch", "condition": {}, "then": "exit", "else": "nag" }),
            exit_step("exit"),
            send_step("nag", "wait-a-day"),
            wait_step("wait-a-day", 86_400, "nag")
        ]));
        assert_eq!(problems(&json), vec![at(codes::NEVER_ENDS, "nag"), at(codes::NEVER_ENDS, "wait-a-day")]);

        let with_a_way_out = journey_with_steps(json!([
            json!({ "id": "start", "type": "branch", "condition": {}, "then": "exit", "else": "nag" }),
            exit_step("exit"),
            send_step("nag", "wait-for-click"),
            json!({ "id": "wait-for-click", "type": "wait_for_event", "event": "Clicked", "timeout_seconds": 86_400,
                    "next": "exit", "timeout_next": "nag" })
        ]));
        assert_valid(&with_a_way_out);
    }

    #[test]
    fn goal_that_continues_must_still_end() {
        let json = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            goal_step("goal", "Paid", Some("thanks")),
            send_step("thanks", "pause"),
            wait_step("pause", 60, "thanks")
        ]));
        assert_eq!(
            problems(&json),
            vec![
                at(codes::NEVER_ENDS, "goal"),
                at(codes::NEVER_ENDS, "thanks"),
                at(codes::NEVER_ENDS, "pause")
            ]
        );
    }

    #[test]
    fn loop_without_wait() {
        let json = journey_with_steps(json!([
            send_step("start", "again"),
            json!({ "id": "again", "type": "branch", "condition": {}, "then": "exit", "else": "start" }),
            exit_step("exit")
        ]));
        assert_eq!(problems(&json), vec![at(codes::LOOP_WITHOUT_WAIT, "start")]);
        let found = parse(&json).validate().unwrap_err();
        assert!(found[0].message.starts_with("The steps \"start\" → \"again\" → \"start\" form a loop"));

        let with_wait = journey_with_steps(json!([
            send_step("start", "again"),
            json!({ "id": "again", "type": "branch", "condition": {}, "then": "exit", "else": "pause" }),
            json!({ "id": "pause", "type": "wait_until", "time": "10:00", "next": "start" }),
            exit_step("exit")
        ]));
        assert_valid(&with_wait);
    }

    #[test]
    fn loop_without_wait_self_loop() {
        let json = journey_with_steps(json!([
            send_step("start", "retry"),
            json!({ "id": "retry", "type": "branch", "condition": {}, "then": "exit", "else": "retry" }),
            exit_step("exit")
        ]));
        assert_eq!(problems(&json), vec![at(codes::LOOP_WITHOUT_WAIT, "retry")]);
        let found = parse(&json).validate().unwrap_err();
        assert!(found[0].message.starts_with("The steps \"retry\" → \"retry\" form a loop"));
    }

    #[test]
    fn loop_without_wait_reports_each_loop_once_with_its_shortest_cycle() {
        // Two separate wait-free loops; the second is a larger component with a chord.
        let json = journey_with_steps(json!([
            json!({ "id": "start", "type": "branch", "condition": {}, "then": "a", "else": "x" }),
            json!({ "id": "a", "type": "branch", "condition": {}, "then": "b", "else": "exit" }),
            send_step("b", "a"),
            json!({ "id": "x", "type": "branch", "condition": {}, "then": "y", "else": "exit" }),
            json!({ "id": "y", "type": "branch", "condition": {}, "then": "z", "else": "x" }),
            send_step("z", "x"),
            exit_step("exit")
        ]));
        assert_eq!(
            problems(&json),
            vec![at(codes::LOOP_WITHOUT_WAIT, "a"), at(codes::LOOP_WITHOUT_WAIT, "x")]
        );
        let found = parse(&json).validate().unwrap_err();
        assert!(found[1].message.starts_with("The steps \"x\" → \"y\" → \"x\" form a loop"), "{}", found[1]);
    }

    #[test]
    fn loop_through_a_goal_needs_a_wait_too() {
        let json = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            goal_step("goal", "Paid", Some("thanks")),
            json!({ "id": "thanks", "type": "branch", "condition": {}, "then": "exit", "else": "goal" })
        ]));
        assert_eq!(problems(&json), vec![at(codes::LOOP_WITHOUT_WAIT, "goal")]);
    }

    #[test]
    fn invalid_wait() {
        let with_seconds = |seconds: u64| {
            journey_with_steps(json!([wait_step("start", seconds, "exit"), exit_step("exit")]))
        };
        assert_valid(&with_seconds(1));
        assert_valid(&with_seconds(MAX_WAIT_SECONDS));
        assert_eq!(problems(&with_seconds(0)), vec![at(codes::INVALID_WAIT, "start")]);
        assert_eq!(problems(&with_seconds(MAX_WAIT_SECONDS + 1)), vec![at(codes::INVALID_WAIT, "start")]);
    }

    #[test]
    fn invalid_wait_for_event_timeout() {
        let with_timeout = |seconds: u64| {
            journey_with_steps(json!([
                { "id": "start", "type": "wait_for_event", "event": "Clicked", "timeout_seconds": seconds,
                  "next": "exit", "timeout_next": "exit" },
                exit_step("exit")
            ]))
        };
        assert_valid(&with_timeout(1));
        assert_valid(&with_timeout(MAX_WAIT_SECONDS));
        assert_eq!(problems(&with_timeout(0)), vec![at(codes::INVALID_WAIT, "start")]);
        assert_eq!(problems(&with_timeout(MAX_WAIT_SECONDS + 1)), vec![at(codes::INVALID_WAIT, "start")]);
    }

    #[test]
    fn invalid_time() {
        let with_time = |time: &str| {
            journey_with_steps(json!([
                { "id": "start", "type": "wait_until", "time": time, "next": "exit" },
                exit_step("exit")
            ]))
        };
        assert_valid(&with_time("18:45"));
        assert_eq!(problems(&with_time("6pm")), vec![at(codes::INVALID_TIME, "start")]);
        assert_eq!(problems(&with_time("25:00")), vec![at(codes::INVALID_TIME, "start")]);
    }

    #[test]
    fn invalid_split() {
        let with_variants = |variants: &[(&str, u32, &str)]| {
            journey_with_steps(json!([split_step("start", variants), exit_step("exit")]))
        };
        assert_valid(&with_variants(&[("a", 1, "exit"), ("b", 1, "exit")]));
        assert_valid(&with_variants(&[("a", 5_000, "exit"), ("b", 5_000, "exit")]));
        let ten: Vec<(String, u32)> = (0..10).map(|number| (format!("v{number}"), 1)).collect();
        let ten: Vec<(&str, u32, &str)> =
            ten.iter().map(|(name, weight)| (name.as_str(), *weight, "exit")).collect();
        assert_valid(&with_variants(&ten));
        let long_name = "n".repeat(MAX_VARIANT_NAME_CHARS);
        assert_valid(&with_variants(&[(long_name.as_str(), 1, "exit"), ("b", 1, "exit")]));

        let too_long_name = "n".repeat(MAX_VARIANT_NAME_CHARS + 1);
        let eleven: Vec<(String, u32)> = (0..11).map(|number| (format!("v{number}"), 1)).collect();
        let eleven: Vec<(&str, u32, &str)> =
            eleven.iter().map(|(name, weight)| (name.as_str(), *weight, "exit")).collect();
        let invalid: Vec<Vec<(&str, u32, &str)>> = vec![
            vec![],
            vec![("only", 1, "exit")],
            eleven,
            vec![("a", 0, "exit"), ("b", 1, "exit")],
            vec![("a", 5_000, "exit"), ("b", 5_001, "exit")],
            vec![("a", u32::MAX, "exit"), ("b", u32::MAX, "exit")],
            vec![("a", 1, "exit"), ("a", 1, "exit")],
            vec![("", 1, "exit"), ("b", 1, "exit")],
            vec![("  ", 1, "exit"), ("b", 1, "exit")],
            vec![(too_long_name.as_str(), 1, "exit"), ("b", 1, "exit")],
        ];
        for variants in invalid {
            let json = with_variants(&variants);
            let found = problems(&json);
            // Zero variants also leaves "exit" unreachable; everything else is one split problem.
            assert_eq!(found[0], at(codes::INVALID_SPLIT, "start"), "{variants:?}");
            if !variants.is_empty() {
                assert_eq!(found.len(), 1, "{variants:?}: {found:?}");
            }
        }
    }

    #[test]
    fn invalid_split_reports_each_variant_problem() {
        let json = journey_with_steps(json!([
            split_step("start", &[("", 0, "exit"), ("b", 1, "exit"), ("b", 0, "exit")]),
            exit_step("exit")
        ]));
        let found = parse(&json).validate().unwrap_err();
        let messages: Vec<&str> = found.iter().map(|problem| problem.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "Variant 1 of step \"start\" has no name.",
                "Variant 1 of step \"start\" has a weight of 0; every variant needs a weight of at least 1.",
                "Step \"start\" has more than one variant named \"b\"; variant names must be unique.",
                "Variant 3 of step \"start\" has a weight of 0; every variant needs a weight of at least 1.",
            ]
        );
    }

    #[test]
    fn invalid_holdout() {
        let with_percent = |percent: u8| {
            journey_with_steps(json!([
                { "id": "start", "type": "holdout", "percent": percent, "next": "exit" },
                exit_step("exit")
            ]))
        };
        assert_valid(&with_percent(1));
        assert_valid(&with_percent(99));
        for invalid in [0, 100, 255] {
            assert_eq!(problems(&with_percent(invalid)), vec![at(codes::INVALID_HOLDOUT, "start")]);
        }
    }

    #[test]
    fn invalid_event_in_trigger() {
        let with_trigger_event = |event: &str| {
            json!({
                "entry": { "trigger": { "type": "event_performed", "event": event }, "next": "start" },
                "steps": [send_step("start", "exit"), exit_step("exit")]
            })
        };
        assert_valid(&with_trigger_event("Order Completed"));
        assert_valid(&with_trigger_event(&"é".repeat(MAX_EVENT_NAME_CHARS)));
        for invalid in ["", "   ", "Order\nCompleted", "Tab\tbed", &"e".repeat(MAX_EVENT_NAME_CHARS + 1)] {
            assert_eq!(problems(&with_trigger_event(invalid)), vec![journey_wide(codes::INVALID_EVENT)]);
        }
    }

    #[test]
    fn invalid_event_in_wait_for_event() {
        let with_event = |event: &str| {
            journey_with_steps(json!([
                { "id": "start", "type": "wait_for_event", "event": event, "timeout_seconds": 60,
                  "next": "exit", "timeout_next": "exit" },
                exit_step("exit")
            ]))
        };
        assert_valid(&with_event("Clicked"));
        assert_eq!(problems(&with_event("")), vec![at(codes::INVALID_EVENT, "start")]);
        assert_eq!(problems(&with_event("a\u{7}b")), vec![at(codes::INVALID_EVENT, "start")]);
    }

    #[test]
    fn invalid_event_in_goal() {
        let with_goal_event = |event: &str| {
            journey_with_steps(json!([
                send_step("start", "exit"),
                exit_step("exit"),
                goal_step("goal", event, None)
            ]))
        };
        assert_valid(&with_goal_event("Order Completed"));
        assert_eq!(problems(&with_goal_event("")), vec![at(codes::INVALID_EVENT, "goal")]);
        let too_long = "e".repeat(MAX_EVENT_NAME_CHARS + 1);
        assert_eq!(problems(&with_goal_event(&too_long)), vec![at(codes::INVALID_EVENT, "goal")]);
    }

    #[test]
    fn invalid_trait_name() {
        let with_name =
            |name: &str| journey_with_steps(json!([update_trait_step(name, json!(1)), exit_step("exit")]));
        for valid in ["plan", "Plan_2", "_private", &"t".repeat(MAX_TRAIT_NAME_CHARS)] {
            assert_valid(&with_name(valid));
        }
        for invalid in
            ["", "2fast", "first-name", "first name", "prénom", &"t".repeat(MAX_TRAIT_NAME_CHARS + 1)]
        {
            assert_eq!(problems(&with_name(invalid)), vec![at(codes::INVALID_TRAIT, "start")], "{invalid:?}");
        }
    }

    #[test]
    fn invalid_trait_value() {
        let with_value =
            |value: Value| journey_with_steps(json!([update_trait_step("plan", value), exit_step("exit")]));
        let three_levels = json!({ "a": { "b": [1, 2, "three"] } });
        let also_three_levels = json!([[[]]]);
        let just_fits = Value::String("x".repeat(MAX_TRAIT_VALUE_BYTES - 2));
        for valid in [Value::Null, json!("pro"), json!(3.5), three_levels, also_three_levels, just_fits] {
            assert_valid(&with_value(valid));
        }
        let four_levels = json!({ "a": { "b": [{ "c": 1 }] } });
        let empty_at_four_levels = json!([[[[]]]]);
        let too_big = Value::String("x".repeat(MAX_TRAIT_VALUE_BYTES - 1));
        // serde_json refuses to read JSON nested more than 128 levels, so this is the worst case.
        let mut very_deep = json!(1);
        for _ in 0..120 {
            very_deep = json!([very_deep]);
        }
        for invalid in [four_levels, empty_at_four_levels, too_big, very_deep] {
            assert_eq!(problems(&with_value(invalid)), vec![at(codes::INVALID_TRAIT, "start")]);
        }
    }

    #[test]
    fn duplicate_goal() {
        let json = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            goal_step("paid", "Order Completed", None),
            goal_step("paid-again", "Order Completed", None)
        ]));
        assert_eq!(problems(&json), vec![at(codes::DUPLICATE_GOAL, "paid-again")]);
        let different_events = journey_with_steps(json!([
            send_step("start", "exit"),
            exit_step("exit"),
            goal_step("paid", "Order Completed", None),
            goal_step("trial", "Trial Started", None)
        ]));
        assert_valid(&different_events);
    }

    // ----- reporting --------------------------------------------------------------------------

    #[test]
    fn all_problems_are_reported_in_a_stable_order() {
        let json = json!({
            "entry": { "trigger": { "type": "event_performed", "event": "" }, "next": "start" },
            "steps": [
                { "id": "start", "type": "holdout", "percent": 0, "next": "Wait" },
                wait_step("Wait", 0, "split"),
                split_step("split", &[("a", 1, "exit"), ("a", 1, "gone")]),
                exit_step("exit"),
                exit_step("exit"),
                goal_step("g1", "Paid", None),
                goal_step("g2", "Paid", None),
                wait_step("lonely", 60, "exit")
            ]
        });
        let expected = vec![
            journey_wide(codes::INVALID_EVENT),
            at(codes::INVALID_HOLDOUT, "start"),
            at(codes::INVALID_STEP_ID, "Wait"),
            at(codes::INVALID_WAIT, "Wait"),
            at(codes::INVALID_SPLIT, "split"),
            at(codes::UNKNOWN_STEP, "split"),
            at(codes::DUPLICATE_STEP, "exit"),
            at(codes::DUPLICATE_GOAL, "g2"),
            at(codes::ORPHAN_STEP, "lonely"),
        ];
        assert_eq!(problems(&json), expected);
        // Validating twice gives the same answer.
        assert_eq!(parse(&json).validate(), parse(&json).validate());
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        // Far over the step limit, to make sure the graph algorithms are iterative.
        let count = 50_000;
        let mut steps: Vec<Value> = (0..count)
            .map(|number| {
                let id = if number == 0 { "start".to_owned() } else { format!("s{number}") };
                send_step(&id, &format!("s{}", (number + 1) % count))
            })
            .collect();
        steps.push(exit_step("exit"));
        let json = journey_with_steps(Value::Array(steps));
        let found = problems(&json);
        assert_eq!(found[0], journey_wide(codes::TOO_MANY_STEPS));
        // "s0" is missing so the chain ends in an unknown reference rather than a loop.
        assert!(found.contains(&at(codes::UNKNOWN_STEP, &format!("s{}", count - 1))));
        assert!(found.contains(&at(codes::ORPHAN_STEP, "exit")));
    }

    #[test]
    fn long_wait_free_cycle_is_found_iteratively() {
        let count = 50_000;
        let mut steps: Vec<Value> = vec![send_step("start", "s1")];
        steps.extend((1..count).map(|number| send_step(&format!("s{number}"), &format!("s{}", number + 1))));
        steps.push(json!({ "id": format!("s{count}"), "type": "branch", "condition": {}, "then": "start",
                           "else": "exit" }));
        steps.push(exit_step("exit"));
        let json = journey_with_steps(Value::Array(steps));
        assert_eq!(
            problems(&json),
            vec![journey_wide(codes::TOO_MANY_STEPS), at(codes::LOOP_WITHOUT_WAIT, "start")]
        );
        let found = parse(&json).validate().unwrap_err();
        assert!(
            found[1].message.starts_with(
                "The steps \"start\" → \"s1\" → \"s2\" → \"s3\" → \"s4\" → \"s5\" → \"s6\" → … → \"start\" form"
            ),
            "{}",
            found[1]
        );
    }
}
