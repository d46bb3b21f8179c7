//! GraphQL shapes of profile values. `Profile`'s list fields call the service with the
//! caller's actor, so each is authorised like a top-level query.

use crate::{
    connection::{into_connection, page_request},
    context::ContextExt,
    error::GqlResult,
};
use async_graphql::{
    ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject, connection::Connection,
};
use chrono::{DateTime, Utc};

pub struct Profile(pub profiles::read::Profile);

#[Object]
impl Profile {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Trait values as one JSON object.
    async fn traits(&self) -> Json<serde_json::Map<String, serde_json::Value>> {
        Json(self.0.traits())
    }

    /// Each trait with where its value came from and when.
    async fn trait_details(&self) -> Vec<TraitValue> {
        self.0
            .trait_details
            .iter()
            .map(|(name, entry)| TraitValue {
                name: name.clone(),
                value: Json(entry.get("value").cloned().unwrap_or_default()),
                source: entry.get("source").and_then(|s| s.as_str()).unwrap_or_default().to_owned(),
                updated_at: entry
                    .get("at")
                    .and_then(|s| s.as_str())
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc)),
            })
            .collect()
    }

    /// The segments this person is in now, and since when.
    async fn segments(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::segments::SegmentMembership>> {
        let workspace = self.0.workspace_id;
        let found = ctx.segments().profile_segments(ctx.actor()?, workspace, self.0.id).await.gql()?;
        Ok(found
            .into_iter()
            .map(|membership| crate::segments::SegmentMembership { workspace, membership })
            .collect())
    }

    async fn first_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_seen_at
    }

    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }

    async fn event_count(&self) -> i64 {
        self.0.event_count
    }

    async fn lifetime_revenue(&self) -> f64 {
        self.0.lifetime_revenue
    }

    async fn first_touch_channel(&self) -> Option<&str> {
        self.0.first_touch_channel.as_deref()
    }

    async fn devices(&self) -> &[String] {
        &self.0.devices
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn identities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Identity>> {
        let found = ctx.profiles().identities(ctx.actor()?, self.0.workspace_id, self.0.id).await.gql()?;
        Ok(found.into_iter().map(Identity).collect())
    }

    /// Events across channels and devices, newest first.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(0, 100) as usize).saturating_mul(child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Event>> {
        let page = page_request(first, after)?;
        let events =
            ctx.profiles().timeline(ctx.actor()?, self.0.workspace_id, self.0.id, page).await.gql()?;
        Ok(into_connection(events, Event))
    }

    /// Every merge that built this profile, each with the identifier that caused it.
    async fn merges(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Merge>> {
        let merges = ctx.profiles().merges(ctx.actor()?, self.0.workspace_id, self.0.id).await.gql()?;
        Ok(merges.into_iter().map(Merge).collect())
    }

    /// The consent in force per purpose and channel.
    async fn consents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Consent>> {
        let consents = ctx.profiles().consents(ctx.actor()?, self.0.workspace_id, self.0.id).await.gql()?;
        Ok(consents.into_iter().map(Consent).collect())
    }

    /// Every consent record, newest first.
    async fn consent_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Consent>> {
        let consents =
            ctx.profiles().consent_history(ctx.actor()?, self.0.workspace_id, self.0.id).await.gql()?;
        Ok(consents.into_iter().map(Consent).collect())
    }
}

#[derive(SimpleObject)]
pub struct TraitValue {
    pub name: String,
    pub value: Json<serde_json::Value>,
    pub source: String,
    pub updated_at: Option<DateTime<Utc>>,
}

pub struct Identity(pub profiles::read::ProfileIdentity);

