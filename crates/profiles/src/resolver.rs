//! Identity resolution as a pure algorithm over the part of the graph an event touches. The
//! processor loads that part, runs events through [`GraphState::resolve`] in order and writes
//! the outcome; the rules dry run replays history through the same code.

use crate::{Identity, IdentityKind, rules::IdentityRules};
use kernel::ProfileId;
use std::collections::{HashMap, HashSet};

/// One merge decided while resolving an event: `merged` folds into `survivor` because the
/// event carried `cause`, which `merged` held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeStep {
    pub survivor: ProfileId,
    pub merged: ProfileId,
    pub cause: Identity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub profile: ProfileId,
    pub created: bool,
    /// Identifiers new to the graph, now held by `profile`.
    pub attached: Vec<Identity>,
    pub merges: Vec<MergeStep>,
}

/// The known part of a workspace's identity graph.
#[derive(Debug, Default)]
pub struct GraphState {
    owners: HashMap<Identity, ProfileId>,
    counts: HashMap<ProfileId, HashMap<IdentityKind, u32>>,
    blocked_pairs: HashSet<(ProfileId, ProfileId)>,
}

fn pair(a: ProfileId, b: ProfileId) -> (ProfileId, ProfileId) {
    if a <= b { (a, b) } else { (b, a) }
}

impl GraphState {
    pub fn know_owner(&mut self, identity: Identity, profile: ProfileId) {
        self.owners.insert(identity, profile);
    }

    pub fn know_count(&mut self, profile: ProfileId, kind: IdentityKind, count: u32) {
        self.counts.entry(profile).or_default().insert(kind, count);
    }

    /// Profiles that were unmerged by staff never merge again automatically.
    pub fn know_blocked_pair(&mut self, a: ProfileId, b: ProfileId) {
        self.blocked_pairs.insert(pair(a, b));
    }

    pub fn owner(&self, identity: &Identity) -> Option<ProfileId> {
        self.owners.get(identity).copied()
    }

    fn count(&self, profile: ProfileId, kind: &IdentityKind) -> u32 {
        self.counts.get(&profile).and_then(|c| c.get(kind)).copied().unwrap_or(0)
    }

    /// Whether `a` and `b` together stay within every kind's maximum.
    fn may_merge(&self, a: ProfileId, b: ProfileId, rules: &IdentityRules) -> bool {
        if self.blocked_pairs.contains(&pair(a, b)) {
            return false;
        }
        let (Some(ca), Some(cb)) = (self.counts.get(&a), self.counts.get(&b)) else {
            return true;
        };
        ca.iter().all(|(kind, n)| n + cb.get(kind).copied().unwrap_or(0) <= rules.rule(kind).max_per_profile)
    }

    /// Whether `pending` identifiers (of a profile not created yet) fit into `profile`.
    fn fits(&self, profile: ProfileId, pending: &[Identity], rules: &IdentityRules) -> bool {
        let mut extra: HashMap<&IdentityKind, u32> = HashMap::new();
        for identity in pending {
            *extra.entry(&identity.kind).or_default() += 1;
        }
        extra.iter().all(|(kind, n)| self.count(profile, kind) + n <= rules.rule(kind).max_per_profile)
    }

    /// Merges two known profiles when the rules allow it (staff or deduplication decided they
    /// are one person); refuses when a kind would exceed its maximum or staff kept them apart.
    pub fn merge_if_allowed(
        &mut self,
        survivor: ProfileId,
        merged: ProfileId,
        rules: &IdentityRules,
    ) -> bool {
        if survivor == merged || !self.may_merge(survivor, merged, rules) {
            return false;
        }
        self.merge(survivor, merged);
        true
    }

