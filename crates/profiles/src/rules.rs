//! Per-workspace identity rules: which identifiers may merge profiles, in which order they
//! win, how many of a kind one person may have, and which values are never trusted.

use crate::{IdentityKind, ProfilesError};
use regex::{Regex, RegexBuilder};
use std::{collections::BTreeMap, sync::LazyLock};

const MAX_BLOCKED_VALUES: usize = 1_000;
const MAX_BLOCKED_PATTERNS: usize = 50;
const MAX_PATTERN_BYTES: usize = 256;
/// Bounds the compiled size of a staff-supplied pattern, so a hostile one cannot eat memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 16;

/// The rule for one identity kind.
#[derive(Debug, Clone)]
pub struct IdentityRule {
    pub kind: IdentityKind,
    /// Higher wins: when an event's identifiers disagree, the profile of the highest-priority
    /// identifier is the one the event lands on.
    pub priority: i32,
    /// How many identifiers of this kind one profile may hold. A merge that would exceed it
    /// does not happen (two different `user_id`s never merge by default).
    pub max_per_profile: u32,
    /// Whether a shared identifier of this kind merges profiles. Off for IPs and postal
    /// addresses by default: households and offices share them.
    pub merges: bool,
    pub blocked_values: Vec<String>,
    pub blocked_patterns: Vec<String>,
    compiled: Vec<Regex>,
}

