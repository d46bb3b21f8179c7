//! The workspace's channel rules: which marketing channel an ingested touch belongs to, from its
//! UTM source, medium and campaign, its external referrer and the channel it came through.
//!
//! Rules are tried in order and the first whose every pattern matches wins. Patterns are
//! regular expressions matched against the whole (lowercased) value, case-insensitively; a
//! pattern on a value the touch does not have does not match. Without rules of its own a
//! workspace uses [`ChannelRules::standard`], close to the default channel groupings analytics
//! tools use. A touch no rule claims is `unassigned` (or, for a call or a store visit, its own
//! channel), so it shows in reports and the agency sees which rule is missing.

use crate::{MeasurementError, Result};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// Most rules a workspace may have.
pub const MAX_RULES: usize = 200;
/// Longest pattern accepted.
const MAX_PATTERN_CHARS: usize = 500;
/// Compiled size limit of one pattern, so a hostile pattern cannot exhaust memory.
const MAX_PATTERN_BYTES: usize = 256 * 1024;
/// Channel of a touch that no rule claims.
pub const UNASSIGNED: &str = "unassigned";

/// What an ingested event says about how the person came.
#[derive(Debug, Clone, Copy, Default)]
pub struct TouchFacts<'a> {
    pub source: Option<&'a str>,
    pub medium: Option<&'a str>,
    pub campaign: Option<&'a str>,
    pub referrer: Option<&'a str>,
    /// The channel the event came through (`web`, `call_center`, `pos`…).
    pub event_channel: Option<&'a str>,
}

/// One rule as written: the channel, and at least one pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelRuleSpec {
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_channel: Option<String>,
}

#[derive(Debug, Clone)]
struct Pattern(Regex);

impl Pattern {
    fn matches(&self, value: Option<&str>) -> bool {
        value.is_some_and(|value| self.0.is_match(value))
    }
}

#[derive(Debug, Clone)]
struct ChannelRule {
    channel: String,
    source: Option<Pattern>,
    medium: Option<Pattern>,
    campaign: Option<Pattern>,
    referrer: Option<Pattern>,
    event_channel: Option<Pattern>,
}

impl ChannelRule {
    fn matches(&self, touch: &TouchFacts<'_>) -> bool {
        [
            (&self.source, touch.source),
            (&self.medium, touch.medium),
            (&self.campaign, touch.campaign),
            (&self.referrer, touch.referrer),
            (&self.event_channel, touch.event_channel),
        ]
        .into_iter()
        .all(|(pattern, value)| pattern.as_ref().is_none_or(|pattern| pattern.matches(value)))
    }
}

/// A workspace's rules, compiled.
#[derive(Debug, Clone)]
pub struct ChannelRules {
    specs: Vec<ChannelRuleSpec>,
    rules: Vec<ChannelRule>,
    /// Whether these are the standard rules (the workspace has none of its own).
    standard: bool,
}

/// Channels events come through that are the person's own visit, not a contact: an event on
/// any other channel (a call, a store visit) is that channel when no rule claims it.
const SELF_SERVE_CHANNELS: &[&str] = &["web", "app", "server"];

const SEARCH_ENGINES: &str = "google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|seznam";
const SOCIAL_NETWORKS: &str =
    "facebook|fb|instagram|ig|meta|linkedin|twitter|x|pinterest|tiktok|reddit|youtube|snapchat|threads";
const PAID_MEDIA: &str = "cpc|ppc|paid|paid[-_ ]?(search|social|media)|paidsocial|retargeting|cpv|cpa|cpp";