#[Object]
impl Identity {
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn value(&self) -> &str {
        &self.0.value
    }
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Event(pub profiles::read::TimelineEvent);

#[Object]
impl Event {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn message_id(&self) -> &str {
        &self.0.message_id
    }
    /// `identify`, `track`, `page`, `screen`, `group` or `alias`.
    async fn r#type(&self) -> &str {
        &self.0.event_type
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn channel(&self) -> Option<&str> {
        self.0.channel.as_deref()
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    async fn received_at(&self) -> DateTime<Utc> {
        self.0.received_at
    }
    /// The profile the event was first resolved to; differs from its profile after a merge.
    async fn first_profile_id(&self) -> Option<ID> {
        self.0.first_profile_id.map(|p| ID(p.to_string()))
    }
    async fn properties(&self) -> Json<serde_json::Value> {
        Json(self.0.body.get("properties").cloned().unwrap_or_default())
    }
    async fn context(&self) -> Json<serde_json::Value> {
        Json(self.0.body.get("context").cloned().unwrap_or_default())
    }
    /// The message as received.
    async fn raw(&self) -> Json<serde_json::Value> {
        Json(self.0.body.clone())
    }
}

pub struct Merge(pub profiles::read::Merge);

#[Object]
impl Merge {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn survivor_id(&self) -> ID {
        ID(self.0.survivor_id.to_string())
    }
    async fn merged_id(&self) -> ID {
        ID(self.0.merged_id.to_string())
    }
    /// The identifier both profiles held.
    async fn cause_kind(&self) -> &str {
        &self.0.cause_kind
    }
    async fn cause_value(&self) -> &str {
        &self.0.cause_value
    }
    /// The event that carried it.
    async fn event_id(&self) -> Option<ID> {
        self.0.event_id.map(|e| ID(e.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn undone_at(&self) -> Option<DateTime<Utc>> {
        self.0.undone_at
    }
}

pub struct Consent(pub profiles::consent::Consent);

#[Object]
impl Consent {
    async fn purpose(&self) -> &str {
        &self.0.purpose
    }
    /// A channel, or `*` for every channel.
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    async fn granted(&self) -> bool {
        self.0.granted
    }
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}

pub struct IdentityRule(pub profiles::rules::IdentityRule);

#[Object]
impl IdentityRule {
    async fn kind(&self) -> &str {
        self.0.kind.as_str()
    }
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    async fn max_per_profile(&self) -> u32 {
        self.0.max_per_profile
    }
    /// Whether a shared identifier of this kind merges profiles.
    async fn merges(&self) -> bool {
        self.0.merges
    }
    async fn blocked_values(&self) -> &[String] {
        &self.0.blocked_values
    }
    async fn blocked_patterns(&self) -> &[String] {
        &self.0.blocked_patterns
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ProfileSettings {
    /// ISO 3166 region for phone numbers written without a country code.
    pub default_region: Option<String>,
    /// Trait sources, strongest first.
    pub source_precedence: Vec<String>,
    #[graphql(skip)]
    pub rules: profiles::rules::IdentityRules,
}

#[ComplexObject]
impl ProfileSettings {
    /// The rules in effect, highest priority first.
    async fn identity_rules(&self) -> Vec<IdentityRule> {
        self.rules.effective().into_iter().map(IdentityRule).collect()
    }
}

impl From<profiles::settings::WorkspaceProfileSettings> for ProfileSettings {
    fn from(s: profiles::settings::WorkspaceProfileSettings) -> Self {
        Self {
            default_region: s.default_region,
            source_precedence: s.precedence.order().to_vec(),
            rules: s.rules,
        }
    }
}

#[derive(InputObject)]
pub struct ProfileFilterInput {
    /// Profiles holding this identifier (normalised like ingestion: emails lower-cased, phones
    /// to E.164…).
    pub identifier: Option<IdentifierInput>,
    /// Profiles whose trait equals this value (compared as text).
    pub trait_equals: Option<TraitEqualsInput>,
    /// Profiles whose name, email or company contains this text.
    pub text: Option<String>,
}

#[derive(InputObject)]
pub struct IdentifierInput {
    pub kind: String,
    pub value: String,
}

#[derive(InputObject)]
pub struct TraitEqualsInput {
    pub name: String,
    pub value: String,
}

#[derive(SimpleObject)]
pub struct RejectedEvent {
    pub index: usize,
    pub message: String,
}

#[derive(SimpleObject)]
pub struct IngestResult {
    pub accepted: usize,
    /// Already stored under the same `messageId` (retries): acknowledged, not stored twice.
    pub duplicates: usize,
    pub rejected: Vec<RejectedEvent>,
}

#[derive(SimpleObject)]
pub struct Erasure {
    pub profiles: u64,
    pub identities: u64,
    pub events: u64,
}

#[derive(InputObject)]
pub struct IdentityRuleInput {
    /// A built-in kind or a custom one (lower-case letters, digits, `_`).
    pub kind: String,
    pub priority: i32,
    pub max_per_profile: u32,
    pub merges: bool,
    #[graphql(default)]
    pub blocked_values: Vec<String>,
    /// Regular expressions searched in the normalised value.
    #[graphql(default)]
    pub blocked_patterns: Vec<String>,
}

#[derive(InputObject)]
pub struct ProfileSettingsInput {
    pub default_region: Option<String>,
    pub source_precedence: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct ConsentInput {
    pub purpose: String,
    /// A channel (`email`, `sms`…) or `*` for every channel.
    pub channel: String,
    pub granted: bool,
    pub source: String,
}

pub struct MergeSuggestion(pub profiles::duplicates::MergeSuggestion);

#[Object]
impl MergeSuggestion {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn profile_a_id(&self) -> ID {
        ID(self.0.profile_a.to_string())
    }
    async fn profile_b_id(&self) -> ID {
        ID(self.0.profile_b.to_string())
    }
    /// The estimated probability that both are one person.
    async fn probability(&self) -> f64 {
        self.0.probability
    }
    /// Field by field: `{field, level, weight}`, the weight in bits of evidence.
    async fn explanation(&self) -> Json<serde_json::Value> {
        Json(self.0.explanation.clone())
    }
    /// `open`, `accepted` or `rejected`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject, Default)]
pub struct DeduplicationInput {
    /// Match probability from which pairs merge at once (default 0.99).
    pub auto_merge_probability: Option<f64>,
    /// Match probability from which pairs become suggestions (default 0.5).
    pub review_probability: Option<f64>,
}

#[derive(SimpleObject)]
pub struct DeduplicationRun {
    pub profiles_compared: usize,
    pub candidate_pairs: usize,
    pub merged: usize,
    /// Sure pairs the identity rules refused to merge; offered as suggestions instead.
    pub refused_by_rules: usize,
    pub suggestions: usize,
}

impl From<IdentityRuleInput> for profiles::settings::RuleInput {
    fn from(input: IdentityRuleInput) -> Self {
        Self {
            kind: input.kind,
            priority: input.priority,
            max_per_profile: input.max_per_profile,
            merges: input.merges,
            blocked_values: input.blocked_values,
            blocked_patterns: input.blocked_patterns,
        }
    }
}

/// What a rule change would do, from a replay of the event history under both rule sets.
#[derive(SimpleObject)]
pub struct RulesPreview {
    pub events_replayed: usize,
    /// The history was longer than the replay limit (the oldest 200,000 events).
    pub partial: bool,
    pub people_under_current_rules: usize,
    pub people_under_proposed_rules: usize,
    /// People who would be merged into someone else.
    pub would_merge: usize,
    /// People who would be divided into several.
    pub would_split: usize,
}
