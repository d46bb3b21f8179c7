//! The dry run of a rule change: the workspace's event history is replayed through the
//! resolver twice, under the rules in force and under the proposed ones, and the two resulting
//! partitions of events into people are compared. Comparing two replays (rather than the
//! replay with today's profiles) isolates the effect of the rules from staff unmerges and
//! deduplication, which a replay does not know about.

use crate::{
    IdentityKind, Profiles, ProfilesError, extract,
    resolver::GraphState,
    rules::IdentityRules,
    service::Result,
    settings::{self, RuleInput},
    sql::Sql,
};
use kernel::{ProfileId, WorkspaceId};
use std::collections::{HashMap, HashSet};
use tenancy::{Actor, Permission};

/// Events replayed at most, oldest first; beyond it the preview says it is partial.
const MAX_REPLAYED_EVENTS: i64 = 200_000;
/// Rules proposed in one preview: one per kind is plenty.
const MAX_PROPOSED_RULES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesPreview {
    pub events_replayed: usize,
    /// Whether the history was longer than the replay limit.
    pub partial: bool,
    pub people_under_current_rules: usize,
    pub people_under_proposed_rules: usize,
    /// People (under the current rules) who would be merged into someone else.
    pub would_merge: usize,
    /// People (under the current rules) who would be divided into several.
    pub would_split: usize,
}

impl Profiles {
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn preview_rules(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        proposed: Vec<RuleInput>,
    ) -> Result<RulesPreview> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let tenant = scope.tenant_id().as_uuid();
        if proposed.len() > MAX_PROPOSED_RULES {
            return Err(ProfilesError::invalid(format!("at most {MAX_PROPOSED_RULES} rules at once")));
        }
        let proposed: Vec<_> = proposed.into_iter().map(RuleInput::parse).collect::<Result<_>>()?;
        let txn = scope.begin(self.db()).await?;
        let settings = settings::load(&txn, tenant).await?;
        let mut select = Sql::new("SELECT type, name, body FROM events WHERE tenant_id = ");
        select
            .bind(tenant)
            // Enrichment rows never link identities, so they have nothing to replay.
            .push(" AND status IN ('processed', 'unresolved') AND source NOT LIKE 'enrichment:%' ORDER BY id LIMIT ")
            .bind(MAX_REPLAYED_EVENTS + 1);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let partial = rows.len() as i64 > MAX_REPLAYED_EVENTS;
        let mut histories = Vec::with_capacity(rows.len());
        for row in rows.iter().take(MAX_REPLAYED_EVENTS as usize) {
            let event_type: String = row.try_get("", "type")?;
            let name: Option<String> = row.try_get("", "name")?;
            let body: serde_json::Value = row.try_get("", "body")?;
            histories.push(extract::facts(&event_type, name.as_deref(), &body, &settings.normalization));
        }
        let current = settings.rules.clone();
        let mut changed = settings.rules;
        for rule in proposed {
            changed = changed.with(rule);
        }
        let before = replay(&histories, &current);
        let after = replay(&histories, &changed);
        let (would_merge, would_split) = compare(&before, &after);
        Ok(RulesPreview {
            events_replayed: histories.len(),
            partial,
            people_under_current_rules: distinct(&before),
            people_under_proposed_rules: distinct(&after),
            would_merge,
            would_split,
        })
    }
}

/// The person each event belongs to at the end of the replay (`None`: no usable identifier).
fn replay(events: &[extract::EventFacts], rules: &IdentityRules) -> Vec<Option<ProfileId>> {
    let mut state = GraphState::default();
    let mut redirects: HashMap<ProfileId, ProfileId> = HashMap::new();
    let mut assigned = Vec::with_capacity(events.len());
    for facts in events {
        let mut identities = facts.identities.clone();
        if let Some(previous) = &facts.previous_id {
            let as_user = crate::Identity { kind: IdentityKind::UserId, value: previous.clone() };
            let kind = if state.owner(&as_user).is_some() {
                IdentityKind::UserId
            } else {
                IdentityKind::AnonymousId
            };
            identities.push(crate::Identity { kind, value: previous.clone() });
        }
        let resolution = state.resolve(&identities, rules, ProfileId::new);
        if let Some(resolution) = &resolution {
            for merge in &resolution.merges {
                redirects.insert(merge.merged, merge.survivor);
            }
        }
        assigned.push(resolution.map(|r| r.profile));
    }
    assigned.into_iter().map(|p| p.map(|p| follow(p, &redirects))).collect()
}

fn follow(mut id: ProfileId, redirects: &HashMap<ProfileId, ProfileId>) -> ProfileId {
    for _ in 0..=redirects.len() {
        match redirects.get(&id) {
            Some(next) => id = *next,
            None => break,
        }
    }
    id
}

fn distinct(assigned: &[Option<ProfileId>]) -> usize {
    assigned.iter().flatten().collect::<HashSet<_>>().len()
}

/// How many `before` people end up merged into another, and how many are divided.
fn compare(before: &[Option<ProfileId>], after: &[Option<ProfileId>]) -> (usize, usize) {
    let mut after_of_before: HashMap<ProfileId, HashSet<ProfileId>> = HashMap::new();
    let mut before_of_after: HashMap<ProfileId, HashSet<ProfileId>> = HashMap::new();
    for (b, a) in before.iter().zip(after) {
        if let (Some(b), Some(a)) = (b, a) {
            after_of_before.entry(*b).or_default().insert(*a);
            before_of_after.entry(*a).or_default().insert(*b);
        }
    }
    let merged = before_of_after.values().map(|people| people.len().saturating_sub(1)).sum();
    let split = after_of_before.values().filter(|people| people.len() > 1).count();
    (merged, split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn facts(ids: &[(IdentityKind, &str)]) -> extract::EventFacts {
        extract::EventFacts {
            identities: ids.iter().map(|(k, v)| Identity { kind: k.clone(), value: (*v).into() }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn letting_ips_merge_would_merge_people_sharing_one() {
        let events = vec![
            facts(&[(IdentityKind::AnonymousId, "a"), (IdentityKind::Ip, "10.0.0.1")]),
            facts(&[(IdentityKind::AnonymousId, "b"), (IdentityKind::Ip, "10.0.0.1")]),
            facts(&[(IdentityKind::AnonymousId, "c")]),
        ];
        let current = IdentityRules::default();
        let ip_merges = current
            .clone()
            .with(crate::rules::IdentityRule::new(IdentityKind::Ip, 10, 50, true, vec![], vec![]).unwrap());
        let (before, after) = (replay(&events, &current), replay(&events, &ip_merges));
        assert_eq!((distinct(&before), distinct(&after)), (3, 2));
        assert_eq!(compare(&before, &after), (1, 0));
        assert_eq!(compare(&after, &before), (0, 1));
    }
}