impl ChannelRules {
    /// Compiles rules, naming the first one that cannot work.
    pub fn parse(specs: Vec<ChannelRuleSpec>) -> Result<Self> {
        if specs.len() > MAX_RULES {
            return Err(MeasurementError::invalid(format!(
                "at most {MAX_RULES} channel rules, got {}",
                specs.len()
            )));
        }
        let mut rules = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let position = index + 1;
            let channel = spec.channel.trim().to_lowercase();
            if channel.is_empty() || channel.chars().count() > 64 {
                return Err(MeasurementError::invalid(format!(
                    "channel rule {position}: the channel must be 1 to 64 characters"
                )));
            }
            let compile = |field: &str, pattern: &Option<String>| -> Result<Option<Pattern>> {
                pattern.as_deref().map(|text| compile_pattern(position, field, text)).transpose()
            };
            let rule = ChannelRule {
                channel,
                source: compile("source", &spec.source)?,
                medium: compile("medium", &spec.medium)?,
                campaign: compile("campaign", &spec.campaign)?,
                referrer: compile("referrer", &spec.referrer)?,
                event_channel: compile("eventChannel", &spec.event_channel)?,
            };
            if [&rule.source, &rule.medium, &rule.campaign, &rule.referrer, &rule.event_channel]
                .iter()
                .all(|pattern| pattern.is_none())
            {
                return Err(MeasurementError::invalid(format!(
                    "channel rule {position} ({}) has no pattern: give at least one of source, medium, \
                     campaign, referrer or eventChannel",
                    rule.channel
                )));
            }
            rules.push(rule);
        }
        Ok(Self { specs, rules, standard: false })
    }

    /// The rules a workspace uses until it sets its own.
    pub fn standard() -> Self {
        let rule = |channel: &str, fields: &[(&str, &str)]| {
            let mut spec = ChannelRuleSpec { channel: channel.into(), ..Default::default() };
            for (field, pattern) in fields {
                let slot = match *field {
                    "source" => &mut spec.source,
                    "medium" => &mut spec.medium,
                    "referrer" => &mut spec.referrer,
                    _ => &mut spec.event_channel,
                };
                *slot = Some((*pattern).to_owned());
            }
            spec
        };
        let search_hosts = format!("(.+\\.)?({SEARCH_ENGINES})\\.[a-z.]+");
        let social_hosts = format!("(.+\\.)?({SOCIAL_NETWORKS}|t|lnkd|fb)\\.(com|co|me|[a-z]{{2}})");
        let specs = vec![
            rule("paid_social", &[("source", SOCIAL_NETWORKS), ("medium", PAID_MEDIA)]),
            rule("paid_search", &[("source", SEARCH_ENGINES), ("medium", PAID_MEDIA)]),
            rule("display", &[("medium", "display|banner|cpm|interstitial|expandable|programmatic")]),
            rule("paid_other", &[("medium", PAID_MEDIA)]),
            rule("email", &[("medium", "e[-_ ]?mail|newsletter")]),
            rule("email", &[("source", "e[-_ ]?mail|newsletter")]),
            rule("sms", &[("medium", "sms|text|mms")]),
            rule("push", &[("medium", "push|.*notification.*|mobile[-_ ]?push")]),
            rule("affiliate", &[("medium", "affiliates?|partner")]),
            rule("social", &[("medium", "social|social[-_ ]?(network|media)|sm")]),
            rule("social", &[("source", SOCIAL_NETWORKS)]),
            rule("organic_search", &[("medium", "organic")]),
            rule("direct", &[("source", "\\(direct\\)|direct")]),
            rule("referral", &[("medium", "referral")]),
            rule("organic_search", &[("referrer", &search_hosts)]),
            rule("social", &[("referrer", &social_hosts)]),
            rule("referral", &[("referrer", ".+")]),
        ];
        match Self::parse(specs) {
            Ok(mut rules) => {
                rules.standard = true;
                rules
            }
            // The standard rules are constants covered by a unit test; an empty rule set only
            // makes every touch `unassigned`, which reports show.
            Err(_) => Self { specs: Vec::new(), rules: Vec::new(), standard: true },
        }
    }

    pub fn specs(&self) -> &[ChannelRuleSpec] {
        &self.specs
    }

    pub fn is_standard(&self) -> bool {
        self.standard
    }

    /// The channel of a touch.
    pub fn classify<'a>(&'a self, touch: &TouchFacts<'a>) -> &'a str {
        if let Some(rule) = self.rules.iter().find(|rule| rule.matches(touch)) {
            return &rule.channel;
        }
        match touch.event_channel {
            Some(channel) if !SELF_SERVE_CHANNELS.contains(&channel) => channel,
            _ => UNASSIGNED,
        }
    }
}