    fn merge(&mut self, survivor: ProfileId, merged: ProfileId) {
        for owner in self.owners.values_mut() {
            if *owner == merged {
                *owner = survivor;
            }
        }
        if let Some(counts) = self.counts.remove(&merged) {
            let target = self.counts.entry(survivor).or_default();
            for (kind, n) in counts {
                *target.entry(kind).or_default() += n;
            }
        }
        let inherited: Vec<_> = self
            .blocked_pairs
            .iter()
            .filter_map(|&(a, b)| {
                if a == merged {
                    Some(b)
                } else if b == merged {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        for other in inherited {
            self.blocked_pairs.insert(pair(survivor, other));
        }
    }

    fn attach(&mut self, identity: Identity, profile: ProfileId) {
        *self.counts.entry(profile).or_default().entry(identity.kind.clone()).or_default() += 1;
        self.owners.insert(identity, profile);
    }

    /// Decides which profile an event with these identifiers belongs to, merging and
    /// attaching as the rules allow. `None` when no identifier is usable (all blocked).
    ///
    /// Identifiers are taken in priority order. The first one that is known gives the target
    /// profile; each other known identifier's profile merges into it when no kind would exceed
    /// its maximum; new identifiers attach while their kind has room. When the top identifier
    /// is new and a lower one is known, the new ones join that profile if they fit (an
    /// anonymous visitor identifying), else the event starts a new profile (a second account
    /// on a shared device does not take over the first one's profile).
    pub fn resolve(
        &mut self,
        identities: &[Identity],
        rules: &IdentityRules,
        mut new_profile: impl FnMut() -> ProfileId,
    ) -> Option<Resolution> {
        let mut usable: Vec<(i32, bool, &Identity)> = identities
            .iter()
            .filter_map(|identity| {
                let rule = rules.rule(&identity.kind);
                (!rule.blocks(&identity.value)).then_some((rule.priority, rule.merges, identity))
            })
            .collect();
        if usable.is_empty() {
            return None;
        }
        usable.sort_by_key(|u| std::cmp::Reverse(u.0));
        usable.dedup_by(|a, b| a.2 == b.2);

        let mut target: Option<(ProfileId, bool)> = None;
        let mut pending: Vec<Identity> = Vec::new();
        let mut attached = Vec::new();
        let mut merges = Vec::new();
        for &(_, merges_allowed, identity) in &usable {
            let Some(owner) = self.owner(identity) else {
                pending.push(identity.clone());
                continue;
            };
            if !merges_allowed {
                continue;
            }
            let current = match target {
                Some((current, _)) => current,
                None if self.fits(owner, &pending, rules) => {
                    target = Some((owner, false));
                    continue;
                }
                None => {
                    // The known profile cannot take the higher-priority new identifiers: they
                    // start a profile of their own, which the known one may still join.
                    let created = new_profile();
                    self.counts.entry(created).or_default();
                    attached.extend(self.attach_pending(created, &mut pending, rules));
                    target = Some((created, true));
                    created
                }
            };
            if owner != current && self.may_merge(current, owner, rules) {
                self.merge(current, owner);
                merges.push(MergeStep { survivor: current, merged: owner, cause: identity.clone() });
            }
        }
        let (profile, created) = match target {
            Some(found) => found,
            None => {
                let created = new_profile();
                self.counts.entry(created).or_default();
                (created, true)
            }
        };
        attached.extend(self.attach_pending(profile, &mut pending, rules));
        Some(Resolution { profile, created, attached, merges })
    }

    fn attach_pending(
        &mut self,
        profile: ProfileId,
        pending: &mut Vec<Identity>,
        rules: &IdentityRules,
    ) -> Vec<Identity> {
        let mut attached = Vec::new();
        for identity in pending.drain(..) {
            if self.count(profile, &identity.kind) < rules.rule(&identity.kind).max_per_profile {
                self.attach(identity.clone(), profile);
                attached.push(identity);
            }
        }
        attached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: IdentityKind, value: &str) -> Identity {
        Identity { kind, value: value.into() }
    }

    fn resolve(state: &mut GraphState, ids: &[Identity]) -> Resolution {
        state.resolve(ids, &IdentityRules::default(), ProfileId::new).unwrap()
    }

    #[test]
    fn anonymous_visitor_becomes_known() {
        let mut state = GraphState::default();
        let anon = resolve(&mut state, &[id(IdentityKind::AnonymousId, "a1")]);
        assert!(anon.created);
        let known =
            resolve(&mut state, &[id(IdentityKind::UserId, "u1"), id(IdentityKind::AnonymousId, "a1")]);
        assert_eq!(known.profile, anon.profile);
        assert!(!known.created);
        assert_eq!(known.attached, vec![id(IdentityKind::UserId, "u1")]);
    }

    #[test]
    fn shared_email_merges_two_profiles_and_names_the_cause() {
        let mut state = GraphState::default();
        let web =
            resolve(&mut state, &[id(IdentityKind::AnonymousId, "a1"), id(IdentityKind::Email, "x@y.fr")]);
        let app = resolve(&mut state, &[id(IdentityKind::UserId, "u1")]);
        let both = resolve(&mut state, &[id(IdentityKind::UserId, "u1"), id(IdentityKind::Email, "x@y.fr")]);
        assert_eq!(both.profile, app.profile);
        assert_eq!(
            both.merges,
            vec![MergeStep {
                survivor: app.profile,
                merged: web.profile,
                cause: id(IdentityKind::Email, "x@y.fr")
            }]
        );
        assert_eq!(state.owner(&id(IdentityKind::AnonymousId, "a1")), Some(app.profile));
    }

    #[test]
    fn two_user_ids_never_merge_and_a_second_user_on_a_shared_cookie_gets_their_own_profile() {
        let mut state = GraphState::default();
        let first =
            resolve(&mut state, &[id(IdentityKind::UserId, "u1"), id(IdentityKind::AnonymousId, "a1")]);
        let second =
            resolve(&mut state, &[id(IdentityKind::UserId, "u2"), id(IdentityKind::AnonymousId, "a1")]);
        assert_ne!(first.profile, second.profile);
        assert!(second.created);
        assert!(second.merges.is_empty());
        assert_eq!(state.owner(&id(IdentityKind::AnonymousId, "a1")), Some(first.profile));
    }

    #[test]
    fn shared_ips_and_blocked_values_never_merge() {
        let mut state = GraphState::default();
        let a = resolve(&mut state, &[id(IdentityKind::UserId, "u1"), id(IdentityKind::Ip, "10.0.0.1")]);
        let b = resolve(&mut state, &[id(IdentityKind::UserId, "u2"), id(IdentityKind::Ip, "10.0.0.1")]);
        assert_ne!(a.profile, b.profile);
        let c = resolve(
            &mut state,
            &[id(IdentityKind::AnonymousId, "c"), id(IdentityKind::Email, "test@test.com")],
        );
        let d = resolve(
            &mut state,
            &[id(IdentityKind::AnonymousId, "d"), id(IdentityKind::Email, "test@test.com")],
        );
        assert_ne!(c.profile, d.profile);
        assert!(
            state
                .resolve(&[id(IdentityKind::UserId, "undefined")], &IdentityRules::default(), ProfileId::new)
                .is_none()
        );
    }

    #[test]
    fn blocked_pairs_stay_apart() {
        let mut state = GraphState::default();
        let a = resolve(&mut state, &[id(IdentityKind::AnonymousId, "a")]);
        let b = resolve(&mut state, &[id(IdentityKind::AnonymousId, "b")]);
        state.know_blocked_pair(a.profile, b.profile);
        let both =
            resolve(&mut state, &[id(IdentityKind::AnonymousId, "a"), id(IdentityKind::AnonymousId, "b")]);
        assert!(both.merges.is_empty());
    }
}
