use super::objects::{
    Consent, ConsentInput, DeduplicationInput, DeduplicationRun, Erasure, IdentityRule, IdentityRuleInput,
    IngestResult, Merge, MergeSuggestion, ProfileSettings, ProfileSettingsInput, RejectedEvent,
};
use crate::{
    context::{ContextExt, parse_id},
    error::{GqlResult, coded},
};
use async_graphql::{Context, ID, Json, Object};
use kernel::ErrorCode;
use profiles::message::{self, MAX_EVENT_BYTES};

/// At most this many events per `ingestEvents` call, like one tracking API batch.
const MAX_EVENTS_PER_CALL: usize = 500;

#[derive(Default)]
pub struct ProfilesMutation;

#[Object]
impl ProfilesMutation {
    /// Ingests Segment-spec messages (each with its `type`), as `POST /v1/batch` does. Invalid
    /// messages are reported in `rejected`; the others are committed.
    async fn ingest_events(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        events: Vec<Json<serde_json::Value>>,
    ) -> async_graphql::Result<IngestResult> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        if events.len() > MAX_EVENTS_PER_CALL {
            return Err(coded(
                ErrorCode::BadUserInput,
                format!("at most {MAX_EVENTS_PER_CALL} events per call"),
            ));
        }
        let received_at = chrono::Utc::now();
        let mut accepted = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        for (index, Json(event)) in events.into_iter().enumerate() {
            let parsed = match event {
                serde_json::Value::Object(mut object) if event_size(&object) <= MAX_EVENT_BYTES => {
                    object.remove("writeKey");
                    message::parse_message(object, None, &serde_json::Map::new(), None, received_at)
                }
                serde_json::Value::Object(_) => Err(profiles::ProfilesError::TooLarge(format!(
                    "an event may have at most {MAX_EVENT_BYTES} bytes"
                ))),
                _ => Err(profiles::ProfilesError::InvalidInput("a message must be a JSON object".into())),
            };
            match parsed {
                Ok(event) => accepted.push(event),
                Err(error) => rejected.push(RejectedEvent { index, message: error.to_string() }),
            }
        }
        let outcome = ctx.profiles().ingest_as(ctx.actor()?, workspace, &accepted).await.gql()?;
        Ok(IngestResult { accepted: outcome.accepted, duplicates: outcome.duplicates, rejected })
    }

    /// Undoes a merge exactly: what the merged profile brought returns to it, and the two
    /// are not merged again automatically.
    async fn undo_merge(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        merge_id: ID,
    ) -> async_graphql::Result<Merge> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let merge_id = parse_id(&merge_id)?;
        ctx.profiles().undo_merge(ctx.actor()?, workspace, merge_id).await.gql().map(Merge)
    }

    /// Finds duplicate profiles by name, birth date, address, email and phone: sure pairs
    /// merge (undoable like any merge), likely ones replace the open suggestions.
    async fn run_deduplication(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        input: Option<DeduplicationInput>,
    ) -> async_graphql::Result<DeduplicationRun> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let input = input.unwrap_or_default();
        let options = profiles::duplicates::DedupOptions {
            auto_merge_probability: input.auto_merge_probability,
            review_probability: input.review_probability,
        };
        let run = ctx.profiles().run_deduplication(ctx.actor()?, workspace, options).await.gql()?;
        Ok(DeduplicationRun {
            profiles_compared: run.profiles_compared,
            candidate_pairs: run.candidate_pairs,
            merged: run.merged,
            refused_by_rules: run.refused_by_rules,
            suggestions: run.suggestions,
        })
    }

    /// Accepts a suggestion: the two profiles merge.
    async fn accept_merge_suggestion(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<MergeSuggestion> {
        decide(ctx, workspace_id, id, true).await
    }

    /// Rejects a suggestion: the two profiles are kept apart from now on.
    async fn reject_merge_suggestion(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<MergeSuggestion> {
        decide(ctx, workspace_id, id, false).await
    }

    /// Sets the rule for one identity kind (admins).
    async fn set_identity_rule(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        input: IdentityRuleInput,
    ) -> async_graphql::Result<IdentityRule> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.profiles().set_identity_rule(ctx.actor()?, workspace, input.into()).await.gql().map(IdentityRule)
    }

    async fn update_profile_settings(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        input: ProfileSettingsInput,
    ) -> async_graphql::Result<ProfileSettings> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let update = profiles::settings::SettingsUpdate {
            default_region: input.default_region,
            source_precedence: input.source_precedence,
        };
        ctx.profiles().update_settings(ctx.actor()?, workspace, update).await.gql().map(ProfileSettings::from)
    }

    /// Records a consent decision for a purpose on a channel; the history is kept.
    async fn set_consent(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        profile_id: ID,
        input: ConsentInput,
    ) -> async_graphql::Result<Consent> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let profile = parse_id(&profile_id)?;
        let input = profiles::consent::ConsentInput {
            purpose: input.purpose,
            channel: input.channel,
            granted: input.granted,
            source: input.source,
        };
        ctx.profiles().set_consent(ctx.actor()?, workspace, profile, input).await.gql().map(Consent)
    }

    /// Erases a person everywhere (GDPR art. 17), keeping only salted hashes of their
    /// identifiers so later events about them are dropped. Admins only; cannot be undone.
    async fn erase_profile(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<Erasure> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        let erased = ctx.profiles().erase_profile(ctx.actor()?, workspace, id).await.gql()?;
        Ok(Erasure { profiles: erased.profiles, identities: erased.identities, events: erased.events })
    }
}

async fn decide(
    ctx: &Context<'_>,
    workspace_id: Option<ID>,
    id: ID,
    accept: bool,
) -> async_graphql::Result<MergeSuggestion> {
    let workspace = ctx.workspace(workspace_id.as_ref())?;
    let id = uuid::Uuid::parse_str(id.as_str().trim())
        .map_err(|_| coded(ErrorCode::BadUserInput, "`id` is not a valid suggestion id"))?;
    ctx.profiles()
        .decide_merge_suggestion(ctx.actor()?, workspace, id, accept)
        .await
        .gql()
        .map(MergeSuggestion)
}

fn event_size(object: &serde_json::Map<String, serde_json::Value>) -> usize {
    serde_json::to_vec(object).map(|v| v.len()).unwrap_or(usize::MAX)
}