impl IdentityRule {
    pub fn new(
        kind: IdentityKind,
        priority: i32,
        max_per_profile: u32,
        merges: bool,
        blocked_values: Vec<String>,
        blocked_patterns: Vec<String>,
    ) -> Result<Self, ProfilesError> {
        if !(1..=1_000).contains(&max_per_profile) {
            return Err(ProfilesError::invalid("maxPerProfile must be between 1 and 1000"));
        }
        if !(-1_000..=1_000).contains(&priority) {
            return Err(ProfilesError::invalid("priority must be between -1000 and 1000"));
        }
        if blocked_values.len() > MAX_BLOCKED_VALUES || blocked_patterns.len() > MAX_BLOCKED_PATTERNS {
            return Err(ProfilesError::invalid(format!(
                "at most {MAX_BLOCKED_VALUES} blocked values and {MAX_BLOCKED_PATTERNS} patterns per kind"
            )));
        }
        let compiled = blocked_patterns
            .iter()
            .map(|pattern| {
                if pattern.len() > MAX_PATTERN_BYTES {
                    return Err(ProfilesError::invalid(format!(
                        "a blocked pattern has at most {MAX_PATTERN_BYTES} bytes"
                    )));
                }
                RegexBuilder::new(pattern)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .map_err(|e| ProfilesError::invalid(format!("blocked pattern `{pattern}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let blocked_values = blocked_values.into_iter().map(|v| v.trim().to_lowercase()).collect();
        Ok(Self { kind, priority, max_per_profile, merges, blocked_values, blocked_patterns, compiled })
    }

    /// Whether a normalised value is on the blocklist (values compare case-insensitively;
    /// patterns are searched anywhere in the value, anchor them with `^…$`).
    pub fn blocks(&self, value: &str) -> bool {
        (!self.blocked_values.is_empty() && self.blocked_values.contains(&value.to_lowercase()))
            || self.compiled.iter().any(|re| re.is_match(value))
    }

    /// The built-in rule for a kind, used until a workspace sets its own.
    pub fn default_for(kind: &IdentityKind) -> Self {
        let words = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let bogus_ids =
            words(&["undefined", "null", "nil", "none", "0", "-1", "anonymous", "guest", "unknown"]);
        let (priority, max, merges, values, patterns) = match kind {
            IdentityKind::UserId => (100, 1, true, bogus_ids, vec![]),
            IdentityKind::Email => {
                (90, 5, true, words(&["test@test.com", "test@example.com", "a@a.com"]), vec![])
            }
            IdentityKind::Phone => (80, 5, true, vec![], words(&["^\\+?(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$"])),
            IdentityKind::Maid => (70, 10, true, vec![], words(&["^[0-]+$"])),
            IdentityKind::DeviceId => (60, 20, true, bogus_ids, words(&["^[0-]+$"])),
            IdentityKind::Custom(_) => (50, 10, true, bogus_ids, vec![]),
            IdentityKind::AnonymousId => (40, 100, true, bogus_ids, vec![]),
            IdentityKind::Postal => (20, 5, false, vec![], vec![]),
            IdentityKind::Ip => (10, 50, false, vec![], vec![]),
        };
        // The built-in patterns are constants known to compile.
        Self::new(kind.clone(), priority, max, merges, values, patterns)
            .unwrap_or_else(|_| Self::bare(kind.clone(), priority, max, merges))
    }

    fn bare(kind: IdentityKind, priority: i32, max_per_profile: u32, merges: bool) -> Self {
        Self {
            kind,
            priority,
            max_per_profile,
            merges,
            blocked_values: vec![],
            blocked_patterns: vec![],
            compiled: vec![],
        }
    }
}

/// A workspace's rules: its own where set, the built-in ones otherwise.
#[derive(Debug, Clone, Default)]
pub struct IdentityRules {
    overrides: BTreeMap<IdentityKind, IdentityRule>,
}

impl IdentityRules {
    pub fn with(mut self, rule: IdentityRule) -> Self {
        self.overrides.insert(rule.kind.clone(), rule);
        self
    }

    /// The rule in effect for `kind`. Called for every identifier of every event, so the
    /// built-in rules (and their compiled patterns) are made once per process, not per call.
    pub fn rule(&self, kind: &IdentityKind) -> &IdentityRule {
        static BUILT_IN: LazyLock<BTreeMap<IdentityKind, IdentityRule>> = LazyLock::new(|| {
            IdentityKind::BUILT_IN.iter().map(|k| (k.clone(), IdentityRule::default_for(k))).collect()
        });
        // Every custom kind without a rule of its own shares this one; only its `kind` differs.
        static CUSTOM: LazyLock<IdentityRule> =
            LazyLock::new(|| IdentityRule::default_for(&IdentityKind::Custom("custom".into())));
        self.overrides.get(kind).or_else(|| BUILT_IN.get(kind)).unwrap_or(&CUSTOM)
    }

    /// The rules in effect for the built-in kinds and every overridden custom kind.
    pub fn effective(&self) -> Vec<IdentityRule> {
        let mut kinds = IdentityKind::BUILT_IN.to_vec();
        kinds.extend(self.overrides.keys().filter(|k| matches!(k, IdentityKind::Custom(_))).cloned());
        let mut rules: Vec<_> =
            kinds.iter().map(|k| IdentityRule { kind: k.clone(), ..self.rule(k).clone() }).collect();
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.kind.cmp(&b.kind)));
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_blocklists_catch_the_usual_junk() {
        assert!(
            IdentityRule::default_for(&IdentityKind::Maid).blocks("00000000-0000-0000-0000-000000000000")
        );
        assert!(
            !IdentityRule::default_for(&IdentityKind::Maid).blocks("6d92078a-8246-4ba4-ae5b-76104861e7dc")
        );
        assert!(IdentityRule::default_for(&IdentityKind::Email).blocks("TEST@test.com"));
        assert!(IdentityRule::default_for(&IdentityKind::Phone).blocks("+11111111111"));
        assert!(IdentityRule::default_for(&IdentityKind::UserId).blocks("undefined"));
        assert!(!IdentityRule::default_for(&IdentityKind::Ip).merges);
    }

    #[test]
    fn hostile_rules_are_refused() {
        let bad = IdentityRule::new(IdentityKind::Email, 1, 1, true, vec![], vec!["(".into()]);
        assert!(bad.is_err());
        let huge = IdentityRule::new(IdentityKind::Email, 1, 1, true, vec![], vec!["a{1000}{1000}".into()]);
        assert!(huge.is_err());
        assert!(IdentityRule::new(IdentityKind::Email, 1, 0, true, vec![], vec![]).is_err());
    }
}
