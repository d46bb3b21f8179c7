//! GraphQL shapes of campaign values.

use async_graphql::{Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

pub struct Channel(pub campaigns::channels::Channel);

#[Object]
impl Channel {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `email`, `sms`, `push`, `display`, `web`, `call_center`, `direct_mail`…
    async fn kind(&self) -> &str {
        self.0.kind.as_str()
    }
    /// `direct`, `digital_ads`, `inbound`, `targeted_ads` or `direct_mail`.
    async fn family(&self) -> &str {
        self.0.kind.family().as_str()
    }
    /// `message`, `audience` or `decision`.
    async fn mode(&self) -> &str {
        self.0.delivery.mode().as_str()
    }
    /// Where it delivers (never its secret nor an SMTP password).
    async fn delivery(&self) -> Json<serde_json::Value> {
        Json(self.0.delivery.public())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A channel just created. `signingSecret` (webhooks only) is shown this once: receivers
/// check `X-Passerelle-Signature` with it.
pub struct CreatedChannel(pub campaigns::channels::CreatedChannel);

#[Object]
impl CreatedChannel {
    async fn channel(&self) -> Channel {
        Channel(self.0.channel.clone())
    }
    async fn signing_secret(&self) -> Option<&str> {
        self.0.signing_secret.as_deref()
    }
}

pub struct Content(pub campaigns::contents::Content);

#[Object]
impl Content {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `{"variants": [{"kind": "email", "subject": …, "body": …}, {"kind": "sms", "text": …}]}`
    async fn template(&self) -> async_graphql::Result<Json<serde_json::Value>> {
        Ok(Json(serde_json::to_value(&self.0.template)?))
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(SimpleObject)]
pub struct RenderedContent {
    /// Field name → rendered text (`subject`, `body`, `text`…).
    pub fields: Json<std::collections::BTreeMap<String, String>>,
}

#[derive(SimpleObject)]
pub struct ContentBlock {
    pub name: String,
    pub body: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "campaigns::journeys::JourneyStatus")]
pub enum JourneyStatus {
    Draft,
    Active,
    Paused,
    Archived,
}

/// What a provider reports about a send.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "campaigns::feedback::Feedback")]
pub enum SendFeedback {
    Delivery,
    Open,
    Click,
    Bounce,
    HardBounce,
    Complaint,
    Unsubscribe,
}

pub struct Journey(pub campaigns::journeys::Journey);

#[Object]
impl Journey {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn status(&self) -> JourneyStatus {
        self.0.status.into()
    }
    /// The draft graph as last saved.
    async fn draft(&self) -> Json<serde_json::Value> {
        Json(self.0.draft.clone())
    }
    /// The latest published version (0 before the first publish).
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// For a scheduled journey: when its next run starts (null once a one-off has run).
    async fn next_scheduled_run(&self) -> Option<DateTime<Utc>> {
        self.0.next_scheduled_run
    }
    /// For a scheduled journey: the start of the run now enrolling its segment, if any.
    async fn scheduled_run_in_progress(&self) -> Option<DateTime<Utc>> {
        self.0.scheduled_run_in_progress
    }
    /// `never` or `after_exit`.
    async fn reentry(&self) -> &str {
        self.0.reentry.as_str()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct JourneyVersion(pub campaigns::journeys::JourneyVersion);

#[Object]
impl JourneyVersion {
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn graph(&self) -> Json<serde_json::Value> {
        Json(self.0.graph.clone())
    }
    async fn published_by(&self) -> &str {
        &self.0.published_by
    }
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
}

/// One thing wrong with a journey or content, as the builder shows it.
#[derive(SimpleObject)]
pub struct Problem {
    pub code: String,
    pub location: Option<String>,
    pub message: String,
}

impl From<campaigns::Problem> for Problem {
    fn from(p: campaigns::Problem) -> Self {
        Self { code: p.code, location: p.location, message: p.message }
    }
}

#[derive(SimpleObject)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

fn counts(pairs: Vec<(String, i64)>) -> Vec<Count> {
    pairs.into_iter().map(|(key, count)| Count { key, count }).collect()
}

#[derive(SimpleObject)]
pub struct JourneyReport {
    pub by_status: Vec<Count>,
    pub by_step: Vec<Count>,
    pub by_variant: Vec<Count>,
    pub holdout: i64,
    pub sends: Vec<Count>,
    /// Messages not received, by reason.
    pub blocks: Vec<Count>,
}

impl From<campaigns::reports::JourneyReport> for JourneyReport {
    fn from(r: campaigns::reports::JourneyReport) -> Self {
        Self {
            by_status: counts(r.by_status),
            by_step: counts(r.by_step),
            by_variant: counts(r.by_variant),
            holdout: r.holdout,
            sends: counts(r.sends),
            blocks: counts(r.blocks),
        }
    }
}

pub struct SendBlock(pub campaigns::reports::SendBlock);

#[Object]
impl SendBlock {
    async fn journey_id(&self) -> ID {
        ID(self.0.journey_id.to_string())
    }
    async fn step(&self) -> &str {
        &self.0.step
    }
    async fn profile_id(&self) -> ID {
        ID(self.0.profile_id.to_string())
    }
    async fn channel_id(&self) -> Option<ID> {
        self.0.channel_id.map(|c| ID(c.to_string()))
    }
    /// `no_consent`, `consent_withdrawn`, `minor`, `no_address`, `suppressed`, `frequency_cap`,
    /// `quiet_hours` (deferred), `render_failed`, `holdout`.
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// A marketing contact with a person, for measurement.
pub struct Touchpoint(pub campaigns::reports::Touchpoint);

#[Object]
impl Touchpoint {
    async fn profile_id(&self) -> ID {
        ID(self.0.profile_id.to_string())
    }
    /// `send`, `accepted`, `delivery`, `open`, `click`, `bounce`, `complaint`, `unsubscribe`,
    /// `impression`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The channel's kind (`email`, `sms`…).
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    async fn channel_id(&self) -> Option<ID> {
        self.0.channel_id.map(|c| ID(c.to_string()))
    }
    async fn journey_id(&self) -> Option<ID> {
        self.0.journey_id.map(|j| ID(j.to_string()))
    }
    async fn step(&self) -> Option<&str> {
        self.0.step.as_deref()
    }
    /// The experiment arm (`B`, or `subject=short,colour=red` for a multivariate test).
    async fn variant(&self) -> Option<&str> {
        self.0.variant.as_deref()
    }
    async fn device(&self) -> Option<&str> {
        self.0.device.as_deref()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

pub struct DeadLetter(pub campaigns::reports::DeadLetter);

#[Object]
impl DeadLetter {
    async fn journey_id(&self) -> ID {
        ID(self.0.journey_id.to_string())
    }
    async fn step(&self) -> &str {
        &self.0.step
    }
    async fn profile_id(&self) -> ID {
        ID(self.0.profile_id.to_string())
    }
    async fn channel_id(&self) -> ID {
        ID(self.0.channel_id.to_string())
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "FrequencyCapInput")]
pub struct FrequencyCap {
    /// A channel kind, or null for every channel together.
    pub channel: Option<String>,
    pub window_seconds: i64,
    pub max_sends: i32,
}

#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "SendSettingsInput")]
pub struct SendSettings {
    /// The workspace's timezone (IANA), used when a person has no `timezone` trait.
    pub timezone: String,
    /// `HH:MM` local times; no message is sent between them (it waits until the end).
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
    pub frequency_caps: Vec<FrequencyCap>,
}

impl From<campaigns::settings::SendSettings> for SendSettings {
    fn from(s: campaigns::settings::SendSettings) -> Self {
        let (quiet_hours_start, quiet_hours_end) = s.quiet_hours.unzip();
        Self {
            timezone: s.timezone,
            quiet_hours_start,
            quiet_hours_end,
            frequency_caps: s
                .caps
                .into_iter()
                .map(|c| FrequencyCap {
                    channel: c.channel.map(|k| k.as_str().to_owned()),
                    window_seconds: c.window_seconds,
                    max_sends: c.max_sends,
                })
                .collect(),
        }
    }
}

impl SendSettings {
    pub fn into_domain(self) -> async_graphql::Result<campaigns::settings::SendSettings> {
        let quiet_hours = match (self.quiet_hours_start, self.quiet_hours_end) {
            (Some(start), Some(end)) => Some((start, end)),
            (None, None) => None,
            _ => {
                return Err(crate::error::coded(
                    kernel::ErrorCode::BadUserInput,
                    "quiet hours need both a start and an end",
                ));
            }
        };
        let mut caps = Vec::new();
        for cap in self.frequency_caps {
            let channel = match cap.channel {
                Some(name) => Some(
                    campaigns::channel::ChannelKind::parse(&name)
                        .map_err(crate::error::IntoGraphqlError::into_graphql)?,
                ),
                None => None,
            };
            caps.push(campaigns::settings::FrequencyCap {
                channel,
                window_seconds: cap.window_seconds,
                max_sends: cap.max_sends,
            });
        }
        Ok(campaigns::settings::SendSettings { timezone: self.timezone, quiet_hours, caps })
    }
}

#[derive(SimpleObject)]
pub struct BranchCount {
    pub step: String,
    pub then: i64,
    #[graphql(name = "else")]
    pub otherwise: i64,
}

#[derive(SimpleObject)]
pub struct SimulatedBlock {
    /// Why the message would not be sent (`quiet_hours`: deferred, then sent).
    pub reason: String,
    pub count: i64,
    /// A few of the people concerned.
    pub examples: Vec<ID>,
}

/// What a journey's draft would do to a sample of people, without sending or writing anything.
#[derive(SimpleObject)]
pub struct JourneySimulation {
    pub people: i64,
    /// Times each step would be taken, in the graph's order.
    pub steps: Vec<Count>,
    pub branches: Vec<BranchCount>,
    pub variants: Vec<Count>,
    pub holdout: i64,
    /// Sends by channel kind.
    pub sends: Vec<Count>,
    pub blocks: Vec<SimulatedBlock>,
    pub completed: i64,
    pub exited: i64,
    /// Still waiting at the end of the horizon, by the step they would take next.
    pub waiting: Vec<Count>,
}

impl From<campaigns::simulation::Simulation> for JourneySimulation {
    fn from(s: campaigns::simulation::Simulation) -> Self {
        let counted =
            |pairs: Vec<(String, usize)>| counts(pairs.into_iter().map(|(k, n)| (k, n as i64)).collect());
        Self {
            people: s.people as i64,
            steps: counted(s.steps),
            branches: s
                .branches
                .into_iter()
                .map(|(step, then, otherwise)| BranchCount {
                    step,
                    then: then as i64,
                    otherwise: otherwise as i64,
                })
                .collect(),
            variants: counted(s.variants),
            holdout: s.holdout as i64,
            sends: counted(s.sends),
            blocks: s
                .blocks
                .into_iter()
                .map(|b| SimulatedBlock {
                    reason: b.reason,
                    count: b.count as i64,
                    examples: b.examples.iter().map(|p| ID(p.to_string())).collect(),
                })
                .collect(),
            completed: s.completed as i64,
            exited: s.exited as i64,
            waiting: counted(s.waiting),
        }
    }
}

/// What a decision channel shows a person now.
pub struct Decision(pub campaigns::decisions::Decision);

#[Object]
impl Decision {
    async fn profile_id(&self) -> ID {
        ID(self.0.profile_id.to_string())
    }
    async fn journey_id(&self) -> ID {
        ID(self.0.journey_id.to_string())
    }
    async fn step(&self) -> &str {
        &self.0.step
    }
    async fn variant(&self) -> Option<&str> {
        self.0.variant.as_deref()
    }
    /// The rendered variant: field → text (`html` for web, `script` for call centres).
    async fn content(&self) -> Json<std::collections::BTreeMap<String, String>> {
        Json(self.0.content.clone())
    }
    async fn decided_at(&self) -> DateTime<Utc> {
        self.0.decided_at
    }
}

/// A file written for an audience channel.
#[derive(SimpleObject)]
pub struct AudienceFile {
    /// Its name in the channel's directory.
    pub name: String,
    /// People written (the header excluded).
    pub rows: i64,
    pub bytes: i64,
}