fn compile_pattern(position: usize, field: &str, text: &str) -> Result<Pattern> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_PATTERN_CHARS {
        return Err(MeasurementError::invalid(format!(
            "channel rule {position}: the {field} pattern must be 1 to {MAX_PATTERN_CHARS} characters"
        )));
    }
    RegexBuilder::new(&format!("^(?:{text})$"))
        .case_insensitive(true)
        .size_limit(MAX_PATTERN_BYTES)
        .build()
        .map(Pattern)
        .map_err(|error| {
            MeasurementError::invalid(format!(
                "channel rule {position}: the {field} pattern is not valid: {error}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utm<'a>(source: &'a str, medium: &'a str) -> TouchFacts<'a> {
        TouchFacts {
            source: Some(source),
            medium: Some(medium),
            event_channel: Some("web"),
            ..Default::default()
        }
    }

    fn referred(host: &str) -> TouchFacts<'_> {
        TouchFacts { referrer: Some(host), event_channel: Some("web"), ..Default::default() }
    }

    #[test]
    fn the_standard_rules_compile_and_group_the_usual_traffic() {
        let rules = ChannelRules::standard();
        assert!(rules.is_standard());
        assert_eq!(rules.specs().len(), 17, "every standard rule compiled");
        for (touch, channel) in [
            (utm("google", "cpc"), "paid_search"),
            (utm("facebook", "paid_social"), "paid_social"),
            (utm("criteo", "display"), "display"),
            (utm("newsletter", "email"), "email"),
            (utm("acme", "sms"), "sms"),
            (utm("awin", "affiliate"), "affiliate"),
            (utm("linkedin", "social"), "social"),
            (utm("instagram", "story"), "social"),
            (utm("someone", "cpc"), "paid_other"),
            (utm("(direct)", "(none)"), "direct"),
            (referred("google.fr"), "organic_search"),
            (referred("news.google.com"), "organic_search"),
            (referred("t.co"), "social"),
            (referred("blog.example.org"), "referral"),
            (utm("partner-site", "whatever"), UNASSIGNED),
        ] {
            assert_eq!(rules.classify(&touch), channel, "{touch:?}");
        }
    }

    #[test]
    fn offline_channels_keep_their_name_unless_a_rule_claims_them() {
        let rules = ChannelRules::standard();
        let call = TouchFacts { event_channel: Some("call_center"), ..Default::default() };
        assert_eq!(rules.classify(&call), "call_center");
        let own = ChannelRules::parse(vec![ChannelRuleSpec {
            channel: "Phone Sales".into(),
            event_channel: Some("call_center|ivr".into()),
            ..Default::default()
        }])
        .unwrap();
        assert_eq!(own.classify(&call), "phone sales");
        assert_eq!(
            own.classify(&TouchFacts { event_channel: Some("web"), ..Default::default() }),
            UNASSIGNED
        );
    }

    #[test]
    fn every_pattern_of_a_rule_must_match_and_patterns_match_whole_values() {
        let rules = ChannelRules::parse(vec![
            ChannelRuleSpec {
                channel: "brand_search".into(),
                source: Some("google".into()),
                campaign: Some("brand.*".into()),
                ..Default::default()
            },
            ChannelRuleSpec { channel: "search".into(), source: Some("google".into()), ..Default::default() },
        ])
        .unwrap();
        let mut touch = utm("Google", "cpc");
        assert_eq!(rules.classify(&touch), "search", "no campaign: the first rule cannot match");
        touch.campaign = Some("brand_fr");
        assert_eq!(rules.classify(&touch), "brand_search");
        assert_eq!(rules.classify(&utm("googleads", "cpc")), UNASSIGNED, "anchored: not a prefix match");
    }

    #[test]
    fn bad_rules_are_refused_with_their_position() {
        let bad = |spec: ChannelRuleSpec| ChannelRules::parse(vec![spec]).unwrap_err().to_string();
        assert!(bad(ChannelRuleSpec { channel: "x".into(), ..Default::default() }).contains("no pattern"));
        assert!(
            bad(ChannelRuleSpec { channel: "x".into(), medium: Some("(".into()), ..Default::default() })
                .contains("rule 1: the medium pattern is not valid")
        );
        assert!(
            bad(ChannelRuleSpec { channel: " ".into(), medium: Some("a".into()), ..Default::default() })
                .contains("1 to 64")
        );
        let huge = "a{1000}{1000}{1000}".to_owned();
        assert!(
            bad(ChannelRuleSpec { channel: "x".into(), medium: Some(huge), ..Default::default() })
                .contains("not valid")
        );
        let many =
            vec![
                ChannelRuleSpec { channel: "x".into(), medium: Some("a".into()), ..Default::default() };
                MAX_RULES + 1
            ];
        assert!(ChannelRules::parse(many).unwrap_err().to_string().contains("at most"));
    }
}
